"""Hypothesis strategies for the things tests here are about.

- :func:`from_model`: pydantic models and dataclasses, honouring field constraints
  (``Field(ge=…, max_length=…, pattern=…)``, ``Annotated[int, Ge(0)]``).
- SQL: :func:`sql_identifiers`, :func:`sql_text`, :func:`sql_integers`, :func:`sql_decimals`,
  :func:`sql_floats`, :func:`sql_datetimes` — values that round-trip through ``postgresql``,
  ``mysql`` (MariaDB too) or ``sqlite`` unchanged.
- :func:`json_documents`, :func:`s3_keys`, :func:`s3_bucket_names`, :func:`kafka_headers`,
  :func:`kafka_topic_names`.

Importing this module imports Hypothesis (import it only from tests that use it).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import re
import types
import typing
from typing import Any, Literal, TypeVar, Union, get_args, get_origin

from hypothesis import strategies as st

from pytest_commons.data.isolation import aisolated_example, isolated_example

T = TypeVar("T")
Backend = Literal["postgresql", "postgres", "mysql", "mariadb", "sqlite"]

__all__ = [
    "aisolated_example",
    "from_model",
    "isolated_example",
    "json_documents",
    "kafka_headers",
    "kafka_topic_names",
    "s3_bucket_names",
    "s3_keys",
    "sql_datetimes",
    "sql_decimals",
    "sql_floats",
    "sql_identifiers",
    "sql_integers",
    "sql_text",
]


def _backend(name: str) -> str:
    key = name.lower()
    if key in ("postgres", "postgresql", "psycopg"):
        return "postgresql"
    if key in ("mysql", "mariadb", "pymysql"):
        return "mysql"
    if key == "sqlite":
        return "sqlite"
    raise ValueError(f"unknown SQL backend {name!r}: use postgresql, mysql or sqlite")


# ---------------------------------------------------------------- models


def _constraints(metadata: typing.Iterable[Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in metadata:
        for attr in ("ge", "gt", "le", "lt", "min_length", "max_length", "pattern", "multiple_of"):
            value = getattr(item, attr, None)
            if value is not None:
                out[attr] = value
        # pydantic's general metadata holds several constraints in one object
        for attr in ("max_digits", "decimal_places"):
            value = getattr(item, attr, None)
            if value is not None:
                out[attr] = value
    return out


def _strategy_for(tp: Any, metadata: typing.Iterable[Any] = ()) -> st.SearchStrategy[Any]:
    c = _constraints(metadata)
    origin = get_origin(tp)
    if origin is typing.Annotated:
        inner, *extra = get_args(tp)
        return _strategy_for(inner, [*extra, *metadata])
    if origin in (Union, types.UnionType):
        return st.one_of(*(_strategy_for(a, metadata) for a in get_args(tp)))
    if tp is type(None):
        return st.none()
    if origin is Literal:
        return st.sampled_from(get_args(tp))
    if origin in (list, set, frozenset, tuple) or tp in (list, set):
        args = get_args(tp)
        item = _strategy_for(args[0]) if args else st.integers()
        if origin is tuple and args and (len(args) != 2 or args[1] is not Ellipsis):
            return st.tuples(*(_strategy_for(a) for a in args))
        lists = st.lists(item, min_size=c.get("min_length", 0), max_size=c.get("max_length", 8))
        if origin in (set, frozenset):
            return lists.map(origin)
        return lists.map(tuple) if origin is tuple else lists
    if origin is dict:
        k, v = get_args(tp) or (str, int)
        return st.dictionaries(_strategy_for(k), _strategy_for(v), max_size=5)
    if tp is bool:
        return st.booleans()
    if tp is int:
        lo = c.get("ge", c["gt"] + 1 if "gt" in c else None)
        hi = c.get("le", c["lt"] - 1 if "lt" in c else None)
        ints = st.integers(min_value=lo, max_value=hi)
        if "multiple_of" in c:
            m = c["multiple_of"]
            ints = ints.filter(lambda x: x % m == 0)
        return ints
    if tp is float:
        return st.floats(
            min_value=c.get("ge", c.get("gt")),
            max_value=c.get("le", c.get("lt")),
            exclude_min="gt" in c,
            exclude_max="lt" in c,
            allow_nan=False,
            allow_infinity=False,
        )
    if tp is decimal.Decimal:
        places = c.get("decimal_places")
        digits = c.get("max_digits")
        if digits is not None and places is not None:
            return sql_decimals(digits, places)
        return st.decimals(
            min_value=c.get("ge", c.get("gt")),
            max_value=c.get("le", c.get("lt")),
            places=places,
            allow_nan=False,
            allow_infinity=False,
        )
    if tp is str:
        if "pattern" in c:
            pattern = c["pattern"]
            text = st.from_regex(pattern, fullmatch=True)
            if "min_length" in c or "max_length" in c:
                lo, hi = c.get("min_length", 0), c.get("max_length", 10**9)
                text = text.filter(lambda s: lo <= len(s) <= hi)
            return text
        return st.text(
            st.characters(codec="utf-8"),
            min_size=c.get("min_length", 0),
            max_size=c.get("max_length", 40),
        )
    if _is_model(tp):
        return from_model(tp)
    name = getattr(tp, "__name__", "")
    if name == "EmailStr":
        return st.emails()
    return st.from_type(tp)


def _is_model(tp: Any) -> bool:
    return isinstance(tp, type) and (dataclasses.is_dataclass(tp) or hasattr(tp, "model_fields"))


def from_model(model: type[T], **overrides: st.SearchStrategy[Any]) -> st.SearchStrategy[T]:
    """``st.builds(model, …)`` for a pydantic model or a dataclass, with a strategy per field
    that honours its constraints (bounds, lengths, patterns, decimal digits, nested models,
    optional fields, literals). ``overrides`` replace the strategy of single fields.
    """
    fields: dict[str, st.SearchStrategy[Any]] = {}
    pyd: Any = model
    if hasattr(pyd, "model_fields"):  # pydantic v2
        by_name = pyd.model_config.get("populate_by_name") is True
        for name, info in pyd.model_fields.items():
            key = info.alias if info.alias and not by_name else name
            fields[key] = (
                overrides[name]
                if name in overrides
                else _strategy_for(info.annotation, info.metadata)
            )
    elif dataclasses.is_dataclass(model):
        hints = typing.get_type_hints(model, include_extras=True)
        for f in dataclasses.fields(model):
            if not f.init:
                continue
            fields[f.name] = (
                overrides[f.name] if f.name in overrides else _strategy_for(hints[f.name])
            )
    else:
        raise TypeError(f"{model!r} is neither a pydantic model nor a dataclass")
    return st.builds(model, **fields)


# ---------------------------------------------------------------- SQL

_RESERVED = frozenset(
    [
        "all",
        "analyse",
        "analyze",
        "and",
        "any",
        "array",
        "as",
        "asc",
        "asymmetric",
        "both",
        "case",
        "cast",
        "check",
        "collate",
        "column",
        "constraint",
        "create",
        "current_catalog",
        "current_date",
        "current_role",
        "current_time",
        "current_timestamp",
        "current_user",
        "default",
        "deferrable",
        "desc",
        "distinct",
        "do",
        "else",
        "end",
        "except",
        "false",
        "fetch",
        "for",
        "foreign",
        "from",
        "grant",
        "group",
        "having",
        "in",
        "initially",
        "intersect",
        "into",
        "lateral",
        "leading",
        "limit",
        "localtime",
        "localtimestamp",
        "not",
        "null",
        "offset",
        "on",
        "only",
        "or",
        "order",
        "placing",
        "primary",
        "references",
        "returning",
        "select",
        "session_user",
        "some",
        "symmetric",
        "table",
        "then",
        "to",
        "trailing",
        "true",
        "union",
        "unique",
        "user",
        "using",
        "variadic",
        "when",
        "where",
        "window",
        "with",
        "key",
        "keys",
        "index",
        "range",
        "rows",
        "row",
        "groups",
        "div",
        "mod",
        "read",
        "write",
        "database",
        "schema",
        "values",
        "set",
        "update",
        "delete",
        "insert",
        "join",
        "inner",
        "outer",
        "left",
        "right",
        "cross",
        "natural",
        "full",
        "between",
        "like",
        "is",
        "exists",
        "interval",
        "dual",
        "condition",
        "match",
        "option",
        "replace",
        "explain",
        "describe",
        "show",
        "int",
        "integer",
        "char",
        "varchar",
        "text",
        "date",
        "time",
        "timestamp",
    ]
)


def sql_identifiers(backend: Backend | str = "postgresql") -> st.SearchStrategy[str]:
    """Unquoted, lower-case identifiers valid on ``backend`` (length limit 63 on PostgreSQL,
    64 on MySQL), never a reserved word."""
    limit = {"postgresql": 63, "mysql": 64, "sqlite": 64}[_backend(backend)]
    return st.from_regex(rf"[a-z_][a-z0-9_]{{0,{limit - 1}}}", fullmatch=True).filter(
        lambda s: s not in _RESERVED
    )


def sql_text(
    backend: Backend | str = "postgresql", *, min_size: int = 0, max_size: int = 200
) -> st.SearchStrategy[str]:
    """Text that round-trips: no NUL (PostgreSQL rejects it), no lone surrogates; on MySQL no
    trailing spaces (PAD SPACE collations compare them away) and only utf8mb4 text."""
    chars = st.characters(codec="utf-8", exclude_characters="\x00")
    text = st.text(chars, min_size=min_size, max_size=max_size)
    if _backend(backend) == "mysql":
        text = text.filter(lambda s: s == s.rstrip(" "))
    return text


def sql_integers(
    backend: Backend | str = "postgresql", *, bits: int = 64, unsigned: bool = False
) -> st.SearchStrategy[int]:
    """Integers that fit a column of ``bits`` (16/32/64; SQLite stores 64-bit); ``unsigned``
    for MySQL ``UNSIGNED`` columns."""
    _backend(backend)
    if unsigned:
        return st.integers(0, 2**bits - 1)
    return st.integers(-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)


def sql_decimals(precision: int = 18, scale: int = 2) -> st.SearchStrategy[decimal.Decimal]:
    """Decimals that fit ``NUMERIC(precision, scale)`` exactly (SQLite: use ``scale`` ≤ 6 and
    compare as text; it stores REAL)."""
    bound = decimal.Decimal(10) ** (precision - scale) - decimal.Decimal(1).scaleb(-scale)
    return st.decimals(
        min_value=-bound, max_value=bound, places=scale, allow_nan=False, allow_infinity=False
    )


def sql_floats(
    backend: Backend | str = "postgresql", *, width: int = 64
) -> st.SearchStrategy[float]:
    """Floats for a ``DOUBLE``/``REAL`` column: finite (MySQL has no NaN/inf), no ``-0.0``."""
    allow_special = _backend(backend) == "postgresql"
    return st.floats(
        width=width,  # type: ignore[arg-type]
        allow_nan=allow_special,
        allow_infinity=allow_special,
    ).filter(lambda f: not (f == 0 and str(f).startswith("-")))


def sql_datetimes(
    backend: Backend | str = "postgresql", *, fsp: int = 6, timezones: bool = False
) -> st.SearchStrategy[dt.datetime]:
    """Datetimes that round-trip: PostgreSQL microseconds; MySQL ``DATETIME(fsp)`` (years
    1000-9999, ``fsp`` fractional digits; 0 unless the column says ``DATETIME(6)``); SQLite as
    ISO text. ``timezones=True`` gives UTC-aware values (``timestamptz``)."""
    b = _backend(backend)
    lo = dt.datetime(1000 if b == "mysql" else 1, 1, 1)
    hi = dt.datetime(9999, 12, 31, 23, 59, 59, 999999)
    values = st.datetimes(min_value=lo, max_value=hi)
    if b == "mysql":
        step = 10 ** (6 - fsp)
        values = values.map(lambda d: d.replace(microsecond=d.microsecond - d.microsecond % step))
    if timezones:
        values = values.map(lambda d: d.replace(tzinfo=dt.timezone.utc))
        if b == "postgresql":
            values = values.filter(lambda d: d.year > 1)
    return values


# ---------------------------------------------------------------- documents, S3, Kafka


def json_documents(*, max_leaves: int = 30) -> st.SearchStrategy[Any]:
    """JSON values that survive ``json.dumps``/``loads`` and a JSONB column unchanged: ints
    within ±2⁵³, finite floats, text without NUL."""
    text = st.text(
        st.characters(codec="utf-8", exclude_characters="\x00"),
        max_size=20,
    )
    leaves = (
        st.none()
        | st.booleans()
        | st.integers(-(2**53), 2**53)
        # JSONB keeps numbers as numeric: beyond 2**53 a float comes back as a different int
        | st.floats(-(2.0**53), 2.0**53, allow_nan=False, allow_infinity=False)
        | text
    )
    return st.recursive(
        leaves,
        lambda children: (
            st.lists(children, max_size=5) | st.dictionaries(text, children, max_size=5)
        ),
        max_leaves=max_leaves,
    )


_S3_SAFE = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ!-_.*'()"
_IP = re.compile(r"^\d+\.\d+\.\d+\.\d+$")


def s3_keys(*, max_segments: int = 4, max_size: int = 1024) -> st.SearchStrategy[str]:
    """Object keys valid per AWS: 1-1024 bytes of UTF-8, made of the "safe characters"; no
    empty, ``.`` or ``..`` path segment, no leading or doubled ``/``."""
    segment = st.text(_S3_SAFE, min_size=1, max_size=30).filter(lambda s: s not in (".", ".."))
    return (
        st.lists(segment, min_size=1, max_size=max_segments)
        .map("/".join)
        .filter(lambda k: len(k.encode()) <= max_size)
    )


def s3_bucket_names() -> st.SearchStrategy[str]:
    """Bucket names valid per AWS: 3-63 of ``a-z0-9.-``, starting and ending with a letter or
    digit, no ``..``, not an IP address, no ``xn--``/``sthree-`` prefix or ``-s3alias`` suffix."""
    return st.from_regex(r"[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]", fullmatch=True).filter(
        lambda n: (
            ".." not in n
            and ".-" not in n
            and "-." not in n
            and not _IP.match(n)
            and not n.startswith(("xn--", "sthree-"))
            and not n.endswith(("-s3alias", "--ol-s3"))
        )
    )


def kafka_headers(*, max_size: int = 5) -> st.SearchStrategy[list[tuple[str, bytes | None]]]:
    """Record headers as producers take them: ``[(key, value), …]`` with non-empty text keys
    (repeats allowed, as in Kafka) and bytes or None values."""
    key = st.text(st.characters(codec="utf-8"), min_size=1, max_size=20)
    return st.lists(st.tuples(key, st.none() | st.binary(max_size=64)), max_size=max_size)


def kafka_topic_names(*, prefix: str = "") -> st.SearchStrategy[str]:
    """Topic names Kafka accepts: ``[a-zA-Z0-9._-]``, 1-249 characters, not ``.``/``..``
    (``prefix`` is prepended and counted)."""
    room = 249 - len(prefix)
    return (
        st.from_regex(rf"[a-zA-Z0-9._\-]{{1,{min(room, 60)}}}", fullmatch=True)
        .filter(lambda n: n not in (".", ".."))
        .map(lambda n: prefix + n)
    )

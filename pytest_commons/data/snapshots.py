"""Snapshot helpers: masking of volatile values, a syrupy JSON extension that masks, and
normalisers for database tables, HTTP exchanges and Kafka messages.

syrupy is imported only by :func:`masked_json_extension` (used by the ``snapshot_json`` fixture).
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import json
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pytest_commons.data._sql import SqlTarget

UUID_RE = re.compile(
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
)
DATETIME_RE = re.compile(
    r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?$"
)


class VolatileValueError(AssertionError):
    """Strict masking found a value that changes from run to run and is not masked."""


@dataclass(frozen=True)
class Masks:
    """What :func:`mask_volatile` replaces.

    - ``auto``: UUIDs → ``<uuid:N>`` (the same UUID gets the same N), ISO timestamps →
      ``<datetime>`` (strings, :class:`datetime.datetime` objects too).
    - ``id_keys``: keys whose numeric (or string) values are ids → ``<id:N>`` (numbered per
      distinct value, so relations stay visible), e.g. ``("id", "user_id")``.
    - ``paths``: JSON paths masked as ``<masked>`` whatever they hold: ``$.meta.request_id``,
      ``$.items[*].etag``, ``$..created`` (any depth).
    - ``strict``: with ``auto=False``, raise :class:`VolatileValueError` for an unmasked UUID or
      timestamp instead of writing it into the snapshot.
    """

    id_keys: tuple[str, ...] = ()
    paths: tuple[str, ...] = ()
    auto: bool = True
    strict: bool = False
    placeholder: str = "<masked>"
    extra: tuple[tuple[str, str], ...] = field(default=())  # (regex, placeholder name)


def _parse_path(path: str) -> list[str]:
    text = path.strip()
    if text.startswith("$"):
        text = text[1:]
    tokens: list[str] = []
    for deep, name, index in re.findall(r"(\.\.|\.)?(?:([^.\[\]]+)|\[([^\]]*)\])", text):
        if deep == "..":
            tokens.append("**")
        if index or not name:
            inner = index.strip("'\"")
            tokens.append("*" if inner in ("*", "") else inner)
        else:
            tokens.append(name)
    return tokens


def _path_matches(pattern: list[str], path: list[str]) -> bool:
    if not pattern:
        return not path
    head, rest = pattern[0], pattern[1:]
    if head == "**":
        return any(_path_matches(rest, path[i:]) for i in range(len(path) + 1))
    if not path:
        return False
    return (head in ("*", path[0])) and _path_matches(rest, path[1:])


class _Masker:
    def __init__(self, masks: Masks) -> None:
        self.masks = masks
        self.patterns = [_parse_path(p) for p in masks.paths]
        self.numbers: dict[str, dict[Any, int]] = {}
        self.extra = [(re.compile(rx), name) for rx, name in masks.extra]

    def number(self, kind: str, value: Any) -> str:
        table = self.numbers.setdefault(kind, {})
        if value not in table:
            table[value] = len(table) + 1
        return f"<{kind}:{table[value]}>"

    def where(self, path: list[str]) -> str:
        out = "$"
        for p in path:
            out += f"[{p}]" if p.isdigit() else f".{p}"
        return out

    def walk(self, value: Any, path: list[str]) -> Any:
        if any(_path_matches(p, path) for p in self.patterns):
            return self.masks.placeholder
        is_id = isinstance(value, (int, str, uuid.UUID)) and not isinstance(value, bool)
        if path and path[-1] in self.masks.id_keys and is_id:
            return self.number("id", str(value))
        if isinstance(value, Mapping):
            return {k: self.walk(v, [*path, str(k)]) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.walk(v, [*path, str(i)]) for i, v in enumerate(value)]
        return self.scalar(value, path)

    def scalar(self, value: Any, path: list[str]) -> Any:
        kind = None
        if isinstance(value, uuid.UUID):
            kind, value = "uuid", str(value)
        elif isinstance(value, dt.datetime):
            kind = "datetime"
        elif isinstance(value, str):
            if UUID_RE.match(value):
                kind = "uuid"
            elif DATETIME_RE.match(value):
                kind = "datetime"
            else:
                for rx, name in self.extra:
                    if rx.fullmatch(value):
                        return self.number(name, value)
        if kind is None:
            return value
        if not self.masks.auto:
            if self.masks.strict:
                raise VolatileValueError(
                    f"unmasked volatile value at {self.where(path)}: {value!r} looks like a "
                    f"{kind}; mask it (Masks(paths=({self.where(path)!r},)) or auto=True) so the "
                    "snapshot does not change on every run"
                )
            return value if isinstance(value, str) else value.isoformat()
        if kind == "uuid":
            return self.number("uuid", str(value).lower())
        return "<datetime>"


def mask_volatile(data: Any, masks: Masks | None = None, **kwargs: Any) -> Any:
    """A copy of ``data`` (JSON-like) with volatile values replaced by stable placeholders.

    ``mask_volatile(doc, id_keys=("id",), paths=("$.meta.etag",))`` is short for
    ``mask_volatile(doc, Masks(id_keys=..., paths=...))``.
    """
    if masks is None:
        opts: dict[str, Any] = {
            k: tuple(v) if isinstance(v, list) else v for k, v in kwargs.items()
        }
        masks = Masks(**opts)
    return _Masker(masks).walk(data, [])


def masked_json_extension(masks: Masks | None = None) -> type[Any]:
    """A syrupy ``JSONSnapshotExtension`` subclass that masks with ``masks`` before writing."""
    from syrupy.extensions.json import JSONSnapshotExtension

    chosen = masks or Masks()

    class MaskedJSONSnapshotExtension(JSONSnapshotExtension):
        """JSON snapshots with UUIDs, timestamps and chosen ids/paths masked."""

        masks = chosen

        def serialize(self, data: Any, **kwargs: Any) -> Any:
            return super().serialize(mask_volatile(to_jsonable(data), self.masks), **kwargs)

    return MaskedJSONSnapshotExtension


def to_jsonable(value: Any) -> Any:
    """Database and Python values → JSON-friendly ones (Decimal → str, bytes → base64 …)."""
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [to_jsonable(v) for v in value]
        return sorted(items, key=repr) if isinstance(value, (set, frozenset)) else items
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return f"PT{value.total_seconds()}S"
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, memoryview):
        value = value.tobytes()
    if isinstance(value, (bytes, bytearray)):
        try:
            return bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            return "base64:" + base64.b64encode(bytes(value)).decode()
    return value


def snapshot_table(
    conn: Any,
    table: str,
    *,
    order_by: str | Sequence[str] | None = None,
    columns: Sequence[str] | None = None,
    where: str | None = None,
) -> list[dict[str, Any]]:
    """The rows of ``table`` as a list of dicts, in a stable order, JSON-friendly.

    ``conn``: psycopg 3 or PyMySQL connection, SQLAlchemy Connection or Session. ``order_by``:
    column(s) (default: every column, so the order never depends on the storage).
    """
    target = SqlTarget(conn)
    wanted = list(columns) if columns else target.columns(table)
    cols = ", ".join(target.quote(c) for c in wanted)
    if order_by is None:
        order = ", ".join(str(i) for i in range(1, len(wanted) + 1))
    else:
        keys = [order_by] if isinstance(order_by, str) else list(order_by)
        order = ", ".join(k if " " in k else target.quote(k) for k in keys)
    sql = f"SELECT {cols} FROM {target.quote_table(table)}"
    if where:
        sql += f" WHERE {where}"
    names, rows = target.execute(f"{sql} ORDER BY {order}")
    return [to_jsonable(dict(zip(names, row, strict=True))) for row in rows]


VOLATILE_HEADERS = frozenset(
    {
        "date",
        "host",
        "content-length",
        "connection",
        "user-agent",
        "accept-encoding",
        "keep-alive",
        "transfer-encoding",
        "x-request-id",
        "traceparent",
    }
)


def _headers(raw: Any, drop: frozenset[str]) -> dict[str, Any]:
    pairs: list[tuple[str, Any]] = []
    if isinstance(raw, Mapping):
        pairs = list(raw.items())
    elif isinstance(raw, list):
        pairs = [(h.get("name", ""), h.get("values", h.get("value"))) for h in raw]
    out: dict[str, Any] = {}
    for name, values in pairs:
        key = str(name).lower()
        if key in drop:
            continue
        if isinstance(values, list) and len(values) == 1:
            values = values[0]
        out[key] = values
    return dict(sorted(out.items()))


def _body(raw: Any) -> Any:
    if raw is None:
        return None
    if isinstance(raw, Mapping) and "type" in raw:
        kind = str(raw["type"]).upper()
        if kind == "JSON":
            raw = raw.get("json")
        elif kind == "STRING":
            raw = raw.get("string")
        elif kind == "BINARY":
            return "base64:" + str(raw.get("base64Bytes", ""))
        elif kind == "PARAMETERS":
            return _headers(raw.get("parameters", {}), frozenset())
        else:
            raw = raw.get(kind.lower(), raw)
    if isinstance(raw, str):
        try:
            return json.loads(raw)
        except ValueError:
            return raw
    return raw


def http_exchanges(
    exchanges: Iterable[Mapping[str, Any]], *, drop_headers: Iterable[str] = ()
) -> list[dict[str, Any]]:
    """MockServer ``retrieve?type=REQUEST_RESPONSES`` JSON (or any list of
    ``{"httpRequest": …, "httpResponse": …}``) → stable request/response pairs for a snapshot.

    Keeps method, path, query, headers (lower-cased, sorted, volatile ones such as Date, Host,
    Content-Length and User-Agent dropped) and bodies (JSON bodies parsed).
    """
    drop = VOLATILE_HEADERS | {h.lower() for h in drop_headers}
    out = []
    for item in exchanges:
        req = item.get("httpRequest", item.get("request", {})) or {}
        res = item.get("httpResponse", item.get("response", {})) or {}
        request: dict[str, Any] = {"method": req.get("method", "GET"), "path": req.get("path")}
        query = req.get("queryStringParameters")
        if query:
            request["query"] = _headers(query, frozenset())
        headers = _headers(req.get("headers", {}), drop)
        if headers:
            request["headers"] = headers
        if req.get("body") is not None:
            request["body"] = _body(req.get("body"))
        response: dict[str, Any] = {"status": res.get("statusCode", 200)}
        headers = _headers(res.get("headers", {}), drop)
        if headers:
            response["headers"] = headers
        if res.get("body") is not None:
            response["body"] = _body(res.get("body"))
        out.append({"request": request, "response": response})
    return out


def _attr(msg: Any, name: str) -> Any:
    if isinstance(msg, Mapping):
        return msg.get(name)
    value = getattr(msg, name, None)
    return value() if callable(value) else value


def _decode(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray, memoryview)):
        raw = bytes(value)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            return "base64:" + base64.b64encode(raw).decode()
        try:
            return json.loads(text)
        except ValueError:
            return text
    return value


def kafka_messages(messages: Iterable[Any], *, with_topic: bool = False) -> list[dict[str, Any]]:
    """Kafka messages (confluent-kafka ``Message``, aiokafka/kafka-python ``ConsumerRecord`` or
    dicts) → ``[{"key", "value", "headers"}]`` with bytes decoded (JSON parsed when it is JSON).

    Offsets, partitions and timestamps are left out; topics too unless ``with_topic`` (test
    topics carry per-run prefixes).
    """
    out = []
    for msg in messages:
        headers = _attr(msg, "headers") or []
        if isinstance(headers, Mapping):
            headers = list(headers.items())
        item: dict[str, Any] = {
            "key": _decode(_attr(msg, "key")),
            "value": _decode(_attr(msg, "value")),
            "headers": [[str(k), _decode(v)] for k, v in headers],
        }
        if with_topic:
            item = {"topic": _attr(msg, "topic"), **item}
        out.append(item)
    return out

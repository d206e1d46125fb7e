"""The data tools' pure parts: strategies and model strategies, snapshot normalisation and
masking, seed file parsing and its error messages, seeds, factory discovery."""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import json
import math
import re
import sys
import uuid
import warnings
from pathlib import Path
from typing import Annotated, Literal

import annotated_types as at
import factory
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ConfigDict, EmailStr, Field, StringConstraints

from pytest_commons.data.factories import _factory_boy_tree, fixture_name, library_of
from pytest_commons.data.seed_data import SeedDataError, read_seed_file
from pytest_commons.data.seeding import derive_seed, parse_seed
from pytest_commons.data.snapshots import (
    Masks,
    http_exchanges,
    kafka_messages,
    mask_volatile,
    to_jsonable,
)
from pytest_commons.data.strategies import (
    from_model,
    sql_datetimes,
    sql_floats,
    sql_identifiers,
    sql_integers,
    sql_text,
)

QUICK = settings(max_examples=60, deadline=None)

# ------------------------------------------------------------------------ strategies


@dataclasses.dataclass
class Address:
    city: Annotated[str, at.MinLen(2), at.MaxLen(5)]


@dataclasses.dataclass
class Everything:
    pair: tuple[int, str]
    many: tuple[bool, ...]
    tags: set[Annotated[int, at.Ge(0), at.Le(9)]]
    frozen: frozenset[str]
    counts: dict[str, int]
    flag: bool
    step: Annotated[int, at.Gt(0), at.Lt(100), at.MultipleOf(5)]
    ratio: Annotated[float, at.Gt(0.0), at.Lt(1.0)]
    amount: Annotated[decimal.Decimal, at.Ge(0), at.Le(10)]
    code: Annotated[str, StringConstraints(pattern=r"[A-Z]{2,6}", min_length=3, max_length=4)]
    email: EmailStr
    when: dt.date
    home: Address
    kind: Literal["a", "b"]
    note: str | None
    derived: int = dataclasses.field(init=False, default=0)


@QUICK
@given(from_model(Everything))
def test_from_model_honours_every_field_constraint(e: Everything) -> None:
    assert isinstance(e.pair[0], int)
    assert isinstance(e.pair[1], str)
    assert all(isinstance(b, bool) for b in e.many)
    assert isinstance(e.tags, set)
    assert all(0 <= t <= 9 for t in e.tags)
    assert isinstance(e.frozen, frozenset)
    assert all(isinstance(k, str) and isinstance(v, int) for k, v in e.counts.items())
    assert isinstance(e.flag, bool)
    assert 0 < e.step < 100
    assert e.step % 5 == 0
    assert 0.0 < e.ratio < 1.0
    assert 0 <= e.amount <= 10
    assert e.amount.is_finite()
    assert re.fullmatch(r"[A-Z]{3,4}", e.code)
    assert re.fullmatch(r"[^@\s]+@[^@\s]+", e.email)
    assert isinstance(e.when, dt.date)
    assert 2 <= len(e.home.city) <= 5
    assert e.kind in ("a", "b")
    assert e.note is None or isinstance(e.note, str)
    assert e.derived == 0  # not an __init__ field: left alone


class Account(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    user_id: int = Field(alias="userId", ge=1)
    balance: decimal.Decimal = Field(max_digits=5, decimal_places=2)


def test_from_model_pydantic_alias_and_overrides() -> None:
    # an override is taken as given (a strategy is never tested for truth: Hypothesis warns)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        accounts = from_model(Account, balance=st.just(decimal.Decimal("1.50")))
        people = from_model(Address, city=st.just("Oslo"))

    @QUICK
    @given(accounts, people)
    def check(account: Account, address: Address) -> None:
        assert account.user_id >= 1
        assert account.balance == decimal.Decimal("1.50")
        assert address.city == "Oslo"

    check()


def test_from_model_refuses_other_types() -> None:
    with pytest.raises(TypeError, match="is neither a pydantic model nor a dataclass"):
        from_model(dict)


def test_unknown_backend_names_the_choices() -> None:
    with pytest.raises(ValueError, match=r"unknown SQL backend 'oracle': use postgresql, mysql"):
        sql_text("oracle")


@QUICK
@given(
    ident=sql_identifiers("mariadb"),
    text=sql_text("mysql"),
    small=sql_integers("mysql", bits=16, unsigned=True),
    floats=sql_floats("mysql", width=32),
    pg_float=sql_floats("postgres"),
    when=sql_datetimes("mysql", fsp=3, timezones=True),
    lite=sql_datetimes("sqlite", timezones=True),
)
def test_mysql_and_sqlite_variants(
    ident: str,
    text: str,
    small: int,
    floats: float,
    pg_float: float,
    when: dt.datetime,
    lite: dt.datetime,
) -> None:
    assert len(ident) <= 64
    assert text == text.rstrip(" ")  # PAD SPACE collations would drop trailing blanks
    assert 0 <= small <= 2**16 - 1
    assert math.isfinite(floats)  # MySQL has no NaN or infinity
    assert not (floats == 0 and str(floats).startswith("-"))
    assert not (pg_float == 0 and str(pg_float).startswith("-"))
    assert when.year >= 1000
    assert when.microsecond % 1000 == 0  # DATETIME(3)
    assert when.tzinfo is dt.timezone.utc
    assert lite.tzinfo is dt.timezone.utc


# ------------------------------------------------------------------------ snapshots


def test_to_jsonable_converts_database_values() -> None:
    value = {
        1: decimal.Decimal("1.10"),
        "day": dt.date(2024, 5, 1),
        "at": dt.time(10, 30),
        "span": dt.timedelta(minutes=1, seconds=30),
        "id": uuid.UUID("12345678-1234-5678-1234-567812345678"),
        "text": memoryview(b"caf\xc3\xa9"),
        "blob": bytearray(b"\xff\x00"),
        "set": {3, 1, 2},
        "frozen": frozenset({"b", "a"}),
        "tuple": (1, None, True),
    }
    assert to_jsonable(value) == {
        "1": "1.10",
        "day": "2024-05-01",
        "at": "10:30:00",
        "span": "PT90.0S",
        "id": "12345678-1234-5678-1234-567812345678",
        "text": "café",
        "blob": "base64:/wA=",
        "set": [1, 2, 3],
        "frozen": ["a", "b"],
        "tuple": [1, None, True],
    }
    json.dumps(to_jsonable(value))  # and it really is JSON


def test_masks_numbering_objects_extra_patterns_and_paths() -> None:
    a = uuid.UUID("aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa")
    doc = {
        "owner": a,
        "again": str(a).upper(),  # the same UUID spelled differently: the same number
        "created": dt.datetime(2024, 1, 1, 12, 0),
        "token": "tok_abc123",
        "other_token": "tok_zzz",
        "same_token": "tok_abc123",
        "rows": [{"user_id": a, "n": 1}, {"user_id": 7, "n": 2}],
        "meta": {"x-y": "keep", "etag": "W/1"},
        "flag": True,
    }
    masked = mask_volatile(
        doc,
        id_keys=["user_id"],  # lists are accepted like tuples
        # the leading "$" is optional; names may be quoted in brackets
        paths=["meta.etag", "$.rows[1].n", "$['rows'][0]['n']"],
        extra=[(r"tok_[a-z0-9]+", "token")],
    )
    assert masked == {
        "owner": "<uuid:1>",
        "again": "<uuid:1>",
        "created": "<datetime>",
        "token": "<token:1>",
        "other_token": "<token:2>",
        "same_token": "<token:1>",
        "rows": [{"user_id": "<id:1>", "n": "<masked>"}, {"user_id": "<id:2>", "n": "<masked>"}],
        "meta": {"x-y": "keep", "etag": "<masked>"},
        "flag": True,
    }


def test_masking_off_keeps_volatile_values_as_json() -> None:
    when = dt.datetime(2024, 1, 1, 12, 0)
    assert mask_volatile({"at": when, "s": "2024-01-01T12:00:00Z"}, Masks(auto=False)) == {
        "at": "2024-01-01T12:00:00",
        "s": "2024-01-01T12:00:00Z",
    }


def test_http_exchanges_body_kinds_headers_and_query() -> None:
    recorded = [
        {
            "request": {
                "method": "PUT",
                "path": "/files",
                "queryStringParameters": [{"name": "q", "values": ["a", "b"]}],
                "headers": [
                    {"name": "X-Trace", "values": ["1"]},
                    {"name": "Accept", "value": "text/plain"},
                    {"name": "User-Agent", "values": ["curl"]},
                ],
                "body": {"type": "BINARY", "base64Bytes": "AAE="},
            },
            "response": {"statusCode": 204},
        },
        {
            "httpRequest": {
                "path": "/form",
                "body": {"type": "PARAMETERS", "parameters": {"A": ["1"], "b": ["2", "3"]}},
            },
            "httpResponse": {
                "headers": {"Content-Type": ["application/xml"]},
                "body": {"type": "XML", "xml": "<a/>"},
            },
        },
        {
            "httpRequest": {"path": "/s", "body": {"type": "STRING", "string": "plain words"}},
            "httpResponse": {"body": "not json"},
        },
        {"httpRequest": {"path": "/bare", "headers": None}},
    ]
    assert http_exchanges(recorded, drop_headers=["X-Trace"]) == [
        {
            "request": {
                "method": "PUT",
                "path": "/files",
                "query": {"q": ["a", "b"]},
                "headers": {"accept": "text/plain"},
                "body": "base64:AAE=",
            },
            "response": {"status": 204},
        },
        {
            "request": {"method": "GET", "path": "/form", "body": {"a": "1", "b": ["2", "3"]}},
            "response": {
                "status": 200,
                "headers": {"content-type": "application/xml"},
                "body": "<a/>",
            },
        },
        {
            "request": {"method": "GET", "path": "/s", "body": "plain words"},
            "response": {"status": 200, "body": "not json"},
        },
        {"request": {"method": "GET", "path": "/bare"}, "response": {"status": 200}},
    ]


def test_kafka_messages_of_each_client_library() -> None:
    from aiokafka.structs import ConsumerRecord
    from confluent_kafka import Message

    confluent = Message(
        topic="t1", key=b"k1", value=b'{"n": 1}', headers=[("h", b"\xff\xfe"), ("j", b"[1]")]
    )
    record = ConsumerRecord(
        topic="t2",
        partition=0,
        offset=9,
        timestamp=0,
        timestamp_type=0,
        key=None,
        value=b"plain text",
        checksum=None,
        serialized_key_size=-1,
        serialized_value_size=10,
        headers=(),
    )
    as_dict = {"topic": "t3", "key": "k3", "value": b"\x80", "headers": {"x": b"1"}}
    assert kafka_messages([confluent, record, as_dict], with_topic=True) == [
        {
            "topic": "t1",
            "key": "k1",
            "value": {"n": 1},
            "headers": [["h", "base64://4="], ["j", [1]]],
        },
        {"topic": "t2", "key": None, "value": "plain text", "headers": []},
        {"topic": "t3", "key": "k3", "value": "base64:gA==", "headers": [["x", 1]]},
    ]
    assert "topic" not in kafka_messages([confluent])[0]


# ------------------------------------------------------------------------ seed files


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_seed_file_formats(tmp_path: Path) -> None:
    csv = _write(tmp_path, "users.csv", "id,name\n1,Ann\n2,\n")
    assert read_seed_file(csv) == {"users": [{"id": "1", "name": "Ann"}, {"id": "2", "name": None}]}
    yaml = _write(tmp_path, "s.yml", "teams:\n  - {id: 1}\nempty:\nusers: []\n")
    assert read_seed_file(yaml) == {"teams": [{"id": 1}], "empty": [], "users": []}
    assert read_seed_file(_write(tmp_path, "blank.yaml", "# nothing yet\n")) == {}


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        (
            "users.csv",
            "id,name\n1,Ann,extra\n",
            "table users, row 1: more cells than header columns",
        ),
        ("bad.yaml", "users: [\n", "not valid YAML: "),
        ("bad.json", '{"users": [}', "not valid JSON: "),
        ("seed.toml", "x = 1", "unknown seed file type '.toml' (use .yaml, .json, .csv, .sql)"),
        ("list.json", "[1, 2]", "expected a mapping {table: [rows...]}, got list"),
        ("rows.yaml", "users: {id: 1}\n", "table users: expected a list of rows"),
        ("row.json", '{"users": [{"id": 1}, 5]}', "table users, row 2: expected a mapping of "),
    ],
)
def test_seed_file_errors_name_file_table_and_row(
    tmp_path: Path, name: str, text: str, message: str
) -> None:
    path = _write(tmp_path, name, text)
    with pytest.raises(SeedDataError) as info:
        read_seed_file(path, shown=f"fixtures/{name}")
    assert str(info.value).startswith(f"fixtures/{name}: ")
    assert message in str(info.value)


def test_missing_seed_file_says_where_it_looked(tmp_path: Path) -> None:
    with pytest.raises(SeedDataError, match=r"users\.json: seed file not found \(looked at "):
        read_seed_file(tmp_path / "users.json", shown="users.json")


def test_yaml_seed_without_pyyaml_says_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "yaml", None)  # as if PyYAML were not installed
    path = _write(tmp_path, "users.yaml", "users: []\n")
    with pytest.raises(SeedDataError, match="YAML seed files need PyYAML: pip install pyyaml"):
        read_seed_file(path)


# ------------------------------------------------------------------------ seeds, factories


def test_parse_seed_accepts_ints_digits_and_text() -> None:
    assert parse_seed(42) == 42
    assert parse_seed(" -7 ") == -7
    # any other text is hashed into a stable seed
    assert parse_seed("release-1.2") == derive_seed(0, "release-1.2") == parse_seed("release-1.2")
    assert parse_seed("release-1.2") != parse_seed("release-1.3")


class _Plain:
    pass


class LeafFactory(factory.Factory):
    class Meta:
        model = dict

    name = "leaf"
    # a lazy path that does not resolve surfaces when the factory is used, not when bound
    broken = factory.SubFactory("no_such_module.MissingFactory")


class NodeFactory(factory.Factory):
    class Meta:
        model = dict

    leaf = factory.SubFactory(LeafFactory)
    # back to the parent: a cycle
    parent = factory.RelatedFactory(f"{__name__}.RootFactory")


class RootFactory(factory.Factory):
    class Meta:
        model = dict

    node = factory.SubFactory(NodeFactory)


def test_factory_tree_follows_sub_and_related_factories_once() -> None:
    assert list(_factory_boy_tree(RootFactory, set())) == [RootFactory, NodeFactory, LeafFactory]


def test_factory_names_and_libraries() -> None:
    assert fixture_name(RootFactory) == "root_factory"
    assert library_of(RootFactory) == "factory_boy"
    with pytest.raises(TypeError, match="_Plain is neither a factory-boy nor a polyfactory"):
        library_of(_Plain)

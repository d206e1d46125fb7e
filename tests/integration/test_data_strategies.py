"""Strategies against real databases: values round-trip unchanged, and isolated_example gives
every example the same starting state (postgres_tx with psycopg, SQLAlchemy sessions)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import json
import re
from typing import Annotated, Any, Literal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_commons.data.strategies import (
    from_model,
    isolated_example,
    json_documents,
    kafka_headers,
    kafka_topic_names,
    s3_bucket_names,
    s3_keys,
    sql_datetimes,
    sql_decimals,
    sql_identifiers,
    sql_integers,
    sql_text,
)

FIXTURE_OK = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.fixture
def pg(postgres_tx: Any) -> Any:
    postgres_tx.execute(
        "CREATE TABLE rt (t text, i bigint, n numeric(12, 3), ts timestamp, tz timestamptz, "
        "j jsonb, ident text)"
    )
    return postgres_tx


@FIXTURE_OK
@given(
    t=sql_text("postgresql"),
    i=sql_integers("postgresql"),
    n=sql_decimals(12, 3),
    ts=sql_datetimes("postgresql"),
    tz=sql_datetimes("postgresql", timezones=True),
    j=json_documents(),
)
def test_values_round_trip_through_postgres(
    pg: Any, t: str, i: int, n: decimal.Decimal, ts: dt.datetime, tz: dt.datetime, j: Any
) -> None:
    with isolated_example(pg):
        pg.execute(
            "INSERT INTO rt (t, i, n, ts, tz, j) VALUES (%s, %s, %s, %s, %s, %s::jsonb)",
            (t, i, n, ts, tz, json.dumps(j)),
        )
        row = pg.execute("SELECT t, i, n, ts, tz, j FROM rt").fetchall()
        assert len(row) == 1  # the previous examples' rows are gone
        got = row[0]
        assert got[:5] == (t, i, n, ts, tz)
        assert got[5] == json.loads(json.dumps(j))


@FIXTURE_OK
@given(name=sql_identifiers("postgresql"))
def test_identifiers_are_valid_table_names(pg: Any, name: str) -> None:
    with isolated_example(pg):
        pg.execute(f"CREATE TABLE {name} (x int)")
        pg.commit()  # code under test may commit: still undone with the example
        assert pg.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = %s", (name,)
        ).fetchone() == (1,)
    assert pg.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = %s", (name,)
    ).fetchone() == (0,)


def test_isolated_example_keeps_what_the_test_did_before(pg: Any) -> None:
    pg.execute("INSERT INTO rt (t) VALUES ('kept')")
    for n in range(3):
        with isolated_example(pg):
            pg.execute("INSERT INTO rt (t) VALUES (%s)", (f"example {n}",))
            pg.commit()
            assert pg.execute("SELECT count(*) FROM rt").fetchone() == (2,)
    assert pg.execute("SELECT t FROM rt").fetchall() == [("kept",)]


@pytest.fixture
def sa_session(postgres: Any) -> Any:
    sqlalchemy = pytest.importorskip("sqlalchemy")
    from sqlalchemy.orm import Session

    engine = sqlalchemy.create_engine(
        postgres.url.replace("postgresql://", "postgresql+psycopg://")
    )
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE items (id serial PRIMARY KEY, name text NOT NULL)")
    session = Session(engine)
    yield session
    session.close()
    engine.dispose()


@FIXTURE_OK
@given(names=st.lists(sql_text("postgresql", min_size=1, max_size=20), max_size=5))
def test_isolated_example_with_sqlalchemy_session(sa_session: Any, names: list[str]) -> None:
    from sqlalchemy import text

    with isolated_example(sa_session) as session:
        for name in names:
            session.execute(text("INSERT INTO items (name) VALUES (:n)"), {"n": name})
        session.flush()
        got = session.execute(text("SELECT name FROM items ORDER BY id")).scalars().all()
        assert got == names


@FIXTURE_OK
@given(t=sql_text("sqlite"), i=sql_integers("sqlite"), ts=sql_datetimes("sqlite"))
def test_values_round_trip_through_sqlite(t: str, i: int, ts: dt.datetime) -> None:
    import sqlite3

    conn = sqlite3.connect(":memory:", detect_types=sqlite3.PARSE_DECLTYPES)
    conn.execute("CREATE TABLE rt (t text, i integer, ts text)")
    with isolated_example(conn):
        conn.execute("INSERT INTO rt VALUES (?, ?, ?)", (t, i, ts.isoformat()))
        got = conn.execute("SELECT t, i, ts FROM rt").fetchall()
        assert got == [(t, i, ts.isoformat())]
    assert conn.execute("SELECT count(*) FROM rt").fetchone() == (0,)
    conn.close()


# ------------------------------------------------------------------ models


@dataclasses.dataclass
class Address:
    city: Annotated[str, pytest.importorskip("annotated_types").MinLen(2)]
    zip: str


@dataclasses.dataclass
class Person:
    age: Annotated[int, pytest.importorskip("annotated_types").Ge(0)]
    address: Address
    kind: Literal["a", "b"]
    nickname: str | None = None


@given(from_model(Person))
def test_dataclass_constraints(person: Person) -> None:
    assert person.age >= 0
    assert len(person.address.city) >= 2
    assert person.kind in ("a", "b")


def test_pydantic_constraints() -> None:
    pydantic = pytest.importorskip("pydantic")

    class Item(pydantic.BaseModel):
        sku: str = pydantic.Field(pattern=r"^[A-Z]{3}-\d{4}$")
        qty: int = pydantic.Field(ge=1, le=99)
        price: decimal.Decimal = pydantic.Field(max_digits=6, decimal_places=2)
        tags: list[str] = pydantic.Field(default_factory=list, max_length=3)
        note: str | None = pydantic.Field(default=None, max_length=10)

    @settings(max_examples=60, deadline=None)
    @given(from_model(Item))
    def check(item: Any) -> None:
        # the model validated it on construction; check the constraints held anyway
        assert re.fullmatch(r"[A-Z]{3}-\d{4}", item.sku)
        assert 1 <= item.qty <= 99
        assert len(item.tags) <= 3

    check()


# ------------------------------------------------------------------ S3, Kafka


_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$")


@given(s3_bucket_names(), s3_keys())
def test_s3_names_follow_the_rules(bucket: str, key: str) -> None:
    assert _BUCKET.match(bucket)
    assert ".." not in bucket
    assert 1 <= len(key.encode()) <= 1024
    assert not key.startswith("/")
    assert "//" not in key
    assert all(seg not in (".", "..") for seg in key.split("/"))


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(key=s3_keys(max_segments=3), body=st.binary(max_size=64))
def test_s3_keys_round_trip_through_s3(aws: Any, key: str, body: bytes) -> None:
    s3 = aws.client("s3")
    bucket = "pc-data-strategies"
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key=key, Body=body)
    listed = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=key)["Contents"]]
    assert key in listed
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == body


@given(kafka_headers(), kafka_topic_names(prefix="t."))
def test_kafka_shapes(headers: list[tuple[str, bytes | None]], topic: str) -> None:
    assert all(k and (v is None or isinstance(v, bytes)) for k, v in headers)
    assert re.fullmatch(r"[a-zA-Z0-9._\-]{1,249}", topic)

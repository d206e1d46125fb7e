"""Factories bound to the test's session and faker, seed files and table snapshots on real
PostgreSQL."""

from __future__ import annotations

import dataclasses
import uuid
from pathlib import Path
from typing import Any

import factory
import pytest
from polyfactory.factories import DataclassFactory
from polyfactory.factories.pydantic_factory import ModelFactory
from polyfactory.factories.sqlalchemy_factory import SQLAlchemyFactory
from pydantic import BaseModel, Field
from sqlalchemy import ForeignKey, String, select
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from pytest_commons.data import (
    Masks,
    VolatileValueError,
    factory_fixture,
    http_exchanges,
    kafka_messages,
    load_seed_file,
    mask_volatile,
    register_factory,
    snapshot_table,
)
from tests.helpers import fixture_file


class Base(DeclarativeBase):
    pass


class Team(Base):
    __tablename__ = "teams"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(50))


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(100))
    name: Mapped[str | None] = mapped_column(String(100))
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id"))


SCHEMA = fixture_file("sql", "postgres", "teams_users.sql").read_text()


@pytest.fixture(autouse=True)
def _schema(request: pytest.FixtureRequest) -> None:
    # per test (a session-scoped postgres_schema override in a module would not win over the
    # template other modules already made)
    if "postgres_tx" in request.fixturenames:
        request.getfixturevalue("postgres_tx").execute(SCHEMA)
    elif "postgres" in request.fixturenames:
        with request.getfixturevalue("postgres").connect() as conn:
            conn.execute(SCHEMA)


class TeamFactory(factory.alchemy.SQLAlchemyModelFactory):
    class Meta:
        model = Team
        sqlalchemy_session_persistence = "flush"

    name = factory.Faker("company")


class UserFactory(factory.alchemy.SQLAlchemyModelFactory):
    class Meta:
        model = User
        sqlalchemy_session_persistence = "flush"

    email = factory.Faker("email")
    name = factory.Faker("name")
    team = factory.SubFactory(TeamFactory)

    @classmethod
    def _create(cls, model_class: Any, *args: Any, **kwargs: Any) -> Any:
        team = kwargs.pop("team")
        return super()._create(model_class, *args, team_id=team.id, **kwargs)


class PolyUserFactory(SQLAlchemyFactory[User]):
    __set_primary_key__ = False
    __set_foreign_keys__ = False

    @classmethod
    def email(cls) -> str:
        return str(cls.__faker__.email())

    @classmethod
    def team_id(cls) -> None:
        return None


class Order(BaseModel):
    id: uuid.UUID
    quantity: int = Field(ge=1, le=10)
    note: str = Field(max_length=20)


class OrderFactory(ModelFactory[Order]):
    pass


@dataclasses.dataclass
class Point:
    x: int
    y: int


class PointFactory(DataclassFactory[Point]):
    pass


register_factory(UserFactory)
register_factory(PolyUserFactory)
order_factory = factory_fixture(OrderFactory)
point_factory = factory_fixture(PointFactory)


def test_factory_boy_creates_in_the_test_session(
    postgres: Any, user_factory: Any, commons_db_session: Any
) -> None:
    users = user_factory.create_batch(3)
    assert all(u.id for u in users)
    commons_db_session.commit()
    with postgres.connect() as conn:
        rows = conn.execute("SELECT email, team_id FROM users ORDER BY id").fetchall()
    assert [r[0] for r in rows] == [u.email for u in users]
    assert all(r[1] is not None for r in rows)  # SubFactory bound to the same session


def test_polyfactory_sqlalchemy_in_the_test_session(
    postgres: Any, poly_user_factory: Any, commons_db_session: Any
) -> None:
    user = poly_user_factory.create_sync()
    assert user.id is not None
    found = commons_db_session.scalars(select(User).where(User.id == user.id)).one()
    assert found.email == user.email
    assert "@" in user.email


def test_polyfactory_models_use_the_seeded_faker(
    order_factory: Any, point_factory: Any, faker: Any
) -> None:
    order = order_factory.build()
    assert 1 <= order.quantity <= 10
    assert len(order.note) <= 20
    assert isinstance(point_factory.build().x, int)
    assert order_factory.__faker__ is faker


def test_same_test_seed_same_factory_data(request: pytest.FixtureRequest, faker: Any) -> None:
    from pytest_commons.data.factories import _Patch, bind

    def build() -> list[Any]:
        faker.seed_instance(request.getfixturevalue("commons_test_seed"))
        patch = _Patch()
        try:
            bind(OrderFactory, request, patch)
            return [OrderFactory.build().model_dump() for _ in range(3)]
        finally:
            patch.undo()

    first = build()
    assert first == build()
    assert first[0] != first[1]


# ------------------------------------------------------------------ seed files, snapshots


@pytest.fixture
def seed_dir() -> Path:
    # teams.csv, users.json and more.sql (a semicolon inside a quote and inside a comment)
    return fixture_file("seed", "teams_users", "teams.csv").parent


def test_load_seed_files_and_snapshot_table(postgres_tx: Any, seed_dir: Path) -> None:
    assert load_seed_file(postgres_tx, "teams.csv", base=seed_dir) == 2
    assert load_seed_file(postgres_tx, "users.json", base=seed_dir) == 2
    load_seed_file(postgres_tx, "more.sql", base=seed_dir)
    assert snapshot_table(postgres_tx, "users", order_by="id") == [
        {"id": 1, "email": "a@x.io", "name": None, "team_id": 2},
        {"id": 2, "email": "b@x.io", "name": "B", "team_id": 1},
        {"id": 3, "email": "c;d@x.io", "name": None, "team_id": None},
        {"id": 4, "email": "d@x.io", "name": None, "team_id": None},
    ]
    assert snapshot_table(postgres_tx, "teams", columns=["name"]) == [
        {"name": "Blue"},
        {"name": "Red"},
    ]


def test_snapshot_table_through_sqlalchemy(postgres: Any, commons_db_session: Any) -> None:
    commons_db_session.add_all([Team(id=7, name="Z"), Team(id=3, name="A")])
    commons_db_session.flush()
    assert snapshot_table(commons_db_session, "teams", order_by="id") == [
        {"id": 3, "name": "A"},
        {"id": 7, "name": "Z"},
    ]


def test_mask_volatile() -> None:
    a, b = str(uuid.uuid4()), str(uuid.uuid4())
    doc = {
        "id": 17,
        "owner": {"id": 4, "ref": a},
        "items": [{"ref": b, "at": "2024-05-01T10:00:00.123Z", "etag": "x1"}, {"ref": a}],
        "request_id": "r-99",
    }
    assert mask_volatile(doc, id_keys=("id",), paths=("$.items[*].etag", "$..request_id")) == {
        "id": "<id:1>",
        "owner": {"id": "<id:2>", "ref": "<uuid:1>"},
        "items": [
            {"ref": "<uuid:2>", "at": "<datetime>", "etag": "<masked>"},
            {"ref": "<uuid:1>"},
        ],
        "request_id": "<masked>",
    }
    with pytest.raises(VolatileValueError, match=r"\$\.owner\.ref.*looks like a uuid"):
        mask_volatile(doc, Masks(auto=False, strict=True))


def test_http_exchanges_and_kafka_messages() -> None:
    recorded = [
        {
            "httpRequest": {
                "method": "POST",
                "path": "/orders",
                "headers": {"Host": ["127.0.0.1:5555"], "Content-Type": ["application/json"]},
                "body": {"type": "JSON", "json": {"qty": 2}},
            },
            "httpResponse": {
                "statusCode": 201,
                "headers": {"Date": ["Mon"], "Location": ["/orders/1"]},
                "body": '{"id": 1}',
            },
            "timestamp": "2024-01-01T00:00:00.000Z",
        }
    ]
    assert http_exchanges(recorded) == [
        {
            "request": {
                "method": "POST",
                "path": "/orders",
                "headers": {"content-type": "application/json"},
                "body": {"qty": 2},
            },
            "response": {"status": 201, "headers": {"location": "/orders/1"}, "body": {"id": 1}},
        }
    ]
    msgs = [{"key": b"k1", "value": b'{"a": 1}', "headers": [("h", b"v")], "offset": 9}]
    assert kafka_messages(msgs) == [{"key": "k1", "value": {"a": 1}, "headers": [["h", "v"]]}]

"""Factories bound to ``sql_db`` on every relational backend (own run: its own sql_schema)."""

from __future__ import annotations

import pytest

CONFTEST = """
import pytest
from sqlalchemy import MetaData, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(200))


@pytest.fixture(scope="session")
def sql_schema() -> MetaData:
    return Base.metadata
"""

TESTS = """
import factory
import pytest
from factory.alchemy import SQLAlchemyModelFactory
from sqlalchemy import func, select

from conftest import User
from pytest_commons.data import register_factory


class UserFactory(SQLAlchemyModelFactory):
    class Meta:
        model = User
        sqlalchemy_session_persistence = "commit"

    email = factory.Faker("email")


register_factory(UserFactory)


@pytest.mark.backends("postgres", "mysql", "sqlite")
def test_factory_creates_in_the_tests_session(sql_db, user_factory):
    users = user_factory.create_batch(3)
    assert sql_db.session.scalar(select(func.count()).select_from(User)) == 3
    assert all("@" in u.email for u in users)


@pytest.mark.backends("postgres", "mysql", "sqlite")
def test_and_it_is_rolled_back(sql_db):
    assert sql_db.session.scalar(select(func.count()).select_from(User)) == 0
"""


@pytest.mark.parametrize("xdist", [[], ["-n", "2"]], ids=["plain", "xdist"])
def test_factories_bind_to_sql_db(
    pytester: pytest.Pytester, clean_env: pytest.MonkeyPatch, xdist: list[str]
) -> None:
    if xdist:
        pytest.importorskip("xdist")
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_factories=TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", *xdist)
    result.assert_outcomes(passed=6)

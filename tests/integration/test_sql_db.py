"""sql_db against real servers: ids, rollback isolation (incl. application commits), async
sessions, the schema hook, markers."""

from __future__ import annotations

from typing import Any

import pytest

sa = pytest.importorskip("sqlalchemy")
pytest.importorskip("pytest_asyncio")

from sqlalchemy import Column, Integer, MetaData, String, Table, func, select, text  # noqa: E402
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column  # noqa: E402

metadata = MetaData()
notes = Table(
    "notes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("body", String(100), nullable=False),
)


class Base(DeclarativeBase):
    metadata = metadata


class Tag(Base):
    __tablename__ = "tags"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(50), unique=True)


@pytest.fixture(scope="session")
def sql_schema() -> MetaData:
    return metadata


ALL = ("postgres", "mysql", "sqlite")
SCHEMES = {"postgres": "postgresql+psycopg://", "mysql": "mysql+pymysql://", "sqlite": "sqlite:///"}


def _count(conn_or_session: Any, table: Any = notes) -> int:
    return int(conn_or_session.execute(select(func.count()).select_from(table)).scalar_one())


@pytest.mark.backends(*ALL)
def test_ids_urls_and_markers(sql_db: Any, request: pytest.FixtureRequest) -> None:
    assert request.node.name == f"test_ids_urls_and_markers[{sql_db.backend}]"
    assert sql_db.url.startswith(SCHEMES[sql_db.backend])
    assert sql_db.engine.dialect.name == {"postgres": "postgresql"}.get(
        sql_db.backend, sql_db.backend
    )
    marked = {m.name for m in request.node.iter_markers()} & {"postgres", "mysql"}
    assert marked == ({sql_db.backend} - {"sqlite"})
    assert sql_db.connection.execute(text("SELECT 1")).scalar_one() == 1


@pytest.mark.backends(*ALL)
def test_schema_hook_created_tables(sql_db: Any) -> None:
    names = set(sa.inspect(sql_db.connection).get_table_names())
    assert {"notes", "tags"} <= names


# Isolation: the first step commits through every path application code uses; the second,
# run right after it on the same worker's database, must find nothing.
@pytest.mark.backends(*ALL)
@pytest.mark.parametrize("step", ["write", "check"])
def test_commit_is_rolled_back(sql_db: Any, step: str) -> None:
    session = sql_db.session
    assert _count(session) == 0
    assert session.scalars(select(Tag)).all() == []
    if step == "check":
        return
    session.execute(notes.insert().values(body="committed by the app"))
    session.add(Tag(name="t1"))
    session.commit()
    with sql_db.sessionmaker.begin() as other:  # a second session, as a service layer would
        other.add(Tag(name="t2"))
    assert _count(session) == 1
    assert [t.name for t in session.scalars(select(Tag).order_by(Tag.name))] == ["t1", "t2"]
    if sql_db.backend != "sqlite":
        # not really committed: a connection outside the test's transaction sees nothing
        with sql_db.engine.connect() as outside:
            assert _count(outside) == 0


@pytest.mark.backends(*ALL)
def test_app_rollback_and_nested_savepoints(sql_db: Any) -> None:
    session = sql_db.session
    session.execute(notes.insert().values(body="kept"))
    session.commit()
    session.execute(notes.insert().values(body="dropped"))
    session.rollback()
    assert [r.body for r in session.execute(select(notes))] == ["kept"]
    with session.begin_nested() as nested:
        session.execute(notes.insert().values(body="inner"))
        nested.rollback()
    assert _count(session) == 1


@pytest.mark.backends(*ALL)
def test_integrity_error_then_more_work(sql_db: Any) -> None:
    session = sql_db.session
    session.add(Tag(name="dup"))
    session.commit()
    session.add(Tag(name="dup"))
    with pytest.raises(sa.exc.IntegrityError):
        session.commit()
    session.rollback()
    session.add(Tag(name="other"))
    session.commit()
    assert sorted(session.scalars(select(Tag.name))) == ["dup", "other"]


@pytest.mark.asyncio
@pytest.mark.backends(*ALL)
@pytest.mark.parametrize("step", ["write", "check"])
async def test_async_commit_is_rolled_back(sql_db: Any, step: str) -> None:
    session = sql_db.async_session
    assert (await session.execute(select(func.count()).select_from(notes))).scalar_one() == 0
    if step == "check":
        return
    session.add(Tag(name="async"))
    await session.execute(notes.insert().values(body="async commit"))
    await session.commit()
    async with sql_db.async_sessionmaker() as other:
        other.add(Tag(name="async2"))
        await other.commit()
    count = await session.execute(select(func.count()).select_from(Tag))
    assert count.scalar_one() == 2
    assert sql_db.async_url.split("://")[0] in {
        "postgresql+psycopg_async",
        "mysql+aiomysql",
        "sqlite+aiosqlite",
    }


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.backends(*ALL)
@pytest.mark.parametrize("step", [1, 2])
async def test_async_module_loop(sql_db: Any, step: int) -> None:
    conn = sql_db.async_connection
    assert (await conn.execute(select(func.count()).select_from(notes))).scalar_one() == 0
    await conn.execute(notes.insert().values(body=f"module loop {step}"))


def test_async_api_in_a_sync_test_says_what_to_do(sql_db: Any) -> None:
    with pytest.raises(RuntimeError, match=r"pytest\.mark\.asyncio"):
        _ = sql_db.async_session

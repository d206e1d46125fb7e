"""check_migrations walks real Alembic histories on real databases."""

from __future__ import annotations

import contextlib
import functools
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("sqlalchemy")
pytest.importorskip("alembic")

from pytest_commons.sql import sqlalchemy_url
from pytest_commons.sql.migrations import MigrationError, check_migrations

REV = '''"""{doc}"""
from alembic import op
import sqlalchemy as sa

revision = {rev!r}
down_revision = {down!r}
branch_labels = None
depends_on = None


def upgrade():
{up}


def downgrade():
{down_body}
'''

GOOD = [
    ("a1", "create users", None,
     'op.create_table("users", sa.Column("id", sa.Integer, primary_key=True))',
     'op.drop_table("users")'),
    ("b2", "add users.email", "a1",
     'op.add_column("users", sa.Column("email", sa.String(100)))\n'
     'op.create_index("ix_users_email", "users", ["email"])',
     'op.drop_index("ix_users_email", table_name="users")\n'
     'op.drop_column("users", "email")'),
    ("c3", "create orders", "b2",
     'op.create_table("orders", sa.Column("id", sa.Integer, primary_key=True),\n'
     '    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id")))',
     'op.drop_table("orders")'),
]  # fmt: skip


Revisions = list[tuple[str, str, str | None, str, str]]


@pytest.fixture
def make_project(alembic_env_py: str) -> Callable[[Path, Revisions], Path]:
    """Writes an Alembic project with the given revisions under a folder; returns its ini."""
    return functools.partial(_make_project, env_py=alembic_env_py)


def _make_project(root: Path, revisions: Revisions, env_py: str) -> Path:
    (root / "migrations" / "versions").mkdir(parents=True)
    (root / "migrations" / "env.py").write_text(env_py)
    (root / "alembic.ini").write_text(
        "[alembic]\nscript_location = migrations\nsqlalchemy.url = sqlite://\n"
    )
    for rev, doc, down, up, down_body in revisions:
        indent = lambda code: textwrap.indent(code, "    ")  # noqa: E731
        (root / "migrations" / "versions" / f"{rev}.py").write_text(
            REV.format(doc=doc, rev=rev, down=down, up=indent(up), down_body=indent(down_body))
        )
    return root / "alembic.ini"


def _mysql_db(request: pytest.FixtureRequest, name: str) -> Iterator[str]:
    import importlib.util

    if importlib.util.find_spec("pytest_commons.services.mysql.spec") is None:
        pytest.skip("this pytest-commons has no MySQL service module")
    import pymysql

    from pytest_commons.plugin.state import service_handle

    info = service_handle(request, "mysql").info
    conn = pymysql.connect(
        host=info.host, port=info.port, user=info.user, password=info.password or "",
        autocommit=True, ssl_disabled=True,
    )  # fmt: skip
    try:
        with conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE `{name}`")
        yield sqlalchemy_url(
            "mysql", host=info.host, port=info.port, user=info.user,
            password=info.password or "", database=name,
        )  # fmt: skip
    finally:
        with conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        conn.close()


@pytest.fixture(params=["postgres", "mysql", "sqlite"])
def empty_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A SQLAlchemy URL of an empty database on each backend."""
    if request.param == "sqlite":
        yield sqlalchemy_url("sqlite", database=str(tmp_path / "mig.db"))
    elif request.param == "postgres":
        pg: Any = request.getfixturevalue("postgres")
        info = pg.info
        yield sqlalchemy_url(
            "postgres", host=info.host, port=info.port, user=info.user,
            password=info.password, database=pg.name,
        )  # fmt: skip
    else:
        name = f"pc_mig_{abs(hash(request.node.nodeid)) % 10**8}"
        yield from _mysql_db(request, name)


def test_good_history_passes(
    empty_db: str, tmp_path: Path, make_project: Callable[[Path, Revisions], Path]
) -> None:
    ini = make_project(tmp_path / "proj", GOOD)
    report = check_migrations(ini, empty_db)
    assert report.revisions == ["a1", "b2", "c3"]


def test_downgrade_that_fails_names_the_revision(
    empty_db: str, tmp_path: Path, make_project: Callable[[Path, Revisions], Path]
) -> None:
    broken = [*GOOD[:2], (*GOOD[2][:4], 'op.drop_table("no_such_table")')]
    ini = make_project(tmp_path / "proj", broken)
    with pytest.raises(MigrationError) as info:
        check_migrations(ini, empty_db)
    err = info.value
    assert (err.revision, err.step) == ("c3", "downgrade")
    assert "migration c3 ('create orders') fails at step 'downgrade'" in str(err)
    assert "no_such_table" in str(err)  # the database's own error


def test_downgrade_that_leaves_things_behind_fails_on_the_second_upgrade(
    empty_db: str, tmp_path: Path, make_project: Callable[[Path, Revisions], Path]
) -> None:
    broken = [*GOOD[:2], (*GOOD[2][:4], "pass")]  # forgets to drop the table
    ini = make_project(tmp_path / "proj", broken)
    with pytest.raises(MigrationError) as info:
        check_migrations(ini, empty_db)
    assert (info.value.revision, info.value.step) == ("c3", "upgrade again")
    assert "orders" in str(info.value)


def test_upgrade_only_mode_skips_downgrades(
    empty_db: str, tmp_path: Path, make_project: Callable[[Path, Revisions], Path]
) -> None:
    broken = [*GOOD[:2], (*GOOD[2][:4], 'op.drop_table("no_such_table")')]
    ini = make_project(tmp_path / "proj", broken)
    assert check_migrations(ini, empty_db, downgrade=False).revisions == ["a1", "b2", "c3"]


def test_several_heads_are_refused(
    tmp_path: Path, make_project: Callable[[Path, Revisions], Path]
) -> None:
    forked = [GOOD[0], GOOD[1], ("x9", "fork", "a1", "pass", "pass")]
    ini = make_project(tmp_path / "proj", forked)
    with pytest.raises(ValueError, match="several heads"):
        check_migrations(ini, sqlalchemy_url("sqlite", database=str(tmp_path / "f.db")))
    with contextlib.suppress(FileNotFoundError):
        (tmp_path / "f.db").unlink()

"""With --reuse-services, a schema's template is kept on the kept server across runs, keyed by
the schema's content: the second run does not run the schema again; a changed schema builds
only its own template; --create-db builds them again (pytest-django's --reuse-db/--create-db).
Inner runs against a real local PostgreSQL kept between them."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("psycopg")

pytestmark = pytest.mark.usefixtures("clean_env")

ARGS = [
    "-p",
    "no:cacheprovider",
    "-p",
    "no:asyncio",
    "--postgres-backend=local",
    "--reuse-services",
]

SUITE = """
import os
import pytest

@pytest.fixture(scope="session")
def postgres_schema():
    def migrate(conn):
        with open(os.environ["MIGRATIONS_LOG"], "a") as log:
            log.write("VERSION\\n")
        conn.execute("CREATE TABLE items (id int PRIMARY KEY, name text)")
        conn.execute("INSERT INTO items VALUES (1, 'seeded by VERSION')")
    return migrate

def test_sees_the_schema(postgres):
    with postgres.connect() as conn:
        assert conn.execute("SELECT name FROM items").fetchall() == [("seeded by VERSION",)]

def test_rollback_fixture_sees_it_too(postgres_tx):
    assert postgres_tx.execute("SELECT count(*) FROM items").fetchone() == (1,)

@pytest.mark.parametrize("n", range(3))
def test_more(postgres, n):
    with postgres.connect() as conn:
        conn.execute("INSERT INTO items VALUES (2, 'mine')")
"""


def _runs(log: Path) -> list[str]:
    return log.read_text().split() if log.exists() else []


@pytest.mark.parametrize("workers", [0, 2], ids=["no-xdist", "xdist"])
def test_the_schema_runs_once_across_runs(
    pytester: pytest.Pytester, private_runtime: Path, clean_env: pytest.MonkeyPatch, workers: int
) -> None:
    log = pytester.path / "migrations.log"
    clean_env.setenv("MIGRATIONS_LOG", str(log))
    pytester.makepyfile(test_schema=SUITE.replace("VERSION", "v1"))
    xdist = ["-n", str(workers)] if workers else []
    pytester.runpytest_subprocess(*ARGS, *xdist).assert_outcomes(passed=5)
    assert _runs(log) == ["v1"]  # once, for every worker
    pytester.runpytest_subprocess(*ARGS, *xdist).assert_outcomes(passed=5)
    assert _runs(log) == ["v1"]  # the second run cloned the kept template
    # a changed schema builds its own template (the old one is not touched)
    pytester.makepyfile(test_schema=SUITE.replace("VERSION", "v2"))
    pytester.runpytest_subprocess(*ARGS, *xdist).assert_outcomes(passed=5)
    assert _runs(log) == ["v1", "v2"]
    pytester.runpytest_subprocess(*ARGS, *xdist).assert_outcomes(passed=5)
    assert _runs(log) == ["v1", "v2"]
    # --create-db builds it again, once for the run
    pytester.runpytest_subprocess(*ARGS, *xdist, "--create-db").assert_outcomes(passed=5)
    assert _runs(log) == ["v1", "v2", "v2"]


def test_without_reuse_the_schema_runs_every_run(
    pytester: pytest.Pytester, private_runtime: Path, clean_env: pytest.MonkeyPatch
) -> None:
    log = pytester.path / "migrations.log"
    clean_env.setenv("MIGRATIONS_LOG", str(log))
    pytester.makepyfile(test_schema=SUITE.replace("VERSION", "v1"))
    args = [a for a in ARGS if a != "--reuse-services"]
    pytester.runpytest_subprocess(*args).assert_outcomes(passed=5)
    pytester.runpytest_subprocess(*args).assert_outcomes(passed=5)
    assert _runs(log) == ["v1", "v1"]


def test_a_failing_schema_is_not_kept(
    pytester: pytest.Pytester, private_runtime: Path, clean_env: pytest.MonkeyPatch
) -> None:
    log = pytester.path / "migrations.log"
    clean_env.setenv("MIGRATIONS_LOG", str(log))
    broken = SUITE.replace("VERSION", "v1").replace("INSERT INTO items", "INSERT INTO nowhere")
    pytester.makepyfile(test_schema=broken)
    first = pytester.runpytest_subprocess(*ARGS)
    first.assert_outcomes(errors=5)
    second = pytester.runpytest_subprocess(*ARGS)
    second.assert_outcomes(errors=5)
    assert _runs(log) == ["v1", "v1"]  # tried again: a half-made template is never cloned


MIGRATION = """
import os

from alembic import op

revision = "REV"
down_revision = DOWN


def upgrade():
    with open(os.environ["MIGRATIONS_LOG"], "a") as log:
        log.write("REV\\n")
    op.execute("CREATE TABLE IF NOT EXISTS items (id int PRIMARY KEY)")
    op.execute("ALTER TABLE items ADD COLUMN col_REV int")


def downgrade():
    pass
"""

SQL_SUITE = """
from pathlib import Path

import pytest
from sqlalchemy import text

pytestmark = pytest.mark.backends("postgres")


@pytest.fixture(scope="session")
def sql_schema():
    return Path(__file__).parent / "alembic.ini"


@pytest.mark.parametrize("n", range(3))
def test_migrated(sql_db, n):
    columns = sql_db.connection.execute(
        text("SELECT column_name FROM information_schema.columns WHERE table_name = 'items'")
    ).scalars()
    assert sorted(columns) == sorted(["id", *COLUMNS])
"""


def _migrations(root: Path, env_py: str, revisions: list[str]) -> None:
    versions = root / "migrations" / "versions"
    versions.mkdir(parents=True, exist_ok=True)
    (root / "migrations" / "env.py").write_text(env_py)
    (root / "alembic.ini").write_text("[alembic]\nscript_location = migrations\n")
    down = "None"
    for rev in revisions:
        text = MIGRATION.replace("REV", rev).replace("DOWN", down)
        (versions / f"{rev}.py").write_text(text)
        down = repr(rev)
    columns = repr([f"col_{rev}" for rev in revisions])
    (root / "test_sql.py").write_text(SQL_SUITE.replace("COLUMNS", columns))


def test_alembic_migrations_run_once_across_runs(
    pytester: pytest.Pytester,
    private_runtime: Path,
    clean_env: pytest.MonkeyPatch,
    alembic_env_py: str,
) -> None:
    """sql_db with Alembic: the second run does not migrate; a new revision migrates once."""
    pytest.importorskip("alembic")
    log = pytester.path / "migrations.log"
    clean_env.setenv("MIGRATIONS_LOG", str(log))
    _migrations(pytester.path, alembic_env_py, ["r1"])
    pytester.runpytest_subprocess(*ARGS).assert_outcomes(passed=3)
    pytester.runpytest_subprocess(*ARGS).assert_outcomes(passed=3)
    assert _runs(log) == ["r1"]
    _migrations(pytester.path, alembic_env_py, ["r1", "r2"])
    pytester.runpytest_subprocess(*ARGS).assert_outcomes(passed=3)
    pytester.runpytest_subprocess(*ARGS).assert_outcomes(passed=3)
    assert _runs(log) == ["r1", "r1", "r2"]  # a template of its own, migrated from scratch

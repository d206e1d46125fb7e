"""A schema that fails (issue 17, item 10): every test that needs it shows the original error,
not "database … already exists" from a second attempt at the same template name."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.usefixtures("clean_env", "outer_services_settled")

SCHEMAS = {
    "postgres-sql": (
        "postgres",
        "'CREATE TABLE t (id int); CREATE TABLE t (id int)'",
        'relation "t" already exists',
    ),
    "postgres-callable": ("postgres", "_broken", "schema script broke on purpose"),
    "mysql-sql": (
        "mysql",
        "'CREATE TABLE t (id int); CREATE TABLE t (id int)'",
        "Table 't' already exists",
    ),
    "mysql-callable": ("mysql", "_broken", "schema script broke on purpose"),
}

INNER = """
import pytest


def _broken(conn):
    raise RuntimeError("schema script broke on purpose")


@pytest.fixture(scope="session")
def {svc}_schema():
    return {schema}


@pytest.mark.parametrize("n", range(3))
def test_needs_the_schema({svc}, n):
    pass
"""


@pytest.mark.parametrize("case", list(SCHEMAS))
def test_every_test_needing_a_failed_schema_shows_the_original_error(
    pytester: pytest.Pytester, case: str
) -> None:
    svc, schema, error = SCHEMAS[case]
    pytester.makepyfile(INNER.format(svc=svc, schema=schema))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", f"--{svc}-backend=local")
    result.assert_outcomes(errors=3)
    text = result.stdout.str()
    assert "already exists" not in text.replace(error, "")  # no "database … already exists"
    # the first test shows the traceback, the two later ones the original error in one line
    assert text.count(error) >= 3, text[-3000:]
    assert text.count(f"{svc}_schema failed (in an earlier test of this worker): ") == 2

"""The data plugin seen from pytest: the run seed, faker reproducibility (also under xdist),
Hypothesis profiles, the seed_data marker and its errors."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.usefixtures("clean_env")
# inner runs load every installed plugin: these tests check how ours lives beside them
INNER_ALL_PLUGINS = True

RECORDER = """
import json, os

def _record(nodeid, values):
    with open(os.environ["DATA_OUT"], "a") as f:
        f.write(json.dumps([nodeid, values]) + "\\n")

def test_a(faker, request):
    _record(request.node.nodeid, [faker.name(), faker.email(), faker.pyint()])

def test_b(faker, request):
    _record(request.node.nodeid, [faker.address(), faker.uuid4()])

def test_c(faker, commons_test_seed, request):
    _record(request.node.nodeid, [faker.sentence(), commons_test_seed])

def test_d(faker, request):
    _record(request.node.nodeid, [faker.iban()])
"""


def _values(pytester: pytest.Pytester, *args: str) -> dict[str, object]:
    out = pytester.path / f"out-{len(list(pytester.path.glob('out-*')))}.jsonl"
    pytester._monkeypatch.setenv("DATA_OUT", str(out))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", *args)
    result.assert_outcomes(passed=4)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    return {nodeid: values for nodeid, values in rows}


def test_seed_in_header_and_failure_report(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        def test_ok(faker):
            assert faker.name()

        def test_fails(faker):
            assert faker.pyint() < 0
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--commons-seed=12345")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "commons: seed 12345 (replay with --commons-seed=12345)",
            "*_ test_fails _*",
            "*- commons -*",
            "seed 12345 (replay with --commons-seed=12345)",
        ]
    )
    # the passing test has no seed section
    assert result.stdout.str().count("replay with") == 2


def test_random_seed_is_printed_and_replays(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(RECORDER)
    first = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q", "-rN", "-v")
    header = [line for line in first.stdout.lines if line.startswith("commons: seed ")]
    assert len(header) == 1, first.stdout.str()
    seed = header[0].split()[2]
    assert seed.isdigit()
    assert _values(pytester, f"--commons-seed={seed}") == _values(
        pytester, f"--commons-seed={seed}"
    )


def test_same_seed_same_values_other_seed_other_values(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(RECORDER)
    one = _values(pytester, "--commons-seed=777")
    two = _values(pytester, "--commons-seed=777")
    other = _values(pytester, "--commons-seed=778")
    assert one == two
    assert len(one) == 4
    for nodeid in one:
        assert one[nodeid] != other[nodeid]
    # a test's values do not depend on which other tests ran before it
    alone = _values(
        pytester,
        "--commons-seed=777",
        "-k",
        "test_c or test_a or test_b or test_d",
        "-p",
        "no:randomly",
    )
    assert alone == one


def test_seed_from_env_and_ini(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(RECORDER)
    by_flag = _values(pytester, "--commons-seed=4242")
    pytester._monkeypatch.setenv("PYTEST_COMMONS_COMMONS_SEED", "4242")
    assert _values(pytester) == by_flag
    pytester._monkeypatch.delenv("PYTEST_COMMONS_COMMONS_SEED")
    pytester.makeini("[pytest]\ncommons_seed = 4242\n")
    assert _values(pytester) == by_flag


def test_xdist_workers_share_the_run_seed(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(RECORDER)
    serial = _values(pytester, "--commons-seed=31337")
    parallel = _values(pytester, "--commons-seed=31337", "-n", "2")
    assert parallel == serial
    # without a seed the controller picks one and hands it to both workers: the values of a
    # replay with the printed seed match
    out = pytester.path / "random.jsonl"
    pytester._monkeypatch.setenv("DATA_OUT", str(out))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-n", "2")
    result.assert_outcomes(passed=4)
    seed = next(
        line.split()[2] for line in result.stdout.lines if line.startswith("commons: seed ")
    )
    rows = {n: v for n, v in (json.loads(line) for line in out.read_text().splitlines())}
    assert rows == _values(pytester, f"--commons-seed={seed}")


def test_faker_locale(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        def test_locale(faker):
            assert faker.locales == ["de_DE"]
        """
    )
    pytester.runpytest_subprocess("--faker-locale=de_DE").assert_outcomes(passed=1)


def test_plugin_load_imports_no_data_library(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import sys

        def test_nothing_heavy():
            heavy = {"hypothesis", "polyfactory", "factory", "yaml", "sqlalchemy"}
            assert not heavy & set(sys.modules)
        """
    )
    # other installed plugins import these themselves at load (schemathesis: hypothesis;
    # pytest-randomly: factory-boy, polyfactory and so sqlalchemy), so they are left out here:
    # the claim is about pytest-commons' own plugin
    pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-p", "no:schemathesis", "-p", "no:randomly"
    ).assert_outcomes(passed=1)


HYPOTHESIS_TEST = """
from hypothesis import given, settings, strategies as st

def test_profile():
    print("PROFILE", settings.get_current_profile_name(), settings.default.derandomize,
          settings.default.deadline, settings.default.max_examples)

@given(st.integers())
def test_given(x):
    assert isinstance(x, int)
"""


@pytest.mark.parametrize(
    ("ci", "args", "conftest", "expected"),
    [
        pytest.param("", (), "", "PROFILE default False", id="no-ci"),
        pytest.param("1", (), "", "PROFILE commons-ci True None 200", id="ci"),
        pytest.param(
            "true",
            ("--hypothesis-profile=commons-thorough",),
            "",
            "PROFILE commons-thorough False None 2000",
            id="ci-cli-wins",
        ),
        pytest.param(
            "",
            ("--hypothesis-profile=commons-dev",),
            "",
            "PROFILE commons-dev False None 25",
            id="cli-dev",
        ),
        pytest.param(
            "1",
            (),
            "from hypothesis import settings\n"
            "settings.register_profile('mine', max_examples=7)\n"
            "settings.load_profile('mine')\n",
            "PROFILE mine True None 7",
            id="ci-user-profile-wins",
        ),
    ],
)
def test_hypothesis_profiles(
    pytester: pytest.Pytester, ci: str, args: tuple[str, ...], conftest: str, expected: str
) -> None:
    if ci:
        pytester._monkeypatch.setenv("CI", ci)
    pytester._monkeypatch.setenv("PYTEST_COMMONS_SERVICES_MISSING", "skip")
    pytester.makepyfile(test_h=HYPOTHESIS_TEST)
    if conftest:
        pytester.makeconftest(conftest)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-s", *args)
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines([f"*{expected}*"])


SEED_TEST = """
import pytest

@pytest.mark.seed_data("{path}")
def test_seeded(postgres_tx):
    rows = postgres_tx.execute("SELECT id, email FROM users ORDER BY id").fetchall()
    assert rows == [(1, "a@example.com"), (2, "b@example.com")]


@pytest.mark.seed_data("{path}")
def test_seeded_database(postgres):
    with postgres.connect() as conn:
        rows = conn.execute("SELECT id, email FROM users ORDER BY id").fetchall()
    assert rows == [(1, "a@example.com"), (2, "b@example.com")]
"""

SCHEMA = """
import pytest

@pytest.fixture(scope="session")
def postgres_schema():
    return "CREATE TABLE users (id int PRIMARY KEY, email text NOT NULL, name text)"
"""


def _seed_project(pytester: pytest.Pytester, rel: str, content: str) -> None:
    pytester.makeconftest(SCHEMA)
    target = pytester.path / rel
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(content)
    pytester.makepyfile(test_seed=SEED_TEST.format(path=rel))


def test_seed_data_loads_before_the_test(pytester: pytest.Pytester) -> None:
    _seed_project(
        pytester,
        "fixtures/users.yaml",
        "users:\n  - {id: 1, email: a@example.com}\n  - {id: 2, email: b@example.com, name: B}\n",
    )
    pytester.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=2)


def test_seed_data_on_one_parameter_and_a_class(pytester: pytest.Pytester) -> None:
    """The marker works per parametrized case and on a class; unmarked siblings get nothing
    (and never set the seed fixture up)."""
    pytester.makeconftest(SCHEMA)
    (pytester.path / "users.json").write_text('{"users": [{"id": 1, "email": "a@example.com"}]}')
    pytester.makepyfile(
        """
        import pytest

        def count(conn):
            return conn.execute("SELECT count(*) FROM users").fetchone()[0]

        @pytest.mark.parametrize(
            "expected", [pytest.param(1, marks=pytest.mark.seed_data("users.json")), 0, 0]
        )
        def test_param(postgres_tx, request, expected):
            assert count(postgres_tx) == expected
            assert ("_commons_seed_data" in request.fixturenames) == (expected == 1)

        @pytest.mark.seed_data("users.json")
        class TestSeeded:
            def test_in_class(self, postgres_tx):
                assert count(postgres_tx) == 1
        """
    )
    pytester.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=4)


def test_seed_data_unknown_column_names_file_row_and_columns(pytester: pytest.Pytester) -> None:
    _seed_project(
        pytester,
        "fixtures/users.yaml",
        "users:\n  - {id: 1, email: a@example.com}\n  - {id: 2, email: b@example.com}\n"
        "  - {id: 3, emial: c@example.com}\n",
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(
        [
            "*seed_data: fixtures/users.yaml: table users, row 3: unknown column 'emial' "
            "(columns: id, email, name)*"
        ]
    )


def test_seed_data_database_error_names_the_row(pytester: pytest.Pytester) -> None:
    _seed_project(pytester, "fixtures/users.csv", "id,email,name\n1,a@example.com,A\n2,,B\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(["*fixtures/users.csv: table users, row 2: NotNullViolation*"])


def test_seed_data_missing_file_and_missing_database(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.seed_data("nope/users.json")
        def test_missing_file(postgres_tx):
            pass

        @pytest.mark.seed_data("users.json")
        def test_no_database():
            pass
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(
        [
            "*nope/users.json: seed file not found*",
            "*seed_data needs a database in the test: use one of sql_db, postgres_tx*",
        ]
    )


def test_seed_data_marker_is_registered(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_subprocess("--markers")
    result.stdout.fnmatch_lines(["@pytest.mark.seed_data(*paths): load YAML/JSON*"])


def test_snapshot_json_masks_volatile_values_so_reruns_pass(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        import pytest
        from pytest_commons.data import Masks

        @pytest.fixture
        def snapshot_json_masks():
            return Masks(id_keys=("id",), paths=("$.meta.etag",))
        """
    )
    pytester.makepyfile(
        test_snap="""
        import datetime, random, uuid

        def test_doc(snapshot_json):
            ref = str(uuid.uuid4())
            doc = {"id": random.randint(1, 10**9), "ref": ref, "again": ref,
                   "at": datetime.datetime.now().isoformat(),
                   "meta": {"etag": random.random()}, "name": "stable"}
            assert doc == snapshot_json
        """
    )
    pytester.runpytest_subprocess("-p", "no:cacheprovider", "--snapshot-update").assert_outcomes(
        passed=1
    )
    written = next(pytester.path.rglob("*.json")).read_text()
    assert '"<uuid:1>"' in written
    assert '"<id:1>"' in written
    assert '"<datetime>"' in written
    assert '"etag": "<masked>"' in written
    # new random values, same snapshot
    pytester.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=1)
    pytester.makepyfile(
        test_snap="""
        def test_doc(snapshot_json):
            assert {"id": 1, "ref": "x", "again": "y", "at": "2024-01-01T00:00:00",
                    "meta": {"etag": 1}, "name": "changed"} == snapshot_json
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)

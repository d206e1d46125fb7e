"""examples/ci/github-actions.yml: consistent with the plugin's real options, and its commands
work — the service-container job's pytest command runs here against servers of this run, and
the coverage job's commands combine and gate what it measured."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from pytest_commons import coverage_gate
from pytest_commons.core.registry import ServiceHandle
from pytest_commons.plugin.options import OPTIONS
from pytest_commons.services import SERVICES

yaml = pytest.importorskip("yaml")

TEMPLATE = Path(__file__).resolve().parents[2] / "examples" / "ci" / "github-actions.yml"
KNOWN = {o.env: o for o in OPTIONS.values()} | {coverage_gate.OPTION.env: coverage_gate.OPTION}


@pytest.fixture(scope="module")
def workflow() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(TEMPLATE.read_text())
    return data


def _envs(workflow: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Every env block: the workflow's, each job's, each step's."""
    blocks = [("workflow", workflow.get("env") or {})]
    for name, job in workflow["jobs"].items():
        blocks.append((name, job.get("env") or {}))
        for step in job.get("steps", []):
            blocks.append((f"{name}: {step.get('name', step.get('uses'))}", step.get("env") or {}))
    return blocks


def _runs(job: dict[str, Any]) -> list[str]:
    return [step["run"] for step in job.get("steps", []) if "run" in step]


def _pytest_command(job: dict[str, Any]) -> list[str]:
    commands = [shlex.split(r) for r in _runs(job) if "pytest" in shlex.split(r)[:3]]
    assert len(commands) == 1, f"one pytest command per job, got {commands}"
    assert commands[0][:3] == ["python", "-m", "pytest"]
    return commands[0]


def test_jobs(workflow: dict[str, Any]) -> None:
    jobs = workflow["jobs"]
    assert set(jobs) == {"docker", "services", "coverage"}
    assert set(jobs["coverage"]["needs"]) == {"docker", "services"}
    assert jobs["docker"]["env"]["PYTEST_COMMONS_BACKEND_ORDER"] == "docker"
    assert "services" not in jobs["docker"]


def test_every_commons_variable_is_a_real_option(workflow: dict[str, Any]) -> None:
    # anywhere in the file, also in comments and run lines
    named = set(re.findall(r"PYTEST_COMMONS_[A-Z0-9_]+", TEMPLATE.read_text()))
    assert named, "the template sets no pytest-commons option"
    assert named <= set(KNOWN), f"not options of the plugin: {sorted(named - set(KNOWN))}"
    for where, env in _envs(workflow):
        for name, value in env.items():
            if not name.startswith("PYTEST_COMMONS_"):
                continue
            option = KNOWN[name]
            assert isinstance(value, str), f"{where}: {name} must be a string, not {value!r}"
            if option.choices:
                assert value in option.choices, f"{where}: {name}={value!r}"
            if option.key == "backend_order":
                assert set(value.split(",")) <= {"external", "docker", "local"}


def test_service_containers_are_the_external_urls(workflow: dict[str, Any]) -> None:
    job = workflow["jobs"]["services"]
    env = job["env"]
    assert set(job["services"]) == set(SERVICES)
    for name, container in job["services"].items():
        meta = SERVICES[name]
        assert env[f"PYTEST_COMMONS_{name.upper()}_BACKEND"] == "external"
        url = env[OPTIONS[f"{name}_{meta.url_key}"].env]
        parts = urlsplit(url if "://" in url else f"kafka://{url}")
        assert parts.hostname == "127.0.0.1", f"{name}: loopback only, not {parts.hostname}"
        published = {int(p.split(":")[0]): int(p.split(":")[1]) for p in container["ports"]}
        assert parts.port in published, f"{name}: {url} is not a published port {published}"
        if name != "aws":  # the AWS endpoint is moto server, not the LocalStack image
            assert container["image"] == meta.default_image
    # the plugin starts nothing in this job: every service is external
    assert env["PYTEST_COMMONS_BACKEND_ORDER"] == "external"


def test_coverage_job_combines_what_the_test_jobs_upload(workflow: dict[str, Any]) -> None:
    jobs = workflow["jobs"]
    uploads = {}
    for name in ("docker", "services"):
        data_file = jobs[name]["env"]["COVERAGE_FILE"]
        assert data_file.startswith(".coverage."), "coverage combine finds .coverage.* files"
        assert jobs[name]["env"]["PYTEST_COMMONS_COVERAGE_GATE"] == "off"
        (upload,) = [s for s in jobs[name]["steps"] if "upload-artifact" in s.get("uses", "")]
        assert upload["with"]["path"] == data_file
        assert upload["with"]["include-hidden-files"] is True
        uploads[upload["with"]["name"]] = data_file
        command = _pytest_command(jobs[name])
        assert "--cov" in command
        assert "--cov-branch" in command
    (download,) = [s for s in jobs["coverage"]["steps"] if "download" in s.get("uses", "")]
    pattern = download["with"]["pattern"]
    assert all(re.fullmatch(pattern.replace("*", ".*"), name) for name in uploads)
    runs = _runs(jobs["coverage"])
    assert "python -m coverage combine" in runs
    assert any(r.startswith("pytest-commons coverage-gate") for r in runs)


def test_pytest_flags_exist(workflow: dict[str, Any], pytester: pytest.Pytester) -> None:
    help_text = pytester.runpytest_subprocess("--help").stdout.str()
    for name in ("docker", "services"):
        for arg in _pytest_command(workflow["jobs"][name])[3:]:
            if arg.startswith("-"):
                flag = arg.split("=")[0]
                assert re.search(rf"(^|[\s,]){re.escape(flag)}[\s=,\[]", help_text, re.M), flag


STORE = """
def put(redis, key, value):
    redis.set(key, value)
    return redis.get(key)


def count_rows(conn):
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE t (id int)")
        cur.execute("INSERT INTO t VALUES (1), (2)")
        cur.execute("SELECT count(*) FROM t")
        return cur.fetchone()[0]
"""
TESTS = """
from mypkg.store import count_rows, put


def test_redis(redis):
    assert put(redis, "k", b"v") == b"v"


def test_postgres(postgres):
    with postgres.connect() as conn:
        assert count_rows(conn) == 2
"""
PYPROJECT = """
[tool.coverage.run]
source = ["mypkg"]

[tool.pytest-commons.coverage]
fail_under = 100

[tool.pytest-commons.coverage.paths]
"mypkg/store.py" = 100
"""


def test_services_job_and_coverage_job_run_here(
    workflow: dict[str, Any],
    pytester: pytest.Pytester,
    clean_env: pytest.MonkeyPatch,
    postgres_service: ServiceHandle[Any],
    redis_service: ServiceHandle[Any],
) -> None:
    """The services job's pytest command, with its env, against this run's own PostgreSQL and
    Redis in place of GitHub's service containers; then the coverage job's commands."""
    for name in ("COVERAGE_FILE", "COVERAGE_RCFILE", "COVERAGE_PROCESS_START"):
        clean_env.delenv(name, raising=False)  # not into the outer run's coverage data
    pkg = pytester.mkpydir("mypkg")
    (pkg / "store.py").write_text(STORE.lstrip())
    pytester.makepyfile(test_store=TESTS)
    (pytester.path / "pyproject.toml").write_text(PYPROJECT)
    job = workflow["jobs"]["services"]
    here = {"postgres": postgres_service.info.url, "redis": redis_service.info.url}
    for name, value in job["env"].items():
        service = name.removeprefix("PYTEST_COMMONS_").split("_")[0].lower()
        if service in SERVICES and service not in here:
            continue  # no server for it here, and the inner tests don't use it
        clean_env.setenv(name, str(value))
    for service, url in here.items():
        meta = SERVICES[service]
        clean_env.setenv(OPTIONS[f"{service}_{meta.url_key}"].env, url)
    clean_env.setenv("CI", "true")
    command = _pytest_command(job)
    result = pytester.run(sys.executable, *command[1:], "-p", "pytest_commons.coverage_gate")
    assert result.ret == 0, result.stdout.str() + result.stderr.str()
    result.stdout.fnmatch_lines(["*2 passed*"])
    out = result.stdout.str()
    assert re.search(r"^postgres\s+external", out, re.M), out
    assert re.search(r"^redis\s+external", out, re.M), out
    assert "coverage gate" not in out  # off in the test jobs
    assert (pytester.path / job["env"]["COVERAGE_FILE"]).is_file()

    # the coverage job has its own environment
    for name in job["env"]:
        clean_env.delenv(name, raising=False)
    for name, value in (workflow["jobs"]["coverage"].get("env") or {}).items():
        clean_env.setenv(name, str(value))
    for run in _runs(workflow["jobs"]["coverage"]):
        args = shlex.split(run)
        if args[:3] == ["python", "-m", "pip"]:
            continue
        if args[0] == "python":
            args[0] = sys.executable
        done = subprocess.run(
            args, cwd=pytester.path, capture_output=True, text=True, timeout=120, check=False
        )
        assert done.returncode == 0, f"{run}: {done.stdout}{done.stderr}"
        if args[0] == "pytest-commons":
            assert "coverage gate passed: 2 thresholds met" in done.stdout

"""``pytest-commons coverage-gate`` on real coverage.py data, the validation of the
``[tool.pytest-commons.coverage]`` table, and the gate's pytest hooks in an in-process run.

The command is called through :func:`pytest_commons.cli.main` in this process: coverage.py
stops measuring a child process as soon as that process creates its own ``Coverage`` object,
which the command does (``test_coverage_gate.py`` runs it as a real subprocess)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_commons import cli
from pytest_commons.core.run import runtime_root
from pytest_commons.coverage_gate import format_table

pytest.importorskip("pytest_cov")

# calc.py: 9 statements, 4 branches; run.py leaves line 8 and the branches 6->8 and 12->exit
# unrun: 10 of 13 = 76.92%. extra.py: 1 statement, 100%. __init__.py: no statement at all.
CALC = """\
def add(a, b):
    return a + b


def sign(x):
    if x > 0:
        return 1
    return -1


def log(x):
    if x:
        print(x)
"""
RUN = """\
from mypkg import extra
from mypkg.calc import add, log, sign

add(1, 2)
sign(5)
log(extra.VALUE)
"""
TABLE = "[tool.pytest-commons.coverage]\n"


def _env() -> dict[str, str]:
    # the data file goes where the project's coverage run puts it, not into ours
    return {k: v for k, v in os.environ.items() if not k.startswith("COVERAGE_")}


def _measure(project: Path, *, branch: bool = True, data: str = ".coverage") -> Path:
    """Run run.py under coverage.py in ``project``; returns the data file."""
    args = ["--source=mypkg", f"--data-file={data}", *(["--branch"] if branch else [])]
    done = subprocess.run(
        [sys.executable, "-m", "coverage", "run", *args, "run.py"],
        cwd=project,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return project / data


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    pkg = tmp_path / "mypkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "calc.py").write_text(CALC)
    (pkg / "extra.py").write_text("VALUE = 1\n")
    (tmp_path / "run.py").write_text(RUN)
    monkeypatch.chdir(tmp_path)
    for name in ("COVERAGE_FILE", "COVERAGE_RCFILE"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def _gate(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    status = cli.main(["coverage-gate", *args])
    out, err = capsys.readouterr()
    return status, out, err


def _rows(out: str) -> list[str]:
    """The table's lines with runs of blanks (the column padding) collapsed to one."""
    return [" ".join(line.split()) for line in out.splitlines()]


def test_table_with_globs_file_minimum_and_precision(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "pyproject.toml").write_text(
        TABLE + "fail_under = 75\nfile_fail_under = 80\nprecision = 2\n"
        "[tool.pytest-commons.coverage.paths]\n"
        '"mypkg/**" = 70\n"mypkg/cal?.py" = 90\n"mypkg/ex*.py" = 100\n"mypkg/extra.py" = 100\n'
    )
    data = _measure(project)
    status, out, err = _gate(capsys, "--data-file", str(data))
    assert status == 1, err
    assert _rows(out) == [
        "coverage gate (lines+branches)",
        "path covered required status missing",
        "TOTAL 78.57% 75.00% ok 1 line, 2 branches in 1 file",
        "mypkg/** 78.57% 70.00% ok 1 line, 2 branches in 1 file",
        "mypkg/cal?.py 76.92% 90.00% FAIL 1 line, 2 branches in 1 file",
        # partial branches after the missing lines; "exit" is leaving the function
        "mypkg/calc.py 76.92% 8, 6->8, 12->exit",
        "mypkg/ex*.py 100.00% 100.00% ok",
        "mypkg/extra.py 100.00% 100.00% ok",
        "mypkg/calc.py 76.92% 80.00% FAIL 8, 6->8, 12->exit",
        "coverage gate FAILED: 2 of 6 thresholds missed ([tool.pytest-commons.coverage] in "
        "pyproject.toml)",
    ]


def test_default_data_file_and_a_met_gate(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "pyproject.toml").write_text(TABLE + 'paths = { "mypkg" = 76.9 }\n')
    _measure(project)
    # no --data-file: coverage.py's own default (.coverage in the current directory)
    status, out, err = _gate(capsys)
    assert status == 0, err
    assert _rows(out)[-2:] == [
        "mypkg 78.6% 76.9% ok 1 line, 2 branches in 1 file",
        "coverage gate passed: 1 threshold met",
    ]


def test_relative_files_and_lines_that_never_ran(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # relative_files: the data names files relative to where coverage ran (CI combines them
    # across machines); a function that never ran lists its lines, not its branches again
    (project / ".coveragerc").write_text("[run]\nrelative_files = true\n")
    (project / "mypkg" / "never.py").write_text(
        "def f(x):\n    if x:\n        return 1\n    return 2\n"
    )
    (project / "run.py").write_text("import mypkg.never\n")
    (project / "pyproject.toml").write_text(TABLE + 'paths = { "mypkg/never.py" = 50 }\n')
    data = _measure(project)
    status, out, _ = _gate(capsys, "--data-file", str(data))
    assert status == 1
    assert "mypkg/never.py 16.7% 50.0% FAIL 2-4" in _rows(out)


def test_command_run_from_another_directory(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (project / "pyproject.toml").write_text(TABLE + 'paths = { "mypkg/calc.py" = 80 }\n')
    data = _measure(project)
    elsewhere = project / "ci"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    # paths stay relative to the pyproject.toml, wherever the command runs
    status, out, _ = _gate(
        capsys, "--data-file", str(data), "--pyproject", str(project / "pyproject.toml")
    )
    assert status == 1
    assert "mypkg/calc.py 76.9% 80.0% FAIL 8, 6->8, 12->exit" in _rows(out)


def test_format_table_without_thresholds() -> None:
    assert format_table([]) == ["coverage gate: no thresholds configured"]


def test_lines_only_data_says_how_to_measure_branches(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "pyproject.toml").write_text(TABLE + "fail_under = 90\n")
    data = _measure(project, branch=False)
    status, out, _ = _gate(capsys, "--data-file", str(data))
    assert status == 0
    assert out.splitlines()[0] == (
        "coverage gate (lines only: measure branches with --cov-branch or [run] branch = true)"
    )
    # 9 of 10 statements, no branches
    assert "TOTAL 90.0% 90.0% ok 1 line, 0 branches in 1 file" in _rows(out)


def test_file_minimum_met_by_every_file(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (project / "pyproject.toml").write_text(TABLE + "file_fail_under = 70\n")
    data = _measure(project)
    status, out, _ = _gate(capsys, "--data-file", str(data))
    assert status == 0
    # the least covered file stands for the check: the gate does not claim to have no thresholds
    assert _rows(out) == [
        "coverage gate (lines+branches)",
        "path covered required status missing",
        "mypkg/calc.py 76.9% 70.0% ok 8, 6->8, 12->exit",
        "coverage gate passed: 1 threshold met",
    ]


def test_files_outside_the_pyproject_directory_are_shown_absolute(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = project / "config"
    config.mkdir()
    (config / "pyproject.toml").write_text(TABLE + 'paths = { "mypkg" = 10 }\n')
    data = _measure(project)
    status, out, _ = _gate(
        capsys, "--data-file", str(data), "--pyproject", str(config / "pyproject.toml")
    )
    assert status == 1
    # paths are relative to the pyproject.toml's directory: mypkg is not under config/
    assert (
        "mypkg - 10.0% FAIL no measured file matches this path (check the path, and --cov's "
        "source)" in _rows(out)
    )
    (config / "pyproject.toml").write_text(TABLE + "file_fail_under = 99\n")
    status, out, _ = _gate(
        capsys, "--data-file", str(data), "--pyproject", str(config / "pyproject.toml")
    )
    assert status == 1
    assert f"{project.resolve().as_posix()}/mypkg/calc.py 76.9% 99.0% FAIL 8, 6->8, 12->exit" in (
        _rows(out)
    )


def test_many_lacking_files_are_cut_after_25(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    many = project / "mypkg" / "many"
    many.mkdir()
    (many / "__init__.py").write_text("")
    for n in range(27):
        # one of two statements runs on import
        (many / f"m{n:02d}.py").write_text("def f():\n    return 1\n")
    (project / "run.py").write_text("".join(f"import mypkg.many.m{n:02d}\n" for n in range(27)))
    (project / "pyproject.toml").write_text(TABLE + 'paths = { "mypkg/many" = 60 }\n')
    data = _measure(project)
    status, out, _ = _gate(capsys, "--data-file", str(data))
    assert status == 1
    lines = _rows(out)
    assert lines[2] == "mypkg/many 50.0% 60.0% FAIL 27 lines, 0 branches in 27 files"
    listed = [line for line in lines if line.startswith("mypkg/many/m")]
    assert len(listed) == 25
    assert listed[0] == "mypkg/many/m00.py 50.0% 2"
    assert lines[-2] == "... and 2 more files"


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        (
            '[tool.pytest-commons]\ncoverage = "90"\n',
            "[tool.pytest-commons.coverage] must be a table",
        ),
        (
            TABLE + "fail_under = 90\nfile-fail-under = 50\nbranch = true\n",
            "[tool.pytest-commons.coverage] has unknown keys ['branch', 'file-fail-under'] in "
            "pyproject.toml; known keys: fail_under, file_fail_under, paths, precision",
        ),
        (TABLE + "precision = true\n", "precision must be an integer 0..4, not True"),
        (TABLE + "precision = -1\n", "precision must be an integer 0..4, not -1"),
        (TABLE + "fail_under = true\n", "fail_under must be a number (percent), not True"),
        (TABLE + "file_fail_under = -5\n", "file_fail_under must be between 0 and 100, not -5"),
        (
            TABLE + 'paths = { "pkg" = "95%" }\n',
            "paths.\"pkg\" must be a number (percent), not '95%'",
        ),
    ],
    ids=[
        "not-a-table",
        "unknown-keys",
        "precision-bool",
        "precision-negative",
        "bool-percent",
        "negative",
        "percent-string",
    ],
)
def test_malformed_table_is_refused_with_the_reason(
    project: Path, capsys: pytest.CaptureFixture[str], toml: str, message: str
) -> None:
    (project / "pyproject.toml").write_text(toml)
    status, out, err = _gate(capsys)
    assert status == 2
    assert out == ""
    assert err.startswith("pytest-commons coverage-gate: ")
    assert message in err


def test_data_without_measured_files_is_nothing_to_check(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "pyproject.toml").write_text(TABLE + "fail_under = 50\n")
    data = _measure(project)
    # the project's report settings leave nothing of what was measured
    (project / ".coveragerc").write_text("[report]\nomit = mypkg/*, run.py\n")
    status, out, err = _gate(capsys, "--data-file", str(data))
    assert status == 2
    assert out == ""
    assert "holds no measured files; run the tests with --cov" in err


# ------------------------------------------------------------------ the pytest hooks


TEST = """
from mypkg.calc import add, log, sign


def test_calc():
    assert add(1, 2) == 3
    assert sign(5) == 1
    log(1)
"""
COV = ("--cov=mypkg", "--cov-branch", "-p", "no:cacheprovider", "-p", "no:asyncio")


@pytest.fixture
def inner(pytester: pytest.Pytester, clean_env: pytest.MonkeyPatch) -> pytest.Pytester:
    for name in ("COVERAGE_FILE", "COVERAGE_RCFILE"):
        clean_env.delenv(name, raising=False)
    pkg = pytester.mkpydir("mypkg")
    (pkg / "calc.py").write_text(CALC)
    pytester.makepyfile(test_calc=TEST)
    return pytester


def test_in_process_run_fails_on_a_missed_threshold_and_passes_a_met_one(
    inner: pytest.Pytester,
) -> None:
    (inner.path / "pyproject.toml").write_text(TABLE + "fail_under = 80\n")
    missed = inner.runpytest_inprocess(*COV)
    missed.assert_outcomes(passed=1)
    assert missed.ret == pytest.ExitCode.TESTS_FAILED
    missed.stdout.fnmatch_lines(
        [
            "*= pytest-commons coverage gate =*",
            "TOTAL * 76.9%     80.0%  FAIL    1 line, 2 branches in 1 file",
            "  mypkg/calc.py * 76.9% * 8, 6->8, 12->exit",
            "coverage gate FAILED: 1 of 1 threshold missed*",
        ]
    )
    (inner.path / "pyproject.toml").write_text(TABLE + "fail_under = 76.9\n")
    met = inner.runpytest_inprocess(*COV)
    assert met.ret == pytest.ExitCode.OK
    met.stdout.fnmatch_lines(["coverage gate passed: 1 threshold met"])


def test_thresholds_come_from_pyproject_when_pytest_ini_configures_pytest(
    inner: pytest.Pytester,
) -> None:
    (inner.path / "pyproject.toml").write_text(TABLE + "fail_under = 95\n")
    inner.makeini("[pytest]\naddopts = -p no:randomly\n")
    result = inner.runpytest_inprocess(*COV)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["TOTAL * 76.9%     95.0%  FAIL*"])
    # ini coverage_gate = off turns it off
    inner.makeini("[pytest]\ncoverage_gate = off\n")
    off = inner.runpytest_inprocess(*COV)
    assert off.ret == pytest.ExitCode.OK
    assert "coverage gate" not in off.stdout.str()


def test_gate_stays_quiet_for_collect_only_and_no_cov_on_fail(inner: pytest.Pytester) -> None:
    (inner.path / "pyproject.toml").write_text(TABLE + "fail_under = 95\n")
    collect = inner.runpytest_inprocess(*COV, "--collect-only")
    assert collect.ret == pytest.ExitCode.OK
    assert "coverage gate" not in collect.stdout.str()
    inner.makepyfile(test_broken="def test_broken():\n    assert False\n")
    failed = inner.runpytest_inprocess(*COV, "--no-cov-on-fail")
    failed.assert_outcomes(passed=1, failed=1)
    assert "coverage gate" not in failed.stdout.str()


# ------------------------------------------------------------ doctor, list, down (text output)

REDIS_TEST = """
def test_redis(redis):
    assert redis.ping()
"""


@pytest.fixture
def own_runtime(pytester: pytest.Pytester, clean_env: pytest.MonkeyPatch) -> Path:
    """A private runtime directory: kept services and runs of other tests are not ours."""
    runtime = pytester.path / "runtime"
    runtime.mkdir()
    clean_env.setenv("PYTEST_COMMONS_RUNTIME_DIR", str(runtime))
    return runtime


def test_list_doctor_and_down_show_and_stop_a_kept_service(
    pytester: pytest.Pytester, own_runtime: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytester.makepyfile(REDIS_TEST)
    run = pytester.runpytest_subprocess("--reuse-services", "--redis-backend=local")
    try:
        run.assert_outcomes(passed=1)
        capsys.readouterr()
        assert cli.main(["list"]) == 0
        listed = capsys.readouterr().out.splitlines()
        assert len(listed) == 1
        service, backend, *_ = listed[0].split()
        assert (service, backend) == ("redis", "local")
        # a URL to paste (`list` prints URLs now, the password masked), not the info dict
        assert re.search(r" redis://:\*\*\*@127\.0\.0\.1:\d+/0$", listed[0]), listed[0]
        assert cli.main(["doctor"]) == 0
        doctor = capsys.readouterr().out.splitlines()
        assert "kept services (--reuse-services): 1" in doctor
        kept = doctor[doctor.index("kept services (--reuse-services): 1") + 1]
        assert kept.startswith("  redis local ")
        assert "password" not in kept
    finally:
        assert cli.main(["down"]) == 0
    assert "stopped redis (local)" in capsys.readouterr().out
    assert cli.main(["list"]) == 0
    assert capsys.readouterr().out == "no kept services\n"


def test_down_reaps_the_directory_of_a_run_that_died(
    own_runtime: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # what a run killed with SIGKILL leaves behind: its directory, owned by a dead process
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    run_dir = runtime_root() / "run-deadbeef"
    assert run_dir.parent.parent == own_runtime
    (run_dir / "services").mkdir(parents=True)
    (run_dir / "owner").write_text(f"{dead.pid} 12345\n")
    assert cli.main(["list", "--json"]) == 0
    assert str(run_dir) in capsys.readouterr().out
    assert cli.main(["down"]) == 0
    assert capsys.readouterr().out.splitlines() == [f"reaped {run_dir}"]
    assert not run_dir.exists()


def test_doctor_reports_a_service_module_that_cannot_be_imported(
    own_runtime: Path, clean_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # a broken installation: the Kafka service module fails to import
    clean_env.setitem(sys.modules, "pytest_commons.services.kafka.spec", None)
    clean_env.setenv("PYTEST_COMMONS_POSTGRES_BINDIR", "/nonexistent")
    assert cli.main(["doctor"]) == 0
    out = capsys.readouterr().out.splitlines()
    kafka = out.index(next(line for line in out if line.startswith("kafka: ")))
    assert out[kafka].startswith("kafka: driver service module not importable: ")
    # no backend lines for it; the next service follows directly
    assert not out[kafka + 1].startswith("  ")
    assert (
        "  local     no: no postgres binary in postgres_bindir='/nonexistent' (from "
        "$PYTEST_COMMONS_POSTGRES_BINDIR) — "
        "point it at the directory holding postgres and initdb"
    ) in out

"""The coverage gate: thresholds from pyproject.toml checked at the end of a --cov run (plain and
under xdist) and by the ``coverage-gate`` command after ``coverage combine``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pytest_commons.coverage_gate import (
    FileCoverage,
    GateConfig,
    GateConfigError,
    compress_lines,
    evaluate,
    load_config,
)
from tests.helpers import python_module

pytest.importorskip("pytest_cov")

# a package with known figures: calc.py 9 statements/2 branches, 63.6% when test_calc runs;
# sub/__init__.py 4 statements/2 branches, 66.7%
CALC = """
def add(a, b):
    return a + b


def sign(x):
    if x > 0:
        return 1
    return -1


def unused():
    y = 1
    # a comment does not split the missing range
    return y
"""
SUB = """
def f(x):
    if x:
        return 1
    return 2
"""
TEST = """
from mypkg.calc import add, sign
from mypkg.sub import f


def test_add():
    assert add(1, 2) == 3


def test_sign_and_f():
    assert sign(5) == 1
    assert f(1) == 1
"""

MISSES = """
[tool.pytest-commons.coverage]
fail_under = 90

[tool.pytest-commons.coverage.paths]
"mypkg/sub" = 95
"mypkg/calc.py" = 50
"""
MEETS = """
[tool.pytest-commons.coverage]
fail_under = 60
precision = 1

[tool.pytest-commons.coverage.paths]
"mypkg/sub" = 66.7
"mypkg/*.py" = 60
"""

GATE = ("-p", "pytest_commons.coverage_gate")
COV = ("--cov=mypkg", "--cov-branch", "-p", "no:cacheprovider")


@pytest.fixture
def project(pytester: pytest.Pytester, clean_env: pytest.MonkeyPatch) -> pytest.Pytester:
    # the inner runs measure their own project, never into the outer run's coverage data
    for name in ("COVERAGE_FILE", "COVERAGE_RCFILE", "COVERAGE_PROCESS_START"):
        clean_env.delenv(name, raising=False)
    pkg = pytester.mkpydir("mypkg")
    (pkg / "calc.py").write_text(CALC.lstrip("\n"))
    sub = pkg / "sub"
    sub.mkdir()
    (sub / "__init__.py").write_text(SUB.lstrip("\n"))
    pytester.makepyfile(test_calc=TEST)
    return pytester


def _pyproject(pytester: pytest.Pytester, text: str) -> None:
    (pytester.path / "pyproject.toml").write_text(text)


@pytest.mark.parametrize("dist", [(), ("-n", "2")], ids=["plain", "xdist"])
def test_missed_gate_fails_the_run_with_a_table(
    project: pytest.Pytester, dist: tuple[str, ...]
) -> None:
    _pyproject(project, MISSES)
    result = project.runpytest_subprocess(*GATE, *COV, *dist)
    result.assert_outcomes(passed=2)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            "*= pytest-commons coverage gate =*",
            "coverage gate (lines+branches)",
            "path * covered  required  status  missing",
            "TOTAL * 64.7%     90.0%  FAIL    4 lines, 2 branches in 2 files",
            "  mypkg/calc.py * 63.6% * 8, 12-14, 6->8",
            "  mypkg/sub/__init__.py * 66.7% * 4, 2->4",
            "mypkg/sub * 66.7%     95.0%  FAIL    1 line, 1 branch in 1 file",
            "  mypkg/sub/__init__.py * 66.7% * 4, 2->4",
            "mypkg/calc.py * 63.6%     50.0%  ok      8, 12-14, 6->8",
            "coverage gate FAILED: 2 of 3 thresholds missed*",
        ]
    )
    # the gate's table comes after pytest-cov's own report
    out = result.stdout.str()
    assert out.index("TOTAL ") < out.index("pytest-commons coverage gate")


@pytest.mark.parametrize("dist", [(), ("-n", "2")], ids=["plain", "xdist"])
def test_met_gate_passes(project: pytest.Pytester, dist: tuple[str, ...]) -> None:
    _pyproject(project, MEETS)
    result = project.runpytest_subprocess(*GATE, *COV, *dist)
    result.assert_outcomes(passed=2)
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(
        [
            "TOTAL * 64.7%     60.0%  ok *",
            "mypkg/sub * 66.7%     66.7%  ok *",
            "mypkg/[*].py * 63.6%     60.0%  ok *",
            "coverage gate passed: 3 thresholds met",
        ]
    )


def test_off_and_without_cov_the_gate_does_not_run(project: pytest.Pytester) -> None:
    _pyproject(project, MISSES)
    off = project.runpytest_subprocess(*GATE, *COV, "--coverage-gate=off")
    assert off.ret == pytest.ExitCode.OK
    assert "coverage gate" not in off.stdout.str()
    no_cov = project.runpytest_subprocess(*GATE, "-p", "no:cacheprovider")
    assert no_cov.ret == pytest.ExitCode.OK
    assert "coverage gate" not in no_cov.stdout.str()


def test_gate_off_by_environment(project: pytest.Pytester, clean_env: pytest.MonkeyPatch) -> None:
    _pyproject(project, MISSES)
    clean_env.setenv("PYTEST_COMMONS_COVERAGE_GATE", "off")
    assert project.runpytest_subprocess(*GATE, *COV).ret == pytest.ExitCode.OK
    clean_env.setenv("PYTEST_COMMONS_COVERAGE_GATE", "sometimes")
    bad = project.runpytest_subprocess(*GATE, *COV)
    assert bad.ret == pytest.ExitCode.USAGE_ERROR
    bad.stderr.fnmatch_lines(["*coverage_gate='sometimes'*is not one of auto, off*"])


def test_path_matching_nothing_fails(project: pytest.Pytester) -> None:
    _pyproject(project, '[tool.pytest-commons.coverage]\npaths = { "mypkg/gone" = 10 }\n')
    result = project.runpytest_subprocess(*GATE, *COV)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["mypkg/gone * -  * 10.0%  FAIL    no measured file matches*"])


def test_malformed_thresholds_are_a_usage_error(project: pytest.Pytester) -> None:
    _pyproject(project, "[tool.pytest-commons.coverage]\nfail-under = 90\n")
    result = project.runpytest_subprocess(*GATE, *COV)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "unknown keys ['fail-under']" in result.stderr.str()
    assert "known keys: fail_under, file_fail_under, paths, precision" in result.stderr.str()


def test_failing_test_and_file_minimum(project: pytest.Pytester) -> None:
    _pyproject(project, "[tool.pytest-commons.coverage]\nfile_fail_under = 65\n")
    result = project.runpytest_subprocess(*GATE, *COV, "-k", "not test_add")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            "mypkg/calc.py * 54.5%     65.0%  FAIL    2, 8, 12-14, 6->8",
            "coverage gate FAILED: 1 of 1 threshold missed*",
        ]
    )
    assert "mypkg/sub/__init__.py" not in result.stdout.str().split("coverage gate (")[1]


def _gate_cli(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return python_module("pytest_commons.coverage_gate", *args, cwd=cwd)


def test_command_after_coverage_combine(
    project: pytest.Pytester, clean_env: pytest.MonkeyPatch
) -> None:
    _pyproject(project, MISSES)
    # two CI jobs, each with its own data file (one under xdist), combined by coverage.py
    clean_env.setenv("COVERAGE_FILE", ".coverage.job1")
    first = project.runpytest_subprocess(*COV, "--cov-report=", "-k", "test_add")
    first.assert_outcomes(passed=1, deselected=1)
    clean_env.setenv("COVERAGE_FILE", ".coverage.job2")
    second = project.runpytest_subprocess(*COV, "-n", "2", "--cov-report=", "-k", "not test_add")
    second.assert_outcomes(passed=1)
    clean_env.delenv("COVERAGE_FILE")
    combined = subprocess.run(
        [sys.executable, "-m", "coverage", "combine"],
        cwd=project.path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert combined.returncode == 0, combined.stdout + combined.stderr
    assert (project.path / ".coverage").is_file()
    missed = _gate_cli(project.path, "--data-file", ".coverage")
    assert missed.returncode == 1, missed.stderr
    assert "TOTAL" in missed.stdout
    assert "mypkg/sub/__init__.py     66.7%                    4, 2->4" in missed.stdout
    _pyproject(project, MEETS)
    met = _gate_cli(project.path, "--pyproject", str(project.path / "pyproject.toml"))
    assert met.returncode == 0, met.stdout + met.stderr
    assert met.stdout.rstrip().endswith("coverage gate passed: 3 thresholds met")


def test_command_refuses_when_nothing_to_check(project: pytest.Pytester) -> None:
    missing_table = _gate_cli(project.path)
    assert missing_table.returncode == 2
    assert "no thresholds in pyproject.toml" in missing_table.stderr
    _pyproject(project, MISSES)
    no_data = _gate_cli(project.path, "--data-file", "nothing")
    assert no_data.returncode == 2
    assert "no coverage data at nothing" in no_data.stderr


def test_compress_lines() -> None:
    assert compress_lines([1, 2, 3, 7, 9, 10], executed=[4, 5, 8]) == ["1-3", "7", "9-10"]
    # nothing executed between them: blank lines and comments don't split a range
    assert compress_lines([3, 5, 9], executed=[1, 10]) == ["3-9"]
    assert compress_lines([]) == []


def test_load_config_validates(tmp_path: Path) -> None:
    pyproject = tmp_path / "pyproject.toml"
    assert load_config(pyproject) is None
    pyproject.write_text("[tool.other]\nx = 1\n")
    assert load_config(pyproject) is None
    pyproject.write_text(
        "[tool.pytest-commons.coverage]\nfail_under = 90\n"
        '[tool.pytest-commons.coverage.paths]\n"pkg/a/" = 95.5\n'
    )
    config = load_config(pyproject)
    assert config == GateConfig(root=tmp_path, fail_under=90.0, paths={"pkg/a": 95.5})
    for bad, message in [
        ("fail_under = 'ninety'", "must be a number"),
        ("fail_under = 101", "between 0 and 100"),
        ("precision = 9", "precision must be an integer"),
        ("paths = 3", "paths must be a table"),
    ]:
        pyproject.write_text(f"[tool.pytest-commons.coverage]\n{bad}\n")
        with pytest.raises(GateConfigError, match=message):
            load_config(pyproject)


def test_rounding_follows_coverage_fail_under() -> None:
    # 2 of 3 covered = 66.666…%: passes 66.7 at precision 1, fails it at precision 2
    f = FileCoverage("a.py", 3, 2, 0, 0, [3], [1, 2], [])
    assert evaluate(GateConfig(root=Path("/"), fail_under=66.7), [f])[0].passed
    assert not evaluate(GateConfig(root=Path("/"), fail_under=66.7, precision=2), [f])[0].passed
    # 100 means everything, whatever the rounding
    g = FileCoverage("b.py", 2000, 1999, 0, 0, [7], [], [])
    assert not evaluate(GateConfig(root=Path("/"), fail_under=100), [g])[0].passed


def test_path_globs() -> None:
    files = [
        FileCoverage(p, 1, 1, 0, 0, [], [1], [])
        for p in ("pkg/a.py", "pkg/sub/b.py", "pkg/sub/deep/c.py", "other/a.py")
    ]
    config = GateConfig(
        root=Path("/"),
        paths={"pkg/*.py": 1, "pkg/**/*.py": 1, "pkg/sub": 1, "*/a.py": 1, "pkg/su": 1},
    )
    matched = {row.label: [f.path for f in row.files] for row in evaluate(config, files)}
    assert matched == {
        "pkg/*.py": ["pkg/a.py"],
        "pkg/**/*.py": ["pkg/a.py", "pkg/sub/b.py", "pkg/sub/deep/c.py"],
        "pkg/sub": ["pkg/sub/b.py", "pkg/sub/deep/c.py"],
        "*/a.py": ["pkg/a.py", "other/a.py"],
        "pkg/su": [],  # a prefix of a name is not a directory
    }

"""Coverage gate: minimum line+branch coverage for the whole project and per path.

Thresholds live in ``pyproject.toml``::

    [tool.pytest-commons.coverage]
    fail_under = 90                 # whole project (line+branch, as coverage.py counts it)
    file_fail_under = 60            # optional: every single measured file
    precision = 1                   # optional: decimals used to compare and show (default 1)

    [tool.pytest-commons.coverage.paths]
    "pytest_commons/backends" = 95  # a directory: all files under it, counted together
    "pytest_commons/cli.py" = 80    # one file
    "pytest_commons/*/base.py" = 85 # a glob (* within a directory, ** across): the matching
                                    # files, counted together

Paths are relative to the directory of ``pyproject.toml``. A path that matches no measured file
is a failure (a gate that silently measures nothing is no gate).

This module is a pytest plugin of its own (entry point ``pytest_commons.coverage_gate`` in the
``pytest11`` group, option group ``commons-coverage``): ``-p no:commons`` leaves it on,
``-p no:pytest_commons.coverage_gate`` or ``--coverage-gate=off`` turns it off.

The gate runs

* at the end of a pytest run that pytest-cov measures (``--cov``), in the controller after
  pytest-cov has combined the xdist workers' data; a missed threshold makes the run fail
  (exit status 1), the table is printed after pytest-cov's report. ``--coverage-gate=off``
  (``$PYTEST_COMMONS_COVERAGE_GATE``, ini ``coverage_gate``) turns it off, e.g. for a run of a
  subset of the tests;
* as ``pytest-commons coverage-gate [--data-file .coverage] [--pyproject pyproject.toml]``
  after ``coverage combine`` in CI (exit status 1 when a threshold is missed, 2 when there is
  nothing to check).
"""

from __future__ import annotations

import argparse
import bisect
import importlib
import json
import os
import re
import sys
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_commons.plugin import options as _options
from pytest_commons.plugin.options import Option

if TYPE_CHECKING:
    import coverage

TABLE = "tool.pytest-commons.coverage"
_KNOWN_KEYS = {"fail_under", "file_fail_under", "precision", "paths"}
_MAX_FILES_LISTED = 25

OPTION = Option(
    "coverage_gate",
    "Coverage gate at the end of a --cov run (thresholds in pyproject.toml "
    "[tool.pytest-commons.coverage]): auto (default: check when configured) or off.",
    default="auto",
    choices=("auto", "off"),
)


class GateConfigError(Exception):
    """The ``[tool.pytest-commons.coverage]`` table is malformed."""


@dataclass(frozen=True)
class GateConfig:
    """Thresholds read from ``[tool.pytest-commons.coverage]``."""

    root: Path
    fail_under: float | None = None
    file_fail_under: float | None = None
    paths: dict[str, float] = field(default_factory=dict)
    precision: int = 1

    @property
    def empty(self) -> bool:
        return self.fail_under is None and self.file_fail_under is None and not self.paths


@dataclass
class FileCoverage:
    """One measured file, as coverage.py's JSON report describes it."""

    path: str  # relative to the gate's root when under it, else absolute; POSIX separators
    statements: int
    covered_lines: int
    branches: int
    covered_branches: int
    missing_lines: list[int]
    executed_lines: list[int]
    missing_branches: list[tuple[int, int]]

    @property
    def percent(self) -> float:
        total = self.statements + self.branches
        return 100.0 if total == 0 else 100.0 * (self.covered_lines + self.covered_branches) / total

    def missing_text(self) -> str:
        """Missing lines as compressed ranges, then partial branches (``12->15``)."""
        parts = compress_lines(self.missing_lines, self.executed_lines)
        missing = set(self.missing_lines)
        for start, end in self.missing_branches:
            if start in missing:
                continue  # the line itself never ran: already listed
            parts.append(f"{start}->{'exit' if end < 0 else end}")
        return ", ".join(parts)


@dataclass
class GateRow:
    """One threshold and what was measured for it."""

    label: str
    required: float
    files: list[FileCoverage]
    precision: int

    @property
    def statements(self) -> int:
        return sum(f.statements + f.branches for f in self.files)

    @property
    def covered(self) -> int:
        return sum(f.covered_lines + f.covered_branches for f in self.files)

    @property
    def percent(self) -> float:
        return 100.0 if self.statements == 0 else 100.0 * self.covered / self.statements

    @property
    def passed(self) -> bool:
        if not self.files:
            return False
        return not _fails(self.percent, self.required, self.precision)


def _fails(percent: float, required: float, precision: int) -> bool:
    # the same rule as coverage.py's fail_under: compare at the displayed precision, and 100
    # means every line and branch
    if required >= 100:
        return percent < 100.0
    return round(percent, precision) < required


def compress_lines(missing: Iterable[int], executed: Iterable[int] = ()) -> list[str]:
    """``[1, 2, 3, 7, 9, 10]`` → ``["1-3", "7", "9-10"]``.

    Two missing lines join one range when no executed statement lies between them (blank lines
    and comments don't break a range), as coverage.py's own report does.
    """
    ran = sorted(set(executed))
    out: list[str] = []
    run: list[int] = []
    for line in sorted(set(missing)):
        if run:
            i = bisect.bisect_right(ran, run[-1])
            if i < len(ran) and ran[i] < line:
                out.append(_range(run[0], run[-1]))
                run = []
        run.append(line)
    if run:
        out.append(_range(run[0], run[-1]))
    return out


def _range(start: int, end: int) -> str:
    return str(start) if start == end else f"{start}-{end}"


# ---------------------------------------------------------------------------------- config


def _load_toml(path: Path) -> dict[str, Any]:
    # tomllib from 3.11; pytest itself depends on tomli before that
    toml = importlib.import_module("tomllib" if sys.version_info >= (3, 11) else "tomli")
    with path.open("rb") as fh:
        data: dict[str, Any] = toml.load(fh)
    return data


def _number(value: object, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise GateConfigError(f"[{TABLE}] {where} must be a number (percent), not {value!r}")
    if not 0 <= value <= 100:
        raise GateConfigError(f"[{TABLE}] {where} must be between 0 and 100, not {value!r}")
    return float(value)


def load_config(pyproject: Path) -> GateConfig | None:
    """The thresholds in ``pyproject``, or None when it has no ``[tool.pytest-commons.coverage]``.

    Raises :class:`GateConfigError` for unknown keys or values that aren't percentages.
    """
    if not pyproject.is_file():
        return None
    data = _load_toml(pyproject)
    table = data.get("tool", {}).get("pytest-commons", {}).get("coverage")
    if table is None:
        return None
    if not isinstance(table, dict):
        raise GateConfigError(f"[{TABLE}] must be a table")
    unknown = sorted(set(table) - _KNOWN_KEYS)
    if unknown:
        raise GateConfigError(
            f"[{TABLE}] has unknown keys {unknown} in {pyproject}; known keys: "
            f"{', '.join(sorted(_KNOWN_KEYS))}"
        )
    paths_raw = table.get("paths", {})
    if not isinstance(paths_raw, dict):
        raise GateConfigError(f'[{TABLE}] paths must be a table {{ "path" = percent }}')
    paths = {str(k).strip("/"): _number(v, f'paths."{k}"') for k, v in paths_raw.items() if str(k)}
    precision = table.get("precision", 1)
    if isinstance(precision, bool) or not isinstance(precision, int) or not 0 <= precision <= 4:
        raise GateConfigError(f"[{TABLE}] precision must be an integer 0..4, not {precision!r}")
    return GateConfig(
        root=pyproject.resolve().parent,
        fail_under=None
        if "fail_under" not in table
        else _number(table["fail_under"], "fail_under"),
        file_fail_under=None
        if "file_fail_under" not in table
        else _number(table["file_fail_under"], "file_fail_under"),
        paths=paths,
        precision=precision,
    )


# --------------------------------------------------------------------------------- measure


@dataclass
class Measured:
    """What coverage.py measured: the files, and whether branches were measured."""

    files: list[FileCoverage]
    branch: bool


def measure(cov: coverage.Coverage, root: Path) -> Measured:
    """Per-file line and branch figures of ``cov``'s (loaded or combined) data.

    Uses coverage.py's JSON report, so the ``[report]`` include/omit settings apply.
    """
    from coverage.exceptions import NoDataError

    with tempfile.TemporaryDirectory(prefix="commons-covgate-") as tmp:
        out = os.path.join(tmp, "coverage.json")
        try:
            cov.json_report(outfile=out)
        except NoDataError:
            return Measured([], False)
        with open(out, encoding="utf-8") as fh:
            report = json.load(fh)
    try:
        from coverage.files import relative_directory

        base = Path(relative_directory())
    except ImportError:  # pragma: no cover - older coverage.py
        base = Path.cwd()
    files = []
    for name, entry in report.get("files", {}).items():
        path = Path(name)
        if not path.is_absolute():
            path = base / path
        try:
            shown = path.resolve().relative_to(root).as_posix()
        except ValueError:
            shown = path.resolve().as_posix()
        summary = entry["summary"]
        files.append(
            FileCoverage(
                path=shown,
                statements=int(summary.get("num_statements", 0)),
                covered_lines=int(summary.get("covered_lines", 0)),
                branches=int(summary.get("num_branches", 0)),
                covered_branches=int(summary.get("covered_branches", 0)),
                missing_lines=list(entry.get("missing_lines", [])),
                executed_lines=list(entry.get("executed_lines", [])),
                missing_branches=[(int(a), int(b)) for a, b in entry.get("missing_branches", [])],
            )
        )
    files.sort(key=lambda f: f.path)
    branch = bool(report.get("meta", {}).get("branch_coverage")) or any(f.branches for f in files)
    return Measured(files, branch)


def _glob_regex(pattern: str) -> re.Pattern[str]:
    # "*" and "?" stay within one path segment, "**" spans segments; a pattern that names a
    # directory also matches everything under it
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out) + "(?:/.*)?")


def _matches(pattern: str, path: str) -> bool:
    if any(c in pattern for c in "*?"):
        return _glob_regex(pattern).fullmatch(path) is not None
    return path == pattern or path.startswith(pattern + "/")


def evaluate(config: GateConfig, files: Sequence[FileCoverage]) -> list[GateRow]:
    """One row per threshold: the total, each configured path, each file below file_fail_under
    (or, when every file meets it, the least covered file)."""
    rows: list[GateRow] = []
    if config.fail_under is not None:
        rows.append(GateRow("TOTAL", config.fail_under, list(files), config.precision))
    for pattern, required in config.paths.items():
        matched = [f for f in files if _matches(pattern, f.path)]
        rows.append(GateRow(pattern, required, matched, config.precision))
    if config.file_fail_under is not None:
        per_file = [GateRow(f.path, config.file_fail_under, [f], config.precision) for f in files]
        # every file met it: the least covered one shows the check ran (no rows would read as
        # "no thresholds configured")
        failing = [r for r in per_file if not r.passed]
        rows.extend(failing or sorted(per_file, key=lambda r: r.percent)[:1])
    return rows


def _lacking(row: GateRow) -> list[FileCoverage]:
    return sorted(
        (f for f in row.files if f.percent < 100.0),
        key=lambda f: (f.covered_lines + f.covered_branches) - (f.statements + f.branches),
    )


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def format_table(rows: Sequence[GateRow], branch: bool = True) -> list[str]:
    """The gate's report: one line per threshold (path, covered %, required %, status, missing
    lines); under a missed directory or glob threshold, its files that lack coverage, worst
    first, with their missing lines as compressed ranges and partial branches as ``a->b``.
    """
    if not rows:
        return ["coverage gate: no thresholds configured"]
    kind = (
        "lines+branches"
        if branch
        else "lines only: measure branches with --cov-branch or [run] branch = true"
    )
    p = rows[0].precision
    table: list[tuple[str, str, str, str, str]] = []
    for row in rows:
        required = f"{row.required:.{p}f}%"
        if not row.files:
            table.append(
                (
                    row.label,
                    "-",
                    required,
                    "FAIL",
                    "no measured file matches this path (check the path, and --cov's source)",
                )
            )
            continue
        status = "ok" if row.passed else "FAIL"
        single = len(row.files) == 1 and row.label == row.files[0].path
        lacking = _lacking(row)
        if single:
            missing = row.files[0].missing_text()
        elif lacking:
            n_lines = sum(len(f.missing_lines) for f in lacking)
            n_branches = sum(f.branches - f.covered_branches for f in lacking)
            missing = (
                f"{_plural(n_lines, 'line')}, {_plural(n_branches, 'branch')} "
                f"in {_plural(len(lacking), 'file')}"
            ).replace("branchs", "branches")
        else:
            missing = ""
        table.append((row.label, f"{row.percent:.{p}f}%", required, status, missing))
        if not row.passed and not single:
            for f in lacking[:_MAX_FILES_LISTED]:
                table.append(("  " + f.path, f"{f.percent:.{p}f}%", "", "", f.missing_text()))
            if len(lacking) > _MAX_FILES_LISTED:
                more = len(lacking) - _MAX_FILES_LISTED
                table.append((f"  ... and {_plural(more, 'more file')}", "", "", "", ""))
    width = max(len("path"), *(len(r[0]) for r in table))
    lines = [
        f"coverage gate ({kind})",
        f"{'path':<{width}}  {'covered':>8}  {'required':>8}  {'status':<6}  missing",
    ]
    for label, covered, req, status, missing in table:
        lines.append(f"{label:<{width}}  {covered:>8}  {req:>8}  {status:<6}  {missing}".rstrip())
    failed = [r for r in rows if not r.passed]
    if failed:
        lines.append(
            f"coverage gate FAILED: {len(failed)} of {_plural(len(rows), 'threshold')} missed "
            "([tool.pytest-commons.coverage] in pyproject.toml)"
        )
    else:
        lines.append(f"coverage gate passed: {_plural(len(rows), 'threshold')} met")
    return lines


# ------------------------------------------------------------------------------------- CLI


def add_parser(sub: Any) -> None:
    """Add the ``coverage-gate`` subcommand to the ``pytest-commons`` argument parser."""
    p = sub.add_parser(
        "coverage-gate",
        help="check coverage data against [tool.pytest-commons.coverage]",
        description="Check combined coverage data (after `coverage combine`) against the "
        "thresholds in pyproject.toml [tool.pytest-commons.coverage]. Exit status 1 when a "
        "threshold is missed, 2 when there is nothing to check.",
    )
    _add_arguments(p)


def _add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-file", default=None, help="coverage data file (default: .coverage)")
    p.add_argument("--pyproject", default="pyproject.toml", help="file with the thresholds")
    p.add_argument(
        "--rcfile",
        default=None,
        help="coverage.py configuration (default: coverage.py's own search)",
    )


def run_cli(args: argparse.Namespace) -> int:
    """Run the ``coverage-gate`` subcommand; returns the exit status."""
    import coverage

    pyproject = Path(args.pyproject)
    try:
        config = load_config(pyproject)
    except GateConfigError as exc:
        print(f"pytest-commons coverage-gate: {exc}", file=sys.stderr)
        return 2
    if config is None or config.empty:
        print(
            f"pytest-commons coverage-gate: no thresholds in {pyproject} [{TABLE}]; add e.g. "
            "fail_under = 90",
            file=sys.stderr,
        )
        return 2
    data_file = args.data_file or None
    if data_file is not None and not Path(data_file).is_file():
        print(
            f"pytest-commons coverage-gate: no coverage data at {data_file}; run the tests "
            "with --cov (and `coverage combine` for parallel data) first",
            file=sys.stderr,
        )
        return 2
    # data_file=None would mean "no data file" to coverage.py: leave its default alone
    kwargs: dict[str, Any] = {} if data_file is None else {"data_file": data_file}
    cov = coverage.Coverage(config_file=args.rcfile or True, **kwargs)
    cov.load()
    measured = measure(cov, config.root)
    files = measured.files
    if not files:
        print(
            f"pytest-commons coverage-gate: the coverage data ({cov.config.data_file}) holds "
            "no measured files; run the tests with --cov (and `coverage combine`) first",
            file=sys.stderr,
        )
        return 2
    rows = evaluate(config, files)
    print("\n".join(format_table(rows, measured.branch)))
    return 0 if all(r.passed for r in rows) else 1


def main(argv: list[str] | None = None) -> int:
    """``python -m pytest_commons.coverage_gate`` (same as ``pytest-commons coverage-gate``)."""
    parser = argparse.ArgumentParser(prog="pytest-commons coverage-gate", description=__doc__)
    _add_arguments(parser)
    return run_cli(parser.parse_args(argv))


# ----------------------------------------------------------------------------------- hooks

_RESULT = pytest.StashKey[list[str]]()
_CONFIG = pytest.StashKey[GateConfig]()


#: the option group of ``pytest --help``: the gate's own, after the service options' ``commons``
GROUP = ("commons-coverage", "pytest-commons coverage gate")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup(*GROUP)
    if OPTION.key in _options.OPTIONS or any(OPTION.cli in a.names() for a in group.options):
        return  # added already
    group.addoption(
        OPTION.cli,
        action="store",
        default=None,
        dest=f"commons_{OPTION.key}",
        choices=OPTION.choices,
        metavar=OPTION.key.upper(),
        help=f"{OPTION.help} [ini: {OPTION.key}; env: {OPTION.env}]",
    )
    parser.addini(OPTION.key, OPTION.help, default=None)


def gate_setting(config: pytest.Config) -> str:
    """``--coverage-gate``: command line, then environment, then ini, then ``auto``."""
    if OPTION.key in _options.OPTIONS:
        return _options.get(config, OPTION.key) or "auto"
    value = config.getoption(f"commons_{OPTION.key}", default=None)
    if value is None:
        value = os.environ.get(OPTION.env) or config.getini(OPTION.key) or OPTION.default
    if value not in (OPTION.choices or ()):
        raise pytest.UsageError(
            f"pytest-commons: {OPTION.key}={value!r} is not one of auto, off "
            f"(set by {OPTION.cli}, ${OPTION.env} or ini {OPTION.key})."
        )
    return str(value)


def _pyproject(config: pytest.Config) -> Path:
    inipath = config.inipath
    if inipath is not None and inipath.name == "pyproject.toml":
        return inipath
    return config.rootpath / "pyproject.toml"


def _cov_plugin(config: pytest.Config) -> Any:
    plugin = config.pluginmanager.get_plugin("_cov")
    if plugin is None or getattr(plugin, "_disabled", False):
        return None
    return plugin


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    if hasattr(config, "workerinput") or _cov_plugin(config) is None:
        return
    if gate_setting(config) == "off":
        return
    try:
        gate = load_config(_pyproject(config))
    except GateConfigError as exc:
        raise pytest.UsageError(f"pytest-commons coverage gate: {exc}") from exc
    if gate is not None and not gate.empty:
        config.stash[_CONFIG] = gate


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtestloop(session: pytest.Session) -> Any:
    # outermost wrapper: runs after pytest-cov's own wrapper has stopped coverage and combined
    # the workers' data into cov_controller.cov
    result = yield
    config = session.config
    gate = config.stash.get(_CONFIG, None)
    plugin = _cov_plugin(config)
    if gate is None or plugin is None or config.option.collectonly:
        return result
    if getattr(plugin.options, "no_cov_on_fail", False) and session.testsfailed:
        return result
    controller = getattr(plugin, "cov_controller", None)
    cov = getattr(controller, "cov", None)
    if cov is None:
        return result
    measured = measure(cov, gate.root)
    rows = evaluate(gate, measured.files)
    config.stash[_RESULT] = format_table(rows, measured.branch)
    if not all(r.passed for r in rows):
        session.testsfailed += 1  # the run's exit status becomes 1 (tests failed)
    return result


@pytest.hookimpl(trylast=True)
def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    lines = config.stash.get(_RESULT, None)
    if not lines:
        return
    failed = lines[-1].startswith("coverage gate FAILED")
    terminalreporter.write_sep("=", "pytest-commons coverage gate", red=failed, green=not failed)
    for line in lines:
        terminalreporter.write_line(line)


if __name__ == "__main__":
    sys.exit(main())

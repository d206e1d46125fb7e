"""Seed files: ``@pytest.mark.seed_data("fixtures/users.yaml")`` and :func:`load_seed_file`.

Formats: YAML or JSON mapping ``{table: [row, ...]}`` (rows are mappings column → value; tables
are loaded in file order), CSV (the file name is the table, the header row names the columns, an
empty cell is NULL), or a ``.sql`` script. Errors name the file, the table, the row (1-based) and
the column.
"""

from __future__ import annotations

import contextlib
import csv
import importlib
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_commons.data._sql import SqlTarget

if TYPE_CHECKING:
    import pytest

#: fixtures the marker loads into, first match wins
TARGET_FIXTURES = ("sql_db", "postgres_tx", "mysql_tx", "postgres", "mysql")


class SeedDataError(Exception):
    """A seed file could not be read or loaded; the message names file, table, row, column."""


def read_seed_file(path: Path, shown: str | None = None) -> dict[str, list[dict[str, Any]]]:
    """Parse a YAML/JSON/CSV seed file into ``{table: [row, ...]}``."""
    shown = shown or str(path)
    if not path.is_file():
        raise SeedDataError(f"{shown}: seed file not found (looked at {path})")
    suffix = path.suffix.lower()
    text = path.read_text(encoding="utf-8")
    if suffix == ".csv":
        reader = csv.DictReader(text.splitlines())
        rows = []
        for number, row in enumerate(reader, 1):
            if None in row:
                raise SeedDataError(
                    f"{shown}: table {path.stem}, row {number}: more cells than header columns"
                )
            rows.append({k: (None if v == "" else v) for k, v in row.items()})
        return {path.stem: rows}
    if suffix in (".yaml", ".yml"):
        try:
            yaml: Any = importlib.import_module("yaml")
        except ImportError as exc:
            raise SeedDataError(
                f"{shown}: YAML seed files need PyYAML: pip install pyyaml"
            ) from exc
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise SeedDataError(f"{shown}: not valid YAML: {exc}") from exc
    elif suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SeedDataError(f"{shown}: not valid JSON: {exc}") from exc
    else:
        raise SeedDataError(
            f"{shown}: unknown seed file type {suffix!r} (use .yaml, .json, .csv, .sql)"
        )
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise SeedDataError(
            f"{shown}: expected a mapping {{table: [rows...]}}, got {type(data).__name__}"
        )
    out: dict[str, list[dict[str, Any]]] = {}
    for table, rows in data.items():
        if rows is None:
            rows = []
        if not isinstance(rows, list):
            raise SeedDataError(f"{shown}: table {table}: expected a list of rows")
        for number, row in enumerate(rows, 1):
            if not isinstance(row, Mapping):
                raise SeedDataError(
                    f"{shown}: table {table}, row {number}: expected a mapping of column → value, "
                    f"got {type(row).__name__}"
                )
        out[str(table)] = [dict(r) for r in rows]
    return out


def _cell(value: Any) -> Any:
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return value


def insert_rows(
    target: SqlTarget, tables: Mapping[str, Iterable[Mapping[str, Any]]], shown: str
) -> int:
    """Insert the rows, checking columns first; returns the number of rows inserted."""
    count = 0
    for table, rows in tables.items():
        try:
            known = target.columns(table)
        except Exception as exc:
            raise SeedDataError(f"{shown}: table {table}: cannot read its columns: {exc}") from exc
        lowered = {c.lower(): c for c in known}
        for number, row in enumerate(rows, 1):
            for column in row:
                if column not in known and column.lower() not in lowered:
                    raise SeedDataError(
                        f"{shown}: table {table}, row {number}: unknown column {column!r} "
                        f"(columns: {', '.join(known)})"
                    )
            if not row:
                continue
            cols = ", ".join(target.quote(c) for c in row)
            sql = (
                f"INSERT INTO {target.quote_table(table)} ({cols}) "
                f"VALUES ({target.placeholders(len(row))})"
            )
            try:
                target.execute(sql, [_cell(v) for v in row.values()])
            except Exception as exc:
                detail = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
                raise SeedDataError(
                    f"{shown}: table {table}, row {number}: {type(exc).__name__}: {detail} "
                    f"(row: {dict(row)!r})"
                ) from exc
            count += 1
    return count


def load_seed_file(conn: Any, path: str | Path, *, base: Path | None = None) -> int:
    """Load one seed file into ``conn`` (psycopg, PyMySQL, SQLAlchemy Connection or Session).

    ``path`` is relative to ``base`` (the test file's directory for the marker). Does not
    commit; returns the number of rows inserted (0 for ``.sql`` scripts).
    """
    shown = str(path)
    full = (base / path) if base is not None else Path(path)
    target = SqlTarget(conn)
    if full.suffix.lower() == ".sql":
        if not full.is_file():
            raise SeedDataError(f"{shown}: seed file not found (looked at {full})")
        try:
            target.execute_script(full.read_text(encoding="utf-8"))
        except Exception as exc:
            raise SeedDataError(f"{shown}: {type(exc).__name__}: {exc}") from exc
        return 0
    return insert_rows(target, read_seed_file(full, shown), shown)


def apply_marker(request: pytest.FixtureRequest) -> None:
    """Load every ``seed_data`` marker's files into the test's database (marker fixture body)."""
    import pytest

    markers = list(request.node.iter_markers("seed_data"))
    paths = [p for m in reversed(markers) for p in m.args]
    if not paths:
        return
    name = next((f for f in TARGET_FIXTURES if f in request.fixturenames), None)
    if name is None:
        pytest.fail(
            "pytest-commons: @pytest.mark.seed_data needs a database in the test: use one of "
            f"{', '.join(TARGET_FIXTURES)}.",
            pytrace=False,
        )
    value = request.getfixturevalue(name)
    base = Path(str(request.node.path)).parent
    conn, close = _connection_of(name, value)
    try:
        for path in paths:
            try:
                load_seed_file(conn, path, base=base)
            except SeedDataError as exc:
                _rollback_quietly(conn)
                pytest.fail(f"seed_data: {exc}", pytrace=False)
        conn.commit()
    finally:
        if close:
            conn.close()


def _connection_of(name: str, value: Any) -> tuple[Any, bool]:
    if name == "sql_db":
        return value.session, False
    if name in ("postgres", "mysql"):
        return value.connect(), True
    return value, False


def _rollback_quietly(conn: Any) -> None:
    with contextlib.suppress(Exception):  # the error we report matters more
        conn.rollback()

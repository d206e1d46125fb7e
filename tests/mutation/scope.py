"""Keep only the mutants inside the functions a mutation config names (cosmic-ray filter).

cosmic-ray mutates whole modules; the isolation and safety code is a few functions in larger
modules, so each config lists them in a ``[commons-scope]`` table::

    [commons-scope]
    "pytest_commons/services/aws/spec.py" = ["is_loopback", "check_endpoint_host"]

Every mutant whose line is outside those functions (qualified names: ``Class.method``,
``outer.<locals>.inner`` as ``outer.inner``) is marked SKIPPED, so ``cosmic-ray exec`` runs
only the ones the targeted tests are meant to kill. Mutants inside type annotations are
skipped too: every module has ``from __future__ import annotations``, so an annotation is a
string that is never evaluated and ``str | None`` → ``str % None`` is equivalent.

Usage: ``python tests/mutation/scope.py CONFIG.toml SESSION.sqlite``
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the toml package comes with cosmic-ray
    import toml as tomllib  # type: ignore[no-redef]


def function_lines(path: Path, names: list[str]) -> list[tuple[int, int]]:
    """(first, last) line of each named function or class in ``path``; raises on a name that
    is not there (a renamed function must not silently empty the scope)."""
    tree = ast.parse(path.read_text())
    found: dict[str, tuple[int, int]] = {}

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                name = f"{prefix}{child.name}"
                found[name] = (child.lineno, child.end_lineno or child.lineno)
                visit(child, name + ".")
            else:
                visit(child, prefix)

    visit(tree, "")
    missing = [name for name in names if name not in found]
    if missing:
        raise SystemExit(f"{path}: no function {', '.join(missing)} (update the config)")
    return [found[name] for name in names]


Span = tuple[tuple[int, int], tuple[int, int]]


def annotation_spans(path: Path) -> list[Span]:
    """Where the annotations of ``path`` are: ((line, col), (end_line, end_col))."""
    spans: list[Span] = []
    for node in ast.walk(ast.parse(path.read_text())):
        found: list[ast.expr | None] = []
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            found.append(node.returns)
        elif isinstance(node, ast.arg | ast.AnnAssign):
            found.append(node.annotation)
        for ann in found:
            if ann is not None and ann.end_lineno is not None and ann.end_col_offset is not None:
                spans.append(((ann.lineno, ann.col_offset), (ann.end_lineno, ann.end_col_offset)))
    return spans


def main(argv: list[str]) -> int:
    from cosmic_ray.work_db import use_db
    from cosmic_ray.work_item import WorkerOutcome, WorkResult

    config, session = Path(argv[0]), argv[1]
    scope = tomllib.loads(config.read_text())["commons-scope"]
    ranges = {
        Path(file).resolve(): function_lines(Path(file), names) for file, names in scope.items()
    }
    annotations = {Path(file).resolve(): annotation_spans(Path(file)) for file in scope}
    kept = skipped = typing_only = 0
    with use_db(session) as db:
        for item in db.work_items:
            in_annotation = all(
                any(
                    start <= tuple(mutation.start_pos) < end
                    for start, end in annotations.get(Path(mutation.module_path).resolve(), [])
                )
                for mutation in item.mutations
            )
            inside = not in_annotation and all(
                any(
                    first <= mutation.start_pos[0] <= last
                    for first, last in ranges.get(Path(mutation.module_path).resolve(), [])
                )
                for mutation in item.mutations
            )
            if inside:
                kept += 1
                continue
            if in_annotation:
                typing_only += 1
            else:
                skipped += 1
            db.set_result(item.job_id, WorkResult(worker_outcome=WorkerOutcome.SKIPPED))
    print(
        f"{config.name}: {kept} mutants in scope; skipped: {skipped} outside it, "
        f"{typing_only} in annotations"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Background threads stay clear of ``ast.parse`` while pytest's main thread rewrites modules.

Services start in threads while pytest collects. pytest rewrites the modules of every plugin
distribution (this one included) by parsing and compiling their AST; CPython 3.11 keeps the AST
converter's recursion counter per interpreter, so two threads doing that at once corrupt it
("SystemError: AST constructor recursion depth mismatch", CPython gh-106905), and every later
``ast.parse`` fails. This finder sits first on ``sys.meta_path`` and, outside the main thread,
resolves imports with the other finders, skipping the rewriting hook. Library modules need no
assertion rewriting; test modules are only ever imported by pytest's main thread.

The same race comes from tracebacks: since 3.11, ``traceback`` parses each source line to place
its ``^^^`` carets, and drivers format tracebacks on expected failures (PyMySQL calls
``traceback.format_exc()`` on every refused connection while a server starts). In the plugin's
own threads (named ``commons-*``) the caret extraction is skipped; other threads are unaffected.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from types import ModuleType
from typing import Any

THREAD_PREFIX = "commons-"


class _ThreadImportFinder:
    def find_spec(
        self, name: str, path: Sequence[str] | None = None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if threading.current_thread() is threading.main_thread():
            return None
        for finder in sys.meta_path:
            if finder is self or type(finder).__name__ == "AssertionRewritingHook":
                continue
            find: Any = getattr(finder, "find_spec", None)
            if find is None:
                continue
            spec: ModuleSpec | None = find(name, path, target)
            if spec is not None:
                return spec
        return None


_FINDER = _ThreadImportFinder()


def _guard_caret_anchors() -> None:
    import traceback

    original: Any = getattr(traceback, "_extract_caret_anchors_from_line_segment", None)
    if original is None or getattr(original, "_commons_guard", False):
        return

    def extract(segment: str) -> Any:
        if threading.current_thread().name.startswith(THREAD_PREFIX):
            return None  # no carets: ast.parse here would race the main thread's rewriting
        return original(segment)

    extract._commons_guard = True  # type: ignore[attr-defined]
    traceback._extract_caret_anchors_from_line_segment = extract  # type: ignore[attr-defined]


def install() -> None:
    """Put the finder first on ``sys.meta_path`` and guard traceback carets (idempotent)."""
    if _FINDER not in sys.meta_path:
        sys.meta_path.insert(0, _FINDER)
    _guard_caret_anchors()

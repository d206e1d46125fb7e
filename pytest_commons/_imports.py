"""Imports made by background threads bypass pytest's assertion rewriting.

Services start in threads while pytest collects. pytest rewrites the modules of every plugin
distribution (this one included) by parsing and compiling their AST; CPython 3.11 keeps the AST
converter's recursion counter per interpreter, so two threads doing that at once corrupt it
("SystemError: AST constructor recursion depth mismatch", CPython gh-106905), and every later
``ast.parse`` fails. This finder sits first on ``sys.meta_path`` and, outside the main thread,
resolves imports with the other finders, skipping the rewriting hook. Library modules need no
assertion rewriting; test modules are only ever imported by pytest's main thread.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from types import ModuleType
from typing import Any


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


def install() -> None:
    """Put the finder first on ``sys.meta_path`` (idempotent)."""
    if _FINDER not in sys.meta_path:
        sys.meta_path.insert(0, _FINDER)

"""The plugin's threads never build Python ASTs (CPython gh-106905: races assertion rewriting)."""

from __future__ import annotations

import ast
import sys
import threading
import traceback
from typing import Any

import pytest

from pytest_commons.core import imports as _imports


def _format_in_thread(name: str) -> str:
    out: list[str] = []

    def work() -> None:
        try:
            raise ConnectionRefusedError("server still starting")
        except OSError:
            out.append(traceback.format_exc())

    thread = threading.Thread(target=work, name=name)
    thread.start()
    thread.join(timeout=10)
    return out[0]


@pytest.mark.skipif(sys.version_info < (3, 11), reason="traceback carets exist since 3.11")
def test_traceback_carets_are_not_parsed_in_the_plugins_threads(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _imports.install()
    parsed: list[str] = []
    real_parse = ast.parse

    def recording_parse(source: Any, *args: Any, **kwargs: Any) -> Any:
        parsed.append(threading.current_thread().name)
        return real_parse(source, *args, **kwargs)

    monkeypatch.setattr(ast, "parse", recording_parse)
    text = _format_in_thread("commons-start_0")
    assert "ConnectionRefusedError: server still starting" in text
    assert parsed == []
    # other threads keep their carets (the guard is scoped to the plugin's own threads)
    _format_in_thread("user-thread")
    assert "user-thread" in parsed


def test_imports_in_the_plugins_threads_skip_assertion_rewriting() -> None:
    _imports.install()
    assert sys.meta_path[0] is _imports._FINDER
    found: list[Any] = []
    thread = threading.Thread(
        target=lambda: found.append(_imports._FINDER.find_spec("json", None)),
        name="commons-import-x",
    )
    thread.start()
    thread.join(timeout=10)
    assert len(found) == 1
    assert found[0] is not None
    assert found[0].name == "json"
    # the main thread is left to the normal finders (pytest's rewriting hook included)
    assert _imports._FINDER.find_spec("json", None) is None

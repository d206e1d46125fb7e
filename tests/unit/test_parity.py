"""docs/parity.md is generated: CI fails when it is stale (issue 16)."""

from __future__ import annotations

from pytest_commons import parity


def test_parity_table_is_up_to_date() -> None:
    """Regenerate with `python -m pytest_commons.parity run mockserver` (outcomes) and
    `python -m pytest_commons.parity write` (the table)."""
    assert parity.main(["write", "--check"]) == 0


def test_a_divergence_and_a_failure_show_in_the_table() -> None:
    data = {
        "service": "demo",
        "titles": {"a": "Engine A", "b": "Engine B"},
        "engines": {
            "a": {"t.py::test_x[1]": ["passed", ""], "t.py::test_y": ["failed", ""]},
            "b": {"t.py::test_x[1]": ["xfailed", "why"], "t.py::test_y": ["skipped", "no"]},
        },
    }
    text = parity.render_service(data)
    assert "| x | yes | differs: why |" in text
    assert "| y | **fails** | not honoured: no |" in text

"""docs/parity.md is generated: CI fails when it is stale (issue 16)."""

from __future__ import annotations

import json

import pytest

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


def test_run_records_each_engine_and_renders(pytester: pytest.Pytester) -> None:
    """`parity run` runs the suites once per engine (the engine's env variable set) with the
    recording plugin; a skip's reason and an xfail's reason land in the table."""
    pytester.makepyfile(
        test_demo="""
        import os, pytest

        def test_same():
            pass

        def test_pinned():
            if os.environ["DEMO_ENGINE"] == "b":
                pytest.xfail("b does it differently")

        def test_needs():
            if os.environ["DEMO_ENGINE"] == "a":
                pytest.skip("a lacks it")
        """
    )
    parity.SUITES["demo"] = ("DEMO_ENGINE", {"a": "A", "b": "B"}, ["test_demo.py"])
    try:
        path = parity.run("demo", data=pytester.path / "data", cwd=pytester.path)
    finally:
        del parity.SUITES["demo"]
    data = json.loads(path.read_text())
    assert data["engines"]["a"]["test_demo.py::test_needs"] == ["skipped", "a lacks it"]
    text = parity.render_service(data)
    assert "| same | yes | yes |" in text
    assert "| pinned | yes | differs: b does it differently |" in text
    assert "| needs | not honoured: a lacks it | yes |" in text


def test_a_per_feature_results_file_renders() -> None:
    """The Kafka suites write per-feature results (format 1, scripts/kafka-parity.py)."""
    data = {
        "format": 1,
        "service": "kafka",
        "generated_by": "python scripts/kafka-parity.py",
        "engines": {
            "tansu": {"software": "tansu 0.6.0", "suite": {"passed": 3, "skipped": 1}},
            "apache": {"software": "Apache Kafka 4.1.1", "suite": {"passed": 4, "skipped": 0}},
        },
        "features": {
            "offsets_for_times": {
                "tansu_deviation": "answers offset 0",
                "results": {"tansu": "missing", "apache": "supported"},
            }
        },
    }
    text = parity.render_features(data)
    assert "| feature | tansu 0.6.0 | Apache Kafka 4.1.1 | note |" in text
    assert "| offsets_for_times | **no** | yes | answers offset 0 |" in text
    assert "tansu 0.6.0: 3/4 tests pass; Apache Kafka 4.1.1: 4/4 tests pass." in text

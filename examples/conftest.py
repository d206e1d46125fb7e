"""TEMPORARY while the pytest-commons fixtures land: tests that need a fixture the plugin does
not provide yet are skipped with a reason saying so (instead of erroring at setup).
Delete this file once sql_db, kafka and mockserver are in the plugin."""

import pytest


def pytest_configure(config: pytest.Config) -> None:
    if "backends" not in "".join(config.getini("markers")):
        config.addinivalue_line("markers", "backends(*names): TEMPORARY until sql_db lands")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        info = getattr(item, "_fixtureinfo", None)
        if info is None:
            continue
        missing = sorted(set(info.names_closure) - set(info.name2fixturedefs) - {"request"})
        if missing:
            reason = f"TEMPORARY: pytest-commons does not provide {', '.join(missing)} yet"
            item.add_marker(pytest.mark.skip(reason=reason))

"""Data fixtures and hooks: the run seed, ``faker``, ``seed_data`` marker, ``snapshot_json``,
factories' session, Hypothesis profiles.

Loading this module imports none of faker, factory-boy, polyfactory, syrupy, Hypothesis or
PyYAML; each is imported by the fixture that needs it.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from typing import TYPE_CHECKING, Any

import pytest

from pytest_commons.data import _faker_fixture, hypothesis_profiles, seeding
from pytest_commons.data._faker_fixture import SEED_KEY, run_seed, test_seed
from pytest_commons.plugin import options as _options

if TYPE_CHECKING:
    from sqlalchemy.orm import Session
    from syrupy.assertion import SnapshotAssertion

    from pytest_commons.data.snapshots import Masks

__all__ = [
    "commons_db_session",
    "commons_seed",
    "commons_test_seed",
    "snapshot_json",
    "snapshot_json_masks",
]

SEED_MARKER_HELP = (
    "seed_data(*paths): load YAML/JSON ({table: [rows]}), CSV (file name = table) or .sql files, "
    "relative to the test file, into the test's database (sql_db, postgres_tx or postgres) "
    "before the test."
)


def _seed_line(seed: int) -> str:
    return f"seed {seed} (replay with --commons-seed={seed})"


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", SEED_MARKER_HELP)
    winput: dict[str, Any] | None = getattr(config, "workerinput", None)
    if winput is not None and "commons_seed" in winput:
        seed = int(winput["commons_seed"])
    else:
        raw = _options.get(config, "commons_seed")
        seed = seeding.parse_seed(raw) if raw not in (None, "") else seeding.new_run_seed()
        if winput is None and hasattr(config.hook, "pytest_configure_node"):  # xdist, any name
            config.pluginmanager.register(_SeedToWorkers(seed), "commons-data-xdist")
    config.stash[SEED_KEY] = seed
    # faker's own plugin defines a `faker` fixture too; the plugin registered last wins. The
    # fixture is defined in that module only: defined twice (imported here as well), pytest 9's
    # `--fixtures` compared the two definitions and ended in an INTERNALERROR
    if not config.pluginmanager.is_registered(_faker_fixture):
        config.pluginmanager.register(_faker_fixture, "commons-faker")
    cli_profile = config.getoption("hypothesis_profile", default=None)
    hypothesis_profiles.on_pytest_event(cli_profile, force=bool(cli_profile))


class _SeedToWorkers:
    """Hands the controller's run seed to every xdist worker."""

    def __init__(self, seed: int) -> None:
        self.seed = seed

    def pytest_configure_node(self, node: Any) -> None:
        node.workerinput["commons_seed"] = self.seed


def pytest_report_header(config: pytest.Config) -> str:
    return f"commons: {_seed_line(run_seed(config))}"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        names: list[str] | None = getattr(item, "fixturenames", None)
        if names is None or "_commons_seed_data" in names:
            continue
        if item.get_closest_marker("seed_data") is not None:
            # a new list: parametrized items share one
            item.fixturenames = ["_commons_seed_data", *names]  # type: ignore[attr-defined]


def pytest_collection_finish(session: pytest.Session) -> None:
    # test modules that use Hypothesis have imported it by now
    cli_profile = session.config.getoption("hypothesis_profile", default=None)
    hypothesis_profiles.on_pytest_event(cli_profile)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.failed and SEED_KEY in item.config.stash:
        seed = run_seed(item.config)
        report.sections.append(("commons", _seed_line(seed)))
    return report


@pytest.fixture(scope="session")
def commons_seed(request: pytest.FixtureRequest) -> int:
    """The run seed: ``--commons-seed`` or a random one, the same in every xdist worker.

    Scope: session. Cost: none.
    """
    return run_seed(request.config)


@pytest.fixture
def commons_test_seed(request: pytest.FixtureRequest) -> int:
    """This test's seed (from the run seed and the node id), for your own ``random.Random``.

    Scope: function. Cost: none.
    """
    return test_seed(request)


@pytest.fixture
def _commons_seed_data(request: pytest.FixtureRequest) -> None:
    # put first on every test marked seed_data (see pytest_collection_modifyitems), so the rows
    # are there before the test's other fixtures run; unmarked tests never set it up
    from pytest_commons.data.seed_data import apply_marker

    apply_marker(request)


@pytest.fixture
def commons_db_session(request: pytest.FixtureRequest) -> Iterator[Session]:
    """The SQLAlchemy session factories bind to when the test does not use ``sql_db``.

    By default a session on the test's ``postgres`` database (``postgresql+psycopg``), if the
    test uses ``postgres``; override this fixture to bind factories to your own session.
    Scope: function. Cost: one engine and connection (≈5 ms) when used.
    """
    if "postgres" not in request.fixturenames:
        raise pytest.UsageError(
            "pytest-commons: this factory needs a SQLAlchemy session: use the sql_db fixture "
            "(or postgres) in the test, or override the commons_db_session fixture."
        )
    from sqlalchemy import create_engine
    from sqlalchemy.orm import Session

    database = request.getfixturevalue("postgres")
    engine = create_engine(database.url.replace("postgresql://", "postgresql+psycopg://", 1))
    session = Session(engine)
    try:
        yield session
    finally:
        session.close()
        engine.dispose()


@pytest.fixture
def snapshot_json_masks() -> Masks:
    """Override to choose what :func:`snapshot_json` masks (:class:`~pytest_commons.data.Masks`:
    ``id_keys``, ``paths``, ``auto``, ``strict``). Default: UUIDs and ISO timestamps.

    Scope: function. Cost: none.
    """
    from pytest_commons.data.snapshots import Masks

    return Masks()


@pytest.fixture
def snapshot_json(snapshot: SnapshotAssertion, snapshot_json_masks: Masks) -> SnapshotAssertion:
    """syrupy's ``snapshot``, writing ``.json`` files with volatile values masked.

    UUIDs become ``<uuid:1>``, ``<uuid:2>``… (the same value gets the same number), ISO
    timestamps ``<datetime>``, values under the keys/paths of :func:`snapshot_json_masks`
    ``<id:1>``/``<masked>``. Scope: function. Cost: none beyond syrupy's.
    """
    from pytest_commons.data.snapshots import masked_json_extension

    return snapshot.use_extension(masked_json_extension(snapshot_json_masks))

"""Consumer-driven contract testing with Pact: fixtures, the provider marker and the pact-file
merge at the end of the run.

Consumer side: the ``pact`` fixture hands out a pact-python ``Pact`` whose mock server binds
127.0.0.1. A passing test's interactions are written to the run directory; when the run ends
(after every xdist worker) they are merged into one file per consumer-provider pair in
``pact_dir``, sorted, so the same tests always write the same bytes.

Provider side: ``@pytest.mark.pact_provider("name")`` on a test that takes ``pact_interaction``
makes one test item per interaction of that provider's pact files; the test calls
``pact_interaction.verify(url, states={...})`` against the live application.

pact-python is imported only when a test uses these fixtures.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_commons.pact import _files
from pytest_commons.plugin import options as _options
from pytest_commons.plugin.options import Option

if TYPE_CHECKING:
    from pytest_commons.pact.consumer import CommonsPact

GROUP = "commons-pact"
_options.register(
    Option(
        "pact_dir",
        "Directory the consumer tests write pact files to and provider tests read them from, "
        "relative to the rootdir (default: pacts).",
        default="pacts",
        group=GROUP,
    )
)
_options.register(
    Option(
        "pact_consumer",
        "Consumer name for the `pact` fixture when no pact marker names one.",
        group=GROUP,
    )
)
_options.register(
    Option(
        "pact_provider",
        "Provider name for the `pact` fixture when no pact marker names one.",
        group=GROUP,
    )
)
_options.register(
    Option(
        "pact_write_mode",
        "merge (default): interactions this run did not write stay in the pact file; "
        "overwrite: the file holds exactly this run's interactions.",
        default="merge",
        choices=("merge", "overwrite"),
        group=GROUP,
    )
)

_CALL_PASSED = pytest.StashKey[bool]()
_SUMMARY = pytest.StashKey[tuple[list[str], list[str]]]()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "pact(consumer=None, provider=None): the consumer and provider names of the `pact` "
        "fixture (defaults: ini pact_consumer / pact_provider).",
    )
    config.addinivalue_line(
        "markers",
        "pact_provider(name, consumer=None, pact_dir=None): one test item per interaction of "
        "the pacts for provider `name`, handed to the test as `pact_interaction`.",
    )


def pact_dir(config: pytest.Config, override: str | None = None) -> Path:
    """Where pact files live: ``override`` or the ``pact_dir`` option, under the rootdir."""
    raw = override or _options.get(config, "pact_dir") or "pacts"
    path = Path(raw)
    return path if path.is_absolute() else config.rootpath / path


def _fragment_root(config: pytest.Config) -> Path:
    from pytest_commons.plugin.state import get_registry

    ctx = get_registry(config).ctx
    # the owner's pid: with --reuse-services the run directory is shared between runs
    return ctx.run_dir / f"pact-{ctx.owner_pid}"


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.when == "call":
        item.stash[_CALL_PASSED] = report.passed
    return report


@pytest.fixture
def pact(request: pytest.FixtureRequest) -> Iterator[CommonsPact]:
    """A pact-python ``Pact`` (specification V4) for this test's consumer and provider.

    Names come from ``@pytest.mark.pact(consumer=..., provider=...)``, else the ini/env
    ``pact_consumer`` / ``pact_provider``. ``pact.serve()`` starts Pact's mock server on
    127.0.0.1; point the real HTTP client at its ``.url``. When the test passes its
    interactions are kept, and the run writes them to ``<pact_dir>/<consumer>-<provider>.json``
    at its end (all xdist workers into one file, sorted: the same tests write the same bytes).

    Scope: function. Cost: the Rust core's mock server, ≈1-2 ms per test.
    """
    from pytest_commons.pact.consumer import CommonsPact

    marker = request.node.get_closest_marker("pact")
    kwargs = dict(marker.kwargs) if marker else {}
    consumer = kwargs.get("consumer") or _options.get(request.config, "pact_consumer")
    provider = kwargs.get("provider") or _options.get(request.config, "pact_provider")
    if not consumer or not provider:
        missing = " and ".join(
            side for side, name in (("consumer", consumer), ("provider", provider)) if not name
        )
        pytest.fail(
            f"pytest-commons: the pact fixture has no {missing} name: add "
            "@pytest.mark.pact(consumer=..., provider=...) or set ini pact_consumer / "
            "pact_provider (env PYTEST_COMMONS_PACT_CONSUMER / PYTEST_COMMONS_PACT_PROVIDER)",
            pytrace=False,
        )
    contract = CommonsPact(str(consumer), str(provider))
    yield contract
    if request.node.stash.get(_CALL_PASSED, False) and contract.has_interactions():
        digest = hashlib.sha256(request.node.nodeid.encode()).hexdigest()[:20]
        contract.write_file(_fragment_root(request.config) / digest, overwrite=True)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "pact_interaction" not in metafunc.fixturenames:
        return
    marker = metafunc.definition.get_closest_marker("pact_provider")
    if marker is None or not marker.args:
        pytest.fail(
            f"pytest-commons: {metafunc.definition.nodeid} takes pact_interaction but has no "
            '@pytest.mark.pact_provider("provider name") marker',
            pytrace=False,
        )
    provider = str(marker.args[0])
    consumer = marker.kwargs.get("consumer")
    directory = pact_dir(metafunc.config, marker.kwargs.get("pact_dir"))
    try:
        found = list(_files.interactions(_files.pact_files(directory, provider, consumer)))
    except _files.PactFileError as exc:
        pytest.fail(str(exc), pytrace=False)
    if not found:
        who = f" from consumer {consumer!r}" if consumer else ""
        reason = (
            f"pytest-commons: no pact for provider {provider!r}{who} in {directory} "
            "(run the consumer tests first; they write it)"
        )
        metafunc.parametrize(
            "pact_interaction", [pytest.param(None, marks=pytest.mark.skip(reason=reason))]
        )
        return
    metafunc.parametrize(
        "pact_interaction",
        [_provider_interaction(i) for i in found],
        ids=[_id(i) for i in found],
    )


def _provider_interaction(interaction: _files.Interaction) -> Any:
    from pytest_commons.pact.provider import ProviderInteraction

    return ProviderInteraction(interaction)


def _id(interaction: _files.Interaction) -> str:
    given = ", ".join(str(s["name"]) for s in interaction.states)
    base = f"{interaction.consumer}:{interaction.description}"
    return f"{base} given {given}" if given else base


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    config = session.config
    if hasattr(config, "workerinput"):
        return  # the controller merges, after every worker
    try:
        root = _fragment_root(config)
    except pytest.UsageError:
        return
    if not root.is_dir():
        return
    try:
        written, conflicts = _merge_fragments(config, root)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    config.stash[_SUMMARY] = (written, conflicts)
    if conflicts and session.exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    written, conflicts = config.stash.get(_SUMMARY, ([], []))
    if written or conflicts:
        terminalreporter.section("commons pact", sep="-")
        for line in written:
            terminalreporter.write_line(line)
        for line in conflicts:
            terminalreporter.write_line(line, red=True)


def _merge_fragments(config: pytest.Config, root: Path) -> tuple[list[str], list[str]]:
    pairs: dict[str, list[dict[str, Any]]] = {}
    for path in sorted(root.glob("*/*.json")):
        doc = _files.load(path)
        pairs.setdefault(path.name, []).append(doc)
    keep = _options.get(config, "pact_write_mode") == "merge"
    directory = pact_dir(config)
    written, conflicts = [], []
    for name, docs in sorted(pairs.items()):
        target = directory / name
        changed, clashes = _files.merge(target, docs, keep_existing=keep)
        count = len(_files.load(target)["interactions"])
        state = "written" if changed else "unchanged"
        shown = (
            target.relative_to(config.rootpath)
            if target.is_relative_to(config.rootpath)
            else target
        )
        written.append(f"pact {shown} ({count} interactions, {state})")
        conflicts += [f"pact {shown}: {c}" for c in clashes]
    return written, conflicts

"""The faults API without a service: validation and its messages, URL rewriting, fault names,
engine lookup and a Toxiproxy that fails to start (a stand-in binary)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_commons.core.run import RunContext
from pytest_commons.faults import Fault, FaultError, Faults, Proxy, UnsupportedProtocol, _rewrite
from pytest_commons.faults.builtin import BuiltinEngine
from pytest_commons.faults.model import KINDS, make_toxic
from pytest_commons.faults.toxiproxy import ToxiproxyEngine, ToxiproxyError, find_server
from tests.helpers import fake_binary


@pytest.fixture(scope="module")
def engine() -> Iterator[BuiltinEngine]:
    built = BuiltinEngine()
    yield built
    built.close()


@pytest.fixture
def proxy(engine: BuiltinEngine) -> Iterator[Proxy]:
    # nothing listens on port 9 of loopback: these tests never send data
    made = Proxy(engine, "unit", ("127.0.0.1", 9), "postgresql://u:p%40ss@db.example:5432/x?a=1")
    yield made
    made.close()


def test_the_url_keeps_user_password_path_and_query(proxy: Proxy) -> None:
    assert proxy.url == f"postgresql://u:p%40ss@127.0.0.1:{proxy.port}/x?a=1"
    assert _rewrite("redis://h:1/3", "127.0.0.1", 7) == "redis://127.0.0.1:7/3"
    assert repr(proxy).startswith(f"<Proxy unit 127.0.0.1:{proxy.port} → 127.0.0.1:9 (builtin)")


def test_faults_are_named_removed_by_name_and_cleared(proxy: Proxy) -> None:
    first = proxy.latency(5)
    both = proxy.slicer(10, 2, 100, direction="both", name="chop")
    assert (first.name, both.name) == ("latency_1", "chop")
    assert [t.name for t in both.toxics] == ["chop_upstream", "chop_downstream"]
    assert repr(both) == (
        "<Fault chop slicer upstream+downstream "
        "{'average_size': 10, 'size_variation': 2, 'delay': 100}>"
    )
    with pytest.raises(FaultError, match="already has a fault named 'chop'"):
        proxy.bandwidth(1, name="chop")
    proxy.remove("chop")
    proxy.remove("chop")  # twice: harmless
    assert list(proxy.faults) == ["latency_1"]
    proxy.down()
    proxy.clear()
    assert proxy.faults == {}
    assert proxy.enabled
    with proxy.limit_data(10) as fault:
        assert isinstance(fault, Fault)
        assert fault.kind == "limit_data"
    assert proxy.faults == {}


@pytest.mark.parametrize(
    ("kind", "attrs", "message"),
    [
        ("latency", {"latency": -1}, "latency.latency=-1 must not be negative"),
        ("slicer", {"average_size": 0}, "slicer.average_size must be at least 1 byte"),
        ("timeout", {"timeout": 5, "jitter": 1}, "fault 'timeout' has no attribute 'jitter'"),
    ],
)
def test_bad_attribute_values_are_refused(kind: str, attrs: dict[str, float], message: str) -> None:
    with pytest.raises(FaultError, match=message):
        make_toxic("x", kind, "downstream", 1.0, attrs)


def test_toxicity_out_of_range_is_refused() -> None:
    with pytest.raises(FaultError, match=r"toxicity 1\.5 must be between 0 and 1"):
        make_toxic("x", "latency", "upstream", 1.5, {})


def test_every_kind_documents_its_attributes() -> None:
    assert set(KINDS) == {
        "latency",
        "bandwidth",
        "slow_close",
        "timeout",
        "reset_peer",
        "slicer",
        "limit_data",
    }
    text = (Path(__file__).parents[2] / "docs" / "faults.md").read_text()
    for kind in KINDS:
        assert f"`{kind}` (" in text, kind


def test_targets_a_url_and_an_address_but_not_a_bare_word(engine: BuiltinEngine) -> None:
    box = Faults(engine, "unit-targets")
    by_url = box.proxy("http://127.0.0.1:9/path")
    by_pair = box.proxy(("127.0.0.1", 9))
    assert by_url.url == f"http://127.0.0.1:{by_url.port}/path"
    assert by_pair.url == f"tcp://127.0.0.1:{by_pair.port}"
    assert by_url.name == "unit-targets-1-http"
    with pytest.raises(FaultError, match="names no host and port"):
        box.proxy("http://nowhere/")
    with pytest.raises(UnsupportedProtocol, match="no proxy for 'queue'"):
        box.proxy("queue")
    with pytest.raises(FaultError, match="needs the faults fixture's request"):
        box.proxy("redis")
    box.close()
    assert box.proxies == []
    with pytest.raises(FaultError, match="no proxy named"):
        engine.set_enabled(by_url.name, False)


def test_find_server_prefers_the_configured_path(tmp_path: Path) -> None:
    binary = fake_binary(tmp_path / "bin", "toxiproxy-server", "exit 0\n")
    assert find_server(str(binary), tmp_path) == str(binary)
    assert find_server(str(tmp_path / "missing"), tmp_path) is None


def test_a_toxiproxy_that_exits_is_reported_with_its_log(tmp_path: Path) -> None:
    ctx = RunContext(tmp_path / "run-1-abc", 0, "master", 1)
    (ctx.run_dir / "services").mkdir(parents=True)
    binary = fake_binary(
        tmp_path / "bin", "toxiproxy-server", "echo 'bind: permission denied'\nexit 3\n"
    )
    with pytest.raises(ToxiproxyError) as failure:
        ToxiproxyEngine.for_run(ctx, str(binary), timeout=10)
    text = str(failure.value)
    assert "exited with code 3" in text
    assert "| bind: permission denied" in text
    assert "remedy:" in text
    assert ctx.read("toxiproxy") is None  # no record of a server that is not there


def test_a_toxiproxy_that_cannot_run_is_reported(tmp_path: Path) -> None:
    ctx = RunContext(tmp_path / "run-1-abc", 0, "master", 1)
    (ctx.run_dir / "services").mkdir(parents=True)
    not_exec = tmp_path / "toxiproxy-server"
    not_exec.write_text("")
    with pytest.raises(ToxiproxyError, match="could not run"):
        ToxiproxyEngine.for_run(ctx, str(not_exec), timeout=10)

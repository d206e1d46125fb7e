"""Fault kinds, their attributes and validation — shared by both engines.

The names and attributes are Toxiproxy's (``latency``, ``bandwidth``, ``slow_close``,
``timeout``, ``reset_peer``, ``slicer``, ``limit_data``), so a fault means the same thing on the
real Toxiproxy and on the built-in proxy.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pytest_commons.errors import CommonsError

STREAMS = ("upstream", "downstream")
"""``upstream``: data from the client to the service; ``downstream``: from the service back."""

# kind -> {attribute: (default, meaning)}
KINDS: dict[str, dict[str, tuple[int, str]]] = {
    "latency": {
        "latency": (0, "milliseconds added to every chunk of data"),
        "jitter": (0, "± milliseconds of random variation around latency"),
    },
    "bandwidth": {"rate": (0, "KB/s (1 KB = 1000 bytes) the stream may carry")},
    "slow_close": {"delay": (0, "milliseconds before a close is passed on")},
    "timeout": {
        "timeout": (0, "milliseconds until the connection is closed; 0: it stalls until removed")
    },
    "reset_peer": {"timeout": (0, "milliseconds until the connection is reset (TCP RST)")},
    "slicer": {
        "average_size": (1, "average bytes per slice"),
        "size_variation": (0, "± bytes of random variation of a slice"),
        "delay": (0, "microseconds between slices"),
    },
    "limit_data": {"bytes": (0, "bytes passed on before the connection is closed")},
}


class FaultError(CommonsError):
    """A fault or a proxy request that cannot be honoured (the message says why and what to do)."""


class UnknownFault(FaultError):
    """A fault kind, attribute or direction that does not exist."""


class EngineUnavailable(FaultError):
    """The engine asked for cannot run here (the message says why and what to do)."""


class UnsupportedProtocol(FaultError):
    """A proxy was asked for on a service whose protocol a plain TCP proxy cannot carry."""


@dataclass(frozen=True)
class Toxic:
    """One fault on one stream of a proxy: Toxiproxy's toxic."""

    name: str
    kind: str
    stream: str = "downstream"
    toxicity: float = 1.0
    attributes: dict[str, int] = field(default_factory=dict)

    def attr(self, key: str) -> int:
        return int(self.attributes.get(key, KINDS[self.kind][key][0]))

    def to_api(self) -> dict[str, object]:
        return {
            "name": self.name,
            "type": self.kind,
            "stream": self.stream,
            "toxicity": self.toxicity,
            "attributes": dict(self.attributes),
        }


def make_toxic(
    name: str, kind: str, stream: str, toxicity: float, attributes: dict[str, float]
) -> Toxic:
    """A validated :class:`Toxic`; :class:`UnknownFault` names what exists instead."""
    if kind not in KINDS:
        raise UnknownFault(
            f"faults: unknown fault {kind!r}; known faults: {', '.join(sorted(KINDS))} "
            "(and down()/up() for refused connections)"
        )
    known = KINDS[kind]
    extra = sorted(set(attributes) - set(known))
    if extra:
        raise UnknownFault(
            f"faults: fault {kind!r} has no attribute {', '.join(map(repr, extra))}; "
            "its attributes: "
            + "; ".join(f"{key} ({meaning})" for key, (_, meaning) in known.items())
        )
    if stream not in STREAMS:
        raise UnknownFault(
            f"faults: unknown direction {stream!r}; use upstream (client → service), "
            "downstream (service → client) or both"
        )
    if not 0.0 <= toxicity <= 1.0:
        raise FaultError(f"faults: toxicity {toxicity!r} must be between 0 and 1")
    values: dict[str, int] = {}
    for key, value in attributes.items():
        if value < 0:
            raise FaultError(f"faults: {kind}.{key}={value!r} must not be negative")
        values[key] = int(value)
    if kind == "slicer" and values.get("average_size", 1) < 1:
        raise FaultError("faults: slicer.average_size must be at least 1 byte")
    return Toxic(name, kind, stream, toxicity, values)

"""Pact files as plain JSON: read, check, split and merge them deterministically.

Nothing here imports pact-python: the plugin reads pact files at collection time (one test item
per interaction) and merges the interactions that xdist workers wrote, without loading the
Rust core.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class PactFileError(Exception):
    """A pact file that cannot be used: not JSON, or not shaped like a pact."""


@dataclass(frozen=True)
class Interaction:
    """One interaction of a pact file, as the provider side verifies it."""

    path: Path
    consumer: str
    provider: str
    index: int
    data: dict[str, Any]
    metadata: dict[str, Any]

    @property
    def description(self) -> str:
        return str(self.data["description"])

    @property
    def states(self) -> list[dict[str, Any]]:
        """The provider states, each ``{"name": ..., "params": {...}}`` (v2 ``providerState``
        is read as one state without parameters)."""
        if "providerStates" in self.data:
            return [dict(s) for s in self.data["providerStates"]]
        if self.data.get("providerState"):
            return [{"name": self.data["providerState"]}]
        return []

    @property
    def label(self) -> str:
        """``consumer → provider: description [given a, b]``: how errors name it."""
        given = ", ".join(str(s["name"]) for s in self.states)
        text = f"{self.consumer} → {self.provider}: {self.description!r}"
        return f"{text} (given {given})" if given else text

    def as_pact(self) -> dict[str, Any]:
        """A pact document holding this interaction alone (what one verification replays)."""
        return {
            "consumer": {"name": self.consumer},
            "provider": {"name": self.provider},
            "interactions": [self.data],
            "metadata": self.metadata,
        }


def _fail(path: Path, what: str) -> PactFileError:
    return PactFileError(f"pytest-commons: pact file {path}: {what}")


def load(path: Path) -> dict[str, Any]:
    """Read and check one pact file; :class:`PactFileError` says what is wrong and where."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise _fail(path, f"cannot be read ({exc.strerror})") from None
    except ValueError as exc:
        raise _fail(path, f"is not valid JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise _fail(path, "is not a JSON object")
    for side in ("consumer", "provider"):
        name = doc.get(side, {}).get("name") if isinstance(doc.get(side), dict) else None
        if not isinstance(name, str) or not name:
            raise _fail(path, f"has no {side}.name")
    interactions = doc.get("interactions")
    if not isinstance(interactions, list):
        raise _fail(path, "has no interactions list")
    for i, item in enumerate(interactions):
        if not isinstance(item, dict) or not isinstance(item.get("description"), str):
            raise _fail(path, f"interaction #{i} has no description")
        kind = item.get("type", "Synchronous/HTTP")
        if kind == "Synchronous/HTTP" and not (
            isinstance(item.get("request"), dict) and isinstance(item.get("response"), dict)
        ):
            raise _fail(path, f"interaction {item['description']!r} has no request/response")
    return doc


def interactions(paths: Iterable[Path]) -> Iterator[Interaction]:
    """Every interaction of the given pact files, in file order."""
    for path in paths:
        doc = load(path)
        for i, data in enumerate(doc["interactions"]):
            yield Interaction(
                path,
                doc["consumer"]["name"],
                doc["provider"]["name"],
                i,
                data,
                dict(doc.get("metadata") or {}),
            )


def pact_files(directory: Path, provider: str, consumer: str | None = None) -> list[Path]:
    """The pact files in ``directory`` for ``provider`` (and ``consumer``), sorted by name."""
    if not directory.is_dir():
        return []
    found = []
    for path in sorted(directory.glob("*.json")):
        doc = load(path)
        if doc["provider"]["name"] != provider:
            continue
        if consumer is not None and doc["consumer"]["name"] != consumer:
            continue
        found.append(path)
    return found


def _key(interaction: dict[str, Any]) -> str:
    """What identifies an interaction within a pact: its description and provider states."""
    states = interaction.get("providerStates") or interaction.get("providerState") or []
    return json.dumps([interaction.get("description"), states], sort_keys=True)


def _canonical(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def merge(
    target: Path, fragments: list[dict[str, Any]], *, keep_existing: bool
) -> tuple[bool, list[str]]:
    """Write the interactions of ``fragments`` (pact documents of one consumer-provider pair)
    into ``target``, sorted and keyed so that the same interactions always give the same bytes.

    With ``keep_existing`` the interactions already in ``target`` that this run did not write
    again stay. Returns whether the file changed, and the conflicts: two different interactions
    with the same description and states.
    """
    merged: dict[str, dict[str, Any]] = {}
    conflicts: list[str] = []
    if keep_existing and target.exists():
        for item in load(target)["interactions"]:
            merged[_key(item)] = item
    written: dict[str, dict[str, Any]] = {}
    for doc in fragments:
        for item in doc["interactions"]:
            key = _key(item)
            if key in written and _canonical(written[key]) != _canonical(item):
                conflicts.append(
                    f"interaction {item['description']!r} is declared twice with different "
                    "requests or responses"
                )
                continue
            written[key] = item
    merged.update(written)
    first = fragments[0]
    doc = {
        "consumer": first["consumer"],
        "provider": first["provider"],
        "interactions": [merged[k] for k in sorted(merged)],
        "metadata": first.get("metadata", {}),
    }
    text = _canonical(doc)
    if target.exists() and target.read_text(encoding="utf-8") == text:
        return False, conflicts
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, target)
    return True, conflicts

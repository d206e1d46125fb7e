"""What a failing test's report says about MockServer (see :mod:`pytest_commons.plugin.report`):
the requests no expectation matched, each with the closest expectation and why it did not
match. Works against MockServer itself too: it reads the retrieve API."""

from __future__ import annotations

import json
from typing import Any

#: requests shown at most
LIMIT = 10


def describe(handle: Any, funcargs: dict[str, Any], kept: bool) -> list[str]:
    import httpx

    from pytest_commons.services.mockserver.engine.matching import mismatches
    from pytest_commons.services.mockserver.engine.model import (
        ModelError,
        parse_request_matcher,
        request_from_definition,
    )

    url = handle.info.url

    def retrieve(kind: str) -> list[Any]:
        response = httpx.put(
            f"{url}/mockserver/retrieve", params={"type": kind, "format": "JSON"}, timeout=2
        )
        response.raise_for_status()
        return list(response.json()) if response.content else []

    requests = retrieve("REQUESTS")
    matchers = []
    for expectation in retrieve("ACTIVE_EXPECTATIONS"):
        try:
            matchers.append(parse_request_matcher(expectation.get("httpRequest"), "httpRequest"))
        except ModelError:
            continue  # a matcher this reader does not know (the server accepted it)
    lines = [f"{len(requests)} request(s) received, {len(matchers)} active expectation(s)"]
    unmatched = []
    for raw in requests:
        request = request_from_definition(raw)
        scored = [(mismatches(matcher, request), matcher) for matcher in matchers]
        if any(not why for why, _ in scored):
            continue
        unmatched.append((request, min(scored, key=lambda pair: len(pair[0]), default=None)))
    if not unmatched:
        lines.append("every request matched an expectation")
        return lines
    lines.append(f"{len(unmatched)} request(s) matched no expectation:")
    for request, closest in unmatched[-LIMIT:]:
        query = "&".join(f"{k}={v}" for k, v in request.query)
        lines.append(f"  {request.method} {request.path}{'?' + query if query else ''}")
        if closest is None:
            lines.append("    no expectation is set")
            continue
        why, matcher = closest
        lines.append(f"    closest expectation: {json.dumps(matcher.source, sort_keys=True)[:200]}")
        lines += [f"    - {reason}" for reason in why]
    return lines

"""Serve a pact's interactions from MockServer: for consumer tests that already use it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pytest_commons.pact import _files


def _values(mapping: Any) -> dict[str, list[str]]:
    """Pact headers/query (``{k: v}`` or ``{k: [v, ...]}``, or a v2 query string) → MockServer's
    ``{k: [v, ...]}``."""
    if not mapping:
        return {}
    if isinstance(mapping, str):
        from urllib.parse import parse_qs

        return {k: list(v) for k, v in parse_qs(mapping, keep_blank_values=True).items()}
    return {
        str(k): [str(x) for x in v] if isinstance(v, list) else [str(v)] for k, v in mapping.items()
    }


def _body(part: dict[str, Any], *, request: bool) -> dict[str, Any] | None:
    body = part.get("body")
    if body is None:
        return None
    content_type = ""
    if (
        isinstance(body, dict)
        and "content" in body
        and ("contentType" in body or "encoded" in body)
    ):
        content_type = str(body.get("contentType", ""))
        body = body["content"]  # V4's body wrapper
    if isinstance(body, (dict, list)) or "json" in content_type:
        out: dict[str, Any] = {"type": "JSON", "json": body}
        if request:
            out["matchType"] = "ONLY_MATCHING_FIELDS"
        return out
    return {"type": "STRING", "string": str(body)}


def expectation(interaction: _files.Interaction) -> dict[str, Any]:
    """The MockServer expectation that answers ``interaction``'s request with its response.

    Pact's matching rules are not carried over: the expectation matches the example values.
    """
    req, resp = interaction.data["request"], interaction.data["response"]
    http_request: dict[str, Any] = {"method": req.get("method", "GET"), "path": req["path"]}
    if query := _values(req.get("query")):
        http_request["queryStringParameters"] = query
    if headers := _values(req.get("headers")):
        http_request["headers"] = headers
    if (body := _body(req, request=True)) is not None:
        http_request["body"] = body
    http_response: dict[str, Any] = {"statusCode": int(resp.get("status", 200))}
    if headers := _values(resp.get("headers")):
        http_response["headers"] = headers
    if (body := _body(resp, request=False)) is not None:
        http_response["body"] = body
    return {
        "id": f"pact:{interaction.consumer}:{interaction.provider}:{interaction.index}",
        "httpRequest": http_request,
        "httpResponse": http_response,
        "times": {"unlimited": True},
    }


def load_pact_into_mockserver(pact_file: str | Path, mockserver_url: str) -> list[str]:
    """Create one MockServer expectation per HTTP interaction of ``pact_file`` on the MockServer
    at ``mockserver_url`` (the ``mockserver_url`` fixture); returns the interactions' labels.

    Message interactions are skipped. A pact that is not valid raises
    :class:`~pytest_commons.pact.PactFileError` naming the file.
    """
    import httpx

    path = Path(pact_file)
    loaded = [
        i
        for i in _files.interactions([path])
        if i.data.get("type", "Synchronous/HTTP") == "Synchronous/HTTP"
    ]
    if not loaded:
        return []
    payload = [expectation(i) for i in loaded]
    response = httpx.put(
        mockserver_url.rstrip("/") + "/mockserver/expectation",
        content=json.dumps(payload),
        headers={"content-type": "application/json"},
        timeout=10,
    )
    if response.status_code >= 300:
        raise _files.PactFileError(
            f"pytest-commons: MockServer at {mockserver_url} refused the expectations of "
            f"{path}: HTTP {response.status_code} {response.text[:500]}"
        )
    return [i.label for i in loaded]

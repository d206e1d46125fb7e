"""Carrying out actions: canned responses, forwarding to loopback servers, raw bytes.

Responses are encoded to bytes in one piece and written with a single ``write`` so a
keep-alive client never waits on Nagle's algorithm.
"""

from __future__ import annotations

import http.client
import json
import ssl
from http import HTTPStatus
from typing import Final
from urllib.parse import urlencode

from .model import (
    LOOPBACK_HOSTS,
    ForwardAction,
    JsonObject,
    ModelError,
    RecordedRequest,
    RecordedResponse,
    ResponseAction,
    response_body,
)

_HOP_BY_HOP: Final = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
        "content-length",
        "host",
    }
)
FORWARD_TIMEOUT: Final = 30.0


class ForwardError(Exception):
    """Forwarding failed (refused, timed out, or a non-loopback target)."""


def reason_for(status: int) -> str:
    """The standard reason phrase for ``status`` (empty when unknown)."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


def canned_response(action: ResponseAction) -> RecordedResponse:
    """The response an ``httpResponse`` action describes."""
    return RecordedResponse(
        status=action.status,
        reason=action.reason if action.reason is not None else reason_for(action.status),
        headers=list(action.headers),
        body=action.body,
    )


def not_found() -> RecordedResponse:
    """MockServer's answer to a request no expectation matched: 404, empty body."""
    return RecordedResponse(404, "Not Found")


def _clean(text: str) -> str:
    return text.replace("\r", " ").replace("\n", " ")


def encode_response(
    response: RecordedResponse,
    *,
    head_only: bool = False,
    close: bool = False,
    suppress_content_length: bool = False,
    content_length_override: int | None = None,
) -> bytes:
    """Serialise a response as HTTP/1.1 bytes (status line, headers, body)."""
    lines = [f"HTTP/1.1 {response.status} {_clean(response.reason)}".rstrip()]
    for name, value in response.headers:
        lowered = name.lower()
        if lowered in ("content-length", "connection", "transfer-encoding"):
            continue
        lines.append(f"{_clean(name)}: {_clean(value)}")
    if content_length_override is not None:
        lines.append(f"Content-Length: {content_length_override}")
    elif not suppress_content_length:
        lines.append(f"Content-Length: {len(response.body)}")
    lines.append("Connection: close" if close else "Connection: keep-alive")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", errors="replace")
    return head if head_only else head + response.body


def _override_request(request: RecordedRequest, override: JsonObject) -> RecordedRequest:
    """Apply ``requestOverride`` fields (method, path, query, headers, body)."""
    method = override.get("method")
    path = override.get("path")
    query = list(request.query)
    for name, values in _pairs_by_name(override.get("queryStringParameters")).items():
        query = [(k, v) for k, v in query if k != name] + [(name, v) for v in values]
    headers = list(request.headers)
    for name, values in _pairs_by_name(override.get("headers")).items():
        headers = [(k, v) for k, v in headers if k.lower() != name.lower()]
        headers.extend((name, v) for v in values)
    body = request.body
    if override.get("body") is not None:
        body, content_type = response_body(override["body"], "/requestOverride/body")
        if content_type and not any(k.lower() == "content-type" for k, _ in headers):
            headers.append(("Content-Type", content_type))
    return RecordedRequest(
        method=method if isinstance(method, str) and method else request.method,
        path=path if isinstance(path, str) and path else request.path,
        query=query,
        headers=headers,
        body=body,
        keep_alive=request.keep_alive,
    )


def _pairs_by_name(raw: object) -> dict[str, list[str]]:
    result: dict[str, list[str]] = {}
    if isinstance(raw, dict):
        for name, values in raw.items():
            items = values if isinstance(values, list) else [values]
            result[str(name)] = [str(v) for v in items]
    elif isinstance(raw, list):
        for item in raw:
            if isinstance(item, dict) and "name" in item:
                values = item.get("values", [item["value"]] if "value" in item else [])
                result[str(item["name"])] = [str(v) for v in values]
    return result


def forward(action: ForwardAction, request: RecordedRequest) -> RecordedResponse:
    """Send ``request`` to the action's loopback target and return its response."""
    if action.request_override is not None:
        request = _override_request(request, action.request_override)
    host, port = action.host, action.port
    if host is None:
        host_header = request.header("host") or ""
        name, _, port_text = host_header.rpartition(":")
        host, port = (name, int(port_text)) if port_text.isdigit() and name else (host_header, None)
    if host.lower() not in LOOPBACK_HOSTS:
        raise ForwardError(f"refusing to forward to non-loopback host {host!r}")
    secure = action.scheme == "HTTPS"
    port = port or (443 if secure else 80)
    connection: http.client.HTTPConnection
    if secure:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        connection = http.client.HTTPSConnection(
            host.strip("[]"), port, timeout=FORWARD_TIMEOUT, context=context
        )
    else:
        connection = http.client.HTTPConnection(host.strip("[]"), port, timeout=FORWARD_TIMEOUT)
    target = request.path + (f"?{urlencode(request.query)}" if request.query else "")
    headers = [(k, v) for k, v in request.headers if k.lower() not in _HOP_BY_HOP]
    try:
        connection.putrequest(request.method, target, skip_accept_encoding=True, skip_host=True)
        connection.putheader("Host", f"{host}:{port}")
        for name, value in headers:
            connection.putheader(name, value)
        if request.body or request.method.upper() in ("POST", "PUT", "PATCH"):
            connection.putheader("Content-Length", str(len(request.body)))
        connection.endheaders(request.body or None)
        upstream = connection.getresponse()
        body = upstream.read()
        response = RecordedResponse(
            status=upstream.status,
            reason=upstream.reason or reason_for(upstream.status),
            headers=[(k, v) for k, v in upstream.getheaders() if k.lower() not in _HOP_BY_HOP],
            body=body,
        )
    except (OSError, http.client.HTTPException) as exc:
        raise ForwardError(f"forwarding to {host}:{port} failed: {exc}") from exc
    finally:
        connection.close()
    override = action.response_override
    if override is not None:
        if override.status is not None:
            response.status = override.status
            response.reason = override.reason or reason_for(override.status)
        elif override.reason is not None:
            response.reason = override.reason
        for name, _value in override.headers:
            response.headers = [(k, v) for k, v in response.headers if k.lower() != name.lower()]
        response.headers.extend(override.headers)
        if override.body is not None:
            response.body = override.body
    return response


def model_error_text(error: ModelError, document: object) -> str:
    """MockServer-style text for a rejected expectation/verification document."""
    if isinstance(document, (bytes, str)):
        shown = document.decode("utf-8", "replace") if isinstance(document, bytes) else document
    else:
        shown = json.dumps(document, indent=2)
    indented = "\n".join("  " + line for line in shown.splitlines())
    return (
        f"incorrect request format for:\n\n{indented}\n\n schema validation errors:\n\n"
        f"  1 error:\n   - {error}\n"
    )

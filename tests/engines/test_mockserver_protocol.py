"""MockServer's REST/JSON protocol on the engine, over real HTTP (no client library).

Each test speaks the JSON documents of MockServer's OpenAPI spec to a running engine and
checks what a user of MockServer relies on: which requests match, what is answered, what
the control plane returns, and that a document the engine cannot honour is refused with
``400`` and the offending field, never accepted and then silently mismatched.
"""

from __future__ import annotations

import base64
import datetime
import json
import os
import socket
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from pytest_commons.services.mockserver.engine import MockServerEngine
from pytest_commons.services.mockserver.engine.__main__ import EngineHub
from tests.helpers import JavaMockServer, mockserver_engine_name

ENGINE = "pytest_commons.services.mockserver.engine"


@pytest.fixture(scope="module")
def engine_name() -> str:
    """``commons`` or ``java``: which engine this run's protocol tests talk to
    (``$PYTEST_COMMONS_MOCKSERVER_ENGINE``, resolved as the local backend resolves it)."""
    return mockserver_engine_name()


@pytest.fixture(scope="module")
def engine(engine_name: str) -> Iterator[MockServerEngine | JavaMockServer]:
    server = JavaMockServer() if engine_name == "java" else MockServerEngine()
    with server as running:
        yield running


@pytest.fixture(scope="module")
def http_session(engine: MockServerEngine) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=engine.url, timeout=10) as session:
        yield session


@pytest.fixture
def http(engine: MockServerEngine, http_session: httpx.Client) -> httpx.Client:
    """A client of the module's engine, reset before the test."""
    engine.reset()
    return http_session


def put(http: httpx.Client, path: str, document: Any = None, **params: str) -> httpx.Response:
    """``PUT /mockserver/<path>`` with a JSON document."""
    content = b"" if document is None else json.dumps(document).encode()
    return http.put(f"/mockserver/{path}", content=content, params=params)


def expect(http: httpx.Client, *documents: Any) -> list[dict[str, Any]]:
    """Create expectations; they must be accepted."""
    response = put(http, "expectation", list(documents))
    assert response.status_code == 201, response.text
    created: list[dict[str, Any]] = response.json()
    return created


def raw_exchange(engine: MockServerEngine, data: bytes) -> bytes:
    """Send raw bytes and read until the engine closes the connection."""
    with socket.create_connection((engine.host, engine.port), timeout=10) as sock:
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def head_and_body(raw: bytes) -> tuple[dict[str, str], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return {"status-line": lines[0], **{k.lower(): v for k, v in headers.items()}}, body


# --------------------------------------------------------------------------- rejected documents

RESPOND: dict[str, Any] = {"httpResponse": {}}


def _req(**fields: Any) -> dict[str, Any]:
    return {"httpRequest": {"path": "/x", **fields}, **RESPOND}


def _resp(**fields: Any) -> dict[str, Any]:
    return {"httpRequest": {"path": "/x"}, "httpResponse": fields}


def _body(body: Any) -> dict[str, Any]:
    return _req(body=body)


INVALID = [
    # expectation level
    ({"httpRequest": {}, "httpResponseTemplate": {}}, '"/httpResponseTemplate" is not supported'),
    ({"scenarioName": "s", **RESPOND}, '"/scenarioName" is not supported'),
    ({"httpResponse": {}, "httpError": {}}, "has more than one action: httpResponse, httpError"),
    ({"nonsense": 1, **RESPOND}, 'field: "/" has unknown field(s): nonsense'),
    ({"id": "", **RESPOND}, '"/id" must be a non-empty string'),
    ({"id": 7, **RESPOND}, '"/id" must be a non-empty string'),
    ({"percentage": 101, **RESPOND}, '"/percentage" must be between 0 and 100'),
    ({"times": {"remainingTimes": 1, "count": 2}, **RESPOND}, '"/times" has unknown field(s)'),
    ({"times": [], **RESPOND}, '"/times" must be a JSON object, found array'),
    ({"timeToLive": {"ttl": 5}, **RESPOND}, '"/timeToLive" has unknown field(s)'),
    (
        {"timeToLive": {"timeUnit": "WEEKS", "timeToLive": 1}, **RESPOND},
        '"/timeToLive/timeUnit" must be one of NANOSECONDS',
    ),
    ({"metadata": ["owner"], **RESPOND}, '"/metadata" must be an object'),
    # request matcher
    (_req(anyOf=[]), '"/httpRequest/anyOf" this request definition type is not supported'),
    (_req(jwt={}), '"/httpRequest/jwt" is not supported by this engine'),
    (_req(keepAlive=1), '"/httpRequest/keepAlive" must be a boolean, found number'),
    (_req(method=["GET"]), '"/httpRequest/method" must be a string or a matcher object, found'),
    (_req(path={"value": "/x", "regex": True}), "unsupported matcher field(s): regex"),
    (_req(path={"not": "yes", "value": "/x"}), '"/httpRequest/path/not" must be a boolean'),
    (_req(path={"schema": "{oops"}), '"/httpRequest/path/schema" is not valid JSON schema text'),
    (_req(path={"schema": 12}), '"/httpRequest/path/schema" must be a JSON schema object'),
    (_req(headers={"X": [None]}), '"/httpRequest/headers/X/0" must be a string or a matcher'),
    (_req(headers={"X": [{"value": {"a": 1}}]}), "found object"),
    (_req(headers="X: 1"), '"/httpRequest/headers" must be an object or an array, found string'),
    (
        _req(headers=[{"values": ["1"]}]),
        '"/httpRequest/headers/0" is missing required field "name"',
    ),
    (_req(headers=[7]), '"/httpRequest/headers/0" must be a JSON object, found number'),
    (_req(cookies={"keyMatchStyle": "ALL"}), '"/httpRequest/cookies/keyMatchStyle" must be'),
    (
        _req(queryStringParameters={"a": {"parameterStyle": "FORM", "values": ["1"]}}),
        '"/httpRequest/queryStringParameters/a/parameterStyle" is not supported by this engine',
    ),
    # body matchers
    (_body({"type": 1}), '"/httpRequest/body/type" must be a string'),
    (_body({"type": "XPATH", "xpath": "/a"}), "body matcher XPATH is not supported"),
    (_body({"type": "TEXT"}), "unknown body type 'TEXT'"),
    (_body({"type": "STRING", "string": 5}), '"/httpRequest/body/string" must be a string'),
    (_body({"type": "REGEX"}), '"/httpRequest/body/regex" must be a string'),
    (_body({"type": "JSON"}), 'is missing required field "json"'),
    (_body({"type": "JSON", "json": "{nope"}), '"/httpRequest/body/json" is not valid JSON'),
    (_body({"type": "JSON", "json": {}, "matchType": "LOOSE"}), "must be ONLY_MATCHING_FIELDS"),
    (_body({"type": "JSON_SCHEMA"}), 'is missing required field "jsonSchema"'),
    (_body({"type": "JSON_PATH", "jsonPath": ""}), '"/httpRequest/body/jsonPath" must be a non'),
    (_body({"type": "JSON_PATH", "jsonPath": "$[?("}), "is not a valid JSONPath"),
    (_body({"type": "BINARY"}), '"/httpRequest/body/base64Bytes" must be a base64 string'),
    (_body({"type": "BINARY", "base64Bytes": "***"}), "is not valid base64"),
    (_body({"type": "STRING", "string": "x", "not": "yes"}), "must be a boolean, found string"),
    # httpResponse
    (_resp(status=200), '"/httpResponse" has unsupported field(s): status'),
    (_resp(statusCode=1000), '"/httpResponse/statusCode" must be between 100 and 999'),
    (_resp(statusCode=True), "must be an integer, found boolean"),
    (_resp(reasonPhrase=200), '"/httpResponse/reasonPhrase" must be a string'),
    (_resp(headers=5), '"/httpResponse/headers" must be an object or an array, found number'),
    (_resp(headers=[{"values": ["1"]}]), "has a header/cookie without a string name"),
    (_resp(headers={"X": [True]}), '"/httpResponse/headers/X" values must be strings'),
    (_resp(body={"type": "JSON", "contentType": 5}), '"/httpResponse/body/contentType" must'),
    (_resp(body={"type": "STRING", "string": ["a"]}), '"/httpResponse/body/string" must be'),
    (_resp(body={"type": "XML_SCHEMA"}), "response body type 'XML_SCHEMA' is not supported"),
    (
        _resp(body={"type": "STRING", "string": "x", "charset": "klingon"}),
        '"/httpResponse/body/charset" cannot encode the body: unknown encoding: klingon',
    ),
    (
        _resp(body={"type": "STRING", "string": "€", "charset": "ascii"}),
        "\"/httpResponse/body/charset\" cannot encode the body: 'ascii' codec",
    ),
    (_resp(delay={"timeUnit": "FORTNIGHTS", "value": 1}), '"/httpResponse/delay/timeUnit"'),
    (_resp(delay={"value": -5}), '"/httpResponse/delay/value" must not be negative'),
    (_resp(delay={"value": 5, "unit": "SECONDS"}), "unsupported delay field(s): unit"),
    (_resp(connectionOptions={"chunkSize": 5}), "unsupported option(s): chunkSize"),
    (_resp(connectionOptions="fast"), '"/httpResponse/connectionOptions" must be a JSON object'),
    # httpForward, httpOverrideForwardedRequest, httpError
    ({"httpForward": {"port": 80}}, '"/httpForward/host" must be a host name'),
    ({"httpForward": {"host": "localhost", "scheme": "FTP"}}, "must be HTTP or HTTPS"),
    ({"httpForward": {"host": "localhost", "path": "/x"}}, "has unsupported field(s): path"),
    ({"httpOverrideForwardedRequest": {"requestModifier": {}}}, "unsupported field(s)"),
    (
        {"httpOverrideForwardedRequest": {"requestOverride": {"socketAddress": {"host": "a.io"}}}},
        "\"/httpOverrideForwardedRequest/requestOverride/socketAddress/host\" 'a.io' is not",
    ),
    (
        {"httpOverrideForwardedRequest": {"requestOverride": {"headers": {"Host": ["a.io:80"]}}}},
        "'a.io' is not allowed: this engine forwards to loopback hosts only",
    ),
    (
        {"httpOverrideForwardedRequest": {"requestOverride": {"body": {"type": "NOPE"}}}},
        "response body type 'NOPE' is not supported",
    ),
    ({"httpOverrideForwardedRequest": {"responseOverride": []}}, "must be a JSON object"),
    ({"httpError": {"closeSocket": True}}, '"/httpError" has unsupported field(s): closeSocket'),
    ({"httpError": {"responseBytes": 5}}, '"/httpError/responseBytes" must be a base64 string'),
    ({"httpError": {"responseBytes": "%%%"}}, '"/httpError/responseBytes" is not valid base64'),
]


@pytest.mark.parametrize(("document", "reason"), INVALID)
def test_unsupported_or_malformed_expectations_are_400_naming_the_field(
    http: httpx.Client, document: dict[str, Any], reason: str
) -> None:
    response = put(http, "expectation", document)
    assert response.status_code == 400, response.text
    assert reason in response.text
    assert response.text.startswith("incorrect request format for:")
    # nothing half-created: the engine matches nothing afterwards
    assert put(http, "retrieve", type="active_expectations").json() == []


def test_an_empty_expectation_body_is_400(http: httpx.Client) -> None:
    response = put(http, "expectation")
    assert response.status_code == 400
    assert "an expectation (or array of expectations) is required" in response.text


# --------------------------------------------------------------------------- string matchers


def test_string_matcher_object_form_not_and_optional(http: httpx.Client) -> None:
    expect(
        http,
        {
            "httpRequest": {
                "method": {"not": True, "value": "GET"},
                "path": "/obj",
                "headers": {"?X-Trace": ["t-[0-9]+"]},
            },
            "httpResponse": {"body": "matched"},
        },
    )
    assert http.post("/obj").text == "matched"
    assert http.get("/obj").status_code == 404
    # an optional header may be absent, but when present it must match
    assert http.post("/obj", headers={"X-Trace": "t-42"}).status_code == 200
    assert http.post("/obj", headers={"X-Trace": "nope"}).status_code == 404


def test_json_schema_string_matchers(http: httpx.Client) -> None:
    expect(
        http,
        {
            "httpRequest": {
                "path": {"schema": {"type": "string", "pattern": "^/s/[a-z]+$"}},
                "headers": {"X-Count": [{"schema": {"type": "integer", "minimum": 3}}]},
            },
            "httpResponse": {"body": "schema"},
        },
    )
    assert http.get("/s/abc", headers={"X-Count": "5"}).text == "schema"
    assert http.get("/s/abc", headers={"X-Count": "2"}).status_code == 404
    assert http.get("/s/abc", headers={"X-Count": "many"}).status_code == 404
    assert http.get("/s/ABC", headers={"X-Count": "5"}).status_code == 404


def test_numbers_and_booleans_match_their_text(http: httpx.Client) -> None:
    expect(
        http,
        {
            "httpRequest": {"path": "/n", "queryStringParameters": {"n": [5], "flag": [True]}},
            "httpResponse": {"body": "typed"},
        },
    )
    assert http.get("/n", params={"n": "5", "flag": "true"}).text == "typed"
    assert http.get("/n", params={"n": "6", "flag": "true"}).status_code == 404
    assert http.get("/n", params={"n": "5", "flag": "false"}).status_code == 404


def test_an_invalid_regex_matches_literally(http: httpx.Client) -> None:
    expect(http, {"httpRequest": {"path": "/a(b"}, "httpResponse": {"body": "literal"}})
    assert http.get("/a(b").text == "literal"
    assert http.get("/ab").status_code == 404


def test_matching_key_requires_every_value_to_match(http: httpx.Client) -> None:
    expect(
        http,
        {
            "httpRequest": {
                "path": "/mk",
                "queryStringParameters": {"keyMatchStyle": "MATCHING_KEY", "tag": ["a", "b"]},
            },
            "httpResponse": {"body": "all"},
        },
        {
            "httpRequest": {"path": "/sub", "queryStringParameters": {"tag": ["a", "b"]}},
            "httpResponse": {"body": "some"},
        },
    )
    assert http.get("/mk", params=[("tag", "a"), ("tag", "b")]).text == "all"
    assert http.get("/mk", params=[("tag", "a"), ("tag", "b"), ("tag", "c")]).status_code == 404
    # the default, SUB_SET, ignores extra values
    assert http.get("/sub", params=[("tag", "a"), ("tag", "b"), ("tag", "c")]).text == "some"


def test_negated_key_with_values_excludes_only_those_values(http: httpx.Client) -> None:
    expect(
        http,
        {"httpRequest": {"path": "/nk", "headers": {"!X-Mode": ["test"]}}, "httpResponse": {}},
    )
    assert http.get("/nk").status_code == 200
    assert http.get("/nk", headers={"X-Mode": "prod"}).status_code == 200
    assert http.get("/nk", headers={"X-Mode": "test"}).status_code == 404


def test_key_value_array_forms(http: httpx.Client) -> None:
    expect(
        http,
        {
            "httpRequest": {
                "path": "/arr",
                "headers": ["X-Present", {"name": "X-One", "value": "1"}],
                "cookies": [{"name": "sid", "value": "s-.*"}],
            },
            "httpResponse": {"body": "arrays"},
        },
    )
    good = {"X-Present": "anything", "X-One": "1", "Cookie": "flag; sid=s-1"}
    assert http.get("/arr", headers=good).text == "arrays"
    assert http.get("/arr", headers={**good, "X-One": "2"}).status_code == 404
    assert http.get("/arr", headers={"X-One": "1", "Cookie": "sid=s-1"}).status_code == 404


def test_per_key_values_object_form(http: httpx.Client) -> None:
    # keyToMultiValue allows {"name": {"values": [...]}} besides {"name": [...]}
    expect(
        http,
        {
            "httpRequest": {"path": "/kv", "queryStringParameters": {"id": {"values": ["[0-9]+"]}}},
            "httpResponse": {"body": "values"},
        },
    )
    assert http.get("/kv", params={"id": "12"}).text == "values"
    assert http.get("/kv", params={"id": "x"}).status_code == 404


def test_path_parameters_need_placeholders_in_the_path(http: httpx.Client) -> None:
    # without a {name} in the path there are no path parameters to satisfy the matcher
    expect(
        http,
        {
            "httpRequest": {"path": "/orders/1", "pathParameters": {"id": ["1"]}},
            "httpResponse": {},
        },
    )
    assert http.get("/orders/1").status_code == 404


def test_negated_path_template(http: httpx.Client) -> None:
    expect(http, {"httpRequest": {"path": "!/orders/{id}"}, "httpResponse": {"body": "other"}})
    assert http.get("/users/1").text == "other"
    assert http.get("/orders/5").status_code == 404


def test_clear_and_retrieve_by_a_path_template(http: httpx.Client) -> None:
    expect(
        http,
        {
            "id": "templated",
            "httpRequest": {"path": "/orders/{id}", "pathParameters": {"id": ["[0-9]+"]}},
            "httpResponse": {},
        },
        {"id": "plain", "httpRequest": {"path": "/orders"}, "httpResponse": {}},
    )
    # measured on MockServer 5.15.0: a template selects a template expectation only with
    # pathParameters; a concrete path selects it through the expectation's own template
    by_text = {"path": "/orders/{id}"}
    assert put(http, "retrieve", by_text, type="active_expectations").json() == []
    by_template = {"path": "/orders/{id}", "pathParameters": {"id": ["5"]}}
    found = put(http, "retrieve", by_template, type="active_expectations")
    assert [e["id"] for e in found.json()] == ["templated"]
    assert put(http, "clear", {"path": "/orders/1"}, type="expectations").status_code == 200
    remaining = put(http, "retrieve", type="active_expectations").json()
    assert [e["id"] for e in remaining] == ["plain"]


def test_retrieve_expectations_by_a_definition_with_headers_cookies_and_body(
    http: httpx.Client,
) -> None:
    # MockServer selects the expectations whose request has everything the definition asks
    # for (the definition is the matcher, the expectation's request the request)
    expect(
        http,
        {
            "id": "full",
            "httpRequest": {
                "method": "POST",
                "path": "/full",
                "queryStringParameters": {"q": ["1"]},
                "headers": [{"name": "X-Kind", "values": ["a"]}],
                "cookies": {"sid": "s1"},
                "body": {"type": "JSON", "json": {"a": 1}},
            },
            "httpResponse": {},
        },
        {
            "id": "binary",
            "httpRequest": {"path": "/bin", "body": {"type": "BINARY", "base64Bytes": "AAE="}},
            "httpResponse": {},
        },
        {"id": "string", "httpRequest": {"path": "/s", "body": "text"}, "httpResponse": {}},
    )

    def selected(definition: dict[str, Any]) -> list[str]:
        response = put(http, "retrieve", definition, type="active_expectations")
        return [e["id"] for e in response.json()]

    full = {
        "method": "POST",
        "path": "/full",
        "queryStringParameters": [{"name": "q", "values": ["1"]}],
        "headers": {"X-Kind": "a", "keyMatchStyle": "SUB_SET"},
        "cookies": [{"name": "sid", "value": "s1"}],
        "body": {"type": "JSON", "json": '{"a": 1, "b": 2}'},
    }
    assert selected(full) == []  # the expectation's body has no "b"
    assert selected({**full, "body": {"type": "JSON", "json": '{"a": 1}'}}) == ["full"]
    assert selected({"path": "/full", "headers": {"X-Kind": ["a"]}}) == ["full"]
    assert selected({"path": "/full", "headers": {"X-Kind": ["b"]}}) == []
    assert selected({"path": "/full", "queryStringParameters": {"q": ["1"]}}) == ["full"]
    assert selected({"path": "/full", "cookies": {"sid": "s1"}}) == ["full"]
    assert selected({"path": "/bin", "body": {"type": "BINARY", "base64Bytes": "AAE="}}) == [
        "binary"
    ]
    assert selected({"path": "/s", "body": {"type": "STRING", "string": "text"}}) == ["string"]
    assert selected({"path": "/s", "body": "other"}) == []
    assert selected({"path": "/full", "method": "POST", "body": {"a": 1}}) == ["full"]


# measured against MockServer 5.15.0 (the test runs on both engines): which expectations a
# clear or retrieve by request definition selects
_CONTROL_PLANE_CASES = [
    (
        "path-only-selects-every-method",
        [
            {"method": "GET", "path": "/a"},
            {"method": "POST", "path": "/a"},
            {"method": "GET", "path": "/b"},
        ],
        {"path": "/a"},
        [0, 1],
    ),
    (
        "method-selects-method-less",
        [{"path": "/a"}, {"method": "GET", "path": "/a"}],
        {"method": "GET", "path": "/a"},
        [0, 1],
    ),
    (
        "header-needs-the-header",
        [{"path": "/a"}, {"path": "/a", "headers": {"X": ["1"]}}],
        {"path": "/a", "headers": {"X": ["1"]}},
        [1],
    ),
    (
        "regex-definition",
        [{"path": "/a/1"}, {"path": "/a/2"}, {"path": "/b"}],
        {"path": "/a/.*"},
        [0, 1],
    ),
    ("regex-expectation", [{"path": "/a/.*"}], {"path": "/a/1"}, [0]),
    (
        "query-and-body-ignored",
        [{"path": "/a", "queryStringParameters": {"q": ["1"]}}, {"path": "/a", "body": "x"}],
        {"path": "/a"},
        [0, 1],
    ),
    ("body-needs-the-body", [{"path": "/a"}], {"path": "/a", "body": "x"}, []),
    ("negated-path", [{"path": "/a"}, {"path": "/b"}], {"path": "!/a"}, [1]),
    (
        "method-only",
        [{"method": "GET", "path": "/a"}, {"method": "POST", "path": "/b"}],
        {"method": "GET"},
        [0],
    ),
    ("method-regex-expectation", [{"method": "P.*", "path": "/a"}], {"method": "PUT"}, [0]),
    (
        "secure-must-be-equal",
        [{"path": "/a", "secure": True}, {"path": "/a"}],
        {"path": "/a", "secure": False},
        [],
    ),
]


@pytest.mark.parametrize(
    ("requests", "definition", "selected"),
    [pytest.param(r, d, s, id=i) for i, r, d, s in _CONTROL_PLANE_CASES],
)
def test_clear_selects_what_the_definition_matches(
    http: httpx.Client, requests: list[Any], definition: Any, selected: list[int]
) -> None:
    """Issue 16: ``clear`` with a definition less specific than an expectation (path only vs
    GET + path) clears it, as MockServer does; ``retrieve`` selects the same expectations."""
    expect(
        http,
        *({"id": f"e{i}", "httpRequest": r, "httpResponse": {}} for i, r in enumerate(requests)),
    )
    wanted = [f"e{i}" for i in selected]
    found = put(http, "retrieve", definition, type="active_expectations").json()
    assert [e["id"] for e in found] == wanted
    assert put(http, "clear", definition, type="expectations").status_code == 200
    left = [e["id"] for e in put(http, "retrieve", type="active_expectations").json()]
    assert left == [f"e{i}" for i in range(len(requests)) if i not in selected]


# --------------------------------------------------------------------------- body matchers


def test_json_unit_placeholders(http: httpx.Client) -> None:
    expect(
        http,
        {
            "httpRequest": {
                "path": "/ju",
                "body": {
                    "type": "JSON",
                    "json": {
                        "id": "${json-unit.any-number}",
                        "name": "${json-unit.any-string}",
                        "active": "${json-unit.any-boolean}",
                        "code": "${json-unit.regex}[A-Z]{3}",
                        "note": "${json-unit.ignore}",
                        "literal": "${json-unit.unknown}",
                    },
                },
            },
            "httpResponse": {"body": "placeholders"},
        },
    )
    good = {
        "id": 7,
        "name": "ann",
        "active": False,
        "code": "ABC",
        "literal": "${json-unit.unknown}",
    }
    assert http.post("/ju", json=good).text == "placeholders"  # "note" may be missing
    assert http.post("/ju", json={**good, "note": {"any": "thing"}}).status_code == 200
    for field, bad in [
        ("id", True),
        ("id", "7"),
        ("name", 1),
        ("active", "no"),
        ("code", "abcd"),
        ("literal", "x"),
    ]:
        assert http.post("/ju", json={**good, field: bad}).status_code == 404, field


def test_json_unit_invalid_regex_never_matches(http: httpx.Client) -> None:
    expect(
        http,
        {
            "httpRequest": {"path": "/jr", "body": {"code": "${json-unit.regex}[A-"}},
            "httpResponse": {},
        },
    )
    assert http.post("/jr", json={"code": "[A-"}).status_code == 404


def test_json_matcher_types(http: httpx.Client) -> None:
    expect(
        http,
        {
            "httpRequest": {"path": "/types", "body": {"items": [1], "price": 10}},
            "httpResponse": {"body": "lenient"},
        },
        {
            "httpRequest": {
                "path": "/strict-list",
                "body": {"type": "JSON", "json": "[1, 2]", "matchType": "STRICT"},
            },
            "httpResponse": {"body": "strict"},
        },
        {"httpRequest": {"path": "/list", "body": [{"id": 1}]}, "httpResponse": {"body": "list"}},
    )
    assert http.post("/types", json={"items": [3, 1], "price": 10.0}).text == "lenient"
    assert http.post("/types", json={"items": {"0": 1}, "price": 10}).status_code == 404
    assert http.post("/types", json={"items": [1], "price": "10"}).status_code == 404
    assert http.post("/types", json={"price": 10}).status_code == 404  # "items" missing
    assert http.post("/types", json=[{"items": [1], "price": 10}]).status_code == 404
    assert http.post("/strict-list", json=[1, 2]).text == "strict"
    assert http.post("/strict-list", json=[1, 2, 3]).status_code == 404
    assert http.post("/list", json=[{"id": 2}, {"id": 1, "x": 0}]).text == "list"
    assert http.post("/list", json={"id": 1}).status_code == 404


def test_array_items_pair_up_whatever_the_order(http: httpx.Client) -> None:
    # the first expected item also matches the first actual one, but only the other
    # pairing satisfies both: the matcher must not stop at the first candidate
    expect(
        http,
        {
            "httpRequest": {"path": "/pairs", "body": [{"a": 1}, {"a": 1, "b": 2}]},
            "httpResponse": {"body": "paired"},
        },
    )
    assert http.post("/pairs", json=[{"a": 1, "b": 2}, {"a": 1}]).text == "paired"
    assert http.post("/pairs", json=[{"a": 1, "b": 2}, {"a": 2}]).status_code == 404


def test_negated_and_non_json_bodies(http: httpx.Client) -> None:
    expect(
        http,
        {
            "httpRequest": {
                "path": "/not-json",
                "body": {"type": "JSON", "json": {"admin": True}, "not": True},
            },
            "httpResponse": {"body": "allowed"},
        },
        {
            "httpRequest": {
                "path": "/schema-text",
                "body": {"type": "JSON_SCHEMA", "jsonSchema": '{"type": "object"}'},
            },
            "httpResponse": {"body": "object"},
        },
    )
    assert http.post("/not-json", json={"admin": False}).text == "allowed"
    assert http.post("/not-json", content="plain text").text == "allowed"
    assert http.post("/not-json", json={"admin": True, "x": 1}).status_code == 404
    assert http.post("/schema-text", json={"a": 1}).text == "object"
    assert http.post("/schema-text", content="{not json").status_code == 404
    assert http.post("/schema-text").status_code == 404  # no body at all


def test_request_bodies_are_decoded_with_their_charset(http: httpx.Client) -> None:
    expect(http, {"httpRequest": {"path": "/cs", "body": "café"}, "httpResponse": {}})
    latin1 = {"Content-Type": "text/plain; charset=ISO-8859-1"}
    assert http.post("/cs", content="café".encode("latin-1"), headers=latin1).status_code == 200
    # an unknown charset falls back to UTF-8
    unknown = {"Content-Type": "text/plain; charset=x-klingon"}
    assert http.post("/cs", content="café".encode(), headers=unknown).status_code == 200
    assert http.post("/cs", content="café".encode("latin-1")).status_code == 404


# --------------------------------------------------------------------------- responses


def test_unknown_status_code_has_an_empty_reason(http: httpx.Client) -> None:
    expect(http, {"httpRequest": {"path": "/599"}, "httpResponse": {"statusCode": 599}})
    response = http.get("/599")
    assert response.status_code == 599
    assert response.reason_phrase == ""


def test_framing_headers_of_the_expectation_are_replaced(
    http: httpx.Client, engine: MockServerEngine
) -> None:
    # a stale Content-Length, Connection or Transfer-Encoding would hang or break the client
    expect(
        http,
        {
            "httpRequest": {"path": "/framing"},
            "httpResponse": {
                "headers": {
                    "Content-Length": ["999"],
                    "Connection": ["close"],
                    "Transfer-Encoding": ["chunked"],
                },
                "body": "ok",
            },
        },
    )
    response = http.get("/framing")
    assert response.text == "ok"
    assert response.headers["content-length"] == "2"
    assert response.headers["connection"] == "keep-alive"
    assert "transfer-encoding" not in response.headers


def test_content_length_override(http: httpx.Client, engine: MockServerEngine) -> None:
    expect(
        http,
        {
            "httpRequest": {"path": "/cl"},
            "httpResponse": {
                "body": "abcd",
                "connectionOptions": {"contentLengthHeaderOverride": 2},
            },
        },
    )
    raw = raw_exchange(engine, b"GET /cl HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    headers, body = head_and_body(raw)
    assert headers["content-length"] == "2"
    assert body == b"abcd"


def test_suppressed_content_length_with_close_socket(
    http: httpx.Client, engine: MockServerEngine
) -> None:
    expect(
        http,
        {
            "httpRequest": {"path": "/nolen"},
            "httpResponse": {
                "body": "until close",
                "connectionOptions": {"suppressContentLengthHeader": True, "closeSocket": True},
            },
        },
    )
    raw = raw_exchange(engine, b"GET /nolen HTTP/1.1\r\nHost: x\r\n\r\n")
    headers, body = head_and_body(raw)
    assert "content-length" not in headers
    assert headers["connection"] == "close"
    assert body == b"until close"


def test_response_body_forms(http: httpx.Client) -> None:
    expect(
        http,
        {
            "httpRequest": {"path": "/json-text"},
            "httpResponse": {"body": {"type": "JSON", "json": '{"a": 1}'}},
        },
        {"httpRequest": {"path": "/untyped"}, "httpResponse": {"body": {"k": "v"}}},
        {"httpRequest": {"path": "/array"}, "httpResponse": {"body": [1, 2]}},
        {"httpRequest": {"path": "/xml"}, "httpResponse": {"body": {"type": "XML", "xml": "<a/>"}}},
        {
            "httpRequest": {"path": "/latin"},
            "httpResponse": {
                "body": {
                    "type": "STRING",
                    "string": "café",
                    "charset": "ISO-8859-1",
                    "contentType": "text/plain; charset=ISO-8859-1",
                }
            },
        },
    )
    json_text = http.get("/json-text")
    assert json_text.text == '{"a": 1}'
    assert json_text.headers["content-type"] == "application/json"
    untyped = http.get("/untyped")
    assert untyped.json() == {"k": "v"}
    assert untyped.headers["content-type"] == "application/json"
    assert http.get("/array").json() == [1, 2]
    xml = http.get("/xml")
    assert xml.text == "<a/>"
    assert xml.headers["content-type"] == "application/xml"
    latin = http.get("/latin")
    assert latin.content == "café".encode("latin-1")
    assert latin.text == "café"


def test_response_header_and_cookie_forms(http: httpx.Client) -> None:
    expect(
        http,
        {
            "httpRequest": {"path": "/hdr"},
            "httpResponse": {
                "headers": [
                    {"name": "X-Many", "values": ["1", "2"]},
                    {"name": "X-One", "value": "one"},
                    {"name": "X-Number", "values": [3]},
                    {"name": "X-Object", "values": [{"value": "obj"}]},
                ],
                "cookies": {"flavour": "mint"},
            },
        },
    )
    response = http.get("/hdr")
    assert response.headers.get_list("X-Many") == ["1", "2"]
    assert response.headers["X-One"] == "one"
    assert response.headers["X-Number"] == "3"
    assert response.headers["X-Object"] == "obj"
    assert response.headers["Set-Cookie"] == "flavour=mint"


def test_percentage_and_a_request_less_expectation(http: httpx.Client) -> None:
    created = expect(
        http,
        {"httpRequest": {"path": "/never"}, "percentage": 0, "httpResponse": {"body": "0%"}},
        {"percentage": 100, "httpResponse": {"body": "catch-all"}},
    )
    assert created[1]["percentage"] == 100
    assert "httpRequest" not in created[1]
    assert http.get("/never").text == "catch-all"
    assert http.delete("/anything/else").text == "catch-all"


def test_unlimited_times_wins_over_a_count(http: httpx.Client) -> None:
    (created,) = expect(
        http,
        {
            "httpRequest": {"path": "/u"},
            "times": {"remainingTimes": 1, "unlimited": True},
            "timeToLive": {"timeUnit": "MILLISECONDS", "timeToLive": 1, "unlimited": True},
            "httpResponse": {},
        },
    )
    assert created["times"] == {"unlimited": True}
    assert [http.get("/u").status_code for _ in range(3)] == [200, 200, 200]


def test_error_action_with_a_delay_drops_the_connection(
    http: httpx.Client, engine: MockServerEngine
) -> None:
    expect(
        http,
        {
            "httpRequest": {"path": "/err"},
            "httpError": {
                "dropConnection": True,
                "delay": {"timeUnit": "MILLISECONDS", "value": 1},
            },
        },
    )
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.get(f"{engine.url}/err")
    logs = put(http, "retrieve", type="logs", format="json").json()
    assert any(line.split(" - ", 1)[1].startswith("returning error:") for line in logs)
    # the request was received, but no response was sent for it
    assert put(http, "verify", {"httpRequest": {"path": "/err"}}).status_code == 202
    by_response = {"httpRequest": {"path": "/err"}, "httpResponse": {"statusCode": 200}}
    failed = put(http, "verify", by_response)
    assert failed.status_code == 406
    assert '"httpResponse" : null' in failed.text


# --------------------------------------------------------------------------- forwarding


@pytest.fixture
def upstream() -> Iterator[tuple[MockServerEngine, httpx.Client]]:
    with MockServerEngine() as target, httpx.Client(base_url=target.url, timeout=10) as client:
        yield target, client


def test_override_rewrites_method_path_query_headers_and_body(http: httpx.Client) -> None:
    # no host in the override: MockServer forwards to the request's Host header, which is
    # this engine itself, so a second expectation shows what arrived
    expect(
        http,
        {
            "httpRequest": {"path": "/old"},
            "httpOverrideForwardedRequest": {
                "requestOverride": {
                    "method": "PUT",
                    "path": "/new",
                    "queryStringParameters": {"q": "2"},
                    "headers": [{"name": "X-Added", "values": ["yes"]}, {"name": "X-Seen"}],
                    "body": {"type": "JSON", "json": {"rewritten": True}},
                }
            },
        },
        {
            "httpRequest": {
                "method": "PUT",
                "path": "/new",
                "queryStringParameters": {"q": ["2"], "keep": ["1"]},
                "headers": {"X-Added": ["yes"], "Content-Type": ["application/json"]},
                "body": {"rewritten": True},
            },
            "httpResponse": {"statusCode": 202, "body": "rewritten"},
        },
    )
    response = http.post("/old", params={"q": "1", "keep": "1"}, content="original")
    assert response.status_code == 202
    assert response.text == "rewritten"
    (arrived,) = put(http, "retrieve", {"path": "/new"}).json()
    assert arrived["method"] == "PUT"
    assert arrived["queryStringParameters"] == {"keep": ["1"], "q": ["2"]}
    assert arrived["headers"]["X-Added"] == ["yes"]
    assert arrived["body"]["json"] == {"rewritten": True}


def test_override_with_a_text_body_and_response_headers_only(
    http: httpx.Client, upstream: tuple[MockServerEngine, httpx.Client]
) -> None:
    target, target_http = upstream
    expect(
        target_http,
        {
            "httpRequest": {"path": "/t", "body": "swapped"},
            "httpResponse": {"statusCode": 203, "headers": {"X-Version": ["1"]}, "body": "up"},
        },
    )
    expect(
        http,
        {
            "httpRequest": {"path": "/t"},
            "httpOverrideForwardedRequest": {
                "requestOverride": {
                    "headers": {"Host": f"127.0.0.1:{target.port}"},
                    "body": {"type": "STRING", "string": "swapped"},
                },
                "responseOverride": {"headers": {"x-version": ["2"]}},
            },
        },
    )
    response = http.post("/t", content="original")
    assert (response.status_code, response.reason_phrase) == (203, "Non-Authoritative Information")
    assert response.headers.get_list("X-Version") == ["2"]
    assert response.text == "up"
    (arrived,) = put(target_http, "retrieve").json()
    assert "Content-Type" not in arrived["headers"]


def test_override_never_forwards_to_a_non_loopback_host_header(
    http: httpx.Client, engine: MockServerEngine
) -> None:
    expect(
        http,
        {
            "httpRequest": {"path": "/proxy"},
            "httpOverrideForwardedRequest": {"requestOverride": {"path": "/elsewhere"}},
        },
    )
    response = httpx.get(f"{engine.url}/proxy", headers={"Host": "example.com"})
    assert response.status_code == 404
    assert [r["path"] for r in put(http, "retrieve").json()] == ["/proxy"]


def test_override_by_socket_address_and_response_fields(
    http: httpx.Client, upstream: tuple[MockServerEngine, httpx.Client]
) -> None:
    target, target_http = upstream
    expect(
        target_http,
        {"httpRequest": {"path": "/real"}, "httpResponse": {"statusCode": 201, "body": "upstream"}},
    )
    expect(
        http,
        {
            "httpRequest": {"path": "/via-socket"},
            "httpOverrideForwardedRequest": {
                "requestOverride": {
                    "path": "/real",
                    "socketAddress": {"host": "127.0.0.1", "port": target.port, "scheme": "HTTP"},
                },
                "responseOverride": {"reasonPhrase": "Made Here", "body": "replaced"},
            },
        },
    )
    response = http.get("/via-socket")
    assert response.status_code == 201  # kept from upstream
    assert response.reason_phrase == "Made Here"
    assert response.text == "replaced"
    assert [r["path"] for r in put(target_http, "retrieve").json()] == ["/real"]


def test_override_host_header_without_port_is_accepted(http: httpx.Client) -> None:
    (created,) = expect(
        http,
        {
            "httpRequest": {"path": "/h"},
            "httpOverrideForwardedRequest": {"requestOverride": {"headers": {"Host": "localhost"}}},
        },
    )
    assert created["httpOverrideForwardedRequest"]["requestOverride"]["headers"] == {
        "Host": "localhost"
    }


def _self_signed(directory: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


class _Secure(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = f"secure {self.path}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def tls_upstream(tmp_path: Path) -> Iterator[int]:
    """A real HTTPS server on loopback with a throwaway self-signed certificate."""
    cert, key = _self_signed(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Secure)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield server.server_port
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_forward_over_https_to_a_self_signed_loopback_server(
    http: httpx.Client, tls_upstream: int
) -> None:
    expect(
        http,
        {
            "httpRequest": {"path": "/tls"},
            "httpForward": {"host": "localhost", "port": tls_upstream, "scheme": "HTTPS"},
        },
    )
    response = http.get("/tls", params={"x": "1"})
    assert response.status_code == 200
    assert response.text == "secure /tls?x=1"


# --------------------------------------------------------------------------- retrieve, clear


def test_logs_as_json_describe_forwarded_requests(
    http: httpx.Client, upstream: tuple[MockServerEngine, httpx.Client]
) -> None:
    target, target_http = upstream
    expect(target_http, {"httpRequest": {"path": "/up"}, "httpResponse": {"body": "up"}})
    expect(
        http,
        {"httpRequest": {"path": "/up"}, "httpForward": {"host": "127.0.0.1", "port": target.port}},
    )
    assert http.get("/up").text == "up"
    for fmt in ("json", "log_entries"):
        logs = put(http, "retrieve", type="logs", format=fmt).json()
        assert isinstance(logs, list)
        assert any("for forwarded request" in line for line in logs)
    only_up = put(http, "retrieve", {"path": "/up"}, type="logs", format="json").json()
    assert [line.split(" - ", 1)[1].split(":", 1)[0] for line in only_up] == [
        "received request",
        "returning response",
    ]
    response = put(http, "retrieve", type="logs", format="java")
    assert response.status_code == 400
    assert '"java" is not supported by this engine, use json' in response.text


def test_active_expectations_paging_and_metadata_filters(http: httpx.Client) -> None:
    expect(
        http,
        *(
            {
                "id": f"e{i}",
                "httpRequest": {"path": f"/p{i}"},
                "metadata": {"n": i},
                "httpResponse": {},
            }
            for i in range(5)
        ),
        {
            "id": "tagged",
            "httpRequest": {"path": "/t"},
            "metadata": {"team": "a"},
            "httpResponse": {},
        },
    )

    def ids(**params: str) -> list[str]:
        response = put(http, "retrieve", type="active_expectations", **params)
        assert response.status_code == 200, response.text
        return [e["id"] for e in response.json()]

    assert ids(offset="1", limit="2") == ["e1", "e2"]
    assert ids(offset="4") == ["e4", "tagged"]
    assert ids(metadataKey="n", metadataValue="3") == ["e3"]  # a number compares as JSON text
    assert ids(metadataKey="team") == ["tagged"]
    assert ids(metadataKey="owner") == []
    bad_limit = put(http, "retrieve", type="active_expectations", limit="-1")
    assert bad_limit.status_code == 400
    assert "must be a non-negative integer" in bad_limit.text
    json_path = put(http, "retrieve", type="active_expectations", metadataJsonPath="$.n")
    assert json_path.status_code == 400
    assert "metadataJsonPath" in json_path.text


def test_request_responses_show_json_response_bodies(http: httpx.Client) -> None:
    expect(
        http,
        {
            "httpRequest": {"path": "/j"},
            "httpResponse": {"body": {"type": "JSON", "json": {"ok": 1}}},
        },
        {"httpRequest": {"path": "/empty"}, "httpResponse": {"statusCode": 204}},
    )
    http.get("/j")
    http.get("/empty")
    pairs = put(http, "retrieve", type="request_responses").json()
    assert pairs[0]["httpResponse"]["body"]["json"] == {"ok": 1}
    assert pairs[0]["httpResponse"]["body"]["contentType"] == "application/json"
    assert pairs[1]["httpResponse"] == {"statusCode": 204, "reasonPhrase": "No Content"}


def test_recorded_bodies_keep_their_type(http: httpx.Client) -> None:
    http.post("/bin", content=b"\xff\xfe\x00", headers={"Content-Type": "application/octet-stream"})
    http.post("/bin2", content=b"\xff\xfe\x00", headers={"Content-Type": ""})
    http.post("/text", content="hello", headers={"Content-Type": "text/plain"})
    http.post("/plain", content="hello", headers={"Content-Type": ""})
    bodies = [r["body"] for r in put(http, "retrieve").json()]
    assert bodies[0] == {
        "type": "BINARY",
        "base64Bytes": base64.b64encode(b"\xff\xfe\x00").decode(),
        "contentType": "application/octet-stream",
    }
    assert bodies[1] == {
        "type": "BINARY",
        "base64Bytes": base64.b64encode(b"\xff\xfe\x00").decode(),
    }
    assert bodies[2] == {"type": "STRING", "string": "hello", "contentType": "text/plain"}
    assert bodies[3] == "hello"


def test_a_bare_http11_request_is_served_and_recorded(
    http: httpx.Client, engine: MockServerEngine
) -> None:
    raw = raw_exchange(engine, b"GET /bare HTTP/1.1\r\nConnection: close\r\n\r\n")
    assert raw.startswith(b"HTTP/1.1 404 Not Found\r\n")
    raw = raw_exchange(engine, b"GET /bare?x=1 HTTP/1.0\r\n\r\n")
    assert raw.startswith(b"HTTP/1.1 404")
    (first, second) = put(http, "retrieve").json()
    assert first["headers"] == {"Connection": ["close"]}
    assert "headers" not in second
    assert second["queryStringParameters"] == {"x": ["1"]}
    assert second["keepAlive"] is False


# --------------------------------------------------------------------------- verify


def test_verify_by_expectation_id(http: httpx.Client) -> None:
    expect(http, {"id": "known", "httpRequest": {"path": "/k"}, "httpResponse": {}})
    http.get("/k")
    http.get("/k")
    ok = put(http, "verify", {"expectationId": {"id": "known"}, "times": {"atLeast": 2}})
    assert ok.status_code == 202
    failed = put(http, "verify", {"expectationId": {"id": "known"}, "times": {"atMost": 1}})
    assert failed.status_code == 406
    assert failed.text.startswith('Request not found at most once, expected:<{\n  "path" : "/k"')
    unknown = put(http, "verify", {"expectationId": {"id": "nope"}})
    assert unknown.status_code == 400
    assert "no expectation found with id nope" in unknown.text


def test_verify_without_a_request_counts_every_request(http: httpx.Client) -> None:
    for path in ("/a", "/b", "/c"):
        http.get(path)
    assert put(http, "verify", {"times": {"atLeast": 3, "atMost": 3}}).status_code == 202
    failed = put(
        http,
        "verify",
        {"times": {"atLeast": 5}, "maximumNumberOfRequestToReturnInVerificationFailure": 2},
    )
    assert failed.status_code == 406
    assert failed.text == (
        "Request not found at least 5 times, expected:<{ }> "
        "but was found 3 times among 3 total requests"
    )


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        ({"httpRequest": {"path": "/x"}, "times": 2}, '"/times" must be a JSON object'),
        ({"httpRequest": {"path": "/x"}, "httpResponse": 200}, '"/httpResponse" must be a JSON'),
        ({"httpResponse": {"statusCode": "200"}}, '"/httpResponse/statusCode" must be an integer'),
        ({"httpResponse": {"body": {"type": "XML"}}}, "body matcher XML is not supported"),
    ],
)
def test_invalid_verifications_are_400(
    http: httpx.Client, document: dict[str, Any], reason: str
) -> None:
    response = put(http, "verify", document)
    assert response.status_code == 400
    assert reason in response.text


def test_verify_by_response_reason_headers_and_body(http: httpx.Client) -> None:
    expect(
        http,
        {
            "httpRequest": {"path": "/r"},
            "httpResponse": {
                "reasonPhrase": "Fine",
                "headers": {"X-Kind": ["a"]},
                "body": {"type": "JSON", "json": {"id": 1, "tags": ["x"]}},
            },
        },
    )
    http.get("/r")

    def verify(response: dict[str, Any]) -> httpx.Response:
        return put(http, "verify", {"httpRequest": {"path": "/r"}, "httpResponse": response})

    assert verify({"statusCode": 200, "reasonPhrase": "Fine"}).status_code == 202
    assert verify({"headers": {"x-kind": ["a"]}, "body": {"id": 1}}).status_code == 202
    assert verify({"reasonPhrase": "OK"}).status_code == 406
    assert verify({"headers": {"X-Kind": ["b"]}}).status_code == 406
    failed = verify({"body": {"type": "JSON", "json": {"id": 2}}})
    assert failed.status_code == 406
    assert failed.text.startswith("Request and response not found at least once, expected:<{")
    assert '"httpResponse" : {\n    "statusCode" : 200' in failed.text


def test_verify_sequence_by_expectation_ids(http: httpx.Client) -> None:
    expect(
        http,
        {"id": "login", "httpRequest": {"path": "/login"}, "httpResponse": {}},
        {"id": "logout", "httpRequest": {"path": "/logout"}, "httpResponse": {}},
    )
    http.get("/login")
    http.get("/logout")
    ids = [{"id": "login"}, {"id": "logout"}]
    assert put(http, "verifySequence", {"expectationIds": ids}).status_code == 202
    wrong = put(http, "verifySequence", {"expectationIds": ids[::-1]})
    assert wrong.status_code == 406
    assert wrong.text.startswith('Request sequence not found, expected:<[ {\n  "path" : "/logout"')
    unknown = put(http, "verifySequence", {"expectationIds": [{"id": "login"}, {"id": "gone"}]})
    assert unknown.status_code == 400
    assert '"/expectationIds/1" no expectation found with id gone' in unknown.text


def test_verify_sequence_failure_with_a_request_limit(http: httpx.Client) -> None:
    for index in range(3):
        http.get(f"/step{index}")
    failed = put(
        http,
        "verifySequence",
        {
            "httpRequests": [{"path": "/step2"}, {"path": "/step0"}],
            "maximumNumberOfRequestToReturnInVerificationFailure": 2,
        },
    )
    assert failed.status_code == 406
    assert failed.text.endswith("but was not found, found 3 other requests")


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        ([{"path": "/a"}], "verification sequence must be a JSON object"),
        ({"httpResponses": [{"statusCode": 200}]}, "response-aware sequences are not supported"),
    ],
)
def test_invalid_sequence_verifications_are_400(
    http: httpx.Client, document: Any, reason: str
) -> None:
    response = put(http, "verifySequence", document)
    assert response.status_code == 400
    assert reason in response.text


# --------------------------------------------------------------------------- framing


def test_chunked_request_with_trailers(http: httpx.Client, engine: MockServerEngine) -> None:
    expect(
        http,
        {"httpRequest": {"path": "/chunks", "body": "abcdef"}, "httpResponse": {"body": "joined"}},
    )
    raw = raw_exchange(
        engine,
        b"POST /chunks HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
        b"3;ext=1\r\nabc\r\n3\r\ndef\r\n0\r\nX-Trailer: 1\r\n\r\n",
    )
    assert raw.startswith(b"HTTP/1.1 200")
    assert raw.endswith(b"joined")


@pytest.mark.parametrize(
    ("request_bytes", "reason"),
    [
        (b"POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", b"invalid chunk size"),
        (b"POST /x HTTP/1.1\r\nContent-Length: -4\r\n\r\n", b"invalid Content-Length"),
    ],
)
def test_broken_request_framing_is_400_and_closes(
    http: httpx.Client, engine: MockServerEngine, request_bytes: bytes, reason: bytes
) -> None:
    raw = raw_exchange(engine, request_bytes)
    headers, body = head_and_body(raw)
    assert headers["status-line"] == "HTTP/1.1 400 Bad Request"
    assert headers["connection"] == "close"
    assert body == reason
    assert put(http, "retrieve").json() == []  # never reached the expectations


# --------------------------------------------------------------------------- lifecycle


def test_engine_configuration_errors_and_repr() -> None:
    with pytest.raises(ValueError, match="invalid port 70000"):
        MockServerEngine(port=70000)
    engine = MockServerEngine(host="localhost")
    assert repr(engine) == "<MockServerEngine http://127.0.0.1:0 stopped>"
    with engine:
        assert engine.start() is engine  # starting twice keeps the same server
        assert repr(engine) == f"<MockServerEngine http://127.0.0.1:{engine.port} running>"
    engine.stop()  # stopping twice is harmless
    assert not engine.running


def test_request_log_is_bounded() -> None:
    with MockServerEngine(max_log_entries=3) as small:
        for index in range(5):
            httpx.get(f"{small.url}/r{index}")
        assert small.state.log_size() == 3
        recorded = httpx.put(f"{small.url}/mockserver/retrieve").json()
        assert [r["path"] for r in recorded] == ["/r2", "/r3", "/r4"]
        httpx.put(
            f"{small.url}/mockserver/expectation",
            json={
                "httpRequest": {"path": "/once"},
                "times": {"remainingTimes": 1},
                "httpResponse": {},
            },
        )
        assert small.state.active_count() == 1
        httpx.get(f"{small.url}/once")
        assert small.state.active_count() == 0


def test_stop_over_the_control_plane() -> None:
    engine = MockServerEngine().start()
    serving = engine._thread
    assert serving is not None
    response = httpx.put(f"{engine.url}/mockserver/stop")
    assert response.status_code == 200
    serving.join(timeout=10)
    assert not serving.is_alive()
    assert not engine.running
    with pytest.raises(httpx.ConnectError):
        httpx.put(f"{engine.url}/mockserver/status")


# --------------------------------------------------------------------------- the hub


@pytest.fixture
def hub() -> Iterator[EngineHub]:
    running = EngineHub()
    running.start()
    try:
        yield running
    finally:
        running.stop()


def test_hub_claims_reuses_and_releases_engines(hub: EngineHub) -> None:
    def call(action: str, document: Any = None) -> httpx.Response:
        return httpx.put(f"{hub.url}/mockserver/pytestCommons/{action}", json=document)

    first = call("engine", {"name": "gw0"})
    assert first.status_code == 200
    port = first.json()["port"]
    assert port != hub.port
    assert call("engine", {"name": "gw0"}).json() == {"name": "gw0", "port": port}
    assert call("info").json()["engines"] == {"gw0": port}
    # an engine of its own: the hub's expectations are not the engine's
    httpx.put(
        f"{hub.url}/mockserver/expectation",
        json={"httpRequest": {"path": "/hub"}, "httpResponse": {}},
    )
    assert httpx.get(f"http://127.0.0.1:{port}/hub").status_code == 404

    assert call("release", {"name": "gw0"}).status_code == 200
    assert call("release", {"name": "gw0"}).status_code == 404
    assert call("info").json()["engines"] == {}
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/hub")


def test_stopping_the_hub_stops_its_engines() -> None:
    hub = EngineHub()
    hub.start()
    claimed = hub.claim("gw0")
    assert claimed.running
    hub.stop()
    assert hub.stopped.is_set()
    assert not claimed.running
    assert hub.engines() == {}


def test_hub_refuses_bad_claims(hub: EngineHub) -> None:
    def call(action: str, document: Any = None) -> httpx.Response:
        return httpx.put(f"{hub.url}/mockserver/pytestCommons/{action}", json=document)

    unknown = call("shutdown", {"name": "x"})
    assert unknown.status_code == 404
    assert "unknown pytest-commons extension /mockserver/pytestCommons/shutdown" in unknown.text
    nameless = call("engine", {"port": 0})
    assert nameless.status_code == 400
    assert 'a body {"name": "..."} is required' in nameless.text
    bad_port = call("engine", {"name": "gw1", "port": 70000})
    assert bad_port.status_code == 400
    assert '"/port" must be a port number' in bad_port.text
    taken = call("engine", {"name": "gw1", "port": hub.port})
    assert taken.status_code == 409
    assert f"cannot listen on port {hub.port}" in taken.text


def test_hub_process_refuses_a_non_loopback_host() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pytest_commons.services.mockserver.engine", "--host", "0.0.0.0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "the MockServer engine binds loopback only, not '0.0.0.0'" in result.stderr


def test_hub_process_stops_on_the_control_plane() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", ENGINE, "--max-log-entries", "10"],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        banner = process.stdout.readline()
        assert banner.startswith("pytest-commons MockServer engine ")
        url = banner.rsplit(" on ", 1)[1].strip()
        assert httpx.put(f"{url}/mockserver/status").status_code == 200
        assert httpx.put(f"{url}/mockserver/stop").status_code == 200
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()

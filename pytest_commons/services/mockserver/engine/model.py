"""MockServer's JSON model, parsed into typed, pre-compiled matchers and actions.

Everything the control plane receives goes through here first: an expectation that
cannot be parsed, or that uses a feature this engine does not implement, raises
:class:`ModelError`, which the server answers with ``400`` and the reason — never
with a silent mismatch later.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import re
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Final
from urllib.parse import parse_qsl

JsonObject = dict[str, Any]

LOOPBACK_HOSTS: Final = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})

_TIME_UNITS: Final = {
    "NANOSECONDS": 1e-9,
    "MICROSECONDS": 1e-6,
    "MILLISECONDS": 1e-3,
    "SECONDS": 1.0,
    "MINUTES": 60.0,
    "HOURS": 3600.0,
    "DAYS": 86400.0,
}

#: Actions MockServer knows that this engine does not implement.
UNSUPPORTED_ACTIONS: Final = (
    "httpResponseTemplate",
    "httpResponseClassCallback",
    "httpResponseObjectCallback",
    "httpForwardTemplate",
    "httpForwardClassCallback",
    "httpForwardObjectCallback",
    "httpForwardValidateAction",
    "httpForwardWithFallback",
    "httpSseResponse",
    "httpWebSocketResponse",
    "grpcStreamResponse",
    "grpcBidiResponse",
    "binaryResponse",
    "dnsResponse",
    "httpLlmResponse",
    "httpResponses",
)
SUPPORTED_ACTIONS: Final = (
    "httpResponse",
    "httpForward",
    "httpOverrideForwardedRequest",
    "httpError",
)
_UNSUPPORTED_EXPECTATION_FIELDS: Final = (
    "afterActions",
    "beforeActions",
    "steps",
    "scenarioName",
    "scenarioState",
    "newScenarioState",
    "chaos",
    "rateLimit",
    "capture",
    "crossProtocolScenarios",
    "responseMode",
    "responseWeights",
    "switchAfter",
)
_EXPECTATION_FIELDS: Final = frozenset(
    {"id", "priority", "percentage", "httpRequest", "times", "timeToLive", "timestamp"}
    | {"metadata", "namespace"}
    | set(SUPPORTED_ACTIONS)
)
_REQUEST_FIELDS: Final = frozenset(
    {
        "not",
        "method",
        "path",
        "pathParameters",
        "queryStringParameters",
        "headers",
        "cookies",
        "body",
        "keepAlive",
        # accepted and ignored: the engine serves plain HTTP on loopback only
        "secure",
        "protocol",
        "socketAddress",
        "localAddress",
        "remoteAddress",
        "clientCertificateChain",
        "respondBeforeBody",
    }
)
_UNSUPPORTED_REQUEST_FIELDS: Final = ("jwt", "clientIp")
_UNSUPPORTED_BODY_TYPES: Final = (
    "XML",
    "XPATH",
    "XML_SCHEMA",
    "MULTIPART",
    "GRAPHQL",
    "JSON_RPC",
    "WASM",
    "FILE",
    "ALL_OF",
)


class ModelError(ValueError):
    """A JSON document that is malformed or asks for something unsupported (HTTP 400)."""

    def __init__(self, path: str, reason: str) -> None:
        """Record where (a JSON pointer) and why the document was rejected."""
        self.path = path or "/"
        self.reason = reason
        super().__init__(f'field: "{self.path}" {reason}')


def _require_object(raw: Any, path: str) -> JsonObject:
    if not isinstance(raw, dict):
        raise ModelError(path, f"must be a JSON object, found {_json_type(raw)}")
    return raw


def _json_type(raw: Any) -> str:
    if raw is None:
        return "null"
    if isinstance(raw, bool):
        return "boolean"
    if isinstance(raw, (int, float)):
        return "number"
    if isinstance(raw, str):
        return "string"
    if isinstance(raw, list):
        return "array"
    return "object"


def _optional_bool(obj: Mapping[str, Any], key: str, path: str) -> bool | None:
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, bool):
        raise ModelError(f"{path}/{key}", f"must be a boolean, found {_json_type(value)}")
    return value


def _optional_int(obj: Mapping[str, Any], key: str, path: str) -> int | None:
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ModelError(f"{path}/{key}", f"must be an integer, found {_json_type(value)}")
    return value


def _compile_regex(text: str, ignore_case: bool = False) -> re.Pattern[str] | None:
    try:
        return re.compile(text, re.IGNORECASE if ignore_case else 0)
    except re.error:
        return None


def compile_schema(schema: Any, path: str) -> Any:
    """Check a JSON schema and return a validator for it (ModelError when invalid)."""
    if isinstance(schema, str):
        try:
            schema = json.loads(schema)
        except ValueError as exc:
            raise ModelError(path, f"is not valid JSON schema text: {exc}") from None
    if not isinstance(schema, (dict, bool)):
        raise ModelError(path, "must be a JSON schema object")
    import jsonschema  # type: ignore[import-untyped,unused-ignore]

    validator_class = jsonschema.validators.validator_for(schema)
    try:
        validator_class.check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise ModelError(path, f"is not a valid JSON schema: {exc.message}") from None
    return validator_class(schema)


def duration_seconds(raw: Any, path: str) -> float:
    """Parse a MockServer ``delay`` object (``{"timeUnit": ..., "value": ...}``)."""
    obj = _require_object(raw, path)
    extra = set(obj) - {"timeUnit", "value"}
    if extra:
        raise ModelError(path, f"unsupported delay field(s): {', '.join(sorted(extra))}")
    unit = obj.get("timeUnit", "MILLISECONDS")
    if not isinstance(unit, str) or unit.upper() not in _TIME_UNITS:
        raise ModelError(f"{path}/timeUnit", f"must be one of {', '.join(_TIME_UNITS)}")
    value = _optional_int(obj, "value", path) or 0
    if value < 0:
        raise ModelError(f"{path}/value", "must not be negative")
    return value * _TIME_UNITS[unit.upper()]


# --------------------------------------------------------------------------- strings


@dataclass(frozen=True)
class StringMatcher:
    """A MockServer "nottable string": a literal or regex, a JSON schema, optional ``!``."""

    text: str | None
    negated: bool = False
    optional: bool = False
    ignore_case: bool = False
    pattern: re.Pattern[str] | None = None
    validator: Any = None

    def matches(self, actual: str) -> bool:
        """Whether ``actual`` satisfies this matcher (negation applied)."""
        return self.matches_positive(actual) != self.negated

    def matches_positive(self, actual: str) -> bool:
        """Whether ``actual`` satisfies the matcher, ignoring its negation."""
        if self.validator is not None:
            return _schema_accepts_text(self.validator, actual)
        text = self.text or ""
        if actual == text or (self.ignore_case and actual.lower() == text.lower()):
            return True
        return self.pattern is not None and self.pattern.fullmatch(actual) is not None


def _schema_accepts_text(validator: Any, actual: str) -> bool:
    candidates: list[Any] = [actual]
    with contextlib.suppress(ValueError):
        candidates.append(json.loads(actual))
    return any(validator.is_valid(candidate) for candidate in candidates)


def parse_string_matcher(
    raw: Any, path: str, *, ignore_case: bool = False, allow_optional: bool = False
) -> StringMatcher:
    """Parse a string, ``{"not": .., "value": ..}`` or ``{"schema": ..}`` matcher."""
    negated = False
    optional = False
    if isinstance(raw, dict):
        extra = set(raw) - {"not", "value", "schema", "optional", "parameterStyle"}
        if extra:
            raise ModelError(path, f"unsupported matcher field(s): {', '.join(sorted(extra))}")
        negated = bool(_optional_bool(raw, "not", path))
        optional = bool(_optional_bool(raw, "optional", path))
        if "schema" in raw:
            validator = compile_schema(raw["schema"], f"{path}/schema")
            return StringMatcher(None, negated, optional, ignore_case, None, validator)
        raw = raw.get("value", "")
    if isinstance(raw, bool):
        raw = "true" if raw else "false"
    elif isinstance(raw, (int, float)):
        raw = json.dumps(raw)
    if not isinstance(raw, str):
        raise ModelError(path, f"must be a string or a matcher object, found {_json_type(raw)}")
    if raw.startswith("!") and len(raw) > 1:
        negated, raw = not negated, raw[1:]
    elif allow_optional and raw.startswith("?") and len(raw) > 1:
        optional, raw = True, raw[1:]
    return StringMatcher(raw, negated, optional, ignore_case, _compile_regex(raw, ignore_case))


# --------------------------------------------------------------------------- key -> values


@dataclass(frozen=True)
class KeyMatcher:
    """One ``name -> [values]`` entry of a headers/query/cookies/path-parameters matcher."""

    name: StringMatcher
    values: tuple[StringMatcher, ...]


@dataclass(frozen=True)
class MultiValueMatcher:
    """A key-to-multi-value matcher (headers, query, cookies, path parameters, forms)."""

    entries: tuple[KeyMatcher, ...]
    matching_key: bool = False  # keyMatchStyle MATCHING_KEY (default SUB_SET)


def parse_multi_value(raw: Any, path: str, *, ignore_case_names: bool) -> MultiValueMatcher:
    """Parse the object form ``{"n": ["v"]}`` or the array form ``[{"name", "values"}]``."""
    entries: list[KeyMatcher] = []
    matching_key = False
    pairs: list[tuple[Any, Any, str]] = []
    if isinstance(raw, dict):
        for name, values in raw.items():
            if name == "keyMatchStyle":
                if values not in ("SUB_SET", "MATCHING_KEY"):
                    raise ModelError(f"{path}/keyMatchStyle", "must be SUB_SET or MATCHING_KEY")
                matching_key = values == "MATCHING_KEY"
                continue
            if isinstance(values, dict) and "values" in values:
                # the per-key object form {"name": {"values": [...]}} of keyToMultiValue
                if "parameterStyle" in values:
                    raise ModelError(
                        f"{path}/{name}/parameterStyle", "is not supported by this engine"
                    )
                values = values["values"]
            pairs.append((name, values, f"{path}/{name}"))
    elif isinstance(raw, list):
        for index, item in enumerate(raw):
            item_path = f"{path}/{index}"
            if isinstance(item, str):
                pairs.append((item, [], item_path))
                continue
            obj = _require_object(item, item_path)
            if "name" not in obj:
                raise ModelError(item_path, 'is missing required field "name"')
            values = obj.get("values", [obj["value"]] if "value" in obj else [])
            pairs.append((obj["name"], values, item_path))
    else:
        raise ModelError(path, f"must be an object or an array, found {_json_type(raw)}")
    for name, values, entry_path in pairs:
        if not isinstance(values, list):
            values = [values]
        entries.append(
            KeyMatcher(
                parse_string_matcher(
                    name, entry_path, ignore_case=ignore_case_names, allow_optional=True
                ),
                tuple(
                    parse_string_matcher(value, f"{entry_path}/{i}")
                    for i, value in enumerate(values)
                ),
            )
        )
    return MultiValueMatcher(tuple(entries), matching_key)


# --------------------------------------------------------------------------- bodies


@dataclass(frozen=True)
class BodyMatcher:
    """A request body matcher: STRING, REGEX, JSON, JSON_SCHEMA, JSON_PATH, PARAMETERS, BINARY."""

    kind: str
    negated: bool = False
    text: str | None = None
    sub_string: bool = False
    pattern: re.Pattern[str] | None = None
    json_value: Any = None
    strict: bool = False
    validator: Any = None
    json_path: Any = None
    parameters: MultiValueMatcher | None = None
    raw: bytes | None = None


def parse_body_matcher(raw: Any, path: str) -> BodyMatcher:
    """Parse the ``body`` of a request matcher into a :class:`BodyMatcher`."""
    if isinstance(raw, str):
        return BodyMatcher("STRING", text=raw)
    if isinstance(raw, list):
        return BodyMatcher("JSON", json_value=raw)
    obj = _require_object(raw, path)
    body_type = obj.get("type")
    if body_type is None:
        # MockServer reads a JSON object without "type" as a JSON body matcher
        return BodyMatcher("JSON", json_value=obj)
    if not isinstance(body_type, str):
        raise ModelError(f"{path}/type", "must be a string")
    negated = bool(_optional_bool(obj, "not", path))
    if body_type in _UNSUPPORTED_BODY_TYPES:
        raise ModelError(
            f"{path}/type", f"body matcher {body_type} is not supported by this engine"
        )
    if body_type == "STRING":
        text = obj.get("string", "")
        if not isinstance(text, str):
            raise ModelError(f"{path}/string", "must be a string")
        sub_string = bool(_optional_bool(obj, "subString", path))
        return BodyMatcher("STRING", negated, text=text, sub_string=sub_string)
    if body_type == "REGEX":
        text = obj.get("regex", obj.get("string"))
        if not isinstance(text, str):
            raise ModelError(f"{path}/regex", "must be a string")
        try:
            pattern = re.compile(text)
        except re.error as exc:
            raise ModelError(f"{path}/regex", f"is not a valid regular expression: {exc}") from None
        return BodyMatcher("REGEX", negated, text=text, pattern=pattern)
    if body_type == "JSON":
        if "json" not in obj:
            raise ModelError(path, 'is missing required field "json"')
        value = obj["json"]
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError as exc:
                raise ModelError(f"{path}/json", f"is not valid JSON: {exc}") from None
        match_type = obj.get("matchType", "ONLY_MATCHING_FIELDS")
        if match_type not in ("ONLY_MATCHING_FIELDS", "STRICT"):
            raise ModelError(f"{path}/matchType", "must be ONLY_MATCHING_FIELDS or STRICT")
        return BodyMatcher("JSON", negated, json_value=value, strict=match_type == "STRICT")
    if body_type == "JSON_SCHEMA":
        if "jsonSchema" not in obj:
            raise ModelError(path, 'is missing required field "jsonSchema"')
        validator = compile_schema(obj["jsonSchema"], f"{path}/jsonSchema")
        return BodyMatcher("JSON_SCHEMA", negated, validator=validator)
    if body_type == "JSON_PATH":
        expression = obj.get("jsonPath")
        if not isinstance(expression, str) or not expression:
            raise ModelError(f"{path}/jsonPath", "must be a non-empty string")
        from jsonpath_ng.ext.parser import parse as parse_json_path

        try:
            compiled = parse_json_path(expression)
        except Exception as exc:  # jsonpath-ng raises lexer/parser errors and plain ones
            raise ModelError(f"{path}/jsonPath", f"is not a valid JSONPath: {exc}") from None
        return BodyMatcher("JSON_PATH", negated, text=expression, json_path=compiled)
    if body_type == "PARAMETERS":
        parameters = parse_multi_value(
            obj.get("parameters", {}), f"{path}/parameters", ignore_case_names=False
        )
        return BodyMatcher("PARAMETERS", negated, parameters=parameters)
    if body_type == "BINARY":
        return BodyMatcher("BINARY", negated, raw=_base64(obj.get("base64Bytes"), path))
    raise ModelError(f"{path}/type", f"unknown body type {body_type!r}")


def _base64(value: Any, path: str) -> bytes:
    if not isinstance(value, str):
        raise ModelError(f"{path}/base64Bytes", "must be a base64 string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ModelError(f"{path}/base64Bytes", "is not valid base64") from None


# --------------------------------------------------------------------------- requests

_PATH_PARAMETER: Final = re.compile(r"\{([A-Za-z_][\w.\-]*)\}")


@dataclass(frozen=True)
class RequestMatcher:
    """A parsed ``httpRequest`` request matcher."""

    source: JsonObject
    negated: bool = False
    method: StringMatcher | None = None
    path: StringMatcher | None = None
    path_template: re.Pattern[str] | None = None
    path_names: tuple[str, ...] = ()
    path_parameters: MultiValueMatcher | None = None
    query: MultiValueMatcher | None = None
    headers: MultiValueMatcher | None = None
    cookies: MultiValueMatcher | None = None
    body: BodyMatcher | None = None
    keep_alive: bool | None = None


def parse_request_matcher(raw: Any, path: str) -> RequestMatcher:
    """Parse a request definition (``httpRequest``) into a :class:`RequestMatcher`."""
    if raw is None:
        return RequestMatcher({})
    obj = _require_object(raw, path)
    for key in ("anyOf", "if", "specUrlOrPayload", "dnsName", "binaryData"):
        if key in obj:
            raise ModelError(f"{path}/{key}", "this request definition type is not supported")
    for key in _UNSUPPORTED_REQUEST_FIELDS:
        if key in obj:
            raise ModelError(f"{path}/{key}", "is not supported by this engine")
    unknown = set(obj) - _REQUEST_FIELDS
    if unknown:
        raise ModelError(path, f"has unknown field(s): {', '.join(sorted(unknown))}")
    method = (
        parse_string_matcher(obj["method"], f"{path}/method", ignore_case=True)
        if obj.get("method") not in (None, "")
        else None
    )
    path_matcher: StringMatcher | None = None
    template: re.Pattern[str] | None = None
    names: tuple[str, ...] = ()
    if obj.get("path") not in (None, ""):
        path_matcher = parse_string_matcher(obj["path"], f"{path}/path")
        text = path_matcher.text
        if text is not None and _PATH_PARAMETER.search(text):
            names = tuple(_PATH_PARAMETER.findall(text))
            parts = _PATH_PARAMETER.split(text)
            regex = "".join(
                re.escape(part) if i % 2 == 0 else "([^/]+)" for i, part in enumerate(parts)
            )
            template = re.compile(regex)

    def multi(key: str, ignore_case: bool) -> MultiValueMatcher | None:
        if obj.get(key) is None:
            return None
        return parse_multi_value(obj[key], f"{path}/{key}", ignore_case_names=ignore_case)

    body = parse_body_matcher(obj["body"], f"{path}/body") if obj.get("body") is not None else None
    return RequestMatcher(
        source=obj,
        negated=bool(_optional_bool(obj, "not", path)),
        method=method,
        path=path_matcher,
        path_template=template,
        path_names=names,
        path_parameters=multi("pathParameters", False),
        query=multi("queryStringParameters", False),
        headers=multi("headers", True),
        cookies=multi("cookies", False),
        body=body,
        keep_alive=_optional_bool(obj, "keepAlive", path),
    )


@dataclass
class RecordedRequest:
    """A concrete HTTP request received by the engine (or built from a definition)."""

    method: str
    path: str
    query: list[tuple[str, str]] = field(default_factory=list)
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    keep_alive: bool = True
    local_address: str | None = None
    remote_address: str | None = None
    raw_target: str | None = None
    timestamp: float = field(default_factory=time.time)

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (case-insensitive)."""
        lowered = name.lower()
        for key, value in self.headers:
            if key.lower() == lowered:
                return value
        return None

    @cached_property
    def content_type(self) -> str:
        """The Content-Type header, or an empty string."""
        return self.header("content-type") or ""

    @cached_property
    def cookies(self) -> list[tuple[str, str]]:
        """Cookies parsed from every ``Cookie`` header."""
        result: list[tuple[str, str]] = []
        for key, value in self.headers:
            if key.lower() != "cookie":
                continue
            for part in value.split(";"):
                name, sep, cookie_value = part.strip().partition("=")
                if name and sep:
                    result.append((name, cookie_value.strip().strip('"')))
        return result

    @cached_property
    def text(self) -> str:
        """The body decoded with its charset (UTF-8 by default, errors replaced)."""
        charset = "utf-8"
        match = re.search(r"charset=([\w.\-]+)", self.content_type, re.IGNORECASE)
        if match:
            charset = match.group(1)
        try:
            return self.body.decode(charset, errors="replace")
        except LookupError:
            return self.body.decode("utf-8", errors="replace")

    @cached_property
    def json_body(self) -> tuple[bool, Any]:
        """``(True, value)`` when the body parses as JSON, else ``(False, None)``."""
        if not self.body:
            return False, None
        try:
            return True, json.loads(self.text)
        except ValueError:
            return False, None

    @cached_property
    def form(self) -> list[tuple[str, str]]:
        """The body parsed as ``application/x-www-form-urlencoded``."""
        return parse_qsl(self.text, keep_blank_values=True)

    def to_json(self) -> JsonObject:
        """The request in MockServer's recorded-request JSON shape."""
        result: JsonObject = {"method": self.method, "path": self.path}
        if self.query:
            result["queryStringParameters"] = _group(self.query)
        if self.headers:
            result["headers"] = _group(self.headers)
        if self.cookies:
            result["cookies"] = dict(self.cookies)
        if self.body:
            result["body"] = body_to_json(self.body, self.content_type, self.json_body)
        result["keepAlive"] = self.keep_alive
        result["secure"] = False
        result["protocol"] = "HTTP_1_1"
        if self.local_address:
            result["localAddress"] = self.local_address
        if self.remote_address:
            result["remoteAddress"] = self.remote_address
        return result


def body_to_json(body: bytes, content_type: str, parsed: tuple[bool, Any] | None = None) -> Any:
    """A body in MockServer's recorded JSON form: JSON, plain/typed STRING, or BINARY."""
    if parsed is None:
        try:
            parsed = (True, json.loads(body))
        except ValueError:
            parsed = (False, None)
    ok, value = parsed
    if ok and "json" in content_type.lower():
        return {
            "type": "JSON",
            "json": value,
            "rawBytes": base64.b64encode(body).decode("ascii"),
            "contentType": content_type,
        }
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        result: JsonObject = {
            "type": "BINARY",
            "base64Bytes": base64.b64encode(body).decode("ascii"),
        }
        if content_type:
            result["contentType"] = content_type
        return result
    if not content_type:
        return text
    return {"type": "STRING", "string": text, "contentType": content_type}


@dataclass
class RecordedResponse:
    """A response the engine sent (or received when forwarding)."""

    status: int
    reason: str
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (case-insensitive)."""
        lowered = name.lower()
        for key, value in self.headers:
            if key.lower() == lowered:
                return value
        return None

    def to_json(self) -> JsonObject:
        """The response in MockServer's JSON shape."""
        result: JsonObject = {"statusCode": self.status, "reasonPhrase": self.reason}
        if self.headers:
            result["headers"] = _group(self.headers)
        if self.body:
            result["body"] = body_to_json(self.body, self.header("content-type") or "")
        return result


def _group(pairs: list[tuple[str, str]]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for key, value in pairs:
        grouped.setdefault(key, []).append(value)
    return grouped


def request_from_definition(raw: Any) -> RecordedRequest:
    """Build a concrete request from a request definition, for filtering expectations.

    MockServer clears/retrieves expectations whose matcher matches the given definition
    read as a request; values are taken literally (a regex stays its own text).
    """
    obj = raw if isinstance(raw, dict) else {}

    def text(value: Any) -> str:
        if isinstance(value, dict):
            value = value.get("value", "")
        return value if isinstance(value, str) else json.dumps(value)

    def pairs(value: Any) -> list[tuple[str, str]]:
        result: list[tuple[str, str]] = []
        if isinstance(value, dict):
            for key, values in value.items():
                if key == "keyMatchStyle":
                    continue
                for item in values if isinstance(values, list) else [values]:
                    result.append((key, text(item)))
        elif isinstance(value, list):
            for item in value:
                if isinstance(item, dict) and "name" in item:
                    values = item.get("values", [item["value"]] if "value" in item else [])
                    for one in values:
                        result.append((text(item["name"]), text(one)))
        return result

    headers = pairs(obj.get("headers"))
    cookies = pairs(obj.get("cookies"))
    if cookies:
        headers.append(("Cookie", "; ".join(f"{k}={v}" for k, v in cookies)))
    body_raw = obj.get("body")
    body = b""
    if isinstance(body_raw, str):
        body = body_raw.encode()
    elif isinstance(body_raw, (dict, list)):
        if isinstance(body_raw, dict) and "type" in body_raw:
            kind = body_raw["type"]
            if kind == "JSON":
                value = body_raw.get("json")
                body = (value if isinstance(value, str) else json.dumps(value)).encode()
            elif kind == "BINARY":
                body = base64.b64decode(str(body_raw.get("base64Bytes", "")) or b"")
            else:
                body = str(body_raw.get("string", body_raw.get("regex", ""))).encode()
        else:
            body = json.dumps(body_raw).encode()
    return RecordedRequest(
        method=text(obj.get("method", "")),
        path=text(obj.get("path", "")),
        query=pairs(obj.get("queryStringParameters")),
        headers=headers,
        body=body,
        keep_alive=bool(obj.get("keepAlive", True)),
    )


# --------------------------------------------------------------------------- actions


@dataclass(frozen=True)
class ResponseAction:
    """``httpResponse``: a canned response."""

    status: int
    reason: str | None
    headers: tuple[tuple[str, str], ...]
    body: bytes
    delay: float = 0.0
    close_socket: bool = False
    suppress_content_length: bool = False
    content_length_override: int | None = None


@dataclass(frozen=True)
class ForwardAction:
    """``httpForward`` / ``httpOverrideForwardedRequest``: proxy to a loopback server."""

    host: str | None
    port: int | None
    scheme: str
    delay: float = 0.0
    request_override: JsonObject | None = None
    response_override: ResponseOverride | None = None


@dataclass(frozen=True)
class ResponseOverride:
    """Fields of ``httpOverrideForwardedRequest.responseOverride`` laid over a response."""

    status: int | None
    reason: str | None
    headers: tuple[tuple[str, str], ...]
    body: bytes | None


@dataclass(frozen=True)
class ErrorAction:
    """``httpError``: drop the connection, optionally after writing raw bytes."""

    drop_connection: bool
    response_bytes: bytes
    delay: float = 0.0


Action = ResponseAction | ForwardAction | ErrorAction


def _header_pairs(raw: Any, path: str) -> list[tuple[str, str]]:
    result: list[tuple[str, str]] = []
    if raw is None:
        return result
    if isinstance(raw, dict):
        items: list[tuple[Any, Any]] = list(raw.items())
    elif isinstance(raw, list):
        items = []
        for index, item in enumerate(raw):
            obj = _require_object(item, f"{path}/{index}")
            values = obj.get("values", [obj["value"]] if "value" in obj else [])
            items.append((obj.get("name"), values))
    else:
        raise ModelError(path, f"must be an object or an array, found {_json_type(raw)}")
    for name, values in items:
        if not isinstance(name, str) or not name:
            raise ModelError(path, "has a header/cookie without a string name")
        for value in values if isinstance(values, list) else [values]:
            if isinstance(value, dict):
                value = value.get("value", "")
            if not isinstance(value, (str, int, float)) or isinstance(value, bool):
                raise ModelError(f"{path}/{name}", "values must be strings")
            result.append((name, str(value)))
    return result


def response_body(raw: Any, path: str) -> tuple[bytes, str | None]:
    """Encode a response body (string, JSON, STRING, JSON, BINARY, XML forms)."""
    if raw is None:
        return b"", None
    if isinstance(raw, str):
        return raw.encode("utf-8"), None
    if isinstance(raw, list):
        return json.dumps(raw).encode("utf-8"), "application/json"
    obj = _require_object(raw, path)
    body_type = obj.get("type")
    content_type = obj.get("contentType")
    if content_type is not None and not isinstance(content_type, str):
        raise ModelError(f"{path}/contentType", "must be a string")
    if body_type is None:
        return json.dumps(obj).encode("utf-8"), "application/json"
    if body_type == "JSON":
        value = obj.get("json")
        text = value if isinstance(value, str) else json.dumps(value)
        return text.encode("utf-8"), content_type or "application/json"
    if body_type in ("STRING", "XML"):
        value = obj.get("string", obj.get("xml", ""))
        if not isinstance(value, str):
            raise ModelError(f"{path}/string", "must be a string")
        default = "application/xml" if body_type == "XML" else None
        charset = obj.get("charset")
        try:
            encoded = value.encode(charset if isinstance(charset, str) else "utf-8")
        except (LookupError, UnicodeEncodeError) as exc:
            raise ModelError(f"{path}/charset", f"cannot encode the body: {exc}") from None
        return encoded, content_type or default
    if body_type == "BINARY":
        return _base64(obj.get("base64Bytes"), path), content_type
    raise ModelError(f"{path}/type", f"response body type {body_type!r} is not supported")


def parse_response_action(raw: Any, path: str) -> ResponseAction:
    """Parse ``httpResponse``."""
    obj = _require_object(raw, path)
    allowed = {
        "statusCode",
        "reasonPhrase",
        "headers",
        "cookies",
        "body",
        "delay",
        "connectionOptions",
        "primary",
    }
    unknown = set(obj) - allowed
    if unknown:
        raise ModelError(path, f"has unsupported field(s): {', '.join(sorted(unknown))}")
    status = _optional_int(obj, "statusCode", path) or 200
    if not 100 <= status <= 999:
        raise ModelError(f"{path}/statusCode", "must be between 100 and 999")
    reason = obj.get("reasonPhrase")
    if reason is not None and not isinstance(reason, str):
        raise ModelError(f"{path}/reasonPhrase", "must be a string")
    headers = _header_pairs(obj.get("headers"), f"{path}/headers")
    body, content_type = response_body(obj.get("body"), f"{path}/body")
    if content_type and not any(k.lower() == "content-type" for k, _ in headers):
        headers.append(("Content-Type", content_type))
    for name, value in _header_pairs(obj.get("cookies"), f"{path}/cookies"):
        headers.append(("Set-Cookie", f"{name}={value}"))
    delay = duration_seconds(obj["delay"], f"{path}/delay") if obj.get("delay") else 0.0
    options = obj.get("connectionOptions") or {}
    options = _require_object(options, f"{path}/connectionOptions")
    supported_options = {
        "closeSocket",
        "suppressContentLengthHeader",
        "contentLengthHeaderOverride",
    }
    unknown = set(options) - supported_options - {"keepAliveOverride", "suppressConnectionHeader"}
    if unknown:
        raise ModelError(
            f"{path}/connectionOptions", f"unsupported option(s): {', '.join(sorted(unknown))}"
        )
    opt_path = f"{path}/connectionOptions"
    return ResponseAction(
        status=status,
        reason=reason,
        headers=tuple(headers),
        body=body,
        delay=delay,
        close_socket=bool(_optional_bool(options, "closeSocket", opt_path)),
        suppress_content_length=bool(
            _optional_bool(options, "suppressContentLengthHeader", opt_path)
        ),
        content_length_override=_optional_int(options, "contentLengthHeaderOverride", opt_path),
    )


def _check_loopback(host: Any, path: str) -> str:
    if not isinstance(host, str) or not host:
        raise ModelError(path, "must be a host name")
    if host.lower() not in LOOPBACK_HOSTS:
        raise ModelError(
            path, f"{host!r} is not allowed: this engine forwards to loopback hosts only"
        )
    return host


def _scheme(obj: Mapping[str, Any], path: str) -> str:
    scheme = obj.get("scheme", "HTTP")
    if not isinstance(scheme, str) or scheme.upper() not in ("HTTP", "HTTPS"):
        raise ModelError(f"{path}/scheme", "must be HTTP or HTTPS")
    return scheme.upper()


def parse_forward_action(raw: Any, path: str) -> ForwardAction:
    """Parse ``httpForward``."""
    obj = _require_object(raw, path)
    unknown = set(obj) - {"host", "port", "scheme", "delay", "primary"}
    if unknown:
        raise ModelError(path, f"has unsupported field(s): {', '.join(sorted(unknown))}")
    host = _check_loopback(obj.get("host"), f"{path}/host")
    scheme = _scheme(obj, path)
    port = _optional_int(obj, "port", path) or (443 if scheme == "HTTPS" else 80)
    delay = duration_seconds(obj["delay"], f"{path}/delay") if obj.get("delay") else 0.0
    return ForwardAction(host, port, scheme, delay)


def parse_override_action(raw: Any, path: str) -> ForwardAction:
    """Parse ``httpOverrideForwardedRequest`` (request/response overrides, no modifiers)."""
    obj = _require_object(raw, path)
    unknown = set(obj) - {
        "httpRequest",
        "requestOverride",
        "httpResponse",
        "responseOverride",
        "delay",
        "primary",
    }
    if unknown:
        raise ModelError(path, f"has unsupported field(s): {', '.join(sorted(unknown))}")
    request = obj.get("requestOverride", obj.get("httpRequest"))
    host: str | None = None
    port: int | None = None
    scheme = "HTTP"
    if request is not None:
        request = _require_object(request, f"{path}/requestOverride")
        if request.get("body") is not None:  # encoded per request: check it now
            response_body(request["body"], f"{path}/requestOverride/body")
        socket_address = request.get("socketAddress")
        if socket_address is not None:
            sa_path = f"{path}/requestOverride/socketAddress"
            socket_address = _require_object(socket_address, sa_path)
            host = _check_loopback(socket_address.get("host"), f"{sa_path}/host")
            scheme = _scheme(socket_address, sa_path)
            port = _optional_int(socket_address, "port", sa_path)
        else:
            for name, value in _header_pairs(request.get("headers"), f"{path}/requestOverride"):
                if name.lower() == "host":
                    host_name, _, port_text = value.rpartition(":")
                    if not host_name or not port_text.isdigit():
                        host_name, port_text = value, ""
                    host = _check_loopback(host_name, f"{path}/requestOverride/headers/Host")
                    port = int(port_text) if port_text else None
    response_override: ResponseOverride | None = None
    response = obj.get("responseOverride", obj.get("httpResponse"))
    if response is not None:
        resp_path = f"{path}/responseOverride"
        response = _require_object(response, resp_path)
        body: bytes | None = None
        if response.get("body") is not None:
            body, _ = response_body(response["body"], f"{resp_path}/body")
        reason = response.get("reasonPhrase")
        response_override = ResponseOverride(
            status=_optional_int(response, "statusCode", resp_path),
            reason=reason if isinstance(reason, str) else None,
            headers=tuple(_header_pairs(response.get("headers"), f"{resp_path}/headers")),
            body=body,
        )
    delay = duration_seconds(obj["delay"], f"{path}/delay") if obj.get("delay") else 0.0
    return ForwardAction(host, port, scheme, delay, request, response_override)


def parse_error_action(raw: Any, path: str) -> ErrorAction:
    """Parse ``httpError``."""
    obj = _require_object(raw, path)
    unknown = set(obj) - {"dropConnection", "responseBytes", "delay", "primary"}
    if unknown:
        raise ModelError(path, f"has unsupported field(s): {', '.join(sorted(unknown))}")
    data = b""
    if obj.get("responseBytes") is not None:
        value = obj["responseBytes"]
        if not isinstance(value, str):
            raise ModelError(f"{path}/responseBytes", "must be a base64 string")
        try:
            data = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise ModelError(f"{path}/responseBytes", "is not valid base64") from None
    delay = duration_seconds(obj["delay"], f"{path}/delay") if obj.get("delay") else 0.0
    return ErrorAction(bool(_optional_bool(obj, "dropConnection", path)), data, delay)


# --------------------------------------------------------------------------- expectations


@dataclass
class Expectation:
    """An active expectation: matcher, action, and its remaining times / time to live."""

    id: str
    priority: int
    request: RequestMatcher
    action: Action
    action_key: str
    action_json: JsonObject
    remaining: int | None  # None: unlimited
    time_to_live: JsonObject | None
    expires_at: float | None
    percentage: int | None
    metadata: JsonObject | None
    sequence: int = 0
    matched: int = 0

    def alive(self, now: float) -> bool:
        """Whether the expectation can still match (times left, not expired)."""
        if self.remaining is not None and self.remaining <= 0:
            return False
        return self.expires_at is None or now < self.expires_at

    def to_json(self) -> JsonObject:
        """The expectation as MockServer returns it from upsert and retrieve."""
        result: JsonObject = {"id": self.id, "priority": self.priority}
        if self.request.source:
            result["httpRequest"] = self.request.source
        result[self.action_key] = self.action_json
        if self.percentage is not None:
            result["percentage"] = self.percentage
        result["times"] = (
            {"unlimited": True}
            if self.remaining is None
            else {"remainingTimes": self.remaining, "unlimited": False}
        )
        result["timeToLive"] = self.time_to_live or {"unlimited": True}
        if self.metadata:
            result["metadata"] = self.metadata
        return result


def parse_expectation(raw: Any, path: str, now: float | None = None) -> Expectation:
    """Parse and validate one expectation object."""
    obj = _require_object(raw, path)
    for key in _UNSUPPORTED_EXPECTATION_FIELDS + UNSUPPORTED_ACTIONS:
        if key in obj:
            raise ModelError(f"{path}/{key}", "is not supported by this engine")
    unknown = set(obj) - _EXPECTATION_FIELDS
    if unknown:
        raise ModelError(path, f"has unknown field(s): {', '.join(sorted(unknown))}")
    actions = [key for key in SUPPORTED_ACTIONS if obj.get(key) is not None]
    if not actions:
        raise ModelError(path, "must have an action, one of: " + ", ".join(SUPPORTED_ACTIONS))
    if len(actions) > 1:
        raise ModelError(path, f"has more than one action: {', '.join(actions)}")
    action_key = actions[0]
    action_path = f"{path}/{action_key}"
    action: Action
    if action_key == "httpResponse":
        action = parse_response_action(obj[action_key], action_path)
    elif action_key == "httpForward":
        action = parse_forward_action(obj[action_key], action_path)
    elif action_key == "httpOverrideForwardedRequest":
        action = parse_override_action(obj[action_key], action_path)
    else:
        action = parse_error_action(obj[action_key], action_path)

    expectation_id = obj.get("id")
    if expectation_id is not None and (not isinstance(expectation_id, str) or not expectation_id):
        raise ModelError(f"{path}/id", "must be a non-empty string")
    priority = _optional_int(obj, "priority", path) or 0
    percentage = _optional_int(obj, "percentage", path)
    if percentage is not None and not 0 <= percentage <= 100:
        raise ModelError(f"{path}/percentage", "must be between 0 and 100")

    remaining: int | None = None
    if obj.get("times") is not None:
        times = _require_object(obj["times"], f"{path}/times")
        unknown = set(times) - {"remainingTimes", "unlimited"}
        if unknown:
            raise ModelError(f"{path}/times", f"has unknown field(s): {', '.join(unknown)}")
        count = _optional_int(times, "remainingTimes", f"{path}/times")
        unlimited = _optional_bool(times, "unlimited", f"{path}/times")
        if count is not None and count < 0:
            raise ModelError(f"{path}/times/remainingTimes", "must not be negative")
        if count is not None and not unlimited:
            remaining = count

    ttl_json: JsonObject | None = None
    expires_at: float | None = None
    if obj.get("timeToLive") is not None:
        ttl_path = f"{path}/timeToLive"
        ttl_json = _require_object(obj["timeToLive"], ttl_path)
        unknown = set(ttl_json) - {"timeUnit", "timeToLive", "unlimited", "endDate"}
        if unknown:
            raise ModelError(ttl_path, f"has unknown field(s): {', '.join(unknown)}")
        if not _optional_bool(ttl_json, "unlimited", ttl_path) and "timeToLive" in ttl_json:
            seconds = duration_seconds(
                {"timeUnit": ttl_json.get("timeUnit", "SECONDS"), "value": ttl_json["timeToLive"]},
                ttl_path,
            )
            expires_at = (time.monotonic() if now is None else now) + seconds

    metadata = obj.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        raise ModelError(f"{path}/metadata", "must be an object")

    return Expectation(
        id=expectation_id or str(uuid.uuid4()),
        priority=priority,
        request=parse_request_matcher(obj.get("httpRequest"), f"{path}/httpRequest"),
        action=action,
        action_key=action_key,
        action_json=obj[action_key],
        remaining=remaining,
        time_to_live=ttl_json,
        expires_at=expires_at,
        percentage=percentage,
        metadata=metadata,
    )


def parse_expectations(document: Any) -> list[Expectation]:
    """Parse the body of ``PUT /mockserver/expectation`` (one object or an array)."""
    if isinstance(document, list):
        if not document:
            raise ModelError("/", "must contain at least one expectation")
        return [parse_expectation(item, f"/{index}") for index, item in enumerate(document)]
    return [parse_expectation(document, "")]

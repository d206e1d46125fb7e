"""Request matching: does a recorded request satisfy a MockServer request matcher?

Semantics follow MockServer's: strings match exactly or as a full regex, ``!`` negates,
key-to-multi-value collections match as a sub-set (``keyMatchStyle: MATCHING_KEY``
makes every value of a matched key count), header names are case-insensitive, and
JSON bodies match with ``ONLY_MATCHING_FIELDS`` (extra fields and array items ignored,
array order ignored) unless ``STRICT``.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from .model import (
    BodyMatcher,
    JsonObject,
    KeyMatcher,
    ModelError,
    MultiValueMatcher,
    RecordedRequest,
    RecordedResponse,
    RequestMatcher,
    StringMatcher,
    parse_body_matcher,
    parse_multi_value,
    request_from_definition,
)

_JSON_UNIT: Final = "${json-unit."


def match_request(matcher: RequestMatcher, request: RecordedRequest) -> bool:
    """Whether ``request`` satisfies ``matcher`` (including the matcher's ``not``)."""
    return _match_positive(matcher, request) != matcher.negated


def mismatches(matcher: RequestMatcher, request: RecordedRequest) -> list[str]:
    """Why ``request`` does not satisfy ``matcher``: one line per part that differs (empty
    when it matches). For reports: the closest expectation is the one with the fewest."""
    if match_request(matcher, request):
        return []
    if matcher.negated:
        return ["the expectation is a `not` matcher and the request satisfies what it negates"]
    source = matcher.source
    reasons: list[str] = []

    def show(value: Any) -> str:
        text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
        return text if len(text) <= 200 else text[:197] + "..."

    if matcher.method is not None and not matcher.method.matches(request.method):
        reasons.append(f"method: expected {show(source.get('method'))}, got {request.method}")
    if matcher.path is not None and not _match_path(matcher, request.path):
        reasons.append(f"path: expected {show(source.get('path'))}, got {request.path}")
    if matcher.keep_alive is not None and matcher.keep_alive != request.keep_alive:
        reasons.append(f"keepAlive: expected {matcher.keep_alive}, got {request.keep_alive}")
    for key, wanted, actual in (
        ("queryStringParameters", matcher.query, request.query),
        ("headers", matcher.headers, request.headers),
        ("cookies", matcher.cookies, request.cookies),
    ):
        if wanted is not None and not match_multi(wanted, actual):
            named = _names(source.get(key))  # what the request had of those (not all headers)
            seen = {
                name: value
                for name, value in actual
                if name.lower() in named or name.lstrip("!").lower() in named
            }
            reasons.append(f"{key}: expected {show(source.get(key))}, got {show(seen)}")
    if matcher.body is not None and not match_body(matcher.body, request):
        body = request.body.decode("utf-8", "replace")
        reasons.append(f"body: expected {show(source.get('body'))}, got {show(body)}")
    return reasons or ["the request does not satisfy the matcher"]


def _names(raw: Any) -> set[str]:
    """The (lower-cased) names a key-to-multi-value definition mentions (either JSON form)."""
    if isinstance(raw, dict):
        return {str(name).lstrip("!").lower() for name in raw if name != "keyMatchStyle"}
    if isinstance(raw, list):
        found = set()
        for entry in raw:
            name = entry.get("name") if isinstance(entry, dict) else None
            if isinstance(name, dict):
                name = name.get("value")
            if isinstance(name, str):
                found.add(name.lstrip("!").lower())
        return found
    return set()


def control_plane_match(matcher: RequestMatcher, expectation: RequestMatcher) -> bool:
    """Whether a clear/retrieve request definition selects an expectation (MockServer's
    control-plane matching, checked against MockServer 5.15.0).

    The definition is the matcher and the expectation's request is the request: a definition
    with only a path selects every expectation on that path, whatever their method, query,
    headers or body. Method and path also match the other way round (an expectation on
    ``/a/.*`` is selected by ``/a/1``; one without a method by any method). Everything else
    the definition names must be present in the expectation: a definition with a header or a
    body does not select an expectation without one; ``secure`` must be equal.
    """
    positive = (
        _control_string(matcher.method, expectation.method)
        and _control_path(matcher, expectation)
        and _control_secure(matcher.source, expectation.source)
    )
    if positive:
        rest = dataclasses.replace(
            matcher,
            negated=False,
            method=None,
            path=None,
            path_template=None,
            path_parameters=None,
            keep_alive=None if "keepAlive" not in expectation.source else matcher.keep_alive,
        )
        positive = _match_positive(rest, request_from_definition(expectation.source))
    return positive != matcher.negated


def _control_string(wanted: StringMatcher | None, have: StringMatcher | None) -> bool:
    if wanted is None or have is None:
        return True
    if wanted.matches(have.text or ""):
        return True
    return not wanted.negated and wanted.text is not None and have.matches(wanted.text)


def _control_path(matcher: RequestMatcher, expectation: RequestMatcher) -> bool:
    if matcher.path is None or expectation.path is None:
        return True
    # a template without pathParameters never selects a template expectation with them
    plain_template = matcher.path_template is not None and matcher.path_parameters is None
    if not (plain_template and expectation.path_parameters is not None) and _control_path_side(
        matcher, expectation.path.text or "", literal=True
    ):
        return True
    text = matcher.path.text
    return (
        not matcher.path.negated
        and text is not None
        and _control_path_side(expectation, text, literal=False)
    )


def _control_path_side(matcher: RequestMatcher, path: str, *, literal: bool) -> bool:
    # on the control plane MockServer reads a path as a template only when pathParameters
    # come with it (otherwise ``/items/{id}`` is plain text), and a definition's template text
    # selects an expectation with the same text, not the other way round
    assert matcher.path is not None
    if matcher.path_template is None or matcher.path_parameters is None:
        return matcher.path.matches(path)
    if not literal and path == matcher.path.text:
        return matcher.path.negated
    return _match_path(matcher, path)


def _control_secure(definition: JsonObject, expectation: JsonObject) -> bool:
    wanted = definition.get("secure")
    return wanted is None or expectation.get("secure") == wanted


def _match_positive(matcher: RequestMatcher, request: RecordedRequest) -> bool:
    if matcher.method is not None and not matcher.method.matches(request.method):
        return False
    if matcher.path is not None and not _match_path(matcher, request.path):
        return False
    if matcher.keep_alive is not None and matcher.keep_alive != request.keep_alive:
        return False
    if matcher.query is not None and not match_multi(matcher.query, request.query):
        return False
    if matcher.headers is not None and not match_multi(matcher.headers, request.headers):
        return False
    if matcher.cookies is not None and not match_multi(matcher.cookies, request.cookies):
        return False
    return matcher.body is None or match_body(matcher.body, request)


def _match_path(matcher: RequestMatcher, path: str) -> bool:
    assert matcher.path is not None
    if matcher.path_template is None:
        if matcher.path_parameters is not None:
            return False
        return matcher.path.matches(path)
    if matcher.path.text is not None and path == matcher.path.text:
        # the literal template text itself, e.g. when filtering by a definition
        return not matcher.path.negated
    found = matcher.path_template.fullmatch(path)
    if found is None:
        return matcher.path.negated
    if matcher.path_parameters is None:
        return not matcher.path.negated
    values = list(zip(matcher.path_names, found.groups(), strict=True))
    return match_multi(matcher.path_parameters, values) != matcher.path.negated


def match_multi(matcher: MultiValueMatcher, actual: Sequence[tuple[str, str]]) -> bool:
    """Match a key-to-multi-value matcher against ``(name, value)`` pairs.

    Name case-insensitivity (headers) is compiled into the name matchers.
    """
    return all(_match_entry(entry, actual, matcher.matching_key) for entry in matcher.entries)


def _values_for(entry: KeyMatcher, actual: Sequence[tuple[str, str]]) -> list[str] | None:
    values: list[str] | None = None
    for name, value in actual:
        if entry.name.matches_positive(name):
            if values is None:
                values = []
            values.append(value)
    return values


def _values_satisfy(entry: KeyMatcher, values: list[str], matching_key: bool) -> bool:
    for expected in entry.values:
        if expected.negated:
            if any(expected.matches_positive(value) for value in values):
                return False
        elif not any(expected.matches(value) for value in values):
            return False
    if matching_key and entry.values:
        return all(any(expected.matches(value) for expected in entry.values) for value in values)
    return True


def _match_entry(entry: KeyMatcher, actual: Sequence[tuple[str, str]], matching_key: bool) -> bool:
    values = _values_for(entry, actual)
    if entry.name.negated:
        # "!name": no such key (with those values, when values are given)
        if values is None:
            return True
        return bool(entry.values) and not _values_satisfy(entry, values, matching_key)
    if values is None:
        return entry.name.optional
    return _values_satisfy(entry, values, matching_key)


# --------------------------------------------------------------------------- bodies


def match_body(matcher: BodyMatcher, request: RecordedRequest) -> bool:
    """Whether the request body satisfies ``matcher`` (including its ``not``)."""
    return _body_positive(matcher, request) != matcher.negated


def _body_positive(matcher: BodyMatcher, request: RecordedRequest) -> bool:
    kind = matcher.kind
    if kind == "STRING":
        text = matcher.text or ""
        if matcher.sub_string:
            return text in request.text
        return request.text == text
    if kind == "REGEX":
        assert matcher.pattern is not None
        return request.text == matcher.text or matcher.pattern.fullmatch(request.text) is not None
    if kind == "BINARY":
        return request.body == matcher.raw
    if kind == "PARAMETERS":
        assert matcher.parameters is not None
        return match_multi(matcher.parameters, request.form)
    ok, value = request.json_body
    if not ok:
        return False
    if kind == "JSON":
        return json_matches(matcher.json_value, value, strict=matcher.strict)
    if kind == "JSON_SCHEMA":
        return bool(matcher.validator.is_valid(value))
    if kind == "JSON_PATH":
        return bool(matcher.json_path.find(value))
    return False


def json_matches(expected: Any, actual: Any, *, strict: bool) -> bool:
    """Compare JSON values; lenient mode ignores extra fields, extra items and order.

    JsonUnit placeholders MockServer understands are honoured:
    ``${json-unit.ignore}``, ``${json-unit.any-string}``, ``${json-unit.any-number}``,
    ``${json-unit.any-boolean}`` and ``${json-unit.regex}<pattern>``.
    """
    if isinstance(expected, str) and expected.startswith(_JSON_UNIT):
        return _placeholder(expected, actual)
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return False
        if strict and set(actual) - set(expected):
            return False
        for key, value in expected.items():
            if key not in actual:
                if value == "${json-unit.ignore}":
                    continue
                return False
            if not json_matches(value, actual[key], strict=strict):
                return False
        return True
    if isinstance(expected, list):
        if not isinstance(actual, list):
            return False
        if strict:
            return len(expected) == len(actual) and all(
                json_matches(e, a, strict=True) for e, a in zip(expected, actual, strict=True)
            )
        return _unordered_subset(expected, actual, [False] * len(actual), 0)
    if isinstance(expected, bool) or isinstance(actual, bool):
        return isinstance(expected, bool) and isinstance(actual, bool) and expected == actual
    if isinstance(expected, (int, float)) and isinstance(actual, (int, float)):
        return expected == actual
    return bool(type(expected) is type(actual) and expected == actual)


def _unordered_subset(expected: list[Any], actual: list[Any], used: list[bool], index: int) -> bool:
    """Backtracking: every expected item matches a distinct actual item."""
    if index == len(expected):
        return True
    for position, candidate in enumerate(actual):
        if used[position] or not json_matches(expected[index], candidate, strict=False):
            continue
        used[position] = True
        if _unordered_subset(expected, actual, used, index + 1):
            return True
        used[position] = False
    return False


def _placeholder(expected: str, actual: Any) -> bool:
    if expected == "${json-unit.ignore}":
        return True
    if expected == "${json-unit.any-string}":
        return isinstance(actual, str)
    if expected == "${json-unit.any-number}":
        return isinstance(actual, (int, float)) and not isinstance(actual, bool)
    if expected == "${json-unit.any-boolean}":
        return isinstance(actual, bool)
    if expected.startswith("${json-unit.regex}"):
        pattern = expected[len("${json-unit.regex}") :]
        try:
            return isinstance(actual, str) and re.fullmatch(pattern, actual) is not None
        except re.error:
            return False
    return isinstance(actual, str) and actual == expected


@dataclass(frozen=True)
class ResponseMatcher:
    """The ``httpResponse`` of a response-aware verification."""

    status: int | None
    reason: str | None
    headers: MultiValueMatcher | None
    body: BodyMatcher | None

    def matches(self, response: RecordedResponse | None) -> bool:
        """Whether a recorded response has this status, reason, headers and body."""
        if response is None:
            return False
        if self.status is not None and self.status != response.status:
            return False
        if self.reason is not None and self.reason != response.reason:
            return False
        if self.headers is not None and not match_multi(self.headers, response.headers):
            return False
        if self.body is None:
            return True
        as_request = RecordedRequest(
            method="", path="", headers=response.headers, body=response.body
        )
        return match_body(self.body, as_request)


def parse_response_matcher(raw: Any, path: str) -> ResponseMatcher:
    """Parse the ``httpResponse`` of a verification into a :class:`ResponseMatcher`."""
    if not isinstance(raw, dict):
        raise ModelError(path, "must be a JSON object")
    status = raw.get("statusCode")
    if status is not None and (isinstance(status, bool) or not isinstance(status, int)):
        raise ModelError(f"{path}/statusCode", "must be an integer")
    reason = raw.get("reasonPhrase")
    headers = (
        parse_multi_value(raw["headers"], f"{path}/headers", ignore_case_names=True)
        if raw.get("headers") is not None
        else None
    )
    body = parse_body_matcher(raw["body"], f"{path}/body") if raw.get("body") is not None else None
    return ResponseMatcher(status, reason if isinstance(reason, str) else None, headers, body)

"""The engine's state: active expectations and the event log, behind one lock.

All operations are thread-safe. Matching a request, consuming one of its expectation's
``times`` and logging the request happen atomically, so a verification issued after a
response was received always sees the request that caused it.
"""

from __future__ import annotations

import itertools
import json
import queue
import random
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from .matching import control_plane_match, match_request, parse_response_matcher
from .messages import describe_times, log_line, sequence_failure, verification_failure
from .model import (
    Expectation,
    JsonObject,
    ModelError,
    RecordedRequest,
    RecordedResponse,
    RequestMatcher,
    parse_request_matcher,
)

#: MockServer's default for ``maximumNumberOfRequestToReturnInVerificationFailure``.
VERIFICATION_LIMIT: Final = 10

EXPECTATION_RESPONSE: Final = "EXPECTATION_RESPONSE"
NO_MATCH_RESPONSE: Final = "NO_MATCH_RESPONSE"
FORWARDED_REQUEST: Final = "FORWARDED_REQUEST"
ERROR_RESPONSE: Final = "ERROR"

_RETRIEVE_TYPES: Final = frozenset(
    {"requests", "active_expectations", "request_responses", "logs", "recorded_expectations"}
)


@dataclass
class LogEntry:
    """One received request, what matched it and what was answered."""

    sequence: int
    request: RecordedRequest
    expectation: Expectation | None
    kind: str
    response: RecordedResponse | None = None

    def render(self) -> list[str]:
        """The log messages MockServer would print for this request."""
        request = self.request.to_json()
        lines = [log_line("received request:{}", request)]
        if self.kind == NO_MATCH_RESPONSE and self.response is not None:
            lines.append(
                log_line(
                    "no expectation for:{}returning response:{}", request, self.response.to_json()
                )
            )
        elif self.expectation is not None and self.response is not None:
            verb = (
                "returning response:{}for forwarded request"
                if self.kind == FORWARDED_REQUEST
                else ("returning response:{}for request")
            )
            lines.append(
                log_line(
                    verb + ":{}for action:{}from expectation:{}",
                    self.response.to_json(),
                    request,
                    {self.expectation.action_key: self.expectation.action_json},
                    self.expectation.id,
                )
            )
        elif self.expectation is not None:
            lines.append(
                log_line(
                    "returning error:{}for request:{}for action:{}",
                    self.expectation.action_json,
                    request,
                    {self.expectation.action_key: self.expectation.action_json},
                )
            )
        return lines


@dataclass
class ControlEvent:
    """A logged control-plane event (expectation created, cleared, verified...)."""

    sequence: int
    text: str


@dataclass
class Reply:
    """A control-plane answer: status code, body and content type."""

    status: int
    body: str = ""
    content_type: str = "application/json; charset=utf-8"
    headers: list[tuple[str, str]] = field(default_factory=list)


def _json(value: Any) -> str:
    return json.dumps(value, indent=2)


class MockServerState:
    """Expectations and the request log of one engine."""

    def __init__(self, max_log_entries: int = 100_000) -> None:
        """Create an empty state keeping at most ``max_log_entries`` requests."""
        self._lock = threading.RLock()
        self._max_log_entries = max_log_entries
        self._counter = itertools.count()
        self._expectations: list[Expectation] = []
        self._known: dict[str, Expectation] = {}
        self._log: deque[LogEntry] = deque(maxlen=max_log_entries)
        self._events: deque[ControlEvent] = deque(maxlen=max_log_entries)

    # ----------------------------------------------------------------- bookkeeping

    def reset(self) -> None:
        """Forget every expectation and every logged request (``/mockserver/reset``).

        The old containers are swapped out under the lock and freed by a background
        thread, so a reset costs microseconds however many requests were logged.
        """
        with self._lock:
            old = (self._expectations, self._known, self._log, self._events)
            self._expectations = []
            self._known = {}
            self._log = deque(maxlen=self._max_log_entries)
            self._events = deque(maxlen=self._max_log_entries)
        _dispose(old)

    def _event(self, text: str) -> None:
        self._events.append(ControlEvent(next(self._counter), text))

    def _sort(self) -> None:
        self._expectations.sort(key=lambda e: (-e.priority, e.sequence))

    def upsert(self, expectations: list[Expectation]) -> list[JsonObject]:
        """Add expectations, replacing any with the same id; returns them as JSON."""
        with self._lock:
            for expectation in expectations:
                existing = next(
                    (i for i, e in enumerate(self._expectations) if e.id == expectation.id), None
                )
                if existing is not None:
                    expectation.sequence = self._expectations[existing].sequence
                    self._expectations[existing] = expectation
                    self._event(
                        log_line(
                            "updated expectation:{}with id:{}",
                            expectation.to_json(),
                            expectation.id,
                        )
                    )
                else:
                    expectation.sequence = next(self._counter)
                    self._expectations.append(expectation)
                    self._event(
                        log_line(
                            "creating expectation:{}with id:{}",
                            expectation.to_json(),
                            expectation.id,
                        )
                    )
                self._known[expectation.id] = expectation
            self._sort()
            return [expectation.to_json() for expectation in expectations]

    # ----------------------------------------------------------------- traffic

    def receive(self, request: RecordedRequest) -> LogEntry:
        """Log ``request`` and pick the expectation that serves it (consuming one use)."""
        now = time.monotonic()
        with self._lock:
            chosen: Expectation | None = None
            expired = False
            for expectation in self._expectations:
                if not expectation.alive(now):
                    expired = True
                    continue
                if not match_request(expectation.request, request):
                    continue
                if (
                    expectation.percentage is not None
                    and random.randint(1, 100) > expectation.percentage
                ):
                    continue
                chosen = expectation
                break
            if chosen is not None:
                chosen.matched += 1
                if chosen.remaining is not None:
                    chosen.remaining -= 1
                    expired = expired or chosen.remaining <= 0
            if expired:
                self._expectations = [e for e in self._expectations if e.alive(now)]
            entry = LogEntry(
                next(self._counter),
                request,
                chosen,
                NO_MATCH_RESPONSE if chosen is None else EXPECTATION_RESPONSE,
            )
            self._log.append(entry)
            return entry

    # ----------------------------------------------------------------- filters

    def _definition_filter(
        self, body: Any
    ) -> tuple[RequestMatcher | None, Expectation | None, Any]:
        """Interpret a clear/retrieve body: nothing, ``{"id": ..}`` or a request matcher."""
        if body is None or body == {}:
            return None, None, None
        if isinstance(body, dict) and set(body) == {"id"}:
            expectation = self._known.get(str(body["id"]))
            if expectation is None:
                raise ModelError("/id", f"no expectation found with id {body['id']}")
            return expectation.request, expectation, None
        return parse_request_matcher(body, ""), None, body

    @staticmethod
    def _expectation_selected(expectation: Expectation, definition: Any) -> bool:
        if definition is None:
            return True
        if expectation.request.source == definition:
            return True
        return control_plane_match(parse_request_matcher(definition, ""), expectation.request)

    def _entries(self, matcher: RequestMatcher | None) -> list[LogEntry]:
        entries = list(self._log)
        if matcher is None:
            return entries
        return [e for e in entries if match_request(matcher, e.request)]

    # ----------------------------------------------------------------- clear

    def clear(self, body: Any, clear_type: str, params: Mapping[str, str]) -> None:
        """``/mockserver/clear``: drop matching expectations and/or logged requests."""
        clear_type = clear_type.lower()
        if clear_type not in ("all", "log", "expectations"):
            raise ModelError(
                "type", f'"{clear_type}" is not valid, expected one of [all, log, expectations]'
            )
        with self._lock:
            matcher, by_id, definition = self._definition_filter(body)
            if clear_type in ("all", "expectations"):
                keep: list[Expectation] = []
                for expectation in self._expectations:
                    if by_id is not None:
                        selected = expectation.id == by_id.id
                    else:
                        selected = self._expectation_selected(expectation, definition)
                    if selected and _filter_params(expectation, params):
                        continue
                    keep.append(expectation)
                self._expectations = keep
            if clear_type in ("all", "log"):
                if matcher is None:
                    self._log.clear()
                    self._events.clear()
                else:
                    doomed = {id(e) for e in self._entries(matcher)}
                    remaining = [e for e in self._log if id(e) not in doomed]
                    self._log.clear()
                    self._log.extend(remaining)
            shown = body if body else {}
            self._event(log_line(f"clearing {clear_type} that match:{{}}", shown))

    # ----------------------------------------------------------------- retrieve

    def retrieve(self, body: Any, params: Mapping[str, str]) -> Reply:
        """``/mockserver/retrieve``: requests, expectations, request/responses or logs."""
        kind = params.get("type", "requests").lower()
        fmt = params.get("format", "json").lower()
        if kind not in _RETRIEVE_TYPES:
            raise ModelError("type", f'"{kind}" is not a supported retrieve type')
        if fmt not in ("json", "log_entries"):
            raise ModelError("format", f'"{fmt}" is not supported by this engine, use json')
        with self._lock:
            matcher, by_id, definition = self._definition_filter(body)
            if kind == "active_expectations":
                now = time.monotonic()
                selected = [
                    e
                    for e in self._expectations
                    if e.alive(now)
                    and (
                        e is by_id
                        if by_id is not None
                        else self._expectation_selected(e, definition)
                    )
                    and _filter_params(e, params)
                ]
                return Reply(200, _json(_page([e.to_json() for e in selected], params)))
            entries = self._entries(matcher)
            if kind == "requests":
                return Reply(200, _json([e.request.to_json() for e in entries]))
            if kind == "request_responses":
                pairs = [
                    {"httpRequest": e.request.to_json(), "httpResponse": e.response.to_json()}
                    for e in entries
                    if e.response is not None
                ]
                return Reply(200, _json(pairs))
            if kind == "recorded_expectations":
                recorded = [
                    {
                        "id": f"recorded-{e.sequence}",
                        "priority": 0,
                        "httpRequest": e.request.to_json(),
                        "httpResponse": e.response.to_json(),
                        "times": {"unlimited": True},
                        "timeToLive": {"unlimited": True},
                    }
                    for e in entries
                    if e.kind == FORWARDED_REQUEST and e.response is not None
                ]
                return Reply(200, _json(_page(recorded, params)))
            lines: list[tuple[int, str]] = []
            for entry in entries:
                lines.extend((entry.sequence, line) for line in entry.render())
            if matcher is None:
                lines.extend((event.sequence, event.text) for event in self._events)
            lines.sort(key=lambda item: item[0])
            texts = [text for _, text in lines]
            if params.get("format"):
                return Reply(200, _json(texts))
            separator = "------------------------------------\n"
            return Reply(200, separator.join(texts), "text/plain; charset=utf-8")

    # ----------------------------------------------------------------- verify

    def verify(self, document: Any) -> str:
        """``/mockserver/verify``: ``""`` when satisfied, else MockServer's failure text."""
        if not isinstance(document, dict):
            raise ModelError("", "verification must be a JSON object")
        limit = _limit(document)
        at_least, at_most = _times(document.get("times"))
        with self._lock:
            matcher, expected = self._verification_matcher(document)
            response_matcher = None
            if document.get("httpResponse") is not None:
                response_matcher = parse_response_matcher(document["httpResponse"], "/httpResponse")
            entries = list(self._log)
            matched = 0
            for entry in entries:
                if matcher is not None and not match_request(matcher, entry.request):
                    continue
                if response_matcher is not None and not response_matcher.matches(entry.response):
                    continue
                matched += 1
            if (at_least == -1 or matched >= at_least) and (at_most == -1 or matched <= at_most):
                self._event(
                    log_line(f"request:{{}}found {describe_times(at_least, at_most)}", expected)
                )
                return ""
            if response_matcher is not None:
                expected = {"httpRequest": expected, "httpResponse": document["httpResponse"]}
                seen: list[Any] = [
                    {
                        "httpRequest": e.request.to_json(),
                        "httpResponse": e.response.to_json() if e.response else None,
                    }
                    for e in entries
                ]
                subject = "Request and response"
            else:
                seen = [e.request.to_json() for e in entries]
                subject = "Request"
            message = verification_failure(
                describe_times(at_least, at_most), expected, seen, matched, limit, subject
            )
            self._event(log_line(message))
            return message

    def _verification_matcher(
        self, document: Mapping[str, Any]
    ) -> tuple[RequestMatcher | None, Any]:
        if document.get("expectationId") is not None:
            reference = document["expectationId"]
            identifier = reference.get("id") if isinstance(reference, dict) else None
            expectation = self._known.get(str(identifier))
            if expectation is None:
                raise ModelError("/expectationId", f"no expectation found with id {identifier}")
            return expectation.request, expectation.request.source
        raw = document.get("httpRequest")
        if raw is None:
            return None, {}
        return parse_request_matcher(raw, "/httpRequest"), raw

    def verify_sequence(self, document: Any) -> str:
        """``/mockserver/verifySequence``: the requests arrived in this order."""
        if not isinstance(document, dict):
            raise ModelError("", "verification sequence must be a JSON object")
        if document.get("httpResponses"):
            raise ModelError("/httpResponses", "response-aware sequences are not supported")
        limit = _limit(document)
        with self._lock:
            matchers: list[RequestMatcher] = []
            expected: list[Any] = []
            for index, reference in enumerate(document.get("expectationIds") or []):
                identifier = reference.get("id") if isinstance(reference, dict) else None
                expectation = self._known.get(str(identifier))
                if expectation is None:
                    raise ModelError(
                        f"/expectationIds/{index}", f"no expectation found with id {identifier}"
                    )
                matchers.append(expectation.request)
                expected.append(expectation.request.source)
            for index, raw in enumerate(document.get("httpRequests") or []):
                matchers.append(parse_request_matcher(raw, f"/httpRequests/{index}"))
                expected.append(raw)
            entries = list(self._log)
            position = 0
            for matcher in matchers:
                found = False
                while not found and position < len(entries):
                    found = match_request(matcher, entries[position].request)
                    position += 1
                if not found:
                    seen = [e.request.to_json() for e in entries]
                    message = sequence_failure(expected, seen, limit)
                    self._event(log_line(message))
                    return message
            return ""

    # ----------------------------------------------------------------- introspection

    def active_count(self) -> int:
        """How many expectations can still match."""
        now = time.monotonic()
        with self._lock:
            return sum(1 for e in self._expectations if e.alive(now))

    def log_size(self) -> int:
        """How many requests are logged."""
        with self._lock:
            return len(self._log)


_graveyard: queue.SimpleQueue[object] = queue.SimpleQueue()
_janitor_lock = threading.Lock()
_janitor: threading.Thread | None = None


def _bury() -> None:
    while True:
        item = _graveyard.get()
        del item  # the last reference: deallocation happens on this thread


def _dispose(item: object) -> None:
    """Drop ``item``'s last reference on a background thread (cheap for the caller)."""
    global _janitor
    if _janitor is None:
        with _janitor_lock:
            if _janitor is None:
                _janitor = threading.Thread(
                    target=_bury, name="mockserver-engine-janitor", daemon=True
                )
                _janitor.start()
    _graveyard.put(item)


def _times(raw: Any) -> tuple[int, int]:
    if raw is None:
        return 1, -1
    if not isinstance(raw, dict):
        raise ModelError("/times", "must be a JSON object")
    values: list[int] = []
    for key in ("atLeast", "atMost"):
        value = raw.get(key, -1)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ModelError(f"/times/{key}", "must be an integer")
        values.append(value)
    return values[0], values[1]


def _limit(document: Mapping[str, Any]) -> int:
    value = document.get("maximumNumberOfRequestToReturnInVerificationFailure")
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    return VERIFICATION_LIMIT


def _filter_params(expectation: Expectation, params: Mapping[str, str]) -> bool:
    """The metadata / unmatched selection of an ``ExpectationFilter``."""
    key = params.get("metadataKey")
    if key is not None:
        metadata = expectation.metadata or {}
        if key not in metadata:
            return False
        wanted = params.get("metadataValue")
        if wanted is not None:
            actual = metadata[key]
            text = actual if isinstance(actual, str) else json.dumps(actual)
            if text != wanted:
                return False
    if params.get("metadataJsonPath") is not None:
        raise ModelError("metadataJsonPath", "is not supported by this engine")
    return not (params.get("unmatched", "").lower() == "true" and expectation.matched)


def _page(items: list[JsonObject], params: Mapping[str, str]) -> list[JsonObject]:
    def number(name: str) -> int | None:
        value = params.get(name)
        if value is None:
            return None
        if not value.isdigit():
            raise ModelError(name, "must be a non-negative integer")
        return int(value)

    offset = number("offset") or 0
    limit = number("limit")
    return items[offset:] if limit is None else items[offset : offset + limit]

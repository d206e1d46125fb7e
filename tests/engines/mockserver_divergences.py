"""Where the pytest-commons MockServer engine and the real MockServer 5.15.0 differ, as
measured by running tests/engines/test_mockserver_protocol.py on both
(``PYTEST_COMMONS_MOCKSERVER_ENGINE=java``).

Each entry pins a divergence: the test records the engine's behaviour, and on the real
MockServer it is a *strict* xfail with this reason, so a divergence that goes away (or a new
one) fails the run. docs/parity.md is generated from these outcomes.
"""

from __future__ import annotations

_SCHEMA = (
    "real MockServer refuses malformed or unsupported documents with its own JSON-schema "
    "text (or accepts fields the engine refuses); the engine names the field in its own words"
)

#: test name (without parameters) → what the real MockServer 5.15.0 does instead
JAVA: dict[str, str] = {
    "test_unsupported_or_malformed_expectations_are_400_naming_the_field": _SCHEMA,
    "test_an_empty_expectation_body_is_400": _SCHEMA,
    "test_invalid_verifications_are_400": _SCHEMA,
    "test_invalid_sequence_verifications_are_400": _SCHEMA,
    "test_numbers_and_booleans_match_their_text": (
        "real MockServer refuses numbers and booleans as matcher values (schema: strings)"
    ),
    "test_key_value_array_forms": "real MockServer refuses some key/value forms the engine reads",
    "test_response_header_and_cookie_forms": (
        "real MockServer refuses some response header/cookie forms the engine reads"
    ),
    "test_percentage_and_a_request_less_expectation": (
        "real MockServer refuses the percentage form the engine reads"
    ),
    "test_active_expectations_paging_and_metadata_filters": (
        "real MockServer 5.15 has no paging or metadata filters on retrieve"
    ),
    "test_negated_key_with_values_excludes_only_those_values": (
        "real MockServer: a negated key with values excludes the key, not only those values"
    ),
    "test_negated_path_template": "real MockServer does not negate a path template",
    "test_json_unit_placeholders": "real MockServer 5.15 does not match ${json-unit.*} here",
    "test_json_matcher_types": "real MockServer matches JSON numbers/strings differently",
    "test_request_bodies_are_decoded_with_their_charset": (
        "real MockServer does not decode a request body by its Content-Type charset here"
    ),
    "test_unknown_status_code_has_an_empty_reason": (
        "real MockServer answers an unknown status with a reason phrase (e.g. 599 "
        "'Server Error (599)')"
    ),
    "test_framing_headers_of_the_expectation_are_replaced": (
        "real MockServer keeps a content-length header given in the expectation"
    ),
    "test_suppressed_content_length_with_close_socket": (
        "real MockServer keeps the connection alive where the engine closes it"
    ),
    "test_response_body_forms": "real MockServer adds '; charset=utf-8' to JSON content types",
    "test_error_action_with_a_delay_drops_the_connection": (
        "real MockServer's retrieve answer for this case is not one JSON document"
    ),
    "test_logs_as_json_describe_forwarded_requests": (
        "real MockServer's log retrieve is text, not one JSON document"
    ),
    "test_override_rewrites_method_path_query_headers_and_body": (
        "real MockServer did not forward this override (404)"
    ),
    "test_override_host_header_without_port_is_accepted": (
        "real MockServer records header values as arrays"
    ),
    "test_a_bare_http11_request_is_served_and_recorded": (
        "real MockServer records header values as arrays"
    ),
    "test_request_responses_show_json_response_bodies": (
        "real MockServer shows JSON response bodies as strings in request_responses"
    ),
    "test_recorded_bodies_keep_their_type": (
        "real MockServer shows a binary request body as a string"
    ),
    "test_verify_by_expectation_id": "real MockServer's message wording differs",
    "test_verify_sequence_by_expectation_ids": "real MockServer's message wording differs",
    "test_verify_without_a_request_counts_every_request": (
        "real MockServer refuses a verification without a request (400)"
    ),
    "test_verify_by_response_reason_headers_and_body": (
        "real MockServer 5.15 refuses response-aware verification (400)"
    ),
    "test_broken_request_framing_is_400_and_closes": (
        "real MockServer keeps waiting on broken framing instead of answering 400"
    ),
}

#: tests/integration/test_mockserver.py (the fixture suite through the official client)
JAVA_FIXTURES: dict[str, str] = {
    "test_expectation_response": (
        "real MockServer 5.15.0 reads /users/{id} as a path template only when pathParameters "
        "are given (404 here); the engine matches the template without them"
    ),
    "test_verify": (
        "real MockServer: mockserver-client's verify() without times means exactly once; "
        "the engine takes it as at least once"
    ),
}

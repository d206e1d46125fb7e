"""Text MockServer shows to people: verification failures and log messages.

MockServer serialises JSON with Jackson's default pretty printer (``"key" : value``,
two-space indentation, arrays inline as ``[ a, b ]``); clients surface the
verification text verbatim, so the engine reproduces that layout.
"""

from __future__ import annotations

import json
import time
from typing import Any


def pretty(value: Any, indent: int = 0) -> str:
    """Serialise ``value`` the way Jackson's ``DefaultPrettyPrinter`` does."""
    if isinstance(value, dict):
        if not value:
            return "{ }"
        inner = " " * (indent + 2)
        fields = ",\n".join(
            f"{inner}{json.dumps(key, ensure_ascii=False)} : {pretty(item, indent + 2)}"
            for key, item in value.items()
        )
        return "{\n" + fields + "\n" + " " * indent + "}"
    if isinstance(value, list):
        if not value:
            return "[ ]"
        return "[ " + ", ".join(pretty(item, indent) for item in value) + " ]"
    return json.dumps(value, ensure_ascii=False)


def describe_times(at_least: int, at_most: int) -> str:
    """MockServer's ``VerificationTimes.toString()`` (``-1`` means no bound)."""
    if at_least == at_most:
        return "exactly " + ("once" if at_most == 1 else f"{at_most} times")
    if at_most == -1:
        return "at least " + ("once" if at_least == 1 else f"{at_least} times")
    if at_least == -1:
        return "at most " + ("once" if at_most == 1 else f"{at_most} times")
    return f"between {at_least} and {at_most} times"


def _one_or_many(items: list[Any]) -> str:
    return pretty(items[0]) if len(items) == 1 else pretty(items)


def verification_failure(
    times: str,
    expected: Any,
    all_requests: list[Any],
    matched: int,
    limit: int,
    subject: str = "Request",
) -> str:
    """``Request not found <times>, expected:<...> but was:<...>``."""
    head = f"{subject} not found {times}, expected:<{pretty(expected)}>"
    if len(all_requests) < limit:
        return f"{head} but was:<{_one_or_many(all_requests)}>"
    plural = "" if matched == 1 else "s"
    return f"{head} but was found {matched} time{plural} among {len(all_requests)} total requests"


def sequence_failure(expected: list[Any], all_requests: list[Any], limit: int) -> str:
    """``Request sequence not found, expected:<[...]> but was:<...>``."""
    head = f"Request sequence not found, expected:<{pretty(expected)}>"
    if len(all_requests) < limit:
        return f"{head} but was:<{_one_or_many(all_requests)}>"
    return f"{head} but was not found, found {len(all_requests)} other requests"


def log_line(message: str, *arguments: Any) -> str:
    """A log message with MockServer's timestamp prefix and indented JSON arguments."""
    now = time.time()
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(now))
    millis = int((now % 1) * 1000)
    parts = message.split("{}")
    text = parts[0]
    for index, argument in enumerate(arguments):
        rendered = argument if isinstance(argument, str) else pretty(argument)
        indented = "\n".join("  " + line for line in rendered.splitlines())
        text += f"\n\n{indented}\n\n" + (parts[index + 1] if index + 1 < len(parts) else "")
    return f"{stamp}.{millis:03d} - {text.rstrip()}\n"

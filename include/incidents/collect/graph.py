"""What the Facebook and Instagram clients share: the Graph API error envelope, usage headers
and cursor paging.

Errors: ``{"error": {"message", "type", "code", "error_subcode", "fbtrace_id"}}`` (HTTP 400/401/403/500):
1/2 (and HTTP 5xx) transient; 4/17/32/613 and 80001-80014 throttling (RateLimited, waiting
``estimated_time_to_regain_access`` minutes of ``X-Business-Use-Case-Usage`` when given);
190/102/463/467 auth; 100 "does not exist"/subcode 33, 10 and 200-299 permission errors:
the source is unavailable; other 100s are plain API errors.

Usage headers of successful answers (``X-App-Usage``, ``X-Business-Use-Case-Usage``: JSON with
percentages of the limits) make the client pause before the next request once any figure
reaches 95 %.

Paging: the next request repeats the endpoint with the query of ``paging.next`` (an
``after`` cursor or ``until``/``__paging_token`` for time-based paging) minus the access
token, against the configured base URL; no ``paging.next`` ends the edge.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from incidents.collect.base import decode_json
from incidents.collect.errors import (
    ApiError,
    AuthError,
    MalformedResponse,
    RateLimited,
    SourceUnavailable,
    TransientError,
)
from incidents.collect.http import SECRET_PARAMS, parse_retry_after

log = logging.getLogger(__name__)

GRAPH_VERSION = "v19.0"
THROTTLE_CODES = frozenset({4, 17, 32, 613}) | frozenset(range(80001, 80015))
TRANSIENT_CODES = frozenset({1, 2})
AUTH_CODES = frozenset({102, 190, 463, 467})
USAGE_PAUSE_AT = 95.0
USAGE_PAUSE_SECONDS = 60.0


def usage_percent(headers: Mapping[str, str]) -> tuple[float, float | None]:
    """(highest usage % in ``X-App-Usage``/``X-Business-Use-Case-Usage``, seconds to regain access)."""
    highest, regain = 0.0, None
    lower = {k.lower(): v for k, v in headers.items()}
    app = lower.get("x-app-usage")
    if app:
        try:
            values = json.loads(app)
            highest = max([highest] + [float(v) for v in values.values() if isinstance(v, int | float)])
        except (ValueError, AttributeError):
            log.debug("unreadable X-App-Usage header %r", app)
    buc = lower.get("x-business-use-case-usage")
    if buc:
        try:
            for entries in json.loads(buc).values():
                for entry in entries:
                    for name in ("call_count", "total_cputime", "total_time"):
                        if isinstance(entry.get(name), int | float):
                            highest = max(highest, float(entry[name]))
                    minutes = entry.get("estimated_time_to_regain_access")
                    if isinstance(minutes, int | float) and minutes > 0:
                        regain = max(regain or 0.0, float(minutes) * 60)
        except (ValueError, AttributeError, TypeError):
            log.debug("unreadable X-Business-Use-Case-Usage header %r", buc)
    return highest, regain


def throttle(headers: Mapping[str, str]) -> float | None:
    """Seconds to pause after a successful answer whose usage headers are near the limit."""
    highest, regain = usage_percent(headers)
    if regain:
        return regain
    if highest >= USAGE_PAUSE_AT:
        return USAGE_PAUSE_SECONDS
    return None


def error_for(network: str, error: Mapping[str, Any], headers: Mapping[str, str] | None = None) -> ApiError:
    """The typed error of a Graph error envelope."""
    message = str(error.get("message", ""))
    try:
        code = int(error.get("code"))
    except (TypeError, ValueError):
        code = -1
    subcode = error.get("error_subcode")
    if code in THROTTLE_CODES:
        _, regain = usage_percent(headers or {})
        retry = regain if regain else parse_retry_after((headers or {}).get("Retry-After"), 0)
        return RateLimited(network, code, message, retry)
    if code in TRANSIENT_CODES or error.get("is_transient") is True:
        return TransientError(network, code, message)
    if code in AUTH_CODES or subcode in (458, 459, 460, 463, 464, 467):
        return AuthError(network, code, message)
    if code == 100 and ("does not exist" in message or subcode == 33):
        return SourceUnavailable(network, code, message)
    if code == 10 or 200 <= code <= 299:
        return SourceUnavailable(network, code, message)
    return ApiError(network, code, message)


def make_interpret(network: str) -> Callable[[int, Mapping[str, str], Any], Any]:
    """The answer mapping of one Graph network."""

    def interpret(status: int, headers: Mapping[str, str], body: bytes | str | dict) -> Any:
        try:
            data = decode_json(network, body)
        except MalformedResponse:
            if status >= 500:
                raise TransientError(network, status, f"HTTP {status}") from None
            if status == 429:
                raise RateLimited(network, 429, "HTTP 429") from None
            raise
        if isinstance(data, dict) and isinstance(data.get("error"), dict):
            raise error_for(network, data["error"], headers)
        if status >= 500:
            raise TransientError(network, status, f"HTTP {status}")
        if status == 429:
            raise RateLimited(network, 429, "HTTP 429", parse_retry_after(headers.get("Retry-After"), 0))
        if status != 200:
            raise ApiError(network, status, f"HTTP {status}")
        if not isinstance(data, dict):
            raise MalformedResponse(network, "malformed", "expected a JSON object")
        return data

    return interpret


def next_params(data: Mapping[str, Any]) -> dict[str, str] | None:
    """Query parameters of the next page (from ``paging.next``), without secrets; None at the end."""
    paging = data.get("paging") if isinstance(data, Mapping) else None
    if not isinstance(paging, Mapping) or not paging.get("next"):
        return None
    query = dict(parse_qsl(urlsplit(str(paging["next"])).query, keep_blank_values=True))
    return {k: v for k, v in query.items() if k not in SECRET_PARAMS and k != "pretty"}


def edge_items(data: Any) -> list:
    """The ``data`` list of an edge answer; MalformedResponse when absent."""
    items = data.get("data") if isinstance(data, Mapping) else None
    if not isinstance(items, list):
        raise MalformedResponse("graph", "malformed", "no 'data' list in the answer")
    return items

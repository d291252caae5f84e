"""What the Facebook and Instagram clients share: the Graph API error envelope, usage headers
and cursor paging.

Errors: ``{"error": {"message", "type", "code", "error_subcode", "fbtrace_id"}}`` (HTTP 400/401/403/500):
1/2 (and HTTP 5xx) transient; 4/17/32/613 and 80001-80014 throttling (RateLimited, waiting
``estimated_time_to_regain_access`` minutes of ``X-Business-Use-Case-Usage`` when given);
190/102/463/467 the token is refused (AuthError); 10, 200-299 and a 100 that speaks of a missing
permission, a feature (Page Public Content Access) or an app token / app secret proof are a
missing permission (PermissionMissing, naming the permission the message names): with a token
lacking permission the Graph API answers "Object … does not exist, cannot be loaded due to missing
permissions" for every object, so that answer is never taken for a deleted source. 803 ("aliases
you requested do not exist") and a 100 "does not exist" that mentions no permission: the source
is gone (SourceUnavailable); 368 (blocked for policy violations) needs a person; other 100s are
plain API errors.

Usage headers of successful answers (``X-App-Usage``, ``X-Business-Use-Case-Usage``: JSON with
percentages of the limits) make the client pause before the next request once any figure
reaches 95 %.

Paging (:class:`GraphClient.edge`, shared by Facebook and Instagram): the next request repeats
the endpoint with the query of ``paging.next`` (an ``after`` cursor or ``until``/``__paging_token``
for time-based paging) minus the access token, against the configured base URL, for as long as
there is a ``paging.next`` (:class:`incidents.collect.paging.CursorPaging`: a page of duplicates is
not the end; a repeated cursor fails the window as incomplete).
"""

from __future__ import annotations

import abc
import functools
import json
import logging
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar
from urllib.parse import parse_qsl, urlsplit

from incidents.collect.base import BaseClient, Reject, decode_json
from incidents.collect.errors import (
    ApiError,
    AuthError,
    MalformedResponse,
    ManualActionRequired,
    PermissionMissing,
    RateLimited,
    SourceUnavailable,
    TransientError,
)
from incidents.collect.http import SECRET_PARAMS, Throttle, parse_retry_after
from incidents.collect.paging import CursorPaging
from incidents.schema import NormalizedPost
from incidents.sources import Source

log = logging.getLogger(__name__)

GRAPH_VERSION = "v19.0"
THROTTLE_CODES = frozenset({4, 17, 32, 613}) | frozenset(range(80001, 80015))
TRANSIENT_CODES = frozenset({1, 2})
AUTH_CODES = frozenset({102, 190, 463, 467})
GONE_CODES = frozenset({803})
MANUAL_CODES = frozenset({368})
NEEDED_PERMISSIONS = {
    "facebook": "pages_read_engagement (or the Page Public Content Access feature)",
    "instagram": "instagram_basic and instagram_manage_comments (with pages_read_engagement)",
}
"""What each Graph client needs, named when the API's message names no permission itself."""
_PERMISSION_WORDS = ("permission", "public content access", "app secret proof", "app token", "feature")
_NAMED_PERMISSION = re.compile(r"'([A-Za-z_]+)' permission")
_NAMED_FEATURE = re.compile(r"'([A-Z][A-Za-z ]+)' feature")
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


def needed_permission(network: str, message: str) -> str:
    """The permission(s) a Graph error message names, else what ``network``'s client needs."""
    named = _NAMED_PERMISSION.findall(message) + [
        f"the '{f}' feature" for f in _NAMED_FEATURE.findall(message)
    ]
    if not named and "public content access" in message.lower():
        named = ["the 'Page Public Content Access' feature (an app token or app secret proof)"]
    return " or ".join(dict.fromkeys(named)) or NEEDED_PERMISSIONS.get(network, "")


def error_for(network: str, error: Mapping[str, Any], headers: Mapping[str, str] | None = None) -> ApiError:
    """The typed error of a Graph error envelope."""
    message = str(error.get("message", ""))
    try:
        code = int(str(error.get("code")))
    except ValueError:
        code = -1
    subcode = error.get("error_subcode")
    lowered = message.lower()
    if code in THROTTLE_CODES:
        _, regain = usage_percent(headers or {})
        retry = regain if regain else parse_retry_after((headers or {}).get("Retry-After"), 0)
        return RateLimited(network, code, message, retry)
    if code in TRANSIENT_CODES or error.get("is_transient") is True:
        return TransientError(network, code, message)
    if code in AUTH_CODES or subcode in (458, 459, 460, 463, 464, 467):
        return AuthError(network, code, message)
    if code == 10 or 200 <= code <= 299 or (code == 100 and any(w in lowered for w in _PERMISSION_WORDS)):
        return PermissionMissing(network, code, message, permission=needed_permission(network, message))
    if code in GONE_CODES or (code == 100 and "does not exist" in lowered):
        return SourceUnavailable(network, code, message)
    if code in MANUAL_CODES:
        return ManualActionRequired(network, code, message)
    return ApiError(network, code, message)


@functools.cache
def make_interpret(network: str) -> Callable[[int, Mapping[str, str], Any], Any]:
    """The answer mapping of one Graph network (one function per network)."""

    def interpret(status: int, headers: Mapping[str, str], body: bytes | str | dict[str, Any]) -> Any:
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


def edge_items(data: Any) -> list[Any]:
    """The ``data`` list of an edge answer; MalformedResponse when absent."""
    items = data.get("data") if isinstance(data, Mapping) else None
    if not isinstance(items, list):
        raise MalformedResponse("graph", "malformed", "no 'data' list in the answer")
    return items


@dataclass
class EdgePage:
    """One answer of an edge: the body, what was parsed from it, and which items are new."""

    params: dict[str, Any]
    data: dict[str, Any]
    posts: list[NormalizedPost]
    new: list[NormalizedPost]
    rejects: list[Reject]


class GraphClient(BaseClient):
    """What the Facebook and Instagram clients share: the call, usage headers and edge paging."""

    network: ClassVar[str] = ""

    def throttle_hint(self) -> Throttle:
        return throttle

    def call(self, path: str, params: dict[str, Any]) -> dict[str, Any]:
        return self.request(
            "GET",
            f"{self.base_url}/{path}",
            params={**params, "access_token": self.token},
            interpret=make_interpret(self.network),
        )

    @abc.abstractmethod
    def parse(
        self, source: Source, path: str, params: Mapping[str, Any], data: Any, url: str | None
    ) -> tuple[list[NormalizedPost], list[Reject]]:
        """``(posts, rejects)`` of an edge answer (the network's parser)."""

    def edge(
        self,
        source: Source,
        path: str,
        params: dict[str, Any],
        *,
        older_than: datetime | None = None,
        url: str | None = None,
    ) -> Iterator[EdgePage]:
        """Every page of an edge (newest first when ``older_than`` is given: paging stops early after
        a page whose oldest item is older than it); ``new`` holds the items not seen before."""
        paging = CursorPaging(self.network, path)
        seen: set[str] = set()
        request = dict(params)
        while True:
            data = self.call(path, request)
            posts, rejects = self.parse(source, path, request, data, url)
            new = [p for p in posts if p.external_id not in seen]
            seen.update(p.external_id for p in posts)
            yield EdgePage(request, data, posts, new, rejects)
            if older_than is not None and posts and min(p.published_at for p in posts) < older_than:
                break
            nxt = next_params(data)
            key = tuple(sorted(nxt.items())) if nxt is not None else None
            if not paging.advance(more=nxt is not None, next_cursor=key, fresh=len(new)):
                break
            # CursorPaging holds any Hashable cursor; this one is the sorted next-page params above
            cursor: tuple[tuple[str, str], ...] = paging.cursor or ()  # type: ignore[assignment]
            request = {**params, **dict(cursor), "fields": params["fields"]}

"""Twitter/X API v2 client.

Requests: ``GET {base}/2/tweets/search/recent`` (base e.g. ``https://api.twitter.com``), or
``/2/tweets/search/all`` when the connection's extra has ``"full_archive": true``; header
``Authorization: Bearer <connection password>``. Parameters:
``query`` (Source.query, else ``from:<Source.id>``), ``start_time``/``end_time`` (RFC 3339,
``YYYY-MM-DDTHH:MM:SSZ``; the end is clamped to 10 s before now as the API requires),
``max_results=100``, ``next_token``,
``expansions=author_id,referenced_tweets.id,in_reply_to_user_id``,
``tweet.fields=created_at,conversation_id,in_reply_to_user_id,referenced_tweets,geo,lang,author_id``,
``user.fields=username``.

Recent search reaches back 7 days: an older window without ``full_archive`` raises
:class:`WindowNotAvailable`. Replies are the tweets of the same search that reference a
``replied_to`` tweet: ``kind="comment"``, ``parent_external_id`` = the replied-to tweet id
(the source's query should match the replies too, e.g. ``from:x OR to:x``). Tweets without
``created_at`` (default fields) get the time encoded in their snowflake id.

Paging: ``next_token`` for as long as the answer has one (:class:`incidents.collect.paging.CursorPaging`).

Errors: 401 auth, 403 source unavailable (protected/suspended account) unless the problem type
says the app itself is not allowed (``client-forbidden``: a missing permission;
``unsupported-authentication``: the token is refused), 429 rate limited until ``x-rate-limit-reset``
(epoch seconds; a 429 of type ``usage-capped``, the project's tweet cap, is a daily limit), 5xx transient, 400 invalid request (``start_time`` too old → WindowNotAvailable).
After a success with ``x-rate-limit-remaining: 0`` the client waits for the reset.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, NoReturn

from incidents.collect.base import (
    BaseClient,
    Page,
    Reject,
    clean_text,
    decode_json,
    in_window,
    parse_iso,
    rfc3339,
)
from incidents.collect.errors import (
    ApiError,
    AuthError,
    DailyLimitReached,
    MalformedResponse,
    PermissionMissing,
    RateLimited,
    SourceUnavailable,
    TransientError,
    WindowNotAvailable,
)
from incidents.collect.http import Throttle, parse_retry_after
from incidents.collect.paging import CursorPaging
from incidents.schema import NormalizedPost, pseudonymize
from incidents.sources import Source

log = logging.getLogger(__name__)

NETWORK = "twitter"
RECENT = "/2/tweets/search/recent"
ALL = "/2/tweets/search/all"
RECENT_DAYS = 7
MAX_RESULTS = 100
EXPANSIONS = "author_id,referenced_tweets.id,in_reply_to_user_id"
TWEET_FIELDS = "created_at,conversation_id,in_reply_to_user_id,referenced_tweets,geo,lang,author_id"
USER_FIELDS = "username"
TWITTER_EPOCH_MS = 1288834974657
ACCESS_NEEDED = "a developer App attached to a Project with access to the search endpoint (Basic or higher)"


def snowflake_time(tweet_id: str | int) -> datetime:
    """The creation time encoded in a tweet id (ms since the Twitter epoch in the high bits)."""
    return datetime.fromtimestamp(((int(tweet_id) >> 22) + TWITTER_EPOCH_MS) / 1000, UTC)


def _reset_wait(headers: Mapping[str, str], now: float) -> float | None:
    reset = headers.get("x-rate-limit-reset")
    if reset:
        try:
            return max(0.0, float(reset) - now)
        except ValueError:
            return None
    return parse_retry_after(headers.get("Retry-After"), now)


def _ok_answer(data: Any) -> dict[str, Any]:
    """A 200 answer: the JSON object, unless it holds only errors (a gone or forbidden source)."""
    if not isinstance(data, dict):
        raise MalformedResponse(NETWORK, "malformed", "expected a JSON object")
    if "data" not in data and data.get("errors"):
        first = data["errors"][0]
        kind = str(first.get("type", ""))
        message = first.get("detail") or first.get("message") or first.get("title") or "error"
        if "resource-not-found" in kind or "not-authorized-for-resource" in kind:
            raise SourceUnavailable(NETWORK, kind.rsplit("/", 1)[-1], message)
        raise ApiError(NETWORK, kind.rsplit("/", 1)[-1] or 200, message)
    return data


def _raise_error_answer(status: int, data: Any) -> NoReturn:
    """A 4xx answer with a JSON body: the error it stands for."""
    detail = ""
    if isinstance(data, dict):
        detail = str(data.get("detail") or data.get("title") or "")
        for err in data.get("errors") or []:
            detail += f" {err.get('message', '')}"
    detail = detail.strip() or f"HTTP {status}"
    kind = str(data.get("type", "")) if isinstance(data, dict) else ""
    if status == 401:
        raise AuthError(NETWORK, 401, detail)
    if status == 403:
        if "unsupported-authentication" in kind:
            raise AuthError(NETWORK, 403, detail)
        if "client-forbidden" in kind:
            raise PermissionMissing(NETWORK, 403, detail, permission=ACCESS_NEEDED)
        raise SourceUnavailable(NETWORK, 403, detail)
    if status == 400 and "start_time" in detail and ("on or after" in detail or "must be" in detail):
        raise WindowNotAvailable(NETWORK, 400, detail)
    raise ApiError(NETWORK, status, detail)


def make_interpret(clock: Callable[[], float] = time.time) -> Callable[[int, Mapping[str, str], Any], Any]:
    """The answer mapping, with the clock used to turn ``x-rate-limit-reset`` into a wait."""

    def interpret(status: int, headers: Mapping[str, str], body: bytes | str | dict[str, Any]) -> Any:
        if status == 429:
            if b"usage-capped" in (body if isinstance(body, bytes) else str(body).encode()):
                raise DailyLimitReached(
                    NETWORK, 429, "usage cap exceeded (the project's tweet cap is used up)"
                )
            raise RateLimited(NETWORK, 429, "Too Many Requests", _reset_wait(headers, clock()))
        if status >= 500:
            raise TransientError(NETWORK, status, f"HTTP {status}")
        try:
            data = decode_json(NETWORK, body)
        except MalformedResponse:
            if status != 200:
                raise ApiError(NETWORK, status, f"HTTP {status} with a non-JSON body") from None
            raise
        if status == 200:
            return _ok_answer(data)
        _raise_error_answer(status, data)

    return interpret


interpret = make_interpret()
"""The answer mapping with the wall clock (for fixtures)."""


def _geo(tweet: dict[str, Any]) -> dict[str, float] | None:
    coords = ((tweet.get("geo") or {}).get("coordinates") or {}).get("coordinates")
    if isinstance(coords, list) and len(coords) >= 2:
        try:
            return {"lat": float(coords[1]), "lon": float(coords[0])}
        except (TypeError, ValueError):
            return None
    return None


def parse_tweet(tweet: dict[str, Any], *, source_id: str, key: str) -> NormalizedPost:
    """One tweet object → NormalizedPost (KeyError/ValueError/TypeError when unusable)."""
    tweet_id = str(tweet["id"])
    int(tweet_id)  # ids are numeric strings
    published = parse_iso(tweet["created_at"]) if tweet.get("created_at") else snowflake_time(tweet_id)
    replied = [r for r in tweet.get("referenced_tweets") or [] if r.get("type") == "replied_to"]
    return NormalizedPost(
        network=NETWORK,
        external_id=tweet_id,
        source_id=source_id,
        author_pseudonym=pseudonymize(NETWORK, tweet.get("author_id"), key),
        published_at=published,
        text=clean_text(tweet.get("text"), NETWORK),
        kind="comment" if replied else "post",
        parent_external_id=str(replied[0]["id"]) if replied else None,
        url=f"https://x.com/i/web/status/{tweet_id}",
        geo=_geo(tweet),
        raw=tweet,
    )


def parse_response(
    endpoint: str, params: Mapping[str, Any], data: Any, *, source_id: str, key: str
) -> tuple[list[NormalizedPost], list[Reject]]:
    """Tweets of a search/timeline/lookup answer (``includes`` are context, not items).

    Tweet counts answers (``/2/tweets/counts/*``: ``start``/``end``/``tweet_count``) hold no tweets.
    """
    items = data.get("data") if isinstance(data, dict) else None
    if items is None:
        return [], []
    if isinstance(items, dict):
        items = [items]
    if "counts" in endpoint or (items and all(isinstance(i, dict) and "tweet_count" in i for i in items)):
        return [], []
    posts: list[NormalizedPost] = []
    rejects: list[Reject] = []
    for item in items:
        if not isinstance(item, dict):
            rejects.append((item, "not an object"))
            continue
        try:
            posts.append(parse_tweet(item, source_id=source_id, key=key))
        except (KeyError, ValueError, TypeError) as exc:
            rejects.append((item, f"unusable tweet: missing or invalid {exc}"))
    return posts, rejects


class Client(BaseClient):
    """Twitter/X search of one window (recent, or full archive when the connection allows)."""

    network = NETWORK

    def throttle_hint(self) -> Throttle:
        def hint(headers: Mapping[str, str]) -> float | None:
            if headers.get("x-rate-limit-remaining") == "0":
                wait = _reset_wait(headers, self.http.clock() if hasattr(self, "http") else time.time())
                return None if wait is None else wait + 1
            return None

        return hint

    @property
    def full_archive(self) -> bool:
        value = self.extra.get("full_archive", False)
        return value is True or str(value).lower() in ("1", "true", "yes")

    def call(self, path: str, params: dict[str, Any]) -> dict[str, Any]:
        return self.request(
            "GET",
            self.base_url + path,
            params=params,
            headers={"Authorization": f"Bearer {self.token}"},
            interpret=make_interpret(self.http.clock),
        )

    def endpoint_for(self, start: datetime, now: datetime) -> str:
        """``/2/tweets/search/all`` with full archive access, else recent search (or WindowNotAvailable)."""
        if self.full_archive:
            return ALL
        oldest = now - timedelta(days=RECENT_DAYS) + timedelta(minutes=1)
        if start < oldest:
            raise WindowNotAvailable(
                NETWORK,
                "window",
                f"window starting {rfc3339(start)} is older than the 7 days recent search covers; "
                f'set extra {{"full_archive": true}} on connection {self.conn_id!r} if it has full-archive access',
            )
        return RECENT

    def iter_pages(self, source: Source, start: datetime, end: datetime) -> Iterator[Page]:
        """Pages of tweets and replies matching the source's query in ``[start, end)``."""
        now = datetime.fromtimestamp(self.http.clock(), UTC)
        path = self.endpoint_for(start, now)
        end_param = min(end, now - timedelta(seconds=10))
        if end_param <= start:
            log.info("twitter: window %s..%s is not over yet for the API; nothing to search", start, end)
            return
        paging, seen = CursorPaging(NETWORK, f"{path} {source.query or source.id!r}"), set[Any]()
        while True:
            params: dict[str, Any] = {
                "query": source.query or f"from:{source.id}",
                "start_time": rfc3339(start),
                "end_time": rfc3339(end_param),
                "max_results": MAX_RESULTS,
                "expansions": EXPANSIONS,
                "tweet.fields": TWEET_FIELDS,
                "user.fields": USER_FIELDS,
            }
            if paging.cursor:
                params["next_token"] = paging.cursor
            data = self.call(path, params)
            posts, rejects = parse_response(path, params, data, source_id=source.id, key=self.pseudonym_key)
            new = [p for p in posts if p.external_id not in seen]
            seen.update(p.external_id for p in posts)
            selected = [p for p in new if in_window(p.published_at, start, end)]
            yield self.page(source, path, params, data, selected, rejects)
            next_token = (data.get("meta") or {}).get("next_token")
            if not paging.advance(more=bool(next_token), next_cursor=next_token, fresh=len(new)):
                break

"""Odnoklassniki (OK) API client.

Requests: ``POST {base}`` (base e.g. ``https://api.ok.ru/fb.do``), form-encoded, with
``application_key`` (extra ``application_key``), ``method``, ``format=json``, ``access_token``
(the connection's password) and ``sig`` = lowercase hex
``md5("".join(f"{k}={v}" for k, v in sorted(params) if k not in ("sig", "access_token"))
+ md5(access_token + application_secret_key))`` (extra ``application_secret_key``).

* ``mediatopic.getTopics``: ``gid`` (Source.id), ``count=100``, ``anchor`` (the previous
  answer's ``anchor`` while ``has_more``). Topics come newest first
  (``media_topics[]``: ``id``, ``created_ms``, ``media[{type: text, text}]``, ``author_ref``
  ``user:<id>``/``group:<id>``); paging stops at a page whose oldest topic is older than the window
  start, at ``has_more=false`` or at an empty page.
* ``discussions.getComments`` for every topic of the window with comments: ``discussionId``,
  ``discussionType=GROUP_TOPIC``, ``count=100``, ``direction=FORWARD``, ``anchor``.
  Comments: ``id``, ``author_id``, ``date`` (Moscow time ``yyyy-MM-dd HH:mm:ss``) or ``date_ms``,
  ``text``, ``reply_to_comment_id``, ``type`` (``DELETED`` is rejected with a reason).

``discussions.get`` answers (a single ``discussion`` object) are parsed too.

Errors arrive inside HTTP 200 as ``{"error_code", "error_msg", "error_data"}``: 1/2 transient,
8 rate limited, 11 limit reached (daily), 100 invalid parameter, 101/102/103/104 auth
(bad application key, session expired, invalid session, bad signature), 160/300/455
the group or topic is unavailable.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

from incidents.collect.base import (
    MSK,
    BaseClient,
    Page,
    Reject,
    clean_text,
    decode_json,
    from_epoch,
    in_window,
    utc,
)
from incidents.collect.errors import (
    ApiError,
    AuthError,
    DailyLimitReached,
    MalformedResponse,
    RateLimited,
    SourceUnavailable,
    TransientError,
)
from incidents.schema import NormalizedPost, pseudonymize
from incidents.sources import Source

log = logging.getLogger(__name__)

NETWORK = "ok"
TOPICS_PAGE = 100
COMMENTS_PAGE = 100

TRANSIENT_CODES = frozenset({1, 2})
RATE_CODES = frozenset({8})
DAILY_CODES = frozenset({11})
AUTH_CODES = frozenset({101, 102, 103, 104})
SOURCE_CODES = frozenset({160, 300, 455})


def signature(params: Mapping[str, Any], access_token: str, secret_key: str) -> str:
    """OK request signature (see the module docstring)."""
    session_secret = hashlib.md5((access_token + secret_key).encode("utf-8")).hexdigest()
    pairs = "".join(f"{k}={params[k]}" for k in sorted(params) if k not in ("sig", "access_token"))
    return hashlib.md5((pairs + session_secret).encode("utf-8")).hexdigest().lower()


def error_for(code: Any, message: str) -> ApiError:
    """The typed error of an OK ``error_code``."""
    try:
        number = int(code)
    except (TypeError, ValueError):
        number = -1
    if number in TRANSIENT_CODES:
        return TransientError(NETWORK, number, message)
    if number in RATE_CODES:
        return RateLimited(NETWORK, number, message)
    if number in DAILY_CODES:
        return DailyLimitReached(NETWORK, number, message)
    if number in AUTH_CODES:
        return AuthError(NETWORK, number, message)
    if number in SOURCE_CODES:
        return SourceUnavailable(NETWORK, number, message)
    return ApiError(NETWORK, code, message)


def interpret(status: int, headers: Mapping[str, str], body: bytes | str | dict) -> Any:
    """Map one HTTP answer to the decoded body or raise the typed error."""
    if status == 429:
        raise RateLimited(NETWORK, 429, "HTTP 429 Too Many Requests")
    if status >= 500:
        raise TransientError(NETWORK, status, f"HTTP {status}")
    data = decode_json(NETWORK, body)
    if isinstance(data, dict) and "error_code" in data:
        raise error_for(data.get("error_code"), str(data.get("error_msg", "")))
    if status != 200:
        raise ApiError(NETWORK, status, f"HTTP {status}")
    if not isinstance(data, dict):
        raise MalformedResponse(NETWORK, "malformed", f"expected a JSON object, got {type(data).__name__}")
    return data


def parse_ok_time(value: str) -> datetime:
    """OK's ``yyyy-MM-dd HH:mm:ss`` (Moscow time) → UTC."""
    return utc(datetime.strptime(value.strip(), "%Y-%m-%d %H:%M:%S").replace(tzinfo=MSK))


def _published(item: Mapping[str, Any], ms_key: str, text_key: str) -> datetime:
    if item.get(ms_key) not in (None, ""):
        return from_epoch(int(item[ms_key]) / 1000)
    return parse_ok_time(str(item[text_key]))


def _ref_id(ref: Any) -> str | None:
    """``user:123`` / ``group:456`` → the id."""
    if not ref:
        return None
    return str(ref).split(":", 1)[-1]


def topic_url(group_id: str, topic_id: str) -> str:
    return f"https://ok.ru/group/{group_id}/topic/{topic_id}"


def parse_topic(item: dict, *, group_id: str, source_id: str, key: str) -> NormalizedPost:
    """One ``media_topics[]`` element → NormalizedPost (KeyError/ValueError/TypeError when unusable)."""
    topic_id = str(item["id"])
    texts = [
        m.get("text") or ""
        for m in item.get("media") or []
        if isinstance(m, dict) and m.get("type") == "text"
    ]
    author = _ref_id(item.get("author_ref")) or _ref_id(item.get("owner_ref")) or group_id
    return NormalizedPost(
        network=NETWORK,
        external_id=f"{group_id}_{topic_id}",
        source_id=source_id,
        author_pseudonym=pseudonymize(NETWORK, author, key),
        published_at=_published(item, "created_ms", "created_date"),
        text=clean_text("\n".join(texts), NETWORK),
        kind="post",
        url=topic_url(group_id, topic_id),
        raw=item,
    )


def parse_discussion(data: dict, *, group_id: str | None, source_id: str, key: str) -> NormalizedPost:
    """A ``discussions.get`` answer (``discussion`` + ``entities``) → NormalizedPost."""
    disc = data["discussion"]
    if group_id is None:
        refs = [r for r in disc.get("ref_objects") or [] if r.get("type") == "GROUP"]
        if not refs:
            raise KeyError("ref_objects GROUP")
        group_id = str(refs[0]["id"])
    topic_id = str(disc["object_id"])
    return NormalizedPost(
        network=NETWORK,
        external_id=f"{group_id}_{topic_id}",
        source_id=source_id,
        author_pseudonym=pseudonymize(NETWORK, disc.get("owner_uid"), key),
        published_at=_published(disc, "creation_ms", "creation_date"),
        text=clean_text(disc.get("message") or disc.get("title") or "", NETWORK),
        kind="post",
        url=topic_url(group_id, topic_id),
        raw=data,
    )


def parse_comment(
    item: dict, *, group_id: str, topic_id: str, source_id: str, key: str
) -> NormalizedPost | Reject:
    """One ``discussions.getComments`` element → NormalizedPost or ``(item, reason)``."""
    if str(item.get("type", "")).upper() == "DELETED" or item.get("deleted"):
        return item, "deleted comment"
    try:
        comment_id = str(item["id"])
        published = _published(item, "date_ms", "date")
    except (KeyError, ValueError, TypeError) as exc:
        return item, f"unusable comment: missing or invalid {exc}"
    topic_ext = f"{group_id}_{topic_id}"
    reply_to = item.get("reply_to_comment_id")
    return NormalizedPost(
        network=NETWORK,
        external_id=f"{topic_ext}_{comment_id}",
        source_id=source_id,
        author_pseudonym=pseudonymize(NETWORK, item.get("author_id"), key),
        published_at=published,
        text=clean_text(item.get("text"), NETWORK),
        kind="comment",
        parent_external_id=f"{topic_ext}_{reply_to}" if reply_to else topic_ext,
        url=topic_url(group_id, topic_id),
        raw=item,
    )


def parse_response(
    endpoint: str, params: Mapping[str, Any], data: Any, *, source_id: str, key: str
) -> tuple[list[NormalizedPost], list[Reject]]:
    """Parse the answer of ``endpoint`` (an OK method name) called with ``params``."""
    posts: list[NormalizedPost] = []
    rejects: list[Reject] = []
    if endpoint == "mediatopic.getTopics":
        group_id = str(params.get("gid") or source_id)
        for item in data.get("media_topics") or []:
            try:
                posts.append(parse_topic(item, group_id=group_id, source_id=source_id, key=key))
            except (KeyError, ValueError, TypeError, AttributeError) as exc:
                rejects.append((item, f"unusable topic: missing or invalid {exc}"))
        return posts, rejects
    if endpoint == "discussions.get":
        group = params.get("gid")
        try:
            posts.append(parse_discussion(data, group_id=group, source_id=source_id, key=key))
        except (KeyError, ValueError, TypeError) as exc:
            rejects.append((data, f"unusable discussion: missing or invalid {exc}"))
        return posts, rejects
    if endpoint == "discussions.getComments":
        topic_id = params.get("discussionId")
        group_id = params.get("gid") or source_id
        items = data.get("comments") if isinstance(data, dict) and "comments" in data else [data]
        for item in items or []:
            if topic_id is None:
                rejects.append((item, "comment without its topic (discussionId unknown)"))
                continue
            result = parse_comment(
                item, group_id=str(group_id), topic_id=str(topic_id), source_id=source_id, key=key
            )
            if isinstance(result, NormalizedPost):
                posts.append(result)
            else:
                rejects.append(result)
        return posts, rejects
    raise ValueError(f"ok: no parser for method {endpoint!r}")


class Client(BaseClient):
    """OK group topics and their comments of one window."""

    network = NETWORK

    def __init__(self, base_url: str, token: str, **kwargs: Any) -> None:
        super().__init__(base_url, token, **kwargs)
        self.application_key = str(self.extra.get("application_key") or "")
        self.secret_key = str(self.extra.get("application_secret_key") or "")
        if not self.application_key or not self.secret_key:
            raise ValueError(
                f"ok: connection {self.conn_id!r} needs extra.application_key and extra.application_secret_key"
            )

    def call(self, method: str, params: dict[str, Any]) -> dict:
        signed = {**params, "application_key": self.application_key, "method": method, "format": "json"}
        signed = {k: str(v) for k, v in signed.items()}
        signed["sig"] = signature(signed, self.token, self.secret_key)
        signed["access_token"] = self.token
        try:
            return self.http.call("POST", self.base_url, data=signed, interpret=interpret)
        except AuthError as exc:
            raise AuthError(NETWORK, exc.code, exc.message, conn_id=self.conn_id) from None

    def iter_pages(self, source: Source, start: datetime, end: datetime) -> Iterator[Page]:
        """Pages of the group's topics in ``[start, end)``, then the comments of those topics."""
        commented: list[str] = []
        anchor, seen = None, set()
        while True:
            params: dict[str, Any] = {"gid": source.id, "count": TOPICS_PAGE}
            if anchor:
                params["anchor"] = anchor
            data = self.call("mediatopic.getTopics", params)
            posts, rejects = parse_response(
                "mediatopic.getTopics", params, data, source_id=source.id, key=self.pseudonym_key
            )
            new = [p for p in posts if p.external_id not in seen]
            seen.update(p.external_id for p in posts)
            selected = [p for p in new if in_window(p.published_at, start, end)]
            for post in selected:
                count = (post.raw.get("discussion_summary") or {}).get("comments_count")
                if count is None or int(count) > 0:
                    commented.append(post.external_id.split("_", 1)[1])
            yield self.page(source, "mediatopic.getTopics", {**params, "method": "mediatopic.getTopics"}, data,
                            selected, rejects)  # fmt: skip
            next_anchor = data.get("anchor")
            if not data.get("has_more") or not data.get("media_topics") or not next_anchor:
                break
            if next_anchor == anchor or not new:
                break
            if posts and min(p.published_at for p in posts) < start:
                break
            anchor = next_anchor
        for topic_id in commented:
            yield from self._comments(source, topic_id)

    def _comments(self, source: Source, topic_id: str) -> Iterator[Page]:
        anchor, seen = None, set()
        while True:
            params: dict[str, Any] = {
                "discussionId": topic_id,
                "discussionType": "GROUP_TOPIC",
                "count": COMMENTS_PAGE,
                "direction": "FORWARD",
            }
            if anchor:
                params["anchor"] = anchor
            try:
                data = self.call("discussions.getComments", params)
            except SourceUnavailable as exc:
                log.info("ok: comments of topic %s unavailable: %s", topic_id, exc.message)
                return
            items = data.get("comments") or []
            fresh = [c for c in items if c.get("id") not in seen]
            seen.update(c.get("id") for c in items)
            posts, rejects = parse_response(
                "discussions.getComments", {**params, "gid": source.id}, {"comments": fresh},
                source_id=source.id, key=self.pseudonym_key,
            )  # fmt: skip
            yield self.page(source, "discussions.getComments", {**params, "method": "discussions.getComments"},
                            data, posts, rejects)  # fmt: skip
            next_anchor = data.get("anchor")
            if not data.get("has_more") or not items or not next_anchor or next_anchor == anchor:
                break
            anchor = next_anchor

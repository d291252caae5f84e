"""Odnoklassniki (OK) API client.

Requests: ``POST {base}`` (base e.g. ``https://api.ok.ru/fb.do``), form-encoded, with
``application_key`` (extra ``application_key``), ``method``, ``format=json``, ``access_token``
(the connection's password) and ``sig`` = lowercase hex
``md5("".join(f"{k}={v}" for k, v in sorted(params) if k not in ("sig", "access_token"))
+ md5(access_token + application_secret_key))`` (extra ``application_secret_key``).

* ``mediatopic.getTopics``: ``gid`` (Source.id), ``count=100``, ``fields`` (:data:`TOPIC_FIELDS`,
  requested explicitly rather than relying on the defaults), ``anchor`` (the previous answer's
  ``anchor`` while ``has_more``). Topics come newest first (``media_topics[]``: ``id``,
  ``created_ms``, ``media[]`` blocks, ``author_ref`` ``user:<id>``/``group:<id>``); paging goes on
  while ``has_more`` and stops early at a page whose oldest topic is older than the window start.
* ``discussions.getComments`` for every topic of the window with comments: ``discussionId``,
  ``discussionType=GROUP_TOPIC``, ``count=100``, ``direction=FORWARD``, ``anchor`` while ``has_more``.
  Comments: ``id``, ``author_id``, ``date`` (Moscow time ``yyyy-MM-dd HH:mm:ss``) or ``date_ms``,
  ``text``, ``reply_to_comment_id``, ``type`` (``DELETED`` is rejected with a reason).

A topic's text is its ``title`` (a group topic's ``discussions.get`` answer has it; its
``message`` is OK's generated "Topic in the … group" line, never the text) followed by its text
blocks (``media[]`` items of ``type: text``); a title that merely repeats the start of the first
block is not doubled. OK's local times (``yyyy-MM-dd HH:mm:ss``) are Moscow time with its history
(:data:`incidents.collect.base.MOSCOW`: UTC+4 from March 2011 to October 2014).

Errors arrive inside HTTP 200 as ``{"error_code", "error_msg", "error_data"}``, mapped by
:data:`ERRORS`: 1/2 transient, 8 rate limited, 11 limit reached (daily), 100 invalid parameter,
101/102/103/104 token refused (bad application key, session expired, invalid session, bad
signature), 10 ``PERMISSION_DENIED`` and 200 ``PARAM_PERMISSION`` a missing permission,
7 ``ACTION_BLOCKED`` needs a person, 160/300/455 the group or topic is gone.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

from incidents.collect.base import (
    MOSCOW,
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
    ErrorTable,
    MalformedResponse,
    RateLimited,
    SourceUnavailable,
    TransientError,
)
from incidents.collect.paging import CursorPaging
from incidents.schema import NormalizedPost, pseudonymize
from incidents.sources import Source

log = logging.getLogger(__name__)

NETWORK = "ok"
TOPICS_PAGE = 100
COMMENTS_PAGE = 100

TOPIC_FIELDS = ",".join(
    f"media_topic.{name}"
    for name in ("id", "created_ms", "media", "author_ref", "owner_ref", "discussion_summary")
)
"""The topic fields :meth:`Client.iter_pages` asks ``mediatopic.getTopics`` for."""

ERRORS = ErrorTable(
    NETWORK,
    transient={1, 2},
    rate={8},
    daily={11},
    auth={101, 102, 103, 104},
    permissions={
        10: "the application's permission to read group content (GROUP_CONTENT / VALUABLE_ACCESS)",
        200: "the application's permission to read group content (GROUP_CONTENT / VALUABLE_ACCESS)",
    },
    gone={160, 300, 455},
    manual={7},
)


def signature(params: Mapping[str, Any], access_token: str, secret_key: str) -> str:
    """OK request signature (see the module docstring)."""
    session_secret = hashlib.md5((access_token + secret_key).encode("utf-8")).hexdigest()
    pairs = "".join(f"{k}={params[k]}" for k in sorted(params) if k not in ("sig", "access_token"))
    return hashlib.md5((pairs + session_secret).encode("utf-8")).hexdigest().lower()


def error_for(code: Any, message: str) -> ApiError:
    """The typed error of an OK ``error_code``."""
    return ERRORS.error(code, message)


def interpret(status: int, headers: Mapping[str, str], body: bytes | str | dict[str, Any]) -> Any:
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
    """OK's ``yyyy-MM-dd HH:mm:ss`` (Moscow time, with its historical offsets) → UTC."""
    return utc(datetime.strptime(value.strip(), "%Y-%m-%d %H:%M:%S").replace(tzinfo=MOSCOW))


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


def _squash(text: str) -> str:
    return " ".join(text.split()).rstrip(".… ").casefold()


def topic_text(title: Any, media: Any) -> str:
    """A topic's raw text: its ``title`` and its text blocks (``media[]`` items of type ``text``),
    one per line; a part that only repeats the start of another (a title cut from the first
    block) is left out."""
    parts = [str(title)] if isinstance(title, str) and title.strip() else []
    for block in media if isinstance(media, list) else []:
        if isinstance(block, dict) and block.get("type") == "text" and str(block.get("text") or "").strip():
            parts.append(str(block["text"]))
    kept: list[str] = []
    for part in parts:
        short = _squash(part)
        if any(_squash(other).startswith(short) for other in kept):
            continue  # a repeat of (the start of) a part already kept
        cut = [i for i, other in enumerate(kept) if short.startswith(_squash(other))]
        if cut:  # a longer version of a part already kept (a title cut from this block) takes its place
            kept[cut[0]] = part
            kept = [other for i, other in enumerate(kept) if i not in cut[1:]]
        else:
            kept.append(part)
    return "\n".join(kept)


def parse_topic(item: dict[str, Any], *, group_id: str, source_id: str, key: str) -> NormalizedPost:
    """One ``media_topics[]`` element → NormalizedPost (KeyError/ValueError/TypeError when unusable)."""
    topic_id = str(item["id"])
    author = _ref_id(item.get("author_ref")) or _ref_id(item.get("owner_ref")) or group_id
    return NormalizedPost(
        network=NETWORK,
        external_id=f"{group_id}_{topic_id}",
        source_id=source_id,
        author_pseudonym=pseudonymize(NETWORK, author, key),
        published_at=_published(item, "created_ms", "created_date"),
        text=clean_text(topic_text(item.get("title"), item.get("media")), NETWORK),
        kind="post",
        url=topic_url(group_id, topic_id),
        raw=item,
    )


def parse_discussion(
    data: dict[str, Any], *, group_id: str | None, source_id: str, key: str
) -> NormalizedPost:
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
        text=clean_text(
            topic_text(disc.get("title"), disc.get("media") or _topic_media(data, topic_id)), NETWORK
        ),
        kind="post",
        url=topic_url(group_id, topic_id),
        raw=data,
    )


def _topic_media(data: Mapping[str, Any], topic_id: str) -> list[Any]:
    """The text blocks of the topic's ``media_topics`` entity in a ``discussions.get`` answer, if any."""
    for topic in (data.get("entities") or {}).get("media_topics") or []:
        if isinstance(topic, dict) and str(topic.get("id")) == topic_id:
            return topic.get("media") or []
    return []


def parse_comment(
    item: dict[str, Any], *, group_id: str, topic_id: str, source_id: str, key: str
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

    def call(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        signed = {**params, "application_key": self.application_key, "method": method, "format": "json"}
        signed = {k: str(v) for k, v in signed.items()}
        signed["sig"] = signature(signed, self.token, self.secret_key)
        signed["access_token"] = self.token
        return self.request("POST", self.base_url, data=signed, interpret=interpret)

    def iter_pages(self, source: Source, start: datetime, end: datetime) -> Iterator[Page]:
        """Pages of the group's topics in ``[start, end)``, then the comments of those topics."""
        commented: list[str] = []
        paging, seen = CursorPaging(NETWORK, f"mediatopic.getTopics of group {source.id}"), set[Any]()
        while True:
            params: dict[str, Any] = {"gid": source.id, "count": TOPICS_PAGE, "fields": TOPIC_FIELDS}
            if paging.cursor:
                params["anchor"] = paging.cursor
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
            if posts and min(p.published_at for p in posts) < start:
                break  # newest first: the rest of the group is older than the window
            more = bool(data.get("has_more"))
            if not paging.advance(more=more, next_cursor=data.get("anchor") or None, fresh=len(new)):
                break
        for topic_id in commented:
            yield from self._comments(source, topic_id)

    def _comments(self, source: Source, topic_id: str) -> Iterator[Page]:
        paging, seen = CursorPaging(NETWORK, f"discussions.getComments of topic {topic_id}"), set[Any]()
        while True:
            params: dict[str, Any] = {
                "discussionId": topic_id,
                "discussionType": "GROUP_TOPIC",
                "count": COMMENTS_PAGE,
                "direction": "FORWARD",
            }
            if paging.cursor:
                params["anchor"] = paging.cursor
            try:
                data = self.call("discussions.getComments", params)
            except SourceUnavailable as exc:  # the topic was deleted since the group was read
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
            more = bool(data.get("has_more"))
            if not paging.advance(more=more, next_cursor=data.get("anchor") or None, fresh=len(fresh)):
                break

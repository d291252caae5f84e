"""Instagram Graph API client (a business/creator account's media and their comments).

Requests: ``GET {base}/{object}/{edge}`` (base e.g. ``https://graph.facebook.com/v19.0``) with
``access_token`` (the connection's password) as a query parameter.

* ``/{ig-user-id}/media``: ``fields=id,caption,timestamp,permalink,username,comments_count``,
  ``limit=50``, ``since``/``until`` (window, epoch seconds); newest first; next pages repeat the
  request with the query of ``paging.next`` (cursor ``after``) for as long as there is one (a page
  of duplicates is not the end), stopping early after a page whose oldest media is older than the
  window start.
* ``/{media-id}/comments`` for every media of the window with ``comments_count`` > 0:
  ``fields=id,text,timestamp,username,replies{id,text,timestamp,username}``, ``limit=50``, same paging.
* ``/{comment-id}/replies`` (``fields=id,text,timestamp,username``, ``limit=50``) when the nested
  ``replies`` of a comment have a ``paging.next``.

Media author = ``owner.id`` or ``username``; comment author = ``from.id`` or ``username``; a
comment's parent is its media, a reply's parent its comment. Comments have no permalink of
their own: their ``url`` is their media's permalink. Errors and usage headers: see
:mod:`incidents.collect.graph`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

from incidents.collect import graph
from incidents.collect.base import Page, Reject, clean_text, in_window, parse_iso
from incidents.collect.errors import SourceUnavailable
from incidents.schema import NormalizedPost, pseudonymize
from incidents.sources import Source

log = logging.getLogger(__name__)

NETWORK = "instagram"
PAGE_LIMIT = 50
MEDIA_FIELDS = "id,caption,timestamp,permalink,username,comments_count"
REPLY_FIELDS = "id,text,timestamp,username"
COMMENT_FIELDS = f"id,text,timestamp,username,replies{{{REPLY_FIELDS}}}"

interpret = graph.make_interpret(NETWORK)


def parse_media(
    item: dict[str, Any], *, source_id: str, key: str, owner: str | None = None
) -> NormalizedPost:
    """One media object → NormalizedPost (KeyError/ValueError/TypeError when unusable)."""
    media_id = str(item["id"])
    author = (item.get("owner") or {}).get("id") or item.get("username") or owner
    return NormalizedPost(
        network=NETWORK,
        external_id=media_id,
        source_id=source_id,
        author_pseudonym=pseudonymize(NETWORK, None if author is None else str(author), key),
        published_at=parse_iso(item["timestamp"]),
        text=clean_text(item.get("caption"), NETWORK),
        kind="post",
        url=item.get("permalink") or None,
        raw=item,
    )


def parse_comment(
    item: dict[str, Any], *, parent_id: str | None, source_id: str, key: str, url: str | None = None
) -> NormalizedPost | Reject:
    """One comment or reply → NormalizedPost or ``(item, reason)``."""
    parent = parent_id or item.get("parent_id") or (item.get("media") or {}).get("id")
    if not item.get("id"):
        return item, "comment without an id"
    if not parent:
        return item, "comment without its media (parent unknown)"
    if not item.get("timestamp"):
        return item, "comment without timestamp"
    try:
        published = parse_iso(item["timestamp"])
    except ValueError as exc:
        return item, f"invalid timestamp: {exc}"
    author = (item.get("from") or {}).get("id") or (item.get("user") or {}).get("id") or item.get("username")
    return NormalizedPost(
        network=NETWORK,
        external_id=str(item["id"]),
        source_id=source_id,
        author_pseudonym=pseudonymize(NETWORK, None if author is None else str(author), key),
        published_at=published,
        text=clean_text(item.get("text"), NETWORK),
        kind="comment",
        parent_external_id=str(parent),
        url=url,
        raw=item,
    )


def parse_comments(
    items: list[Any], *, parent_id: str | None, source_id: str, key: str, url: str | None = None
) -> tuple[list[NormalizedPost], list[Reject]]:
    """Comments with their nested ``replies`` (a reply's parent is its comment)."""
    posts: list[NormalizedPost] = []
    rejects: list[Reject] = []
    for item in items:
        if not isinstance(item, dict):
            rejects.append((item, "not an object"))
            continue
        result = parse_comment(item, parent_id=parent_id, source_id=source_id, key=key, url=url)
        if isinstance(result, NormalizedPost):
            posts.append(result)
        else:
            rejects.append(result)
        replies = (item.get("replies") or {}).get("data") or []
        if replies and item.get("id"):
            sub, bad = parse_comments(
                replies, parent_id=str(item["id"]), source_id=source_id, key=key, url=url
            )
            posts.extend(sub)
            rejects.extend(bad)
    return posts, rejects


def parse_response(
    endpoint: str, params: Mapping[str, Any], data: Any, *, source_id: str, key: str, url: str | None = None
) -> tuple[list[NormalizedPost], list[Reject]]:
    """Parse an answer of ``endpoint`` (``{user}/media``, ``{media}/comments``, ``{comment}/replies``,
    a single media/comment object, or ``business_discovery``); hashtag ids and user fields hold no posts."""
    if not isinstance(data, Mapping):
        return [], [(data, "not an object")]
    if "business_discovery" in data:
        discovery = data["business_discovery"] or {}
        media = (discovery.get("media") or {}).get("data") or []
        return _media_list(media, source_id=source_id, key=key, owner=discovery.get("id"))
    parts = endpoint.strip("/").split("/")
    edge = parts[-1] if len(parts) >= 2 else ""
    if edge in ("comments", "replies"):
        return parse_comments(
            data.get("data") or [], parent_id=parts[-2], source_id=source_id, key=key, url=url
        )
    if isinstance(data.get("data"), list):
        items = data["data"]
        if edge == "media" or any(
            isinstance(i, dict) and ("caption" in i or "media_type" in i) for i in items
        ):
            return _media_list(items, source_id=source_id, key=key)
        if items and all(isinstance(i, dict) and "timestamp" in i and "text" in i for i in items):
            return parse_comments(items, parent_id=None, source_id=source_id, key=key, url=url)
        return [], []  # e.g. ig_hashtag_search: [{id, name}]
    if "text" in data and "timestamp" in data:
        return parse_comments([dict(data)], parent_id=None, source_id=source_id, key=key, url=url)
    if "timestamp" in data and ("caption" in data or "media_type" in data):
        return _media_list([dict(data)], source_id=source_id, key=key)
    return [], []  # user fields and other non-post objects


def _media_list(
    items: list[Any], *, source_id: str, key: str, owner: str | None = None
) -> tuple[list[NormalizedPost], list[Reject]]:
    posts: list[NormalizedPost] = []
    rejects: list[Reject] = []
    for item in items:
        if not isinstance(item, dict):
            rejects.append((item, "not an object"))
            continue
        try:
            posts.append(parse_media(item, source_id=source_id, key=key, owner=owner))
        except (KeyError, ValueError, TypeError) as exc:
            rejects.append((item, f"unusable media: missing or invalid {exc}"))
    return posts, rejects


class Client(graph.GraphClient):
    """Instagram account media and comments of one window."""

    network = NETWORK

    def parse(
        self, source: Source, path: str, params: Mapping[str, Any], data: Any, url: str | None
    ) -> tuple[list[NormalizedPost], list[Reject]]:
        return parse_response(path, params, data, source_id=source.id, key=self.pseudonym_key, url=url)

    def iter_pages(self, source: Source, start: datetime, end: datetime) -> Iterator[Page]:
        """Pages of the account's media in ``[start, end)``, then their comments and replies."""
        commented: list[tuple[str, str | None]] = []
        params = {"fields": MEDIA_FIELDS, "limit": PAGE_LIMIT, "since": int(start.timestamp()),
                  "until": int(end.timestamp())}  # fmt: skip
        path = f"{source.id}/media"
        for edge in self.edge(source, path, params, older_than=start):
            selected = [p for p in edge.new if in_window(p.published_at, start, end)]
            for post in selected:
                count = post.raw.get("comments_count")
                if count is None or int(count) > 0:
                    commented.append((post.external_id, post.url))
            yield self.page(source, path, edge.params, edge.data, selected, edge.rejects)
        for media_id, url in commented:
            try:
                yield from self._comments(source, f"{media_id}/comments", COMMENT_FIELDS, url)
            except SourceUnavailable as exc:  # the media was deleted since the account was read
                log.info("instagram: comments of %s unavailable: %s", media_id, exc.message)

    def _comments(self, source: Source, path: str, fields: str, url: str | None) -> Iterator[Page]:
        more_replies: list[str] = []
        for edge in self.edge(source, path, {"fields": fields, "limit": PAGE_LIMIT}, url=url):
            for item in edge.data.get("data") or []:
                if isinstance(item, dict) and graph.next_params(item.get("replies") or {}) is not None:
                    if str(item.get("id")) not in more_replies:
                        more_replies.append(str(item["id"]))
            yield self.page(source, path, edge.params, edge.data, edge.new, edge.rejects)
        for comment_id in more_replies:
            yield from self._comments(source, f"{comment_id}/replies", REPLY_FIELDS, url)

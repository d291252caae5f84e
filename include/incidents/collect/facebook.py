"""Facebook Graph API client (pages' feeds and comments).

Requests: ``GET {base}/{object}/{edge}`` (base e.g. ``https://graph.facebook.com/v19.0``) with
``access_token`` (the connection's password) as a query parameter.

* ``/{page-id}/feed``: ``fields=id,message,created_time,from,permalink_url,place,comments.summary(true).limit(0)``,
  ``since`` / ``until`` (window, epoch seconds), ``limit=100``; next pages repeat the request with
  the query of ``paging.next`` (cursor ``after`` or time-based ``until``/``__paging_token``) for as
  long as there is one (a page of duplicates is not the end), stopping early after a page whose
  oldest post is older than the window start.
* ``/{post-id}/comments`` for every post of the window with comments:
  ``fields=id,message,created_time,from,parent,permalink_url``, ``filter=stream`` (all comments and
  replies, chronological), ``order=chronological``, ``limit=100``, same paging.

A post without ``from`` is the page's own (author = the page id); ``message`` is optional. A comment
without ``id`` gets it from its ``permalink_url`` (``?comment_id=`` / ``&reply_comment_id=``); its
parent is ``parent.id`` (a reply) or the post. Errors and usage headers: see :mod:`incidents.collect.graph`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

from incidents.collect import graph
from incidents.collect.base import Page, Reject, clean_text, in_window, parse_iso
from incidents.collect.errors import SourceUnavailable
from incidents.schema import NormalizedPost, pseudonymize
from incidents.sources import Source

log = logging.getLogger(__name__)

NETWORK = "facebook"
PAGE_LIMIT = 100
POST_FIELDS = "id,message,created_time,from,permalink_url,place,comments.summary(true).limit(0)"
COMMENT_FIELDS = "id,message,created_time,from,parent,permalink_url"
_PERMALINK = re.compile(r"facebook\.com/([^/]+)/posts/(\d+)")

interpret = graph.make_interpret(NETWORK)


def _geo(item: Mapping[str, Any]) -> dict[str, float] | None:
    location = (item.get("place") or {}).get("location") or {}
    try:
        return {"lat": float(location["latitude"]), "lon": float(location["longitude"])}
    except (KeyError, TypeError, ValueError):
        return None


def parse_post(item: dict[str, Any], *, source_id: str, key: str) -> NormalizedPost:
    """One feed/post object → NormalizedPost (KeyError/ValueError/TypeError when unusable)."""
    post_id = str(item["id"])
    author = (item.get("from") or {}).get("id") or post_id.split("_", 1)[0]
    return NormalizedPost(
        network=NETWORK,
        external_id=post_id,
        source_id=source_id,
        author_pseudonym=pseudonymize(NETWORK, str(author), key),
        published_at=parse_iso(item["created_time"]),
        text=clean_text(item.get("message"), NETWORK),
        kind="post",
        url=item.get("permalink_url") or f"https://www.facebook.com/{post_id}",
        geo=_geo(item),
        raw=item,
    )


def parse_comment(
    item: dict[str, Any], *, post_id: str | None, source_id: str, key: str
) -> NormalizedPost | Reject:
    """One comment object → NormalizedPost or ``(item, reason)``."""
    permalink = item.get("permalink_url") or ""
    comment_id = item.get("id")
    parent = (item.get("parent") or {}).get("id")
    match = _PERMALINK.search(permalink)
    if match:
        query = {k: v[0] for k, v in parse_qs(urlsplit(permalink).query).items()}
        number = match.group(2)
        top, reply = query.get("comment_id"), query.get("reply_comment_id")
        if not comment_id and (reply or top):
            comment_id = f"{number}_{reply or top}"
        if not parent and reply and top:
            parent = f"{number}_{top}"
        if post_id is None:
            post_id = f"{match.group(1)}_{number}"
    if not comment_id:
        return item, "comment without an id (none in the item or its permalink)"
    if post_id is None:
        return item, "comment without its post (post id unknown)"
    if not item.get("created_time"):
        return item, "comment without created_time"
    try:
        published = parse_iso(item["created_time"])
    except ValueError as exc:
        return item, f"invalid created_time: {exc}"
    return NormalizedPost(
        network=NETWORK,
        external_id=str(comment_id),
        source_id=source_id,
        author_pseudonym=pseudonymize(NETWORK, (item.get("from") or {}).get("id"), key),
        published_at=published,
        text=clean_text(item.get("message"), NETWORK),
        kind="comment",
        parent_external_id=str(parent) if parent else str(post_id),
        url=permalink or f"https://www.facebook.com/{comment_id}",
        raw=item,
    )


def _is_comment(item: Mapping[str, Any]) -> bool:
    return "comment_id=" in str(item.get("permalink_url") or "") or "parent" in item


def parse_response(
    endpoint: str, params: Mapping[str, Any], data: Any, *, source_id: str, key: str
) -> tuple[list[NormalizedPost], list[Reject]]:
    """Parse an answer of ``endpoint`` (``{page}/feed``, ``{post}/comments``, ``?ids=`` lookups or one object)."""
    if isinstance(data, Mapping) and isinstance(data.get("data"), list):
        items = data["data"]
    elif isinstance(data, Mapping) and "id" in data:
        items = [data]
    elif isinstance(data, Mapping) and data and all(isinstance(v, Mapping) for v in data.values()):
        items = list(data.values())  # GET /?ids=a,b: objects keyed by id
    else:
        items = []
    comments_of = endpoint.split("/")[-2] if endpoint.endswith("/comments") else None
    posts: list[NormalizedPost] = []
    rejects: list[Reject] = []
    for item in items:
        if not isinstance(item, dict):
            rejects.append((item, "not an object"))
            continue
        if comments_of is not None or _is_comment(item):
            result = parse_comment(item, post_id=comments_of, source_id=source_id, key=key)
            if isinstance(result, NormalizedPost):
                posts.append(result)
            else:
                rejects.append(result)
            continue
        try:
            posts.append(parse_post(item, source_id=source_id, key=key))
        except (KeyError, ValueError, TypeError) as exc:
            rejects.append((item, f"unusable post: missing or invalid {exc}"))
    return posts, rejects


class Client(graph.GraphClient):
    """Facebook page feed and comments of one window."""

    network = NETWORK

    def parse(
        self, source: Source, path: str, params: Mapping[str, Any], data: Any, url: str | None
    ) -> tuple[list[NormalizedPost], list[Reject]]:
        return parse_response(path, params, data, source_id=source.id, key=self.pseudonym_key)

    def iter_pages(self, source: Source, start: datetime, end: datetime) -> Iterator[Page]:
        """Pages of the page's feed in ``[start, end)``, then the comments of those posts."""
        commented: list[str] = []
        params = {
            "fields": POST_FIELDS,
            "since": int(start.timestamp()),
            "until": int(end.timestamp()),
            "limit": PAGE_LIMIT,
        }
        path = f"{source.id}/feed"
        for edge in self.edge(source, path, params, older_than=start):
            selected = [p for p in edge.new if in_window(p.published_at, start, end)]
            for post in selected:
                total = ((post.raw.get("comments") or {}).get("summary") or {}).get("total_count")
                if total is None or int(total) > 0:
                    commented.append(post.external_id)
            yield self.page(source, path, edge.params, edge.data, selected, edge.rejects)
        for post_id in commented:
            params = {
                "fields": COMMENT_FIELDS,
                "filter": "stream",
                "order": "chronological",
                "limit": PAGE_LIMIT,
            }
            path = f"{post_id}/comments"
            try:
                for edge in self.edge(source, path, params):
                    yield self.page(source, path, edge.params, edge.data, edge.new, edge.rejects)
            except SourceUnavailable as exc:  # the post was deleted since the feed was read
                log.info("facebook: comments of %s unavailable: %s", post_id, exc.message)

"""VK API client (API version 5.199).

Requests: ``POST {base}/{method}`` (base e.g. ``https://api.vk.com/method``), form-encoded, with
``access_token`` (the connection's password) and ``v`` (extra ``api_version``, default 5.199).

* ``wall.get``: ``owner_id`` (Source.id, negative for communities), ``count=100``, ``offset``,
  ``extended=0``. Posts come newest first (a pinned post, ``is_pinned=1``, may come first out of
  order); paging goes on while ``offset`` < ``count`` and stops early at the first page whose
  oldest unpinned post is older than the window start. The offset advances by the number of items
  not seen before, so a page that repeats items never skips any; a page of duplicates is not the
  end (see :mod:`incidents.collect.paging`: a page that cannot advance the offset is asked for
  again, then the window fails as incomplete).
* ``newsfeed.search`` (sources with a ``query``): ``q``, ``count=200``, ``start_time`` (window start,
  epoch s), ``end_time`` (window end - 1 s; VK's end is inclusive), ``extended=0``,
  ``start_from`` = the previous answer's ``next_from`` while there is one.
* ``wall.getComments`` for every post of the window with comments: ``owner_id``, ``post_id``,
  ``count=100``, ``offset``, ``sort=asc``, ``need_likes=0``, ``extended=0``,
  ``thread_items_count=10``; threads with more replies than inlined are read with
  ``comment_id=<thread root>`` (same paging, no ``thread_items_count``); offset paging up to
  ``current_level_count``.

Errors arrive inside HTTP 200 as ``{"error": {"error_code", "error_msg"}}``, mapped by
:data:`ERRORS`: 1/10 transient, 6/9 rate limited (retried after backoff), 29 daily limit, 5 token
refused, 7/15/30/203 a missing permission (the task fails naming the connection), 18/19 and a
15 "blocked"/"wall is disabled" the source is gone (skipped and recorded), 14/17/24 need a person (captcha,
validation). Deleted comments (``deleted: true``) are rejected with a reason.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

from incidents.collect.base import BaseClient, Page, Reject, clean_text, decode_json, from_epoch, in_window
from incidents.collect.errors import (
    ApiError,
    ErrorTable,
    MalformedResponse,
    RateLimited,
    SourceUnavailable,
    TransientError,
)
from incidents.collect.http import parse_retry_after
from incidents.collect.paging import CursorPaging, OffsetPaging
from incidents.schema import NormalizedPost, pseudonymize
from incidents.sources import Source

log = logging.getLogger(__name__)

NETWORK = "vk"
API_VERSION = "5.199"
WALL_PAGE = 100
SEARCH_PAGE = 200
COMMENTS_PAGE = 100
THREAD_ITEMS = 10

ERRORS = ErrorTable(
    NETWORK,
    transient={1, 10},
    rate={6, 9},
    daily={29},
    auth={5},
    permissions={
        7: "the token's access rights (scope 'wall' of a user or service token)",
        15: "access to this wall (the token's account must be able to read the community or profile)",
        30: "access to this private profile",
        203: "access to this community (the token's account must be a member)",
    },
    gone={18, 19},
    gone_if=("blocked", "deleted", "banned", "wall is disabled"),
    manual={14, 17, 24},
)
"""VK error codes: 1/10 transient, 6/9 rate limited, 29 daily limit, 5 token refused; 7 (no
permission), 15 (access denied), 30 (private profile), 203 (closed community) a missing permission,
except a 15 whose message says the community is blocked/deleted or its wall disabled; 18 (deleted or banned) and 19
(content blocked) a gone source; 14 captcha, 17 validation, 24 confirmation need a person."""


def error_for(code: Any, message: str) -> ApiError:
    """The typed error of a VK ``error_code``."""
    return ERRORS.error(code, message)


def interpret(status: int, headers: Mapping[str, str], body: bytes | str | dict[str, Any]) -> Any:
    """Map one HTTP answer to the ``response`` value or raise the typed error."""
    if status == 429:
        raise RateLimited(
            NETWORK, 429, "HTTP 429 Too Many Requests", parse_retry_after(headers.get("Retry-After"), 0)
        )
    if status >= 500:
        raise TransientError(NETWORK, status, f"HTTP {status}")
    data = decode_json(NETWORK, body)
    if not isinstance(data, dict):
        raise MalformedResponse(NETWORK, "malformed", f"expected a JSON object, got {type(data).__name__}")
    error = data.get("error")
    if isinstance(error, dict):
        raise error_for(error.get("error_code"), str(error.get("error_msg", "")))
    if data.get("response") is None and data.get("execute_errors"):
        errors = data["execute_errors"]
        main = next((e for e in errors if e.get("method") == "execute"), errors[-1])
        raise error_for(main.get("error_code"), f"execute: {main.get('error_msg', '')}")
    if status != 200:
        raise ApiError(NETWORK, status, f"HTTP {status}")
    if "response" not in data:
        raise MalformedResponse(NETWORK, "malformed", "no 'response' in the answer")
    return data["response"]


def _items(response: Any) -> list[Any]:
    if isinstance(response, list):  # wall.getById without extended: a bare array
        return response
    if isinstance(response, dict):
        items = response.get("items")
        if isinstance(items, list):
            return items
    raise MalformedResponse(NETWORK, "malformed", "no 'items' list in the response")


def _geo(item: dict[str, Any]) -> dict[str, float] | None:
    geo = item.get("geo")
    if not isinstance(geo, dict):
        return None
    coords = geo.get("coordinates")
    try:
        if isinstance(coords, str):
            lat, lon = (float(x) for x in coords.split()[:2])
        elif isinstance(coords, dict):
            lat, lon = float(coords["latitude"]), float(coords["longitude"])
        else:
            return None
    except (ValueError, KeyError, TypeError):
        return None
    return {"lat": lat, "lon": lon}


def post_external_id(owner_id: Any, post_id: Any) -> str:
    return f"{int(owner_id)}_{int(post_id)}"


def comment_external_id(owner_id: Any, post_id: Any, comment_id: Any) -> str:
    return f"{int(owner_id)}_{int(post_id)}_{int(comment_id)}"


def parse_post(item: dict[str, Any], *, source_id: str, key: str, owner_id: Any = None) -> NormalizedPost:
    """One wall/newsfeed item → NormalizedPost (KeyError/ValueError/TypeError when unusable)."""
    owner = item.get("owner_id", item.get("source_id", owner_id))
    if owner is None:
        raise KeyError("owner_id")
    text_parts = [item.get("text") or ""]
    geo = _geo(item)
    for copy in item.get("copy_history") or []:
        text_parts.append(copy.get("text") or "")
        geo = geo or _geo(copy)
    author = item.get("signer_id") or item.get("from_id") or owner
    ext = post_external_id(owner, item["id"])
    return NormalizedPost(
        network=NETWORK,
        external_id=ext,
        source_id=source_id,
        author_pseudonym=pseudonymize(NETWORK, str(author), key),
        published_at=from_epoch(item["date"]),
        text=clean_text("\n".join(p for p in text_parts if p), NETWORK),
        kind="post",
        url=f"https://vk.com/wall{ext}",
        geo=geo,
        raw=item,
    )


def parse_posts(
    response: Any, *, source_id: str, key: str, owner_id: Any = None
) -> tuple[list[Any], list[Reject]]:
    """Posts of a ``wall.get``/``wall.getById``/``newsfeed.search`` response."""
    posts: list[NormalizedPost] = []
    rejects: list[Reject] = []
    for item in _items(response):
        if not isinstance(item, dict):
            rejects.append((item, "not an object"))
            continue
        try:
            posts.append(parse_post(item, source_id=source_id, key=key, owner_id=owner_id))
        except (KeyError, ValueError, TypeError) as exc:
            rejects.append((item, f"unusable post: missing or invalid {exc}"))
    return posts, rejects


def parse_comment(
    item: dict[str, Any],
    *,
    source_id: str,
    key: str,
    owner_id: Any = None,
    post_id: Any = None,
    thread_root: Any = None,
) -> NormalizedPost | Reject:
    """One comment → NormalizedPost, or ``(item, reason)`` when it cannot be used."""
    if item.get("deleted"):
        return item, "deleted comment"
    owner = item.get("owner_id", owner_id)
    post = item.get("post_id", post_id)
    if owner is None or post is None:
        return item, "comment without its post (owner_id/post_id unknown)"
    try:
        comment_id = int(item["id"])
        published = from_epoch(item["date"])
        owner, post = int(owner), int(post)
    except (KeyError, ValueError, TypeError) as exc:
        return item, f"unusable comment: missing or invalid {exc}"
    reply_to = item.get("reply_to_comment")
    stack = item.get("parents_stack") or []
    if reply_to:
        parent = comment_external_id(owner, post, reply_to)
    elif stack:
        parent = comment_external_id(owner, post, stack[-1])
    elif thread_root is not None:
        parent = comment_external_id(owner, post, thread_root)
    else:
        parent = post_external_id(owner, post)
    return NormalizedPost(
        network=NETWORK,
        external_id=comment_external_id(owner, post, comment_id),
        source_id=source_id,
        author_pseudonym=pseudonymize(
            NETWORK, None if item.get("from_id") is None else str(item["from_id"]), key
        ),
        published_at=published,
        text=clean_text(item.get("text"), NETWORK),
        kind="comment",
        parent_external_id=parent,
        url=f"https://vk.com/wall{owner}_{post}?reply={comment_id}",
        geo=None,
        raw=item,
    )


def parse_comments(
    response: Any,
    *,
    source_id: str,
    key: str,
    owner_id: Any = None,
    post_id: Any = None,
    thread_root: Any = None,
) -> tuple[list[NormalizedPost], list[Reject]]:
    """Comments of a ``wall.getComments``/``wall.getComment`` response, inline thread replies included."""
    posts: list[NormalizedPost] = []
    rejects: list[Reject] = []
    for item in _items(response):
        if not isinstance(item, dict):
            rejects.append((item, "not an object"))
            continue
        for entry, root in [(item, thread_root)] + [
            (reply, item.get("id")) for reply in ((item.get("thread") or {}).get("items") or [])
        ]:
            result = parse_comment(
                entry, source_id=source_id, key=key, owner_id=owner_id, post_id=post_id, thread_root=root
            )
            if isinstance(result, NormalizedPost):
                posts.append(result)
            else:
                rejects.append(result)
    return posts, rejects


def parse_response(
    endpoint: str, params: Mapping[str, Any], response: Any, *, source_id: str, key: str
) -> tuple[list[NormalizedPost], list[Reject]]:
    """Parse the ``response`` of ``endpoint`` called with ``params`` (the client's and the fixtures' path)."""
    if endpoint in ("wall.getComments", "wall.getComment"):
        return parse_comments(
            response,
            source_id=source_id,
            key=key,
            owner_id=params.get("owner_id"),
            post_id=params.get("post_id"),
            thread_root=params.get("comment_id"),
        )
    if endpoint in ("wall.get", "wall.getById", "newsfeed.search"):
        return parse_posts(response, source_id=source_id, key=key, owner_id=params.get("owner_id"))
    if endpoint == "groups.search":
        return [], []
    raise ValueError(f"vk: no parser for endpoint {endpoint!r}")


class Client(BaseClient):
    """VK wall, newsfeed search and comments of one window."""

    network = NETWORK

    @property
    def version(self) -> str:
        return str(self.extra.get("api_version") or API_VERSION)

    def call(self, method: str, params: dict[str, Any]) -> Any:
        data = {**params, "v": self.version, "access_token": self.token}
        return self.request("POST", f"{self.base_url}/{method}", data=data, interpret=interpret)

    def _page(
        self,
        source: Source,
        method: str,
        params: dict[str, Any],
        response: Any,
        posts: list[NormalizedPost],
        rejects: list[Reject],
    ) -> Page:
        return self.page(source, method, {**params, "v": self.version}, response, posts, rejects)

    def iter_pages(self, source: Source, start: datetime, end: datetime) -> Iterator[Page]:
        """Pages of the source's posts in ``[start, end)``, then the comments of those posts."""
        window_posts: list[tuple[int, int]] = []
        if source.query:
            pages = self._search(source, start, end, window_posts)
        else:
            pages = self._wall(source, start, end, window_posts)
        yield from pages
        for owner, post_id in window_posts:
            yield from self._comments(source, owner, post_id)

    def _wall(
        self, source: Source, start: datetime, end: datetime, window_posts: list[Any]
    ) -> Iterator[Page]:
        paging, seen = OffsetPaging(NETWORK, f"wall.get of {source.id}"), set[Any]()
        while True:
            params = {"owner_id": source.id, "count": WALL_PAGE, "offset": paging.offset, "extended": 0}
            response = self.call("wall.get", params)
            posts, rejects = parse_posts(
                response, source_id=source.id, key=self.pseudonym_key, owner_id=source.id
            )
            items = _items(response)
            new = [p for p in posts if p.external_id not in seen]
            keys = [_item_key(i, source.id) for i in items]
            fresh = len({k for k in keys if k not in seen})
            seen.update(keys)
            seen.update(p.external_id for p in posts)
            selected = [p for p in new if in_window(p.published_at, start, end)]
            window_posts.extend(_commented(selected))
            yield self._page(source, "wall.get", params, response, selected, rejects)
            unpinned = [p.published_at for p in posts if not p.raw.get("is_pinned")]
            if unpinned and min(unpinned) < start:
                break  # newest first: the rest of the wall is older than the window
            total = response.get("count") if isinstance(response, dict) else None
            if not paging.advance(returned=len(items), fresh=fresh, total=total):
                break

    def _search(
        self, source: Source, start: datetime, end: datetime, window_posts: list[Any]
    ) -> Iterator[Page]:
        paging, seen = CursorPaging(NETWORK, f"newsfeed.search {source.query!r}"), set[Any]()
        end_time = max(int(start.timestamp()), int(end.timestamp()) - 1)
        while True:
            params: dict[str, Any] = {
                "q": source.query,
                "count": SEARCH_PAGE,
                "start_time": int(start.timestamp()),
                "end_time": end_time,
                "extended": 0,
            }
            if paging.cursor:
                params["start_from"] = paging.cursor
            response = self.call("newsfeed.search", params)
            posts, rejects = parse_posts(response, source_id=source.id, key=self.pseudonym_key)
            new = [p for p in posts if p.external_id not in seen]
            seen.update(p.external_id for p in posts)
            selected = [p for p in new if in_window(p.published_at, start, end)]
            window_posts.extend(_commented(selected))
            yield self._page(source, "newsfeed.search", params, response, selected, rejects)
            next_from = response.get("next_from") if isinstance(response, dict) else None
            if not paging.advance(more=bool(next_from), next_cursor=next_from, fresh=len(new)):
                break

    def _comments(self, source: Source, owner: int, post_id: int) -> Iterator[Page]:
        threads: list[int] = []
        yield from self._comment_level(source, owner, post_id, None, threads)
        for root in threads:
            yield from self._comment_level(source, owner, post_id, root, [])

    def _comment_level(
        self, source: Source, owner: int, post_id: int, root: int | None, threads: list[int]
    ) -> Iterator[Page]:
        what = f"wall.getComments of {owner}_{post_id}" + (f" thread {root}" if root is not None else "")
        paging, seen = OffsetPaging(NETWORK, what), set[Any]()
        while True:
            params: dict[str, Any] = {
                "owner_id": owner,
                "post_id": post_id,
                "count": COMMENTS_PAGE,
                "offset": paging.offset,
                "sort": "asc",
                "need_likes": 0,
                "extended": 0,
            }
            if root is None:
                params["thread_items_count"] = THREAD_ITEMS
            else:
                params["comment_id"] = root
            try:
                response = self.call("wall.getComments", params)
            except SourceUnavailable as exc:  # the post was deleted or blocked since the wall was read
                log.info("vk: comments of %s_%s unavailable: %s", owner, post_id, exc.message)
                return
            items = _items(response)
            fresh = [i for i in items if isinstance(i, dict) and i.get("id") not in seen]
            seen.update(i.get("id") for i in items if isinstance(i, dict))
            posts, rejects = parse_comments(
                {"items": fresh}, source_id=source.id, key=self.pseudonym_key, owner_id=owner, post_id=post_id,
                thread_root=root,
            )  # fmt: skip
            for item in fresh:
                thread = item.get("thread") or {}
                if root is None and int(thread.get("count") or 0) > len(thread.get("items") or []):
                    threads.append(int(item["id"]))
            yield self._page(source, "wall.getComments", params, response, posts, rejects)
            total = (
                response.get("current_level_count", response.get("count"))
                if isinstance(response, dict)
                else None
            )
            if not paging.advance(returned=len(items), fresh=len(fresh), total=total):
                break


def _item_key(item: Any, owner_id: str) -> str:
    """The external id of a raw wall item (its position key when it has no usable id)."""
    if isinstance(item, dict):
        try:
            return post_external_id(item.get("owner_id", owner_id), item["id"])
        except (KeyError, TypeError, ValueError):
            pass
    return f"raw:{item!r}"[:200]


def _commented(posts: list[NormalizedPost]) -> list[tuple[int, int]]:
    """(owner_id, post_id) of posts that may have comments."""
    out = []
    for post in posts:
        count = (post.raw.get("comments") or {}).get("count")
        if count is None or int(count) > 0:
            owner, _, number = post.external_id.rpartition("_")
            out.append((int(owner), int(number)))
    return out

"""VK API emulator: ``wall.get``, ``wall.getComments``, ``newsfeed.search`` (GET or POST form).

Errors arrive inside HTTP 200 as ``{"error": {"error_code", "error_msg", "request_params"}}``.
Offset paging: a page hit by ``duplicate_items`` starts 2 or more items before the requested
offset (as when new posts arrive on top of the wall while it is paged), repeating items already
served, a ``truncated_page`` has fewer items than asked; together they can make a page of nothing
but repeats while the wall goes on: a client advances the offset by the items it has not seen
before and stops at ``count``.

A token lacking a permission (``FaultConfig.permission_errors``) gets 7 "Permission to perform
this action is denied", 15 "Access denied: no access to call this method", 27/28 (group or
service token where a user token is needed) or 30 "This profile is private" on every request.
A gone wall (``FaultConfig.gone_sources``) answers as VK does: a banned community 15 "Access
denied: group is blocked", a deleted one 15 "Access denied: group is deleted", a closed one
15 "Access denied: this wall available only for community members"; a deleted or banned user 18
"User was deleted or banned", a private profile 30 "This profile is private".
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from incidents_dev.sandbox.core import ApiError, Emulator, int_param, parse_time, roots, stable
from incidents_dev.sandbox.generator import SandboxItem

PERMISSION_MESSAGES = {
    7: "Permission to perform this action is denied",
    15: "Access denied: no access to call this method",
    27: "Group authorization failed: method is unavailable with group auth.",
    28: "Application authorization failed: method is unavailable with service token.",
    30: "This profile is private",
}
GONE_GROUP = {
    "deleted": (15, "Access denied: group is deleted"),
    "banned": (15, "Access denied: group is blocked"),
    "private": (15, "Access denied: this wall available only for community members"),
}
GONE_USER = {
    "deleted": (18, "User was deleted or banned"),
    "banned": (18, "User was deleted or banned"),
    "private": (30, "This profile is private"),
}


class VkEmulator(Emulator):
    network = "vk"

    def handle(self, path: str, params: dict[str, str], headers: dict[str, str]) -> Any:
        method = path.rsplit("/", 1)[-1]
        request_params = [{"key": "method", "value": method}, {"key": "oauth", "value": "1"}] + [
            {"key": k, "value": v}
            for k, v in params.items()
            if k != "access_token" and not k.startswith("__")
        ]

        def error(code: int, msg: str) -> ApiError:
            return ApiError(
                200, {"error": {"error_code": code, "error_msg": msg, "request_params": request_params}}
            )

        def rate(_remaining: int, _reset: float, injected: bool) -> ApiError:
            codes = ((6, "Too many requests per second"), (9, "Flood control: too much of the same action"))
            code, msg = self.server.next_rate_code(codes) if injected else codes[0]
            return error(code, msg)

        def server() -> ApiError:
            return ApiError(503, b"<html><body><h1>503 Service Temporarily Unavailable</h1></body></html>",
                            {"Content-Type": "text/html"})  # fmt: skip

        self.preflight(
            params.get("access_token", ""),
            {
                "auth": lambda: error(5, "User authorization failed: invalid access_token (4)."),
                "permission": lambda code: error(code, PERMISSION_MESSAGES[code]),
                "rate": rate,
                "daily": lambda: error(29, "Rate limit reached"),
                "server": server,
                "ok_headers": lambda *_: None,
            },
            headers,
        )
        try:
            if method == "wall.get":
                return {"response": self._wall_get(params, error)}
            if method == "wall.getComments":
                return {"response": self._get_comments(params, error)}
            if method == "newsfeed.search":
                return {"response": self._search(params)}
        except ValueError as exc:
            raise error(100, f"One of the parameters specified was missing or invalid: {exc}") from exc
        raise error(3, "Unknown method passed")

    def _check_gone(self, owner: str, error: Any) -> None:
        state = self.gone(owner)
        if state is not None:
            code, message = (GONE_GROUP if str(owner).startswith("-") else GONE_USER)[state]
            raise error(code, message)

    def post(self, post: SandboxItem) -> dict[str, Any]:
        comments = self.stream.comments(post)
        item: dict[str, Any] = {
            "id": int(post.native_id),
            "from_id": int(post.author_id),
            "owner_id": int(post.owner_id),
            "date": int(post.published_at.timestamp()),
            "marked_as_ads": 1 if post.genre == "ad" and post.author_id == post.owner_id else 0,
            "post_type": "post",
            "text": post.text,
            "post_source": {"type": "vk"},
            "comments": {"count": len(comments), "can_post": 1, "groups_can_post": True},
            "likes": {
                "count": stable(post.native_id) % 40,
                "user_likes": 0,
                "can_like": 1,
                "can_publish": 1,
            },
            "reposts": {"count": stable(post.native_id, "r") % 7, "user_reposted": 0},
            "views": {"count": 50 + stable(post.native_id, "v") % 3000},
            "is_favorite": False,
        }
        if post.author_id != post.owner_id and post.owner_id.startswith("-"):
            item["from_id"] = int(post.owner_id)
            item["signer_id"] = int(post.author_id)
        if post.geo:
            item["geo"] = {"type": "point", "coordinates": f"{post.geo['lat']} {post.geo['lon']}"}
        return item

    def _wall_get(self, params: dict[str, str], error: Any) -> dict[str, Any]:
        owner = params.get("owner_id") or params.get("domain")
        if not owner:
            raise ValueError("owner_id is undefined")
        self._check_gone(str(owner), error)
        index = self.stream.source("vk", owner)
        if index is None or self.config.sources[index].query:
            raise (
                error(15, "Access denied: wall is disabled")
                if str(owner).startswith("-")
                else error(30, "This profile is private")
            )
        count = int_param(params, "count", 20, 0, 100)
        offset = int_param(params, "offset", 0, 0, 10**9)
        start = offset - self.faults.overlap("vk", min(offset, count))
        posts = self.stream.wall_offset(index, start, count + (offset - start))
        if len(posts) > 1 and self.faults.page_fault("vk", "truncated_page"):
            posts = posts[: max(1, len(posts) // 2)]
        result: dict[str, Any] = {
            "count": self.stream.wall_total(index),
            "items": [self.post(p) for p in posts],
        }
        if params.get("extended") in ("1", "true"):
            result.update(self._profiles(posts))
        return result

    def _profiles(self, items: list[SandboxItem]) -> dict[str, Any]:
        profiles, groups = {}, {}
        for item in items:
            if item.deleted:
                continue
            if item.author_id.startswith("-"):
                source = self.config.sources[self.stream.source("vk", item.author_id) or 0]
                groups[item.author_id] = {"id": -int(item.author_id), "name": source.name, "screen_name": f"club{item.author_id[1:]}",
                                          "is_closed": 0, "type": "page"}  # fmt: skip
            else:
                first, _, last = item.author_name.partition(" ")
                profiles[item.author_id] = {"id": int(item.author_id), "first_name": first, "last_name": last,
                                            "is_closed": False, "can_access_closed": True}  # fmt: skip
        return {"profiles": list(profiles.values()), "groups": list(groups.values())}

    def _comment(
        self, c: SandboxItem, post: SandboxItem, tops: dict[str, str | None], need_likes: bool
    ) -> dict[str, Any]:
        root = tops.get(c.native_id)
        item: dict[str, Any] = {"id": int(c.native_id), "parents_stack": [int(root)] if root else [],
                                "date": int(c.published_at.timestamp())}  # fmt: skip
        if c.deleted:
            item["deleted"] = True
            return item
        item.update({"from_id": int(c.author_id), "post_id": int(post.native_id), "owner_id": int(post.owner_id),
                     "text": c.text})  # fmt: skip
        if c.reply_to_native_id:
            item["reply_to_comment"] = int(c.reply_to_native_id)
        if need_likes:
            item["likes"] = {"count": stable(c.native_id) % 9, "user_likes": 0, "can_like": 1}
        return item

    def _get_comments(self, params: dict[str, str], error: Any) -> dict[str, Any]:
        owner, post_id = params.get("owner_id"), params.get("post_id")
        if not owner or not post_id:
            raise ValueError("owner_id and post_id are required")
        self._check_gone(str(owner), error)
        post = self.stream.find_post("vk", post_id, owner)
        if post is None:
            raise error(15, "Access denied: post was not found")
        comments = self.with_deletions(self.stream.comments(post))
        tops = roots(comments)
        count = int_param(params, "count", 10, 0, 100)
        offset = int_param(params, "offset", 0, 0, 10**9)
        threads = int_param(params, "thread_items_count", 0, 0, 10)
        need_likes = params.get("need_likes") in ("1", "true")
        comment_id = params.get("comment_id")
        if comment_id:
            level = [c for c in comments if tops[c.native_id] == comment_id]
        else:
            level = [c for c in comments if tops[c.native_id] is None]
        if params.get("sort") == "desc":
            level = level[::-1]
        page = level[offset : offset + count]
        if len(page) > 1 and self.faults.page_fault("vk", "truncated_page"):
            page = page[: len(page) // 2]
        items = []
        for c in page:
            item = self._comment(c, post, tops, need_likes)
            replies = [r for r in comments if tops[r.native_id] == c.native_id] if not comment_id else []
            if not comment_id:
                item["thread"] = {
                    "count": len(replies),
                    "items": [self._comment(r, post, tops, need_likes) for r in replies[:threads]],
                    "can_post": True,
                    "show_reply_button": True,
                    "groups_can_post": True,
                }
            items.append(item)
        result: dict[str, Any] = {"count": len(level), "items": items, "current_level_count": len(level),
                                  "can_post": True, "show_reply_button": True, "groups_can_post": True}  # fmt: skip
        if params.get("extended") in ("1", "true"):
            result.update(self._profiles(page))
        return result

    def _search(self, params: dict[str, str]) -> dict[str, Any]:
        query = params.get("q", "")
        count = int_param(params, "count", 30, 0, 200)
        since = parse_time(params.get("start_time"))
        until = parse_time(params.get("end_time"))
        if until is not None:
            until = until + timedelta(seconds=1)  # end_time is inclusive in VK
        after = None
        if params.get("start_from"):
            try:
                after = tuple(int(x) for x in params["start_from"].split("/")[0].split(":"))
            except ValueError as exc:
                raise ValueError("start_from") from exc
        pages = []
        for index in self.stream.search_sources("vk", query):
            for cursor, item in self.stream.desc(index, since, until, after):
                pages.append((cursor, item))
                if len(pages) > count:
                    break
        pages.sort(key=lambda p: p[0], reverse=True)
        page, more = pages[:count], len(pages) > count
        if len(page) > 1 and self.faults.page_fault("vk", "truncated_page"):
            page, more = page[: len(page) // 2], True
        result: dict[str, Any] = {"items": [self.post(i) for _, i in page], "count": len(page),
                                  "total_count": len(page) + (1000 if more else 0)}  # fmt: skip
        if more and page:
            hour, pos = page[-1 - self.faults.overlap("vk", len(page) - 1)][0]
            last = page[-1][1]
            result["next_from"] = f"{hour}:{pos}/{last.owner_id}_{last.native_id}"
        if params.get("extended") in ("1", "true"):
            result.update(self._profiles([i for _, i in page]))
        return result

"""Odnoklassniki API emulator at ``{base}`` (``/ok/fb.do``): ``method`` = ``mediatopic.getTopics``
(a group's feed, anchor paging), ``discussions.get``, ``discussions.getComments``.

The request signature is checked (error 104). Dates ``YYYY-MM-DD HH:MM:SS`` are Moscow time
(UTC+3 since October 2014; the world starts later), as ok.ru gives them; ``created_ms``/``date_ms``
carry the exact instant. Errors are HTTP 200 bodies ``{"error_code", "error_msg", "error_data"}``.

A token lacking a permission (``FaultConfig.permission_errors``) gets 10 ``PERMISSION_DENIED``; a
gone group (``FaultConfig.gone_sources``): deleted 300 ``NOT_FOUND``, banned or closed 160
``GROUP_RESTRICTION``.
"""

from __future__ import annotations

import hashlib
from typing import Any

from incidents_dev.sandbox.core import ApiError, Emulator, b64, int_param, ok_time, parse_time, stable, unb64
from incidents_dev.sandbox.generator import SandboxItem

DEFAULT_OK_APP_KEY = "CBAKSANDBOXAAAAA"
DEFAULT_OK_SECRET = "sandbox-ok-secret-key"
GONE = {
    "deleted": (300, "NOT_FOUND : Group {gid} not found"),
    "banned": (160, "GROUP_RESTRICTION : Group {gid} is blocked"),
    "private": (160, "GROUP_RESTRICTION : Group {gid} is closed"),
}


def ok_signature(params: dict[str, str], access_token: str, secret_key: str) -> str:
    """ok.ru request signature: md5 of the sorted ``k=v`` pairs (without ``sig`` and
    ``access_token``) followed by md5(access_token + application secret key)."""
    session_secret = hashlib.md5((access_token + secret_key).encode()).hexdigest()
    pairs = "".join(f"{k}={v}" for k, v in sorted(params.items()) if k not in ("sig", "access_token"))
    return hashlib.md5((pairs + session_secret).encode()).hexdigest()


class OkEmulator(Emulator):
    network = "ok"

    def handle(self, path: str, params: dict[str, str], headers: dict[str, str]) -> Any:
        def error(code: int, msg: str) -> ApiError:
            return ApiError(200, {"error_code": code, "error_msg": msg, "error_data": None})

        def server() -> ApiError:
            return error(2, "SERVICE : Service temporarily unavailable")

        token = params.get("access_token", "") or params.get("session_key", "")
        if params.get("application_key") != self.server.ok_application_key:
            raise error(101, "PARAM_API_KEY : Application key is invalid")
        if token and token == self.server.tokens["ok"]:
            expected = ok_signature(params, token, self.server.ok_secret_key)
            if params.get("sig", "").lower() != expected:
                raise error(104, "PARAM_SIGNATURE : Invalid signature " + params.get("sig", ""))
        self.preflight(
            token,
            {
                "auth": lambda: error(102, "PARAM_SESSION_EXPIRED : Session expired"),
                "permission": lambda code: error(
                    code, "PERMISSION_DENIED : Application has no permission GROUP_CONTENT"
                ),
                "rate": lambda _r, _t, _injected: error(8, "FLOOD_BLOCKED : Too many requests"),
                "daily": lambda: error(11, "LIMIT_REACHED : Daily limit of requests reached"),
                "server": server,
                "ok_headers": lambda *_: None,
            },
            headers,
        )
        method = params.get("method", "")
        try:
            if method == "mediatopic.getTopics":
                return self._topics(params, error)
            if method == "discussions.get":
                return self._discussion(params, error)
            if method == "discussions.getComments":
                return self._comments(params, error)
        except ValueError as exc:
            raise error(100, f"PARAM : {exc}") from exc
        raise error(3, f"METHOD : Method {method} is not supported")

    def _check_gone(self, gid: str, error: Any) -> None:
        state = self.gone(gid)
        if state is not None:
            code, message = GONE[state]
            raise error(code, message.format(gid=gid))

    def _user(self, item: SandboxItem) -> dict[str, Any]:
        first, _, last = item.author_name.partition(" ")
        return {
            "uid": item.author_id,
            "first_name": first,
            "last_name": last,
            "gender": "female" if last.endswith("а") else "male",
        }

    def _topic(self, post: SandboxItem) -> dict[str, Any]:
        comments = self.stream.comments(post)
        group = post.source_id
        author_ref = f"group:{group}" if post.author_id == group else f"user:{post.author_id}"
        return {
            "id": post.native_id,
            "created_ms": int(post.published_at.timestamp() * 1000),
            "media": [{"type": "text", "text": post.text}],
            "author_ref": author_ref,
            "owner_ref": f"group:{group}",
            "discussion_summary": {"comments_count": len(comments)},
            "like_summary": {"count": stable(post.native_id) % 30, "self": False},
            "reshare_summary": {"count": stable(post.native_id, "r") % 5},
            "ref_objects": [{"id": group, "type": "GROUP"}],
        }

    def _entities(self, items: list[SandboxItem], group: str) -> dict[str, Any]:
        users = {i.author_id: self._user(i) for i in items if i.author_id != group and not i.deleted}
        index = self.stream.source("ok", group)
        name = self.config.sources[index].name if index is not None else ""
        return {"users": list(users.values()), "groups": [{"uid": group, "name": name}]}

    def _topics(self, params: dict[str, str], error: Any) -> dict[str, Any]:
        gid = params.get("gid") or params.get("group_id")
        if not gid:
            raise ValueError("gid is required")
        self._check_gone(gid, error)
        index = self.stream.source("ok", gid)
        if index is None:
            raise error(160, f"GROUP_RESTRICTION : group {gid} is not accessible")
        count = int_param(params, "count", 20, 1, 100)
        after = tuple(unb64(params["anchor"])) if params.get("anchor") else None
        since = parse_time(params.get("start_time") or params.get("since"))
        until = parse_time(params.get("end_time") or params.get("until"))
        page: list[tuple[tuple[int, int], SandboxItem]] = []
        more = False
        for cursor, item in self.stream.desc(index, since, until, after):
            if len(page) == count:
                more = True
                break
            page.append((cursor, item))
        if len(page) > 1 and self.faults.page_fault("ok", "truncated_page"):
            page, more = page[: len(page) // 2], True
        back = self.faults.overlap("ok", len(page) - 1)
        anchor_at = page[-1 - back][0] if page else after
        posts = [i for _, i in page]
        return {
            "media_topics": [self._topic(p) for p in posts],
            "entities": self._entities(posts, gid),
            "anchor": b64(list(anchor_at)) if anchor_at else "",
            "has_more": more,
        }

    def _find(self, params: dict[str, str], error: Any) -> SandboxItem:
        discussion = params.get("discussionId", "")
        post = self.stream.find_post("ok", discussion)
        if post is not None:
            self._check_gone(post.source_id, error)
        if post is None:
            raise error(300, "NOT_FOUND : discussion not found")
        return post

    def _discussion(self, params: dict[str, str], error: Any) -> dict[str, Any]:
        post = self._find(params, error)
        comments = self.stream.comments(post)
        return {
            "discussion": {
                "object_type": "GROUP_TOPIC",
                "object_id": post.native_id,
                "title": post.text[:120],
                "message": post.text,
                "creation_date": ok_time(post.published_at),
                "last_activity_date": ok_time(comments[-1].published_at if comments else post.published_at),
                "last_user_access_date": ok_time(post.published_at),
                "owner_uid": post.author_id,
                "total_comments_count": len(comments),
                "new_comments_count": 0,
                "like_count": stable(post.native_id) % 30,
                "liked_it": False,
                "attrs": {"flags": "c,l,s"},
                "ref_objects": [{"id": post.source_id, "type": "GROUP"}],
            },
            "entities": {
                **self._entities([post], post.source_id),
                "themes": [{"id": post.native_id, "title": post.text[:120]}],
            },
        }

    def _comments(self, params: dict[str, str], error: Any) -> dict[str, Any]:
        post = self._find(params, error)
        comments = self.with_deletions(self.stream.comments(post))
        count = int_param(params, "count", 20, 1, 100)
        start = int(unb64(params["anchor"])) if params.get("anchor") else 0
        if params.get("direction", "FORWARD").upper() not in ("FORWARD", "AROUND"):
            raise ValueError("only direction=FORWARD is supported")
        page = comments[start : start + count]
        if len(page) > 1 and self.faults.page_fault("ok", "truncated_page"):
            page = page[: len(page) // 2]
        nxt = start + len(page) - self.faults.overlap("ok", len(page) - 1)
        by_id = {c.native_id: c for c in comments}
        items = []
        for c in page:
            item: dict[str, Any] = {
                "id": c.native_id,
                "date": ok_time(c.published_at),
                "date_ms": int(c.published_at.timestamp() * 1000),
                "author_id": c.author_id,
                "type": "DELETED" if c.deleted else "ACTIVE_MESSAGE",
                "text": "" if c.deleted else c.text,
                "like_count": stable(c.native_id) % 9,
                "liked_it": False,
                "attrs": {"flags": "l,s"},
            }
            if c.reply_to_native_id and c.reply_to_native_id in by_id:
                item["reply_to_comment_id"] = c.reply_to_native_id
                item["reply_to_id"] = by_id[c.reply_to_native_id].author_id
            items.append(item)
        return {
            "comments": items,
            "anchor": b64(nxt),
            "has_more": nxt < len(comments),
            "entities": {"users": [self._user(c) for c in page if not c.deleted]},
        }

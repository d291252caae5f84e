"""Instagram Graph API emulator: ``{base}/{ig-user-id}/media``, ``/{media-id}``,
``/{media-id}/comments`` (with nested ``replies``) and ``/{comment-id}/replies``.
Errors, permissions and gone accounts: see :mod:`incidents_dev.sandbox.graph`.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from incidents_dev.sandbox.core import graph_time, roots, stable
from incidents_dev.sandbox.generator import SandboxItem
from incidents_dev.sandbox.graph import GraphEmulator

PERMISSION_MESSAGES = {
    10: "(#10) Application does not have permission for this action",
    100: "(#100) Object does not exist, cannot be loaded due to missing permission or reviewable feature, or "
    "does not support this operation. This endpoint requires the 'instagram_basic' permission and the "
    "'Instagram Public Content Access' feature. Refer to "
    "https://developers.facebook.com/docs/apps/review/login-permissions#instagram_basic for details.",
}


class InstagramEmulator(GraphEmulator):
    network = "instagram"
    permission_messages = PERMISSION_MESSAGES

    def _media(self, post: SandboxItem, fields: set[str]) -> dict[str, Any]:
        comments = self.stream.comments(post)
        code = (
            base64.urlsafe_b64encode(hashlib.md5(post.native_id.encode()).digest()[:8]).decode().rstrip("=")
        )
        values: dict[str, Any] = {
            "id": post.native_id,
            "caption": post.text,
            "media_type": "IMAGE",
            "media_url": f"https://scontent.cdninstagram.com/v/t51.29350-15/{post.native_id}_n.jpg",
            "permalink": f"https://www.instagram.com/p/{code}/",
            "shortcode": code,
            "timestamp": graph_time(post.published_at),
            "username": f"src{post.source_id[-6:]}",
            "owner": {"id": post.source_id},
            "like_count": stable(post.native_id) % 60,
            "comments_count": len(comments),
            "is_comment_enabled": True,
        }
        return {k: v for k, v in values.items() if k in fields}

    def _comment(self, c: SandboxItem, fields: set[str], replies: list[SandboxItem] | None) -> dict[str, Any]:
        values: dict[str, Any] = {
            "id": c.native_id,
            "text": c.text,
            "timestamp": graph_time(c.published_at),
            "username": c.author_id,
            "from": {"id": str(17_841_400_000_000_000 + stable(c.author_id)), "username": c.author_id},
            "like_count": stable(c.native_id) % 9,
            "hidden": False,
            "media": {"id": c.parent_native_id},
        }
        if c.reply_to_native_id:
            values["parent_id"] = c.reply_to_native_id
        row = {k: v for k, v in values.items() if k in fields}
        if replies is not None and "replies" in fields:
            sub = {"id", "text", "timestamp", "username"} | (fields & {"like_count", "from"})
            row["replies"] = {"data": [self._comment(r, sub, None) for r in replies]}
        return row

    def route(self, object_id: str, edge: str, params: dict[str, str]) -> dict[str, Any] | None:
        index = self.stream.source("instagram", object_id)
        if index is not None:
            self.check_gone(object_id, object_id)
        if index is not None and edge == "media":
            fields = self.fields(params, ("id",))
            posts, more, cursor = self.window_page(index, params, 100)
            rows = [self._media(p, fields) for p in posts]
            return self.page(f"{object_id}/media", params, rows, more, cursor)
        post = self.stream.find_post("instagram", object_id)
        if post is not None:
            self.check_gone(post.source_id, object_id)
            if edge == "":
                return self._media(post, self.fields(params, ("id", "media_type", "timestamp")))
            if edge != "comments":
                return None
            comments = self.with_deletions(self.stream.comments(post))
            tops = roots(comments)
            level = [c for c in comments if tops[c.native_id] is None]
            fields = self.fields(params, ("id", "text", "timestamp"))
            page, more, cursor = self.list_page(level, params)
            rows = [
                self._comment(c, fields, [r for r in comments if tops[r.native_id] == c.native_id])
                for c in page
            ]
            return self.page(f"{object_id}/comments", params, rows, more, cursor)
        if edge == "replies":
            found = self._find_comment(object_id)
            if found is None:
                return None
            post, comment = found
            self.check_gone(post.source_id, object_id)
            comments = self.stream.comments(post)
            tops = roots(comments)
            level = [c for c in comments if tops[c.native_id] == comment.native_id]
            fields = self.fields(params, ("id", "text", "timestamp"))
            page, more, cursor = self.list_page(level, params)
            rows = [self._comment(c, fields, None) for c in page]
            return self.page(f"{object_id}/replies", params, rows, more, cursor)
        return None

    def _find_comment(self, comment_id: str) -> tuple[SandboxItem, SandboxItem] | None:
        try:
            base, idx = divmod(int(comment_id) - 17_900_000_000_000_000, 1000)
        except ValueError:
            return None
        post_base = base // 64
        if not 0 <= idx < len(self.config.sources):
            return None
        post = self.stream.find_post("instagram", str(17_800_000_000_000_000 + post_base * 1000 + idx))
        if post is None:
            return None
        for c in self.stream.comments(post):
            if c.native_id == comment_id:
                return post, c
        return None

"""Facebook Graph API emulator: ``{base}/{page-id}/feed`` (``/posts``, ``/published_posts``),
``/{post-id}``, ``/{post-id}/comments`` (``filter=stream`` for every level) and
``/{comment-id}/comments``. Errors, permissions and gone Pages: see :mod:`incidents_dev.sandbox.graph`.
"""

from __future__ import annotations

from typing import Any

from incidents_dev.sandbox.core import graph_time, roots, stable
from incidents_dev.sandbox.generator import SandboxItem
from incidents_dev.sandbox.graph import GraphEmulator

PERMISSION_MESSAGES = {
    10: "(#10) This endpoint requires the 'pages_read_engagement' permission or the 'Page Public Content "
    "Access' feature. Refer to https://developers.facebook.com/docs/apps/review/login-permissions#manage-pages "
    "and https://developers.facebook.com/docs/apps/review/feature#reference-PAGES_ACCESS for details.",
    100: "(#100) Object does not exist, cannot be loaded due to missing permission or reviewable feature, or "
    "does not support this operation. This endpoint requires the 'pages_read_engagement' permission or the "
    "'Page Public Content Access' feature or the 'Page Public Metadata Access' feature. Refer to "
    "https://developers.facebook.com/docs/apps/review/login-permissions#manage-pages, "
    "https://developers.facebook.com/docs/apps/review/feature#reference-PAGES_ACCESS and "
    "https://developers.facebook.com/docs/apps/review/feature#page-public-metadata-access for details.",
}


class FacebookEmulator(GraphEmulator):
    network = "facebook"
    permission_messages = PERMISSION_MESSAGES

    def _post(self, post: SandboxItem, fields: set[str]) -> dict[str, Any]:
        comments = self.stream.comments(post)
        page_id, number = post.native_id.split("_")
        values: dict[str, Any] = {
            "id": post.native_id,
            "message": post.text,
            "created_time": graph_time(post.published_at),
            "updated_time": graph_time(post.published_at),
            "from": {"id": post.author_id, "name": post.author_name},
            "permalink_url": f"https://www.facebook.com/{page_id}/posts/{number}/",
            "status_type": "mobile_status_update",
            "comments": {
                "data": [],
                "summary": {"order": "chronological", "total_count": len(comments), "can_comment": True},
            },  # fmt: skip
            "shares": {"count": stable(post.native_id) % 5},
        }
        if post.geo:
            values["place"] = {
                "name": "Киров",
                "location": {"latitude": post.geo["lat"], "longitude": post.geo["lon"]},
            }
        return {k: v for k, v in values.items() if k in fields}

    def _comment(self, c: SandboxItem, replies: int, fields: set[str]) -> dict[str, Any]:
        page_id = c.source_id
        if c.parent_native_id is None:  # the generator gives every comment its post
            raise ValueError(f"comment {c.native_id} has no post")
        values: dict[str, Any] = {
            "id": c.native_id,
            "message": c.text,
            "created_time": graph_time(c.published_at),
            "from": {"id": c.author_id, "name": c.author_name},
            "like_count": stable(c.native_id) % 9,
            "comment_count": replies,
            "permalink_url": f"https://www.facebook.com/{page_id}/posts/{c.parent_native_id.split('_')[-1]}/"
            f"?comment_id={c.native_id.split('_')[-1]}",
        }
        if c.reply_to_native_id:
            values["parent"] = {"id": c.reply_to_native_id}
        return {k: v for k, v in values.items() if k in fields}

    def route(self, object_id: str, edge: str, params: dict[str, str]) -> dict[str, Any] | None:
        index = self.stream.source("facebook", object_id)
        if index is not None:
            self.check_gone(object_id, object_id)
        if index is not None and edge in ("feed", "posts", "published_posts"):
            fields = self.fields(params, ("id", "message", "created_time"))
            posts, more, cursor = self.window_page(index, params, 100)
            rows = [self._post(p, fields) for p in posts]
            return self.page(f"{object_id}/{edge}", params, rows, more, cursor)
        if "_" not in object_id:
            return None
        post = self.stream.find_post("facebook", object_id)
        if post is None:
            comment_parent = self._find_comment(object_id)
            if comment_parent is None or edge != "comments":
                return None
            post, parent_id = comment_parent
            self.check_gone(post.source_id, object_id)
            comments = self.with_deletions(self.stream.comments(post))
            tops = roots(comments)
            level = [c for c in comments if tops[c.native_id] == parent_id]
        else:
            self.check_gone(post.source_id, object_id)
            if edge == "":
                return self._post(post, self.fields(params, ("id", "message", "created_time")))
            if edge != "comments":
                return None
            comments = self.with_deletions(self.stream.comments(post))
            tops = roots(comments)
            if params.get("filter") == "stream":
                level = comments
            else:
                level = [c for c in comments if tops[c.native_id] is None]
        fields = self.fields(params, ("id", "message", "created_time"))
        page, more, cursor = self.list_page(level, params)
        counts = {c.native_id: sum(1 for x in comments if tops[x.native_id] == c.native_id) for c in page}
        rows = [self._comment(c, counts[c.native_id], fields) for c in page]
        result = self.page(f"{object_id}/comments", params, rows, more, cursor)
        if "summary" in params and params["summary"] in ("1", "true", "total_count"):
            result["summary"] = {"order": "chronological", "total_count": len(level), "can_comment": True}
        return result

    def _find_comment(self, comment_id: str) -> tuple[SandboxItem, str] | None:
        try:
            base = int(comment_id.split("_")[1]) - 1_000_000_000_000_000
            postnum = int(comment_id.split("_")[0])
        except (ValueError, IndexError):
            return None
        idx = (postnum - 10_100_000_000_000_000) % 1000
        if not 0 <= idx < len(self.config.sources):
            return None
        post = self.stream.find_post("facebook", f"{self.config.sources[idx].id}_{postnum}")
        if post is None or base < 0:
            return None
        if not any(c.native_id == comment_id for c in post.comments):
            return None
        return post, comment_id

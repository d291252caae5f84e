"""Minimal reference crawlers of the sandbox APIs (plain ``requests``), used to check paging.

Each returns the set of ``external_id`` values it collected for one source and window. They
retry transient failures (HTTP 429/5xx, in-body rate-limit/service errors, malformed JSON,
timeouts) and de-duplicate, the way a correct client must.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

import requests

from incidents_dev.sandbox.server import SandboxServer, ok_signature

TIMEOUT = 0.4
RETRIES = 60
VK_RETRY = {6, 9, 10}
OK_RETRY = {2, 8}
GRAPH_RETRY = {4, 17, 32, 613}


class Fatal(Exception):
    """A non-transient API error."""


def _get(url: str, params: dict[str, Any], headers: dict[str, str] | None = None, check=None) -> Any:
    for _ in range(RETRIES):
        try:
            response = requests.get(url, params=params, headers=headers, timeout=TIMEOUT)
        except requests.exceptions.Timeout:
            continue
        if response.status_code == 429 or response.status_code >= 500:
            time.sleep(0.01)
            continue
        try:
            data = response.json()
        except ValueError:
            continue
        if response.status_code == 400 and data.get("error", {}).get("code") in GRAPH_RETRY:
            time.sleep(0.01)
            continue
        if response.status_code != 200:
            raise Fatal(f"{response.status_code} {data}")
        if check is not None and check(data):
            time.sleep(0.05)
            continue
        return data
    raise Fatal(f"gave up on {url} {params}")


def _ts(value: datetime) -> int:
    return int(value.timestamp())


def crawl_vk_wall(server: SandboxServer, owner: str, start: datetime, end: datetime) -> set[str]:
    base, token = server.url_for("vk"), server.tokens["vk"]

    def check(data: dict) -> bool:
        if "error" in data:
            if data["error"]["error_code"] in VK_RETRY:
                return True
            raise Fatal(str(data["error"]))
        return False

    out: set[str] = set()
    seen: set[int] = set()
    posts: list[int] = []
    offset = 0
    while True:
        data = _get(f"{base}/wall.get", {"owner_id": owner, "count": 50, "offset": offset, "v": "5.199",
                                          "access_token": token}, check=check)["response"]  # fmt: skip
        items = data["items"]
        new = [i for i in items if i["id"] not in seen]
        seen.update(i["id"] for i in new)
        offset += len(new)
        for item in new:
            if _ts(start) <= item["date"] < _ts(end):
                out.add(f"{owner}_{item['id']}")
                posts.append(item["id"])
        if not items or items[-1]["date"] < _ts(start):
            break
    for post_id in posts:
        out |= _vk_comments(base, token, owner, post_id, check)
    return out


def _vk_comments(base: str, token: str, owner: str, post_id: int, check) -> set[str]:
    out: set[str] = set()
    offset, total = 0, None
    while total is None or offset < total:
        data = _get(f"{base}/wall.getComments", {"owner_id": owner, "post_id": post_id, "count": 100, "offset": offset,
                                                  "thread_items_count": 10, "access_token": token}, check=check)  # fmt: skip
        data = data["response"]
        total = data["count"]
        if not data["items"]:
            break
        offset += len(data["items"])
        for c in data["items"]:
            if not c.get("deleted"):
                out.add(f"{owner}_{post_id}_{c['id']}")
            thread = c.get("thread", {})
            replies = thread.get("items", [])
            if thread.get("count", 0) > len(replies):
                replies = []
                t_off = 0
                while t_off < thread["count"]:
                    page = _get(f"{base}/wall.getComments", {"owner_id": owner, "post_id": post_id, "count": 100,
                                                              "offset": t_off, "comment_id": c["id"],
                                                              "access_token": token}, check=check)["response"]  # fmt: skip
                    if not page["items"]:
                        break
                    t_off += len(page["items"])
                    replies.extend(page["items"])
            out.update(f"{owner}_{post_id}_{r['id']}" for r in replies if not r.get("deleted"))
    return out


def crawl_vk_search(server: SandboxServer, query: str, start: datetime, end: datetime) -> set[str]:
    base, token = server.url_for("vk"), server.tokens["vk"]

    def check(data: dict) -> bool:
        if "error" in data:
            if data["error"]["error_code"] in VK_RETRY:
                return True
            raise Fatal(str(data["error"]))
        return False

    out: set[str] = set()
    posts: set[tuple[int, int]] = set()
    start_from = None
    while True:
        params = {
            "q": query,
            "start_time": _ts(start),
            "end_time": _ts(end) - 1,
            "count": 50,
            "access_token": token,
        }
        if start_from:
            params["start_from"] = start_from
        data = _get(f"{base}/newsfeed.search", params, check=check)["response"]
        for item in data["items"]:
            posts.add((item["owner_id"], item["id"]))
        start_from = data.get("next_from")
        if not start_from:
            break
    for owner, post_id in posts:
        out.add(f"{owner}_{post_id}")
        out |= _vk_comments(base, token, str(owner), post_id, check)
    return out


def crawl_ok(server: SandboxServer, gid: str, start: datetime, end: datetime) -> set[str]:
    base, token = server.url_for("ok"), server.tokens["ok"]

    def call(params: dict[str, str]) -> dict:
        params = {**params, "application_key": server.ok_application_key, "format": "json"}
        params["sig"] = ok_signature(params, token, server.ok_secret_key)
        params["access_token"] = token

        def check(data: dict) -> bool:
            if "error_code" in data:
                if data["error_code"] in OK_RETRY:
                    return True
                raise Fatal(str(data))
            return False

        return _get(base, params, check=check)

    out: set[str] = set()
    topics: list[str] = []
    anchor = None
    while True:
        params = {"method": "mediatopic.getTopics", "gid": gid, "count": "50"}
        if anchor:
            params["anchor"] = anchor
        data = call(params)
        for topic in data["media_topics"]:
            if _ts(start) * 1000 <= topic["created_ms"] < _ts(end) * 1000 and topic["id"] not in topics:
                topics.append(topic["id"])
        anchor = data["anchor"]
        if not data["has_more"] or (
            data["media_topics"] and data["media_topics"][-1]["created_ms"] < _ts(start) * 1000
        ):
            break
    for topic in topics:
        out.add(f"{gid}_{topic}")
        anchor = None
        while True:
            params = {"method": "discussions.getComments", "discussionId": topic, "discussionType": "GROUP_TOPIC",
                      "count": "100"}  # fmt: skip
            if anchor:
                params["anchor"] = anchor
            data = call(params)
            out.update(f"{gid}_{topic}_{c['id']}" for c in data["comments"] if c["type"] != "DELETED")
            anchor = data["anchor"]
            if not data["has_more"]:
                break
    return out


def crawl_twitter(server: SandboxServer, query: str, start: datetime, end: datetime) -> set[str]:
    base, headers = server.url_for("twitter"), {"Authorization": f"Bearer {server.tokens['twitter']}"}
    out: set[str] = set()
    token = None
    while True:
        params = {"query": query, "start_time": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
                  "end_time": end.strftime("%Y-%m-%dT%H:%M:%SZ"), "max_results": 100,
                  "tweet.fields": "author_id,created_at,conversation_id,referenced_tweets", "expansions": "author_id"}  # fmt: skip
        if token:
            params["next_token"] = token
        data = _get(f"{base}/2/tweets/search/all", params, headers)
        out.update(t["id"] for t in data.get("data", []))
        token = data["meta"].get("next_token")
        if not token:
            return out


def _graph_pages(url: str, params: dict[str, Any]) -> list[dict]:
    rows: list[dict] = []
    seen: set[str] = set()
    while True:
        data = _get(url, params)
        for row in data["data"]:
            if row["id"] not in seen:
                seen.add(row["id"])
                rows.append(row)
        nxt = data.get("paging", {}).get("next")
        if not nxt:
            return rows
        params = {**params, "after": data["paging"]["cursors"]["after"]}


def crawl_facebook(server: SandboxServer, page: str, start: datetime, end: datetime) -> set[str]:
    base, token = server.url_for("facebook"), server.tokens["facebook"]
    posts = _graph_pages(f"{base}/{page}/feed", {"since": _ts(start), "until": _ts(end), "limit": 50,
                                                  "fields": "id,message,created_time,from", "access_token": token})  # fmt: skip
    out = {p["id"] for p in posts}
    for post in posts:
        comments = _graph_pages(f"{base}/{post['id']}/comments", {"filter": "stream", "limit": 100,
                                                                  "access_token": token})  # fmt: skip
        out.update(c["id"] for c in comments)
    return out


def crawl_instagram(server: SandboxServer, user: str, start: datetime, end: datetime) -> set[str]:
    base, token = server.url_for("instagram"), server.tokens["instagram"]
    out: set[str] = set()
    params: dict[str, Any] = {"fields": "id,caption,timestamp", "limit": 50, "access_token": token}
    media: list[str] = []
    seen: set[str] = set()
    while True:
        data = _get(f"{base}/{user}/media", params)
        for row in data["data"]:
            ts = _ts(datetime.strptime(row["timestamp"], "%Y-%m-%dT%H:%M:%S%z"))
            if row["id"] not in seen and _ts(start) <= ts < _ts(end):
                media.append(row["id"])
            seen.add(row["id"])
        nxt = data.get("paging", {}).get("next")
        oldest = data["data"][-1]["timestamp"] if data["data"] else None
        if not nxt or (oldest and _ts(datetime.strptime(oldest, "%Y-%m-%dT%H:%M:%S%z")) < _ts(start)):
            break
        params = {**params, "after": data["paging"]["cursors"]["after"]}
    for media_id in media:
        out.add(media_id)
        comments = _graph_pages(f"{base}/{media_id}/comments", {"fields": "id,text,timestamp,replies{id,text}",
                                                                "limit": 50, "access_token": token})  # fmt: skip
        for c in comments:
            out.add(c["id"])
            out.update(r["id"] for r in c.get("replies", {}).get("data", []))
    return out

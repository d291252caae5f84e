"""Twitter/X API v2 emulator: ``{base}/2/tweets/search/recent`` and ``/2/tweets/search/all``.

A search serves the sources whose ``query`` equals the request's query: tweets and replies newest
first, ``next_token`` paging, ``x-rate-limit-*`` headers, problem-details errors. Recent search
reaches back 7 days as the real one does (400 for an older ``start_time``); full-archive search
has no floor.

A token without the access level a endpoint needs (``FaultConfig.permission_errors``
``{"twitter": 403}``) gets the real HTTP 403 ``client-forbidden`` problem (reason
``client-not-enrolled``).
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import Any

from incidents_dev.sandbox.core import (
    DAILY_SECONDS,
    ApiError,
    Emulator,
    b64,
    bearer,
    parse_time,
    stable,
    twitter_time,
    unb64,
)
from incidents_dev.sandbox.generator import HOUR, SandboxItem, source_hour

RECENT_DAYS = 7


class TwitterEmulator(Emulator):
    network = "twitter"

    def handle(self, path: str, params: dict[str, str], headers: dict[str, str]) -> Any:
        def problem(status: int, title: str, detail: str, extra: dict[str, Any] | None = None) -> ApiError:
            body = {"title": title, "detail": detail, "type": "about:blank", "status": status}
            return ApiError(status, {**body, **(extra or {})})

        def rate(remaining: int, reset: float, injected: bool) -> ApiError:
            return ApiError(429, {"title": "Too Many Requests", "detail": "Too Many Requests", "type": "about:blank",
                                  "status": 429}, self.rate_headers(0, reset))  # fmt: skip

        def server() -> ApiError:
            return problem(503, "Service Unavailable", "Service Unavailable")

        def daily() -> ApiError:
            now = time.time()
            reset = (int(now) // DAILY_SECONDS + 1) * DAILY_SECONDS  # next UTC midnight
            return ApiError(429, {"title": "UsageCapExceeded", "detail": "Usage cap exceeded: Daily project cap",
                                  "type": "https://api.twitter.com/2/problems/usage-capped", "period": "Daily",
                                  "scope": "Project"}, self.rate_headers(0, reset - 1))  # fmt: skip

        def forbidden(_code: int) -> ApiError:
            return ApiError(403, {
                "client_id": "29871034", "title": "Client Forbidden", "reason": "client-not-enrolled",
                "required_enrollment": "Appropriate Level of API Access",
                "registration_url": "https://developer.twitter.com/en/docs/projects/overview",
                "detail": "When authenticating requests to the Twitter API v2 endpoints, you must use keys and "
                          "tokens from a Twitter developer App that is attached to a Project. You can create a "
                          "project via the developer portal.",
                "type": "https://api.twitter.com/2/problems/client-forbidden",
            })  # fmt: skip

        self.preflight(
            bearer(params),
            {
                "auth": lambda: problem(401, "Unauthorized", "Unauthorized"),
                "permission": forbidden,
                "rate": rate,
                "daily": daily,
                "server": server,
                "ok_headers": lambda remaining, reset: headers.update(self.rate_headers(remaining, reset)),
            },
            headers,
        )
        route = path.split("/twitter", 1)[1]
        if route not in ("/2/tweets/search/recent", "/2/tweets/search/all"):
            raise problem(404, "Not Found Error", f"Could not find {route}")
        try:
            return self._search(params, recent=route.endswith("recent"))
        except ValueError as exc:
            raise ApiError(400, {"errors": [{"parameters": {}, "message": str(exc)}], "title": "Invalid Request",
                                 "detail": "One or more parameters to your request was invalid.",
                                 "type": "https://api.twitter.com/2/problems/invalid-request"}) from exc  # fmt: skip

    def rate_headers(self, remaining: int, reset: float) -> dict[str, str]:
        limit = self.server.limiter.limits["twitter"].limit
        return {"x-rate-limit-limit": str(limit), "x-rate-limit-remaining": str(remaining),
                "x-rate-limit-reset": str(int(reset) + 1), "api-version": "2.52"}  # fmt: skip

    def _tweet(self, item: SandboxItem, fields: set[str], parents: dict[str, SandboxItem]) -> dict[str, Any]:
        tweet: dict[str, Any] = {
            "id": item.native_id,
            "text": item.text,
            "edit_history_tweet_ids": [item.native_id],
        }
        conversation = item.parent_native_id or item.native_id
        values: dict[str, Any] = {
            "author_id": item.author_id,
            "created_at": twitter_time(item.published_at),
            "conversation_id": conversation,
            "lang": "ru",
            "possibly_sensitive": False,
            "source": "Twitter for Android",
            "public_metrics": {
                "retweet_count": 0,
                "reply_count": 0,
                "like_count": stable(item.native_id) % 20,
                "quote_count": 0,
                "impression_count": 100 + stable(item.native_id, "i") % 900,
            },  # fmt: skip
        }
        if item.kind == "comment":
            target = item.reply_to_native_id or item.parent_native_id
            values["referenced_tweets"] = [{"type": "replied_to", "id": target}]
            parent = parents.get(target or "")
            if parent is not None:
                values["in_reply_to_user_id"] = parent.author_id
        if item.geo:
            values["geo"] = {
                "coordinates": {"type": "Point", "coordinates": [item.geo["lon"], item.geo["lat"]]}
            }
        for name, value in values.items():
            if name in fields:
                tweet[name] = value
        return tweet

    def _search(self, params: dict[str, str], recent: bool) -> dict[str, Any]:
        query, max_results, since, until = self._search_params(params, recent)
        after = tuple(unb64(params["next_token"])) if params.get("next_token") else None
        fields = set(filter(None, params.get("tweet.fields", "").split(",")))
        expansions = set(filter(None, params.get("expansions", "").split(",")))
        page: list[tuple[tuple[int, int], SandboxItem]] = []
        more = False
        for index in self.stream.search_sources("twitter", query):
            for cursor, item in self.stream.desc(index, since, until, after):
                if len(page) == max_results:
                    more = True
                    break
                page.append((cursor, item))
        if len(page) > 1 and self.faults.page_fault("twitter", "truncated_page"):
            page, more = page[: len(page) // 2], True
        parents: dict[str, SandboxItem] = {}
        for _, item in page:
            if item.kind == "comment":
                post = self._parent(item)
                if post is not None:
                    parents[post.native_id] = post
                    parents.update({c.native_id: c for c in post.comments})
        data = [self._tweet(i, fields, parents) for _, i in page]
        meta: dict[str, Any] = {"result_count": len(data)}
        if data:
            meta["newest_id"], meta["oldest_id"] = data[0]["id"], data[-1]["id"]
        if more and page:
            cursor = page[-1 - self.faults.overlap("twitter", len(page) - 1)][0]
            meta["next_token"] = b64(list(cursor))
        result: dict[str, Any] = {"data": data} if data else {}
        if "author_id" in expansions and page:
            result["includes"] = {"users": _users([item for _, item in page], params)}
        result["meta"] = meta
        return result

    def _search_params(self, params: dict[str, str], recent: bool) -> tuple[str, int, datetime, datetime]:
        """``(query, max_results, since, until)`` of a search, checked as the API checks them."""
        query = params.get("query")
        if not query:
            raise ValueError("The `query` query parameter can not be empty")
        now = self.server.now()
        max_results = int(params.get("max_results") or 10)
        if not 10 <= max_results <= (100 if recent else 500):
            raise ValueError(f"The `max_results` query parameter value [{max_results}] is not between 10 and "
                             f"{100 if recent else 500}")  # fmt: skip
        until = parse_time(params.get("end_time")) or now - timedelta(seconds=10)
        since = parse_time(params.get("start_time")) or (
            now - timedelta(days=RECENT_DAYS) if recent else now - timedelta(days=30)
        )
        if recent and since < now - timedelta(days=RECENT_DAYS):
            raise ValueError(f"Invalid 'start_time':'{params.get('start_time')}'. 'start_time' must be on or after "
                             f"{twitter_time(now - timedelta(days=RECENT_DAYS))}")  # fmt: skip
        if until > now:
            raise ValueError(f"Invalid 'end_time':'{params.get('end_time')}'. 'end_time' must be a minimum of 10 "
                             "seconds prior to the request time.")  # fmt: skip
        return query, max_results, since, until

    def _parent(self, reply: SandboxItem) -> SandboxItem | None:
        index = self.stream.source("twitter", reply.source_id)
        if index is None:
            return None
        for hour in range(
            int(reply.published_at.timestamp()) // HOUR, int(reply.published_at.timestamp()) // HOUR - 50, -1
        ):
            for post in source_hour(self.config, index, hour):
                if post.native_id == reply.parent_native_id:
                    return post
        return None


def _users(items: list[SandboxItem], params: dict[str, str]) -> list[dict[str, str]]:
    """The ``includes.users`` of a page's authors (each once, in page order)."""
    user_fields = set(filter(None, params.get("user.fields", "").split(",")))
    users = {}
    for item in items:
        user = {
            "id": item.author_id,
            "name": item.author_name,
            "username": f"user{item.author_id[-8:]}",
        }
        if "location" in user_fields:
            user["location"] = "Киров"
        users[item.author_id] = user
    return list(users.values())

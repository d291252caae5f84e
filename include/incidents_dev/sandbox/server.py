"""A local HTTP server that serves the generated stream through the five networks' API shapes.

Endpoints (``base`` = :meth:`SandboxServer.url_for`):

* VK ``{base}/wall.get``, ``/wall.getComments``, ``/newsfeed.search`` (GET or POST form);
  errors inside HTTP 200 as ``{"error": {"error_code", "error_msg", "request_params"}}``.
  Offset paging: a page hit by ``duplicate_items`` repeats up to 2 items of the previous page
  before the requested offset, a ``truncated_page`` has fewer items than asked: advance the
  offset by the number of items not seen before.
* OK ``{base}`` (``/ok/fb.do``): ``method`` = ``mediatopic.getTopics`` (group feed),
  ``discussions.get``, ``discussions.getComments`` with anchor paging; the signature is checked
  (error 104). Dates ``YYYY-MM-DD HH:MM:SS`` are Moscow time (UTC+3), as ok.ru gives them;
  ``created_ms``/``date_ms`` carry the exact instant.
* Twitter/X ``{base}/2/tweets/search/recent`` and ``/2/tweets/search/all``: the sources whose
  ``query`` equals the request's query; tweets and replies newest first; ``x-rate-limit-*`` headers.
* Facebook ``{base}/{page-id}/feed`` (``/posts``), ``/{post-id}/comments``, ``/{comment-id}/comments``.
* Instagram ``{base}/{ig-user-id}/media``, ``/{media-id}/comments``, ``/{comment-id}/replies``.
* Admin: ``GET /_admin/health``, ``GET|POST /_admin/faults`` (JSON :class:`FaultConfig` fields;
  ``{"replace": true}`` resets the others), ``POST /_admin/now`` (``{"now": ISO}``), ``GET /_admin/stats``.

Items published after the server's ``now`` are not served yet; walls reach back ``history_days``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from incidents.sources import Source
from incidents_dev.sandbox.faults import FaultConfig, FaultInjector, RateLimit, RateLimiter
from incidents_dev.sandbox.generator import (
    DEFAULT_RATE,
    HOUR,
    GeneratorConfig,
    SandboxItem,
    hour_items,
    post_count,
    source_hour,
    warm_up,
)

log = logging.getLogger(__name__)

GRAPH_VERSION = "v19.0"
MSK = timedelta(hours=3)
DEFAULT_OK_APP_KEY = "CBAKSANDBOXAAAAA"
DEFAULT_OK_SECRET = "sandbox-ok-secret-key"
DEFAULT_CLIENT_READ_TIMEOUT = 2.0
"""Read timeout (seconds) of the connections from :meth:`SandboxServer.connection_env`."""
TIMEOUT_MARGIN = 0.3
"""A "timeout" fault sleeps at least this much longer than the clients' read timeout."""
DAILY_SECONDS = 86400


class ApiError(Exception):
    """An API answer other than success: status, JSON body (or raw bytes) and headers."""

    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        super().__init__(status)
        self.status = status
        self.body = body
        self.headers = headers or {}


def _b64(data: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(data, separators=(",", ":")).encode()).decode().rstrip("=")


def _unb64(token: str) -> Any:
    try:
        return json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (ValueError, json.JSONDecodeError) as exc:
        raise ValueError(f"bad cursor {token!r}") from exc


def _parse_time(value: str | None) -> datetime | None:
    """Unix seconds or ISO 8601 (``Z`` or offset) -> aware UTC datetime."""
    if value is None or value == "":
        return None
    value = str(value).strip()
    if value.lstrip("-").isdigit():
        return datetime.fromtimestamp(int(value), UTC)
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _graph_time(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+0000")


def _twitter_time(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _ok_time(value: datetime) -> str:
    return (value.astimezone(UTC) + MSK).strftime("%Y-%m-%d %H:%M:%S")


def _int(params: dict[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = params.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise ValueError(f"{name} must be an integer") from exc
    return max(low, min(high, value))


def _stable(*parts: object) -> int:
    return int.from_bytes(hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=4).digest(), "big")


def ok_signature(params: dict[str, str], access_token: str, secret_key: str) -> str:
    """ok.ru request signature: md5 of the sorted ``k=v`` pairs (without ``sig`` and
    ``access_token``) followed by md5(access_token + application secret key)."""
    session_secret = hashlib.md5((access_token + secret_key).encode()).hexdigest()
    pairs = "".join(f"{k}={v}" for k, v in sorted(params.items()) if k not in ("sig", "access_token"))
    return hashlib.md5((pairs + session_secret).encode()).hexdigest()


class _Stream:
    """Windowed, paged views of the generated stream for one server."""

    def __init__(self, config: GeneratorConfig, now_fn: Any, history_days: int) -> None:
        self.config = config
        self.now_fn = now_fn
        self.history_days = history_days
        self.index = {(s.network, s.id): i for i, s in enumerate(config.sources)}

    def source(self, network: str, source_id: str) -> int | None:
        return self.index.get((network, str(source_id)))

    def floor_hour(self) -> int:
        return (int(self.now_fn().timestamp()) - self.history_days * 86400) // HOUR

    def visible(self, item: SandboxItem) -> bool:
        return item.published_at <= self.now_fn()

    def posts(self, index: int, hour: int) -> list[SandboxItem]:
        return [p for p in source_hour(self.config, index, hour) if self.visible(p)]

    def feed(self, index: int, hour: int) -> list[SandboxItem]:
        """Twitter/X: tweets and replies of the hour; elsewhere: the posts of the hour."""
        if self.config.sources[index].network == "twitter":
            return [i for i in hour_items(self.config, index, hour) if self.visible(i)]
        return self.posts(index, hour)

    def desc(
        self, index: int, since: datetime | None, until: datetime | None, after: tuple[int, int] | None = None
    ) -> Iterator[tuple[tuple[int, int], SandboxItem]]:
        """Items newest first with their cursor (hour, position), within [since, until)."""
        now = self.now_fn()
        top = min(until, now + timedelta(seconds=1)) if until else now + timedelta(seconds=1)
        hour = int(top.timestamp()) // HOUR
        low = max(self.floor_hour(), int(since.timestamp()) // HOUR if since else self.floor_hour())
        if after is not None:
            hour = min(hour, after[0])
        while hour >= low:
            items = self.feed(index, hour)
            for pos in range(len(items) - 1, -1, -1):
                if after is not None and (hour, pos) >= tuple(after):
                    continue
                item = items[pos]
                if item.published_at >= top:
                    continue
                if since and item.published_at < since:
                    return
                yield (hour, pos), item
            hour -= 1

    def wall_offset(self, index: int, offset: int, count: int) -> list[SandboxItem]:
        """VK wall.get: ``count`` posts from ``offset``, newest first, skipping whole hours by count."""
        now_hour = int(self.now_fn().timestamp()) // HOUR
        out: list[SandboxItem] = []
        skip = offset
        for hour in range(now_hour, self.floor_hour() - 1, -1):
            n = len(self.posts(index, hour)) if hour == now_hour else post_count(self.config, index, hour)
            if skip >= n:
                skip -= n
                continue
            items = self.posts(index, hour)[::-1]
            out.extend(items[skip : skip + count - len(out)])
            skip = 0
            if len(out) >= count:
                break
        return out

    def wall_total(self, index: int) -> int:
        now_hour = int(self.now_fn().timestamp()) // HOUR
        total = len(self.posts(index, now_hour))
        return total + sum(post_count(self.config, index, h) for h in range(self.floor_hour(), now_hour))

    def find_post(self, network: str, native_id: str, owner: str | None = None) -> SandboxItem | None:
        """Locate a post by its native id (ids encode hour and position)."""
        try:
            if network == "vk":
                base = int(native_id)
                candidates = [i for (n, _), i in self.index.items() if n == "vk"]
            elif network == "ok":
                base, idx = int(native_id[:-3]), int(native_id[-3:])
                candidates = [idx]
            elif network == "facebook":
                num = int(native_id.split("_")[-1]) - 10_100_000_000_000_000
                base, idx = divmod(num, 1000)
                candidates = [idx]
            elif network == "instagram":
                base, idx = divmod(int(native_id) - 17_800_000_000_000_000, 1000)
                candidates = [idx]
            else:
                return None
        except ValueError:
            return None
        hour, k = divmod(base, 256)
        for idx in candidates:
            if not 0 <= idx < len(self.config.sources) or self.config.sources[idx].network != network:
                continue
            if hour < self.floor_hour() - 2:
                continue
            posts = source_hour(self.config, idx, hour)
            if k < len(posts) and posts[k].native_id == native_id and self.visible(posts[k]):
                post = posts[k]
                if owner is not None and network == "vk" and post.owner_id != str(owner):
                    continue
                return post
        return None

    def comments(self, post: SandboxItem) -> list[SandboxItem]:
        return [c for c in post.comments if self.visible(c)]


def _roots(comments: list[SandboxItem]) -> dict[str, str | None]:
    """Comment id -> id of its top-level comment (None for top-level ones)."""
    by_id = {c.native_id: c for c in comments}
    roots: dict[str, str | None] = {}
    for c in comments:
        parent = c.reply_to_native_id
        while parent is not None and by_id[parent].reply_to_native_id is not None:
            parent = by_id[parent].reply_to_native_id
        roots[c.native_id] = parent
    return roots


class SandboxServer:
    """The five network APIs served from the generated stream (see the module docstring)."""

    def __init__(
        self,
        seed: int = 0,
        now: datetime | None = None,
        faults: FaultConfig | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        tokens: dict[str, str] | None = None,
        *,
        rate_per_source_per_day: float = DEFAULT_RATE,
        sources: list[Source] | None = None,
        rate_limits: dict[str, RateLimit] | None = None,
        history_days: int = 60,
        ok_application_key: str = DEFAULT_OK_APP_KEY,
        ok_secret_key: str = DEFAULT_OK_SECRET,
        client_read_timeout: float = DEFAULT_CLIENT_READ_TIMEOUT,
    ) -> None:
        if client_read_timeout <= 0:
            raise ValueError("client_read_timeout must be positive")
        self.config = GeneratorConfig.build(seed, rate_per_source_per_day, sources)
        self._now = now.astimezone(UTC) if now is not None else None
        self.host, self.port = host, port
        self.tokens = {n: f"sandbox-{n}-token" for n in ("vk", "ok", "twitter", "facebook", "instagram")}
        self.tokens.update(tokens or {})
        self.ok_application_key = ok_application_key
        self.ok_secret_key = ok_secret_key
        self.faults = FaultInjector(faults)
        self.limiter = RateLimiter(rate_limits)
        self.stream = _Stream(self.config, self.now, history_days)
        self.requests: dict[str, int] = {}
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._rate_codes = 0
        self.client_read_timeout = float(client_read_timeout)
        """The read timeout :meth:`connection_env` gives the clients; "timeout" faults sleep longer."""

    # ------------------------------------------------------------------ lifecycle

    def now(self) -> datetime:
        """The server's clock: the fixed ``now`` given, else the wall clock."""
        return self._now or datetime.now(UTC)

    def set_now(self, now: datetime | None) -> None:
        self._now = now.astimezone(UTC) if now is not None else None

    @property
    def base_url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("the sandbox server is not started")
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> str:
        """Listen (a free port when ``port`` is 0) in a background thread; returns the base URL.

        The text tables (gazetteer inflected with pymorphy3, a few seconds once per process) are
        loaded first, so that the first API answer is not slow enough to look like a timeout."""
        if self._httpd is not None:
            return self.base_url
        warm_up()
        handler = type("SandboxHandler", (_Handler,), {"app": self})
        self._httpd = ThreadingHTTPServer((self.host, self.port), handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="sandbox-http", daemon=True)
        self._thread.start()
        log.info("sandbox serving at %s (seed %s)", self.base_url, self.config.seed)
        return self.base_url

    def stop(self) -> None:
        if self._httpd is None:
            return
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = None
        self._thread = None

    def __enter__(self) -> SandboxServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def url_for(self, network: str) -> str:
        """The API base URL of a network (what goes into its connection's host)."""
        paths = {
            "vk": "/vk/method",
            "ok": "/ok/fb.do",
            "twitter": "/twitter",
            "facebook": f"/facebook/{GRAPH_VERSION}",
            "instagram": f"/instagram/{GRAPH_VERSION}",
        }
        if network not in paths:
            raise ValueError(f"unknown network {network!r}")
        return self.base_url + paths[network]

    def connection_env(
        self, pseudonym_key: str = "sandbox-pseudonym-key", **client_extra: Any
    ) -> dict[str, str]:
        """``AIRFLOW_CONN_<NET>_DEFAULT`` values (JSON form) pointing the clients at this server.

        The extra carries ``read_timeout`` = :attr:`client_read_timeout` (a "timeout" fault always
        sleeps longer than that, so the client really times out) and ``client_extra`` (client
        options such as ``backoff_base``, ``backoff_cap``, ``max_retries``, ``connect_timeout``;
        a ``read_timeout`` given here must stay below the fault's sleep and is rejected otherwise).
        """
        read_timeout = float(client_extra.pop("read_timeout", self.client_read_timeout))
        if read_timeout >= self.timeout_fault_seconds():
            raise ValueError(
                f"read_timeout {read_timeout}s is not below the sandbox's timeout fault "
                f"({self.timeout_fault_seconds():.2f}s): injected timeouts would be slow answers only"
            )
        env = {}
        for network in ("vk", "ok", "twitter", "facebook", "instagram"):
            extra: dict[str, Any] = {
                "pseudonym_key": pseudonym_key,
                "sandbox": True,
                "read_timeout": read_timeout,
            }
            extra.update(client_extra)
            if network == "vk":
                extra["api_version"] = "5.199"
            if network == "ok":
                extra.update(
                    application_key=self.ok_application_key, application_secret_key=self.ok_secret_key
                )
            if network == "twitter":
                extra["full_archive"] = True
            if network in ("facebook", "instagram"):
                extra["api_version"] = GRAPH_VERSION
            value = {
                "conn_type": "http",
                "host": self.url_for(network),
                "password": self.tokens[network],
                "extra": extra,
            }
            env[f"AIRFLOW_CONN_{network.upper()}_DEFAULT"] = json.dumps(value, ensure_ascii=False)
        return env

    def timeout_fault_seconds(self) -> float:
        """How long a "timeout" fault sleeps: ``FaultConfig.timeout_seconds``, but always past the
        clients' read timeout (:attr:`client_read_timeout`)."""
        return max(self.faults.timeout_seconds(), self.client_read_timeout + TIMEOUT_MARGIN)

    def _next_rate_code(self, codes: tuple[Any, ...]) -> Any:
        with self._lock:
            self._rate_codes += 1
            return codes[self._rate_codes % len(codes)]

    # ------------------------------------------------------------------ dispatch

    def handle(
        self, method: str, path: str, params: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        """Answer one request: (status, headers, body)."""
        if path.startswith("/_admin/"):
            status, payload = self._admin(method, path, body)
            return (
                status,
                {"Content-Type": "application/json"},
                json.dumps(payload, ensure_ascii=False).encode(),
            )
        network = path.strip("/").split("/", 1)[0]
        handlers = {
            "vk": self._vk,
            "ok": self._ok,
            "twitter": self._twitter,
            "facebook": self._graph,
            "instagram": self._graph,
        }
        if network not in handlers:
            return 404, {"Content-Type": "application/json"}, b'{"error": "not found"}'
        with self._lock:
            self.requests[network] = self.requests.get(network, 0) + 1
        headers: dict[str, str] = {"Content-Type": "application/json; charset=utf-8"}
        try:
            payload = handlers[network](network, path, params, headers)
            status = 200
        except ApiError as exc:
            status, payload = exc.status, exc.body
            headers.update(exc.headers)
        malformed = headers.pop("__malformed", None)
        if isinstance(payload, bytes):
            return status, headers, payload
        data = json.dumps(payload, ensure_ascii=False).encode()
        if status == 200 and malformed:
            data = data[: max(1, len(data) // 2)]
        return status, headers, data

    def _admin(self, method: str, path: str, body: bytes) -> tuple[int, Any]:
        try:
            data = json.loads(body or b"{}") if method == "POST" else {}
        except json.JSONDecodeError as exc:
            return 400, {"error": f"invalid JSON: {exc}"}
        if path == "/_admin/health":
            return 200, {"status": "ok", "now": _twitter_time(self.now()), "seed": self.config.seed}
        if path == "/_admin/faults":
            if method == "POST":
                replace = bool(data.pop("replace", False))
                try:
                    self.faults.update(data, replace=replace)
                except (TypeError, ValueError) as exc:
                    return 400, {"error": str(exc)}
            return 200, self.faults.config.to_dict()
        if path == "/_admin/now" and method == "POST":
            try:
                self.set_now(_parse_time(data.get("now")))
            except ValueError as exc:
                return 400, {"error": str(exc)}
            return 200, {"now": _twitter_time(self.now())}
        if path == "/_admin/stats":
            return 200, {"requests": dict(self.requests), "faults_injected": dict(self.faults.injected)}
        return 404, {"error": f"unknown admin endpoint {path}"}

    def _preflight(self, network: str, token: str, errors: dict[str, Any], headers: dict[str, str]) -> None:
        """Auth, rate limits and request faults common to all networks; raises ApiError.

        ``errors``: ``auth()``, ``rate(remaining, reset, injected)`` (retryable throttling),
        ``daily()`` (the daily quota is used up), ``server()`` and ``ok_headers(remaining, reset)``.
        """
        latency = self.faults.config.latency_seconds
        if latency > 0:
            time.sleep(latency)
        if not token or token != self.tokens[network] or self.faults.token_expired(network):
            raise errors["auth"]()
        allowed, remaining, reset = self.limiter.hit(network, token)
        if not allowed:
            raise errors["rate"](remaining, reset, False)
        fault = self.faults.request_fault(network)
        if fault == "timeout":
            time.sleep(self.timeout_fault_seconds())
        elif fault == "rate_limit":
            raise errors["rate"](0, time.time() + 1, True)
        elif fault == "daily_limit":
            raise errors["daily"]()
        elif fault == "server_error":
            raise errors["server"]()
        elif fault == "malformed_json":
            headers["__malformed"] = "1"  # the body of this answer gets cut in half
        errors["ok_headers"](remaining, reset)

    # ------------------------------------------------------------------ VK

    def _vk(self, network: str, path: str, params: dict[str, str], headers: dict[str, str]) -> Any:
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
            code, msg = self._next_rate_code(codes) if injected else codes[0]
            return error(code, msg)

        def server() -> ApiError:
            return ApiError(503, b"<html><body><h1>503 Service Temporarily Unavailable</h1></body></html>",
                            {"Content-Type": "text/html"})  # fmt: skip

        self._preflight(
            network,
            params.get("access_token", ""),
            {
                "auth": lambda: error(5, "User authorization failed: invalid access_token (4)."),
                "rate": rate,
                "daily": lambda: error(29, "Rate limit reached"),
                "server": server,
                "ok_headers": lambda *_: None,
            },
            headers,
        )
        try:
            if method == "wall.get":
                return {"response": self._vk_wall_get(params, error)}
            if method == "wall.getComments":
                return {"response": self._vk_get_comments(params, error)}
            if method == "newsfeed.search":
                return {"response": self._vk_search(params, error)}
        except ValueError as exc:
            raise error(100, f"One of the parameters specified was missing or invalid: {exc}") from exc
        raise error(3, "Unknown method passed")

    def _vk_post(self, post: SandboxItem) -> dict[str, Any]:
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
                "count": _stable(post.native_id) % 40,
                "user_likes": 0,
                "can_like": 1,
                "can_publish": 1,
            },
            "reposts": {"count": _stable(post.native_id, "r") % 7, "user_reposted": 0},
            "views": {"count": 50 + _stable(post.native_id, "v") % 3000},
            "is_favorite": False,
        }
        if post.author_id != post.owner_id and post.owner_id.startswith("-"):
            item["from_id"] = int(post.owner_id)
            item["signer_id"] = int(post.author_id)
        if post.geo:
            item["geo"] = {"type": "point", "coordinates": f"{post.geo['lat']} {post.geo['lon']}"}
        return item

    def _vk_wall_get(self, params: dict[str, str], error: Any) -> dict[str, Any]:
        owner = params.get("owner_id") or params.get("domain")
        if not owner:
            raise ValueError("owner_id is undefined")
        index = self.stream.source("vk", owner)
        if index is None or self.config.sources[index].query:
            raise (
                error(15, "Access denied: wall is disabled")
                if str(owner).startswith("-")
                else error(30, "This profile is private")
            )
        count = _int(params, "count", 20, 0, 100)
        offset = _int(params, "offset", 0, 0, 10**9)
        start = offset
        if offset >= 2 and self.faults.page_fault("vk", "duplicate_items"):
            start = offset - 2
        posts = self.stream.wall_offset(index, start, count + (offset - start))
        if len(posts) > 1 and self.faults.page_fault("vk", "truncated_page"):
            posts = posts[: max(1, len(posts) // 2)]
        result: dict[str, Any] = {
            "count": self.stream.wall_total(index),
            "items": [self._vk_post(p) for p in posts],
        }
        if params.get("extended") in ("1", "true"):
            result.update(self._vk_profiles(posts))
        return result

    def _vk_profiles(self, items: list[SandboxItem]) -> dict[str, Any]:
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

    def _vk_comment(
        self, c: SandboxItem, post: SandboxItem, roots: dict[str, str | None], need_likes: bool
    ) -> dict:
        root = roots.get(c.native_id)
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
            item["likes"] = {"count": _stable(c.native_id) % 9, "user_likes": 0, "can_like": 1}
        return item

    def _vk_get_comments(self, params: dict[str, str], error: Any) -> dict[str, Any]:
        owner, post_id = params.get("owner_id"), params.get("post_id")
        if not owner or not post_id:
            raise ValueError("owner_id and post_id are required")
        post = self.stream.find_post("vk", post_id, owner)
        if post is None:
            raise error(15, "Access denied: post was not found")
        comments = self._with_deletions("vk", self.stream.comments(post))
        roots = _roots(comments)
        count = _int(params, "count", 10, 0, 100)
        offset = _int(params, "offset", 0, 0, 10**9)
        threads = _int(params, "thread_items_count", 0, 0, 10)
        need_likes = params.get("need_likes") in ("1", "true")
        comment_id = params.get("comment_id")
        if comment_id:
            level = [c for c in comments if roots[c.native_id] == comment_id]
        else:
            level = [c for c in comments if roots[c.native_id] is None]
        if params.get("sort") == "desc":
            level = level[::-1]
        page = level[offset : offset + count]
        if len(page) > 1 and self.faults.page_fault("vk", "truncated_page"):
            page = page[: len(page) // 2]
        items = []
        for c in page:
            item = self._vk_comment(c, post, roots, need_likes)
            replies = [r for r in comments if roots[r.native_id] == c.native_id] if not comment_id else []
            if not comment_id:
                item["thread"] = {
                    "count": len(replies),
                    "items": [self._vk_comment(r, post, roots, need_likes) for r in replies[:threads]],
                    "can_post": True,
                    "show_reply_button": True,
                    "groups_can_post": True,
                }
            items.append(item)
        result: dict[str, Any] = {"count": len(level), "items": items, "current_level_count": len(level),
                                  "can_post": True, "show_reply_button": True, "groups_can_post": True}  # fmt: skip
        if params.get("extended") in ("1", "true"):
            result.update(self._vk_profiles(page))
        return result

    def _search_sources(self, network: str, query: str) -> list[int]:
        return [
            i
            for i, s in enumerate(self.config.sources)
            if s.network == network and s.query and s.query == query
        ]

    def _vk_search(self, params: dict[str, str], error: Any) -> dict[str, Any]:
        query = params.get("q", "")
        count = _int(params, "count", 30, 0, 200)
        since = _parse_time(params.get("start_time"))
        until = _parse_time(params.get("end_time"))
        if until is not None:
            until = until + timedelta(seconds=1)  # end_time is inclusive in VK
        after = None
        if params.get("start_from"):
            try:
                after = tuple(int(x) for x in params["start_from"].split("/")[0].split(":"))
            except ValueError as exc:
                raise ValueError("start_from") from exc
        pages = []
        for index in self._search_sources("vk", query):
            for cursor, item in self.stream.desc(index, since, until, after):
                pages.append((cursor, item))
                if len(pages) > count:
                    break
        pages.sort(key=lambda p: p[0], reverse=True)
        page, more = pages[:count], len(pages) > count
        if len(page) > 1 and self.faults.page_fault("vk", "truncated_page"):
            page, more = page[: len(page) // 2], True
        result: dict[str, Any] = {"items": [self._vk_post(i) for _, i in page], "count": len(page),
                                  "total_count": len(page) + (1000 if more else 0)}  # fmt: skip
        if more and page:
            hour, pos = page[-1][0]
            if self.faults.page_fault("vk", "duplicate_items") and len(page) > 2:
                hour, pos = page[-3][0]
            last = page[-1][1]
            result["next_from"] = f"{hour}:{pos}/{last.owner_id}_{last.native_id}"
        if params.get("extended") in ("1", "true"):
            result.update(self._vk_profiles([i for _, i in page]))
        return result

    def _with_deletions(self, network: str, comments: list[SandboxItem]) -> list[SandboxItem]:
        """The ``deleted_comments`` fault: about a third of the comments deleted just now."""
        if not comments or not self.faults.page_fault(network, "deleted_comments"):
            return comments
        out = []
        for c in comments:
            if _stable(c.native_id, "del") % 3 == 0 and not c.deleted:
                if network not in ("vk", "ok"):
                    continue
                c = SandboxItem(
                    **{**{f: getattr(c, f) for f in c.__dataclass_fields__}, "deleted": True, "text": ""}
                )
            out.append(c)
        return out

    # ------------------------------------------------------------------ OK

    def _ok(self, network: str, path: str, params: dict[str, str], headers: dict[str, str]) -> Any:
        def error(code: int, msg: str) -> ApiError:
            return ApiError(200, {"error_code": code, "error_msg": msg, "error_data": None})

        def server() -> ApiError:
            return error(2, "SERVICE : Service temporarily unavailable")

        token = params.get("access_token", "") or params.get("session_key", "")
        if params.get("application_key") != self.ok_application_key:
            raise error(101, "PARAM_API_KEY : Application key is invalid")
        if token and token == self.tokens["ok"]:
            expected = ok_signature(params, token, self.ok_secret_key)
            if params.get("sig", "").lower() != expected:
                raise error(104, "PARAM_SIGNATURE : Invalid signature " + params.get("sig", ""))
        self._preflight(
            network,
            token,
            {
                "auth": lambda: error(102, "PARAM_SESSION_EXPIRED : Session expired"),
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
                return self._ok_topics(params, error)
            if method == "discussions.get":
                return self._ok_discussion(params, error)
            if method == "discussions.getComments":
                return self._ok_comments(params, error)
        except ValueError as exc:
            raise error(100, f"PARAM : {exc}") from exc
        raise error(3, f"METHOD : Method {method} is not supported")

    def _ok_user(self, item: SandboxItem) -> dict[str, Any]:
        first, _, last = item.author_name.partition(" ")
        return {
            "uid": item.author_id,
            "first_name": first,
            "last_name": last,
            "gender": "female" if last.endswith("а") else "male",
        }

    def _ok_topic(self, post: SandboxItem) -> dict[str, Any]:
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
            "like_summary": {"count": _stable(post.native_id) % 30, "self": False},
            "reshare_summary": {"count": _stable(post.native_id, "r") % 5},
            "ref_objects": [{"id": group, "type": "GROUP"}],
        }

    def _ok_entities(self, items: list[SandboxItem], group: str) -> dict[str, Any]:
        users = {i.author_id: self._ok_user(i) for i in items if i.author_id != group and not i.deleted}
        index = self.stream.source("ok", group)
        name = self.config.sources[index].name if index is not None else ""
        return {"users": list(users.values()), "groups": [{"uid": group, "name": name}]}

    def _ok_topics(self, params: dict[str, str], error: Any) -> dict[str, Any]:
        gid = params.get("gid") or params.get("group_id")
        if not gid:
            raise ValueError("gid is required")
        index = self.stream.source("ok", gid)
        if index is None:
            raise error(160, f"GROUP_RESTRICTION : group {gid} is not accessible")
        count = _int(params, "count", 20, 1, 100)
        after = tuple(_unb64(params["anchor"])) if params.get("anchor") else None
        since = _parse_time(params.get("start_time") or params.get("since"))
        until = _parse_time(params.get("end_time") or params.get("until"))
        page = []
        more = False
        for cursor, item in self.stream.desc(index, since, until, after):
            if len(page) == count:
                more = True
                break
            page.append((cursor, item))
        if len(page) > 1 and self.faults.page_fault("ok", "truncated_page"):
            page, more = page[: len(page) // 2], True
        anchor_at = page[-1][0] if page else after
        if page and len(page) > 2 and self.faults.page_fault("ok", "duplicate_items"):
            anchor_at = page[-3][0]
        posts = [i for _, i in page]
        return {
            "media_topics": [self._ok_topic(p) for p in posts],
            "entities": self._ok_entities(posts, gid),
            "anchor": _b64(list(anchor_at)) if anchor_at else "",
            "has_more": more,
        }

    def _ok_discussion(self, params: dict[str, str], error: Any) -> dict[str, Any]:
        post = self.stream.find_post("ok", params.get("discussionId", ""))
        if post is None:
            raise error(300, "NOT_FOUND : discussion not found")
        comments = self.stream.comments(post)
        return {
            "discussion": {
                "object_type": "GROUP_TOPIC",
                "object_id": post.native_id,
                "title": post.text[:120],
                "message": post.text,
                "creation_date": _ok_time(post.published_at),
                "last_activity_date": _ok_time(comments[-1].published_at if comments else post.published_at),
                "last_user_access_date": _ok_time(post.published_at),
                "owner_uid": post.author_id,
                "total_comments_count": len(comments),
                "new_comments_count": 0,
                "like_count": _stable(post.native_id) % 30,
                "liked_it": False,
                "attrs": {"flags": "c,l,s"},
                "ref_objects": [{"id": post.source_id, "type": "GROUP"}],
            },
            "entities": {
                **self._ok_entities([post], post.source_id),
                "themes": [{"id": post.native_id, "title": post.text[:120]}],
            },
        }

    def _ok_comments(self, params: dict[str, str], error: Any) -> dict[str, Any]:
        post = self.stream.find_post("ok", params.get("discussionId", ""))
        if post is None:
            raise error(300, "NOT_FOUND : discussion not found")
        comments = self._with_deletions("ok", self.stream.comments(post))
        count = _int(params, "count", 20, 1, 100)
        start = int(_unb64(params["anchor"])) if params.get("anchor") else 0
        if params.get("direction", "FORWARD").upper() not in ("FORWARD", "AROUND"):
            raise ValueError("only direction=FORWARD is supported")
        page = comments[start : start + count]
        if len(page) > 1 and self.faults.page_fault("ok", "truncated_page"):
            page = page[: len(page) // 2]
        nxt = start + len(page)
        if len(page) > 2 and self.faults.page_fault("ok", "duplicate_items"):
            nxt -= 2
        by_id = {c.native_id: c for c in comments}
        items = []
        for c in page:
            item: dict[str, Any] = {
                "id": c.native_id,
                "date": _ok_time(c.published_at),
                "date_ms": int(c.published_at.timestamp() * 1000),
                "author_id": c.author_id,
                "type": "DELETED" if c.deleted else "ACTIVE_MESSAGE",
                "text": "" if c.deleted else c.text,
                "like_count": _stable(c.native_id) % 9,
                "liked_it": False,
                "attrs": {"flags": "l,s"},
            }
            if c.reply_to_native_id and c.reply_to_native_id in by_id:
                item["reply_to_comment_id"] = c.reply_to_native_id
                item["reply_to_id"] = by_id[c.reply_to_native_id].author_id
            items.append(item)
        return {
            "comments": items,
            "anchor": _b64(nxt),
            "has_more": nxt < len(comments),
            "entities": {"users": [self._ok_user(c) for c in page if not c.deleted]},
        }

    # ------------------------------------------------------------------ Twitter/X

    def _twitter(self, network: str, path: str, params: dict[str, str], headers: dict[str, str]) -> Any:
        def problem(status: int, title: str, detail: str, extra: dict | None = None) -> ApiError:
            body = {"title": title, "detail": detail, "type": "about:blank", "status": status}
            return ApiError(status, {**body, **(extra or {})})

        def rate(remaining: int, reset: float, injected: bool) -> ApiError:
            return ApiError(429, {"title": "Too Many Requests", "detail": "Too Many Requests", "type": "about:blank",
                                  "status": 429}, self._twitter_headers(0, reset))  # fmt: skip

        def server() -> ApiError:
            return problem(503, "Service Unavailable", "Service Unavailable")

        def daily() -> ApiError:
            now = time.time()
            reset = (int(now) // DAILY_SECONDS + 1) * DAILY_SECONDS  # next UTC midnight
            return ApiError(429, {"title": "UsageCapExceeded", "detail": "Usage cap exceeded: Daily project cap",
                                  "type": "https://api.twitter.com/2/problems/usage-capped", "period": "Daily",
                                  "scope": "Project"}, self._twitter_headers(0, reset - 1))  # fmt: skip

        auth = self._bearer(headers_in=params)
        self._preflight(
            network,
            auth,
            {
                "auth": lambda: problem(401, "Unauthorized", "Unauthorized"),
                "rate": rate,
                "daily": daily,
                "server": server,
                "ok_headers": lambda remaining, reset: headers.update(
                    self._twitter_headers(remaining, reset)
                ),
            },
            headers,
        )
        route = path.split("/twitter", 1)[1]
        if route not in ("/2/tweets/search/recent", "/2/tweets/search/all"):
            raise problem(404, "Not Found Error", f"Could not find {route}")
        try:
            return self._twitter_search(params, recent=route.endswith("recent"))
        except ValueError as exc:
            raise ApiError(400, {"errors": [{"parameters": {}, "message": str(exc)}], "title": "Invalid Request",
                                 "detail": "One or more parameters to your request was invalid.",
                                 "type": "https://api.twitter.com/2/problems/invalid-request"}) from exc  # fmt: skip

    def _twitter_headers(self, remaining: int, reset: float) -> dict[str, str]:
        limit = self.limiter.limits["twitter"].limit
        return {"x-rate-limit-limit": str(limit), "x-rate-limit-remaining": str(remaining),
                "x-rate-limit-reset": str(int(reset) + 1), "api-version": "2.52"}  # fmt: skip

    def _bearer(self, headers_in: dict[str, str]) -> str:
        value = headers_in.get("__authorization", "")
        return value[7:].strip() if value.lower().startswith("bearer ") else ""

    def _tweet(self, item: SandboxItem, fields: set[str], parents: dict[str, SandboxItem]) -> dict[str, Any]:
        tweet: dict[str, Any] = {
            "id": item.native_id,
            "text": item.text,
            "edit_history_tweet_ids": [item.native_id],
        }
        conversation = item.parent_native_id or item.native_id
        values: dict[str, Any] = {
            "author_id": item.author_id,
            "created_at": _twitter_time(item.published_at),
            "conversation_id": conversation,
            "lang": "ru",
            "possibly_sensitive": False,
            "source": "Twitter for Android",
            "public_metrics": {
                "retweet_count": 0,
                "reply_count": 0,
                "like_count": _stable(item.native_id) % 20,
                "quote_count": 0,
                "impression_count": 100 + _stable(item.native_id, "i") % 900,
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

    def _twitter_search(self, params: dict[str, str], recent: bool) -> dict[str, Any]:
        query = params.get("query")
        if not query:
            raise ValueError("The `query` query parameter can not be empty")
        now = self.now()
        max_results = int(params.get("max_results") or 10)
        if not 10 <= max_results <= (100 if recent else 500):
            raise ValueError(f"The `max_results` query parameter value [{max_results}] is not between 10 and "
                             f"{100 if recent else 500}")  # fmt: skip
        until = _parse_time(params.get("end_time")) or now - timedelta(seconds=10)
        since = _parse_time(params.get("start_time")) or (
            now - timedelta(days=7) if recent else now - timedelta(days=30)
        )
        if recent and since < now - timedelta(days=7):
            raise ValueError(f"Invalid 'start_time':'{params.get('start_time')}'. 'start_time' must be on or after "
                             f"{_twitter_time(now - timedelta(days=7))}")  # fmt: skip
        if until > now:
            raise ValueError(f"Invalid 'end_time':'{params.get('end_time')}'. 'end_time' must be a minimum of 10 "
                             "seconds prior to the request time.")  # fmt: skip
        after = tuple(_unb64(params["next_token"])) if params.get("next_token") else None
        fields = set(filter(None, params.get("tweet.fields", "").split(",")))
        expansions = set(filter(None, params.get("expansions", "").split(",")))
        page: list[tuple[tuple[int, int], SandboxItem]] = []
        more = False
        for index in self._search_sources("twitter", query):
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
                post = self._twitter_parent(item)
                if post is not None:
                    parents[post.native_id] = post
                    parents.update({c.native_id: c for c in post.comments})
        data = [self._tweet(i, fields, parents) for _, i in page]
        meta: dict[str, Any] = {"result_count": len(data)}
        if data:
            meta["newest_id"], meta["oldest_id"] = data[0]["id"], data[-1]["id"]
        if more and page:
            cursor = (
                page[-3][0]
                if len(page) > 2 and self.faults.page_fault("twitter", "duplicate_items")
                else page[-1][0]
            )
            meta["next_token"] = _b64(list(cursor))
        result: dict[str, Any] = {"data": data} if data else {}
        if "author_id" in expansions and page:
            user_fields = set(filter(None, params.get("user.fields", "").split(",")))
            users = {}
            for _, item in page:
                user = {
                    "id": item.author_id,
                    "name": item.author_name,
                    "username": f"user{item.author_id[-8:]}",
                }
                if "location" in user_fields:
                    user["location"] = "Киров"
                users[item.author_id] = user
            result["includes"] = {"users": list(users.values())}
        result["meta"] = meta
        return result

    def _twitter_parent(self, reply: SandboxItem) -> SandboxItem | None:
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

    # ------------------------------------------------------------------ Facebook & Instagram Graph

    def _graph(self, network: str, path: str, params: dict[str, str], headers: dict[str, str]) -> Any:
        trace = base64.urlsafe_b64encode(hashlib.md5(f"{path}{params}".encode()).digest()[:12]).decode()

        def error(status: int, code: int, message: str, subcode: int | None = None) -> ApiError:
            body: dict[str, Any] = {
                "message": message,
                "type": "OAuthException",
                "code": code,
                "fbtrace_id": trace,
            }
            if subcode:
                body["error_subcode"] = subcode
            return ApiError(status, {"error": body})

        def rate(remaining: int, reset: float, injected: bool) -> ApiError:
            usage = json.dumps({"call_count": 100, "total_cputime": 40, "total_time": 60})
            codes = (
                (4, "(#4) Application request limit reached"),
                (17, "(#17) User request limit reached"),
                (32, "(#32) Page request limit reached"),
                (613, "(#613) Calls to this api have exceeded the rate limit."),
            )
            code, message = self._next_rate_code(codes) if injected else codes[0]
            exc = error(400, code, message)
            exc.headers["X-App-Usage"] = usage
            return exc

        def daily() -> ApiError:
            exc = error(400, 4, "(#4) Application request limit reached")
            exc.headers["X-App-Usage"] = json.dumps(
                {"call_count": 100, "total_cputime": 100, "total_time": 100}
            )
            usage = {"type": "pages", "call_count": 100, "total_cputime": 100, "total_time": 100,
                     "estimated_time_to_regain_access": DAILY_SECONDS // 60}  # fmt: skip
            exc.headers["X-Business-Use-Case-Usage"] = json.dumps(
                {(path.strip("/").split("/")[2:] or ["0"])[0]: [usage]}
            )
            return exc

        def ok_headers(remaining: int, reset: float) -> None:
            limit = self.limiter.limits[network].limit
            used = int(100 * (limit - remaining) / max(1, limit))
            headers["X-App-Usage"] = json.dumps(
                {"call_count": used, "total_cputime": used // 3, "total_time": used // 2}
            )

        token = params.get("access_token") or self._bearer(params)
        self._preflight(
            network,
            token,
            {
                "auth": lambda: error(400, 190, "Error validating access token: Session has expired.", 463),
                "rate": rate,
                "daily": daily,
                "server": lambda: error(
                    500, 2, "An unexpected error has occurred. Please retry your request later."
                ),
                "ok_headers": ok_headers,
            },
            headers,
        )
        parts = path.strip("/").split("/")[2:]
        if not parts or len(parts) > 2:
            raise error(400, 100, "Unsupported get request.", 33)
        object_id, edge = parts[0], (parts[1] if len(parts) == 2 else "")
        try:
            if network == "facebook":
                result = self._fb(object_id, edge, params)
            else:
                result = self._ig(object_id, edge, params)
        except ValueError as exc:
            raise error(400, 100, f"(#100) {exc}") from exc
        if result is None:
            raise error(
                400, 100,
                f"Unsupported get request. Object with ID '{object_id}' does not exist, cannot be loaded due to "
                "missing permissions, or does not support this operation.", 33,
            )  # fmt: skip
        return result

    def _graph_page(
        self,
        network: str,
        base: str,
        params: dict[str, str],
        rows: list[dict[str, Any]],
        more: bool,
        cursor: Any,
    ) -> dict[str, Any]:
        result: dict[str, Any] = {"data": rows}
        if rows or params.get("after"):
            paging: dict[str, Any] = {
                "cursors": {"before": _b64(["before", params.get("after", "")]), "after": ""}
            }
            if cursor is not None:
                paging["cursors"]["after"] = _b64(cursor)
            query = {k: v for k, v in params.items() if not k.startswith("__")}
            if more and cursor is not None:
                paging["next"] = (
                    f"{self.url_for(network)}/{base}?{urlencode({**query, 'after': _b64(cursor)})}"
                )
            if params.get("after"):
                paging["previous"] = (
                    f"{self.url_for(network)}/{base}?{urlencode({**query, 'before': params['after']})}"
                )
            result["paging"] = paging
        return result

    def _fields(self, params: dict[str, str], default: tuple[str, ...]) -> set[str]:
        raw = params.get("fields")
        if not raw:
            return set(default)
        names, depth, current = set(), 0, ""
        for ch in raw:
            if ch in "{(":
                depth += 1
            elif ch in "})":
                depth -= 1
            elif ch == "," and depth == 0:
                names.add(current.split("{")[0].split(".")[0].strip())
                current = ""
                continue
            current += ch
        names.add(current.split("{")[0].split(".")[0].strip())
        return names | {"id"}

    def _window_page(
        self, network: str, index: int, params: dict[str, str], limit_max: int
    ) -> tuple[list[SandboxItem], bool, Any]:
        limit = _int(params, "limit", 25, 1, limit_max)
        since, until = _parse_time(params.get("since")), _parse_time(params.get("until"))
        after = tuple(_unb64(params["after"])) if params.get("after") else None
        page, more = [], False
        for cursor, item in self.stream.desc(index, since, until, after):
            if len(page) == limit:
                more = True
                break
            page.append((cursor, item))
        if len(page) > 1 and self.faults.page_fault(network, "truncated_page"):
            page, more = page[: len(page) // 2], True
        cursor = page[-1][0] if page else None
        if len(page) > 2 and self.faults.page_fault(network, "duplicate_items"):
            cursor = page[-3][0]
        return [i for _, i in page], more, list(cursor) if cursor else None

    def _list_page(
        self, network: str, items: list[Any], params: dict[str, str]
    ) -> tuple[list[Any], bool, Any]:
        limit = _int(params, "limit", 25, 1, 100)
        start = int(_unb64(params["after"])) if params.get("after") else 0
        page = items[start : start + limit]
        if len(page) > 1 and self.faults.page_fault(network, "truncated_page"):
            page = page[: len(page) // 2]
        nxt = start + len(page)
        if len(page) > 2 and self.faults.page_fault(network, "duplicate_items"):
            nxt -= 2
        return page, nxt < len(items), (nxt if page else None)

    def _fb_post(self, post: SandboxItem, fields: set[str]) -> dict[str, Any]:
        comments = self.stream.comments(post)
        page_id, number = post.native_id.split("_")
        values: dict[str, Any] = {
            "id": post.native_id,
            "message": post.text,
            "created_time": _graph_time(post.published_at),
            "updated_time": _graph_time(post.published_at),
            "from": {"id": post.author_id, "name": post.author_name},
            "permalink_url": f"https://www.facebook.com/{page_id}/posts/{number}/",
            "status_type": "mobile_status_update",
            "comments": {
                "data": [],
                "summary": {"order": "chronological", "total_count": len(comments), "can_comment": True},
            },  # fmt: skip
            "shares": {"count": _stable(post.native_id) % 5},
        }
        if post.geo:
            values["place"] = {
                "name": "Киров",
                "location": {"latitude": post.geo["lat"], "longitude": post.geo["lon"]},
            }
        return {k: v for k, v in values.items() if k in fields}

    def _fb_comment(self, c: SandboxItem, replies: int, fields: set[str]) -> dict[str, Any]:
        page_id = c.source_id
        values: dict[str, Any] = {
            "id": c.native_id,
            "message": c.text,
            "created_time": _graph_time(c.published_at),
            "from": {"id": c.author_id, "name": c.author_name},
            "like_count": _stable(c.native_id) % 9,
            "comment_count": replies,
            "permalink_url": f"https://www.facebook.com/{page_id}/posts/{c.parent_native_id.split('_')[-1]}/"
            f"?comment_id={c.native_id.split('_')[-1]}",
        }
        if c.reply_to_native_id:
            values["parent"] = {"id": c.reply_to_native_id}
        return {k: v for k, v in values.items() if k in fields}

    def _fb(self, object_id: str, edge: str, params: dict[str, str]) -> dict[str, Any] | None:
        index = self.stream.source("facebook", object_id)
        if index is not None and edge in ("feed", "posts", "published_posts"):
            fields = self._fields(params, ("id", "message", "created_time"))
            posts, more, cursor = self._window_page("facebook", index, params, 100)
            rows = [self._fb_post(p, fields) for p in posts]
            return self._graph_page("facebook", f"{object_id}/{edge}", params, rows, more, cursor)
        if "_" not in object_id:
            return None
        post = self.stream.find_post("facebook", object_id)
        if post is None:
            comment_parent = self._fb_find_comment(object_id)
            if comment_parent is None or edge != "comments":
                return None
            post, parent_id = comment_parent
            comments = self._with_deletions("facebook", self.stream.comments(post))
            roots = _roots(comments)
            level = [c for c in comments if roots[c.native_id] == parent_id]
        elif edge == "":
            return self._fb_post(post, self._fields(params, ("id", "message", "created_time")))
        elif edge == "comments":
            comments = self._with_deletions("facebook", self.stream.comments(post))
            roots = _roots(comments)
            if params.get("filter") == "stream":
                level = comments
            else:
                level = [c for c in comments if roots[c.native_id] is None]
        else:
            return None
        fields = self._fields(params, ("id", "message", "created_time"))
        page, more, cursor = self._list_page("facebook", level, params)
        counts = {c.native_id: sum(1 for x in comments if roots[x.native_id] == c.native_id) for c in page}
        rows = [self._fb_comment(c, counts[c.native_id], fields) for c in page]
        result = self._graph_page("facebook", f"{object_id}/comments", params, rows, more, cursor)
        if "summary" in params and params["summary"] in ("1", "true", "total_count"):
            result["summary"] = {"order": "chronological", "total_count": len(level), "can_comment": True}
        return result

    def _fb_find_comment(self, comment_id: str) -> tuple[SandboxItem, str] | None:
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

    def _ig_media(self, post: SandboxItem, fields: set[str]) -> dict[str, Any]:
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
            "timestamp": _graph_time(post.published_at),
            "username": f"src{post.source_id[-6:]}",
            "owner": {"id": post.source_id},
            "like_count": _stable(post.native_id) % 60,
            "comments_count": len(comments),
            "is_comment_enabled": True,
        }
        return {k: v for k, v in values.items() if k in fields}

    def _ig_comment(
        self, c: SandboxItem, fields: set[str], replies: list[SandboxItem] | None
    ) -> dict[str, Any]:
        values: dict[str, Any] = {
            "id": c.native_id,
            "text": c.text,
            "timestamp": _graph_time(c.published_at),
            "username": c.author_id,
            "from": {"id": str(17_841_400_000_000_000 + _stable(c.author_id)), "username": c.author_id},
            "like_count": _stable(c.native_id) % 9,
            "hidden": False,
            "media": {"id": c.parent_native_id},
        }
        if c.reply_to_native_id:
            values["parent_id"] = c.reply_to_native_id
        row = {k: v for k, v in values.items() if k in fields}
        if replies is not None and "replies" in fields:
            sub = {"id", "text", "timestamp", "username"} | (fields & {"like_count", "from"})
            row["replies"] = {"data": [self._ig_comment(r, sub, None) for r in replies]}
        return row

    def _ig(self, object_id: str, edge: str, params: dict[str, str]) -> dict[str, Any] | None:
        index = self.stream.source("instagram", object_id)
        if index is not None and edge == "media":
            fields = self._fields(params, ("id",))
            posts, more, cursor = self._window_page("instagram", index, params, 100)
            rows = [self._ig_media(p, fields) for p in posts]
            return self._graph_page("instagram", f"{object_id}/media", params, rows, more, cursor)
        post = self.stream.find_post("instagram", object_id)
        if post is not None:
            if edge == "":
                return self._ig_media(post, self._fields(params, ("id", "media_type", "timestamp")))
            if edge != "comments":
                return None
            comments = self._with_deletions("instagram", self.stream.comments(post))
            roots = _roots(comments)
            level = [c for c in comments if roots[c.native_id] is None]
            fields = self._fields(params, ("id", "text", "timestamp"))
            page, more, cursor = self._list_page("instagram", level, params)
            rows = [
                self._ig_comment(c, fields, [r for r in comments if roots[r.native_id] == c.native_id])
                for c in page
            ]
            return self._graph_page("instagram", f"{object_id}/comments", params, rows, more, cursor)
        if edge == "replies":
            found = self._ig_find_comment(object_id)
            if found is None:
                return None
            post, comment = found
            comments = self.stream.comments(post)
            roots = _roots(comments)
            level = [c for c in comments if roots[c.native_id] == comment.native_id]
            fields = self._fields(params, ("id", "text", "timestamp"))
            page, more, cursor = self._list_page("instagram", level, params)
            rows = [self._ig_comment(c, fields, None) for c in page]
            return self._graph_page("instagram", f"{object_id}/replies", params, rows, more, cursor)
        return None

    def _ig_find_comment(self, comment_id: str) -> tuple[SandboxItem, SandboxItem] | None:
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


class _Handler(BaseHTTPRequestHandler):
    app: SandboxServer
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes: without TCP_NODELAY, Nagle's algorithm and the
    # client's delayed ACK add ~40 ms to every keep-alive request.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's signature
        log.debug("sandbox %s - %s", self.address_string(), format % args)

    def _serve(self, method: str) -> None:
        parts = urlsplit(self.path)
        params = dict(parse_qsl(parts.query, keep_blank_values=True))
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        ctype = self.headers.get("Content-Type", "")
        if method == "POST" and "application/x-www-form-urlencoded" in ctype:
            params.update(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
        if self.headers.get("Authorization"):
            params["__authorization"] = self.headers["Authorization"]
        try:
            status, headers, data = self.app.handle(method, parts.path, params, body)
        except Exception:  # noqa: BLE001 - a sandbox bug must answer 500, not kill the thread
            log.exception("sandbox failed on %s %s", method, self.path)
            status, headers, data = (
                500,
                {"Content-Type": "application/json"},
                b'{"error": "sandbox internal error"}',
            )
        try:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            log.debug("client went away before the answer to %s", self.path)

    def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
        self._serve("GET")

    def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
        self._serve("POST")

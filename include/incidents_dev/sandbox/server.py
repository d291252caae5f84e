"""The local HTTP server that serves the generated stream through the five networks' APIs.

One emulator per network (:mod:`~incidents_dev.sandbox.vk`, :mod:`~incidents_dev.sandbox.ok`,
:mod:`~incidents_dev.sandbox.twitter`, :mod:`~incidents_dev.sandbox.facebook`,
:mod:`~incidents_dev.sandbox.instagram`) on a small shared core: this module (HTTP server,
dispatch, admin endpoints, connection environment), :mod:`~incidents_dev.sandbox.core` (token,
permissions, rate limits, request faults), :mod:`~incidents_dev.sandbox.stream` (paged views of
the stream) and :mod:`~incidents_dev.sandbox.faults`.

API base URLs (:meth:`SandboxServer.url_for`): VK ``/vk/method``, OK ``/ok/fb.do``, Twitter/X
``/twitter``, Facebook ``/facebook/v19.0``, Instagram ``/instagram/v19.0``.

Admin: ``GET /_admin/health``, ``GET|POST /_admin/faults`` (JSON :class:`FaultConfig` fields;
``{"replace": true}`` resets the others), ``POST /_admin/now`` (``{"now": ISO}``), ``GET /_admin/stats``.

Items published after the server's ``now`` are not served yet. Walls, Page feeds and media lists
reach back to the start of the generated world (:data:`~incidents_dev.sandbox.generator.WORLD_START`)
whatever the clock; only Twitter/X recent search is limited to 7 days, as the real one is.
"""

from __future__ import annotations

import json
import logging
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from incidents import NETWORKS
from incidents.sources import Source
from incidents_dev.sandbox.core import ApiError, Emulator, parse_time, twitter_time
from incidents_dev.sandbox.facebook import FacebookEmulator
from incidents_dev.sandbox.faults import FaultConfig, FaultInjector, RateLimit, RateLimiter
from incidents_dev.sandbox.generator import DEFAULT_RATE, GeneratorConfig, warm_up
from incidents_dev.sandbox.graph import GRAPH_VERSION
from incidents_dev.sandbox.instagram import InstagramEmulator
from incidents_dev.sandbox.ok import DEFAULT_OK_APP_KEY, DEFAULT_OK_SECRET, OkEmulator, ok_signature
from incidents_dev.sandbox.stream import Stream
from incidents_dev.sandbox.twitter import TwitterEmulator
from incidents_dev.sandbox.vk import VkEmulator

__all__ = ["GRAPH_VERSION", "ApiError", "SandboxServer", "ok_signature"]

log = logging.getLogger(__name__)

DEFAULT_CLIENT_READ_TIMEOUT = 2.0
"""Read timeout (seconds) of the connections from :meth:`SandboxServer.connection_env`."""
TIMEOUT_MARGIN = 0.3
"""A "timeout" fault sleeps at least this much longer than the clients' read timeout."""
PATHS = {
    "vk": "/vk/method",
    "ok": "/ok/fb.do",
    "twitter": "/twitter",
    "facebook": f"/facebook/{GRAPH_VERSION}",
    "instagram": f"/instagram/{GRAPH_VERSION}",
}
EMULATORS: dict[str, type[Emulator]] = {
    "vk": VkEmulator,
    "ok": OkEmulator,
    "twitter": TwitterEmulator,
    "facebook": FacebookEmulator,
    "instagram": InstagramEmulator,
}


class SandboxServer:
    """The five network APIs served from the generated stream (see the module docstring).

    ``now`` fixes the server's clock (None: the wall clock); it is an explicit input so that a
    test's period and its ground truth can be computed for the same instant.
    """

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
        ok_application_key: str = DEFAULT_OK_APP_KEY,
        ok_secret_key: str = DEFAULT_OK_SECRET,
        client_read_timeout: float = DEFAULT_CLIENT_READ_TIMEOUT,
    ) -> None:
        if client_read_timeout <= 0:
            raise ValueError("client_read_timeout must be positive")
        self.config = GeneratorConfig.build(seed, rate_per_source_per_day, sources)
        self._now = now.astimezone(UTC) if now is not None else None
        self.host, self.port = host, port
        self.tokens = {n: f"sandbox-{n}-token" for n in NETWORKS}
        self.tokens.update(tokens or {})
        self.ok_application_key = ok_application_key
        self.ok_secret_key = ok_secret_key
        self.faults = FaultInjector(faults)
        self.limiter = RateLimiter(rate_limits)
        self.stream = Stream(self.config, self.now)
        self.emulators: dict[str, Emulator] = {n: cls(self) for n, cls in EMULATORS.items()}
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
        if isinstance(host, bytes):  # typed str | bytes; an AF_INET server holds a str
            host = host.decode()
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
        # a VK wall's ``count`` covers every post since the world's start: count them once in the
        # background now, so that the first wall.get does not take long enough to look like a timeout
        threading.Thread(target=self._count_walls, name="sandbox-wall-counts", daemon=True).start()
        log.info("sandbox serving at %s (seed %s)", self.base_url, self.config.seed)
        return self.base_url

    def _count_walls(self) -> None:
        for index, source in enumerate(self.config.sources):
            if self._httpd is None:  # stopped meanwhile
                return
            if source.network == "vk" and not source.query:
                self.stream.wall_total(index)

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
        if network not in PATHS:
            raise ValueError(f"unknown network {network!r}")
        return self.base_url + PATHS[network]

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
        for network in NETWORKS:
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

    def next_rate_code(self, codes: tuple[Any, ...]) -> Any:
        """The next of a network's throttling answers, in turn."""
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
        emulator = self.emulators.get(network)
        if emulator is None:
            return 404, {"Content-Type": "application/json"}, b'{"error": "not found"}'
        with self._lock:
            self.requests[network] = self.requests.get(network, 0) + 1
        headers: dict[str, str] = {"Content-Type": "application/json; charset=utf-8"}
        try:
            payload = emulator.handle(path, params, headers)
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
            return 200, {"status": "ok", "now": twitter_time(self.now()), "seed": self.config.seed}
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
                self.set_now(parse_time(data.get("now")))
            except ValueError as exc:
                return 400, {"error": str(exc)}
            return 200, {"now": twitter_time(self.now())}
        if path == "/_admin/stats":
            return 200, {"requests": dict(self.requests), "faults_injected": dict(self.faults.injected)}
        return 404, {"error": f"unknown admin endpoint {path}"}


class _Handler(BaseHTTPRequestHandler):
    app: SandboxServer
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes: without TCP_NODELAY, Nagle's algorithm and the
    # client's delayed ACK add ~40 ms to every keep-alive request.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:  # the stdlib's signature
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
        except Exception:  # a sandbox bug must answer 500, not kill the thread
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

    def do_GET(self) -> None:  # the stdlib's name
        self._serve("GET")

    def do_POST(self) -> None:  # the stdlib's name
        self._serve("POST")

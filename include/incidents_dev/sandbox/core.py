"""What the five network emulators share: the API error, parameter and time helpers, the
request preflight (token, missing permissions, rate limits, injected request faults) and the
:class:`Emulator` base class the network modules derive from."""

from __future__ import annotations

import abc
import base64
import hashlib
import json
import time
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any, Protocol

from incidents_dev.sandbox.faults import FaultInjector, RateLimiter
from incidents_dev.sandbox.generator import GeneratorConfig, SandboxItem
from incidents_dev.sandbox.stream import Stream

MSK = timedelta(hours=3)
DAILY_SECONDS = 86400


class ApiError(Exception):
    """An API answer other than success: status, JSON body (or raw bytes) and headers."""

    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        super().__init__(status)
        self.status = status
        self.body = body
        self.headers = headers or {}


def b64(data: Any) -> str:
    """An opaque cursor: URL-safe base64 of compact JSON."""
    return base64.urlsafe_b64encode(json.dumps(data, separators=(",", ":")).encode()).decode().rstrip("=")


def unb64(token: str) -> Any:
    try:
        return json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (ValueError, json.JSONDecodeError) as exc:
        raise ValueError(f"bad cursor {token!r}") from exc


def parse_time(value: str | None) -> datetime | None:
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


def graph_time(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+0000")


def twitter_time(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def ok_time(value: datetime) -> str:
    return (value.astimezone(UTC) + MSK).strftime("%Y-%m-%d %H:%M:%S")


def int_param(params: dict[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = params.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise ValueError(f"{name} must be an integer") from exc
    return max(low, min(high, value))


def bearer(params: dict[str, str]) -> str:
    """The bearer token of a request (the handler passes the Authorization header as a param)."""
    value = params.get("__authorization", "")
    return value[7:].strip() if value.lower().startswith("bearer ") else ""


@lru_cache(maxsize=1 << 16)
def stable(*parts: object) -> int:
    """A small deterministic number from ``parts`` (likes, shares and the like)."""
    return int.from_bytes(hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=4).digest(), "big")


def roots(comments: list[SandboxItem]) -> dict[str, str | None]:
    """Comment id -> id of its top-level comment (None for top-level ones)."""
    by_id = {c.native_id: c for c in comments}
    out: dict[str, str | None] = {}
    for c in comments:
        parent = c.reply_to_native_id
        while parent is not None and by_id[parent].reply_to_native_id is not None:
            parent = by_id[parent].reply_to_native_id
        out[c.native_id] = parent
    return out


class Host(Protocol):
    """What an emulator uses of the server that hosts it (:class:`~incidents_dev.sandbox.server.SandboxServer`)."""

    config: GeneratorConfig
    stream: Stream
    faults: FaultInjector
    limiter: RateLimiter
    tokens: dict[str, str]
    ok_application_key: str
    ok_secret_key: str

    def now(self) -> datetime: ...

    def url_for(self, network: str) -> str: ...

    def timeout_fault_seconds(self) -> float: ...

    def next_rate_code(self, codes: tuple[Any, ...]) -> Any: ...


class Emulator(abc.ABC):
    """One network's API on top of the server's stream, faults and rate limiter.

    Subclasses set :attr:`network` and implement :meth:`handle` (one request -> JSON payload, or
    raise :class:`ApiError`) and :meth:`errors` (the network's own answers for the preflight).
    """

    network: str = ""

    def __init__(self, server: Host) -> None:
        self.server = server

    @property
    def stream(self) -> Stream:
        return self.server.stream

    @property
    def config(self) -> GeneratorConfig:
        return self.server.config

    @property
    def faults(self) -> FaultInjector:
        return self.server.faults

    @abc.abstractmethod
    def handle(self, path: str, params: dict[str, str], headers: dict[str, str]) -> Any:
        """The network's answer to one request (raises ApiError for an error answer)."""

    def preflight(self, token: str, errors: dict[str, Any], headers: dict[str, str]) -> None:
        """Token, missing permission, rate limits and request faults; raises ApiError.

        ``errors``: ``auth()``, ``permission(code)``, ``rate(remaining, reset, injected)``
        (retryable throttling), ``daily()`` (the daily quota is used up), ``server()`` and
        ``ok_headers(remaining, reset)``.
        """
        network = self.network
        latency = self.faults.config.latency_seconds
        if latency > 0:
            time.sleep(latency)
        if not token or token != self.server.tokens[network] or self.faults.token_expired(network):
            raise errors["auth"]()
        code = self.faults.permission_error(network)
        if code is not None:
            raise errors["permission"](code)
        allowed, remaining, reset = self.server.limiter.hit(network, token)
        if not allowed:
            raise errors["rate"](remaining, reset, False)
        fault = self.faults.request_fault(network)
        if fault == "timeout":
            time.sleep(self.server.timeout_fault_seconds())
        elif fault == "rate_limit":
            raise errors["rate"](0, time.time() + 1, True)
        elif fault == "daily_limit":
            raise errors["daily"]()
        elif fault == "server_error":
            raise errors["server"]()
        elif fault == "malformed_json":
            headers["__malformed"] = "1"  # the body of this answer gets cut in half
        errors["ok_headers"](remaining, reset)

    def gone(self, source_id: str) -> str | None:
        """How the source is gone (``deleted``/``banned``/``private``), or None."""
        return self.faults.gone(self.network, source_id)

    def with_deletions(self, comments: list[SandboxItem]) -> list[SandboxItem]:
        """The ``deleted_comments`` fault: about a third of the comments deleted just now (VK and
        OK list them as deleted stubs, the Graph APIs leave them out)."""
        if not comments or not self.faults.page_fault(self.network, "deleted_comments"):
            return comments
        out = []
        for c in comments:
            if stable(c.native_id, "del") % 3 == 0 and not c.deleted:
                if self.network not in ("vk", "ok"):
                    continue
                c = SandboxItem(
                    **{**{f: getattr(c, f) for f in c.__dataclass_fields__}, "deleted": True, "text": ""}
                )
            out.append(c)
        return out

"""Fault injection and rate limiting for the sandbox server.

:class:`FaultConfig` holds per-request probabilities of each fault kind (drawn from a seeded
generator, so a run is reproducible for a given request order) and explicit toggles (a
network's token expired, a fault forced on the next N requests). The server consults one
:class:`FaultInjector`; tests change it at runtime with ``POST /_admin/faults``.
"""

from __future__ import annotations

import random
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from incidents import NETWORKS

TRANSIENT_FAULTS: tuple[str, ...] = ("rate_limit", "server_error", "timeout", "malformed_json")
"""Faults that fail one request; a retry can succeed. ``rate_limit`` is retryable throttling only
(VK 6/9, OK 8, Twitter/X 429 resetting in a second or two, Graph 4/17/32/613)."""
QUOTA_FAULTS: tuple[str, ...] = ("daily_limit",)
"""Faults that end the collection for the day: VK 29, OK 11, Twitter/X usage cap (429
``usage-capped``), Graph 4 with ``estimated_time_to_regain_access`` of a day."""
REQUEST_FAULTS: tuple[str, ...] = TRANSIENT_FAULTS + QUOTA_FAULTS
"""Faults decided per API request (:meth:`FaultInjector.request_fault`)."""
PAGE_FAULTS: tuple[str, ...] = ("truncated_page", "duplicate_items")
"""Faults that change a successful page without changing the data (short page, overlap)."""
DATA_FAULTS: tuple[str, ...] = ("deleted_comments",)
"""Faults that change what is served (comments deleted before they are fetched)."""
FAULT_KINDS: tuple[str, ...] = REQUEST_FAULTS + PAGE_FAULTS + DATA_FAULTS + ("expired_token",)
PROBABILITIES: tuple[str, ...] = REQUEST_FAULTS + PAGE_FAULTS + DATA_FAULTS
"""The :class:`FaultConfig` fields that are per-request/per-page probabilities."""
PERMISSION_CODES: dict[str, tuple[int, ...]] = {
    "vk": (7, 15, 27, 28, 30),
    "ok": (10,),
    "twitter": (403,),
    "facebook": (10, 100, *range(200, 300)),
    "instagram": (10, 100, *range(200, 300)),
}
"""The error codes a token lacking a permission gets from each real API (see the emulators):
VK 7 "Permission to perform this action is denied", 15 "Access denied: no access to call this
method", 27/28 (group/service token where a user token is needed), 30 "This profile is private";
OK 10 ``PERMISSION_DENIED``; Twitter/X HTTP 403 ``client-forbidden``; Graph 10, 100 "missing
permission" (no subcode) and 200-299."""
GONE_STATES: tuple[str, ...] = ("deleted", "banned", "private")
"""How a source can be gone (:attr:`FaultConfig.gone_sources`)."""


@dataclass
class FaultConfig:
    """What the sandbox should break, and how often."""

    rate_limit: float = 0.0
    server_error: float = 0.0
    timeout: float = 0.0
    malformed_json: float = 0.0
    truncated_page: float = 0.0
    duplicate_items: float = 0.0
    deleted_comments: float = 0.0
    daily_limit: float = 0.0
    """Probability that a request answers "daily limit reached" (not part of :meth:`transient`)."""
    seed: int = 0
    latency_seconds: float = 0.0
    """Added to every API answer (a slow API, e.g. to catch a task in the middle of its work)."""
    timeout_seconds: float = 2.0
    """How long a "timeout" request sleeps at least before answering; the server sleeps past the
    read timeout it hands the clients in ``connection_env`` in any case, so a timeout is a timeout."""
    expired_tokens: list[str] = field(default_factory=list)
    """Networks whose token is treated as expired/invalid (VK 5, OK 102, Twitter/X 401, Graph 190)."""
    networks: list[str] | None = None
    """Networks the probabilistic faults apply to (None: all)."""
    force: dict[str, int] = field(default_factory=dict)
    """Fault kind -> number of next API requests that get it for sure."""
    permission_errors: dict[str, int] = field(default_factory=dict)
    """Network -> error code (one of :data:`PERMISSION_CODES`): the network's token lacks a
    permission, so every data request gets that real permission error (after the token itself
    was accepted)."""
    gone_sources: dict[str, str] = field(default_factory=dict)
    """``"<network>:<source id>"`` -> ``deleted`` | ``banned`` | ``private``: the source is gone,
    reported as that network's API reports it (VK 15/18/30, OK 300/160, Graph 803 or 100 subcode 33).
    Twitter/X sources are searches and cannot be gone."""

    @classmethod
    def transient(cls, rate: float, seed: int = 0, timeout_seconds: float = 0.5) -> FaultConfig:
        """``rate`` of the requests fail transiently (timeouts kept rare: they are slow), and as
        many of the pages are truncated or overlap the previous one. Rate limits here are the
        retryable kind only; daily quotas are the separate ``daily_limit`` fault."""
        return cls(
            rate_limit=rate * 0.35,
            server_error=rate * 0.35,
            malformed_json=rate * 0.25,
            timeout=rate * 0.05,
            truncated_page=rate,
            duplicate_items=rate,
            seed=seed,
            timeout_seconds=timeout_seconds,
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any], base: FaultConfig | None = None) -> FaultConfig:
        """Build from JSON (unknown keys are an error); keys missing keep ``base``'s values."""
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown fault settings: {sorted(unknown)}; known: {sorted(known)}")
        values = asdict(base) if base is not None else {}
        values.update(data)
        config = cls(**values)
        config.validate()
        return config

    def validate(self) -> None:
        """A clear ValueError for the first setting out of its range."""
        self._validate_probabilities()
        self._validate_networks_and_counts()
        self._validate_permission_errors()
        self._validate_gone_sources()

    def _validate_probabilities(self) -> None:
        for kind in PROBABILITIES:
            value = getattr(self, kind)
            if not 0.0 <= float(value) <= 1.0:
                raise ValueError(f"fault probability {kind}={value!r} is not in [0, 1]")
        if sum(float(getattr(self, kind)) for kind in REQUEST_FAULTS) > 1.0:
            raise ValueError(f"the request fault probabilities {REQUEST_FAULTS} add up to more than 1")

    def _validate_networks_and_counts(self) -> None:
        for network in list(self.expired_tokens) + list(self.networks or []):
            if network not in NETWORKS:
                raise ValueError(f"unknown network {network!r}")
        for kind, count in self.force.items():
            if kind not in FAULT_KINDS:
                raise ValueError(f"unknown fault kind {kind!r}; known: {FAULT_KINDS}")
            if int(count) < 0:
                raise ValueError(f"force count of {kind} is negative")
        if self.timeout_seconds < 0:
            raise ValueError("timeout_seconds is negative")

    def _validate_permission_errors(self) -> None:
        for network, code in self.permission_errors.items():
            if network not in NETWORKS:
                raise ValueError(f"unknown network {network!r} in permission_errors")
            if int(code) not in PERMISSION_CODES[network]:
                raise ValueError(
                    f"{network} answers a missing permission with one of {PERMISSION_CODES[network]}, "
                    f"not {code!r}"
                )

    def _validate_gone_sources(self) -> None:
        for key, state in self.gone_sources.items():
            network, _, source_id = str(key).partition(":")
            if network not in NETWORKS or not source_id:
                raise ValueError(f"gone_sources key {key!r} is not '<network>:<source id>'")
            if network == "twitter":
                raise ValueError("Twitter/X sources are searches; a search cannot be gone")
            if state not in GONE_STATES:
                raise ValueError(f"gone_sources[{key!r}] = {state!r} is not one of {GONE_STATES}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class FaultInjector:
    """Thread-safe fault decisions for the server."""

    def __init__(self, config: FaultConfig | None = None) -> None:
        self._lock = threading.Lock()
        self._config = config or FaultConfig()
        self._config.validate()
        self._rng = random.Random(self._config.seed)
        self.injected: dict[str, int] = {}

    @property
    def config(self) -> FaultConfig:
        return self._config

    def update(self, data: dict[str, Any], replace: bool = False) -> FaultConfig:
        with self._lock:
            new = FaultConfig.from_dict(data, None if replace else self._config)
            if new.seed != self._config.seed or replace:
                self._rng = random.Random(new.seed)
            self._config = new
            return new

    def _count(self, kind: str) -> None:
        self.injected[kind] = self.injected.get(kind, 0) + 1

    def token_expired(self, network: str) -> bool:
        with self._lock:
            if network in self._config.expired_tokens:
                self._count("expired_token")
                return True
            if self._config.force.get("expired_token", 0) > 0:
                self._config.force["expired_token"] -= 1
                self._count("expired_token")
                return True
            return False

    def request_fault(self, network: str) -> str | None:
        """The fault (if any) of the next API request of ``network``: one of :data:`REQUEST_FAULTS`."""
        with self._lock:
            for kind in REQUEST_FAULTS:
                if self._config.force.get(kind, 0) > 0:
                    self._config.force[kind] -= 1
                    self._count(kind)
                    return kind
            if self._config.networks is not None and network not in self._config.networks:
                return None
            roll = self._rng.random()
            for kind in REQUEST_FAULTS:
                roll -= float(getattr(self._config, kind))
                if roll < 0:
                    self._count(kind)
                    return kind
            return None

    def page_fault(self, network: str, kind: str) -> bool:
        """Whether this page gets ``kind`` (``truncated_page``, ``duplicate_items``, ``deleted_comments``)."""
        with self._lock:
            if self._config.force.get(kind, 0) > 0:
                self._config.force[kind] -= 1
                self._count(kind)
                return True
            if self._config.networks is not None and network not in self._config.networks:
                return False
            if self._rng.random() < float(getattr(self._config, kind)):
                self._count(kind)
                return True
            return False

    def overlap(self, network: str, room: int) -> int:
        """The ``duplicate_items`` fault: how many already served items the next page repeats
        (0: none). Between 2 and ``room`` (the items a cursor can step back and still advance),
        so that now and then the next page holds nothing new although more follows."""
        if room < 2 or not self.page_fault(network, "duplicate_items"):
            return 0
        with self._lock:
            return self._rng.randint(2, room)

    def timeout_seconds(self) -> float:
        return self._config.timeout_seconds

    def permission_error(self, network: str) -> int | None:
        """The permission error code every data request of ``network`` gets now, if any."""
        with self._lock:
            code = self._config.permission_errors.get(network)
            if code is not None:
                self._count("permission_error")
            return None if code is None else int(code)

    def gone(self, network: str, source_id: str) -> str | None:
        """How the source is gone (``deleted``, ``banned``, ``private``), or None."""
        with self._lock:
            state = self._config.gone_sources.get(f"{network}:{source_id}")
            if state is not None:
                self._count("gone_source")
            return state


@dataclass(frozen=True)
class RateLimit:
    """At most ``limit`` requests per ``window_seconds`` per token."""

    limit: int
    window_seconds: float


DEFAULT_RATE_LIMITS: dict[str, RateLimit] = {
    "vk": RateLimit(60, 1.0),
    "ok": RateLimit(60, 1.0),
    "twitter": RateLimit(450, 60.0),
    "facebook": RateLimit(600, 60.0),
    "instagram": RateLimit(600, 60.0),
}
"""Like the real limits (VK 3/s, Twitter/X 450/15 min, Graph 200/h per user) but scaled up for tests."""


class RateLimiter:
    """Sliding-window request counter per (network, token)."""

    def __init__(self, limits: dict[str, RateLimit] | None = None) -> None:
        self.limits = dict(DEFAULT_RATE_LIMITS)
        self.limits.update(limits or {})
        self._lock = threading.Lock()
        self._seen: dict[tuple[str, str], deque[float]] = {}

    def hit(self, network: str, token: str) -> tuple[bool, int, float]:
        """Record a request; returns (allowed, remaining, reset epoch seconds)."""
        limit = self.limits[network]
        now = time.time()
        with self._lock:
            seen = self._seen.setdefault((network, token), deque())
            while seen and seen[0] <= now - limit.window_seconds:
                seen.popleft()
            reset = (seen[0] if seen else now) + limit.window_seconds
            if len(seen) >= limit.limit:
                return False, 0, reset
            seen.append(now)
            return True, limit.limit - len(seen), reset

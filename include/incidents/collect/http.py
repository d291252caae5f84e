"""The HTTP layer of the network clients: timeouts, retries with backoff, rate-limit pauses.

:class:`HttpClient` wraps a :class:`requests.Session`. Each call hands it an ``interpret``
function (the network's error mapping) that turns ``(status, headers, body)`` into decoded
JSON or raises a typed error from :mod:`incidents.collect.errors`. Transient errors are retried
up to ``max_attempts`` times with exponential backoff and full jitter
(``sleep = random() * min(cap, base * 2**(attempt-1))``); a :class:`RateLimited` error that
says how long to wait (``Retry-After``, Twitter/X ``x-rate-limit-reset``, Graph
``estimated_time_to_regain_access``) is honoured exactly instead. After a successful answer an
optional ``throttle`` hook reads the rate-limit headers (Twitter/X ``x-rate-limit-remaining``,
Graph ``X-App-Usage`` / ``X-Business-Use-Case-Usage``) and may pause before the next request. A rate
limit that asks to wait longer than ``max_retry_wait`` (a used-up quota period) becomes
:class:`DailyLimitReached`: the collection stops cleanly and resumes in the next run.

Sleep, clock and random source are injectable so tests never really sleep. Nothing logged or
raised here contains a token: ``access_token``/``password``/``sig``-style parameters are
redacted from URLs and messages.
"""

from __future__ import annotations

import email.utils
import logging
import random
import re
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import requests

from incidents.collect.errors import DailyLimitReached, RateLimited, TransientError

log = logging.getLogger(__name__)

SECRET_PARAMS = frozenset(
    {"access_token", "password", "client_secret", "application_secret_key", "session_secret_key", "sig"}
)
"""Query/form parameters never written to logs, errors or the landing area."""

_SECRET_RE = re.compile(
    r"(?i)\b(" + "|".join(sorted(SECRET_PARAMS)) + r")=([^&\s'\"]+)",
)
_BEARER_RE = re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=%-]+")

Interpret = Callable[[int, Mapping[str, str], bytes], Any]
Throttle = Callable[[Mapping[str, str]], float | None]


def redact_text(text: str) -> str:
    """Replace the values of secret parameters and bearer tokens in any text by ``***``."""
    return _BEARER_RE.sub(r"\1***", _SECRET_RE.sub(r"\1=***", text))


def redact_params(params: Mapping[str, Any] | None) -> dict[str, Any]:
    """A copy of request parameters without the secret ones (for logs and the landing area)."""
    return {k: v for k, v in (params or {}).items() if k not in SECRET_PARAMS}


def redact_url(url: str) -> str:
    """The URL with secret query parameters removed."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in SECRET_PARAMS]
    return urlunsplit(parts._replace(query=urlencode(query)))


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - now)


class HttpClient:
    """A requests session with timeouts, retries, backoff and rate-limit pauses, for one network."""

    def __init__(
        self,
        network: str,
        *,
        session: requests.Session | None = None,
        connect_timeout: float = 10.0,
        read_timeout: float = 60.0,
        max_attempts: int = 5,
        backoff_base: float = 1.0,
        backoff_cap: float = 60.0,
        max_retry_wait: float = 900.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
        rand: Callable[[], float] = random.random,
        headers: Mapping[str, str] | None = None,
        throttle: Throttle | None = None,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.network = network
        self.session = session or requests.Session()
        self.timeout = (connect_timeout, read_timeout)
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.max_retry_wait = max_retry_wait
        self.sleep = sleep
        self.clock = clock
        self.rand = rand
        self.headers = dict(headers or {})
        self.throttle = throttle
        self._pause_until = 0.0
        self.requests_made = 0
        self.retries = 0

    def backoff(self, attempt: int) -> float:
        """Full-jitter exponential backoff before retry number ``attempt`` (1-based)."""
        return self.rand() * min(self.backoff_cap, self.backoff_base * 2 ** (attempt - 1))

    def _wait_for_pause(self) -> None:
        now = self.clock()
        if self._pause_until > now:
            delay = self._pause_until - now
            log.info("%s: pausing %.1fs for the rate limit", self.network, delay)
            self.sleep(delay)

    def call(
        self,
        method: str,
        url: str,
        *,
        interpret: Interpret,
        params: Mapping[str, Any] | None = None,
        data: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        """Send the request, retrying transient failures; returns what ``interpret`` returns."""
        shown = redact_url(url)
        all_headers = {**self.headers, **(headers or {})}
        last: TransientError | None = None
        for attempt in range(1, self.max_attempts + 1):
            self._wait_for_pause()
            self.requests_made += 1
            try:
                response = self.session.request(
                    method, url, params=params, data=data, headers=all_headers, timeout=self.timeout
                )
            except (requests.Timeout, requests.ConnectionError) as exc:
                kind = "timeout" if isinstance(exc, requests.Timeout) else "connection"
                last = TransientError(
                    self.network, kind, f"{type(exc).__name__} on {shown}: {redact_text(str(exc))[:300]}"
                )
            else:
                try:
                    result = interpret(response.status_code, response.headers, response.content)
                except TransientError as exc:
                    last = exc
                else:
                    if self.throttle is not None:
                        pause = self.throttle(response.headers)
                        if pause and pause > 0:
                            self._pause_until = max(self._pause_until, self.clock() + pause)
                    return result
            if attempt == self.max_attempts:
                break
            retry_after = last.retry_after if isinstance(last, RateLimited) else None
            if retry_after is not None:
                if retry_after > self.max_retry_wait:
                    log.warning(
                        "%s: rate limited for %.0fs (more than %.0fs), giving up on %s",
                        self.network,
                        retry_after,
                        self.max_retry_wait,
                        shown,
                    )
                    raise DailyLimitReached(
                        self.network,
                        last.code,
                        f"{last.message} (the API asks to wait {retry_after:.0f}s, more than "
                        f"max_retry_wait {self.max_retry_wait:.0f}s)",
                    ) from last
                delay = retry_after
            else:
                delay = self.backoff(attempt)
            self.retries += 1
            log.warning(
                "%s: %s on %s; retry %d/%d in %.2fs",
                self.network,
                redact_text(str(last)),
                shown,
                attempt,
                self.max_attempts - 1,
                delay,
            )
            self.sleep(delay)
        assert last is not None
        raise last

"""Typed errors of the network clients.

Every answer of a network API that is not a usable page becomes one of these, whatever
the network's own error format (VK and OK put errors inside HTTP 200, Twitter/X uses
problem-details bodies with HTTP status codes, the Graph API an ``error`` envelope):

* :class:`TransientError`: retry with backoff (5xx, timeouts, VK 1/10, OK 2, Graph 1/2);
  :class:`RateLimited` (HTTP 429, VK 6/9, OK 8, Graph 4/17/32/613) and
  :class:`MalformedResponse` (non-JSON or truncated body) are transient too.
* :class:`DailyLimitReached` (VK 29, OK 11, Twitter/X 429 ``usage-capped``, any rate limit asking
  to wait longer than ``max_retry_wait``): stop the collection cleanly, resume next run.
* :class:`AuthError` (VK 5, OK 102/104, Graph 190, Twitter/X 401): fail fast, naming the
  connection and never the token.
* :class:`SourceUnavailable` (VK 7/15/18/30, OK 160/300, Graph 100 "does not exist", Twitter/X 403):
  skip that source with the logged reason.
* :class:`WindowNotAvailable`: the API cannot serve the requested window (Twitter/X recent
  search reaches back 7 days only).
"""

from __future__ import annotations


class ApiError(Exception):
    """An API answer that is not a usable page."""

    def __init__(self, network: str, code: int | str | None, message: str) -> None:
        self.network = network
        self.code = code
        self.message = message
        super().__init__(
            f"{network} API error {code}: {message}" if code is not None else f"{network}: {message}"
        )


class TransientError(ApiError):
    """A temporary failure: the request may succeed when retried after a pause."""


class RateLimited(TransientError):
    """The API asks us to slow down; ``retry_after`` (seconds) when the API says how long."""

    def __init__(
        self, network: str, code: int | str | None, message: str, retry_after: float | None = None
    ) -> None:
        super().__init__(network, code, message)
        self.retry_after = retry_after


class MalformedResponse(TransientError):
    """The body is not the JSON the API documents (non-JSON, truncated, wrong shape)."""


class DailyLimitReached(ApiError):
    """The daily (or per-period) quota is used up: stop cleanly and resume in the next run."""


class AuthError(ApiError):
    """The credentials were refused; fix the connection (the token is never part of the message)."""

    def __init__(
        self, network: str, code: int | str | None, message: str, conn_id: str | None = None
    ) -> None:
        self.conn_id = conn_id
        where = f" (connection {conn_id!r})" if conn_id else ""
        super().__init__(network, code, message + where)


class SourceUnavailable(ApiError):
    """One source cannot be read (private, deleted, blocked, protected): skip it with this reason."""


class WindowNotAvailable(ApiError):
    """The requested time window is outside what this API/connection can serve."""

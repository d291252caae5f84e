"""Typed errors of the network clients.

Every answer of a network API that is not a usable page becomes one of these, whatever
the network's own error format (VK and OK put errors inside HTTP 200, Twitter/X uses
problem-details bodies with HTTP status codes, the Graph API an ``error`` envelope). The
per-network tables live next to each client (``vk.ERRORS``, ``ok.ERRORS``,
``graph.error_for``, ``twitter.make_interpret``); :class:`ErrorTable` is the shared shape of the
in-body code tables.

* :class:`TransientError`: retry with backoff (5xx, timeouts, VK 1/10, OK 1/2, Graph 1/2);
  :class:`RateLimited` (HTTP 429, VK 6/9, OK 8, Graph 4/17/32/613) and
  :class:`MalformedResponse` (non-JSON or truncated body) are transient too. One that is still
  failing after the last attempt escapes as is: the retries are exhausted.
* :class:`DailyLimitReached` (VK 29, OK 11, Twitter/X 429 ``usage-capped``, any rate limit asking
  to wait longer than ``max_retry_wait``): stop the collection cleanly, resume next run.
* :class:`AuthError` (VK 5, OK 101-104, Graph 190/102/463/467, Twitter/X 401): the API refuses the
  token; fail fast, naming the connection and never the token.
* :class:`PermissionMissing` (an :class:`AuthError`: VK 7/15/30/203, OK 10 ``PERMISSION_DENIED``
  and 200 ``PARAM_PERMISSION``, Graph 10, 200-299 and 100 "missing permission(s)", Twitter/X 403
  ``client-forbidden``): the token is valid but lacks a permission; fail fast naming the
  connection and the permission.
* :class:`SourceUnavailable` (VK 18/19, VK 15 "blocked"/"deleted", OK 160/300/455, Graph 803,
  Twitter/X 403 and ``resource-not-found``): the API says this source is gone (deleted, banned,
  blocked); skip that source and record the reason.
* :class:`ManualActionRequired` (VK 14 captcha, 17 validation, 24 confirmation; OK 7
  ``ACTION_BLOCKED``): a person has to act on the account before collection can go on.
* :class:`WindowNotAvailable`: the API cannot serve the requested window (Twitter/X recent
  search reaches back 7 days only).
* :class:`WindowIncomplete`: the API says there is more data but its cursor or offset stopped
  advancing; the window fails (and is retried), it never completes with data missing.
* :class:`AllSourcesSkipped`: every source of the window was skipped; a window that collected
  nothing because nothing was readable is a failure, not an empty success.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any


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
        self.bare_message = message
        where = f" (connection {conn_id!r})" if conn_id else ""
        super().__init__(network, code, message + where)

    def for_connection(self, conn_id: str) -> AuthError:
        """The same error naming the connection ``conn_id``."""
        return type(self)(self.network, self.code, self.bare_message, conn_id=conn_id)


class PermissionMissing(AuthError):
    """The token works but lacks a permission (scope, feature, membership) this collection needs.

    ``permission`` names what is missing when the API says so (else what the client needs); the
    message names the connection and the permission.
    """

    def __init__(
        self,
        network: str,
        code: int | str | None,
        message: str,
        conn_id: str | None = None,
        *,
        permission: str | None = None,
    ) -> None:
        self.conn_id = conn_id
        self.bare_message = message
        self.permission = permission
        who = f"connection {conn_id!r}" if conn_id else "the connection"
        lacks = f"{who} lacks the permission: {permission}" if permission else f"{who} lacks a permission"
        ApiError.__init__(self, network, code, f"{message} ({lacks})")

    def for_connection(self, conn_id: str) -> PermissionMissing:
        return PermissionMissing(
            self.network, self.code, self.bare_message, conn_id=conn_id, permission=self.permission
        )


class SourceUnavailable(ApiError):
    """The API says this source is gone (deleted, banned, blocked): skip it, recording the reason."""


class ManualActionRequired(ApiError):
    """The API wants a person to act (captcha, account validation, confirmation) before going on."""


class WindowNotAvailable(ApiError):
    """The requested time window is outside what this API/connection can serve."""


class WindowIncomplete(ApiError):
    """The API says there is more, but its paging stopped advancing: the window is not complete."""


class AllSourcesSkipped(ApiError):
    """Every source of the window was skipped; ``skipped`` lists ``{"source_id", "reason"}``."""

    def __init__(self, network: str, skipped: list[dict[str, str]]) -> None:
        self.skipped = skipped
        reasons = "; ".join(f"{s['source_id']}: {s['reason']}" for s in skipped[:5])
        more = f" (and {len(skipped) - 5} more)" if len(skipped) > 5 else ""
        super().__init__(
            network, "all_sources_skipped", f"every source of the window was skipped: {reasons}{more}"
        )


@dataclass(frozen=True)
class ErrorTable:
    """One network's in-body error codes → typed errors (VK and OK answer errors inside HTTP 200).

    ``permissions`` maps a permission error code to the permission the client needs; ``gone_if``
    lists message fragments that turn a permission code into :class:`SourceUnavailable` (VK 15
    "group is blocked" is a gone source, other 15s are missing access).
    """

    network: str
    transient: Collection[int] = ()
    rate: Collection[int] = ()
    daily: Collection[int] = ()
    auth: Collection[int] = ()
    permissions: dict[int, str] = field(default_factory=dict)
    gone: Collection[int] = ()
    gone_if: tuple[str, ...] = ()
    manual: Collection[int] = ()

    def error(self, code: Any, message: str) -> ApiError:
        """The typed error of ``code`` with the API's ``message``."""
        try:
            number = int(code)
        except (TypeError, ValueError):
            number = -1
        if number in self.rate:
            return RateLimited(self.network, number, message)
        if number in self.transient:
            return TransientError(self.network, number, message)
        if number in self.daily:
            return DailyLimitReached(self.network, number, message)
        if number in self.auth:
            return AuthError(self.network, number, message)
        if number in self.permissions:
            lowered = message.lower()
            if any(fragment in lowered for fragment in self.gone_if):
                return SourceUnavailable(self.network, number, message)
            return PermissionMissing(self.network, number, message, permission=self.permissions[number])
        if number in self.gone:
            return SourceUnavailable(self.network, number, message)
        if number in self.manual:
            return ManualActionRequired(self.network, number, message)
        return ApiError(self.network, code, message)

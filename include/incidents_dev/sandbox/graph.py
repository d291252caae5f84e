"""What the Facebook and Instagram emulators share: the Graph API error envelope, usage headers,
``fields`` parsing and cursor paging (``paging.cursors`` / ``paging.next``).

A token lacking a permission (``FaultConfig.permission_errors``) gets, on every request, the real
Graph answers: 10 "(#10) This endpoint requires the 'pages_read_engagement' permission…" (HTTP
403), 100 "(#100) Object does not exist, cannot be loaded due to missing permission or reviewable
feature…" without a subcode (as recorded in ``tests/fixtures/api/facebook``), or 200-299
"Permissions error" (HTTP 403). A gone object (``FaultConfig.gone_sources``): a deleted Page or
account answers 803 "Some of the aliases you requested do not exist"; a banned, unpublished or
restricted one 100 subcode 33 "Unsupported get request. Object with ID '…' does not exist, cannot
be loaded due to missing permissions, or does not support this operation", as the real API does
for anything it cannot show to this token (the same answer a token without access gets: the API
does not tell the two apart).
"""

from __future__ import annotations

import abc
import base64
import hashlib
import json
from typing import Any
from urllib.parse import urlencode

from incidents_dev.sandbox.core import (
    DAILY_SECONDS,
    ApiError,
    Emulator,
    b64,
    bearer,
    int_param,
    parse_time,
    unb64,
)
from incidents_dev.sandbox.generator import SandboxItem

GRAPH_VERSION = "v19.0"


def trace_id(seed: str) -> str:
    """A ``fbtrace_id`` like the real ones (deterministic here)."""
    return base64.urlsafe_b64encode(hashlib.md5(seed.encode()).digest()[:12]).decode()


def graph_error(
    status: int,
    code: int,
    message: str,
    subcode: int | None = None,
    kind: str = "OAuthException",
    trace: str = "",
) -> ApiError:
    """A Graph error envelope ``{"error": {"message", "type", "code", "error_subcode", "fbtrace_id"}}``."""
    body: dict[str, Any] = {
        "message": message,
        "type": kind,
        "code": code,
        "fbtrace_id": trace or trace_id(message),
    }
    if subcode:
        body["error_subcode"] = subcode
    return ApiError(status, {"error": body})


class GraphEmulator(Emulator):
    """The Graph API frame; subclasses implement :meth:`route` (None: no such object or edge)."""

    permission_messages: dict[int, str] = {}

    @abc.abstractmethod
    def route(self, object_id: str, edge: str, params: dict[str, str]) -> dict[str, Any] | None:
        """The answer for ``/{object_id}/{edge}`` (None: no such object or edge)."""

    def handle(self, path: str, params: dict[str, str], headers: dict[str, str]) -> Any:
        network = self.network
        trace = trace_id(f"{path}{params}")

        def error(
            status: int, code: int, message: str, subcode: int | None = None, kind: str = "OAuthException"
        ) -> ApiError:
            return graph_error(status, code, message, subcode, kind, trace)

        def rate(remaining: int, reset: float, injected: bool) -> ApiError:
            usage = json.dumps({"call_count": 100, "total_cputime": 40, "total_time": 60})
            codes = (
                (4, "(#4) Application request limit reached"),
                (17, "(#17) User request limit reached"),
                (32, "(#32) Page request limit reached"),
                (613, "(#613) Calls to this api have exceeded the rate limit."),
            )
            code, message = self.server.next_rate_code(codes) if injected else codes[0]
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

        def permission(code: int) -> ApiError:
            if code == 100:
                return error(400, 100, self.permission_messages[100])
            if code == 10:
                return error(403, 10, self.permission_messages[10])
            return error(403, code, f"(#{code}) Permissions error")

        def ok_headers(remaining: int, reset: float) -> None:
            limit = self.server.limiter.limits[network].limit
            used = int(100 * (limit - remaining) / max(1, limit))
            headers["X-App-Usage"] = json.dumps(
                {"call_count": used, "total_cputime": used // 3, "total_time": used // 2}
            )

        token = params.get("access_token") or bearer(params)
        self.preflight(
            token,
            {
                "auth": lambda: error(400, 190, "Error validating access token: Session has expired.", 463),
                "permission": permission,
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
            raise error(400, 100, "Unsupported get request.", 33, "GraphMethodException")
        object_id, edge = parts[0], (parts[1] if len(parts) == 2 else "")
        try:
            result = self.route(object_id, edge, params)
        except ValueError as exc:
            raise error(400, 100, f"(#100) {exc}") from exc
        if result is None:
            raise self.unsupported(object_id)
        return result

    def unsupported(self, object_id: str) -> ApiError:
        """The answer for an object the API cannot show (absent, deleted, unpublished, private)."""
        return graph_error(
            400, 100,
            f"Unsupported get request. Object with ID '{object_id}' does not exist, cannot be loaded due to "
            "missing permissions, or does not support this operation. Please read the Graph API "
            "documentation at https://developers.facebook.com/docs/graph-api", 33, "GraphMethodException",
        )  # fmt: skip

    def check_gone(self, source_id: str, object_id: str) -> None:
        state = self.gone(source_id)
        if state == "deleted":
            raise graph_error(400, 803, f"(#803) Some of the aliases you requested do not exist: {object_id}")
        if state is not None:
            raise self.unsupported(object_id)

    def page(
        self, base: str, params: dict[str, str], rows: list[dict[str, Any]], more: bool, cursor: Any
    ) -> dict[str, Any]:
        result: dict[str, Any] = {"data": rows}
        if rows or params.get("after"):
            paging: dict[str, Any] = {
                "cursors": {"before": b64(["before", params.get("after", "")]), "after": ""}
            }
            if cursor is not None:
                paging["cursors"]["after"] = b64(cursor)
            query = {k: v for k, v in params.items() if not k.startswith("__")}
            url = self.server.url_for(self.network)
            if more and cursor is not None:
                paging["next"] = f"{url}/{base}?{urlencode({**query, 'after': b64(cursor)})}"
            if params.get("after"):
                paging["previous"] = f"{url}/{base}?{urlencode({**query, 'before': params['after']})}"
            result["paging"] = paging
        return result

    @staticmethod
    def fields(params: dict[str, str], default: tuple[str, ...]) -> set[str]:
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

    def window_page(
        self, index: int, params: dict[str, str], limit_max: int
    ) -> tuple[list[SandboxItem], bool, Any]:
        """A page of a source's posts newest first within ``since``/``until``, ``after`` cursor."""
        limit = int_param(params, "limit", 25, 1, limit_max)
        since, until = parse_time(params.get("since")), parse_time(params.get("until"))
        after = tuple(unb64(params["after"])) if params.get("after") else None
        page: list[tuple[tuple[int, int], SandboxItem]] = []
        more = False
        for cursor, item in self.stream.desc(index, since, until, after):
            if len(page) == limit:
                more = True
                break
            page.append((cursor, item))
        if len(page) > 1 and self.faults.page_fault(self.network, "truncated_page"):
            page, more = page[: len(page) // 2], True
        back = self.faults.overlap(self.network, len(page) - 1)
        last = page[-1 - back][0] if page else None
        return [i for _, i in page], more, list(last) if last else None

    def list_page(self, items: list[Any], params: dict[str, str]) -> tuple[list[Any], bool, Any]:
        """A page of a list (comments, replies) with an ``after`` cursor."""
        limit = int_param(params, "limit", 25, 1, 100)
        start = int(unb64(params["after"])) if params.get("after") else 0
        page = items[start : start + limit]
        if len(page) > 1 and self.faults.page_fault(self.network, "truncated_page"):
            page = page[: len(page) // 2]
        nxt = start + len(page) - self.faults.overlap(self.network, len(page) - 1)
        return page, nxt < len(items), (nxt if page else None)

"""Hook for Airflow's own REST API (``/api/v2``): DAG details, DAG runs and backfills.

Tasks in Airflow 3 never touch the metadata database; the ``coverage`` DAG reads runs and
creates backfills through the REST API, as any client would. Connection ``airflow_api``
(type ``http``): ``host`` = the api-server's base URL (when empty: ``[api] base_url``, else the
server of ``[core] execution_api_server_url``),
``login``/``password`` = an Airflow user allowed to read DAG runs and create backfills (a JWT is
obtained from ``POST /auth/token``); or ``extra.token`` = a JWT issued for a service account.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseHook

if TYPE_CHECKING:
    import requests

log = logging.getLogger(__name__)

RETRY_STATUSES = (502, 503, 504)
"""Answers worth another try: the api-server is restarting or its metadata DB was locked."""


class AirflowApiError(RuntimeError):
    """The REST API refused a request (status and detail in the message; never a credential)."""

    def __init__(self, method: str, path: str, status: int, detail: str) -> None:
        super().__init__(f"{method} {path} -> {status}: {detail[:500]}")
        self.status = status
        self.detail = detail


class AirflowApiHook(BaseHook):
    """A small client of Airflow's REST API, authenticated by Connection ``airflow_api``."""

    conn_name_attr = "airflow_api_conn_id"
    default_conn_name = "airflow_api"
    conn_type = "http"
    hook_name = "Airflow REST API"

    def __init__(
        self,
        airflow_api_conn_id: str = default_conn_name,
        *,
        timeout: float = 30,
        attempts: int = 5,
        token: str | None = None,
        base_url: str | None = None,
    ) -> None:
        """:param token: act with this JWT (e.g. the UI user's own) instead of the connection;
        :param base_url: the api-server's URL (with ``token``; ``[api] base_url`` by default)."""
        super().__init__()
        self.airflow_api_conn_id = airflow_api_conn_id
        self.timeout = timeout
        self.attempts = attempts
        self._session: Any = None
        self._base_url: str | None = None
        self._token = token
        if token is not None:
            self._base_url = _base_url(base_url or "", "", None)

    # ------------------------------------------------------------------ connection

    def base_url(self) -> str:
        if self._base_url is None:
            conn = self.get_connection(self.airflow_api_conn_id)
            self._base_url = _base_url(conn.host or "", conn.schema or "", conn.port)
        return self._base_url

    def get_conn(self) -> requests.Session:
        """A ``requests.Session`` carrying a bearer token."""
        if self._session is not None:
            return self._session
        import requests

        if self._token is not None:
            self._session = requests.Session()
            self._session.headers["Authorization"] = f"Bearer {self._token}"
            return self._session
        conn = self.get_connection(self.airflow_api_conn_id)
        self._base_url = _base_url(conn.host or "", conn.schema or "", conn.port)
        token = (conn.extra_dejson or {}).get("token")
        if not token:
            if not conn.login:
                raise ValueError(
                    f"connection {self.airflow_api_conn_id!r} needs login/password or extra.token "
                    "of an Airflow user allowed to read DAG runs and create backfills"
                )
            response = requests.post(
                f"{self._base_url}/auth/token",
                json={"username": conn.login, "password": conn.password or ""},
                timeout=self.timeout,
            )
            if response.status_code not in (200, 201):
                raise AirflowApiError("POST", "/auth/token", response.status_code, _detail(response))
            token = response.json()["access_token"]
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {token}"
        self._session = session
        return session

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """``method`` ``/api/v2<path>``: the JSON answer; transient answers are retried."""
        import requests

        session = self.get_conn()
        url = f"{self.base_url()}/api/v2{path}"
        for attempt in range(1, self.attempts + 1):
            try:
                response = session.request(method, url, timeout=self.timeout, **kwargs)
            except requests.ConnectionError as exc:
                if attempt == self.attempts:
                    raise
                log.warning("%s %s: %s (attempt %d/%d)", method, path, exc, attempt, self.attempts)
            else:
                if response.status_code not in RETRY_STATUSES or attempt == self.attempts:
                    if response.status_code >= 400:
                        raise AirflowApiError(method, path, response.status_code, _detail(response))
                    return response.json() if response.content else None
                log.warning(
                    "%s %s: %s (attempt %d/%d)", method, path, response.status_code, attempt, self.attempts
                )
            time.sleep(min(2**attempt, 20))
        raise AssertionError("unreachable")

    def test_connection(self) -> tuple[bool, str]:
        try:
            version = self.request("GET", "/version")
            return True, f"Airflow {version.get('version')} at {self.base_url()}"
        except Exception as exc:
            return False, str(exc)

    # ------------------------------------------------------------------ resources

    def dag_details(self, dag_id: str) -> dict[str, Any]:
        """``GET /dags/{dag_id}/details``: is_paused, max_active_runs, timetable_summary, …"""
        return self.request("GET", f"/dags/{dag_id}/details")

    def dag_runs(
        self,
        dag_id: str,
        *,
        logical_date_gte: datetime | None = None,
        logical_date_lte: datetime | None = None,
        limit: int | None = None,
    ) -> Iterator[dict[str, Any]]:
        """The DAG's runs (logical date in the bounds given), oldest first, page by page; at most
        ``limit`` of them."""
        offset, page_size, returned = 0, 100 if limit is None else min(limit, 100), 0
        while True:
            params: dict[str, Any] = {"limit": page_size, "offset": offset, "order_by": "logical_date"}
            if logical_date_gte is not None:
                params["logical_date_gte"] = logical_date_gte.isoformat()
            if logical_date_lte is not None:
                params["logical_date_lte"] = logical_date_lte.isoformat()
            page = self.request("GET", f"/dags/{dag_id}/dagRuns", params=params)
            runs = page.get("dag_runs", [])
            for run in runs:
                yield run
                returned += 1
                if limit is not None and returned >= limit:
                    return
            offset += len(runs)
            if not runs or offset >= page.get("total_entries", 0):
                return

    def backfills(self, dag_id: str) -> list[dict[str, Any]]:
        """The DAG's backfills, newest first."""
        page = self.request("GET", "/backfills", params={"dag_id": dag_id, "limit": 100, "order_by": "-id"})
        return list(page.get("backfills", []))

    def create_backfill(
        self,
        dag_id: str,
        from_date: datetime,
        to_date: datetime,
        *,
        max_active_runs: int,
        reprocess_behavior: str = "failed",
        dry_run: bool = False,
    ) -> dict[str, Any]:
        """``POST /backfills`` (or ``/backfills/dry_run``): runs for the logical dates in
        ``[from_date, to_date]``; ``reprocess_behavior="failed"`` reruns failed runs only."""
        body = {
            "dag_id": dag_id,
            "from_date": from_date.isoformat(),
            "to_date": to_date.isoformat(),
            "reprocess_behavior": reprocess_behavior,
            "max_active_runs": max_active_runs,
            "run_backwards": False,
        }
        return self.request("POST", "/backfills/dry_run" if dry_run else "/backfills", json=body)


def _base_url(host: str, schema: str, port: int | None) -> str:
    """The api-server's base URL from the connection, else from ``[api] base_url``."""
    host = host.strip()
    if not host:
        from airflow.sdk.configuration import conf

        # [api] base_url; else the api-server that workers already reach for the execution API
        execution = conf.get("core", "execution_api_server_url", fallback="") or ""
        host = (
            conf.get("api", "base_url", fallback="")
            or execution.rstrip("/").removesuffix("/execution")
            or "http://127.0.0.1:8080"
        )
    elif "://" not in host:
        host = f"{schema or 'http'}://{host}{f':{port}' if port else ''}"
    return host.rstrip("/")


def _detail(response: Any) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:500]
    return str(body.get("detail", body)) if isinstance(body, dict) else str(body)

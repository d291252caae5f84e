"""Runtime settings of the domain package: one :class:`Settings` object built from the environment.

This is the only module of the product that reads the process environment. Every setting
(``INCIDENTS_*``) and every Airflow Connection given as ``AIRFLOW_CONN_<ID>`` (URI or JSON
form, the way Airflow reads them locally) is read by :meth:`Settings.from_env`, so the command
line and the DAGs see the same configuration; stages receive the object (or the values they
need from it). Secrets are never read from files in the repository, and ``repr`` never shows
them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

REPO_ROOT = Path(__file__).resolve().parents[2]
PACKAGE_DIR = Path(__file__).resolve().parent
REFERENCE_DIR = PACKAGE_DIR / "reference"


DEFAULT_MAIL_FROM = "incidents@kirov-region.example.org"
DEFAULT_ALERT_EMAILS = "data-engineers@kirov-region.example.org"
DEFAULT_REPORT_RECIPIENTS = "monthly-report@kirov-region.example.org"


def _addresses(value: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in value.split(",") if v.strip())


@dataclass(frozen=True)
class Settings:
    """Every setting of the pipeline, resolved once from an environment mapping.

    =============================  ==============================================================
    ``INCIDENTS_HOME``             folder of the local defaults (landing area, reports), ``.local``
    ``INCIDENTS_CASE_DB_URL``      SQLAlchemy URL of the case database, set by the local stack and
                                   for the command line; Airflow tasks use the ``case_db``
                                   connection
    ``INCIDENTS_LANDING_URI``      raw API responses (any ``ObjectStoragePath`` URI)
    ``INCIDENTS_REPORTS_URI``      monthly reports
    ``INCIDENTS_REPORT_RECIPIENTS`` comma-separated addresses of the monthly announcement
    ``INCIDENTS_ALERT_EMAILS``     comma-separated addresses of task-failure and gap alerts
    ``INCIDENTS_MAIL_FROM``        sender of every e-mail
    ``INCIDENTS_MAX_FAILED_SHARE`` validation threshold (share of failing records), 0.05
    ``INCIDENTS_PSEUDONYM_KEY``    fallback key for author pseudonyms (a connection's extra wins)
    ``INCIDENTS_SOURCES_FILE``     monitored sources (YAML), the packaged ``sources.yaml``
    ``INCIDENTS_REFERENCE_DIR``    reference data folder, the packaged one
    ``INCIDENTS_COLLECT_CRON``     when collection windows start, hourly
    ``INCIDENTS_LIVE_HORIZON_HOURS`` how old (hours after its end) a window may be for its cases
                                   to be live, 72; older windows (backfills) register historical
                                   cases: counted and listed, never notified or escalated
    ``INCIDENTS_COVERAGE_GRACE_MINUTES`` how long a collection window may stay missing or failed
                                   before the ``coverage`` DAG catches it up, 120
    ``INCIDENTS_COVERAGE_EVERY_MINUTES`` how often the ``coverage`` DAG runs, 60
    ``INCIDENTS_COVERAGE_LOOKBACK_HOURS`` how far back the ``coverage`` DAG looks for gaps, 168
    ``INCIDENTS_COVERAGE_MAX_ATTEMPTS`` catch-up backfills per gap before it is alerted, 1
    ``AIRFLOW_CONN_<ID>``          connections (:meth:`connection`)
    =============================  ==============================================================
    """

    home: Path
    case_db_url: str | None = None
    landing_uri: str = ""
    reports_uri: str = ""
    report_recipients: tuple[str, ...] = _addresses(DEFAULT_REPORT_RECIPIENTS)
    alert_emails: tuple[str, ...] = _addresses(DEFAULT_ALERT_EMAILS)
    mail_from: str = DEFAULT_MAIL_FROM
    max_failed_share: float = 0.05
    pseudonym_key: str | None = field(default=None, repr=False)
    sources_file: Path = REFERENCE_DIR / "sources.yaml"
    reference_dir: Path = REFERENCE_DIR
    collect_cron: str = "0 * * * *"
    live_horizon_hours: float = 72.0
    coverage_grace_minutes: float = 120.0
    coverage_every_minutes: float = 60.0
    coverage_lookback_hours: float = 168.0
    coverage_max_attempts: int = 1
    connections: Mapping[str, str] = field(default_factory=dict, repr=False)
    """Raw ``AIRFLOW_CONN_*`` values by lower-case connection id."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Settings from ``environ`` (the process environment by default)."""
        env = os.environ if environ is None else environ
        home = Path(env.get("INCIDENTS_HOME") or REPO_ROOT / ".local")
        try:
            max_failed = float(env.get("INCIDENTS_MAX_FAILED_SHARE") or 0.05)
        except ValueError as exc:
            raise ValueError(f"INCIDENTS_MAX_FAILED_SHARE must be a number: {exc}") from None
        if not 0 <= max_failed <= 1:
            raise ValueError(f"INCIDENTS_MAX_FAILED_SHARE must lie in [0, 1], got {max_failed}")
        return cls(
            home=home,
            case_db_url=env.get("INCIDENTS_CASE_DB_URL") or None,
            landing_uri=env.get("INCIDENTS_LANDING_URI") or f"file://{home / 'landing'}",
            reports_uri=env.get("INCIDENTS_REPORTS_URI") or f"file://{home / 'reports'}",
            report_recipients=_addresses(env.get("INCIDENTS_REPORT_RECIPIENTS") or DEFAULT_REPORT_RECIPIENTS),
            alert_emails=_addresses(env.get("INCIDENTS_ALERT_EMAILS") or DEFAULT_ALERT_EMAILS),
            mail_from=env.get("INCIDENTS_MAIL_FROM") or DEFAULT_MAIL_FROM,
            max_failed_share=max_failed,
            pseudonym_key=env.get("INCIDENTS_PSEUDONYM_KEY") or None,
            sources_file=Path(env.get("INCIDENTS_SOURCES_FILE") or REFERENCE_DIR / "sources.yaml"),
            reference_dir=Path(env.get("INCIDENTS_REFERENCE_DIR") or REFERENCE_DIR),
            collect_cron=env.get("INCIDENTS_COLLECT_CRON") or "0 * * * *",
            live_horizon_hours=_live_horizon_hours(env.get("INCIDENTS_LIVE_HORIZON_HOURS")),
            coverage_grace_minutes=float(env.get("INCIDENTS_COVERAGE_GRACE_MINUTES") or 120),
            coverage_every_minutes=float(env.get("INCIDENTS_COVERAGE_EVERY_MINUTES") or 60),
            coverage_lookback_hours=float(env.get("INCIDENTS_COVERAGE_LOOKBACK_HOURS") or 168),
            coverage_max_attempts=int(env.get("INCIDENTS_COVERAGE_MAX_ATTEMPTS") or 1),
            connections={
                key[len("AIRFLOW_CONN_") :].lower(): value
                for key, value in env.items()
                if key.startswith("AIRFLOW_CONN_") and value
            },
        )

    def connection(self, conn_id: str) -> ConnectionInfo | None:
        """Connection ``conn_id`` from ``AIRFLOW_CONN_<CONN_ID>``, or None when unset."""
        value = self.connections.get(conn_id.lower())
        return parse_connection(conn_id, value) if value else None

    @property
    def live_horizon(self) -> timedelta:
        """:attr:`live_horizon_hours` as a duration."""
        return timedelta(hours=self.live_horizon_hours)

    def local_home(self) -> Path:
        """:attr:`home`, created when missing."""
        self.home.mkdir(parents=True, exist_ok=True)
        return self.home


def _live_horizon_hours(value: str | None) -> float:
    """``INCIDENTS_LIVE_HORIZON_HOURS``: a non-negative number of hours, 72 when unset."""
    if not value or not value.strip():
        return 72.0
    try:
        hours = float(value)
    except ValueError:
        raise ValueError(f"INCIDENTS_LIVE_HORIZON_HOURS must be a number of hours, not {value!r}") from None
    if hours < 0:
        raise ValueError(f"INCIDENTS_LIVE_HORIZON_HOURS must not be negative, got {value!r}")
    return hours


def settings() -> Settings:
    """The settings of this process, read from its environment now (cheap; never cached, so a
    test or a task that changes its environment sees the change)."""
    return Settings.from_env()


def local_home() -> Path:
    """Folder for the local defaults (landing area, reports, SQLite case DB of the command line)."""
    return settings().local_home()


@dataclass(frozen=True)
class ConnectionInfo:
    """The parts of an Airflow Connection the domain package needs."""

    conn_id: str
    conn_type: str = ""
    host: str = ""
    schema: str = ""
    login: str = ""
    password: str = field(default="", repr=False)
    port: int | None = None
    extra: dict[str, Any] = field(default_factory=dict, repr=False)

    def __repr__(self) -> str:  # never print secrets
        return f"ConnectionInfo(conn_id={self.conn_id!r}, conn_type={self.conn_type!r}, host={self.host!r})"


def parse_connection(conn_id: str, value: str) -> ConnectionInfo:
    """Parse an ``AIRFLOW_CONN_*`` value in Airflow's URI or JSON form."""
    value = value.strip()
    if value.startswith("{"):
        data = json.loads(value)
        extra: dict[str, Any] = data.get("extra") or {}
        if isinstance(extra, str):
            extra = json.loads(extra) if extra else {}
        return ConnectionInfo(
            conn_id=conn_id,
            conn_type=data.get("conn_type", ""),
            host=data.get("host") or "",
            schema=data.get("schema") or "",
            login=data.get("login") or "",
            password=data.get("password") or "",
            port=data.get("port"),
            extra=extra,
        )
    parts = urlsplit(value)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    extra = {}
    if "__extra__" in query:
        extra = json.loads(query.pop("__extra__"))
    extra.update(query)
    host = unquote(parts.hostname or "")
    return ConnectionInfo(
        conn_id=conn_id,
        conn_type=parts.scheme.replace("-", "_"),
        host=host,
        schema=unquote(parts.path.lstrip("/")),
        login=unquote(parts.username or ""),
        password=unquote(parts.password or ""),
        port=parts.port,
        extra=extra,
    )


def get_connection(conn_id: str) -> ConnectionInfo | None:
    """Read connection ``conn_id`` from ``AIRFLOW_CONN_<CONN_ID>``, or None when unset."""
    return settings().connection(conn_id)


def default_case_db_url() -> str:
    """The embedded default case database: an SQLite file under the local home."""
    return f"sqlite:///{local_home() / 'cases.sqlite'}"


def base_url(conn: ConnectionInfo) -> str:
    """The HTTP base URL a connection points at (``host`` may be a full URL, as in JSON form)."""
    host = conn.host.rstrip("/")
    if "://" not in host:
        scheme = conn.extra.get("scheme") or ("http" if conn.conn_type == "http" else "https")
        host = f"{scheme}://{host}"
        if conn.port:
            host += f":{conn.port}"
    if conn.schema:
        host += "/" + conn.schema.strip("/")
    return host


def sqlalchemy_url_from_connection(conn: ConnectionInfo) -> str:
    """Turn a ``case_db`` connection (sqlite or postgres) into an SQLAlchemy URL."""
    if conn.conn_type == "sqlite":
        path = conn.host or conn.schema
        if conn.host and conn.schema:
            path = f"{conn.host}/{conn.schema}"
        if not path.startswith("/"):
            path = "/" + path
        return f"sqlite:///{path.lstrip('/') if path.startswith('//') else path}"
    if conn.conn_type in ("postgres", "postgresql"):
        auth = ""
        if conn.login:
            from urllib.parse import quote

            auth = quote(conn.login, safe="")
            if conn.password:
                auth += ":" + quote(conn.password, safe="")
            auth += "@"
        port = f":{conn.port}" if conn.port else ""
        return f"postgresql+psycopg://{auth}{conn.host}{port}/{conn.schema}"
    raise ValueError(
        f"connection {conn.conn_id!r}: unsupported conn_type {conn.conn_type!r} for the case database"
    )


def case_db_url() -> str:
    """SQLAlchemy URL of the case database: ``INCIDENTS_CASE_DB_URL``, then ``case_db``, then SQLite."""
    current = settings()
    if current.case_db_url:
        return current.case_db_url
    conn = current.connection("case_db")
    if conn is not None:
        return sqlalchemy_url_from_connection(conn)
    return default_case_db_url()

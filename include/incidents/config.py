"""Runtime settings of the domain package, resolved from the environment.

Airflow Connections reach the domain package as ``AIRFLOW_CONN_<ID>`` environment
variables (URI or JSON form), the same way Airflow reads them locally, so the command
line and the DAGs see the same configuration. Secrets are never read from files in
the repository.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

REPO_ROOT = Path(__file__).resolve().parents[2]
PACKAGE_DIR = Path(__file__).resolve().parent
REFERENCE_DIR = PACKAGE_DIR / "reference"


def local_home() -> Path:
    """Folder for the embedded defaults (SQLite case DB, landing area, reports)."""
    home = Path(os.environ.get("INCIDENTS_HOME", REPO_ROOT / ".local"))
    home.mkdir(parents=True, exist_ok=True)
    return home


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
    extra: dict = field(default_factory=dict, repr=False)

    def __repr__(self) -> str:  # never print secrets
        return f"ConnectionInfo(conn_id={self.conn_id!r}, conn_type={self.conn_type!r}, host={self.host!r})"


def parse_connection(conn_id: str, value: str) -> ConnectionInfo:
    """Parse an ``AIRFLOW_CONN_*`` value in Airflow's URI or JSON form."""
    value = value.strip()
    if value.startswith("{"):
        data = json.loads(value)
        extra = data.get("extra") or {}
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
    extra: dict = {}
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
    value = os.environ.get(f"AIRFLOW_CONN_{conn_id.upper()}")
    if not value:
        return None
    return parse_connection(conn_id, value)


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
    explicit = os.environ.get("INCIDENTS_CASE_DB_URL")
    if explicit:
        return explicit
    conn = get_connection("case_db")
    if conn is not None:
        return sqlalchemy_url_from_connection(conn)
    return default_case_db_url()

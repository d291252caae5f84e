"""Local services the demo and the tests start themselves: the API sandbox and an SMTP server.

``LocalServices`` starts both on free ports of 127.0.0.1 and hands out the environment
(``AIRFLOW_CONN_*`` connections and ``INCIDENTS_*`` settings) that points the pipeline — the
CLI or a local Airflow — at them. Mail that reaches the SMTP server is kept as ``.eml`` files
in a folder, so any process can read what arrived.
"""

from __future__ import annotations

import email
import email.policy
import json
import logging
import secrets
import threading
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from pathlib import Path
from typing import TYPE_CHECKING, Any

from incidents.config import local_home
from incidents_dev.ports import free_port, reserve

if TYPE_CHECKING:
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import SMTP, Envelope, Session

    from incidents_dev.sandbox.server import SandboxServer

log = logging.getLogger(__name__)


class SmtpSink:
    """A real SMTP server (aiosmtpd) on 127.0.0.1 that stores every message as an ``.eml`` file."""

    def __init__(self, maildir: Path, host: str = "127.0.0.1", port: int = 0) -> None:
        self.maildir = Path(maildir)
        self.maildir.mkdir(parents=True, exist_ok=True)
        self.host = host
        self.port = port
        self._controller: Controller | None = None
        self._lock = threading.Lock()
        self._counter = 0

    async def handle_DATA(
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:  # aiosmtpd hook name
        with self._lock:
            self._counter += 1
            name = (
                f"{datetime.now().strftime('%Y%m%dT%H%M%S')}-{self._counter:06d}-{secrets.token_hex(3)}.eml"
            )
        tmp = self.maildir / f".{name}.tmp"
        content = envelope.original_content or envelope.content
        assert isinstance(content, bytes)  # the controller does not decode_data: the message's bytes
        tmp.write_bytes(content)
        tmp.rename(self.maildir / name)
        return "250 Message accepted for delivery"

    def start(self) -> SmtpSink:
        from aiosmtpd.controller import Controller

        self.port = reserve(self.port) or free_port()
        logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd logs every SMTP verb at INFO
        self._controller = Controller(self, hostname=self.host, port=self.port)
        self._controller.start()
        log.info("SMTP server on %s:%s storing mail in %s", self.host, self.port, self.maildir)
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def messages(self) -> list[EmailMessage]:
        """Every message received so far, oldest first."""
        return read_maildir(self.maildir)

    def connection_uri(self) -> str:
        """``AIRFLOW_CONN_SMTP_DEFAULT`` for this server (plain SMTP, no TLS, no login)."""
        return json.dumps(
            {
                "conn_type": "smtp",
                "host": self.host,
                "port": self.port,
                "extra": {"disable_tls": True, "disable_ssl": True, "timeout": 10, "retry_limit": 2},
            }
        )


def read_maildir(maildir: Path) -> list[EmailMessage]:
    out = []
    for path in sorted(Path(maildir).glob("*.eml")):
        out.append(email.message_from_bytes(path.read_bytes(), policy=email.policy.default))
    return out


@dataclass
class LocalServices:
    """The sandbox APIs and the SMTP server, started together; a context manager."""

    sandbox: bool = True
    seed: int = 0
    home: Path | None = None
    case_db_url: str | None = None
    sandbox_now: datetime | None = None
    rate_per_source_per_day: float | None = None
    """Sandbox volume (items per source per day); the generator's default when None."""
    client_extra: dict[str, Any] | None = None
    """Client options put into the network connections' extra (e.g. a short ``backoff_base`` and
    ``read_timeout`` for tests)."""

    def __post_init__(self) -> None:
        self.home = Path(self.home or local_home())
        self.smtp = SmtpSink(self.home / "mail")
        self.server: SandboxServer | None = None
        self.pseudonym_key = secrets.token_hex(16)

    def start(self) -> LocalServices:
        self.smtp.start()
        if self.sandbox:
            from incidents_dev.sandbox.server import SandboxServer

            kwargs: dict[str, Any] = {}
            if self.rate_per_source_per_day is not None:
                kwargs["rate_per_source_per_day"] = self.rate_per_source_per_day
            read_timeout = (self.client_extra or {}).get("read_timeout")
            if read_timeout is not None:
                kwargs["client_read_timeout"] = float(read_timeout)
            self.server = SandboxServer(seed=self.seed, now=self.sandbox_now, **kwargs)
            self.server.start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None
        self.smtp.stop()

    def __enter__(self) -> LocalServices:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def env(self) -> dict[str, str]:
        """Environment that points the pipeline at these services (secrets are generated here)."""
        env = {
            "INCIDENTS_HOME": str(self.home),
            "AIRFLOW_CONN_SMTP_DEFAULT": self.smtp.connection_uri(),
            "INCIDENTS_PSEUDONYM_KEY": self.pseudonym_key,
        }
        if self.case_db_url:
            env["INCIDENTS_CASE_DB_URL"] = self.case_db_url
            env["AIRFLOW_CONN_CASE_DB"] = case_db_connection(self.case_db_url)
        else:
            assert self.home is not None  # set in __post_init__
            env["AIRFLOW_CONN_CASE_DB"] = case_db_connection(f"sqlite:///{self.home / 'cases.sqlite'}")
        if self.server is not None:
            extra = {k: v for k, v in (self.client_extra or {}).items() if k != "read_timeout"}
            env.update(self.server.connection_env(pseudonym_key=self.pseudonym_key, **extra))
        return env


def case_db_connection(sqlalchemy_url: str) -> str:
    """The ``case_db`` Airflow Connection (JSON form) for an SQLAlchemy URL."""
    from sqlalchemy.engine import make_url

    url = make_url(sqlalchemy_url)
    if url.get_backend_name() == "sqlite":
        return json.dumps({"conn_type": "sqlite", "host": url.database})
    return json.dumps(
        {
            "conn_type": "postgres",
            "host": url.host or "127.0.0.1",
            "port": url.port or 5432,
            "login": url.username or "",
            "password": url.password or "",
            "schema": url.database or "",
        }
    )

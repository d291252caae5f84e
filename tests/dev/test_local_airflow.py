"""``python -m incidents_dev airflow`` stops everything it started, however it is stopped.

The command runs on an embedded PostgreSQL (no server configured); once the UI is up, SIGTERM
(a process manager, ``kill``) or SIGHUP (a closed terminal) ends the command, and none of the
processes it started survives: PostgreSQL, the api-server, the scheduler, the dag-processor and
their children. A second case checks the servers module's own pieces.
"""

from __future__ import annotations

import os
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import pytest

from incidents.config import REPO_ROOT
from incidents_dev.local_airflow import LocalAirflow, dag_files
from incidents_dev.ports import free_port
from incidents_dev.servers import EmbeddedPostgres, EmbeddedRedis, create_database, stop_on_signals

pytestmark = [pytest.mark.airflow, pytest.mark.slow]


@pytest.fixture(scope="module")
def home():
    """A working folder the embedded server's system user can reach (pytest's are private)."""
    folder = Path(tempfile.mkdtemp(prefix="incidents-airflow-cli-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def _wait_for_line(proc: subprocess.Popen, marker: str, timeout: float) -> str:
    """The command's output up to the line containing ``marker``."""
    assert proc.stdout is not None
    selector = selectors.DefaultSelector()
    selector.register(proc.stdout, selectors.EVENT_READ)
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not selector.select(timeout=1):
            continue
        line = proc.stdout.readline()
        if not line:
            break
        seen.append(line)
        if marker in line:
            return "".join(seen)
    proc.kill()
    raise AssertionError(f"no {marker!r} within {timeout}s; output:\n{''.join(seen)[-5000:]}")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_a_signal_stops_every_process_the_command_started(home: Path, sig: signal.Signals) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "INCIDENTS_PG_URL"))}
    proc = subprocess.Popen(
        [sys.executable, "-m", "incidents_dev", "airflow", "--home", str(home), "--port", str(free_port())],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        output = _wait_for_line(proc, "Press Ctrl-C to stop", timeout=300)
        children = psutil.Process(proc.pid).children(recursive=True)
        commands = " ".join(" ".join(c.cmdline()) for c in children if c.is_running())
        for component in ("postgres", "api-server", "scheduler", "dag-processor"):
            assert component in commands.replace("api_server", "api-server"), (component, commands)
        assert "postgresql" in output  # the case database is on the (embedded) PostgreSQL

        proc.send_signal(sig)
        rest, _ = proc.communicate(timeout=120)
        assert proc.returncode == 0, rest[-5000:]
        _, alive = psutil.wait_procs(children, timeout=10)
        assert not alive, [(p.pid, p.cmdline()) for p in alive]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_servers_stop_with_their_process_groups(tmp_path: Path) -> None:
    """The embedded servers answer, and stopping them leaves none of their processes."""
    folder = Path(tempfile.mkdtemp(prefix="incidents-pg-"))
    folder.chmod(0o755)
    try:
        with EmbeddedPostgres(folder / "data") as pg, EmbeddedRedis(tmp_path / "redis") as rd:
            url = create_database(pg.url(), "probe")
            assert url.endswith("/probe")
            assert create_database(pg.url(), "probe") == url  # exists already: kept
            leaders = [psutil.Process(pg.proc.pid), psutil.Process(rd.proc.pid)]
            members = leaders + [c for p in leaders for c in p.children(recursive=True)]
            assert len(members) > 2  # the postmaster's background processes
        _, alive = psutil.wait_procs(members, timeout=10)
        assert not alive
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_sigterm_is_a_keyboard_interrupt_inside_stop_on_signals() -> None:
    with pytest.raises(KeyboardInterrupt, match="SIGTERM"), stop_on_signals():
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


def test_local_airflow_needs_postgresql_metadata(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="PostgreSQL"):
        LocalAirflow(home=tmp_path, metadata_url=f"sqlite:///{tmp_path}/airflow.db")
    assert "collect_posts.py" in dag_files()

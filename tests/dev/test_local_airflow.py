"""``python -m incidents_dev airflow`` stops everything it started, however it is stopped.

The command runs on an embedded PostgreSQL (no server configured); SIGTERM (a process manager,
``kill``) once the UI is up, or SIGHUP (a closed terminal) while it is still starting, ends the
command, and none of the processes it started survives: PostgreSQL, the api-server, the
scheduler, the dag-processor and their children. A second case checks the servers module's own pieces.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
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


class _Output:
    """Drains a process's output in a thread (a full pipe would block the process)."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._drain, args=(proc,), daemon=True)
        self._thread.start()

    def _drain(self, proc: subprocess.Popen) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            self.lines.append(line)

    def text(self) -> str:
        return "".join(self.lines)

    def wait_for(self, marker: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if marker in self.text():
                return
            if not self._thread.is_alive():
                break
            time.sleep(0.5)
        raise AssertionError(f"no {marker!r} within {timeout}s; output:\n{self.text()[-5000:]}")

    def join(self, timeout: float) -> str:
        self._thread.join(timeout)
        return self.text()


@pytest.mark.parametrize(
    ("sig", "when"),
    [(signal.SIGTERM, "Press Ctrl-C to stop"), (signal.SIGHUP, "started airflow dag-processor")],
    ids=["SIGTERM-when-ready", "SIGHUP-while-starting"],
)
def test_a_signal_stops_every_process_the_command_started(home: Path, sig: signal.Signals, when: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "INCIDENTS_PG_URL"))}
    proc = subprocess.Popen(
        [sys.executable, "-m", "incidents_dev", "airflow", "--home", str(home), "--port", str(free_port())],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output = _Output(proc)
    try:
        output.wait_for(when, timeout=300)
        children = psutil.Process(proc.pid).children(recursive=True)
        commands = " ".join(" ".join(c.cmdline()) for c in children if c.is_running())
        for component in ("postgres", "api-server", "scheduler", "dag-processor"):
            assert component in commands.replace("api_server", "api-server"), (component, commands)

        proc.send_signal(sig)
        proc.wait(timeout=120)
        assert proc.returncode == 0, output.join(10)[-5000:]
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
    before = signal.getsignal(signal.SIGTERM)  # the test session's own handler (tests/conftest.py)
    with pytest.raises(KeyboardInterrupt, match="SIGTERM"), stop_on_signals():
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)
    assert signal.getsignal(signal.SIGTERM) is before


def test_local_airflow_needs_postgresql_metadata(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="PostgreSQL"):
        LocalAirflow(home=tmp_path, metadata_url=f"sqlite:///{tmp_path}/airflow.db")
    assert "collect_posts.py" in dag_files()

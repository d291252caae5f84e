"""Free TCP ports on the loopback interface for the local services and stacks.

A port found free is released at once and bound later by the program it is meant for (an
api-server binds its port only after minutes of migrations), so the operating system may hand the
same port out again meanwhile. This module remembers every port it has handed out or been told of
(:func:`reserve`) and never returns one of them twice within the process: a local stack's SMTP
sink can no longer take the api-server's port before the api-server binds it.
"""

from __future__ import annotations

import socket
import threading

_lock = threading.Lock()
_taken: set[int] = set()


def reserve(port: int) -> int:
    """Mark ``port`` (chosen elsewhere, e.g. by a command-line option) as in use; returns it."""
    if port:
        with _lock:
            _taken.add(port)
    return port


def free_port() -> int:
    """A free TCP port on 127.0.0.1 that this process has not handed out or reserved before."""
    with _lock:
        for _ in range(100):
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                port = int(s.getsockname()[1])
            if port not in _taken:
                _taken.add(port)
                return port
    raise OSError("no free TCP port on 127.0.0.1 that was not handed out already")

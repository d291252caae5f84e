"""Ports handed out for the local services are never handed out twice within a process."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from incidents_dev import ports


class _FakeSocket:
    """A socket whose ``bind(("127.0.0.1", 0))`` gets the next port of a fixed sequence."""

    sequence: Iterator[int] = iter(())

    def __enter__(self) -> _FakeSocket:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def bind(self, address: tuple[str, int]) -> None:
        self.port = next(_FakeSocket.sequence)

    def getsockname(self) -> tuple[str, int]:
        return ("127.0.0.1", self.port)


@pytest.fixture
def os_ports(monkeypatch: pytest.MonkeyPatch):
    """Make the operating system hand out the given ports, in order, to ``bind(0)``."""
    monkeypatch.setattr(ports, "_taken", set())

    def give(*numbers: int) -> None:
        _FakeSocket.sequence = iter(numbers)
        monkeypatch.setattr(ports.socket, "socket", _FakeSocket)

    return give


def test_a_port_the_os_hands_out_again_is_skipped(os_ports) -> None:
    # the api-server's port is released until it binds; the OS may offer it to the SMTP sink next
    os_ports(40001, 40001, 40001, 40002)
    assert ports.free_port() == 40001
    assert ports.free_port() == 40002


def test_a_reserved_port_is_never_handed_out(os_ports) -> None:
    os_ports(40010, 40011)
    assert ports.reserve(40010) == 40010
    assert ports.free_port() == 40011


def test_reserving_no_port_reserves_nothing(os_ports) -> None:
    os_ports(40020)
    assert ports.reserve(0) == 0
    assert ports.free_port() == 40020


def test_a_real_free_port_can_be_bound() -> None:
    port = ports.free_port()
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))
    assert port in ports._taken

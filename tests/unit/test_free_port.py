"""free_port: ports for the services the tests and benchmarks start, outside the kernel's ephemeral
range (where outgoing connections take their local ports), each bindable and given once."""
from __future__ import annotations

import socket
from pathlib import Path

import pytest

from stack import daemons


def test_ports_lie_below_the_ephemeral_range_and_are_given_once(monkeypatch):
    monkeypatch.setattr(daemons, "_given", set())
    ephemeral_from = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    ports = [daemons.free_port() for _ in range(200)]
    assert len(set(ports)) == 200
    assert all(daemons.FREE_PORTS_FROM <= p < ephemeral_from for p in ports)
    with socket.socket() as s:
        s.bind(("127.0.0.1", ports[-1]))  # free when given


def test_a_bound_port_is_skipped_and_an_exhausted_range_is_an_error(monkeypatch):
    monkeypatch.setattr(daemons, "_given", set())
    with socket.socket() as a, socket.socket() as b:
        a.bind(("127.0.0.1", 0))
        b.bind(("127.0.0.1", 0))
        a.listen()  # a service on it; b is bound only, as by a client's outgoing connection
        taken, bound_only = a.getsockname()[1], b.getsockname()[1]
        free = daemons.free_port_range().start
        while free in (taken, bound_only) or not _bindable(free):
            free += 1
        monkeypatch.setattr(daemons, "free_port_range", lambda: [taken, bound_only, free])
        assert daemons.free_port() == free
        with pytest.raises(daemons.ServiceError, match="no free loopback port"):
            daemons.free_port()


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True

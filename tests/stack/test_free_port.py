"""devstack.paths.free_port: ports for servers started later, which must not collide."""

from __future__ import annotations

import socket

from devstack.paths import _ephemeral_low, free_port


def test_ports_are_distinct_bindable_and_below_the_ephemeral_range() -> None:
    ports = [free_port() for _ in range(200)]
    assert len(set(ports)) == len(ports)
    low = _ephemeral_low()
    if low > 11000:  # where the kernel leaves room below its own range
        assert all(10000 <= p < low for p in ports)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", ports[-1]))  # still free: nothing was left bound

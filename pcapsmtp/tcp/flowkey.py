"""The key of a TCP conversation: the same for both directions of its packets."""

from __future__ import annotations

Address = tuple[bytes, int]
"""(IP address as packed bytes, port)."""
FlowKey = tuple[Address, Address]


def flow_key(src: bytes, sport: int, dst: bytes, dport: int) -> FlowKey:
    """The two (address, port) pairs, the lower first, so a packet and its answer share it."""
    a, b = (src, sport), (dst, dport)
    return (a, b) if a <= b else (b, a)

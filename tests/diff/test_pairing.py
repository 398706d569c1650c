"""Pairing connections across two captures, level by level: ISN, payload, port, time."""

from __future__ import annotations

from pcapsmtp.diff.pairing import MAX_SKEW_NS, pair_views
from pcapsmtp.diff.segments import FlowView
from pcapsmtp.tcp.model import Endpoint, TcpFlow

SECOND = 1_000_000_000


def view(start_s: float, port: int, isn: int | None = None, first: bytes = b"", ip=b"\x0a\0\0\x02"):
    flow = TcpFlow(
        stream=0,
        endpoints=(Endpoint(ip, port), Endpoint(b"\x0a\0\0\x03", 25)),
        client=0,
        first_frame=1,
        first_time_ns=int(start_s * SECOND),
    )
    result = FlowView(flow)
    if isn is not None:
        result.isn = {"client": isn}
    if first:
        result.first_bytes = {"client": first}
    return result


def test_isn_wins_over_everything():
    a = [view(0, 1000, isn=7), view(1, 1001, isn=8)]
    b = [view(500, 5000, isn=8), view(900, 5001, isn=7)]
    assert pair_views(a, b) == {0: (1, "isn"), 1: (0, "isn")}


def test_same_bytes_pair_in_order_of_time_whatever_the_clocks():
    """Two identical EHLO lines: the first pairs with the first, even 1 h apart."""
    same = b"EHLO client.example\r\n"
    a = [view(10, 1000, first=same), view(20, 1001, first=same), view(30, 1002, first=b"EHLO x")]
    b = [
        view(3610, 7000, first=same),
        view(3620, 7001, first=same),
        view(3630, 7002, first=b"EHLO x"),
    ]
    assert pair_views(a, b) == {0: (0, "payload"), 1: (1, "payload"), 2: (2, "payload")}


def test_port_then_time_use_the_clock_offset_of_earlier_pairs():
    a = [view(0, 1000, isn=1), view(100, 2000), view(200, 3000)]
    b = [view(50, 9000, isn=1), view(150, 2000), view(249, 4444)]
    pairs = pair_views(a, b)
    assert pairs == {0: (0, "isn"), 1: (1, "ports"), 2: (2, "time")}


def test_time_alone_needs_a_compatible_dialogue_and_a_small_skew():
    a = [view(0, 1000)]
    b = [view(1, 2000)]
    assert pair_views(a, b, compatible=lambda i, j: False) == {}
    far = [view(MAX_SKEW_NS / SECOND + 5, 2000)]
    assert pair_views(a, far) == {}

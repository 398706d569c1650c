"""Conformance with tshark: stream numbers and every tcp.analysis flag, frame by frame.

Deliberate difference: ICMP errors quote a TCP header that tshark dissects as TCP (and
so gives a tcp.stream); for us an ICMP error is not a segment but is attached to the
flow it refers to, which the second test checks against tshark's stream number.
"""

from __future__ import annotations

from collections import Counter

import pytest

from pcapsmtp.capture import TcpSegment, open_capture, packets
from pcapsmtp.tcp import Flag, FlowEnded, FlowTracker
from tests.tshark import all_captures, capture_id, fields, needs_tshark

ANALYSIS = {
    "retransmission": Flag.ANY_RETRANSMISSION,
    "fast_retransmission": Flag.FAST_RETRANSMISSION,
    "spurious_retransmission": Flag.SPURIOUS_RETRANSMISSION,
    "out_of_order": Flag.OUT_OF_ORDER,
    "lost_segment": Flag.LOST_SEGMENT,
    "ack_lost_segment": Flag.ACK_LOST_SEGMENT,
    "duplicate_ack": Flag.DUPLICATE_ACK,
    "zero_window": Flag.ZERO_WINDOW,
    "zero_window_probe": Flag.ZERO_WINDOW_PROBE,
    "zero_window_probe_ack": Flag.ZERO_WINDOW_PROBE_ACK,
    "keep_alive": Flag.KEEP_ALIVE,
    "keep_alive_ack": Flag.KEEP_ALIVE_ACK,
    "window_update": Flag.WINDOW_UPDATE,
    "window_full": Flag.WINDOW_FULL,
    "reused_ports": Flag.REUSED_PORTS,
}
CAPTURES = all_captures()


def tshark_view(path) -> dict[int, tuple[int, frozenset[str]]]:
    names = ["frame.number", "tcp.stream", "tcp.flags.reset"]
    names += [f"tcp.analysis.{n}" for n in ANALYSIS]
    rows = fields(path, names, "tcp && !icmp && !icmpv6")
    view = {}
    for row in rows:
        row += [""] * (len(names) - len(row))
        marks = {n for n, v in zip(ANALYSIS, row[3:], strict=True) if v}
        if row[2] in ("1", "True"):
            marks.add("rst")
        view[int(row[0])] = (int(row[1]), frozenset(marks))
    return view


def our_view(path):
    tracker = FlowTracker()
    streams: dict[int, int] = {}
    marks: dict[int, set[str]] = {}
    icmp: dict[int, int] = {}
    ended = []
    with open_capture(str(path)) as capture:
        for packet in packets(capture):
            tracker.add(packet)
            if isinstance(packet, TcpSegment):
                streams[packet.frame] = tracker.flow_of(packet).stream
                if packet.flags & 0x04:
                    marks.setdefault(packet.frame, set()).add("rst")
            ended += [e.flow for e in tracker.take() if isinstance(e, FlowEnded)]
        tracker.finish()
        ended += [e.flow for e in tracker.take() if isinstance(e, FlowEnded)]
    for flow in ended:
        for note in flow.notes:
            marks.setdefault(note.frame, set()).update(
                n for n, f in ANALYSIS.items() if note.analysis & f
            )
        for error in flow.icmp:
            icmp[error.frame] = flow.stream
    view = {f: (s, frozenset(marks.get(f, ()))) for f, s in streams.items()}
    return view, icmp, ended


@needs_tshark
@pytest.mark.oracle
@pytest.mark.parametrize("path", CAPTURES, ids=capture_id)
def test_streams_and_analysis_flags_equal_tsharks(path):
    theirs = tshark_view(path)
    ours, _icmp, flows = our_view(path)
    differences = [
        (frame, theirs.get(frame), ours.get(frame))
        for frame in sorted(set(theirs) | set(ours))
        if theirs.get(frame) != ours.get(frame)
    ]
    assert differences == [], "frame, (stream, flags) by tshark, by us"

    # The per-endpoint counters the diagnosis reads agree with the frames tshark flags.
    counted = Counter()
    for flow in flows:
        for endpoint in flow.endpoints:
            counted.update(endpoint.counts)
    flagged = Counter(name for _, marks in theirs.values() for name in marks if name != "rst")
    for name, count in flagged.items():
        assert counted[name] == count, name


@needs_tshark
@pytest.mark.oracle
@pytest.mark.parametrize(
    "path",
    [p for p in CAPTURES if "zeek-smtp.pcap" in p.name or "3616" in p.name] or [None],
    ids=lambda p: capture_id(p) if p else "none",
)
def test_icmp_errors_are_tied_to_tsharks_stream(path):
    if path is None:
        pytest.skip("no capture with ICMP errors quoting TCP")
    rows = fields(path, ["frame.number", "tcp.stream"], "icmp && tcp")
    theirs = {int(r[0]): int(r[1]) for r in rows}
    _ours, icmp, _flows = our_view(path)
    assert theirs and icmp == theirs

"""Conformance with tshark: stream numbers and every tcp.analysis flag, frame by frame.

Over every lab and public capture, and over long captures composed from them
(tests/composed.py): 4-tuples reused long after a reset, with the same and with other
initial sequence numbers, and ICMP errors quoting connections the capture has no packet
of. The composed ones are also read with the flow table's limits lowered to a few
frames, so that every flow is ended and remembered between any two of its packets.

Deliberate differences: an ICMP error is not a segment for us but is attached to the
flow it quotes (tshark dissects the quoted header as TCP and gives it the tcp.stream,
which the ICMP test checks). tshark gives no tcp.stream to a quote shorter than 16 bytes
of TCP header (its dissection stops before the conversation lookup); we still attach such
an error to the live flow of its ports, as evidence of what the path did to that flow.
"""

from __future__ import annotations

from collections import Counter

import pytest

import pcapsmtp.tcp.limits
from pcapsmtp.capture import TcpSegment, open_capture, packets
from pcapsmtp.tcp import Flag, FlowEnded, FlowTracker
from tests.captures import PUBLIC, all_captures, capture_id
from tests.composed import icmp_errors, port_reuse
from tests.tshark import ask, fields, needs_tshark

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
COMPOSED = {
    "port-reuse": port_reuse,
    "icmp-errors": lambda path: icmp_errors(path, PUBLIC / "zeek-smtp.pcap"),
}


@pytest.fixture(scope="module")
def composed(tmp_path_factory):
    folder = tmp_path_factory.mktemp("composed")
    return {name: build(folder / f"{name}.pcap") for name, build in COMPOSED.items()}


@pytest.fixture(params=["limits as shipped", "limits of a few frames"])
def table_limits(request, monkeypatch):
    if request.param != "limits as shipped":
        monkeypatch.setattr(pcapsmtp.tcp.limits, "LINGER_FRAMES", 3)
        monkeypatch.setattr(pcapsmtp.tcp.limits, "IDLE_FRAMES", 3)
        monkeypatch.setattr(pcapsmtp.tcp.limits, "SWEEP_EVERY", 7)


VIEW = ["frame.number", "tcp.stream", "tcp.flags.reset", *(f"tcp.analysis.{n}" for n in ANALYSIS)]
SEGMENTS = "tcp && !icmp && !icmpv6"
ICMP_QUOTING_TCP = "(icmp || icmpv6) && tcp"
ask(VIEW, SEGMENTS)
ask(["frame.number", "tcp.stream"], ICMP_QUOTING_TCP)


def tshark_view(path) -> dict[int, tuple[int, frozenset[str]]]:
    names = VIEW
    rows = fields(path, names, SEGMENTS)
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
    """frame -> tcp.stream of the ICMP errors quoting TCP (attached or numbered)."""
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
    icmp.update(tracker.icmp_streams)
    for flow in ended:
        for note in flow.notes:
            marks.setdefault(note.frame, set()).update(
                n for n, f in ANALYSIS.items() if note.analysis & f
            )
        for error in flow.icmp:
            icmp[error.frame] = flow.stream
    view = {f: (s, frozenset(marks.get(f, ()))) for f, s in streams.items()}
    return view, icmp, ended


def assert_equal_tsharks(path):
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
    return theirs


@needs_tshark
@pytest.mark.oracle
@pytest.mark.parametrize("path", CAPTURES, ids=capture_id)
def test_streams_and_analysis_flags_equal_tsharks(path):
    assert_equal_tsharks(path)


@needs_tshark
@pytest.mark.oracle
@pytest.mark.slow
@pytest.mark.xdist_group("tcp-composed")
@pytest.mark.parametrize("name", COMPOSED)
def test_long_captures_equal_tsharks(name, composed, table_limits):
    """Port reuse long after a reset, and ICMP errors quoting unseen connections."""
    theirs = assert_equal_tsharks(composed[name])
    assert len(theirs) > 4000
    streams = {stream for stream, _ in theirs.values()}
    assert len(streams) == max(streams) + 1 - len(icmp_only(composed[name], streams))
    if name == "port-reuse":
        marks = Counter(mark for _, frame_marks in theirs.values() for mark in frame_marks)
        assert marks["reused_ports"] >= 3 and marks["retransmission"] >= 30


def icmp_only(path, tcp_streams) -> set[int]:
    """The tcp.stream numbers tshark gives only to ICMP-quoted headers."""
    rows = fields(path, ["tcp.stream"], ICMP_QUOTING_TCP)
    return {int(r[0]) for r in rows if r and r[0]} - tcp_streams


def assert_icmp_tied_to_tsharks_stream(path):
    rows = fields(path, ["frame.number", "tcp.stream"], ICMP_QUOTING_TCP)
    theirs = {int(r[0]): int(r[1]) for r in rows if len(r) > 1 and r[1]}
    _ours, icmp, flows = our_view(path)
    assert theirs
    assert {f: s for f, s in icmp.items() if f in theirs} == theirs
    short = {
        error.frame
        for flow in flows
        for error in flow.icmp
        if error.quoted.transport_bytes < pcapsmtp.tcp.limits.QUOTED_TCP_BYTES
    }
    assert set(icmp) - set(theirs) == short  # attached to their flow on purpose (above)


@needs_tshark
@pytest.mark.oracle
@pytest.mark.parametrize(
    "path",
    [p for p in CAPTURES if p.name in ("zeek-smtp.pcap", "pmtud-working.pcap") or "3616" in p.name]
    or [None],
    ids=lambda p: capture_id(p) if p else "none",
)
def test_icmp_errors_are_tied_to_tsharks_stream(path):
    if path is None:
        pytest.skip("no capture with ICMP errors quoting TCP")
    assert_icmp_tied_to_tsharks_stream(path)


@needs_tshark
@pytest.mark.oracle
@pytest.mark.xdist_group("tcp-composed")
def test_icmp_errors_of_unseen_connections_get_tsharks_stream(composed, table_limits):
    """Errors before their connection's first packet, after it ended, and of connections
    never seen: each has tshark's stream number, and the connections after them too."""
    path = composed["icmp-errors"]
    assert_icmp_tied_to_tsharks_stream(path)
    _ours, icmp, _flows = our_view(path)
    assert len(icmp) >= 40

"""The flow table holds the events of a flow on another port while its first bytes could not
be SMTP (core/src/tcp/sniff.rs, ``FlowTracker.sniff``): what the SMTP tracker's sniffer
would give up never reaches Python, and the analysis is the same as with every event
handed on."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from pcapsmtp.cli import main
from pcapsmtp.tcp import flows as flows_module
from pcapsmtp.tcp.flows import FlowTracker
from pcapsmtp.tcp.model import FlowEnded, StreamData
from tests.conversation import Conversation

STEP = 1_000_000


def _conversation(sport: int, dport: int, turns: list[tuple[str, bytes]], close: bool = True):
    talk = Conversation(sport=sport, dport=dport)
    talk.handshake()
    talk.say(*turns)
    if close:
        talk.close()
    return talk


def _mixed(path: Path) -> Path:
    """Connections on other ports interleaved packet by packet: web traffic the sniffer gives
    up (a full head, many small chunks, bytes past the hold), SMTP behind a prefix on 2525,
    bytes with the literals that are not SMTP, one ended while undecided, one on port 25."""
    big = b"HTTP/1.1 200 OK\r\n" + b"x" * 6000
    talks = [
        _conversation(41000, 8080, [("C", b"GET / HTTP/1.1\r\n\r\n"), ("S", big), ("C", b"q")]),
        _conversation(
            41001,
            2525,
            [
                ("C", b"PROXY TCP4 1 2 3 4\r\n"),
                ("S", b"banner\r\n"),
                ("S", b"220 mx.example ESMTP\r\n"),
                ("C", b"EHLO c.example\r\n"),
                ("S", b"250 mx.example\r\n"),
                ("C", b"QUIT\r\n"),
                ("S", b"221 bye\r\n"),
            ],
        ),
        _conversation(41002, 9000, [("C", b"\x00\x01ehlo-ish \x02"), ("S", b"nope" * 1200)]),
        _conversation(41003, 9001, [("C", b"ping"), ("S", b"pong")]),
        _conversation(41004, 9002, [("C", bytes([i % 200 + 30]) * 50) for i in range(100)]),
        _conversation(41005, 9003, [("S", b"y" * 1400) for _ in range(8)], close=False),
        _conversation(
            41006,
            25,
            [
                ("S", b"220 mail.example\r\n"),
                ("C", b"EHLO me\r\n"),
                ("S", b"250 ok\r\n"),
                ("C", b"QUIT\r\n"),
                ("S", b"221 bye\r\n"),
            ],
        ),
    ]
    merged = Conversation()
    for index, talk in enumerate(talks):
        merged.packets += [(t + index * STEP // 7, frame) for t, frame in talk.packets]
    merged.packets.sort(key=lambda p: p[0])
    return merged.write(path)


@pytest.fixture(scope="module")
def mixed(tmp_path_factory) -> Path:
    return _mixed(tmp_path_factory.mktemp("sniff") / "mixed.pcap")


def _analyze(path: Path, fmt: str) -> str:
    result = CliRunner().invoke(main, ["analyze", "--format", fmt, str(path)])
    assert result.exit_code in (0, 1), result.output
    return result.output


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_the_analysis_is_the_one_every_event_handed_on_gives(mixed, monkeypatch, fmt):
    held = _analyze(mixed, fmt)
    monkeypatch.setattr(flows_module.FlowTracker, "sniff", lambda self, limit, hold: None)
    assert _analyze(mixed, fmt) == held
    assert "2525" in held and "8080" not in held


def _events(path: Path, sniff: bool) -> tuple[list, FlowTracker]:
    from pcapsmtp.capture import open_capture, segment_batches

    tracker = FlowTracker([25])
    if sniff:
        tracker.sniff(4096, 256 * 1024)
    with open_capture(str(path)) as capture:
        events = list(tracker.batch_events(segment_batches(capture, [])))
    return events, tracker


def test_given_up_flows_make_no_data_event_and_the_rest_is_handed_on_in_order(mixed):
    held, tracker = _events(mixed, sniff=True)
    every, _ = _events(mixed, sniff=False)
    assert tracker._table.held == 0

    def data(events, port):
        return [
            (e.direction, e.offset, e.data)
            for e in events
            if type(e) is StreamData
            and port in (e.flow.endpoints[0].port, e.flow.endpoints[1].port)
        ]

    for port in (2525, 9000, 25):  # SMTP behind a prefix, the literals, an SMTP port
        assert data(held, port) == data(every, port) != []
    for port in (8080, 9001, 9002, 9003):  # a full head, ended undecided, small chunks
        assert data(held, port) == [] != data(every, port)
    ended = sorted(e.flow.stream for e in held if type(e) is FlowEnded)
    assert ended == sorted(e.flow.stream for e in every if type(e) is FlowEnded)
    assert len(ended) == 7


def test_a_flow_never_handed_on_ends_bare_the_others_whole(mixed):
    """With the sniff on, a flow on no server port whose events were all held and dropped
    ends with its numbers, addresses, frames and times only (nobody reads the rest of it);
    a flow that was handed on, or one on a server port, ends with everything as before."""
    held, _tracker = _events(mixed, sniff=True)
    every, _ = _events(mixed, sniff=False)

    def ends(events):
        return {e.flow.endpoints[1].port: e.flow for e in events if type(e) is FlowEnded}

    bare, whole = ends(held), ends(every)
    for port in (8080, 9001, 9002, 9003):  # never handed on: bare
        flow, full = bare[port], whole[port]
        assert (flow.stream, flow.first_frame, flow.last_frame, flow.last_time_ns) == (
            full.stream,
            full.first_frame,
            full.last_frame,
            full.last_time_ns,
        )
        assert [(e.ip, e.port) for e in flow.endpoints] == [(e.ip, e.port) for e in full.endpoints]
        assert full.history and full.endpoints[0].packets > 0
        assert flow.history == "" and flow.notes == [] and flow.endpoints[0].packets == 0
    for port in (2525, 9000, 25):  # handed on, or on a server port: whole
        flow, full = bare[port], whole[port]
        assert (flow.history, flow.state, flow.endpoints[0].packets) == (
            full.history,
            full.state,
            full.endpoints[0].packets,
        )
        assert flow.history

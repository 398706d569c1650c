"""Message bodies absorbed by the flow table (issue 21): while the client sends a DATA body,
its bytes go from the core's flow table straight into the message's scan
(``TcpFlow.absorb``), with no StreamData event. What the sessions say must not change,
on either path into the table (objects, the decoder's batches)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from pcapsmtp.capture import open_capture, packets, segment_batches
from pcapsmtp.capture.model import TcpSegment
from pcapsmtp.smtp import dialogue
from pcapsmtp.smtp.message import MessageScanner
from pcapsmtp.smtp.ports import SMTP_PORTS
from pcapsmtp.smtp.tracker import SmtpTracker
from pcapsmtp.tcp import FlowTracker
from pcapsmtp.tcp.model import Endpoint, FlowEnded, StreamData, TcpFlow

CAPTURES = sorted((Path(__file__).parents[2] / "captures").glob("*.pcap"))


def _sessions(path: Path, batches: bool) -> tuple[list, int, FlowTracker]:
    """The capture's sessions, the StreamData events the SMTP tracker was handed, and the
    flow tracker."""
    flows = FlowTracker(SMTP_PORTS)
    smtp = SmtpTracker(path.name)
    sessions, data = [], 0
    with open_capture(str(path)) as capture:
        events = (
            flows.batch_events(segment_batches(capture))
            if batches
            else flows.events(packets(capture))
        )
        for event in events:
            data += type(event) is StreamData
            session = smtp.add(event)
            if session is not None:
                sessions.append(session)
    return sessions, data, flows


def _absorbed(batches: bool) -> dict[str, tuple[list, int, FlowTracker]]:
    return {path.name: _sessions(path, batches) for path in CAPTURES}


@pytest.mark.parametrize("batches", [False, True], ids=["objects", "batches"])
def test_sessions_are_the_same_with_bodies_absorbed(batches, monkeypatch):
    absorbed = _absorbed(batches)
    monkeypatch.setattr(dialogue.Dialogue, "body", lambda self: None)
    fewer = 0
    for path in CAPTURES:
        sessions, data, flows = absorbed[path.name]
        plain, plain_data, _ = _sessions(path, batches)
        assert repr(sessions) == repr(plain), path.name
        assert [s.flow.absorb for s in sessions] == [None] * len(sessions)
        assert flows._table.absorbing == 0, "every sink dropped with its flow"
        assert data <= plain_data
        fewer += plain_data - data
    # The lab's messages of several segments (attachments, large bodies) were absorbed.
    assert fewer > 50


def test_a_header_block_in_absorbed_bytes_is_read_and_its_error_raised(monkeypatch):
    """The describer is called from inside the flow table for a header block found in
    bytes it absorbed; what it raises comes out of the table's call, not swallowed."""

    class Stop(BaseException):
        pass

    read = MessageScanner._describe_block
    callers = []

    def describe(self, block, top, nested, parent_digest):
        callers.append(sys._getframe(1).f_code.co_name)
        if callers[-1] == "batch_events":
            raise Stop
        return read(self, block, top, nested, parent_digest)

    monkeypatch.setattr(MessageScanner, "_describe_block", describe)
    with pytest.raises(Stop):
        for path in CAPTURES:
            _sessions(path, True)
    assert callers[-1] == "batch_events"


def test_a_session_keeps_no_sink_when_its_flow_ends_mid_body():
    """A body chunk handed on with the flow's end (one batch) sets ``absorb`` after the
    table cleared it: the ended flow must not keep it (a session is pickled with its flow)."""
    flow = TcpFlow(
        stream=0,
        endpoints=(Endpoint(bytes([10, 0, 0, 1]), 40000), Endpoint(bytes([10, 0, 0, 2]), 25)),
        client=0,
        first_frame=1,
        first_time_ns=0,
    )
    smtp = SmtpTracker("test")
    said = [
        (1, b"220 hi\r\n"),
        (0, b"EHLO a\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n"),
        (1, b"250 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n"),
        (0, b"Subject: x\r\n\r\nbody\r\n"),
    ]
    offsets = {0: 0, 1: 0}
    for frame, (direction, data) in enumerate(said, 2):
        smtp.add(StreamData(flow, direction, offsets[direction], data, frame, frame))
        offsets[direction] += len(data)
    assert flow.absorb is not None, "the body's scan is offered to the table"
    session = smtp.add(FlowEnded(flow))
    assert session is not None
    assert session.flow.absorb is None


CLIENT_IP, SERVER_IP = bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2])
SYN, ACK = 0x02, 0x10


def _segments(said: list[tuple[bool, bytes]]) -> list[TcpSegment]:
    """A handshake, then one segment per (from the client, bytes), each acknowledging what
    the peer sent before it."""
    seq = {True: 1000, False: 5000}
    out = []

    def send(client: bool, flags: int, payload: bytes) -> None:
        src, dst = (CLIENT_IP, SERVER_IP) if client else (SERVER_IP, CLIENT_IP)
        sport, dport = (40000, 25) if client else (25, 40000)
        frame = len(out) + 1
        out.append(
            TcpSegment(
                frame,
                frame * 1000,
                4,
                src,
                dst,
                sport,
                dport,
                seq[client],
                seq[not client],
                flags,
                1000,
                b"",
                payload,
                len(payload),
                64,
                True,
                frame,
                40 + len(payload),
            )
        )
        seq[client] += len(payload) + (1 if flags & SYN else 0)

    send(True, SYN, b"")
    send(False, SYN | ACK, b"")
    send(True, ACK, b"")
    for client, payload in said:
        send(client, ACK, payload)
    return out


def _replayed(said: list[tuple[bool, bytes]]) -> tuple[str, int]:
    """repr of the sessions of the conversation, and the StreamData events handed on."""
    flows, smtp = FlowTracker(SMTP_PORTS), SmtpTracker("test")
    sessions, data = [], 0
    for event in flows.events(_segments(said)):
        data += type(event) is StreamData
        if (session := smtp.add(event)) is not None:
            sessions.append(session)
    assert flows._table.absorbing == 0
    return repr(sessions), data


def _same_with_fewer_events(said: list[tuple[bool, bytes]], monkeypatch) -> str:
    """The conversation's sessions (repr) are the same absorbed and not, with fewer events."""
    absorbed, data = _replayed(said)
    monkeypatch.setattr(dialogue.Dialogue, "body", lambda self: None)
    plain, plain_data = _replayed(said)
    monkeypatch.undo()
    assert absorbed == plain
    assert data < plain_data
    return absorbed


def _chunked(body: bytes, size: int) -> list[tuple[bool, bytes]]:
    return [(True, body[i : i + size]) for i in range(0, len(body), size)]


HEADERS = b"Subject: chunks\r\nContent-Type: text/plain\r\n\r\n"


@pytest.mark.parametrize("size", [7, 100, 1000])
def test_bdat_chunks_absorbed_give_the_same_session(size, monkeypatch):
    first = HEADERS + b"x" * 2000
    last = b"y" * 700
    said = [
        (False, b"220 hi\r\n"),
        (True, b"EHLO a\r\n"),
        (False, b"250-hi\r\n250 CHUNKING\r\n"),
        (True, b"MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\n"),
        (False, b"250 ok\r\n250 ok\r\n"),
        (True, b"BDAT %d\r\n" % len(first) + first[:50]),
        *_chunked(first[50:], size),
        (True, b"BDAT %d LAST\r\n" % len(last)),
        *_chunked(last, size),
        (False, b"250 ok\r\n250 queued\r\n"),
        (True, b"QUIT\r\n"),
        (False, b"221 bye\r\n"),
    ]
    sessions = _same_with_fewer_events(said, monkeypatch)
    assert "bdat_size=2045" in sessions and "size=2745" in sessions


def test_data_body_with_a_reply_mid_body_gives_the_same_session(monkeypatch):
    """A 421 mid-DATA and the client's bytes after it, then the end of data."""
    said = [
        (False, b"220 hi\r\n"),
        (True, b"EHLO a\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n"),
        (False, b"250 hi\r\n250 ok\r\n250 ok\r\n354 go\r\n"),
        *_chunked(HEADERS + b"z" * 900 + b"\r\n", 100),
        (False, b"421 shutting down\r\n"),
        *_chunked(b"w" * 300 + b"\r\n.\r\nQUIT\r\n", 100),
        (False, b"250 queued\r\n221 bye\r\n"),
    ]
    _same_with_fewer_events(said, monkeypatch)

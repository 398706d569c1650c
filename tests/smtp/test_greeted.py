"""A connection whose only event is the server's first chunk holds it unread
(``smtp/tracker.py`` ``_Greeted``, issue 19: a flood's 100,000 open greeted connections) and
reads it when anything else comes: the session must be what reading it on arrival made."""

from __future__ import annotations

import pytest

from pcapsmtp.smtp import tracker
from pcapsmtp.smtp.tracker import SmtpTracker, _Connection, _Greeted
from pcapsmtp.tcp.model import Endpoint, FlowEnded, StreamData, TcpFlow

MS = 1_000_000


def _flow() -> TcpFlow:
    """A flow whose handshake ACK is not known yet when the greeting comes."""
    return TcpFlow(
        stream=7,
        endpoints=(Endpoint(bytes([10, 0, 0, 1]), 40000), Endpoint(bytes([10, 0, 0, 2]), 25)),
        client=0,
        first_frame=1,
        first_time_ns=0,
        syn_time_ns=0,
        synack_time_ns=10 * MS,
    )


def _session(hold: int, monkeypatch, later: bool = True):
    """The session of a greeting, then (``later``) the handshake's ACK known, an EHLO and
    its reply; ``hold`` is ``GREETING_HOLD``."""
    monkeypatch.setattr(tracker, "GREETING_HOLD", hold)
    flow, smtp = _flow(), SmtpTracker("test")
    assert smtp.add(StreamData(flow, 1, 0, b"220 mx ESMTP\r\n", 4, 30 * MS)) is None
    held = smtp._connections[7]
    if later:
        # What the flow table's handshake event sets on a live flow (tcp/flows.py kind 3).
        flow.handshake_ack_time_ns = 40 * MS
        smtp.add(StreamData(flow, 0, 0, b"EHLO a\r\n", 5, 50 * MS))
        smtp.add(StreamData(flow, 1, 14, b"250 hi\r\n", 6, 60 * MS))
    return held, smtp.add(FlowEnded(flow))


@pytest.mark.parametrize("later", [True, False])
def test_a_held_greeting_reads_as_it_would_have_on_arrival(monkeypatch, later):
    held, session = _session(512, monkeypatch, later)
    assert type(held) is _Greeted
    eager, reference = _session(0, monkeypatch, later)
    assert type(eager) is _Connection
    # The latency is from the SYN/ACK: the ACK came after the greeting.
    assert session.greeting_latency_ns == reference.greeting_latency_ns == 20 * MS
    assert session.flow.handshake_ack_time_ns == (40 * MS if later else None)
    assert [e.text for e in session.dialogue] == [e.text for e in reference.dialogue]
    assert session.outcome == reference.outcome and session.helo == reference.helo


def test_a_client_first_or_tls_chunk_is_read_on_arrival():
    flow, smtp = _flow(), SmtpTracker("test")
    smtp.add(StreamData(flow, 0, 0, b"EHLO a\r\n", 4, 30 * MS))
    assert type(smtp._connections[7]) is _Connection
    flow, smtp = _flow(), SmtpTracker("test")
    smtp.add(StreamData(flow, 1, 0, b"\x16\x03\x01\x00\x05hello", 4, 30 * MS))
    assert type(smtp._connections[7]) is _Connection

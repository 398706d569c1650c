"""STARTTLS answered 220, then the capture lost the client's ClientHello (a hole the server's
ACK proves). Without the client's side of the handshake, a TLS 1.3 record of an encrypted
alert's size from the server cannot be read as the handshake failing: the session goes on
encrypted (the capture holds the rest of the connection), capture-loss names the hole, and
no tls-handshake-failed ERROR blames an 'unknown alert'."""

from __future__ import annotations

from pathlib import Path

from pcapsmtp.analysis import analyze
from pcapsmtp.smtp.model import Outcome
from tests.capture_edits import drop_frames, payloads
from tests.diagnose.helpers import lab


def test_a_lost_client_hello_is_no_failed_handshake(tmp_path):
    source = Path(lab("starttls-auth-587"))
    [hello] = [
        n for n, _s, dport, data in payloads(source) if dport == 587 and data[:3] == b"\x16\x03\x01"
    ]
    path = drop_frames(source, tmp_path / "lost-hello.pcap", {hello})
    result = analyze([str(path)])
    [session] = list(result.sessions)
    codes = {f.code for f in result.findings}
    assert session.outcome == Outcome.ENCRYPTED
    assert "tls-handshake-failed" not in codes
    assert "capture-loss" in codes

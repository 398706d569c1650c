"""TLS is told by its content, not by the 220: a capture that lost the server's '220 Ready to
start TLS' still shows the client's ClientHello right after STARTTLS. It was read as an
unrecognised command, the session 'incomplete', and server-closed (ERROR) said the server
closed 'during an unrecognised command'. The session is 'encrypted', as with the 220, and
the lost reply leaves no command waiting; capture-loss tells what is missing."""

from __future__ import annotations

from pathlib import Path

from pcapsmtp.analysis import analyze
from pcapsmtp.diagnose import ERROR
from pcapsmtp.smtp.model import Outcome
from tests.capture_edits import drop_frames, payloads
from tests.diagnose.helpers import lab


def test_a_lost_220_to_starttls_still_starts_tls(tmp_path):
    source = Path(lab("starttls-25"))
    [ready] = [n for n, sport, _d, data in payloads(source) if sport == 25 and b"TLS" in data[:40]]
    edited = drop_frames(source, tmp_path / "lost-220.pcap", {ready})
    result = analyze([str(edited)])
    [session] = list(result.sessions)
    assert session.outcome == Outcome.ENCRYPTED
    assert session.tls is not None
    codes = {f.code for f in result.findings}
    assert "capture-loss" in codes
    assert not [f.code for f in result.findings if f.severity == ERROR]

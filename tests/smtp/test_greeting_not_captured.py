"""A greeting the capture missed is not a server that closed without one: in retry-storm
each connection is greeted with a 421 and closed; with the greeting's frame dropped from
the capture (the client's ACK and the server's FIN are past its 80 bytes) the session was
'refused' and connect-refused said the server closed 'before sending any 220 greeting'."""

from __future__ import annotations

from pathlib import Path

from pcapsmtp.analysis import analyze
from pcapsmtp.diagnose.coverage import unexplained
from pcapsmtp.smtp.model import Outcome
from tests.capture_edits import drop_frames, payloads
from tests.diagnose.helpers import lab


def test_a_greeting_lost_by_the_capture_is_not_a_refusal(tmp_path):
    source = Path(lab("retry-storm"))
    greeting = next(n for n, sport, _dport, _data in payloads(source) if sport == 25)
    edited = drop_frames(source, tmp_path / "lost-greeting.pcap", {greeting})
    result = analyze([str(edited)])
    first = next(s for s in result.sessions if s.flow.first_frame < greeting <= s.flow.last_frame)
    assert first.outcome != Outcome.REFUSED
    codes = {f.code for f in result.findings if f.session == first.id}
    assert "connect-refused" not in codes
    assert "capture-loss" in codes
    assert unexplained([first], result.findings) == []

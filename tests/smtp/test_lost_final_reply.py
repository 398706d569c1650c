"""A reply to the end of data that the capture lost, followed by QUIT answered 221 and the
client's RST after its own FIN (public suricata-mime-quoted-printable, frame 71 dropped):
replies come in order, so the server had answered the message; the session is undecided
('incomplete', capture-loss tells why), not 'reset during a transaction'."""

from __future__ import annotations

from pcapsmtp.analysis import analyze
from pcapsmtp.smtp.model import Outcome
from tests.capture_edits import drop_frames, payloads


def test_a_lost_final_reply_before_an_answered_quit_is_not_a_reset(public_capture, tmp_path):
    source = public_capture("suricata-mime-quoted-printable_input.pcap")
    [final] = [
        n for n, sport, _d, data in payloads(source) if sport == 587 and data[:4] == b"250 "
    ][-1:]
    edited = drop_frames(source, tmp_path / "lost-250.pcap", {final})
    result = analyze([str(edited)])
    [session] = list(result.sessions)
    assert session.quit is not None and session.quit.reply is not None
    assert session.outcome == Outcome.INCOMPLETE
    assert "capture-loss" in {f.code for f in result.findings if f.session == session.id}

"""Capture loss inside a DATA body. The reassembly gives up one hole per acknowledgement, so
when several holes lie near a message's end the client's last body bytes (its final dot
among them) are delivered after the server's 250 that answered the message: the reply ends
the message first (its dot was not read), and the bytes that follow, sent before that reply,
are the rest of the message. Read as commands, their lone '.' line made a second end of data
that no reply answers ("no reply" in ``diff``, the session outcome incomplete)."""

from __future__ import annotations

from pathlib import Path

from pcapsmtp.analysis import analyze
from pcapsmtp.smtp.events import END_OF_DATA
from pcapsmtp.smtp.model import Outcome
from tests.capture_edits import drop_frames, payloads
from tests.diagnose.helpers import lab


def _lossy(tmp_path: Path) -> Path:
    """pmtud-working without three of the client's body segments near the message's end,
    with no acknowledgement of the server between them."""
    source = Path(lab("pmtud-working"))
    client = [n for n, sport, _dport, _data in payloads(source) if sport != 25]
    server = [n for n, sport, _dport, _data in payloads(source) if sport == 25]
    final_reply = server[-2]  # 250 queued (the last is the 221 to QUIT)
    body = [n for n in client if n < final_reply]
    drop = {body[-12], body[-8], body[-4]}
    return drop_frames(source, tmp_path / "body-loss.pcap", drop)


def test_a_gap_in_the_body_makes_one_end_of_data(tmp_path):
    result = analyze([str(_lossy(tmp_path))])
    [session] = list(result.sessions)
    ends = [c for c in session.commands if c.verb == END_OF_DATA]
    assert len(ends) == 1, [(c.frame, c.reply) for c in ends]
    assert ends[0].reply is not None and ends[0].reply.code == 250
    assert not [u for u in session.unanswered if u.command.verb == END_OF_DATA]
    assert "capture-loss" in {f.code for f in result.findings}
    assert session.outcome == Outcome.DELIVERED

"""Capture loss inside a DATA body. The reassembly gives up one hole per acknowledgement, so
when several holes lie near a message's end the client's last body bytes (its final dot
among them) are delivered after the server's 250 that answered the message: the reply ends
the message first (its dot was not read), and the bytes that follow, sent before that reply,
are the rest of the message. Read as commands, their lone '.' line made a second end of data
that no reply answers ("no reply" in ``diff``, the session outcome incomplete)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pcapsmtp.analysis import analyze
from pcapsmtp.smtp.dialogue import Dialogue
from pcapsmtp.smtp.events import CLIENT, END_OF_DATA, SERVER, Command, Unanswered
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


def _events(steps) -> list:
    """The dialogue's events for (sender, frame, bytes or a gap's length) in this order."""
    dialogue = Dialogue()
    offsets = {CLIENT: 0, SERVER: 0}
    events = []
    for sender, frame, data in steps:
        if isinstance(data, int):
            dialogue.gap(sender, data, frame, frame * 1000, "not captured")
            offsets[sender] += data
        else:
            dialogue.feed(sender, data, offsets[sender], frame, frame * 1000)
            offsets[sender] += len(data)
        events += dialogue.take()
    dialogue.finish(99, 99_000)
    return events + list(dialogue.take())


_OPENING = [
    (SERVER, 1, b"220 mx ESMTP\r\n"),
    (CLIENT, 2, b"EHLO c\r\n"),
    (SERVER, 3, b"250 mx\r\n"),
    (CLIENT, 4, b"MAIL FROM:<a@b>\r\n"),
    (SERVER, 5, b"250 ok\r\n"),
    (CLIENT, 6, b"RCPT TO:<c@d>\r\n"),
    (SERVER, 7, b"250 ok\r\n"),
    (CLIENT, 8, b"DATA\r\n"),
    (SERVER, 9, b"354 go\r\n"),
    (CLIENT, 10, b"Subject: x\r\n\r\nfirst line\r\n"),
]


def _one_end_of_data(after) -> None:
    """A 500-byte hole in the body, the server's 250 to the message (frame 20), then
    ``after``: one end of data, the QUIT answered 221, no command left unanswered."""
    events = _events([*_OPENING, (CLIENT, 20, 500), (SERVER, 20, b"250 queued as X\r\n"), *after])
    commands = [e for e in events if isinstance(e, Command)]
    assert len([c for c in commands if c.verb == END_OF_DATA]) == 1
    [quit_] = [c for c in commands if c.verb == "QUIT"]
    assert quit_.reply is not None and quit_.reply.code == 221
    assert not [e for e in events if isinstance(e, Unanswered)]


def test_the_tail_sent_before_the_reply_is_the_message():
    """The body's last bytes (frame 15, a line that looks like a command, the dot) come
    after the 250 of frame 20."""
    _one_end_of_data(
        [
            (CLIENT, 15, b"ine\r\nmail me later\r\nlast line\r\n.\r\n"),
            (CLIENT, 21, b"QUIT\r\n"),
            (SERVER, 22, b"221 bye\r\n"),
        ]
    )


@pytest.mark.parametrize("gap_after", [False, True])
def test_a_dot_lost_in_a_gap_leaves_the_next_command_read(gap_after):
    """No tail comes: the dot was in the gap. The client's next command (sent after the
    reply) is read as before, after a further gap too."""
    more = [(CLIENT, 21, 100)] if gap_after else []
    _one_end_of_data([*more, (CLIENT, 23, b"QUIT\r\n"), (SERVER, 24, b"221 bye\r\n")])

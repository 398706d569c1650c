"""What a held session keeps once instead of a copy of its own (docs/performance-log.md,
"What grows with a streamed capture's length"): the parsed EHLO reply, command verbs, a
line's first frame, enhanced codes. Identity is what is tested; the values are the ones
the copies had."""

from __future__ import annotations

from pcapsmtp.smtp import software
from pcapsmtp.smtp.dialogue import Dialogue
from pcapsmtp.smtp.events import CLIENT, SERVER, Command, Reply
from pcapsmtp.smtp.software import parse_ehlo, shared_ehlo
from pcapsmtp.smtp.transactions import _enhanced

EHLO = ["mx.example.net", "PIPELINING", "SIZE 52428800", "AUTH PLAIN LOGIN", "8BITMIME"]


def _fresh(lines: list[str]) -> list[str]:
    """Equal strings that are other objects (as every session's reply lines were)."""
    return ["".join(list(line)) for line in lines]


def test_sessions_given_one_ehlo_reply_share_its_parse():
    first, second = shared_ehlo(_fresh(EHLO)), shared_ehlo(_fresh(EHLO))
    assert first is second
    assert first == parse_ehlo(EHLO)
    other = shared_ehlo([*EHLO, "STARTTLS"])
    assert other is not first and other["starttls"] and not first["starttls"]


def test_shared_ehlo_table_is_bounded(monkeypatch):
    monkeypatch.setattr(software, "MAX_EHLO_REMEMBERED", 2)
    monkeypatch.setattr(software, "_EHLO_REMEMBERED", {})
    for n in range(5):
        assert shared_ehlo([f"mx{n}.example.net", "SIZE"])["domain"] == f"mx{n}.example.net"
        assert len(software._EHLO_REMEMBERED) <= 2
    long = ["mx.example.net", "X" * (software.REMEMBERED_TEXT + 1)]
    assert shared_ehlo(long) == parse_ehlo(long)
    assert tuple(long) not in software._EHLO_REMEMBERED


def _events(frame_base: int) -> list:
    dialogue = Dialogue(greeting_expected=True)
    offsets = {CLIENT: 0, SERVER: 0}
    events = []
    for n, (sender, data) in enumerate(
        [
            (SERVER, b"220 mx.example.net ESMTP\r\n"),
            (CLIENT, b"ehlo client.example.org\r\n"),
            (SERVER, b"250 mx.example.net\r\n"),
            (CLIENT, b"mail from:<a@example.org>\r\n"),
            (SERVER, b"250 2.1.0 Ok\r\n"),
        ]
    ):
        frame = frame_base + n  # beyond the interpreter's cached small ints
        dialogue.feed(sender, data, offsets[sender], frame, frame * 1000)
        offsets[sender] += len(data)
        events += dialogue.take()
    return events


def test_known_verbs_and_first_frames_are_one_object():
    ours, theirs = _events(10_000_000), _events(20_000_000)
    commands = [e for e in ours if type(e) is Command]
    others = [e for e in theirs if type(e) is Command]
    assert [c.verb for c in commands] == ["EHLO", "MAIL"]
    for mine, other in zip(commands, others, strict=True):
        assert mine.verb is other.verb
    for event in ours:
        if type(event) in (Command, Reply):
            assert event.first_frame == event.frame
            assert event.first_frame is event.frame


def test_enhanced_codes_are_shared_texts():
    first, second = _enhanced("".join(["2.1.5", " Ok"])), _enhanced("".join(["2.1.5", " Ok"]))
    assert first == "2.1.5" and first is second
    assert _enhanced("250 Ok") is None

"""The SMTP framing in the compiled core (pcapsmtp._core.LineFramer and MessageScan), at the
binding the dialogue and the message scanner use: what Python relies on beyond the Rust unit
tests (core/src/smtp_framing.rs, core/src/message_scan.rs) and the fuzz target."""

from __future__ import annotations

import pytest

from pcapsmtp import _core
from pcapsmtp.smtp.message import MessageScanner


def test_lines_come_in_order_with_where_they_began():
    framer = _core.LineFramer(4096)
    assert framer.feed(b"EHLO a\r\nMAIL", 0, 1000, 3) == [(b"EHLO a\r\n", 3, 1000, 8, 8)]
    assert (framer.partial, framer.first_frame, framer.offset) == (b"MAIL", 3, 1008)
    assert framer.feed(b"xx FROM:<>\r\n", 2, 1010, 4) == [(b"MAIL FROM:<>\r\n", 3, 1008, 14, 12)]
    assert framer.partial == b""


def test_a_line_past_the_cap_is_said_once_and_not_held():
    framer = _core.LineFramer(8)
    assert framer.feed(b"A" * 100, 0, 0, 1) == [None]
    assert framer.feed(b"B" * 100, 0, 100, 2) == []
    assert framer.partial == b"A" * 8
    [line] = framer.feed(b"\r\nQ", 0, 200, 3)
    assert line == (b"A" * 8, 1, 0, 202, 2)
    framer.clear()
    assert framer.partial == b""


@pytest.mark.parametrize("at", range(0, 12))
def test_end_of_data_split_anywhere(at):
    """CRLF.CRLF found wherever the segments split it; the message is what came before."""
    wire = b"Hi\r\n..x\r\n.\r\nQUIT\r\n"
    scanner = MessageScanner()
    first, second = wire[:at], wire[at:]
    end = scanner.feed_data(first, 0)
    if end < 0:
        end = scanner.feed_data(second, 0) + len(first)
    assert end == wire.index(b"QUIT")
    facts = scanner.finish()
    assert facts.size == len(b"Hi\r\n.x\r\n")


def test_no_end_of_data_across_a_gap():
    scanner = MessageScanner()
    assert scanner.feed_data(b"a\r\n", 0) == -1
    scanner.lost()
    assert scanner.feed_data(b".\r\nb\r\n.\r\n", 0) == 9


def test_bdat_takes_only_its_chunk():
    scanner = MessageScanner(dot_stuffed=False)
    assert scanner.feed_bdat(b"xxSubject: a\r\n\r\nbodyQUIT\r\n", 2, 20) == 20
    assert scanner.feed_bdat(b"more", 0, 0) == 0
    facts = scanner.finish()
    assert (facts.size, facts.subject) == (20, "a")


def test_an_interrupt_in_the_header_reader_is_raised_not_swallowed():
    """Peer data never makes the describer raise (it catches Exception); an interrupt
    reaching it must still stop the run."""

    def interrupted(*_):
        raise KeyboardInterrupt

    scan = _core.MessageScan(True)
    scan.feed(b"Subject: x\r\n\r\nbody\r\n", interrupted)
    with pytest.raises(KeyboardInterrupt):
        scan.finish(interrupted)

"""The SMTP framing in the compiled core (pcapsmtp._core.LineFramer and MessageScan), at the
binding the dialogue and the message scanner use: what Python relies on beyond the Rust unit
tests (core/src/smtp_framing.rs, core/src/message_scan.rs) and the fuzz target."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pcapsmtp import _core
from pcapsmtp.smtp.message import MessageScanner
from pcapsmtp.smtp.syntax import _decode


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


def test_reply_lines_come_split_into_code_separator_and_text():
    framer = _core.LineFramer(4096)
    got = framer.replies(b"250-mx\r\n250 \xc3\xa9 \xff\r\nhello\r\n354", 0, 100, 5)
    assert got == [
        (250, ord("-"), "mx", 5, 100, 8),
        (250, ord(" "), "é \\xff", 5, 108, 18),
        (None, 0, b"hello", 5, 118, 25),
    ]
    assert framer.partial == b"354"
    assert framer.replies(b"\r\n", 0, 128, 6) == [(354, 0, "", 5, 125, 2)]


def test_command_lines_come_decoded_with_their_line_end():
    framer = _core.LineFramer(8)
    got = framer.commands(b"QUIT\r\nRSET\nNOOP NOOP NOOP\r\nMAIL", 0, 0, 1)
    assert got == [
        ("QUIT", True, 1, 0, 6, 6),
        ("RSET", False, 1, 6, 5, 11),
        None,  # past the cap: cut there, its line end lost with the rest
        ("NOOP NOO", False, 1, 11, 16, 27),
    ]
    got = framer.commands(b" FROM:<>\r\n", 0, 31, 2)
    assert got == [None, ("MAIL FRO", False, 1, 27, 14, 10)]


_WIRE = st.binary(max_size=12) | st.lists(
    st.sampled_from(
        [b"250", b"2", b"0", b"x", b" ", b"-", b"\t", b"\r", b"\n", b"\xc3\xa9", b"\xff"]
    ),
    max_size=8,
).map(b"".join)


@given(_WIRE)
def test_a_line_reads_as_the_python_reading_of_it(raw):
    """The core's reading of a line is what the dialogue read in Python before it moved
    there: ``(\\d{3})([ \\t-]?)(.*)`` on the line less its CRs and LFs, decoded as
    ``syntax._decode`` does."""
    line = raw.rstrip(b"\r\n")
    match = re.fullmatch(rb"(\d{3})([ \t-]?)(.*)", line, re.DOTALL)
    if match:
        separator = ord(match.group(2)) if match.group(2) else 0
        assert _core.reply_line(raw) == (int(match.group(1)), separator, _decode(match.group(3)))
    else:
        assert _core.reply_line(raw) == (None, 0, line)
    assert _core.command_line(raw) == (_decode(line), raw.endswith(b"\r\n"))

"""Wire text is escaped once, where it is written out. The findings' prose quoted replies and
subjects with ``repr``, which escaped them already: a byte that is not UTF-8 (made the text
``\\xff`` when read) showed as ``\\xff`` in a finding's summary and ``\\\\xff`` in its
detail, and a control character as ``\\x1b`` in the detail but escaped by the output in the
summary."""

from __future__ import annotations

import json

from click.testing import CliRunner

from pcapsmtp.analysis import analyze
from pcapsmtp.cli import main
from tests.conversation import Conversation


def _refused(folder, reply: bytes, subject: bytes = b"hello"):
    c = Conversation()
    c.handshake()
    c.say(
        ("S", b"220 mx.example ESMTP\r\n"),
        ("C", b"EHLO client.example\r\n"),
        ("S", b"250 mx.example\r\n"),
        ("C", b"MAIL FROM:<a@client.example>\r\n"),
        ("S", b"250 2.1.0 Ok\r\n"),
        ("C", b"RCPT TO:<b@mx.example>\r\n"),
        ("S", b"250 2.1.5 Ok\r\n"),
        ("C", b"DATA\r\n"),
        ("S", b"354 go\r\n"),
        ("C", b"Subject: " + subject + b"\r\nFrom: a@client.example\r\n\r\nbody\r\n.\r\n"),
        ("S", reply),
        ("C", b"QUIT\r\n"),
        ("S", b"221 bye\r\n"),
    )
    c.close()
    return str(c.write(folder / "refused.pcap"))


def _run(*args: str) -> str:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout


def test_a_byte_that_is_not_utf8_is_shown_alike_in_summary_and_detail(tmp_path):
    path = _refused(tmp_path, b"554 5.7.1 rejected \xff here\r\n")
    [finding] = [f for f in analyze([path]).findings if f.code == "hard-bounce"]
    assert "rejected \\xff here" in finding.summary
    assert "'554 5.7.1 rejected \\xff here'" in finding.detail
    shown = _run("show", "--session", "1", path)
    assert "\\\\xff" not in shown and shown.count("rejected \\xff here") >= 3
    document = json.loads(_run("analyze", "--format", "json", path))
    [detail] = [f["detail"] for f in document["findings"] if f["code"] == "hard-bounce"]
    assert "rejected \\xff here" in detail and "\\\\xff" not in detail


def test_a_control_character_is_escaped_by_the_output_in_summary_and_detail(tmp_path):
    path = _refused(tmp_path, b"554 5.7.1 \x1b[31mred\r\n", subject=b"\x1b[2Jsubject")
    [finding] = [f for f in analyze([path]).findings if f.code == "hard-bounce"]
    assert "\x1b[31mred" in finding.detail and "\x1b[2Jsubject" in finding.summary
    shown = _run("show", "--session", "1", path)
    assert "\x1b" not in shown
    assert "\\\\x1b" not in shown and "'554 5.7.1 \\x1b[31mred'" in shown
    assert "subject '\\x1b[2Jsubject'" in shown


def test_quotes_stay_as_repr_put_them(tmp_path):
    """Plain text reads as before: in single quotes, or double when it holds a single."""
    path = _refused(tmp_path, b"554 5.7.1 don't\r\n", subject=b'say "hi"')
    [finding] = [f for f in analyze([path]).findings if f.code == "hard-bounce"]
    assert '"554 5.7.1 don\'t"' in finding.detail
    assert "subject 'say \"hi\"'" in finding.summary

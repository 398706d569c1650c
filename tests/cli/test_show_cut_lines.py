"""A line longer than the parser keeps (4096 bytes) is cut: ``show`` (and the reports, and
the JSON) printed its beginning as if it were the whole line. It is now one of the session's
limits (docs/limits.md): a warning on stderr, JSON ``limits``, 'Limit reached' in the reports
and, in text and in Markdown, under ``show``'s table."""

from __future__ import annotations

import json

from click.testing import CliRunner

from pcapsmtp.cli import main
from tests.captures import LAB
from tests.conversation import Conversation


def _long_reply(folder):
    c = Conversation()
    c.handshake()
    reply = b"550 5.7.1 " + b"A" * 5000 + b"END\r\n"
    c.say(
        ("S", b"220 mx.example ESMTP\r\n"),
        ("C", b"EHLO client.example\r\n"),
        ("S", b"250 mx.example\r\n"),
        ("C", b"MAIL FROM:<a@client.example>\r\n"),
    )
    for start in range(0, len(reply), 1400):
        c.send("S", reply[start : start + 1400])
    c.say(("C", b"QUIT\r\n"), ("S", b"221 bye\r\n"))
    c.close()
    return str(c.write(folder / "long-reply.pcap"))


def test_show_says_a_line_was_cut(tmp_path):
    path = _long_reply(tmp_path)
    for fmt in ("text", "md"):
        result = CliRunner().invoke(main, ["show", "--session", "1", "--format", fmt, path])
        assert result.exit_code == 0, result.output
        assert "550 5.7.1 AAAA" in result.stdout and "END" not in result.stdout
        assert "Limit reached (docs/limits.md): a server line of more than 4096 bytes (frame" in (
            result.stdout
        )
        assert "only the beginning" in result.stdout
        assert "a per-session cap" in result.stderr


def test_show_of_a_session_without_cut_lines_says_nothing_of_it():
    result = CliRunner().invoke(main, ["show", "--session", "1", str(LAB / "clean-delivery.pcap")])
    assert result.exit_code == 0 and "Limit reached" not in result.stdout


def test_the_json_and_the_reports_list_the_cut_line(tmp_path):
    path = _long_reply(tmp_path)
    result = CliRunner().invoke(main, ["analyze", "--format", "json", path])
    [session] = json.loads(result.stdout)["sessions"]
    assert session["limits"] == [
        "a server line of more than 4096 bytes (frame 10): only the beginning kept"
    ]
    out = tmp_path / "report.md"
    CliRunner().invoke(main, ["report", path, "-o", str(out)])
    assert "Limit reached (pcapsmtp docs/limits.md): a server line of more than 4096" in (
        out.read_text()
    )

"""Counts agree with their nouns wherever the reports print them ('1 SMTP session')."""

from __future__ import annotations

import re

from click.testing import CliRunner

from pcapsmtp.cli import main
from tests.captures import LAB

ONE = str(LAB / "server-timeout.pcap")
MANY = str(LAB / "retry-storm.pcap")
WRONG = re.compile(r"\b1 (?:SMTP sessions|sessions|findings|recipients|TCP connections)\b")


def _out(*args: str) -> str:
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code in (0, 1), result.output
    return result.stdout


def test_one_session_is_singular_in_text_and_markdown():
    text = _out("analyze", ONE)
    assert "\n  1 SMTP session\n" in text + "\n"
    md = _out("analyze", "--format", "md", ONE)
    assert "1 SMTP session" in md
    for output in (text, md):
        assert not WRONG.search(output), WRONG.search(output)


def test_many_sessions_stay_plural():
    assert "240 SMTP sessions" in _out("analyze", MANY)

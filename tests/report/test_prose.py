"""Running text of the reports: backticked commands as code, wire text inert either way; the
names servers give themselves; session lists and alike findings as the pages show them."""

from __future__ import annotations

import pytest
from markdown_it import MarkdownIt

from pcapsmtp.report.document import _hostname
from pcapsmtp.report.findings import finding_cards, ranges
from pcapsmtp.report.html import prose as html_prose
from pcapsmtp.report.markdown_report import prose as markdown_prose
from tests.report.helpers import Elements

ADVICE = "run `tracepath 10.77.2.2` from 10.77.1.2; `ping -M do -s 1472 10.77.2.2` should fail"
HOSTILE = "the server said '`<script>alert(1)</script>` \x1b[31m <img src=x onerror=alert(2)> `"


def test_html_prose_shows_commands_as_code():
    page = Elements(f"<p>{html_prose(ADVICE)}</p>")
    assert [tag for tag, _ in page.tags] == ["p", "code", "code"]
    assert "".join(page.text) == ADVICE.replace("`", "")


def test_html_prose_keeps_wire_text_inert():
    markup = str(html_prose(HOSTILE))
    page = Elements(f"<p>{markup}</p>")
    assert {tag for tag, _ in page.tags} <= {"p", "code"}
    assert "<script>alert(1)</script>" in "".join(page.text), "shown, as code"
    assert "\x1b" not in markup and "\\x1b[31m" in markup


def test_markdown_prose_renders_commands_as_code_spans():
    html = MarkdownIt("commonmark").render(markdown_prose(ADVICE))
    assert html.count("<code>") == 2
    assert "<code>ping -M do -s 1472 10.77.2.2</code>" in html


def test_markdown_prose_keeps_wire_text_inert_even_with_raw_html_allowed():
    html = MarkdownIt("commonmark", {"html": True}).render(markdown_prose(HOSTILE))
    page = Elements(html)
    assert {tag for tag, _ in page.tags} <= {"p", "code"}
    assert "<script>alert(1)</script>" in "".join(page.text)
    assert "<img src=x onerror=alert(2)>" in "".join(page.text), "escaped outside the code"


@pytest.mark.parametrize(
    ("reply", "name"),
    [
        ("server.lab.test ESMTP Postfix (lab)", "server.lab.test"),
        ("4.3.2 <unknown[10.77.1.2]>: Client host rejected: lab: service unavailable", None),
        ("4.3.2 mx1.example.com Service not available", "mx1.example.com"),
        ("mailhost ESMTP Sendmail 8.17.1", "mailhost"),
        ("[192.0.2.7] ready", "[192.0.2.7]"),
        ("ESMTP ready", None),
        ("Service ready", None),
        ("10.77.2.2 ESMTP", None),
        ("", None),
    ],
)
def test_the_name_a_server_gives_itself(reply, name):
    assert _hostname(reply) == name


def test_ranges():
    assert ranges(list(range(1, 241))) == "1–240"
    assert ranges([1, 2]) == "1, 2"
    assert ranges([9, 1, 2, 3, 5, 7, 8]) == "1–3, 5, 7–9"
    assert ranges([]) == ""


def _finding(session, frames, summary="421 from the server", fil="tcp.stream eq 0"):
    return {"capture": "a.pcap", "code": "soft-bounce", "severity": "warning",
            "summary": summary, "session": session, "tcp_stream": session - 1,
            "frames": frames, "filter": fil, "detail": "", "next_steps": []}  # fmt: skip


def test_alike_findings_become_one_card_and_different_ones_stay_apart():
    findings = [_finding(1, [6]), _finding(2, [14]), _finding(3, [22]), _finding(4, [30], "other")]
    cards = finding_cards(findings)
    assert [c["count"] for c in cards] == [3, 1]
    assert cards[0]["sessions"] == "1–3" and cards[0]["frames"] == [6, 14, 22]
    assert cards[0]["filter"] == "frame.number in {6, 14, 22}"
    assert cards[1]["filter"] == "tcp.stream eq 0", "a lone finding keeps its own filter"

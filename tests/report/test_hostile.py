"""A capture crafted by an attacker (tests/report/hostile.py) yields reports in which its
markup, scripts, terminal escapes and bidi overrides are inert, in every format, while the
text itself is still there for a reader to see."""

from __future__ import annotations

import json

import pytest
from markdown_it import MarkdownIt

from tests.report import hostile
from tests.report.helpers import FORMATS, LAB, UNSAFE_CHARACTERS, Elements, plain, report

pytestmark = pytest.mark.xdist_group("report-hostile")


@pytest.fixture(scope="module", params=["alone", "with-baseline"])
def reports(request, tmp_path_factory) -> dict[str, str]:
    """The hostile capture's reports, alone and against a clean baseline (the diff's steps
    and verdict then quote the hostile replies too)."""
    folder = tmp_path_factory.mktemp("hostile")
    capture = hostile.hostile_capture(folder)
    args = ["--baseline", str(LAB / "clean-delivery.pcap")] if request.param != "alone" else []
    return {fmt: report(folder, capture, fmt, *args) for fmt in FORMATS}


@pytest.mark.parametrize("fmt", FORMATS)
def test_no_control_character_reaches_the_file(reports, fmt):
    """Escape sequences and bidi overrides are shown as text (\\x1b), never written raw."""
    assert UNSAFE_CHARACTERS.findall(reports[fmt]) == []


@pytest.mark.parametrize("fmt", ["md", "html"])
def test_the_hostile_text_is_shown_not_dropped(reports, fmt):
    seen = plain(reports[fmt], fmt)
    for text in (hostile.SCRIPT, hostile.IMG, hostile.IFRAME, hostile.SUBJECT_SCRIPT):
        assert text in seen, text
    for shown in ("\\x1b[31m", "\\x1b]0;pwned\\x07", "\\u202egpj.exe", "\\x9b2J"):
        assert shown in seen, shown


def test_html_holds_no_active_element(reports):
    page = Elements(reports["html"])
    assert page.active() == []
    assert "script" not in page.names and "marquee" not in page.names
    assert [tag for tag, _ in page.tags].count("style") == 1
    assert hostile.SCRIPT in "".join(page.text), "shown as text"


def test_html_forbids_scripts_and_loads_even_if_escaping_failed(reports):
    policy = [
        attrs["content"]
        for tag, attrs in Elements(reports["html"]).tags
        if tag == "meta" and attrs.get("http-equiv") == "Content-Security-Policy"
    ]
    assert policy == ["default-src 'none'; style-src 'unsafe-inline'; img-src data:"]


def test_markdown_renders_to_no_markup_from_the_wire(reports):
    """Rendered by a CommonMark renderer that lets raw HTML through (the worst case), the
    Markdown report holds no element, link or image the capture asked for."""
    rendered = MarkdownIt("commonmark", {"html": True}).enable("table").render(reports["md"])
    page = Elements(rendered)
    assert page.active() == []
    assert page.names <= {"h1", "h2", "h3", "h4", "p", "strong", "em", "code", "pre", "ul", "li",
                          "table", "thead", "tbody", "tr", "th", "td", "blockquote"}  # fmt: skip
    assert hostile.SUBJECT_SCRIPT in "".join(page.text)


def test_markdown_code_blocks_cannot_be_closed_from_the_wire(reports):
    """The greeting holds ``` : the dialogue's fence is longer, so the block ends where the
    report ends it."""
    rendered = MarkdownIt("commonmark").render(reports["md"])
    blocks = rendered.count("<pre>")
    assert blocks == reports["md"].count("\n````text\n") + reports["md"].count("\n```text\n")
    assert "```" in reports["md"]


def test_json_keeps_the_data_and_escapes_the_controls(reports):
    document = json.loads(reports["json"])
    session = document["sessions"][0]
    assert session["smtp"]["banner"].startswith("mx.evil.example ESMTP " + hostile.SCRIPT)
    subject = session["smtp"]["transactions"][0]["subject"]
    assert subject.startswith(hostile.SUBJECT_SCRIPT + " \x1b[2J")
    assert hostile.RLO in subject and "\u009b" in subject
    assert "\\u001b[2J" in reports["json"] and "\\u202e" in reports["json"]

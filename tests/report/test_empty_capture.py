"""A report of a capture that holds no SMTP session (the wrong port captured, an empty
file) says so in every section; the Markdown report had a 'Destinations and clients'
heading over nothing, where the HTML report leaves the section out."""

from __future__ import annotations

import re

import dpkt
import pytest

from tests.report.helpers import report


@pytest.fixture
def empty(tmp_path):
    path = tmp_path / "empty.pcap"
    with open(path, "wb") as handle:
        dpkt.pcap.Writer(handle)
    return path


def test_no_markdown_heading_stands_over_nothing(tmp_path, empty):
    text = report(tmp_path, empty, "md")
    sections = re.split(r"^## ", text, flags=re.MULTILINE)[1:]
    assert sections
    for section in sections:
        title, _, body = section.partition("\n")
        assert body.strip(), f"section {title!r} is empty"
    assert "## Destinations and clients" not in text
    assert "0 SMTP sessions" in text


def test_the_html_report_of_no_session_says_so(tmp_path, empty):
    page = report(tmp_path, empty, "html")
    assert "No SMTP sessions." in page and 'id="overview"' not in page

"""Zeek's conn_state and history letters explained wherever they are shown (issue 18): the
words cover every state and letter met in the lab and public captures, the show text and both
reports carry the legend, and docs/zeek-conn.md says the same as pcapsmtp.report.zeek."""

from __future__ import annotations

import json
import re

import pytest
from click.testing import CliRunner
from markupsafe import escape as html_escape

from pcapsmtp.cli import main
from pcapsmtp.report.zeek import CONN_STATES, HISTORY_LETTERS, history_words, tcp_legend
from tests.captures import LAB, REPO_ROOT, all_captures, analysed, capture_id

DOC = REPO_ROOT / "docs" / "zeek-conn.md"


def test_every_state_the_schema_allows_has_words():
    schema = json.loads((REPO_ROOT / "docs" / "schema" / "analyze.schema.json").read_text())
    assert set(schema["$defs"]["tcp"]["properties"]["state"]["enum"]) == set(CONN_STATES)


@pytest.mark.parametrize("path", all_captures(), ids=capture_id)
def test_every_state_and_letter_met_has_words(path):
    for session in analysed(path).sessions:
        flow = session.flow
        assert flow.state in CONN_STATES
        unknown = {c for c in flow.history if c.lower() not in HISTORY_LETTERS}
        assert not unknown, (flow.history, unknown)


def test_history_words_name_each_letter_once_with_its_sides():
    assert history_words("ShAdDafF") == "S SYN, h SYN/ACK, A/a pure ACK, D/d data, F/f FIN"
    assert history_words("^dADTtTr") == (
        "^ direction flipped: the first packet seen was not the client's, D/d data, A pure "
        "ACK, T/t retransmitted data, r RST"
    )


def test_the_docs_page_says_what_the_module_says():
    text = DOC.read_text()
    rows = dict(re.findall(r"^\| `([^`]+)` \| (.+) \|$", text, re.MULTILINE))
    assert {k: rows[k] for k in CONN_STATES} == CONN_STATES
    assert {k: rows[k] for k in HISTORY_LETTERS} == HISTORY_LETTERS


def run(*args) -> str:
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.mark.skipif(not (LAB / "rst-in-data.pcap").exists(), reason="no lab captures")
def test_show_and_reports_carry_the_legend(tmp_path):
    capture = LAB / "rst-in-data.pcap"
    legend = tcp_legend("RSTR", "ShAdDar")
    assert legend.startswith("TCP state RSTR (Zeek conn_state): the server aborted it (RST)")
    shown = run("show", capture, "--session", "1")
    assert legend in " ".join(shown.split())  # under the timeline, before the findings
    assert shown.index("TCP state RSTR") < shown.index("Findings")
    md = run("report", capture, "-o", "-", "--format", "md")
    assert "- TCP state RSTR \\(Zeek conn\\_state\\): the server aborted it \\(RST\\)" in md
    html = run("report", capture, "-o", "-", "--format", "html")
    escaped = html_escape(legend)
    assert f'<th>TCP legend</th><td class="muted">{escaped}</td>' in html

"""The command line as a user goes from one command to the next: the ids analyze prints work
in show, export, report and diff; show and analyze --format md carry the findings; the CSV
holds one fact per column."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from pcapsmtp.cli import main
from tests.captures import LAB

pytestmark = pytest.mark.skipif(not (LAB / "rst-in-data.pcap").exists(), reason="no lab")

AUTH = str(LAB / "auth-plain-clear.pcap")
GREY = str(LAB / "greylisting.pcap")
RST = str(LAB / "rst-in-data.pcap")
BLACKHOLE = str(LAB / "mtu-blackhole.pcap")


def run(*args: str):
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


def test_every_id_analyze_prints_for_several_captures_works_in_show():
    document = json.loads(run("analyze", "--format", "json", AUTH, GREY))
    sessions = document["sessions"]
    assert [(s["capture"], s["id"]) for s in sessions] == [
        (AUTH, 1),
        (AUTH, 2),
        (AUTH, 3),
        (GREY, 1),
        (GREY, 2),
    ]
    for session in sessions:
        shown = json.loads(
            run("show", session["capture"], "--session", str(session["id"]), "--format", "json")
        )
        assert (shown["tcp_stream"], shown["client"]) == (session["tcp_stream"], session["client"])
        assert shown["findings"] == session["findings"]


def test_several_captures_get_a_capture_column_and_findings_name_the_capture():
    text = run("analyze", AUTH, GREY)
    header = next(line for line in text.splitlines() if line.startswith("#"))
    assert header.split()[:3] == ["#", "capture", "start"]
    assert any(line.startswith("1    ") and GREY in line for line in text.splitlines())
    assert f"(session 1 of {GREY})" in text
    alone = run("analyze", GREY)
    assert "capture" not in next(line for line in alone.splitlines() if line.startswith("#"))


def test_show_carries_the_findings_of_its_session():
    document = json.loads(run("analyze", "--format", "json", RST))
    expected = document["sessions"][0]["findings"]
    assert [f["code"] for f in expected] == ["middlebox-reset"]
    shown = json.loads(run("show", RST, "--session", "1", "--format", "json"))
    assert shown["findings"] == expected
    text = run("show", RST, "--session", "1")
    findings = text[text.index("\nFindings\n") :]
    assert "ERROR   middlebox-reset (session 1)" in findings
    assert "Wireshark: frame.number == 33" in findings


def test_show_picks_a_session_by_client_or_stream_and_names_the_others_when_wrong():
    document = json.loads(run("analyze", "--format", "json", AUTH))
    third = document["sessions"][2]
    by_id = run("show", AUTH, "--session", "3")
    assert run("show", AUTH, "--session", third["client"]) == by_id
    assert run("show", AUTH, "--stream", str(third["tcp_stream"])) == by_id
    wrong = CliRunner().invoke(main, ["show", AUTH, "--session", "10.77.1.2:1"])
    assert wrong.exit_code == 2
    assert "has no SMTP session from 10.77.1.2:1; its sessions: 1 (" in wrong.output
    assert third["client"] in wrong.output


def test_analyze_markdown_lists_the_findings():
    text = run("analyze", "--format", "md", BLACKHOLE)
    document = json.loads(run("analyze", "--format", "json", BLACKHOLE))
    section = text[text.index("## Findings") :]
    for finding in document["findings"]:
        assert f"`{finding['code']}`" in section
        assert f"`{finding['filter']}`" in section


def _csv(*captures: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(run("analyze", "--format", "csv", *captures))))


def test_csv_one_fact_per_column_and_the_reply_that_decided():
    rst, grey_deferred, grey_delivered, blackhole_ok, blackhole_failed = _csv(RST, GREY, BLACKHOLE)
    assert (rst["resets"], rst["reset_by"], rst["retransmissions"]) == ("1", "server", "0")
    assert rst["deciding_code"] == "" and rst["outcome"] == "reset"
    assert grey_deferred["outcome"] == "deferred"
    assert (grey_deferred["deciding_code"], grey_deferred["deciding_enhanced"]) == ("451", "4.7.1")
    assert grey_deferred["last_code"] == "221", "the last reply stays what it says"
    assert grey_delivered["deciding_code"] == "250"
    assert blackhole_failed["retransmissions"] == "7" and blackhole_failed["reset_by"] == "client"
    for row in (rst, grey_deferred, blackhole_failed):
        assert all("," not in row[c] for c in ("retransmissions", "resets", "reset_by"))
    assert blackhole_ok["resets"] == "0"


def test_the_text_table_shows_the_deciding_reply():
    text = run("analyze", GREY)
    row = next(line for line in text.splitlines() if line.startswith("1 "))
    assert "deferred   451 4.7.1" in row and "221" not in row


def test_diff_takes_the_same_selectors():
    by_id = run("diff", GREY, GREY, "--good-session", "2", "--bad-session", "1", "--format", "json")
    document = json.loads(run("analyze", "--format", "json", GREY))
    first = document["sessions"][0]
    by_client = run(
        "diff",
        GREY,
        GREY,
        "--good-stream",
        "1",
        "--bad-session",
        first["client"],
        "--format",
        "json",
    )
    assert by_client == by_id
    wrong = CliRunner().invoke(main, ["diff", GREY, GREY, "--bad-stream", "7"])
    assert wrong.exit_code == 2 and "has no SMTP tcp.stream 7; its sessions: 1 (" in wrong.output
    both = CliRunner().invoke(main, ["diff", GREY, GREY, "--bad-stream", "0", "--bad-session", "1"])
    assert both.exit_code == 2


def test_show_as_markdown_has_the_timeline_fenced_and_the_findings():
    from markdown_it import MarkdownIt

    text = run("show", RST, "--session", "1", "--format", "markdown")
    assert text.startswith("# Session 1 of ")
    tokens = MarkdownIt("commonmark").parse(text)
    [fence] = [t for t in tokens if t.type == "fence"]
    assert "220 server.lab.test ESMTP Postfix" in fence.content
    assert "## Findings" in text and "`middlebox-reset`" in text
    assert "`frame.number == 33`" in text


@pytest.mark.parametrize("command", [["show"], ["export", "-o", "OUT"]])
def test_show_and_export_of_a_cut_capture_warn_what_was_not_read(tmp_path, command):
    """A capture cut inside a record: show and export, whose output has no capture section,
    say on stderr that the last frame was not read (analyze says it in its output)."""
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(Path(RST).read_bytes()[:1500])
    args = [a.replace("OUT", str(tmp_path / "out.pcap")) for a in command]
    result = CliRunner().invoke(main, [args[0], str(cut), "--session", "1", *args[1:]])
    assert result.exit_code == 0, result.output
    assert f"pcapsmtp: warning: {cut}: the file is cut short inside record" in result.stderr

"""--maillog on analyze and show, through click: exit codes and the lines people read."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from pcapsmtp.cli import main
from tests.captures import LAB

pytestmark = pytest.mark.skipif(not (LAB / "greylisting.pcap").exists(), reason="no lab captures")
GREY = [str(LAB / "greylisting.pcap"), "--maillog", str(LAB / "greylisting.maillog")]


def run(*args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result


def test_analyze_text_has_the_log_summary():
    result = run("analyze", *GREY)
    assert result.exit_code == 0
    section = result.stdout.split("\nMail log\n")[1].split("\n\n")[0].splitlines()
    assert section == [
        f"  {LAB / 'greylisting.maillog'}: 11 lines, 11 used (postfix; rfc3164 time stamps)",
        "  2 of 2 sessions linked to log lines: 1 by queue id, 1 by address and time (address "
        "and time: within 2 s, then 120 s)",
        "  log and wire agree wherever both say something",
    ]
    assert "Destinations (per server address and port)" in result.stdout


def test_analyze_json_and_markdown():
    document = json.loads(run("analyze", *GREY, "--format", "json").stdout)
    log = document["maillog"]
    assert log["linked"] == {"queue id": 1, "client address and port": 0, "address and time": 1}
    assert log["files"][0]["used"] == 11 and log["unlinked_sessions"] == []
    (second,) = log["sessions"]["2"]
    assert second["method"] == "queue id" and second["notes"][0]["verdict"] == "agrees"
    assert [line["line"] for line in second["lines"]] == [5, 6, 7, 8, 9, 10, 11]
    assert document["destinations"][0]["server"] == "10.77.2.2:25"
    markdown = run("analyze", *GREY, "--format", "md").stdout
    assert "## Mail log" in markdown and "## Destinations (per server address and port)" in markdown


def test_show_prints_the_lines_beside_the_dialogue():
    result = run("show", *GREY, "--session", "2")
    tail = result.stdout.split("\nMail log, the server's: ")[1].splitlines()
    assert tail[0].startswith("linked by queue id 3F09C20E401 from the reply to the end of data")
    where = f"{LAB / 'greylisting.maillog'}:5 "
    assert tail[2].startswith(f"  {where}    -0.2 s  Nov 23 06:45:24 server postfix/smtpd[32418]:")
    assert tail[-2].startswith("  agrees: the server queued 3F09C20E401 (log line 8)")
    shown = json.loads(run("show", *GREY, "--session", "1", "--format", "json").stdout)
    assert shown["maillog"][0]["method"] == "address and time"


def test_show_says_when_no_line_belongs_to_the_session():
    result = run(
        "show",
        LAB / "connect-timeout.pcap",
        "--session",
        "1",
        "--maillog",
        LAB / "connect-timeout.maillog",
    )
    assert result.stdout.endswith(
        "Mail log: no line of the given logs belongs to this session (no queue id in its "
        "replies matched, and no log entry for its peer within 120 s).\n"
    )


def test_an_unreadable_log_is_one_error_line_and_exit_1(tmp_path):
    result = run("analyze", *GREY, "--maillog", tmp_path / "nope.log")
    assert result.exit_code == 1
    assert result.stderr == f"pcapsmtp: error: {tmp_path / 'nope.log'}: No such file or directory\n"
    assert "2 of 2 sessions linked" in result.stdout


def test_report_sections_for_the_report_document():
    from pcapsmtp.analysis import Options, analyze
    from pcapsmtp.report.maillog import session_log_markdown
    from pcapsmtp.report.overview import overview_document, overview_markdown

    analysis = analyze([GREY[0]], Options(maillogs=(GREY[2],)))
    sections = overview_markdown(analysis)
    assert sections.index("## Destinations") < sections.index("## Clients")
    assert sections.index("## Clients") < sections.index("## Mail log")
    assert set(overview_document(analysis)) == {"destinations", "clients", "maillog"}
    beside = session_log_markdown(analysis.maillog, analysis.sessions[1])
    assert beside.startswith("### Mail log\n\nThe server's log, linked by queue id 3F09C20E401")
    assert "\n- agrees: the server queued 3F09C20E401" in beside


def test_a_log_with_no_usable_line_is_not_said_to_agree(tmp_path):
    """A syslog of other programs only (here cron and sshd at the capture's time): nothing
    was compared, so "log and wire agree" would be false calm (issue 18)."""
    log = tmp_path / "messages"
    log.write_text(
        "Nov 23 06:45:50 client CRON[812]: (root) CMD (run-parts /etc/cron.hourly)\n"
        "Nov 23 06:46:01 client sshd[901]: Accepted publickey for admin from 10.77.1.9\n"
        "\x00\x01 not a log line at all\n"
    )
    capture = LAB / "server-timeout.pcap"
    text = run("analyze", capture, "--maillog", log).stdout
    assert "log and wire agree" not in text
    assert "nothing compared: the log had no usable line (tried Postfix, Exim, " in text
    assert "RFC 5424" in text and "TAI64N" in text
    document = json.loads(run("analyze", capture, "--maillog", log, "--format", "json").stdout)
    assert document["maillog"]["comparison"].startswith("nothing compared: the log had no")
    markdown = run("analyze", capture, "--maillog", log, "--format", "md").stdout
    assert "- nothing compared: the log had no usable line" in markdown
    report = tmp_path / "report.md"
    run("report", capture, "--maillog", log, "-o", report)
    assert "Comparison: nothing compared: the log had no usable line" in report.read_text()


def test_a_log_that_agrees_still_says_so():
    document = json.loads(run("analyze", *GREY, "--format", "json").stdout)
    assert document["maillog"]["comparison"] == "log and wire agree wherever both say something"

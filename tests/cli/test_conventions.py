"""Conventions shared by the commands (issue 18): one --format vocabulary, -o FILE, --tz local
honouring TZ as tshark does, and the mail log's zone as its own option."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest
from click.testing import CliRunner

from pcapsmtp.cli import main
from tests.captures import LAB

CLEAN = LAB / "clean-delivery.pcap"
pytestmark = pytest.mark.skipif(not CLEAN.exists(), reason="no lab captures")


def run(*args, env=None):
    result = CliRunner().invoke(main, [str(a) for a in args], env=env)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result


@pytest.mark.parametrize(
    "command",
    [
        ["analyze", CLEAN],
        ["diff", CLEAN, LAB / "unknown-user.pcap"],
    ],
    ids=["analyze", "diff"],
)
def test_markdown_is_md_and_case_does_not_matter(command):
    md = run(*command, "--format", "md")
    assert md.exit_code == 0 and md.stdout.strip()
    assert run(*command, "--format", "markdown").stdout == md.stdout
    assert run(*command, "--format", "MD").stdout == md.stdout


def test_an_unknown_format_is_a_usage_error():
    result = run("analyze", CLEAN, "--format", "yaml")
    assert result.exit_code == 2
    assert "'yaml' is not one of 'text', 'json', 'md', 'csv'" in result.output


@pytest.mark.parametrize(
    "command",
    [
        ["analyze", CLEAN, "--format", "json"],
        ["analyze", CLEAN, "--format", "csv"],
        ["show", CLEAN, "--session", "1"],
        ["show", CLEAN, "--session", "1", "--format", "json"],
        ["diff", CLEAN, LAB / "unknown-user.pcap", "--format", "md"],
    ],
    ids=["analyze-json", "analyze-csv", "show-text", "show-json", "diff-md"],
)
def test_output_file_holds_what_stdout_would(tmp_path, command):
    printed = run(*command)
    out = tmp_path / "out"
    written = run(*command, "-o", out)
    assert written.exit_code == printed.exit_code == 0
    assert written.stdout == ""
    assert out.read_text(encoding="utf-8") == printed.stdout
    assert run(*command, "-o", "-").stdout == printed.stdout


def test_an_unwritable_output_is_one_line(tmp_path):
    result = run("analyze", CLEAN, "-o", tmp_path / "no" / "such" / "dir.txt")
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"pcapsmtp: error: {tmp_path / 'no' / 'such' / 'dir.txt'}: No such file or directory"
    ]


def test_an_input_is_never_overwritten(tmp_path):
    capture = tmp_path / "mail.pcap"
    capture.write_bytes(CLEAN.read_bytes())
    result = run("analyze", capture, "-o", capture)
    assert result.exit_code == 2 and "is one of the inputs" in result.output
    assert capture.read_bytes() == CLEAN.read_bytes()


def test_an_unreadable_capture_writes_no_file(tmp_path):
    out = tmp_path / "out.json"
    result = run("analyze", tmp_path / "missing.pcap", "--format", "json", "-o", out)
    assert result.exit_code == 1 and not out.exists()


def test_report_to_standard_output_with_format(tmp_path):
    result = run("report", CLEAN, "-o", "-", "--format", "json")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["schema_version"]
    named = run("report", CLEAN, "-o", tmp_path / "r.md", "--format", "markdown")
    assert named.exit_code == 0 and (tmp_path / "r.md").read_text().startswith("# ")
    bare = run("report", CLEAN, "-o", "-")
    assert bare.exit_code == 2 and "give --format md|html|json" in bare.output


def first_time(text: str) -> str:
    line = next(line for line in text.splitlines() if "2026-" in line)
    return line[line.index("2026-") :][:33]


def test_tz_local_follows_the_tz_variable():
    """Wireshark/tshark show local time through the C library, which reads TZ: so do we."""
    tokyo = run("show", CLEAN, "--session", "1", "--tz", "Asia/Tokyo").stdout
    local = run("show", CLEAN, "--session", "1", "--tz", "local", env={"TZ": "Asia/Tokyo"})
    assert local.stdout == tokyo
    posix = run("show", CLEAN, "--session", "1", "--tz", "local", env={"TZ": "JST-9"})
    assert posix.stdout == tokyo
    assert "+09:00" in first_time(tokyo)


def test_default_stays_utc_whatever_tz_says():
    plain = run("show", CLEAN, "--session", "1", env={"TZ": "Asia/Tokyo"}).stdout
    assert "+00:00" in first_time(plain)


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed")
def test_local_time_is_tsharks(tmp_path):
    """The first frame's time of day under TZ=America/New_York: tshark -t ad against ours."""
    env = dict(os.environ, TZ="America/New_York")
    theirs = subprocess.run(
        ["tshark", "-r", str(CLEAN), "-t", "ad", "-c", "1", "-T", "fields", "-e", "_ws.col.Time"],
        capture_output=True, text=True, env=env, check=True,
    ).stdout.strip()  # fmt: skip
    ours = run("show", CLEAN, "--session", "1", "--tz", "local", env={"TZ": "America/New_York"})
    assert theirs[:19] == first_time(ours.stdout)[:19]


GREY = [LAB / "greylisting.pcap", "--maillog", LAB / "greylisting.maillog"]


def test_display_zone_does_not_move_the_log():
    """The lab's log is written in UTC: showing times in Tokyo must not shift its lines."""
    shown = json.loads(run("analyze", *GREY, "--tz", "Asia/Tokyo", "--format", "json").stdout)
    assert shown["maillog"]["warnings"] == []
    assert shown["maillog"]["linked"]["address and time"] == 1


def test_maillog_tz_moves_the_log():
    moved = json.loads(
        run("analyze", *GREY, "--maillog-tz", "Asia/Tokyo", "--format", "json").stdout
    )
    assert any("--maillog-tz" in w and "9.0 h" in w for w in moved["maillog"]["warnings"])


def test_an_unknown_zone_is_a_usage_error():
    result = run("analyze", CLEAN, "--maillog-tz", "Mars/Olympus")
    assert result.exit_code == 2 and "unknown time zone 'Mars/Olympus'" in result.output

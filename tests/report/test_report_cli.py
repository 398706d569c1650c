"""``pcapsmtp report`` on the command line: formats by extension, bad input, session choice,
the baseline, and the facts the issue asks for in every report."""

from __future__ import annotations

import hashlib
import json

import pytest
from click.testing import CliRunner

from pcapsmtp.cli import main
from pcapsmtp.report.timeaxis import TimeAxis
from tests.report.helpers import LAB, report

CAPTURE = LAB / "mtu-blackhole.pcap"


def run(*args: str):
    return CliRunner().invoke(main, ["report", *args])


def test_the_extension_chooses_the_format(tmp_path):
    assert report(tmp_path, CAPTURE, "md").startswith("# SMTP capture report: mtu-blackhole.pcap")
    assert report(tmp_path, CAPTURE, "html").startswith("<!DOCTYPE html>")
    assert json.loads(report(tmp_path, CAPTURE, "json"))["report"]["format"] == 1


def test_an_unknown_extension_is_a_usage_error(tmp_path):
    result = run(str(CAPTURE), "-o", str(tmp_path / "report.pdf"))
    assert result.exit_code == 2
    assert "name the report .md, .html or .json" in result.output


@pytest.mark.parametrize("where", ["capture", "baseline"])
def test_an_unreadable_input_is_one_line_and_exit_1(tmp_path, where):
    missing = str(tmp_path / "missing.pcap")
    args = (
        [missing, "--baseline", str(CAPTURE)]
        if where == "capture"
        else [str(CAPTURE), "--baseline", missing]
    )
    result = run(*args, "-o", str(tmp_path / "r.md"))
    assert result.exit_code == 1
    assert result.output == f"pcapsmtp: error: {missing}: no such file\n"
    assert not (tmp_path / "r.md").exists()


def test_an_unknown_session_is_a_usage_error(tmp_path):
    result = run(str(CAPTURE), "--session", "7", "-o", str(tmp_path / "r.md"))
    assert result.exit_code == 2
    assert "has no SMTP session 7; its sessions: 1 (10.77.1.2:" in result.output
    assert "), 2 (10.77.1.2:" in result.output and "tcp.stream 1)" in result.output


def test_standard_input_is_refused(tmp_path):
    assert run("-", "-o", str(tmp_path / "r.md")).exit_code == 2


def test_an_unwritable_output_is_one_line(tmp_path):
    result = run(str(CAPTURE), "-o", str(tmp_path / "no" / "such" / "dir.md"))
    assert result.exit_code == 1
    assert result.output.startswith("pcapsmtp: error: ")
    assert "Traceback" not in result.output


def test_capture_facts(tmp_path):
    document = json.loads(report(tmp_path, CAPTURE, "json", "--tz", "Asia/Tokyo"))
    capture = document["capture"]
    assert capture["name"] == "mtu-blackhole.pcap"
    assert capture["sha256"] == hashlib.sha256(CAPTURE.read_bytes()).hexdigest()
    assert capture["size"] == CAPTURE.stat().st_size
    assert capture["frames"] == 66
    assert capture["first_time_utc"] == "2026-11-23 06:47:34.067429 +00:00"
    assert capture["first_time_local"] == "2026-11-23 15:47:34.067429 +09:00"
    assert document["produced"]["tz"] == "Asia/Tokyo"
    output = str(tmp_path / "report.json")
    assert document["produced"]["command_line"] == [
        "pcapsmtp", "report", str(CAPTURE), "-o", output, "--tz", "Asia/Tokyo"
    ]  # fmt: skip


def test_findings_carry_evidence_and_filters(tmp_path):
    document = json.loads(report(tmp_path, CAPTURE, "json"))
    blackhole = next(f for f in document["findings"] if f["code"] == "mtu-blackhole")
    assert blackhole["frames"] and blackhole["filter"].startswith("frame.number in {")
    markdown = report(tmp_path, CAPTURE, "md")
    assert f"`{blackhole['filter']}`" in markdown


def test_the_sessions_that_matter_are_detailed(tmp_path):
    document = json.loads(report(tmp_path, CAPTURE, "json"))
    assert [s["id"] for s in document["sessions"]] == [2], "the failed one, not the delivered one"
    assert [row["session"] for row in document["timeline"]] == [1, 2]
    chosen = json.loads(report(tmp_path, CAPTURE, "json", "--session", "1", "--session", "2"))
    assert [s["id"] for s in chosen["sessions"]] == [1, 2]


def test_sessions_chosen_by_client_or_stream_as_in_every_command(tmp_path):
    second = json.loads(report(tmp_path, CAPTURE, "json", "--session", "2"))["sessions"][0]
    client = second["client"]
    by_client = json.loads(report(tmp_path, CAPTURE, "json", "--session", client))
    by_stream = json.loads(report(tmp_path, CAPTURE, "json", "--stream", str(second["tcp_stream"])))
    assert (
        [s["id"] for s in by_client["sessions"]] == [s["id"] for s in by_stream["sessions"]] == [2]
    )
    assert by_client["produced"]["command_line"][-2:] == ["--session", client]
    result = run(str(CAPTURE), "--stream", "9", "-o", str(tmp_path / "r.md"))
    assert result.exit_code == 2 and "has no SMTP tcp.stream 9; its sessions: 1 (" in result.output


def test_the_detailed_dialogue_interleaves_tcp_events(tmp_path):
    session = json.loads(report(tmp_path, CAPTURE, "json"))["sessions"][0]
    kinds = [(e["kind"], e["label"]) for e in session["entries"]]
    assert ("tcp", "TCP retransmission ×6 (frames 55–60)") in kinds
    assert kinds[-1] == ("tcp", "TCP RST (TTL 64)")
    assert any(kind == "reply" and label.startswith("421 ") for kind, label in kinds)


def test_html_has_the_diagrams(tmp_path):
    page = report(tmp_path, CAPTURE, "html")
    assert page.count("<svg") == 1 + 1 + 1, "timeline, ladder, both directions on one time axis"
    assert 'aria-label="Ladder diagram of session 2"' in page
    assert "client → server: 21,814 bytes in 25 data segments, 6 retransmitted" in page


def test_the_json_report_leaves_out_the_drawing_material(tmp_path):
    document = json.loads(report(tmp_path, CAPTURE, "json"))
    assert "graphs" not in document["sessions"][0]


def test_baseline(tmp_path):
    good = LAB / "mtu-healthy.pcap"
    document = json.loads(report(tmp_path, CAPTURE, "json", "--baseline", str(good)))
    baseline = document["baseline"]
    assert baseline["capture"]["name"] == "mtu-healthy.pcap"
    assert baseline["capture"]["sha256"] == hashlib.sha256(good.read_bytes()).hexdigest()
    assert [row["outcome"] for row in baseline["timeline"]] == ["delivered", "delivered"]
    markdown = report(tmp_path, CAPTURE, "md", "--baseline", str(good))
    assert "## Baseline" in markdown and "mtu-healthy.pcap" in markdown


def test_baseline_includes_the_diff(tmp_path):
    """The comparison is pcapsmtp diff's, called once by the report (report/baseline.py)."""
    good = str(LAB / "mtu-healthy.pcap")
    document = json.loads(report(tmp_path, CAPTURE, "json", "--baseline", good))
    diff = document["baseline"]["diff"]
    assert diff["error"] is None and "view" not in diff
    assert diff["document"]["bad"]["session"] == 2 and diff["document"]["good"]["session"] == 2
    assert diff["document"]["first_divergence"]["step"] == 6
    markdown = report(tmp_path, CAPTURE, "md", "--baseline", good)
    assert "#### Dialogue, step by step" in markdown, "the diff's headings sit below ours"
    page = report(tmp_path, CAPTURE, "html", "--baseline", good)
    assert '<table class="diff-steps">' in page and "Connection parameters" in page


def test_baseline_follows_the_chosen_session(tmp_path):
    good = str(LAB / "mtu-healthy.pcap")
    document = json.loads(report(tmp_path, CAPTURE, "json", "--baseline", good, "--session", "1"))
    assert document["baseline"]["diff"]["document"]["bad"]["session"] == 1


def test_baseline_without_a_comparable_session_says_why(tmp_path):
    empty = tmp_path / "empty.pcap"
    empty.write_bytes((LAB / "mtu-healthy.pcap").read_bytes()[:24])
    document = json.loads(report(tmp_path, CAPTURE, "json", "--baseline", str(empty)))
    assert document["baseline"]["diff"] == {
        "document": None,
        "error": f"{empty} holds no SMTP session",
    }
    assert "No comparison: " in report(tmp_path, CAPTURE, "md", "--baseline", str(empty))


# -- the time axis of the graphs ----------------------------------------------------------------


def test_time_axis_is_linear_without_long_silences():
    axis = TimeAxis(list(range(0, 101, 5)), 100, 0, 1000)
    assert axis.breaks == []
    assert axis.x(50) == 500


def test_time_axis_cuts_a_long_silence_short():
    axis = TimeAxis([0, 1, 2, 45_000], 45_000, 0, 900)
    (gap,) = axis.breaks
    assert (gap.start, gap.end) == (2, 45_000)
    assert axis.x(0) < axis.x(1) < axis.x(2) < gap.x0 < gap.x1 <= axis.x(45_000) <= 900
    assert axis.x(2) - axis.x(0) > 600, "the burst gets the width"

"""The report carries the capture-wide view and, with --maillog, the log lines of each
session it shows in detail (issue 13), in every format."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from pcapsmtp.cli import main
from tests.captures import LAB

CAPTURE, LOG = LAB / "greylisting.pcap", LAB / "greylisting.maillog"
pytestmark = pytest.mark.skipif(not LOG.exists(), reason="no lab greylisting capture and log")


def _report(tmp_path, name: str, *extra: str) -> str:
    out = tmp_path / name
    result = CliRunner().invoke(
        main, ["report", str(CAPTURE), "--maillog", str(LOG), "-o", str(out), *extra]
    )
    assert result.exit_code == 0, result.output
    return out.read_text()


def test_json_report_has_destinations_and_the_session_log(tmp_path):
    report = json.loads(_report(tmp_path, "r.json"))
    (destination,) = report["overview"]["destinations"]
    assert (destination["attempts"], destination["delivered"], destination["deferred"]) == (2, 1, 1)
    assert report["maillog"]["linked"]["queue id"] >= 1
    deferred = next(s for s in report["sessions"] if s["outcome"] == "deferred")
    texts = [line["text"] for link in deferred["log"] for line in link["lines"]]
    assert any("Greylisted" in text for text in texts)


@pytest.mark.parametrize("name", ["r.md", "r.html"])
def test_readable_reports_show_the_tables_and_the_log_lines(tmp_path, name):
    text = _report(tmp_path, name)
    assert "Destinations and clients" in text and "Mail server logs" in text
    assert "NOQUEUE: reject: RCPT from unknown" in text


def test_pseudonyms_reach_the_log_lines(tmp_path):
    text = _report(tmp_path, "r.md", "--redact-addresses")
    assert "10.77.1.2" not in text and "bob@server.lab.test" not in text

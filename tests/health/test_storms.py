"""retry-storm and rate-limited over generated captures (a dead destination, a busy but healthy
relay, a throttling server) and over the lab's retry-storm capture."""

from __future__ import annotations

from pathlib import Path

import pytest

from pcapsmtp.analysis import analyze
from pcapsmtp.diagnose import ERROR, WARNING
from pcapsmtp.diagnose.storms import STORM_MIN_ATTEMPTS
from tests.captures import LAB
from tests.health.traffic import DELIVERY, attempts, greeted, write_capture


def _findings(path: Path, code: str):
    return [f for f in analyze([str(path)]).findings if f.code == code]


@pytest.mark.parametrize("answer", ["unanswered", "refused"])
def test_hundreds_of_attempts_to_a_dead_destination(tmp_path, answer):
    capture = write_capture(tmp_path / "dead.pcap", attempts(300, 2.0, answer))
    (storm,) = _findings(capture, "retry-storm")
    assert storm.severity == ERROR
    assert "made 300 failed attempts to 198.51.100.25:25" in storm.summary
    assert "(30 a minute)" in storm.summary and "10.0 min" in storm.summary
    assert "Sessions 1-300" in storm.detail
    word = "never answered" if answer == "unanswered" else "refused"
    assert f"300 {word}" in storm.detail
    assert len(storm.frames) == 10 and storm.filter.startswith("frame.number in {")


def test_ordinary_busy_relay_is_no_storm(tmp_path):
    capture = write_capture(tmp_path / "busy.pcap", attempts(200, 1.5, DELIVERY))
    analysis = analyze([str(capture)])
    assert {s.outcome for s in analysis.sessions} == {"delivered"}
    assert [f for f in analysis.findings if f.severity in (ERROR, WARNING)] == []


def test_few_attempts_or_a_slow_backoff_are_no_storm(tmp_path):
    few = write_capture(tmp_path / "few.pcap", attempts(STORM_MIN_ATTEMPTS - 1, 1.0, "refused"))
    assert _findings(few, "retry-storm") == []
    # Every 5 minutes, as Postfix's minimal_backoff_time: a queue that backs off.
    slow = write_capture(tmp_path / "slow.pcap", attempts(30, 300.0, "refused"))
    assert _findings(slow, "retry-storm") == []


def test_a_storm_among_deliveries_is_a_warning(tmp_path):
    deliveries = attempts(5, 10.0, DELIVERY, first_port=30000)
    failures = attempts(40, 1.0, greeted(b"421 4.3.2 Service currently unavailable"))
    capture = write_capture(tmp_path / "mixed.pcap", deliveries + failures)
    (storm,) = _findings(capture, "retry-storm")
    assert storm.severity == WARNING and "40 failed attempts" in storm.summary
    assert "5 other sessions" in storm.detail


def test_rate_limited_names_the_rule_that_matched(tmp_path):
    line = (
        b"421 4.7.0 [TSS04] Messages from 192.0.2.10 temporarily deferred due to unexpected volume"
    )
    capture = write_capture(
        tmp_path / "yahoo.pcap",
        attempts(3, 60.0, greeted(line)) + attempts(2, 60.0, DELIVERY, first_port=30000),
    )
    (finding,) = _findings(capture, "rate-limited")
    assert finding.severity == WARNING
    assert "3 × 421 4.7.0 in 3 of 5 sessions" in finding.summary
    assert "Yahoo defers mail from this IP (TSS04)" in finding.summary
    assert len(finding.frames) == 3
    assert _findings(capture, "retry-storm") == []


def test_greylisting_is_not_rate_limiting(tmp_path):
    greylisted = greeted(b"451 4.7.1 Greylisted, please try again later")
    capture = write_capture(tmp_path / "grey.pcap", attempts(3, 60.0, greylisted))
    assert _findings(capture, "rate-limited") == []


@pytest.mark.skipif(not (LAB / "retry-storm.pcap").exists(), reason="no lab captures")
def test_lab_retry_storm_counts_every_attempt():
    (storm,) = _findings(LAB / "retry-storm.pcap", "retry-storm")
    assert "made 240 failed attempts to 10.77.2.2:25" in storm.summary
    assert "421 4.3.2 (240 times)" in storm.detail
    assert _findings(LAB / "retry-storm.pcap", "rate-limited") == []


@pytest.mark.skipif(not LAB.exists(), reason="no lab captures")
def test_no_other_lab_capture_storms():
    others = [p for p in sorted(LAB.glob("*.pcap")) if not p.name.startswith("retry-storm")]
    analysis = analyze([str(p) for p in others])
    assert {f.code for f in analysis.findings} & {"retry-storm", "rate-limited"} == set()

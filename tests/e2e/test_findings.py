"""Every lab capture produces the findings its fault must produce, and none of the codes its
truth rules out: no false alarms on the clean ones, loss is not a black hole and a black
hole is not loss."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pcapsmtp.diagnose import ERROR, WARNING, all_codes
from tests.captures import LAB, TRUTHS, analysed

IMPLEMENTED = set(all_codes())
ABOUT_THE_CAPTURE = {
    "capture-one-sided",
    "capture-loss",
    "capture-started-late",
    "pairing-uncertain",
    "incomplete-session",
}
"""What a partial capture (a truth with a ``capture`` key) may say about itself: the lab's
README leaves these out of both lists, and the capture is not clean even when the mail is."""


def _findings(truth_path: Path):
    truth = json.loads(truth_path.read_text())
    analysis = analysed(LAB / f"{truth['scenario']}.pcap")
    return truth, analysis.findings


@pytest.mark.skipif(not TRUTHS, reason="no lab captures")
@pytest.mark.parametrize("truth_path", TRUTHS, ids=lambda p: p.name.removesuffix(".truth.json"))
def test_expected_findings_and_no_others(truth_path):
    truth, findings = _findings(truth_path)
    codes = {f.code for f in findings}
    expected = set(truth["expected_findings"]) & IMPLEMENTED
    assert expected <= codes, [f"{f.code}: {f.summary}" for f in findings]
    for code, severity in truth.get("expected_severity", {}).items():
        assert {f.severity for f in findings if f.code == code} == {severity}, code
    unwanted = set(truth["absent_findings"]) & codes
    assert not unwanted, [f"{f.code}: {f.summary}" for f in findings if f.code in unwanted]
    if not truth["expected_findings"]:
        partial = "capture" in truth
        troubles = [
            f
            for f in findings
            if f.severity in (ERROR, WARNING) and not (partial and f.code in ABOUT_THE_CAPTURE)
        ]
        assert troubles == [], "a clean capture has no error or warning"


def test_every_finding_names_its_evidence():
    if not TRUTHS:
        pytest.skip("no lab captures")
    for truth_path in TRUTHS:
        _truth, findings = _findings(truth_path)
        for finding in findings:
            assert finding.summary and finding.detail and finding.next_steps, finding.code
            assert finding.frames or finding.session is None, finding.code
            assert finding.filter, finding.code

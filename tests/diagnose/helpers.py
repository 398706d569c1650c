"""Analyse a capture once per test run, and pick findings out of it."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from pcapsmtp.analysis import Analysis
from pcapsmtp.diagnose import Finding
from tests.captures import LAB, analysed


def analysis(path: str) -> Analysis:
    return analysed(path)


def lab(name: str) -> str:
    """Path of a lab capture (captures/NAME.pcap); skips when the lab files are absent."""
    path = LAB / (name if name.endswith(".pcap") else f"{name}.pcap")
    if not path.is_file():
        pytest.skip(f"lab capture {path.name} not present")
    return str(path)


def truth(name: str) -> dict:
    return json.loads((LAB / f"{name}.truth.json").read_text())


def findings(path: str | Path, code: str | None = None, session: int | None = None):
    found = analysis(str(path)).findings
    return [
        f
        for f in found
        if (code is None or f.code == code) and (session is None or f.session == session)
    ]


def session_of(path: str | Path, session_id: int):
    return next(s for s in analysis(str(path)).sessions if s.id == session_id)


def number(pattern: str, text: str) -> float:
    """The number the pattern's group captures in text: number(r'after ([\\d.]+) s', ...)."""
    match = re.search(pattern, text)
    assert match, f"{pattern!r} not in {text!r}"
    return float(match.group(1))


def text_of(finding: Finding) -> str:
    return " ".join([finding.summary, finding.detail, *finding.next_steps])

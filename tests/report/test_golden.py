"""Golden reports: Markdown and JSON reports of lab captures, compared line by line with
tests/golden/report/. Discovered from that folder: ``<capture>[+<variant>].report.<md|json>``;
add an empty file of such a name and regenerate to get a new test.

Regenerate (after checking the difference is wanted) with

    PCAPSMTP_REGENERATE_GOLDEN=1 python3 -m pytest tests/report/test_golden.py

Volatile fields are scrubbed: the tool version, the command line, when it was generated and
the checkout's absolute path. The SHA-256 is not: the lab captures are committed files.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from tests.report.helpers import LAB, REPO, report

GOLDEN = REPO / "tests" / "golden" / "report"
VARIANTS = {
    "": ["--tz", "Asia/Tokyo"],
    "redacted": ["--redact-addresses"],
    "session1": ["--session", "1"],
    "baseline": ["--baseline", str(LAB / "mtu-healthy.pcap")],
}
REGENERATE = os.environ.get("PCAPSMTP_REGENERATE_GOLDEN") == "1"
MARKDOWN_VOLATILE = re.compile(r"^- (Tool|Command line|Generated): .*$", re.MULTILINE)


def scrub(text: str, fmt: str) -> str:
    text = text.replace(f"{REPO}/", "")
    if fmt == "md":
        return MARKDOWN_VOLATILE.sub(lambda m: f"- {m.group(1)}: <scrubbed>", text)
    document = json.loads(text)
    produced = document["produced"]
    produced.update(version="<scrubbed>", command_line=["<scrubbed>"], generated="<scrubbed>")
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def golden_files() -> list[Path]:
    return sorted(GOLDEN.glob("*.report.*"))


@pytest.mark.parametrize("golden", golden_files(), ids=lambda p: p.name)
def test_report_matches_golden(tmp_path, golden):
    name, fmt = golden.name.split(".report.")
    capture, _, variant = name.partition("+")
    text = scrub(report(tmp_path, LAB / f"{capture}.pcap", fmt, *VARIANTS[variant]), fmt)
    if REGENERATE:
        golden.write_text(text, encoding="utf-8")
    assert text == golden.read_text(encoding="utf-8")


def test_goldens_exist():
    assert len(golden_files()) >= 4, "the golden folder went missing"

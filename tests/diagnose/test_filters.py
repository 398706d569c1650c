"""Every finding's Wireshark display filter compiles in tshark 4 and shows its evidence
frames, on every lab capture (a set separated by spaces, 'frame.number in {61 62}', is an
error since Wireshark 4.0)."""

from __future__ import annotations

import pytest

from tests.captures import LAB
from tests.diagnose.helpers import analysis
from tests.diagnose.test_smoke import _captures
from tests.tshark import needs_tshark, tap_filters

LAB_FILES = _captures(LAB)
PER_CAPTURE = 8
"""Distinct filters checked per capture (a retry storm has hundreds of alike findings)."""


@needs_tshark
@pytest.mark.skipif(not LAB_FILES, reason="no lab captures")
@pytest.mark.parametrize("path", LAB_FILES, ids=lambda p: p.name)
def test_filters_compile_and_show_the_evidence(path, tmp_path):
    """One tshark pass for the capture's filters, a tap each (tests/tshark.tap_filters)."""
    checked: dict[str, list[int]] = {}
    for finding in analysis(str(path)).findings:
        if finding.filter and finding.filter not in checked and len(checked) < PER_CAPTURE:
            checked[finding.filter] = finding.frames
    if not checked:
        return
    answers, run = tap_filters(path, list(checked), tmp_path)
    assert run.returncode == 0, run.stderr[-300:]
    for (display_filter, frames), shown in zip(checked.items(), answers, strict=True):
        assert not isinstance(shown, str), (display_filter, shown[-300:])
        if "frame.number in" in display_filter:
            assert set(frames) <= shown, display_filter

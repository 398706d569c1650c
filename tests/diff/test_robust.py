"""Any capture against any other, and against itself at two points: a diff or a usage
error, never an exception, in every format."""

from __future__ import annotations

from pathlib import Path

import pytest

from pcapsmtp.diff import DiffError, compare_captures, same_session
from pcapsmtp.report.diffdoc import render_diff_json
from pcapsmtp.report.difftext import format_diff, render_diff_markdown
from tests.captures import LAB

CAPTURES = sorted(LAB.glob("*.pcap"))
REFERENCE = LAB / "clean-delivery.pcap"


def _render_all(make) -> None:
    try:
        diff = make()
    except DiffError:
        return
    for render in (render_diff_json, format_diff, render_diff_markdown):
        assert render(diff)


@pytest.mark.skipif(not REFERENCE.is_file(), reason="no lab captures")
@pytest.mark.parametrize("capture", CAPTURES, ids=lambda p: p.name)
def test_every_lab_capture(capture: Path):
    path, reference = str(capture), str(REFERENCE)
    _render_all(lambda: compare_captures(reference, path))
    _render_all(lambda: compare_captures(path, reference))
    _render_all(lambda: compare_captures(path, path))
    _render_all(lambda: same_session(path, path))


def test_a_capture_against_itself_at_two_points_shows_nothing_in_between():
    diff = same_session(str(LAB / "loss.pcap"), str(LAB / "loss.pcap"))
    assert diff.pairing == "isn" and diff.facts == []
    assert all(t.vanished == t.appeared == 0 for t in diff.transit)

"""The one function that writes display filters: Wireshark 4 syntax (commas in sets)."""

from __future__ import annotations

import pytest

from pcapsmtp.diagnose.model import frame_filter


@pytest.mark.parametrize(
    "frames,expected",
    [
        ([], ""),
        ([7], "frame.number == 7"),
        ([12, 11], "frame.number in {11, 12}"),
        ([3, 4, 5, 9], "frame.number in {3..5, 9}"),
        ([1, 2, 4, 5, 6, 6, 10], "frame.number in {1, 2, 4..6, 10}"),
    ],
)
def test_frame_filter_syntax(frames, expected):
    assert frame_filter(frames) == expected

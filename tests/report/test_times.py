"""Capture times that are not dates are shown as their raw value, never fatal."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pcapsmtp.capture.timestamps import LAST_DATE_NS, is_date, local, raw
from pcapsmtp.report.times import clock, human, iso

NS = 1_000_000_000


@pytest.mark.parametrize(
    "time_ns",
    [-1, -NS * 10**12, LAST_DATE_NS + 1, 18446744073709551615 * NS],
)
def test_not_a_date_is_shown_raw(time_ns):
    assert not is_date(time_ns)
    assert iso(time_ns) == raw(time_ns) == human(time_ns) == clock(time_ns)
    assert raw(time_ns).startswith("@")


def test_the_last_date_in_a_zone_past_it():
    """9999-12-31 23:59 UTC is the next year in Tokyo: raw there, a date in UTC."""
    assert human(LAST_DATE_NS).startswith("9999-12-31 23:59:59.999999")
    assert human(LAST_DATE_NS, ZoneInfo("Asia/Tokyo")) == raw(LAST_DATE_NS)


def test_dates_are_unchanged():
    assert iso(1_700_000_000 * NS + 5) == "2023-11-14T22:13:20.000000005+00:00"
    assert raw(1_700_000_000 * NS + 5) == "@1700000000.000000005"


def _iso_without_cache(time_ns: int) -> str:
    """iso() as it was before its seconds were cached: a datetime made for each time."""
    moment = local(time_ns)
    if moment is None:
        return raw(time_ns)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{time_ns % NS:09d}+00:00"


@given(
    st.integers(min_value=-(10**21), max_value=LAST_DATE_NS + 10**21)
    | st.integers(min_value=LAST_DATE_NS - 2 * NS, max_value=LAST_DATE_NS + 2 * NS)
    | st.integers(min_value=-2 * NS, max_value=2 * NS)
)
def test_iso_of_a_cached_second_is_iso_of_its_own_datetime(time_ns):
    assert iso(time_ns) == _iso_without_cache(time_ns)
    assert iso(time_ns) == _iso_without_cache(time_ns)  # the second time from the cache

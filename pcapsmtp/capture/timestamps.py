"""Capture times as dates, when they are dates.

A capture's clock is whatever the capturing host or a damaged file says: a pcapng block can
hold a time in the year 20294, an interface offset can push it before 1970. Python's
``datetime`` stops at year 9999 and the platform's ``time_t`` earlier on some systems, so
every conversion of a capture time to a date goes through here. A time that is not a date
is shown as its raw value, ``@<seconds>.<nanoseconds>`` since 1970 (the notation of
``date -d @...``), and the capture reader warns about it (pcapsmtp.capture.files).
"""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo

NS = 1_000_000_000
LAST_DATE_NS = 253_402_300_799 * NS + NS - 1
"""9999-12-31 23:59:59.999999999 UTC, the last instant ``datetime`` can hold."""


def is_date(time_ns: int) -> bool:
    """Whether a capture time can be shown as a date: from 1970 to the end of year 9999."""
    return 0 <= time_ns <= LAST_DATE_NS


def utc(time_ns: int) -> datetime | None:
    """The second of ``time_ns`` as an aware UTC datetime; None when it is not a date."""
    if not is_date(time_ns):
        return None
    try:
        return datetime.fromtimestamp(time_ns // NS, UTC)
    except (ValueError, OverflowError, OSError):
        return None


def local(time_ns: int, tz: tzinfo = UTC) -> datetime | None:
    """The second of ``time_ns`` in zone ``tz``; None when it is not a date there (a zone's
    offset can push the last day of year 9999 past it)."""
    moment = utc(time_ns)
    if moment is None:
        return None
    try:
        return moment.astimezone(tz)
    except (ValueError, OverflowError, OSError):
        return None


def raw(time_ns: int) -> str:
    """A time that is not a date, as its value: '@1700000000.123456789' (seconds since 1970)."""
    seconds, nanos = divmod(time_ns, NS)
    return f"@{seconds}.{nanos:09d}"

"""Timestamps for people (UTC with its offset, or a chosen zone) and for JSON (UTC, ns)."""

from __future__ import annotations

import calendar
import functools
import os
import time
from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pcapsmtp.capture.timestamps import NS, local, raw

LOCAL = "local"


class LocalZone(tzinfo):
    """The zone the C library's ``localtime()`` uses: the TZ environment variable (an IANA
    name, ``:Area/City`` or a POSIX rule such as ``EST5EDT,M3.2.0,M11.1.0``), else the
    system's /etc/localtime. tshark shows local time (``-t ad``) this way."""

    def __init__(self) -> None:
        time.tzset()
        self.key = os.environ.get("TZ") or LOCAL

    def fromutc(self, dt: datetime) -> datetime:
        seconds = calendar.timegm(dt.utctimetuple())
        return dt + timedelta(seconds=time.localtime(seconds).tm_gmtoff)

    def utcoffset(self, dt: datetime | None) -> timedelta:
        if dt is None:
            return timedelta(seconds=time.localtime().tm_gmtoff)
        seconds = time.mktime((*dt.timetuple()[:8], -1))
        return timedelta(seconds=time.localtime(seconds).tm_gmtoff)

    def dst(self, dt: datetime | None) -> timedelta | None:
        return None

    def tzname(self, dt: datetime | None) -> str:
        return self.key

    def __str__(self) -> str:
        return LOCAL


def zone(name: str | None) -> tzinfo:
    """The --tz zone; UTC when none is given; ``local``: the zone of TZ or the system, as
    tshark uses. Raises ValueError for an unknown zone."""
    if not name:
        return UTC
    if name == LOCAL:
        return LocalZone()
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {name!r} (use an IANA name such as Asia/Tokyo, or 'local')"
        ) from None


def iso(time_ns: int | None) -> str | None:
    """ISO 8601 in UTC at full (nanosecond) precision, for machine-readable output; a time
    that is not a date as its raw value ('@seconds.nanoseconds', pcapsmtp.capture.timestamps)."""
    if time_ns is None:
        return None
    seconds, nanoseconds = divmod(time_ns, NS)
    second = _iso_second(seconds)
    if second is None:
        return raw(time_ns)
    return f"{second}.{nanoseconds:09d}+00:00"


@functools.lru_cache(maxsize=1024)
def _iso_second(seconds: int) -> str | None:
    """The date and time of day of a second since 1970, or None when it is not a date: a
    capture's times come many to the second, and a datetime made and formatted for each
    was most of iso()'s time (is_date of a time and of its second agree)."""
    moment = local(seconds * NS)
    return None if moment is None else f"{moment:%Y-%m-%dT%H:%M:%S}"


def human(time_ns: int | None, tz: tzinfo = UTC, precision: int = 6) -> str:
    """'2026-11-23 06:10:01.123456 +00:00' in the given zone; the raw value when the time
    is not a date."""
    if time_ns is None:
        return "-"
    moment = local(time_ns, tz)
    if moment is None:
        return raw(time_ns)
    offset = moment.strftime("%z")
    fraction = f"{time_ns % NS:09d}"[:precision]
    return f"{moment:%Y-%m-%d %H:%M:%S}.{fraction} {offset[:3]}:{offset[3:]}"


def clock(time_ns: int, tz: tzinfo = UTC) -> str:
    """'06:10:01.123' (the time of day, to the millisecond), for narrow columns."""
    shown = human(time_ns, tz, 3)
    return shown[11:23] if local(time_ns, tz) is not None else shown


def duration(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"

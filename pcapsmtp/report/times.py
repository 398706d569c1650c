"""Timestamps for people (UTC with its offset, or a chosen zone) and for JSON (UTC, ns)."""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


def zone(name: str | None) -> tzinfo:
    """The --tz zone; UTC when none is given. Raises ValueError for an unknown zone."""
    if not name:
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {name!r} (use an IANA name such as Asia/Tokyo)"
        ) from None


def _split(time_ns: int) -> tuple[datetime, int]:
    seconds, nanos = divmod(time_ns, 1_000_000_000)
    return datetime.fromtimestamp(seconds, UTC), nanos


def iso(time_ns: int | None) -> str | None:
    """ISO 8601 in UTC at full (nanosecond) precision, for machine-readable output."""
    if time_ns is None:
        return None
    moment, nanos = _split(time_ns)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{nanos:09d}+00:00"


def human(time_ns: int | None, tz: tzinfo = UTC, precision: int = 6) -> str:
    """'2026-11-23 06:10:01.123456 +00:00' in the given zone."""
    if time_ns is None:
        return "-"
    moment, nanos = _split(time_ns)
    local = moment.astimezone(tz)
    offset = local.strftime("%z")
    fraction = f"{nanos:09d}"[:precision]
    return f"{local:%Y-%m-%d %H:%M:%S}.{fraction} {offset[:3]}:{offset[3:]}"


def duration(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"

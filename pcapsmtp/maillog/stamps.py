"""The envelope of a log line: its time stamp, host and program, before the MTA's message.

Time stamps, as mail logs carry them:

- RFC 3164 syslog, ``Nov 23 06:44:20 host postfix/smtpd[123]: ...`` (also Postfix's own
  ``maillog_file``): no year and no zone. The year is the one that puts the line nearest the
  capture; the zone is ``--maillog-tz`` (default UTC).
- RFC 3339 / ISO 8601 (rsyslog's high-precision format, ``journalctl -o short-iso``):
  ``2026-11-23T06:44:20.123456+00:00 host prog[pid]: ...``; naive ones take ``--maillog-tz``.
- RFC 5424 syslog, ``<22>1 2026-11-23T06:44:20.123Z host postfix/smtpd 123 - - ...``.
- Exim's mainlog, ``2026-11-23 06:50:03[.123][ +0100] [[pid] ]...`` (log_timezone,
  millisec and pid log selectors).
- qmail through multilog, ``@4000000065f1a2b30c5d8e10 ...`` (TAI64N: 2^62 + 10 + Unix seconds,
  djb's libtai).

Pure functions and a small cache: no I/O; a line that fits no form gives None.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo

from pcapsmtp.capture.timestamps import NS, utc

MONTHS = {
    name: number
    for number, name in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1
    )
}

_PROGRAM = re.compile(r"([^\s\[\]:]{1,64})(?:\[(\d{1,10})\])?: ?(.*)", re.S)
_RFC3164 = re.compile(
    r"(?:<\d{1,3}>)?([A-Z][a-z]{2}) {1,2}(\d{1,2}) (\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))? (\S+) (.*)",
    re.S,
)
_ISO = (
    r"(\d{4})-(\d\d)-(\d\d)[T ](\d\d):(\d\d):(\d\d)(?:[.,](\d{1,9}))?"
    r"(Z|[+-]\d\d:?\d\d)?"
)
_RFC3339 = re.compile(r"(?:<\d{1,3}>)?" + _ISO.replace("[T ]", "T") + r" (\S+) (.*)", re.S)
_RFC5424 = re.compile(
    r"<\d{1,3}>1 " + _ISO.replace("[T ]", "T") + r" (\S+) (\S+) (\S+) \S+ "
    r"(?:-|(?:\[(?:[^\]\\]|\\.)*\])+) ?(.*)",
    re.S,
)
_RFC5424_HEAD = re.compile(r"<\d{1,3}>1 ")
_EXIM = re.compile(
    r"(\d{4})-(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d)(?:\.(\d{3}))?(?: ([+-]\d{4}))? "
    r"(?:\[(\d{1,10})\] )?(.*)",
    re.S,
)
_TAI64N = re.compile(r"@([0-9a-f]{16})([0-9a-f]{8}) (.*)", re.S)
TAI64_UNIX = 2**62 + 10
"""The TAI64 label of the Unix epoch (libtai's tai_unix)."""


@dataclass(slots=True, frozen=True)
class Envelope:
    time_ns: int | None
    precise: bool
    form: str
    """'rfc3164', 'iso', 'rfc5424', 'exim' or 'tai64n'."""
    host: str | None
    program: str
    pid: int | None
    message: str


def _offset(text: str | None) -> timedelta | None:
    if not text:
        return None
    if text == "Z":
        return timedelta(0)
    sign = -1 if text[0] == "-" else 1
    digits = text[1:].replace(":", "")
    return sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:4]))


def _fraction(digits: str | None) -> int:
    return int(digits.ljust(9, "0")[:9]) if digits else 0


class Clock:
    """Turns the stamps of one analysis into UTC nanoseconds (naive ones in ``zone``; RFC 3164's
    missing year from ``near_ns``, the capture's time), caching one conversion per minute."""

    def __init__(self, zone: tzinfo = UTC, near_ns: int | None = None) -> None:
        self.zone = zone
        self.near = utc(near_ns) if near_ns else None
        self._minutes: dict[tuple, int | None] = {}

    def _minute(self, key: tuple, offset: timedelta | None) -> int | None:
        """UTC ns of (year, month, day, hour, minute); year None means 'nearest the capture'."""
        cached = self._minutes.get((key, offset), -1)
        if cached != -1:
            return cached
        year, month, day, hour, minute = key
        best = None
        for candidate in [year] if year else self._years():
            try:
                local = datetime(candidate, month, day, hour, minute)
                if offset is None:
                    moment = local.replace(tzinfo=self.zone)
                else:
                    moment = (local - offset).replace(tzinfo=UTC)
            except (ValueError, OverflowError):  # February 29 in another year, or nonsense
                continue
            if best is None or self._distance(moment) < self._distance(best):
                best = moment
        value = None if best is None else int(best.timestamp()) * NS
        self._minutes[(key, offset)] = value
        return value

    def _years(self) -> list[int]:
        try:
            year = (self.near or datetime.now(UTC)).astimezone(self.zone).year
        except (ValueError, OverflowError):
            year = self.near.year
        return [year, year - 1, year + 1]

    def _distance(self, moment: datetime) -> float:
        return abs((moment - self.near).total_seconds()) if self.near else 0.0

    def stamp(self, parts: tuple, seconds: str, fraction: str | None, offset) -> int | None:
        base = self._minute(parts, offset)
        if base is None:
            return None
        return base + int(seconds) * NS + _fraction(fraction)

    def envelope(self, line: str) -> Envelope | None:
        """The line's time, host, program and message; None when no known form fits."""
        if not line:
            return None
        first = line[0]
        if first == "@":
            return self._tai64n(line)
        if first.isdigit():
            return self._iso_or_exim(line)
        if first == "<" and _RFC5424_HEAD.match(line):
            return self._rfc5424(line)
        return self._rfc3164(line) or (self._rfc3339(line) if first == "<" else None)

    def _program(self, when, precise, form, host, rest) -> Envelope | None:
        match = _PROGRAM.fullmatch(rest)
        if not match:
            return None
        program, pid, message = match.groups()
        return Envelope(when, precise, form, host, program, int(pid) if pid else None, message)

    def _rfc3164(self, line: str) -> Envelope | None:
        match = _RFC3164.fullmatch(line)
        if not match or match.group(1) not in MONTHS:
            return None
        mon, day, hh, mm, ss, frac, host, rest = match.groups()
        when = self.stamp((None, MONTHS[mon], int(day), int(hh), int(mm)), ss, frac, None)
        return self._program(when, frac is not None, "rfc3164", host, rest)

    def _rfc3339(self, line: str) -> Envelope | None:
        match = _RFC3339.fullmatch(line)
        if not match:
            return None
        y, mo, d, hh, mm, ss, frac, off, host, rest = match.groups()
        parts = (int(y), int(mo), int(d), int(hh), int(mm))
        when = self.stamp(parts, ss, frac, _offset(off))
        return self._program(when, frac is not None, "iso", host, rest)

    def _rfc5424(self, line: str) -> Envelope | None:
        match = _RFC5424.fullmatch(line)
        if not match:
            return None
        y, mo, d, hh, mm, ss, frac, off, host, app, procid, message = match.groups()
        when = self.stamp((int(y), int(mo), int(d), int(hh), int(mm)), ss, frac, _offset(off))
        pid = int(procid) if procid.isdigit() and len(procid) <= 10 else None
        program = "" if app == "-" else app
        return Envelope(
            when, frac is not None, "rfc5424", host, program, pid, message.lstrip("\ufeff")
        )

    def _iso_or_exim(self, line: str) -> Envelope | None:
        if line[10:11] == "T":
            return self._rfc3339(line)
        match = _EXIM.fullmatch(line)
        if not match:
            return None
        y, mo, d, hh, mm, ss, frac, off, pid, message = match.groups()
        when = self.stamp((int(y), int(mo), int(d), int(hh), int(mm)), ss, frac, _offset(off))
        return Envelope(
            when, frac is not None, "exim", None, "exim", int(pid) if pid else None, message
        )

    def _tai64n(self, line: str) -> Envelope | None:
        match = _TAI64N.fullmatch(line)
        if not match:
            return None
        seconds = int(match.group(1), 16) - TAI64_UNIX
        nanos = int(match.group(2), 16)
        when = seconds * NS + nanos if 0 <= seconds < 2**40 and nanos < NS else None
        return Envelope(when, True, "tai64n", None, "qmail", None, match.group(3))

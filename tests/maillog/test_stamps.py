"""Time stamps of mail logs: one table row per form, with where it comes from."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from pcapsmtp.maillog.stamps import Clock

NEAR = int(datetime(2026, 11, 23, 6, 44, tzinfo=UTC).timestamp() * 1e9)


def _utc(text: str) -> int:
    moment = datetime.fromisoformat(text)
    return int(moment.timestamp()) * 1_000_000_000 + moment.microsecond * 1000


@pytest.mark.parametrize(
    ("line", "when", "form", "program", "pid", "message"),
    [
        # Postfix maillog_file and classic syslog (RFC 3164): no year, no zone.
        (
            "Nov 23 06:44:20 server postfix/smtpd[28087]: connect from unknown[10.77.1.2]",
            "2026-11-23T06:44:20+00:00",
            "rfc3164",
            "postfix/smtpd",
            28087,
            "connect from unknown[10.77.1.2]",
        ),
        # A single-digit day is padded with a space.
        (
            "Nov  3 01:02:03 mx sm-mta[7]: x",
            "2026-11-03T01:02:03+00:00",
            "rfc3164",
            "sm-mta",
            7,
            "x",
        ),
        # rsyslog's RSYSLOG_FileFormat (RFC 3339, microseconds and offset).
        (
            "2026-11-23T06:44:20.123456+01:00 mx postfix/qmgr[5]: ABC: removed",
            "2026-11-23T05:44:20.123456+00:00",
            "iso",
            "postfix/qmgr",
            5,
            "ABC: removed",
        ),
        # journalctl -o short-iso: offset without a colon.
        (
            "2026-11-23T06:44:20+0000 mx postfix/smtp[9]: y",
            "2026-11-23T06:44:20+00:00",
            "iso",
            "postfix/smtp",
            9,
            "y",
        ),
        # RFC 5424 with structured data and a BOM before the message.
        (
            '<22>1 2026-11-23T06:44:20.5Z mx postfix/smtpd 812 - [meta x="a\\]b"][o y="1"] '
            "\ufeffconnect from a[192.0.2.1]",
            "2026-11-23T06:44:20.500000+00:00",
            "rfc5424",
            "postfix/smtpd",
            812,
            "connect from a[192.0.2.1]",
        ),
        # Exim's mainlog, with log_timezone and +pid.
        (
            "2026-11-23 07:50:03 +0100 [1234] 1xVNsJ-00036b-3A Completed",
            "2026-11-23T06:50:03+00:00",
            "exim",
            "exim",
            1234,
            "1xVNsJ-00036b-3A Completed",
        ),
        # qmail via multilog: TAI64N (thecpaneladmin.blogspot.com qmail log analysis, whose
        # parser reads this label as 2000-03-06T17:45:10Z).
        (
            "@4000000038c3eeb027f41c7c new msg 93869",
            "2000-03-06T17:45:10.670309+00:00",
            "tai64n",
            "qmail",
            None,
            "new msg 93869",
        ),
    ],
)
def test_forms(line, when, form, program, pid, message):
    envelope = Clock(UTC, NEAR).envelope(line)
    assert envelope is not None
    assert (envelope.form, envelope.program, envelope.pid) == (form, program, pid)
    assert envelope.message == message
    assert abs(envelope.time_ns - _utc(when)) < 1000


def test_rfc3164_year_is_the_one_nearest_the_capture():
    january = int(datetime(2027, 1, 1, 0, 10, tzinfo=UTC).timestamp() * 1e9)
    envelope = Clock(UTC, january).envelope("Dec 31 23:59:59 mx postfix/smtpd[1]: x")
    assert envelope.time_ns == _utc("2026-12-31T23:59:59+00:00")
    # 2025, 2026 and 2027 have no February 29: the line is read, its time is unknown.
    leap = Clock(UTC, NEAR).envelope("Feb 29 00:00:00 mx postfix/smtpd[1]: x")
    assert leap.program == "postfix/smtpd" and leap.time_ns is None


def test_naive_times_take_the_zone():
    clock = Clock(ZoneInfo("Asia/Tokyo"), NEAR)
    envelope = clock.envelope("Nov 23 15:44:20 mx postfix/smtpd[1]: x")
    assert envelope.time_ns == _utc("2026-11-23T06:44:20+00:00")
    exim = clock.envelope("2026-11-23 15:44:20 1xVNsJ-00036b-3A Completed")
    assert exim.time_ns == _utc("2026-11-23T06:44:20+00:00")
    aware = clock.envelope("2026-11-23T06:44:20Z mx postfix/smtpd[1]: x")
    assert aware.time_ns == _utc("2026-11-23T06:44:20+00:00")


@pytest.mark.parametrize(
    "line",
    [
        "",
        "hello",
        "Foo 23 06:44:20 mx postfix/smtpd[1]: x",
        "Nov 99 06:44:20 mx p[1]: x",
        "2026-13-45 99:99:99 x",
        "@zzzz",
        "<13>1 bad",
        "Nov 23 06:44:20 mx",
    ],
)
def test_not_understood(line):
    envelope = Clock(UTC, NEAR).envelope(line)
    assert envelope is None or envelope.time_ns is None

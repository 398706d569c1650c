"""Mail logs beside the capture: Postfix, Exim, Sendmail and qmail lines parsed (``files``,
``stamps`` and one module per MTA), grouped into connections (``units``), linked to the SMTP
sessions by queue id, else by peer address and time (``link``), and compared with what the
wire shows (``compare``). Logs are untrusted input like captures: bounded, and nothing in a
line makes it raise.
"""

from __future__ import annotations

from datetime import UTC, tzinfo

from pcapsmtp.errors import CaptureError
from pcapsmtp.maillog.files import Window, read_maillogs
from pcapsmtp.maillog.link import WINDOW_NS, MaillogLinks, link_sessions
from pcapsmtp.maillog.stamps import Clock
from pcapsmtp.smtp.model import Session

__all__ = ["MaillogLinks", "link_maillogs"]
HOUR_NS = 3600 * 1_000_000_000


def _readable(sources: list[str]) -> tuple[list[str], list[CaptureError]]:
    good, errors = [], []
    for source in sources:
        try:
            with open(source, "rb"):
                good.append(source)
        except OSError as error:
            errors.append(CaptureError(source, error.strerror or str(error)))
    return good, errors


def link_maillogs(
    sessions: list[Session],
    captures: list,
    sources: list[str],
    zone: tzinfo = UTC,
    window_ns: int = WINDOW_NS,
) -> tuple[MaillogLinks, list[CaptureError]]:
    """Read the logs (only what the captures' time needs) and link them to ``sessions``.
    ``captures``: pcapsmtp.capture.CaptureInfo of each capture. Unreadable files come back
    as errors; the others are used."""
    spans = [(c.first_time_ns, c.last_time_ns) for c in captures if c.frames]
    readable, errors = _readable(sources)
    start = min((a for a, _b in spans), default=None)
    end = max((b for _a, b in spans), default=None)
    ids = {t.queue_id for s in sessions for t in s.transactions if t.queue_id}
    if start is None or end is None:  # no frame at all: no time to look at, only ids
        window = Window(1, 0, ids)
    else:
        window = Window(start - window_ns, end + window_ns, ids)
    lines, stats = read_maillogs(readable, Clock(zone, start), window)
    result = link_sessions(sessions, lines, stats, spans, window_ns)
    result.warnings += _zone_warnings(result, window)
    return result, errors


def _zone_warnings(result: MaillogLinks, window: Window) -> list[str]:
    warnings = []
    if abs(result.offset_ns) >= HOUR_NS // 4:
        hours = result.offset_ns / HOUR_NS
        warnings.append(
            f"the log's times are {abs(hours):.1f} h {'ahead of' if hours > 0 else 'behind'} the "
            "capture's for the same sessions: is --maillog-tz the log's zone?"
        )
    for stats in result.files:
        mta_lines = sum(stats.mtas.values())
        if stats.lines and not mta_lines:
            stats.warnings.append("no line of Postfix, Exim, Sendmail or qmail in it")
        elif mta_lines and not stats.used and window.start_ns is not None:
            stats.warnings.append(
                f"none of its {mta_lines} mail-server lines falls in the captures' time "
                "(give --maillog-tz if the log is in local time)"
            )
    return warnings

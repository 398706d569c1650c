"""The capture-wide sections (issue 13) in one place for every renderer: per destination and
per client (pcapsmtp.diagnose.health), and the mail logs' links when ``--maillog`` was given.

The report document calls these: ``overview_markdown(analysis, tz)`` for its sections,
``overview_document(analysis)`` for its JSON, and per session
``report.maillog.session_log_markdown(analysis.maillog, session)`` beside the dialogue.
"""

from __future__ import annotations

from datetime import UTC, tzinfo

from pcapsmtp.diagnose.health import summarize
from pcapsmtp.report.health import format_health, health_document, health_markdown
from pcapsmtp.selection import session_ref


def overview_text(analysis, tz: tzinfo = UTC) -> list[str]:
    """Text blocks for ``analyze``: the two tables, then the mail log's summary."""
    health = format_health(summarize(analysis.sessions), tz)
    parts = [health] if health else []
    if analysis.maillog is not None:
        from pcapsmtp.report.maillog import format_maillog  # the log parsers: only with logs

        parts.append(format_maillog(analysis.maillog, len(analysis.sessions), tz))
    return parts


def overview_markdown(analysis, tz: tzinfo = UTC, level: int = 2) -> str:
    parts = [health_markdown(summarize(analysis.sessions), tz, level).rstrip("\n")]
    if analysis.maillog is not None:
        from pcapsmtp.report.maillog import maillog_markdown

        summary = maillog_markdown(analysis.maillog, len(analysis.sessions), tz, level)
        parts.append(summary.rstrip("\n"))
    return "\n\n".join(p for p in parts if p) + "\n"


def overview_document(analysis, lazy: bool = False) -> dict:
    """Top-level JSON keys added after the contract's: "destinations", "clients" and, with
    logs, "maillog" (its "sessions" maps each session id, ``capture#id`` among several
    captures, to that session's links)."""
    document = health_document(analysis.sessions, lazy)
    if analysis.maillog is not None:
        from pcapsmtp.report.maillog import maillog_document, session_links

        document["maillog"] = maillog_document(analysis.maillog)
        document["maillog"]["sessions"] = {
            str(session_ref(s.key, analysis.several)): session_links(analysis.maillog, s)
            for s in analysis.sessions
        }
    return document

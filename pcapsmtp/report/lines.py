"""The live mode's lines (``analyze --follow``): one per event, text or JSON (JSON Lines).

Each event of pcapsmtp.analysis.follow becomes one line (a session's findings follow it on
lines of their own in text); the summary at the end is the normal analysis: the text
report, or the JSON document with ``"type": "summary"``. docs/live.md shows both. Wire
text passes through report.safe as in every other output.
"""

from __future__ import annotations

import json
from datetime import UTC, tzinfo

from pcapsmtp.analysis import Analysis
from pcapsmtp.analysis.model import FindingFound, LiveEvent, SessionShown
from pcapsmtp.diagnose.model import Finding
from pcapsmtp.report.findings import finding_dict
from pcapsmtp.report.jsondoc import analysis_document
from pcapsmtp.report.safe import json_text, terminal
from pcapsmtp.report.sessions import endpoint_name, session_dict
from pcapsmtp.report.text import format_analysis
from pcapsmtp.report.times import human, iso


def text_line(event: LiveEvent, tz: tzinfo = UTC) -> str:
    """'2026-12-05 09:40:01.123456 +00:00  stream 3  #2  10.77.1.2:41234 -> 10.77.2.2:25
    rejected  hard-bounce', then one indented line per finding."""
    if isinstance(event, SessionShown):
        session = event.session
        codes = ", ".join(f.code for f in event.findings)
        head = "  ".join(
            [
                human(session.flow.last_time_ns, tz),
                f"stream {session.flow.stream}",
                f"#{session.id}",
                f"{endpoint_name(session.client)} -> {endpoint_name(session.server)}",
                session.outcome + (" (revised)" if event.revised else ""),
                *([codes] if codes else []),
            ]
        )
        return "\n".join([head, *(_finding_text(f, "    ") for f in event.findings)])
    if isinstance(event, FindingFound):
        return f"{human(event.time_ns, tz)}  {_finding_text(event.finding, '')}"
    return f"warning: {terminal(event.text)}"


def _finding_text(finding: Finding, indent: str) -> str:
    where = f" (#{finding.session}, stream {finding.tcp_stream})" if finding.session else ""
    return f"{indent}{finding.severity.upper()} {finding.code}{where}: {terminal(finding.summary)}"


def text_summary(analysis: Analysis, interrupted: bool, tz: tzinfo = UTC) -> str:
    """The marker line, then the report ``analyze`` prints for the same input."""
    why = "Ctrl-C" if interrupted else "end of input"
    return f"-- summary ({why}) --\n" + format_analysis(analysis, tz)


def json_line(event: LiveEvent) -> str:
    """One JSON object, its ``type`` session, finding or warning (docs/live.md,
    docs/schema/live.schema.json): a session as in ``analyze --format json`` with the
    findings about it not shown before, a finding as there."""
    if isinstance(event, SessionShown):
        session = event.session
        document = {
            "type": "session",
            "time": iso(session.flow.last_time_ns),
            "revised": event.revised,
            "session": session_dict(session)
            | {"findings": [finding_dict(f) for f in event.findings]},
        }
    elif isinstance(event, FindingFound):
        document = {
            "type": "finding",
            "time": iso(event.time_ns),
            "finding": finding_dict(event.finding),
        }
    else:
        document = {"type": "warning", "text": event.text}
    return _one_line(document)


def json_summary(analysis: Analysis, interrupted: bool) -> str:
    """The last line: whether Ctrl-C ended the input, and the document ``analyze --format
    json`` prints for the same bytes."""
    return _one_line(
        {"type": "summary", "interrupted": interrupted, "analysis": analysis_document(analysis)}
    )


def _one_line(document: dict) -> str:
    return json_text(json.dumps(document, ensure_ascii=False, separators=(",", ":")))

"""The report as one plain document: what ``report`` writes as JSON, Markdown or HTML.

Its shape is declared in ``report.model`` (TypedDicts: at run time plain dicts, which the
JSON and the redaction need). It is built from models computed once by ``pcapsmtp.ticket``
(the analysis, the comparison, the graph data, the files' facts): nothing here reads a
capture. Every renderer reads this structure and nothing else, so what is in the report
(and what is redacted from it) is decided once, here: credentials never reach it (the SMTP
parser redacted them), and ``--redact-addresses`` rewrites the finished structure
(``pseudonyms.redact_addresses``) before any renderer sees it.

Wire text is kept as ``safe.wire`` text (valid UTF-8, control characters still in it);
each renderer makes it inert for its format.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo

from pcapsmtp import __version__
from pcapsmtp.analysis import Analysis, CaptureResult
from pcapsmtp.diagnose.coverage import ended_well
from pcapsmtp.diagnose.model import ERROR, INFO, WARNING
from pcapsmtp.report.captures import capture_dict
from pcapsmtp.report.dialogue import icmp_name, session_section
from pcapsmtp.report.findings import calm_line, finding_dict
from pcapsmtp.report.health import health_document
from pcapsmtp.report.maillog import maillog_document, session_links
from pcapsmtp.report.model import (
    BaselineSection,
    CaptureSection,
    Detailed,
    FileFacts,
    Party,
    Produced,
    Report,
    ReportInfo,
    TimelineRow,
    Verdict,
)
from pcapsmtp.report.safe import wire
from pcapsmtp.report.schema import SCHEMA_VERSION
from pcapsmtp.report.sessions import address, endpoint_fields, endpoint_name
from pcapsmtp.report.text import tcp_trouble
from pcapsmtp.report.times import duration, human, iso
from pcapsmtp.smtp.model import Session
from pcapsmtp.tcp.community import community_id

FORMAT_VERSION = 1
MAX_DETAILED = 20
"""Sessions shown in detail (dialogue, diagrams) unless chosen with --session."""


@dataclass(slots=True)
class ReportOptions:
    """What the user asked of the report (the analysis options are separate)."""

    tz: tzinfo = UTC
    command_line: list[str] = field(default_factory=list)
    sessions: tuple[int, ...] = ()
    """Ids of the sessions to show in detail; empty: the ones that matter."""
    selectors: tuple = ()
    """pcapsmtp.selection.Selector: sessions to show in detail named as the user named them
    (id, client address and port, tcp.stream); resolved into ``sessions``."""
    redact_addresses: bool = False
    generated: datetime | None = None
    """When the report was made; None: now."""


# -- the capture and its parties ----------------------------------------------------------------


def capture_section(result: CaptureResult, facts: FileFacts, tz: tzinfo) -> CaptureSection:
    info = result.info
    span = (
        (info.last_time_ns - info.first_time_ns) / 1e9
        if info.first_time_ns is not None and info.last_time_ns is not None
        else None
    )
    return CaptureSection(
        **capture_dict(info)
        | facts
        | {
            "file": wire(info.file),
            "first_time_utc": human(info.first_time_ns),
            "last_time_utc": human(info.last_time_ns),
            "first_time_local": human(info.first_time_ns, tz),
            "last_time_local": human(info.last_time_ns, tz),
            "duration_s": round(span, 6) if span is not None else None,
            "duration": duration(span) if span is not None else None,
            "warnings": [wire(w) for w in info.warnings],
            "smtp_sessions": len(result.sessions),
            "other_connections": result.other_connections,
        }
    )


def _software(session: Session) -> str | None:
    software = session.server_software
    if software is None:
        return None
    return f"{software.name} {software.version}" if software.version else software.name


ENHANCED_CODE = re.compile(r"^[245]\.\d{1,3}\.\d{1,3}$")
HOST_NAME = re.compile(
    r"^(?=.*[A-Za-z])[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*\.?$"
    r"|^\[[0-9A-Fa-f:.]+\]$"
)
"""A host name with at least one letter, or an address literal in brackets (RFC 5321 4.1.3)."""


def _hostname(text: str | None) -> str | None:
    """The name a server gives itself: the first word of its greeting or EHLO reply, after
    an enhanced status code if the reply starts with one ('421 4.3.2 <unknown[...]>: ...'
    names no host; '4.3.2' is no name). A name without a dot only when the protocol's name
    follows it ('220 mailhost ESMTP Sendmail'), not '220 ESMTP ready'."""
    words = (text or "").split()
    if words and ENHANCED_CODE.match(words[0]):
        words = words[1:]
    word = words[0] if words else ""
    named = "." in word or (len(words) > 1 and words[1].upper() in ("ESMTP", "SMTP"))
    return wire(word) if named and HOST_NAME.match(word) else None


def parties(analysis: Analysis) -> list[Party]:
    """Servers, clients and the routers that sent ICMP errors, with what they said of
    themselves."""
    found: dict[tuple[str, str], Party] = {}

    def party(role: str, ip: bytes) -> Party:
        key = (role, address(ip))
        if key not in found:
            found[key] = Party(
                role=role, address=key[1], ports=[], names=[], software=[], sessions=[]
            )
        return found[key]

    def add(entry: Party, name: str, value) -> None:
        if value is not None and value not in entry[name]:
            entry[name].append(value)

    for session in analysis.sessions:
        server = party("server", session.server.ip)
        add(server, "ports", session.server.port)
        add(server, "names", _hostname(session.greeting.lines[0] if session.greeting else None))
        add(server, "names", _hostname(session.ehlo.lines[0] if session.ehlo else None))
        add(server, "software", _software(session))
        add(server, "sessions", session.id)
        client = party("client", session.client.ip)
        add(client, "names", wire(session.helo) if session.helo else None)
        add(client, "sessions", session.id)
        for error in session.flow.icmp:
            router = party("icmp sender", error.src)
            add(router, "names", icmp_name(error))
            add(router, "sessions", session.id)
    order = {"server": 0, "client": 1, "icmp sender": 2}
    return sorted(found.values(), key=lambda p: (order[p["role"]], p["sessions"][0]))


# -- findings, verdict, timeline ----------------------------------------------------------------


def verdict(analysis: Analysis) -> Verdict:
    findings = analysis.findings
    severities = Counter(f.severity for f in findings)
    # From the digests, and the sessions read only when no finding is an error or a
    # warning: a spooled capture's sessions are not read back twice more for this.
    kept = getattr(analysis.sessions, "digests", None)
    outcomes = Counter(item.outcome for item in (analysis.sessions if kept is None else kept))
    worst = next((f for f in findings if f.severity in (ERROR, WARNING)), None)
    failed = [s for s in analysis.sessions if not ended_well(s)] if worst is None else []
    if worst is None:
        # A reader must not be told that all is well while a session did not end well.
        line = calm_line(findings, analysis.sessions) or ""
    else:
        where = f"session {worst.session}" if worst.session else "the capture"
        line = f"{worst.severity.upper()} {worst.code} ({where}): {wire(worst.summary)}"
    return Verdict(
        line=line,
        level=worst.severity if worst else WARNING if failed else "ok",
        sessions=len(analysis.sessions),
        outcomes=dict(sorted(outcomes.items())),
        errors=severities[ERROR],
        warnings=severities[WARNING],
        info=severities[INFO],
    )


def finding_codes(findings) -> dict[int | None, set[str]]:
    """Session id -> the codes of its findings, for ``timeline_row``: looked for in every
    finding for each session, that was quadratic (1.7 s of a profiled report of 1,794
    sessions and 2,856 findings; a capture of 200,000 sessions would not have finished)."""
    codes: dict[int | None, set[str]] = {}
    for finding in findings:
        codes.setdefault(finding.session, set()).add(finding.code)
    return codes


def timeline_row(
    session: Session, capture_start: int | None, tz: tzinfo, codes: dict[int | None, set[str]]
) -> TimelineRow:
    """``codes``: ``finding_codes`` of the capture's findings."""
    flow = session.flow
    last = session.last_reply
    return TimelineRow(
        session=session.id,
        tcp_stream=flow.stream,
        start=iso(flow.first_time_ns),
        start_local=human(flow.first_time_ns, tz),
        offset_s=round((flow.first_time_ns - capture_start) / 1e9, 6)
        if capture_start is not None
        else None,
        duration_s=round((flow.last_time_ns - flow.first_time_ns) / 1e9, 6),
        client=endpoint_name(session.client),
        server=endpoint_name(session.server),
        **endpoint_fields(session.client, session.server),
        community_id=community_id(flow),
        server_software=_software(session),
        mail_from=_mail_from(session),
        recipients=sum(t.recipients for t in session.transactions),
        outcome=session.outcome,
        outcome_reason=session.outcome_reason,
        last_reply=wire(f"{last.code} {last.lines[0] if last.lines else ''}".strip())
        if last
        else None,
        tcp=tcp_trouble(session),
        findings=sorted(codes.get(session.id, ())),
    )


def _mail_from(session: Session) -> str | None:
    senders = [t.mail_from for t in session.transactions if t.mail_from is not None]
    if not senders:
        return None
    first = wire(senders[0]) or "<>"
    return first if len(set(senders)) == 1 else f"{first} (+{len(set(senders)) - 1} more)"


def chosen_sessions(analysis: Analysis, wanted: tuple[int, ...]) -> tuple[list[Session], str]:
    """The sessions shown in detail, and a sentence saying which and why."""
    sessions = analysis.sessions
    if wanted:
        return [s for s in sessions if s.id in wanted], "the sessions chosen with --session"
    troubled = {
        f.session for f in analysis.findings if f.severity in (ERROR, WARNING) and f.session
    }
    matter = [s for s in sessions if s.id in troubled or s.outcome != "delivered"]
    why = "sessions with an error or warning, or that did not deliver"
    if not matter:
        matter, why = sessions, "every session (none failed)"
    if len(matter) > MAX_DETAILED:
        why += f"; the first {MAX_DETAILED} of {len(matter)} (choose others with --session)"
        matter = matter[:MAX_DETAILED]
    return matter, why


# -- the whole report ---------------------------------------------------------------------------


def build_report(
    path: str,
    analysis: Analysis,
    options: ReportOptions,
    facts: FileFacts,
    series: dict | None = None,
    baseline: BaselineSection | None = None,
) -> Report:
    """The report of one analysed capture; ``facts`` are its file's size and SHA-256
    (``ticket.file_facts``), ``series`` maps session ids to their graph data
    (``report.series``), ``baseline`` is a ``baseline_section``."""
    result = analysis.results[0]
    findings = analysis.findings
    codes = finding_codes(findings)
    tz = options.tz
    start = result.info.first_time_ns
    detailed, why = chosen_sessions(analysis, options.sessions)
    sessions = []
    for session in detailed:
        graphs = (series or {}).get(session.id)
        log = session_links(analysis.maillog, session)
        sessions.append(session_section(session, findings, tz, graphs, log))
    generated = options.generated or datetime.now(UTC)
    return Report(
        schema_version=SCHEMA_VERSION,
        report=ReportInfo(
            format=FORMAT_VERSION, title=f"SMTP capture report: {wire(os.path.basename(path))}"
        ),
        verdict=verdict(analysis),
        capture=capture_section(result, facts, tz),
        parties=parties(analysis),
        findings=[finding_dict(f) for f in findings],
        timeline=[timeline_row(s, start, tz, codes) for s in analysis.sessions],
        overview=health_document(analysis.sessions),
        maillog=maillog_document(analysis.maillog) if analysis.maillog is not None else None,
        detailed=Detailed(why=why, sessions=[s.id for s in detailed]),
        sessions=sessions,
        baseline=baseline,
        produced=Produced(
            tool="pcapsmtp",
            version=__version__,
            command_line=options.command_line,
            generated=generated.astimezone(UTC).isoformat(timespec="seconds"),
            tz=getattr(tz, "key", None) or "UTC",
            addresses="pseudonyms" if options.redact_addresses else "as captured",
            credentials="AUTH credentials are redacted when the capture is read: no output "
            "of pcapsmtp holds them",
        ),
    )

"""Markdown and CSV renderings of ``analyze``: the same rows as the text table."""

from __future__ import annotations

import csv
import io
from datetime import UTC, tzinfo

from tabulate import tabulate

from pcapsmtp.analysis import Analysis
from pcapsmtp.report.captures import link_type_name
from pcapsmtp.report.counts import count
from pcapsmtp.report.findings import findings_markdown
from pcapsmtp.report.safe import csv_cell, markdown, wire
from pcapsmtp.report.sessions import endpoint_name, resets
from pcapsmtp.report.text import session_table
from pcapsmtp.report.times import human, iso
from pcapsmtp.smtp import codes
from pcapsmtp.smtp.deciding import deciding_reply

CSV_COLUMNS = [
    "id",
    "capture",
    "tcp_stream",
    "start",
    "end",
    "client",
    "server",
    "server_software",
    "helo",
    "mail_from",
    "recipients",
    "transactions",
    "outcome",
    "deciding_code",
    "deciding_enhanced",
    "deciding_reply",
    "deciding_frame",
    "last_code",
    "last_reply",
    "retransmissions",
    "lost_segments",
    "zero_windows",
    "resets",
    "reset_by",
    "icmp_errors",
    "tcp_state",
]
"""One fact per column. ``deciding_*``: the reply that decided the outcome (the refusal of a
rejected session; empty when no reply did); ``last_*``: the last reply of the session (often
the 221 to QUIT); ``resets``: RST segments, ``reset_by``: who sent them (client, server,
client+server)."""


def render_markdown(analysis: Analysis, tz: tzinfo = UTC) -> str:
    out = ["# SMTP sessions", ""]
    for result in analysis.results:
        info = result.info
        links = ", ".join(link_type_name(lt) for lt in info.link_types)
        out.append(
            f"- **{markdown(info.file)}** ({info.format}"
            f"{f', {len(info.files)} rotated files' if info.files else ''}): {info.frames} frames, "
            f"{human(info.first_time_ns, tz)} to {human(info.last_time_ns, tz)}, "
            f"link types {links or '-'}, {count(len(result.sessions), 'SMTP session')}"
        )
        out += [f"  - warning: {markdown(w)}" for w in info.warnings]
    out.append("")
    if analysis.sessions:
        headers, rows = session_table(analysis.sessions, tz, markdown)
        out.append(tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True))
    else:
        out.append("No SMTP sessions.")
    out += ["", findings_markdown(analysis.findings, sessions=analysis.sessions).rstrip("\n")]
    out += _capture_wide(analysis, tz)
    return "\n".join(out) + "\n"


def _capture_wide(analysis: Analysis, tz: tzinfo) -> list[str]:
    from pcapsmtp.report.overview import overview_markdown

    sections = overview_markdown(analysis, tz).rstrip("\n")
    return ["", sections] if sections else []


def render_csv(analysis: Analysis, tz: tzinfo = UTC) -> str:
    """One row per session; times in UTC whatever ``tz`` is, as in the JSON."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for session in analysis.sessions:
        writer.writerow([csv_cell(value) for value in _csv_row(session)])
    return buffer.getvalue()


def _csv_row(session) -> list:
    flow = session.flow
    first = session.transactions[0] if session.transactions else None
    last = session.last_reply
    decided = deciding_reply(session)
    software = session.server_software
    total = lambda name: sum(e.counts[name] for e in flow.endpoints)  # noqa: E731
    rsts = resets(flow)
    return [
        session.id,
        session.capture,
        flow.stream,
        iso(flow.first_time_ns),
        iso(flow.last_time_ns),
        endpoint_name(session.client),
        endpoint_name(session.server),
        getattr(software, "name", ""),
        wire(session.helo or ""),
        wire(first.mail_from or "") if first else "",
        sum(t.recipients for t in session.transactions),
        len(session.transactions),
        session.outcome,
        decided.code if decided else "",
        (codes.parse_enhanced(decided.lines[0]) or "") if decided and decided.lines else "",
        _reply_line(decided),
        decided.frame if decided else "",
        last.code if last else "",
        _reply_line(last),
        total("retransmission"),
        total("lost_segment") + total("ack_lost_segment"),
        total("zero_window"),
        len(rsts),
        "+".join(sorted({r["from"] for r in rsts})),
        len(flow.icmp),
        flow.state,
    ]


def _reply_line(reply) -> str:
    return wire(reply.text.replace("\n", " | ")) if reply else ""

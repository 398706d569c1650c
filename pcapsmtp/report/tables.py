"""Markdown and CSV renderings of ``analyze``: the same rows as the text table."""

from __future__ import annotations

import csv
import io
from datetime import UTC, tzinfo

from tabulate import tabulate

from pcapsmtp.analysis import Analysis
from pcapsmtp.report.captures import link_type_name
from pcapsmtp.report.counts import count
from pcapsmtp.report.safe import markdown, wire
from pcapsmtp.report.sessions import endpoint_name
from pcapsmtp.report.text import HEADERS, session_row, tcp_trouble
from pcapsmtp.report.times import human, iso

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
    "last_code",
    "last_reply",
    "retransmissions",
    "resets",
    "tcp_state",
]


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
        rows = [[markdown(cell) for cell in session_row(s, tz)] for s in analysis.sessions]
        out.append(tabulate(rows, headers=HEADERS, tablefmt="github", disable_numparse=True))
    else:
        out.append("No SMTP sessions.")
    out += _capture_wide(analysis, tz)
    return "\n".join(out) + "\n"


def _capture_wide(analysis: Analysis, tz: tzinfo) -> list[str]:
    from pcapsmtp.report.overview import overview_markdown

    sections = overview_markdown(analysis, tz).rstrip("\n")
    return ["", sections] if sections else []


def render_csv(analysis: Analysis) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for session in analysis.sessions:
        flow = session.flow
        first = session.transactions[0] if session.transactions else None
        last = session.last_reply
        software = session.server_software
        writer.writerow(
            [
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
                sum(len(t.rcpt_to) for t in session.transactions),
                len(session.transactions),
                session.outcome,
                last.code if last else "",
                wire(last.text.replace("\n", " | ")) if last else "",
                sum(e.counts["retransmission"] for e in flow.endpoints),
                tcp_trouble(session) if "RST" in tcp_trouble(session) else "",
                flow.state,
            ]
        )
    return buffer.getvalue()

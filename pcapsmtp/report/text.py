"""Plain text for a terminal: everything from the wire passes through safe.terminal."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from datetime import UTC, tzinfo

from tabulate import tabulate

from pcapsmtp.analysis import Analysis, CaptureResult
from pcapsmtp.capture.model import CaptureInfo
from pcapsmtp.report.captures import link_type_name
from pcapsmtp.report.counts import count
from pcapsmtp.report.findings import format_findings
from pcapsmtp.report.safe import terminal
from pcapsmtp.report.sessions import address, endpoint_name, resets
from pcapsmtp.report.times import clock, duration, human
from pcapsmtp.report.zeek import tcp_legend
from pcapsmtp.smtp.deciding import deciding_reply
from pcapsmtp.smtp.model import Session
from pcapsmtp.tcp.model import TH_FIN, TH_RST, TH_SYN, WIRESHARK_NAMES, Flag, SegmentNote

QUIET_FLAGS = Flag.DUPLICATE_ACK | Flag.WINDOW_UPDATE | Flag.KEEP_ALIVE_ACK
EVENT_NAMES = {
    "retransmission": "retransmission",
    "fast_retransmission": "fast retransmission",
    "spurious_retransmission": "spurious retransmission",
    "out_of_order": "out-of-order",
    "lost_segment": "previous segment not captured",
    "ack_lost_segment": "ACKed unseen segment",
    "duplicate_ack": "duplicate ACK",
    "zero_window": "zero window",
    "zero_window_probe": "zero-window probe",
    "zero_window_probe_ack": "zero-window probe ACK",
    "keep_alive": "keep-alive",
    "keep_alive_ack": "keep-alive ACK",
    "window_update": "window update",
    "window_full": "window full",
    "reused_ports": "port numbers reused",
}
ICMP_NAMES = {
    (4, 3, 4): "ICMP fragmentation needed",
    (6, 2, 0): "ICMPv6 packet too big",
}


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def format_capture(info: CaptureInfo, tz: tzinfo = UTC) -> str:
    kind = info.format + (f", {info.compression}" if info.compression else "")
    if info.files:
        kind += f", a rotated set of {len(info.files)} files"
    lines = [f"Capture {terminal(info.file)} ({kind})"]
    if info.frames:
        span = (info.last_time_ns - info.first_time_ns) / 1e9
        lines.append(
            f"  {info.frames} frames from {human(info.first_time_ns, tz)} "
            f"to {human(info.last_time_ns, tz)} ({duration(span)})"
        )
    else:
        lines.append("  no frames")
    links = ", ".join(f"{link_type_name(lt)} ({n})" for lt, n in sorted(info.link_types.items()))
    facts = [f"link types: {links or '-'}", f"snap length: {info.snaplen or '-'}"]
    if info.reassembled:
        facts.append(f"{info.reassembled} IP datagrams reassembled from fragments")
    lines.append("  " + "; ".join(facts))
    lines += [f"  warning: {terminal(w)}" for w in info.warnings]
    return "\n".join(lines)


def tcp_trouble(session: Session) -> str:
    flow = session.flow
    total = lambda name: sum(e.counts[name] for e in flow.endpoints)  # noqa: E731
    parts = []
    if retransmissions := total("retransmission"):
        parts.append(f"{retransmissions} retrans")
    if lost := total("lost_segment") + total("ack_lost_segment"):
        parts.append(f"{lost} lost")
    if zero := total("zero_window"):
        parts.append(f"{zero} zero-win")
    senders = sorted({r["from"] for r in resets(flow)})
    if senders:
        parts.append("RST " + "+".join(senders))
    if flow.icmp:
        parts.append(f"{len(flow.icmp)} ICMP")
    return ", ".join(parts) or "-"


def reply_text(reply, width: int = 34) -> str:
    """'550 5.1.1 <bob@...>: Recipient address rejected', first line, clipped."""
    if reply is None:
        return "-"
    return _clip(terminal(f"{reply.code} {reply.lines[0] if reply.lines else ''}".rstrip()), width)


def session_row(session: Session, tz: tzinfo) -> list[str]:
    transactions = session.transactions
    mail_from = transactions[0].mail_from if transactions else None
    recipients = sum(t.recipients for t in transactions)
    software = session.server_software
    return [
        str(session.id),
        clock(session.flow.first_time_ns, tz),
        f"{endpoint_name(session.client)} → {endpoint_name(session.server)}",
        _clip(getattr(software, "name", None) or "-", 18),
        _clip(terminal(session.helo or "-"), 20),
        _clip(terminal(mail_from if mail_from is not None else "-") or "<>", 28),
        str(recipients),
        session.outcome,
        reply_text(deciding_reply(session))
        if session.one_sided != "client"
        else "not captured (one-sided)",
        tcp_trouble(session),
    ]


HEADERS = [
    "#",
    "start",
    "client → server",
    "server",
    "helo",
    "mail from",
    "rcpt",
    "outcome",
    "deciding reply",
    "TCP",
]
"""The sessions table; "deciding reply" is the reply that decided the outcome (the refusal
of a rejected session, not the 221 after it; '-' when no reply did: timeouts, resets)."""


def session_table(sessions: list[Session], tz: tzinfo, cell=str) -> tuple[list[str], list[list]]:
    """(headers, rows) of the sessions table; a capture column after the id when the sessions
    come from several captures, whose ids each start at 1."""
    several = len(_captures(sessions)) > 1
    headers = [HEADERS[0], "capture", *HEADERS[1:]] if several else list(HEADERS)
    rows = []
    for session in sessions:
        row = session_row(session, tz)
        if several:
            row.insert(1, terminal(session.capture))
        rows.append([cell(value) for value in row])
    return headers, rows


def _captures(sessions: Sequence[Session]) -> set[str]:
    """The captures the sessions come from: a spool's (or a chain's) from its digests,
    without reading every session back a second time for it."""
    kept = getattr(sessions, "digests", None)
    if kept is not None:
        return {digest.capture for digest in kept}
    return {session.capture for session in sessions}


def format_sessions(sessions: list[Session], tz: tzinfo = UTC) -> str:
    if not sessions:
        return "No SMTP sessions."
    headers, rows = session_table(sessions, tz)
    return tabulate(rows, headers=headers, tablefmt="simple", disable_numparse=True)


def format_result(result: CaptureResult, tz: tzinfo) -> str:
    text = format_capture(result.info, tz)
    other = (
        f"; {count(result.other_connections, 'other TCP connection')}"
        if result.other_connections
        else ""
    )
    text += f"\n  {count(len(result.sessions), 'SMTP session')}{other}"
    return text


def format_analysis(analysis: Analysis, tz: tzinfo = UTC) -> str:
    parts = [format_result(result, tz) for result in analysis.results]
    parts.append(format_sessions(analysis.sessions, tz))
    parts += _capture_wide(analysis, tz)
    parts.append(format_findings(analysis.findings, sessions=analysis.sessions))
    return "\n\n".join(parts) + "\n"


def _capture_wide(analysis: Analysis, tz: tzinfo) -> list[str]:
    """Per destination and client; the mail log's links when one was given."""
    from pcapsmtp.report.overview import overview_text

    return overview_text(analysis, tz)


# -- show ---------------------------------------------------------------------


def _note_kind(note: SegmentNote) -> str:
    names = [EVENT_NAMES[name] for flag, name in WIRESHARK_NAMES.items() if note.analysis & flag]
    if note.analysis & Flag.ANY_RETRANSMISSION and len(names) > 1:
        names.remove("retransmission")
    for bit, name in ((TH_SYN, "SYN"), (TH_FIN, "FIN"), (TH_RST, "RST")):
        if note.tcp_flags & bit:
            names.insert(0, name)
    return ", ".join(names)


def _icmp_text(error) -> str:
    name = ICMP_NAMES.get((error.version, error.type, error.code if error.version == 4 else 0))
    name = name or f"ICMP{'v6' if error.version == 6 else ''} type {error.type} code {error.code}"
    mtu = f" (next-hop MTU {error.mtu})" if error.mtu else ""
    return f"{name}{mtu} from {address(error.src)}"


def _timeline(session: Session) -> list[tuple[int, int, str, str, str]]:
    """(frame, time, who, latency, text) for dialogue entries and TCP notes, in frame order."""
    flow = session.flow
    items = []
    for entry in session.dialogue:
        who = ("C" if entry.sender == "client" else "S") + ("*" if entry.decrypted else "")
        latency = f"{entry.latency_ns / 1e6:.1f} ms" if entry.latency_ns is not None else ""
        items.append((entry.frame, 0, entry.time_ns, who, latency, terminal(entry.text)))
    for note in flow.notes:
        if note.analysis & ~QUIET_FLAGS == 0 and not note.tcp_flags & (TH_SYN | TH_FIN | TH_RST):
            continue
        who = "c" if note.direction == flow.client else "s"
        size = f", {note.length} bytes" if note.length else ""
        items.append(
            (
                note.frame,
                1,
                note.time_ns,
                who,
                "",
                f"TCP {_note_kind(note)}{size}"
                + (f" (TTL {note.ttl})" if note.tcp_flags & TH_RST else ""),
            )
        )
    for error in flow.icmp:
        items.append((error.frame, 1, error.time_ns, "!", "", _icmp_text(error)))
    items.sort(key=lambda item: (item[0], item[1]))
    return _collapse([(f, t, w, lat, text) for f, _, t, w, lat, text in items])


def _collapse(items):
    """Runs of the same TCP event (a retransmission storm) shown as one line."""
    out = []
    for item in items:
        previous = out[-1] if out else None
        if (
            previous
            and item[4].startswith("TCP")
            and previous[0][4].split(",")[0] == item[4].split(",")[0]
            and previous[0][2] == item[2]
        ):
            previous.append(item)
        else:
            out.append([item])
    lines = []
    for run in out:
        first = run[0]
        if len(run) == 1:
            lines.append(first)
        else:
            kind = first[4].split(",")[0]
            lines.append(
                (
                    first[0],
                    first[1],
                    first[2],
                    "",
                    f"{kind} ×{len(run)} (frames {first[0]}–{run[-1][0]})",
                )
            )
    return lines


def format_show(session: Session, tz: tzinfo = UTC, findings: list | None = None) -> str:
    """The session's head, its dialogue with the TCP events interleaved, and its findings
    in full (pcapsmtp.diagnose.Finding) when given."""
    flow = session.flow
    software = session.server_software
    head = [
        f"Session {session.id} in {terminal(session.capture)} "
        f"(Wireshark: tcp.stream eq {flow.stream})",
        f"  {endpoint_name(session.client)} → {endpoint_name(session.server)}"
        + (f"  server: {software.name}" if software else ""),
        f"  outcome: {session.outcome} ({session.outcome_reason})",
        f"  TCP: {flow.state} {flow.history}"
        + (f", handshake RTT {flow.rtt_ns / 1e6:.2f} ms" if flow.rtt_ns is not None else "")
        + f", {tcp_trouble(session)}",
        f"  started {human(flow.first_time_ns, tz)}; times below are seconds since then",
        "",
        "",
    ]
    rows = []
    for frame, time_ns, who, latency, text in _timeline(session):
        offset = (time_ns - flow.first_time_ns) / 1e9
        rows.append([frame, f"+{offset:.6f}", latency, who, text])
    table = tabulate(
        rows,
        headers=["frame", "time", "latency", "", "what"],
        tablefmt="plain",
        disable_numparse=True,
    )
    legend = "\nC/S: what the client/server said; c/s: TCP events from the client/server; !: ICMP."
    if session.tls is not None and session.tls.decrypted:
        legend += "\nC*/S*: said inside TLS, decrypted with the key log."
    legend += "\n" + textwrap.fill(tcp_legend(flow.state, flow.history), 100)
    for limit in session.limits():  # as the reports show them: what the table lacks
        legend += "\n" + textwrap.fill(f"Limit reached (docs/limits.md): {terminal(limit)}", 100)
    text = "\n".join(head) + table + "\n" + legend + "\n"
    if findings is not None:
        text += "\n" + format_findings(findings, detail=True, sessions=[session]) + "\n"
    return text

"""One session in detail: its dialogue with the TCP events and ICMP errors interleaved, as
the report's renderers read it."""

from __future__ import annotations

from pcapsmtp.report.findings import finding_dict
from pcapsmtp.report.ladder import ladder_rows
from pcapsmtp.report.model import Entry, LogLink, SessionSection
from pcapsmtp.report.safe import wire
from pcapsmtp.report.sessions import address, session_dict
from pcapsmtp.report.text import EVENT_NAMES, ICMP_NAMES
from pcapsmtp.report.times import human, iso
from pcapsmtp.smtp.model import Session
from pcapsmtp.tcp.model import TH_ACK, TH_FIN, TH_RST, TH_SYN, WIRESHARK_NAMES, Flag

QUIET_FLAGS = Flag.DUPLICATE_ACK | Flag.WINDOW_UPDATE | Flag.KEEP_ALIVE_ACK
"""TCP events left out of a dialogue: noise next to what people look for."""


def icmp_name(error) -> str:
    name = ICMP_NAMES.get((error.version, error.type, error.code if error.version == 4 else 0))
    name = name or f"ICMP{'v6' if error.version == 6 else ''} type {error.type} code {error.code}"
    return f"{name} (next-hop MTU {error.mtu})" if error.mtu else name


def _note_kind(analysis: Flag, tcp_flags: int) -> str:
    names = [EVENT_NAMES[name] for flag, name in WIRESHARK_NAMES.items() if analysis & flag]
    if analysis & Flag.ANY_RETRANSMISSION and len(names) > 1:
        names.remove("retransmission")
    for bit, name in ((TH_SYN, "SYN"), (TH_FIN, "FIN"), (TH_RST, "RST")):
        if tcp_flags & bit:
            names.insert(0, "SYN/ACK" if bit == TH_SYN and tcp_flags & TH_ACK else name)
    return ", ".join(names)


def dialogue_entries(session: Session) -> list[Entry]:
    """The dialogue with TCP events and ICMP errors interleaved, in frame order; runs of the
    same TCP event from the same side (a retransmission storm), or of the same ICMP error,
    as one entry with a count."""
    flow = session.flow
    start = flow.first_time_ns
    items = []
    for entry in session.dialogue:
        items.append(
            (entry.frame, 0, entry.time_ns, entry.sender, entry.kind, wire(entry.text),
             entry.latency_ns, entry.code, None)
        )  # fmt: skip
    for note in flow.notes:
        if note.analysis & ~QUIET_FLAGS == 0 and not note.tcp_flags & (TH_SYN | TH_FIN | TH_RST):
            continue
        sender = "client" if note.direction == flow.client else "server"
        text = _note_kind(note.analysis, note.tcp_flags)
        if note.length:
            text += f", {note.length} bytes"
        if note.tcp_flags & TH_RST:
            text += f" (TTL {note.ttl})"
        items.append((note.frame, 1, note.time_ns, sender, "tcp", text, None, None, None))
    for error in flow.icmp:
        text = f"{icmp_name(error)} from {address(error.src)}"
        to = "client" if error.dst == session.client.ip else "server"
        items.append((error.frame, 1, error.time_ns, "network", "icmp", text, None, None, to))
    items.sort(key=lambda item: (item[0], item[1]))
    entries: list[Entry] = []
    for frame, _, time_ns, sender, kind, text, latency, code, to in items:
        previous = entries[-1] if entries else None
        if (
            previous
            and kind in ("tcp", "icmp")
            and previous["kind"] == kind
            and previous["from"] == sender
            and previous["text"].split(",")[0] == text.split(",")[0]
        ):
            previous["count"] += 1
            previous["last_frame"] = frame
            continue
        entries.append(
            {
                "frame": frame,
                "last_frame": frame,
                "count": 1,
                "time": iso(time_ns),
                "offset_ms": round((time_ns - start) / 1e6, 3),
                "from": sender,
                "kind": kind,
                "text": text,
                "latency_ms": round(latency / 1e6, 3) if latency is not None else None,
                "code": code,
                "to": to,
                "label": "",
            }
        )
    for entry in entries:
        entry["label"] = _label(entry)
    return entries


def _label(entry: Entry) -> str:
    """One line for a diagram or a table: a TCP run as its kind, count and frames."""
    text = entry["text"]
    if entry["count"] > 1:
        first, last = entry["frame"], entry["last_frame"]
        what = f"TCP {text.split(',')[0]}" if entry["kind"] == "tcp" else text
        return f"{what} ×{entry['count']} (frames {first}–{last})"
    if entry["kind"] == "tcp":
        return f"TCP {text}"
    return text.split("\n")[0]


def session_section(
    session: Session, findings, tz, graphs: dict | None = None, log: list[LogLink] | None = None
) -> SessionSection:
    """The session's JSON dict (DESIGN.md) with its findings, its times for people, its
    interleaved dialogue and, for the HTML's figures, its ``graphs`` (``series``) and the
    ladder's rows; ``log``: its mail log lines (``maillog.session_links``)."""
    detail = session_dict(session)
    detail["findings"] = [finding_dict(f) for f in findings if f.session == session.id]
    entries = dialogue_entries(session)
    return SessionSection(
        **detail,
        start_local=human(session.flow.first_time_ns, tz),
        end_local=human(session.flow.last_time_ns, tz),
        dialogue_dropped=session.dropped_entries,
        entries=entries,
        graphs=graphs,
        ladder=ladder_rows(session, entries, graphs),
        log=log,
    )

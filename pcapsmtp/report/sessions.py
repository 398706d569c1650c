"""Sessions as plain structures (DESIGN.md's JSON contract), shared by every output format.

Every string that came from the wire passes through ``safe.wire`` so the structure is valid
UTF-8 text; escaping for a terminal, Markdown or HTML is the renderer's job.
"""

from __future__ import annotations

from collections import Counter

from pcapsmtp.capture.addresses import address, endpoint_name
from pcapsmtp.report.model import (
    ClientServer,
    DialogueLine,
    Endpoints,
    ReplyDoc,
    Reset,
    SessionDoc,
    SmtpDoc,
    TcpDoc,
    TlsDoc,
    TransactionDoc,
)
from pcapsmtp.report.safe import wire
from pcapsmtp.report.times import iso
from pcapsmtp.smtp import codes
from pcapsmtp.smtp.deciding import deciding_reply
from pcapsmtp.smtp.events import GREETING, Reply
from pcapsmtp.smtp.model import DialogueEntry, Session, Transaction
from pcapsmtp.tcp.community import community_id
from pcapsmtp.tcp.model import TH_RST, Endpoint, TcpFlow


def _ms(ns: int | None) -> float | None:
    return None if ns is None else round(ns / 1e6, 3)


def _roles(flow: TcpFlow) -> tuple[Endpoint, Endpoint]:
    return flow.endpoints[flow.client], flow.endpoints[flow.server]


def _common_ttl(endpoint: Endpoint) -> int | None:
    ttls = endpoint.ttls
    # most_common(1)'s answer (the first TTL of the largest count) without heapq's Python
    return max(ttls, key=ttls.__getitem__) if ttls else None


def resets(flow: TcpFlow) -> list[Reset]:
    return [
        {
            "frame": note.frame,
            "from": "client" if note.direction == flow.client else "server",
            "ttl": note.ttl,
        }
        for note in flow.notes
        if note.tcp_flags & TH_RST
    ]


_TOTALS = (
    ("retransmissions", "retransmission"),
    ("fast_retransmissions", "fast_retransmission"),
    ("spurious_retransmissions", "spurious_retransmission"),
    ("out_of_order", "out_of_order"),
    ("lost_segments", "lost_segment"),
    ("acked_unseen", "ack_lost_segment"),
    ("dup_acks", "duplicate_ack"),
    ("zero_windows", "zero_window"),
)
"""Document key -> the analysis flag (Wireshark's name) whose segments it counts, both sides."""


_HANDSHAKE = (
    ("mss", "mss"),
    ("wscale", "wscale"),
    ("sack", "sack_permitted"),
    ("timestamps", "timestamps"),
)
"""Document key -> the field of ``Handshake`` it shows."""


def _handshake_pair(client: Endpoint, server: Endpoint) -> dict[str, ClientServer]:
    """mss, wscale, sack and timestamps as each side's SYN announced them (None: not seen)."""
    ours, theirs = client.handshake, server.handshake
    return {
        key: {
            "client": getattr(ours, field) if ours else None,
            "server": getattr(theirs, field) if theirs else None,
        }
        for key, field in _HANDSHAKE
    }


def _df(endpoint: Endpoint) -> bool | None:
    """Every packet with Don't Fragment set; None when the side sent nothing."""
    if not endpoint.packets:
        return None
    df = endpoint.df
    return df.get(True, 0) > 0 and df.get(False, 0) == 0


def tcp_dict(flow: TcpFlow) -> TcpDoc:
    """Built field by field from each side's counters read once: this runs for every session
    of every output, and a walk per field (a Counter made for each of 16 sums) was most of
    its time."""
    client, server = _roles(flow)
    first, second = (endpoint.counts for endpoint in flow.endpoints)
    document: TcpDoc = {
        "state": flow.state,
        "history": flow.history,
        **_handshake_pair(client, server),  # type: ignore[typeddict-item]
        "ttl": {"client": _common_ttl(client), "server": _common_ttl(server)},
        "df": {"client": _df(client), "server": _df(server)},
    }
    for key, name in _TOTALS:
        document[key] = first.get(name, 0) + second.get(name, 0)  # type: ignore[literal-required]
    document |= {
        "resets": resets(flow),
        "fragments": sum(e.fragmented for e in flow.endpoints),
        "icmp": [
            {"frame": e.frame, "type": e.type, "code": e.code, "mtu": e.mtu, "from": address(e.src)}
            for e in flow.icmp
        ],
        "bytes": {"client": client.bytes, "server": server.bytes},
        "packets": {"client": client.packets, "server": server.packets},
        "max_segment": {"client": client.max_segment, "server": server.max_segment},
        "max_ip_len": {"client": client.max_ip_len, "server": server.max_ip_len},
        "max_acked_segment": {
            "client": client.max_acked_segment,
            "server": server.max_acked_segment,
        },
        "max_acked_ip_len": {
            "client": client.max_acked_ip_len,
            "server": server.max_acked_ip_len,
        },
        "retransmitted_sizes": {
            "client": _sizes(client.retransmitted_sizes),
            "server": _sizes(server.retransmitted_sizes),
        },
        "unacked_sizes": {
            "client": _sizes(client.unacked_sizes),
            "server": _sizes(server.unacked_sizes),
        },
        "gaps": {
            "client": {"count": client.gaps, "bytes": client.gap_bytes},
            "server": {"count": server.gaps, "bytes": server.gap_bytes},
        },
        "rtt_ms": _ms(flow.rtt_ns),
    }
    return document


def _sizes(counter: Counter) -> dict[str, int]:
    return {str(size): count for size, count in sorted(counter.items())} if counter else {}


def reply_dict(reply: Reply | None) -> ReplyDoc | None:
    if reply is None:
        return None
    return {
        "code": reply.code,
        "enhanced": codes.parse_enhanced(reply.lines[0]) if reply.lines else None,
        "text": wire(reply.text),
        "frame": reply.frame,
    }


def transaction_dict(transaction: Transaction) -> TransactionDoc:
    final = transaction.final
    message = transaction.message
    enhanced = codes.parse_enhanced(final.lines[0]) if final and final.lines else None
    return {
        "mail_from": wire(transaction.mail_from) if transaction.mail_from is not None else None,
        "mail_params": {k: wire(v) for k, v in transaction.mail_params.items()},
        "rcpt_to": [
            {"address": wire(r.address), "code": r.code, "enhanced": r.enhanced, "frame": r.frame}
            for r in transaction.rcpt_to
        ],
        **(
            {"rcpt_left_out": transaction.rcpt_left_out.summary()}
            if transaction.rcpt_left_out
            else {}
        ),
        "method": transaction.method,
        "size": transaction.size,
        "declared_size": transaction.declared_size,
        "code": final.code if final else None,
        "enhanced": enhanced,
        "text": wire(final.text) if final else None,
        "meaning": codes.meaning(final.code, enhanced, final.text) if final else None,
        "queue_id": transaction.queue_id,
        "message_id": _text(message.message_id) if message else None,
        "subject": _text(message.subject) if message else None,
        "from": _text(message.from_) if message else None,
        "date": _text(message.date) if message else None,
        "attachments": [
            {
                "filename": wire(a.filename) if a.filename else None,
                "content_type": a.content_type,
                "size": a.size,
            }
            for a in (message.attachments if message else [])
        ],
        "message_complete": transaction.message_complete,
        "first_frame": transaction.first_frame,
        "last_frame": transaction.last_frame,
        "outcome": transaction.outcome,
    }


def _text(value: str | None) -> str | None:
    return wire(value) if isinstance(value, str) else None


def tls_dict(session: Session) -> TlsDoc | None:
    if session.tls is None:
        return None
    facts = session.tls.facts
    alerts = facts.alerts if facts else []
    fatal = next((a for a in alerts if not a.encrypted), None)
    return {
        "mode": session.tls.mode,
        "frame": session.tls.frame,
        "version": facts.version if facts else None,
        "offered_versions": list(facts.offered_versions) if facts else [],
        "cipher": facts.cipher if facts else None,
        "sni": _text(facts.sni) if facts else None,
        "alert": f"{fatal.level} {fatal.description} from the {fatal.sender}" if fatal else None,
        "failed": session.tls.failed,
        "decrypted": session.tls.decrypted,
    }


def smtp_dict(session: Session) -> SmtpDoc:
    software = session.server_software
    auth = session.auth[-1] if session.auth else None
    return {
        "banner": wire(session.greeting.text) if session.greeting else None,
        "greeting_latency_ms": _ms(session.greeting_latency_ns),
        "server_software": (
            f"{software.name} {software.version}".strip()
            if software and software.version
            else (software.name if software else None)
        ),
        "helo": wire(session.helo) if session.helo is not None else None,
        "extensions": [wire(e) for e in session.extensions.get("extensions", [])],
        "size_limit": session.extensions.get("size"),
        "starttls": session.starttls is not None,
        "tls": tls_dict(session),
        "auth": {"mechanism": auth.mechanism, "code": auth.code} if auth else None,
        "tunnel": session.tunnel,
        "transactions": [transaction_dict(t) for t in session.transactions],
        "dialogue": _dialogue(session.dialogue),
        "last_reply": reply_dict(session.last_reply),
        "deciding_reply": reply_dict(deciding_reply(session)),
        "unanswered": [
            {"frame": c.frame, "command": wire(c.text)}
            for c in session.commands
            if c.reply is None and c.verb != GREETING
        ],
        "anomalies": [
            {"code": a.code, "frame": a.frame, "from": a.sender, "detail": wire(a.detail)}
            for a in session.anomalies
        ],
    }


def _dialogue(entries: list[DialogueEntry]) -> list[DialogueLine]:
    """The timeline: most of a session's document (a line a command or reply), ``_ms`` and
    the ASCII case of ``wire`` written out here."""
    return [
        {
            "frame": entry.frame,
            "time": iso(entry.time_ns),
            "from": entry.sender,
            "kind": entry.kind,
            "text": text if (text := entry.text).isascii() else wire(text),
            "latency_ms": None if (ns := entry.latency_ns) is None else round(ns / 1e6, 3),
            "decrypted": entry.decrypted,
        }
        for entry in entries
    ]


def endpoint_fields(client: Endpoint, server: Endpoint) -> Endpoints:
    """The two ends as separate fields, as Zeek (id.orig_h, id.orig_p) and Suricata (src_ip,
    src_port) log them, beside the contract's "ip:port" strings."""
    return {
        "client_ip": address(client.ip),
        "client_port": client.port,
        "server_ip": address(server.ip),
        "server_port": server.port,
    }


def session_dict(session: Session) -> SessionDoc:
    flow = session.flow
    client, server = _roles(flow)
    return {
        "id": session.id,
        "capture": session.capture,
        "tcp_stream": flow.stream,
        "client": endpoint_name(client),
        "server": endpoint_name(server),
        **endpoint_fields(client, server),
        "community_id": community_id(flow),
        "start": iso(flow.first_time_ns),
        "end": iso(flow.last_time_ns),
        "first_frame": flow.first_frame,
        "last_frame": flow.last_frame,
        "outcome": session.outcome,
        "outcome_reason": session.outcome_reason,
        "tcp": tcp_dict(flow),
        "smtp": smtp_dict(session),
        "findings": [],
        **({"limits": limits} if (limits := session.limits()) else {}),
    }

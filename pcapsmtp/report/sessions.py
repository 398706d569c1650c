"""Sessions as plain structures (DESIGN.md's JSON contract), shared by every output format.

Every string that came from the wire passes through ``safe.wire`` so the structure is valid
UTF-8 text; escaping for a terminal, Markdown or HTML is the renderer's job.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from pcapsmtp.capture.addresses import address, endpoint_name
from pcapsmtp.report.model import (
    ClientServer,
    Endpoints,
    PerSide,
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
from pcapsmtp.smtp.model import Session, Transaction
from pcapsmtp.tcp.community import community_id
from pcapsmtp.tcp.model import TH_RST, Endpoint, TcpFlow


def _ms(ns: int | None) -> float | None:
    return None if ns is None else round(ns / 1e6, 3)


def _roles(flow: TcpFlow) -> tuple[Endpoint, Endpoint]:
    return flow.endpoints[flow.client], flow.endpoints[flow.server]


def _pair(flow: TcpFlow, value: Callable[[Endpoint], PerSide]) -> ClientServer:
    client, server = _roles(flow)
    return {"client": value(client), "server": value(server)}


def _common_ttl(endpoint: Endpoint) -> int | None:
    return endpoint.ttls.most_common(1)[0][0] if endpoint.ttls else None


def _total(flow: TcpFlow, name: str) -> int:
    return sum(endpoint.counts[name] for endpoint in flow.endpoints)


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


def tcp_dict(flow: TcpFlow) -> TcpDoc:
    handshake = lambda attr: (  # noqa: E731
        lambda e: getattr(e.handshake, attr) if e.handshake else None
    )
    return {
        "state": flow.state,
        "history": flow.history,
        "mss": _pair(flow, handshake("mss")),
        "wscale": _pair(flow, handshake("wscale")),
        "sack": _pair(flow, handshake("sack_permitted")),
        "timestamps": _pair(flow, handshake("timestamps")),
        "ttl": _pair(flow, _common_ttl),
        "df": _pair(flow, lambda e: e.df[True] > 0 and e.df[False] == 0 if e.packets else None),
        "retransmissions": _total(flow, "retransmission"),
        "fast_retransmissions": _total(flow, "fast_retransmission"),
        "spurious_retransmissions": _total(flow, "spurious_retransmission"),
        "out_of_order": _total(flow, "out_of_order"),
        "lost_segments": _total(flow, "lost_segment"),
        "acked_unseen": _total(flow, "ack_lost_segment"),
        "dup_acks": _total(flow, "duplicate_ack"),
        "zero_windows": _total(flow, "zero_window"),
        "resets": resets(flow),
        "fragments": sum(e.fragmented for e in flow.endpoints),
        "icmp": [
            {"frame": e.frame, "type": e.type, "code": e.code, "mtu": e.mtu, "from": address(e.src)}
            for e in flow.icmp
        ],
        "bytes": _pair(flow, lambda e: e.bytes),
        "packets": _pair(flow, lambda e: e.packets),
        "max_segment": _pair(flow, lambda e: e.max_segment),
        "max_ip_len": _pair(flow, lambda e: e.max_ip_len),
        "max_acked_segment": _pair(flow, lambda e: e.max_acked_segment),
        "max_acked_ip_len": _pair(flow, lambda e: e.max_acked_ip_len),
        "retransmitted_sizes": _pair(flow, lambda e: _sizes(e.retransmitted_sizes)),
        "unacked_sizes": _pair(flow, lambda e: _sizes(e.unacked_sizes)),
        "gaps": _pair(flow, lambda e: {"count": e.gaps, "bytes": e.gap_bytes}),
        "rtt_ms": _ms(flow.rtt_ns),
    }


def _sizes(counter: Counter) -> dict[str, int]:
    return {str(size): count for size, count in sorted(counter.items())}


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
        "dialogue": [
            {
                "frame": entry.frame,
                "time": iso(entry.time_ns),
                "from": entry.sender,
                "kind": entry.kind,
                "text": wire(entry.text),
                "latency_ms": _ms(entry.latency_ns),
                "decrypted": entry.decrypted,
            }
            for entry in session.dialogue
        ],
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
        **(
            {"limits": session.limits()}
            if session.left_out or _recipients_left_out(session)
            else {}
        ),
    }


def _recipients_left_out(session: Session) -> bool:
    return any(t.rcpt_left_out is not None for t in session.transactions)

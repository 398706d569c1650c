"""TLS: a handshake that failed, and why, as far as its clear-text part shows.

Until encryption starts, the ClientHello (the versions and ciphers offered), the ServerHello
(what was chosen), the certificate (TLS 1.2 and older) and alerts travel in clear (RFC 8446
4.1 and 6, RFC 5246 7.2). That is enough to tell a version or cipher mismatch, a refused
certificate, a server that does not speak TLS on this port, and a server that never answers.
"""

from __future__ import annotations

from collections.abc import Iterator

from pcapsmtp.diagnose.evidence import host, quote, seconds
from pcapsmtp.diagnose.model import ERROR, WARNING, Finding
from pcapsmtp.diagnose.registry import session_rule
from pcapsmtp.smtp.events import CLIENT, SERVER
from pcapsmtp.smtp.model import Session
from pcapsmtp.smtp.outcome import TIMEOUT_NS
from pcapsmtp.smtp.syntax import quoted
from pcapsmtp.smtp.tls.facts import TlsAlert

ALERTS = {
    # description -> what it says about the handshake (RFC 8446 6.2, RFC 5246 7.2.2)
    "protocol_version": "it supports none of the TLS versions offered",
    "handshake_failure": "no cipher suite, key-exchange group or signature algorithm in common",
    "insufficient_security": "the offered ciphers are weaker than it accepts",
    "inappropriate_fallback": "the client retried with a lower version than it supports (RFC 7507)",
    "unrecognized_name": "it has no certificate for the name asked for (SNI)",
    "bad_certificate": "it refused the peer's certificate",
    "unsupported_certificate": "it cannot use the peer's certificate type",
    "certificate_revoked": "the peer's certificate is revoked",
    "certificate_expired": "the peer's certificate has expired or is not yet valid",
    "certificate_unknown": "it refused the peer's certificate (untrusted, wrong name, ...)",
    "unknown_ca": "it does not trust the issuer of the peer's certificate (self-signed, or "
    "an intermediate certificate missing from the chain)",
    "access_denied": "a policy refused the peer",
    "certificate_required": "it requires a client certificate",
    "decode_error": "a handshake message was malformed",
    "illegal_parameter": "a handshake field had a value it does not accept",
    "decrypt_error": "a signature or Finished check failed",
    "unexpected_message": "a message came out of order",
    "internal_error": "it failed internally",
    "close_notify": "it closed the connection during the handshake",
    "user_canceled": "it abandoned the handshake",
}
CERTIFICATE_ALERTS = {
    "bad_certificate",
    "unsupported_certificate",
    "certificate_revoked",
    "certificate_expired",
    "certificate_unknown",
    "unknown_ca",
    "unrecognized_name",
}


@session_rule("tls-handshake-failed")
def tls_handshake_failed(session: Session, context) -> Iterator[Finding]:
    """A TLS handshake (after STARTTLS, or from the first byte on 465) that failed: a fatal
    alert before both Finished messages, a ClientHello no ServerHello answered, or a peer
    that answered in clear text (``TlsScanner.failed``). It says who sent the alert and
    compares the versions offered with the one chosen. ERROR; WARNING when the capture
    simply ends less than 30 s after an unanswered ClientHello with the connection open."""
    tls = session.tls
    if tls is None or not tls.failed or tls.facts is None:
        return
    facts = tls.facts
    alert = next((a for a in facts.alerts if a.level != "warning"), None)
    clear = _clear_answer(session)
    if alert is not None:
        summary, cause = _alert_words(session, alert)
    elif clear is not None:
        summary, cause = _clear_words(session, clear)
    else:
        summary, cause = _silence_words(session)
    frames = [
        f
        for f in (
            session.starttls.frame if session.starttls else None,
            facts.client_hello_frame,
            facts.server_hello_frame,
            alert.frame if alert else None,
            clear[1] if clear else None,
            session.client.closed_frame,
            session.server.closed_frame,
        )
        if f
    ]
    yield Finding(
        code="tls-handshake-failed",
        severity=ERROR if alert or clear or _ended(session) else WARNING,
        summary=summary,
        detail=f"{cause.strip()} {_offer(facts)}".strip(),
        frames=sorted(set(frames)),
        next_steps=_tls_steps(session, alert, clear),
    )


def _ended(session: Session) -> bool:
    flow = session.flow
    hello = session.tls.frame
    waited = flow.last_time_ns - _hello_time(session)
    closed = any(e.closed_frame and e.closed_frame > hello for e in flow.endpoints)
    return closed or waited >= TIMEOUT_NS


def _hello_time(session: Session) -> int:
    entry = next((e for e in session.dialogue if e.kind == "tls"), None)
    return entry.time_ns if entry is not None else session.flow.first_time_ns


def _clear_answer(session: Session) -> tuple[str, int] | None:
    """(text, frame) of plain SMTP where TLS was expected from the server."""
    tls = session.tls
    text = tls.facts.clear_text.get(SERVER)
    if text:
        return text.strip(), tls.frame
    if tls.mode != "implicit":
        return None
    replies = [r for r in session.unsolicited if r.frame >= tls.frame]
    if session.greeting is not None:
        replies.insert(0, session.greeting)
    return (quote(replies[0], 120), replies[0].frame) if replies else None


def _alert_words(session: Session, alert: TlsAlert) -> tuple[str, str]:
    flow = session.flow
    sender = session.client if alert.sender == CLIENT else session.server
    peer = alert.sender.peer
    what = ALERTS.get(alert.description, "the alert names no common reason")
    facts = session.tls.facts
    answer_to = (
        "the server's hello and certificate" if facts.server_hello_frame else "the ClientHello"
    )
    offered = "/".join(facts.offered_versions) or "unknown versions"
    summary = (
        f"TLS handshake failed: the {alert.sender} {host(sender)} sent a {alert.level} "
        f"{alert.description} alert in answer to {answer_to}"
    )
    if alert.description == "protocol_version" and alert.sender == SERVER:
        summary += f" (the client offered only {offered})"
    cause = (
        f"In frame {alert.frame} the {alert.sender} ({host(sender)}) sent a {alert.level} "
        f"'{alert.description}' alert: {what}. "
    )
    if alert.encrypted:
        cause += (
            "The alert was encrypted (TLS 1.3 hides it); its timing, right after the "
            f"{peer}'s handshake, usually means the {alert.sender} refused the {peer}'s "
            "certificate. "
        )
    if alert.description in CERTIFICATE_ALERTS:
        cause += f"The {alert.sender} refused the {peer}'s certificate. " + _certificate(facts)
    closer = CLIENT if session.client.closed_frame else SERVER
    if session.client.closed_frame or session.server.closed_frame:
        cause += f"The {closer} then closed the connection (tcp.stream {flow.stream}). "
    return summary, cause


def _clear_words(session: Session, clear: tuple[str, int]) -> tuple[str, str]:
    text, frame = clear
    port = session.server.port
    if session.tls.mode == "implicit":
        summary = (
            f"TLS handshake failed: the client started TLS at once on port {port}, but "
            f"{host(session.server)} speaks plain SMTP there: {quoted(text[:80])}"
        )
        cause = (
            f"The client sent a ClientHello as its first bytes (implicit TLS, as RFC 8314 "
            f"has it for port 465); the server answered in clear text in frame {frame}: "
            f"{quoted(text)}. The two sides disagree on how the connection starts: the server "
            "expects STARTTLS (or no TLS at all) on this port."
        )
    else:
        summary = (
            f"TLS handshake failed: after its 220 to STARTTLS, {host(session.server)} "
            f"answered the ClientHello with clear text: {quoted(text[:80])}"
        )
        cause = (
            f"The server agreed to STARTTLS but then answered the ClientHello with clear "
            f"text ({quoted(text)}): it, or a box on the path that answered STARTTLS in its name "
            "(an SMTP inspection), does not speak TLS."
        )
    return summary, cause


def _silence_words(session: Session) -> tuple[str, str]:
    waited = session.flow.last_time_ns - _hello_time(session)
    closer = None
    if session.client.closed_frame:
        closer = f"the client closed the connection in frame {session.client.closed_frame}"
    elif session.server.closed_frame:
        closer = f"the server closed the connection in frame {session.server.closed_frame}"
    summary = (
        f"TLS handshake failed: {host(session.server)} never answered the ClientHello "
        f"({seconds(waited)} without a ServerHello)"
    )
    cause = (
        f"The ClientHello (frame {session.tls.facts.client_hello_frame}) got no ServerHello "
        f"and no alert in the {seconds(waited)} the capture shows"
        + (f"; {closer}. " if closer else ", and the capture ends there. ")
        + "A server whose TLS setup is broken (no certificate or key loaded), or a box on the "
        "path that drops TLS, looks like this."
    )
    return summary, cause


def _offer(facts) -> str:
    parts = []
    if facts.offered_versions:
        parts.append(
            f"The client offered {'/'.join(facts.offered_versions)} with "
            f"{facts.offered_ciphers} cipher suites"
            + (f" and asked for the name {facts.sni}" if facts.sni else ", no SNI")
            + "."
        )
    if facts.version:
        parts.append(f"The server chose {facts.version}, {facts.cipher or 'cipher unknown'}.")
    elif facts.client_hello_frame:
        parts.append("No ServerHello came back, so nothing was chosen.")
    return " ".join(parts)


def _certificate(facts) -> str:
    cert = facts.certificate
    if cert is None:
        return ""
    names = ", ".join(cert.san[:5]) or "none"
    return (
        f"The server's certificate (frame {cert.frame}): subject {cert.subject}, issuer "
        f"{cert.issuer}, valid {cert.not_before} to {cert.not_after}, names {names}"
        + (f", signed with {cert.signature_hash}" if cert.signature_hash else "")
        + ". "
    )


def _tls_steps(session: Session, alert, clear) -> list[str]:
    server = host(session.server)
    port = session.server.port
    starttls = "" if session.tls.mode == "implicit" else " -starttls smtp"
    probe = f"`openssl s_client -connect {server}:{port}{starttls} -tls1_2` (then -tls1_3)"
    if clear is not None and session.tls.mode == "implicit":
        return [
            f"Use STARTTLS on port 587 or 25 with this server, or turn on implicit TLS on "
            f"port {port} at the server (Postfix: smtpd_tls_wrappermode = yes on the 465 "
            "service; Exim: tls_on_connect_ports = 465).",
            f"Check with {probe}.",
        ]
    steps = []
    if alert is not None and alert.description in CERTIFICATE_ALERTS:
        steps.append(
            "Check the server's certificate: its expiry, the full chain (intermediate "
            f"certificates included) and its names, with {probe} -showcerts; and the "
            "client's trust store and verification settings (Postfix smtp_tls_CAfile, "
            "smtp_tls_security_level)."
        )
    steps.append(
        "Compare the TLS versions and ciphers both sides allow: Postfix smtpd_tls_protocols "
        "/ smtp_tls_protocols (and the _mandatory_ ones), Exim openssl_options and "
        "tls_require_ciphers, OpenSSL's MinProtocol and CipherString in openssl.cnf. "
        f"Probe the server with {probe}."
    )
    if clear is not None or alert is None:
        steps.append(
            "Look for a firewall doing SMTP inspection between the two hosts, and at the "
            "server's log for TLS setup errors (missing certificate or key)."
        )
    return steps

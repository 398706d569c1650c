"""Small helpers the rules share: who is who, which SMTP phase a frame fell in, filters."""

from __future__ import annotations

from pcapsmtp.addresses import address, endpoint_name
from pcapsmtp.smtp.events import AUTH_RESPONSE, END_OF_DATA, Reply
from pcapsmtp.smtp.model import Session
from pcapsmtp.tcp.model import Endpoint, TcpFlow

PHASES = {
    "EHLO": "the EHLO exchange",
    "HELO": "the HELO exchange",
    "LHLO": "the LHLO exchange",
    "STARTTLS": "the STARTTLS exchange",
    "AUTH": "authentication (AUTH)",
    AUTH_RESPONSE: "authentication (AUTH)",
    "MAIL": "the envelope (MAIL FROM / RCPT TO)",
    "RCPT": "the envelope (MAIL FROM / RCPT TO)",
    "DATA": "the DATA command",
    "BDAT": "the message transfer (BDAT)",
    END_OF_DATA: "the wait for the reply to the message",
    "QUIT": "QUIT",
    "RSET": "RSET",
}


def role(flow: TcpFlow, direction: int) -> str:
    return "client" if direction == flow.client else "server"


def who(flow: TcpFlow, direction: int) -> str:
    """'the client 10.0.0.5:43210'."""
    return f"the {role(flow, direction)} {endpoint_name(flow.endpoints[direction])}"


def host(endpoint: Endpoint) -> str:
    return address(endpoint.ip)


def direction_of(flow: TcpFlow, endpoint: Endpoint) -> int:
    return 0 if flow.endpoints[0] is endpoint else 1


def phase_at(session: Session, frame: int) -> str:
    """The SMTP phase the connection was in when ``frame`` was sent, as a noun phrase that
    reads after 'during'."""
    if session.encrypted and frame >= session.tls.frame:
        return "the TLS handshake" if session.tls.failed else "the encrypted part (TLS)"
    last = None
    for command in session.commands:
        if command.frame > frame:
            break
        last = command
    if last is None:
        if session.greeting is not None and session.greeting.frame <= frame:
            return "the pause after the greeting"
        return "the wait for the server's greeting"
    reply = last.reply
    if last.verb == "DATA" and reply is not None and reply.code == 354 and reply.frame <= frame:
        return "the message transfer (DATA)"
    if last.verb == END_OF_DATA and last.reply is not None and last.reply.frame <= frame:
        return "the end of the session, after the reply to the message"
    return PHASES.get(last.verb, f"{last.verb}")


def ip_len_filter(flow: TcpFlow, above: int) -> str:
    """A filter for packets bigger than ``above`` bytes (IPv4 ip.len; IPv6 payload + 40)."""
    if len(flow.endpoints[0].ip) == 16:
        return f"ipv6.plen > {above - 40}"
    return f"ip.len > {above}"


def quote(reply: Reply, limit: int = 160) -> str:
    """A reply as one line, shortened: '550 5.1.1 <bob@example.org>: Recipient ...'."""
    text = f"{reply.code} {' '.join(reply.text.split())}".rstrip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def seconds(ns: int) -> str:
    """'40 ms', '15.0 s', '2 min 5 s': a duration as people read it."""
    value = ns / 1e9
    if value < 1:
        return f"{ns / 1e6:.0f} ms"
    if value < 120:
        return f"{value:.1f} s"
    minutes, rest = divmod(round(value), 60)
    return f"{minutes} min {rest} s" if rest else f"{minutes} min"


def count(number: int, noun: str, plural: str | None = None) -> str:
    """'1 SYN', '8 SYNs': a count that agrees with its noun."""
    return f"{number} {noun if number == 1 else plural or noun + 's'}"

"""Small helpers the rules share: who is who, which SMTP phase a frame fell in."""

from __future__ import annotations

from pcapsmtp.capture.addresses import address, endpoint_name
from pcapsmtp.smtp.events import AUTH_RESPONSE, END_OF_DATA, Reply, Side
from pcapsmtp.smtp.model import Session
from pcapsmtp.tcp.model import TH_FIN, Endpoint, SegmentNote, TcpFlow

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


def role(flow: TcpFlow, direction: int) -> Side:
    """The side that sent in this TCP direction."""
    return Side.CLIENT if direction == flow.client else Side.SERVER


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
    if last.verb in PHASES:
        return PHASES[last.verb]
    if last.verb.isalpha() and len(last.verb) <= 12:
        return f"the {last.verb} command"
    return "an unrecognised command"


def closed_early(session: Session, direction: int) -> SegmentNote | None:
    """This side's first FIN, when it came in the middle of the session: before any QUIT and
    any FIN of the peer, while a command waited for its reply or a transaction was under way,
    and (from the server) not right after a reply that ends the session (221, 4xx, 5xx).
    A process that dies (killed, crashed, out of memory) has its kernel close its sockets
    like this, with a FIN when nothing was left unread."""
    flow = session.flow
    fin = next((n for n in flow.notes if n.direction == direction and n.tcp_flags & TH_FIN), None)
    if fin is None:
        return None
    peer_fin = any(
        n.direction != direction and n.tcp_flags & TH_FIN and n.frame < fin.frame
        for n in flow.notes
    )
    quit_sent = any(c.verb == "QUIT" and c.frame < fin.frame for c in session.commands)
    quit_sent = quit_sent or maybe_quit(session, fin.frame)
    if peer_fin or quit_sent:
        return None
    if direction == flow.server:
        replies = [r for c in session.commands if (r := c.reply) and r.frame < fin.frame]
        replies += [r for r in session.unsolicited if r.frame < fin.frame]
        last = max(replies, key=lambda r: r.frame, default=session.greeting)
        if last is None or last.code == 221 or last.code >= 400:
            return None
    # A reply the capture lost (the hole shows it was there) leaves nothing waiting, nor
    # one the snap length may have cut (server bytes cut after the command).
    lost = {id(u.command) for u in session.unanswered if u.reason == "not captured"}
    cut = [g.frame for g in session.gaps if g.sender == Side.SERVER and g.reason == "snaplen"]
    waiting = any(
        c.frame < fin.frame
        and c.verb != "QUIT"
        and (c.reply is None or c.reply.frame > fin.frame)
        and id(c) not in lost
        and not any(c.frame < frame < fin.frame for frame in cut)
        for c in session.commands
    )
    open_transaction = any(
        t.first_frame < fin.frame and (t.final is None or t.final.frame > fin.frame)
        for t in session.transactions
    )
    return fin if waiting or open_transaction else None


def maybe_quit(session: Session, before: int) -> bool:
    """The snap length cut the client's last line before frame ``before`` where what is
    left could still be QUIT: a verb cut to 'Q', 'QU' or 'QUI', or a line cut whole (a
    client snaplen gap after the reply to its last command, not in a message). Nobody can
    say the client closed without it."""
    last = max(
        (c for c in session.commands if c.frame < before), key=lambda c: c.frame, default=None
    )
    if last is not None and last.truncated and "QUIT".startswith(last.verb or "-"):
        return True
    answered = None if last is None else last.reply
    if last is not None and (answered is None or answered.code == 354):
        return False  # a line cut whole here is a message's, or the capture lost the reply
    after = 0 if answered is None else answered.frame
    return any(
        g.sender == Side.CLIENT and g.reason == "snaplen" and after < g.frame < before
        for g in session.gaps
    )


def cut_before_reset(session: Session, reset: SegmentNote) -> int | None:
    """The frame of the peer's last data before ``reset`` when the snap length cut it and
    neither side said anything readable since: that data may have been a reply ending the
    session (a 221, a 421), which the peer can answer with a RST, and nobody can read it."""
    flow = session.flow
    peer = role(flow, 1 - reset.direction)
    cut = [g.frame for g in session.gaps if g.sender == peer and g.frame < reset.frame]
    last = max(cut, default=None)
    if last is None or not any(
        g.frame == last and g.sender == peer and g.reason == "snaplen" for g in session.gaps
    ):
        return None
    said = [g.frame for g in session.gaps if g.sender != peer]
    said += [c.frame for c in session.commands]
    said += [r.frame for c in session.commands if (r := c.reply)]
    said += [r.frame for r in session.unsolicited]
    return None if any(last < frame < reset.frame for frame in said) else last


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

"""How a session ended when no reply, reset or timeout says why: the server or the client
hung up in the middle, or the dialogue went on inside TLS that no key opened.

With these, every session that did not deliver (or say QUIT cleanly) is explained by some
finding: the network, the server, the client or the capture (tests/diagnose/test_invariant.py).
"""

from __future__ import annotations

from collections.abc import Iterator

from pcapsmtp.diagnose.evidence import closed_early, host, phase_at, quote
from pcapsmtp.diagnose.model import ERROR, INFO, Finding
from pcapsmtp.diagnose.registry import session_rule
from pcapsmtp.smtp.events import SERVER, Reply
from pcapsmtp.smtp.model import Outcome, Session, Transaction
from pcapsmtp.smtp.syntax import quoted
from pcapsmtp.tcp.model import TH_RST, SegmentNote


def _server_replies_before(session: Session, frame: int) -> list[Reply]:
    replies = [r for c in session.commands if (r := c.reply) is not None and r.frame < frame]
    replies += [r for r in session.unsolicited if r.frame < frame]
    if session.greeting is not None and session.greeting.frame < frame:
        replies.append(session.greeting)
    return sorted(replies, key=lambda r: r.frame)


def _open_transaction(session: Session, frame: int) -> Transaction | None:
    """The transaction whose MAIL was accepted and that nothing had decided by ``frame``."""
    return next(
        (
            t
            for t in session.transactions
            if t.mail_reply is not None
            and 200 <= t.mail_reply.code < 300
            and t.first_frame < frame
            and (t.final is None or t.final.frame > frame)
        ),
        None,
    )


@session_rule("client-closed")
def client_closed(session: Session, context) -> Iterator[Finding]:
    """A session left undecided (outcome incomplete) that the client closed first, with a
    FIN or RST and no QUIT before it. ERROR when a mail was under way (its MAIL accepted and
    no reply to the message yet): the client gave it up. INFO when none was: no mail was
    attempted in this session (probes, scanners, a client that changed its mind)."""
    flow = session.flow
    client, server = session.client, session.server
    closed = client.closed_frame
    if session.outcome != Outcome.INCOMPLETE or closed is None:
        return
    if server.closed_frame is not None and server.closed_frame < closed:
        return  # the server closed first
    if any(c.verb == "QUIT" and c.frame < closed for c in session.commands):
        return
    if session.greeting is None or not server.packets:
        return  # the server's side is not in the capture: nothing to compare with
    note = next((n for n in flow.notes if n.frame == closed), None)
    how = "a reset" if note is not None and note.tcp_flags & TH_RST else "a FIN"
    replies = _server_replies_before(session, closed)
    last = replies[-1] if replies else None
    commands = [c for c in session.commands if c.frame < closed]
    transaction = _open_transaction(session, closed)
    phase = phase_at(session, closed)
    after = f", right after the server's reply {quoted(quote(last, 80))}" if last else ""
    consequence = (
        f"The mail from <{transaction.mail_from}> was under way and was not sent in this session."
        if transaction is not None
        else "No mail was under way: none was attempted in this session."
    )
    frames = sorted(
        {closed, *([last.frame] if last else []), *([commands[-1].frame] if commands else [])}
    )
    yield Finding(
        code="client-closed",
        severity=ERROR if transaction is not None else INFO,
        summary=(
            f"the client {host(client)} closed the connection during {phase} without QUIT "
            f"({how}, frame {closed})"
            + (": the mail in progress was not sent" if transaction else ": no mail attempted")
        ),
        detail=(
            f"The client ended the connection with {how} in frame {closed}{after}, while the "
            f"session was in {phase}; it had not sent QUIT and the server had not closed. "
            f"{consequence} The server did nothing to cause it in the capture (no refusal "
            "that ends the session, no silence the client could have timed out on), so the "
            "reason is on the client: its program stopped, gave up or decided not to go on."
        ),
        frames=frames,
        next_steps=[
            f"Check the log of the client {host(client)} (the MTA, or the program that sent "
            "the mail) at this time: an error it met, a crash, a policy that stopped it.",
            "If the client is a monitoring probe or a scanner, there is nothing to fix.",
        ],
    )


@session_rule("encrypted-dialogue")
def encrypted_dialogue(session: Session, context) -> Iterator[Finding]:
    """A session whose dialogue went on inside TLS (STARTTLS or implicit TLS) after a
    handshake that did not fail, with no key log to open it: whether mail was delivered is
    not in the capture. INFO: a limit of the capture, not a fault."""
    tls = session.tls
    if tls is None or tls.decrypted or tls.failed:
        return
    if session.outcome not in (Outcome.ENCRYPTED, Outcome.RESET, Outcome.INCOMPLETE):
        return
    if any(t.final is not None for t in session.transactions):
        return  # the clear part decided a mail: the reply findings speak for it
    flow = session.flow
    facts = tls.facts
    how = (
        f"after STARTTLS (frame {session.starttls.frame})"
        if tls.mode == "starttls" and session.starttls is not None
        else f"from the start (implicit TLS on port {session.server.port})"
    )
    chosen = (
        f" The handshake chose {facts.version} with {facts.cipher}."
        if facts is not None and facts.version and facts.cipher
        else ""
    )
    ended = {
        Outcome.RESET: " The connection then ended with a reset, inside TLS, for a reason the "
        "capture cannot show.",
        Outcome.INCOMPLETE: " The capture ends before the session did.",
    }.get(session.outcome, "")
    frames = sorted({tls.frame, flow.last_frame})
    yield Finding(
        code="encrypted-dialogue",
        severity=INFO,
        summary=(
            f"the dialogue is encrypted {how} and no key log opened it: whether mail was "
            "delivered cannot be read from this capture"
        ),
        detail=(
            f"The session went into TLS {how}; the first TLS record is in frame {tls.frame}."
            f"{chosen} Commands, replies and messages inside TLS are not visible without the "
            "session keys, so this analysis cannot say whether mail was accepted." + ended
        ),
        frames=frames,
        next_steps=[
            "Run again with the TLS key log of the client or the server (`--keylog FILE`, "
            "the SSLKEYLOGFILE format), or with a pcapng holding a Decryption Secrets Block.",
            "Or look the session up in the server's log by time and client address (`--maillog`).",
        ],
    )


@session_rule("server-closed")
def server_closed(session: Session, context) -> Iterator[Finding]:
    """The server closed the connection (FIN) in the middle of the session: while a command
    waited for its reply or a mail was under way, with no reply ending the session before
    (221, 4xx, 5xx) and no QUIT, and without resetting what the client sent next (that is
    ``reset``). ERROR: the server ended the session before accepting what it was given."""
    flow = session.flow
    fin = closed_early(session, flow.server)
    if fin is None or session.outcome == Outcome.DELIVERED:
        return
    if any(n.direction == flow.server and n.tcp_flags & TH_RST for n in flow.notes):
        return  # it reset what followed: the reset finding tells it
    yield _server_closed_finding(session, fin)


def _server_closed_finding(session: Session, fin: SegmentNote) -> Finding:
    server, client = session.server, session.client
    phase = phase_at(session, fin.frame)
    transaction = _open_transaction(session, fin.frame)
    garbled = [a for a in session.anomalies if a.sender == SERVER and a.code == "bad_reply_line"]
    last_bad = garbled[-1] if garbled and garbled[-1].frame <= fin.frame else None
    acked = client.last_acked_frame
    if acked is not None and acked > fin.frame:
        acked = None  # acknowledged after the FIN: not what the server had taken before it
    what = (
        "the message"
        if phase in ("the message transfer (DATA)", "the wait for the reply to the message")
        else f"the mail from <{transaction.mail_from}>"
        if transaction is not None
        else "the client's last command"
    )
    frames = sorted(
        {fin.frame, *([acked] if acked else []), *([last_bad.frame] if last_bad else [])}
    )
    return Finding(
        code="server-closed",
        severity=ERROR,
        summary=(
            f"the server {host(server)} closed the connection during {phase} (FIN, frame "
            f"{fin.frame}) without a reply that says why: it closed before accepting {what}"
        ),
        detail=(
            f"The server sent a FIN in frame {fin.frame} while the session was in {phase}, "
            "with no QUIT before it and no reply ending the session (221, 4xx or 5xx)"
            + (
                f"; the last data of the client it acknowledged is in frame {acked}"
                if acked
                else ""
            )
            + ". "
            + (
                f"Its last bytes before closing (frame {last_bad.frame}) were not a valid "
                f"reply: {quoted(last_bad.detail)}. "
                if last_bad
                else ""
            )
            + "A server closes like this when its process ends (killed, crashed, out of "
            "memory, restarted) or when something on its side drops the connection; "
            + (
                f"the mail from <{transaction.mail_from}> was not accepted in this session."
                if transaction is not None
                else "no mail got through in this session."
            )
        ),
        frames=frames,
        next_steps=[
            f"Check the log of {host(server)} at this time for the process that handled the "
            "connection (a crash, a kill, a restart, a limit it hit).",
            "If the last bytes were not a valid reply, look for a proxy or filter in front of "
            "the server that answers or cuts SMTP sessions.",
        ],
    )

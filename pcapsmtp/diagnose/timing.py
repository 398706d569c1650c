"""Timing: a server slow to answer, a server that closed an idle connection, a client that
gave up waiting.

RFC 5321 4.5.3.2 gives the timeouts a client should allow: 5 minutes for the greeting, MAIL
and RCPT, 2 minutes for the 354 to DATA, 3 minutes per data block, 10 minutes for the reply
to the end of data; 4.5.3.2.7 asks a server to wait at least 5 minutes for the next command.
Real clients are often less patient (swaks and Nodemailer's greetingTimeout give up after
30 s), so a server that is merely slow already loses mail from some of them.
"""

from __future__ import annotations

from collections.abc import Iterator

from pcapsmtp.diagnose.evidence import PHASES, count, host, quote, seconds
from pcapsmtp.diagnose.model import ERROR, INFO, WARNING, Finding
from pcapsmtp.diagnose.registry import session_rule
from pcapsmtp.diagnose.vantage import capture_elsewhere
from pcapsmtp.smtp.events import CLIENT, END_OF_DATA, GREETING, Command, Reply
from pcapsmtp.smtp.model import Session
from pcapsmtp.smtp.outcome import client_gave_up, is_timeout_notice
from pcapsmtp.smtp.syntax import quoted

SECOND = 1_000_000_000
MINUTE = 60 * SECOND

SLOW_GREETING_NS = 5 * SECOND
"""A greeting this late is worth a warning: normal servers greet within a second (every lab
capture under 0.1 s), and 5 s is the resolver's default timeout per DNS try (resolv.conf(5)),
the usual cost of a lookup that failed, and the usual tarpit (sendmail greet_pause examples)."""
SLOW_REPLY_NS = 5 * SECOND
"""Same for the reply to a command."""
SLOW_END_OF_DATA_NS = 30 * SECOND
"""The reply to the end of data legitimately takes seconds (content scanning); 30 s is where
common clients' default timeouts (swaks, Nodemailer) start to expire."""
ROUND_NS = SECOND // 10
"""A delay within this of a whole number of seconds is 'round': a configured sleep."""
DNS_TRY_NS = 5 * SECOND
"""glibc's default resolver timeout per try (RES_TIMEOUT, resolv.conf(5))."""

RFC_TIMEOUTS = {
    GREETING: (5 * MINUTE, "4.5.3.2.1"),
    "MAIL": (5 * MINUTE, "4.5.3.2.2"),
    "RCPT": (5 * MINUTE, "4.5.3.2.3"),
    "DATA": (2 * MINUTE, "4.5.3.2.4"),
    "BDAT": (3 * MINUTE, "4.5.3.2.5"),
    END_OF_DATA: (10 * MINUTE, "4.5.3.2.6"),
}
"""Client timeouts of RFC 5321 4.5.3.2 (a BDAT chunk is timed like a data block)."""
DEFAULT_TIMEOUT = (5 * MINUTE, None)
"""For commands RFC 5321 names no timeout for (EHLO, STARTTLS, AUTH): what MTAs use."""
SERVER_TIMEOUT_NS = 5 * MINUTE
"""RFC 5321 4.5.3.2.7: a server should wait at least this long for the next command."""


def rfc_timeout(command: Command | None) -> tuple[int, str | None]:
    if command is None:
        return RFC_TIMEOUTS[GREETING]
    if command.verb == "BDAT" and command.bdat_last:
        return RFC_TIMEOUTS[END_OF_DATA]
    return RFC_TIMEOUTS.get(command.verb, DEFAULT_TIMEOUT)


def _rfc_words(command: Command | None) -> str:
    limit, section = rfc_timeout(command)
    where = f"RFC 5321 {section}" if section else "what MTAs allow (RFC 5321 names no figure)"
    return f"{seconds(limit)} ({where})"


def _what(command: Command | None) -> str:
    if command is None:
        return "the greeting"
    if command.verb == END_OF_DATA:
        return "the end of data"
    if command.verb == "BDAT":
        return "BDAT LAST" if command.bdat_last else "a BDAT chunk"
    return command.verb


# --- slow-server ---------------------------------------------------------------------------------


def _latencies(session: Session) -> list[tuple[Command | None, Reply, int]]:
    """(command or None for the greeting, reply, ns the server took). A pipelined command's
    time starts when the server answered the one before: it could not answer it sooner."""
    found = []
    previous = None
    if session.greeting is not None and session.greeting_latency_ns is not None:
        found.append((None, session.greeting, session.greeting_latency_ns))
        previous = session.greeting.time_ns
    for command in session.commands:
        reply = command.reply
        if reply is None:
            continue
        start = max(command.time_ns, previous or 0)
        previous = reply.time_ns
        if command.verb != "QUIT":
            found.append((command, reply, reply.time_ns - start))
    return found


def _threshold(command: Command | None) -> int:
    if command is None:
        return SLOW_GREETING_NS
    if command.verb == END_OF_DATA or (command.verb == "BDAT" and command.bdat_last):
        return SLOW_END_OF_DATA_NS
    return SLOW_REPLY_NS


@session_rule("slow-server")
def slow_server(session: Session, context) -> Iterator[Finding]:
    """The greeting after 5 s or more, a reply after 5 s or more, the reply to the end of
    data after 30 s or more (each measured from when the server could answer). 'Looks like
    tarpitting' when the greeting alone is late, by a round number of seconds once the round
    trip is taken off, and every other reply came under 5 s. WARNING: the mail is not lost
    yet, but impatient clients give up."""
    timed = _latencies(session)
    slow = [(c, r, ns) for c, r, ns in timed if ns >= _threshold(c)]
    if not slow:
        return
    others = [ns for c, _r, ns in timed if c is not None]
    greeting = next((ns for c, _r, ns in slow if c is None), None)
    server_delay = greeting - (session.flow.rtt_ns or 0) if greeting is not None else None
    tarpit = (
        server_delay is not None
        and len(slow) == 1
        and abs(server_delay - round(server_delay / SECOND) * SECOND) <= ROUND_NS
    )
    frames = sorted({r.frame for _c, r, _ns in slow} | {c.frame for c, _r, _ns in slow if c})
    yield Finding(
        code="slow-server",
        severity=WARNING,
        summary=_slow_summary(session, slow, others, tarpit, server_delay),
        detail=_slow_detail(session, slow, server_delay, tarpit),
        frames=frames,
        next_steps=_slow_steps(session, greeting is not None),
    )


def _slow_summary(session, slow, others, tarpit: bool, server_delay) -> str:
    server = host(session.server)
    command, _reply, ns = max(slow, key=lambda item: item[2])
    if tarpit:
        fastest = seconds(max(others)) if others else "no time"
        return (
            f"{server} held its greeting back {seconds(ns)}, then answered every command "
            f"within {fastest}: looks like tarpitting (a deliberate "
            f"{round(server_delay / SECOND)} s delay)"
        )
    text = f"{server} took {seconds(ns)} to answer {_what(command)}"
    if len(slow) > 1:
        text += (
            f"; {len(slow) - 1} other repl{'ies' if len(slow) > 2 else 'y'} also took 5 s or more"
        )
    return text


def _slow_detail(session: Session, slow, server_delay, tarpit: bool) -> str:
    points = "; ".join(
        f"{_what(c)}: {seconds(ns)} (frame {r.frame}, against {_rfc_words(c)})"
        for c, r, ns in slow[:6]
    )
    text = (
        f"Replies that took long, with the time RFC 5321 lets a client wait for each: {points}. "
        "The mail still passes with a patient client, but many give up far sooner (swaks and "
        "Nodemailer's greetingTimeout after 30 s), and every second holds a connection open "
        "on both sides."
    )
    if server_delay is not None:
        text += (
            f" The greeting came {seconds(server_delay)} after the server accepted the "
            "connection (the round trip taken off)."
        )
        if tarpit:
            text += (
                " A round delay before the greeting, and quick replies after it, is a "
                "configured pause: tarpitting, which costs a patient MTA nothing but makes "
                "spam software that gives up or talks too early go away."
            )
        if server_delay >= DNS_TRY_NS and server_delay % DNS_TRY_NS < SECOND:
            text += (
                " A delay just over a multiple of 5 s is also what DNS lookups that time out "
                "cost (the resolver's default timeout is 5 s per try, resolv.conf(5)): the "
                "server may look up the client's reverse DNS or a blocklist before greeting."
            )
    if session.tunnel:
        text += (
            f" The connection goes through a {session.tunnel} proxy: these times include "
            "the proxy's own connection to the server."
        )
    return text


def _slow_steps(session: Session, greeting: bool) -> list[str]:
    client = host(session.client)
    steps = []
    if greeting:
        steps.append(
            "On the server, look for deliberate delays before the greeting: Postfix `sleep` "
            "in smtpd_client_restrictions with smtpd_delay_reject = no, postscreen_greet_wait "
            "(6 s, 2 s under stress), sendmail's greet_pause, Exim's `delay` in the connect "
            "ACL."
        )
    steps += [
        f"Time the server's DNS: from the server, `time host {client}` (its reverse DNS) and "
        "its blocklist lookups; a resolver that does not answer costs 5 s per try.",
        "On the sending side, keep the timeouts at RFC 5321's values (5 min for the greeting "
        "and commands, 10 min after the end of data); tarpits often aim at clients with no "
        f"reverse DNS or a poor reputation, so check {client}'s PTR record and blocklists.",
    ]
    return steps


# --- server-timeout --------------------------------------------------------------------------


@session_rule("server-timeout")
def server_timeout(session: Session, context) -> Iterator[Finding]:
    """An unsolicited 4xx/5xx reply the server sent on its own to close an idle connection
    (421 4.4.2, or the words of ``is_timeout_notice``). The client's silence is measured from
    its last command, or the server's last reply if that came later. ERROR when it ended the
    mail; WARNING when the client had in fact sent data the server never acknowledged (the
    silence was on the path: see mtu-blackhole / retransmissions); INFO when every
    transaction had been decided before (a client that left without QUIT)."""
    notice = next((r for r in session.unsolicited if r.code >= 400 and is_timeout_notice(r)), None)
    if notice is None:
        return
    client_last = _last_client_time(session, notice.time_ns)
    answered = [r for c in session.commands if (r := c.reply) and r.time_ns < notice.time_ns]
    last_reply = answered[-1] if answered else session.greeting
    since = max(client_last or 0, last_reply.time_ns if last_reply else 0)
    idle = max(0, notice.time_ns - since) if since else None
    yield _server_timeout_finding(session, notice, last_reply, idle)


def _last_client_time(session: Session, before_ns: int) -> int | None:
    times = [e.time_ns for e in session.dialogue if e.sender == CLIENT and e.time_ns < before_ns]
    return max(times, default=None)


def _waiting_for(last_reply: Reply | None) -> str:
    if last_reply is None:
        return "the client's first command"
    command = last_reply.command
    if last_reply.code == 354:
        return "the message after its 354 to DATA"
    if command is None or command.verb == GREETING:
        return "the first command after the greeting"
    return f"the next command after its reply to {_what(command)}"


def _decided(session: Session, notice: Reply) -> bool:
    transactions = session.transactions
    return bool(transactions) and all(
        t.final is not None and t.final.frame < notice.frame for t in transactions
    )


def _stalled_message(session: Session, last_reply: Reply | None) -> bool:
    """The server timed out waiting for (the rest of) a message after its 354."""
    if last_reply is None or last_reply.code != 354:
        return False
    transaction = next((t for t in session.transactions if t.data_reply is last_reply), None)
    return transaction is not None and transaction.final is None


def _server_timeout_finding(session, notice: Reply, last_reply, idle: int | None) -> Finding:
    server = host(session.server)
    client = session.client
    unacked = sum(client.unacked_sizes.values())
    if _decided(session, notice):
        severity, consequence = (
            INFO,
            (
                "Every transaction had been decided before, so no mail was affected: the client "
                "just left the connection open instead of sending QUIT."
            ),
        )
    elif unacked:
        severity, consequence = (
            WARNING,
            (
                f"The client was not idle: it sent {count(unacked, 'data segment')} the "
                "server never acknowledged, so the silence the server saw was on the path (see the "
                "mtu-blackhole or retransmissions findings for the cause)."
            ),
        )
    elif _stalled_message(session, last_reply):
        severity, consequence = (
            WARNING,
            (
                "The server was waiting for the message after its 354: clients send it at once, "
                "so a silence here means the message stopped in transfer, usually lost on the "
                "path (see the mtu-blackhole or retransmissions findings), and the timeout only "
                "ended it."
            ),
        )
    elif session.transactions:
        severity, consequence = ERROR, "The mail in progress was lost with the connection."
    else:
        severity, consequence = ERROR, "No mail got through in this session."
    silent = not unacked and not _stalled_message(session, last_reply)
    lost = "the client's data was lost on the way" if unacked else "the message stopped in transfer"
    waited = seconds(idle) if idle is not None else "an unknown time"
    short = ""
    if idle is not None and idle < SERVER_TIMEOUT_NS:
        short = (
            f" {waited} is shorter than the 5 minutes RFC 5321 4.5.3.2.7 asks a server to "
            "wait; Postfix waits 300 s normally but only 10 s when it is overloaded "
            "(smtpd_timeout, stress-adaptive)."
        )
    frames = sorted({notice.frame} | ({last_reply.frame} if last_reply else set()))
    return Finding(
        code="server-timeout",
        severity=severity,
        summary=_server_timeout_summary(
            server, waited, None if silent else lost, last_reply, notice
        ),
        detail=(
            f"In frame {notice.frame}, unasked, the server sent {quoted(quote(notice, 200))} and "
            f"closed: it had waited {waited} for {_waiting_for(last_reply)} "
            f"(RFC 3463 4.4.2: connection dropped, here by the server's idle timer)."
            f"{short} {consequence}"
        ),
        frames=frames,
        next_steps=_server_timeout_steps(severity, session, silent),
    )


def _server_timeout_summary(server: str, waited: str, lost: str | None, last_reply, notice) -> str:
    """Says the client was silent only when it was: when its data was lost on the way, the
    server heard nothing, but the client had not stopped talking."""
    waiting = _waiting_for(last_reply)
    if lost is None:
        return (
            f"{server} closed the connection after the client was silent {waited}, "
            f"waiting for {waiting}: {quote(notice, 80)}"
        )
    return (
        f"{server} closed the connection after receiving nothing for {waited} while waiting "
        f"for {waiting}; {lost}: {quote(notice, 80)}"
    )


def _server_timeout_steps(severity: str, session: Session, silent: bool) -> list[str]:
    if severity == INFO:
        return ["Nothing failed. A client that sends QUIT when done frees the server sooner."]
    elsewhere = capture_elsewhere(session)
    if silent:
        first = (
            f"Find why {host(session.client)} stopped talking: a client waiting on something "
            "of its own between commands (a lookup, a lock, a slow application), or data lost "
            f"on the path (compare with {elsewhere})."
        )
    else:
        first = (
            "The timeout only ended a transfer that had already stalled: fix the cause named "
            "by the mtu-blackhole or retransmissions finding of this session (compare with "
            f"{elsewhere} to see where the packets stop)."
        )
    return [
        first,
        "If the server's timeout is short, look in its log for overload ('stress' in "
        "Postfix's smtpd log, process limits reached) and see Postfix STRESS_README.",
    ]


# --- client-timeout --------------------------------------------------------------------------


@session_rule("client-timeout")
def client_timeout(session: Session, context) -> Iterator[Finding]:
    """The client closed (FIN or RST) after the server had been silent 5 s or more
    (``client_gave_up``) while a command (or the greeting) was still unanswered, or answered
    only after the client had left. How long it waited is compared with RFC 5321 4.5.3.2's
    timeout for that command. ERROR."""
    flow = session.flow
    silence = client_gave_up(flow)
    if silence is None or flow.synack_time_ns is None:
        return
    closed_ns = _client_close_time(session)
    pending = next(
        (
            c
            for c in session.commands
            if c.verb != "QUIT" and (c.reply is None or c.reply.time_ns > closed_ns)
        ),
        None,
    )
    if pending is None and session.greeting is not None:
        return
    started = pending.time_ns if pending is not None else _connected_ns(session)
    waited = closed_ns - started
    if waited < SLOW_REPLY_NS:
        return  # it closed soon after asking: not a wait that ran out
    yield _client_timeout_finding(session, pending, waited, silence, closed_ns)


def _client_close_time(session: Session) -> int:
    flow = session.flow
    frame = session.client.closed_frame
    note = next((n for n in flow.notes if n.frame == frame), None)
    return note.time_ns if note is not None else flow.last_time_ns


def _connected_ns(session: Session) -> int:
    flow = session.flow
    return flow.handshake_ack_time_ns or flow.synack_time_ns or flow.first_time_ns


def _client_timeout_finding(session, pending: Command | None, waited, silence, closed_ns):
    server = host(session.server)
    what = _what(pending)
    limit, _section = rfc_timeout(pending)
    started = closed_ns - waited
    server_last = closed_ns - silence
    late = pending.reply if pending is not None and pending.reply is not None else None
    arrived = ""
    if server_last > started:
        arrived = (
            f" The server's last packet came {seconds(server_last - started)} after "
            f"{what}: its TCP took the bytes, but the server application never answered."
        )
    frames = [f for f in (pending.frame if pending else None, session.client.closed_frame) if f]
    if late is not None:
        frames.append(late.frame)
        arrived += (
            f" The reply ({quote(late, 80)}) came {seconds(late.time_ns - closed_ns)} after "
            "the client had left."
        )
    duplicate = ""
    if pending is not None and (pending.verb == END_OF_DATA or pending.bdat_last):
        duplicate = (
            " After the end of data the server may still accept the message: the sender's "
            "retry can deliver it twice (RFC 1047)."
        )
    if pending is None:
        asked, answer = "The client connected", f"{server} to send its greeting"
        phase = "the wait for the greeting"
    else:
        asked, answer = (
            f"The client sent {what} in frame {pending.frame}",
            f"{server} to answer {what}",
        )
        phase = PHASES.get(pending.verb, what)
    patience = "shorter than the RFC's; but " if waited < limit else "at least the RFC's; "
    return Finding(
        code="client-timeout",
        severity=ERROR,
        summary=(
            f"the client gave up waiting for {answer} after {seconds(waited)} "
            f"(RFC 5321 allows {seconds(limit)})"
        ),
        detail=(
            f"{asked}, waited {seconds(waited)} without a reply and closed the connection in "
            f"frame {session.client.closed_frame}, during {phase}. RFC 5321 lets a client wait "
            f"{_rfc_words(pending)} for this reply, so the client's own timeout is {patience}"
            f"a server silent for {seconds(silence)} is the fault.{arrived}{duplicate}"
        ),
        frames=sorted(set(frames)),
        next_steps=[
            f"On {server}, find what kept it from answering at this time: its log, its load, "
            "a content filter or milter that hangs after the end of data, a DNS or database "
            "lookup that blocks.",
            f"Give the client RFC 5321's timeouts ({seconds(limit)} for {what}) so a slow "
            "server does not cost the mail.",
        ],
    )

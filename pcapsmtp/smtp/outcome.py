"""How a session ended: an ordered table of rules, the first that holds decides.

Each rule names one way a session ends (``syn-unanswered``, ``transaction-rejected``, ...)
with a small predicate over the session, the outcome it gives and the reason people read.
The order is the judgement: what stopped the connection first (nothing answered, a reset to
the SYN, a failed TLS handshake) comes before what the dialogue says, a refusal before a
delivery, and what the dialogue says before how the connection closed. A new way to end
goes in the table at its place, with a test (tests/smtp/test_outcome.py) that shows it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

from pcapsmtp.smtp import codes
from pcapsmtp.smtp.events import CLIENT, END_OF_DATA, SERVER, Command, Reply
from pcapsmtp.smtp.model import Outcome, Session, Transaction
from pcapsmtp.tcp.model import TH_FIN, TH_RST, ConnState, Endpoint, SegmentNote, TcpFlow

TIMEOUT_NS = 30 * 1_000_000_000
"""A command left unanswered this long when the capture ends is a timeout."""
GIVE_UP_NS = 5 * 1_000_000_000
"""A client that closes after the server was silent this long gave up waiting for it."""
RESET_STATES = (ConnState.RSTO, ConnState.RSTR)
"""The client (RSTO) or the server (RSTR) reset an established connection."""
RESET_TO_SYN_STATES = (ConnState.RSTR, ConnState.RSTOS0)
"""States a reset to the SYN can leave besides REJ (with no SYN/ACK and no byte seen)."""
ICMP_UNREACHABLE = (1, 3)
"""ICMP (v4 type 3) and ICMPv6 (type 1) destination unreachable, as flow.icmp holds them."""


def class_outcome(code: int) -> Outcome:
    """The outcome a reply decides by its class (RFC 5321 4.2.1)."""
    if codes.is_positive(code):
        return Outcome.DELIVERED
    return Outcome.DEFERRED if codes.is_transient(code) else Outcome.REJECTED


def is_timeout_notice(reply: Reply) -> bool:
    """A server closing an idle connection: 421 4.4.2 (RFC 3463) or its usual words."""
    text = reply.text.lower()
    return "4.4.2" in text or "timeout" in text or "timed out" in text


def client_gave_up(flow: TcpFlow) -> int | None:
    """Nanoseconds the server had been silent when the client closed (FIN or RST) the
    connection, if that is GIVE_UP_NS or more: the client timed out waiting for it."""
    silence = flow.endpoints[flow.client].peer_silent_ns
    return silence if silence is not None and silence >= GIVE_UP_NS else None


def abortive_reset(flow: TcpFlow) -> bool:
    """A RST that ended the connection instead of a close (not one after a FIN, as many
    clients send to finish a closed connection quickly, nor one the connection outlived)."""
    resets = [
        note.frame for note in flow.notes if note.tcp_flags & TH_RST and not outlived(flow, note)
    ]
    fins = [note.frame for note in flow.notes if note.tcp_flags & TH_FIN]
    return bool(resets) and (not fins or resets[0] < fins[0])


def outlived(flow: TcpFlow, reset: SegmentNote) -> bool:
    """The connection went on after this RST: data sent after it by either side was
    acknowledged by the other (the side it was sent to sent data after it, or acknowledged
    data its claimed sender went on sending). The hosts ignored it (out of their window,
    RFC 5961 3.2, or a forged RST that lost the race), so it ended nothing."""
    return any(
        (acked := end.last_acked_frame) is not None and acked > reset.frame
        for end in flow.endpoints
    )


def reset_after_own_close(flow: TcpFlow) -> bool:
    """The first RST answers the peer's data after its sender's own FIN, the peer not having
    closed: in a transaction still open, the sender's process ended in the middle of it."""
    resets = [note for note in flow.notes if note.tcp_flags & TH_RST and not outlived(flow, note)]
    if not resets:
        return False
    first = resets[0]
    closed = {n.direction for n in flow.notes if n.tcp_flags & TH_FIN and n.frame < first.frame}
    return closed == {first.direction}


def out_of_sequence(transaction: Transaction) -> bool:
    """RCPT or DATA sent with no MAIL before, answered 503 (bad sequence, RFC 5321 4.1.4): a
    client out of step, no mail attempted; a later MAIL starts the real transaction. So is
    a lone '.' with no MAIL before, answered 500 (the server was reading commands: no
    message was refused; hard-bounce skips it as a stray dot too)."""
    final = transaction.final
    if transaction.mail_reply is not None or final is None:
        return False
    if final.code == 500:
        command = final.command
        return command is not None and command.verb == END_OF_DATA
    return final.code == 503


class SessionFacts:
    """What the rules ask of a session, each computed once when first asked."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.flow = session.flow

    @cached_property
    def outcomes(self) -> list[Outcome]:
        """The outcomes of the transactions that attempted a mail (not a client's stray
        RCPT answered 503)."""
        return [
            t.outcome
            for t in self.session.transactions
            if (t.mail_from is not None or t.rcpt_to or t.method) and not out_of_sequence(t)
        ]

    @cached_property
    def auth_failure(self) -> int | None:
        """The final reply code of the last AUTH attempt that failed, in a session that
        then tried no mail."""
        attempts = self.session.auth
        failed = [a.code for a in attempts if a.code is not None and not codes.is_positive(a.code)]
        return failed[-1] if failed and not self.session.transactions else None

    @cached_property
    def closing(self) -> Reply | None:
        """The server's first unsolicited 421: it closed the connection."""
        return next((r for r in self.session.unsolicited if r.code == 421), None)

    @cached_property
    def waiting(self) -> Command | None:
        """The first command the capture holds no reply to."""
        return next((c for c in self.session.commands if c.reply is None), None)

    @property
    def server(self) -> Endpoint:
        return self.session.server

    @property
    def syn_unanswered(self) -> bool:
        return self.flow.state == ConnState.S0 and not self.server.packets

    @property
    def server_closed_first(self) -> bool:
        server, client = self.server, self.session.client
        return server.closed_frame is not None and (
            client.closed_frame is None or server.closed_frame < client.closed_frame
        )

    @property
    def server_bytes_unseen(self) -> bool:
        """The server sent bytes the capture lacks (its FIN's sequence number or the client's
        ACKs are past them): whatever it said, it did say something."""
        return any(g.sender == SERVER for g in self.session.gaps)

    @property
    def greeting_refused(self) -> bool:
        greeting = self.session.greeting
        return greeting is not None and not codes.is_positive(greeting.code)

    @property
    def no_dialogue(self) -> bool:
        return not self.session.commands and self.session.greeting is None


def _reset_to_syn(f: SessionFacts) -> bool:
    session, state = f.session, f.flow.state
    return state == ConnState.REJ or (
        state in RESET_TO_SYN_STATES
        and not session.server.bytes
        and not session.client.bytes
        and f.flow.synack_time_ns is None
    )


def _delivered(f: SessionFacts) -> bool:
    """Every transaction delivered or abandoned by the client, and one delivered."""
    kept = (Outcome.DELIVERED, Outcome.ABANDONED)
    return all(o in kept for o in f.outcomes) and Outcome.DELIVERED in f.outcomes


@dataclass(frozen=True, slots=True)
class OutcomeRule:
    """One way a session ends: when ``applies`` holds (and no rule before it did), the
    session's outcome is ``outcome`` and its reason ``reason``, a str.format template with
    the SessionFacts as ``f`` ("the greeting was {f.session.greeting.code}")."""

    name: str
    applies: Callable[[SessionFacts], bool]
    outcome: Outcome
    reason: str


OUTCOME_RULES: tuple[OutcomeRule, ...] = (
    OutcomeRule(
        "client-only",
        lambda f: f.session.one_sided == CLIENT,
        Outcome.INCOMPLETE,
        "only the client's packets were captured: the replies are not",
    ),
    OutcomeRule(
        "icmp-unreachable",
        lambda f: f.syn_unanswered and any(e.type in ICMP_UNREACHABLE for e in f.flow.icmp),
        Outcome.UNREACHABLE,
        "ICMP destination unreachable in answer to the connection",
    ),
    OutcomeRule(
        "syn-unanswered",
        lambda f: f.syn_unanswered,
        Outcome.UNREACHABLE,
        "the connection request was never answered",
    ),
    OutcomeRule(
        "syn-reset",
        _reset_to_syn,
        Outcome.REFUSED,
        "the connection request was answered with a reset",
    ),
    OutcomeRule(
        "tls-failed",
        lambda f: f.session.tls is not None and f.session.tls.failed,
        Outcome.TLS_FAILED,
        "the TLS handshake failed",
    ),
    OutcomeRule(
        "transaction-rejected",
        lambda f: Outcome.REJECTED in f.outcomes,
        Outcome.REJECTED,
        "a transaction was rejected",
    ),
    OutcomeRule(
        "transaction-deferred",
        lambda f: Outcome.DEFERRED in f.outcomes,
        Outcome.DEFERRED,
        "a transaction was deferred",
    ),
    OutcomeRule(
        "greeting-deferred",
        lambda f: f.greeting_refused and codes.is_transient(f.session.greeting.code),
        Outcome.DEFERRED,
        "the greeting was {f.session.greeting.code}",
    ),
    OutcomeRule(
        "greeting-rejected",
        lambda f: f.greeting_refused,
        Outcome.REJECTED,
        "the greeting was {f.session.greeting.code}",
    ),
    OutcomeRule(
        "auth-deferred",
        lambda f: f.auth_failure is not None and codes.is_transient(f.auth_failure),
        Outcome.DEFERRED,
        "authentication failed",
    ),
    OutcomeRule(
        "auth-rejected",
        lambda f: f.auth_failure is not None,
        Outcome.REJECTED,
        "authentication failed",
    ),
    OutcomeRule(
        "transaction-timeout",
        lambda f: Outcome.TIMEOUT in f.outcomes,
        Outcome.TIMEOUT,
        "the client gave up waiting during a transaction",
    ),
    OutcomeRule(
        "transaction-reset",
        lambda f: Outcome.RESET in f.outcomes,
        Outcome.RESET,
        "the connection was reset during a transaction",
    ),
    OutcomeRule(
        "delivered",
        _delivered,
        Outcome.DELIVERED,
        "every message was accepted",
    ),
    OutcomeRule(
        "server-closed-idle",
        lambda f: f.closing is not None and is_timeout_notice(f.closing),
        Outcome.TIMEOUT,
        "the server closed with 421: {f.closing.text:.60}",
    ),
    OutcomeRule(
        "server-closed",
        lambda f: f.closing is not None,
        Outcome.DEFERRED,
        "the server closed with 421: {f.closing.text:.60}",
    ),
    OutcomeRule(
        "server-only",
        lambda f: f.session.one_sided == SERVER,
        Outcome.INCOMPLETE,
        "only the server's packets were captured: the commands are not",
    ),
    OutcomeRule(
        "reset-inside-tls",
        lambda f: f.session.encrypted and not f.session.transactions and abortive_reset(f.flow),
        Outcome.RESET,
        "the connection was reset inside TLS",
    ),
    OutcomeRule(
        "encrypted",
        lambda f: f.session.encrypted and not f.session.transactions,
        Outcome.ENCRYPTED,
        "the dialogue continues inside TLS",
    ),
    OutcomeRule(
        "closed-without-greeting",
        lambda f: (
            f.session.greeting is None
            and (f.flow.syn_time_ns is not None or f.flow.synack_time_ns is not None)
            and f.server_closed_first
            and not f.server.bytes
            and not f.server_bytes_unseen
        ),
        Outcome.REFUSED,
        "the server closed the connection without a greeting",
    ),
    OutcomeRule(
        "reset-before-smtp",
        lambda f: f.no_dialogue and f.flow.state in RESET_STATES,
        Outcome.RESET,
        "the connection was reset before any SMTP",
    ),
    OutcomeRule(
        "no-smtp",
        lambda f: f.no_dialogue,
        Outcome.NO_SMTP,
        "no SMTP dialogue in this connection",
    ),
    OutcomeRule(
        "client-gave-up",
        lambda f: f.waiting is not None and client_gave_up(f.flow) is not None,
        Outcome.TIMEOUT,
        "the client gave up waiting for the reply to {f.waiting.verb}",
    ),
    OutcomeRule(
        "reset",
        lambda f: abortive_reset(f.flow) and f.session.quit is None,
        Outcome.RESET,
        "the connection was reset",
    ),
    OutcomeRule(
        "no-reply",
        lambda f: f.waiting is not None and f.flow.last_time_ns - f.waiting.time_ns >= TIMEOUT_NS,
        Outcome.TIMEOUT,
        "no reply to {f.waiting.verb} before the capture ended",
    ),
    OutcomeRule(
        "quit-without-mail",
        lambda f: f.session.quit is not None,
        Outcome.INCOMPLETE,
        "no mail transaction in this session",
    ),
    OutcomeRule(
        "undecided",
        lambda f: True,
        Outcome.INCOMPLETE,
        "the capture does not show how the session ended",
    ),
)
"""In the order they are checked; the last always holds."""


def _first(facts: SessionFacts) -> OutcomeRule:
    return next(rule for rule in OUTCOME_RULES if rule.applies(facts))


def deciding_rule(session: Session) -> OutcomeRule:
    """The first rule of OUTCOME_RULES that holds for the session: the one that decides it."""
    return _first(SessionFacts(session))


def decide_outcome(session: Session) -> tuple[Outcome, str]:
    """The session's outcome in DESIGN.md's vocabulary, with the reason in a few words."""
    facts = SessionFacts(session)
    rule = _first(facts)
    return rule.outcome, rule.reason.format(f=facts)

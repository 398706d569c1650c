"""What the SMTP layer hands upward: sessions (one per connection) and their transactions.

``Session`` holds what lives for the connection (greeting, EHLO, TLS, AUTH); a
``Transaction`` what lives for one mail (MAIL FROM to the reply after the message),
as aiosmtpd's Session / Envelope and Zeek's State / Info.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from pcapsmtp.smtp.events import Anomaly, Command, Gap, Redacted, Reply, Side, Unanswered
from pcapsmtp.smtp.message_facts import MessageFacts, bounds_reached
from pcapsmtp.smtp.software import SoftwareGuess
from pcapsmtp.smtp.tls.facts import TlsFacts
from pcapsmtp.tcp.model import Endpoint, TcpFlow


class Outcome(StrEnum):
    """How a session, or one of its transactions, ended (DESIGN.md's vocabulary).

    A StrEnum: the JSON and the text outputs carry the value, and it compares equal to it.
    A session ends in any of them but ABANDONED (``SESSION_OUTCOMES``); a transaction in
    one of ``TRANSACTION_OUTCOMES``. How a session's is decided: pcapsmtp.smtp.outcome.
    """

    DELIVERED = "delivered"
    """The server accepted the message (2xx to the end of data)."""
    REJECTED = "rejected"
    """A 5xx refused it."""
    DEFERRED = "deferred"
    """A 4xx put it off (the client will retry)."""
    RESET = "reset"
    """The connection was reset before the mail was decided."""
    TIMEOUT = "timeout"
    """Someone gave up waiting: the client for a reply, or the server (421 4.4.2)."""
    TLS_FAILED = "tls-failed"
    REFUSED = "refused"
    """RST to the SYN, or a server that closed without a greeting."""
    UNREACHABLE = "unreachable"
    """No answer to the SYN (or an ICMP destination unreachable)."""
    INCOMPLETE = "incomplete"
    """The capture does not show the end, or the session carried no mail."""
    ENCRYPTED = "encrypted"
    """The dialogue continues inside TLS and no key log opened it."""
    NO_SMTP = "no-smtp"
    ABANDONED = "abandoned"
    """Transactions only: the client left it before its final reply, with RSET or a new
    MAIL (RFC 5321 4.1.1.5). It decides nothing about its session: one whose other
    transactions were all delivered is delivered, and with no other, how the connection
    ended decides (pcapsmtp.smtp.outcome)."""


SESSION_OUTCOMES = tuple(o for o in Outcome if o is not Outcome.ABANDONED)
"""The ``outcome`` of a session in the JSON (docs/schema/analyze.schema.json)."""
TRANSACTION_OUTCOMES = (
    Outcome.DELIVERED,
    Outcome.REJECTED,
    Outcome.DEFERRED,
    Outcome.RESET,
    Outcome.TIMEOUT,
    Outcome.INCOMPLETE,
    Outcome.ABANDONED,
)
"""The ``outcome`` of a transaction in the JSON."""


@dataclass(slots=True)
class Recipient:
    address: str
    code: int | None
    enhanced: str | None
    text: str | None
    frame: int
    reply: Reply | None = None


@dataclass(slots=True)
class LeftOut:
    """What a per-session cap left out of one list: how many, and by reply code."""

    noun: str
    """What the list holds, plural ('recipients')."""
    cap: int
    count: int = 0
    codes: dict[int | None, int] = field(default_factory=dict)
    """Left-out items per reply code (None: no reply or not a reply)."""

    def add(self, code: int | None = None) -> None:
        self.count += 1
        self.codes[code] = self.codes.get(code, 0) + 1

    def summary(self) -> str:
        """'+999,960 more recipients, all 250 (the first 1,000 kept)'."""
        known = {code: n for code, n in self.codes.items() if code is not None}
        if len(known) == 1 and sum(known.values()) == self.count:
            replies = f", all {next(iter(known))}"
        elif known:
            top = sorted(known.items(), key=lambda item: -item[1])[:5]
            replies = " (" + ", ".join(f"{code} ×{n:,}" for code, n in top) + ")"
        else:
            replies = ""
        unanswered = self.count - sum(known.values())
        if known and unanswered and len(known) == 1:
            replies = f" ({next(iter(known))} ×{sum(known.values()):,}, {unanswered:,} other)"
        return f"+{self.count:,} more {self.noun}{replies} (the first {self.cap:,} kept)"


@dataclass(slots=True)
class Transaction:
    """One mail: MAIL FROM, its recipients, the message and the final reply."""

    mail_from: str | None
    """Reverse path without angle brackets; '' for the null sender of a bounce."""
    first_frame: int
    start_ns: int
    mail_params: dict[str, str] = field(default_factory=dict)
    mail_reply: Reply | None = None
    rcpt_to: list[Recipient] = field(default_factory=list)
    """The first MAX_RECIPIENTS recipients (pcapsmtp.smtp.transactions); the rest in left_out."""
    rcpt_left_out: LeftOut | None = None
    method: str | None = None
    """'DATA' or 'BDAT' once the message transfer started."""
    data_reply: Reply | None = None
    """The reply to DATA (354, or the rejection)."""
    size: int | None = None
    """Bytes of the message as transferred (dot-unstuffed)."""
    message: MessageFacts | None = None
    message_complete: bool = True
    message_frame: int | None = None
    final: Reply | None = None
    """The reply that decided the transaction (to end-of-data, or the rejection before)."""
    queue_id: str | None = None
    outcome: Outcome = Outcome.INCOMPLETE
    """One of TRANSACTION_OUTCOMES."""
    last_frame: int = 0

    @property
    def declared_size(self) -> int | None:
        value = self.mail_params.get("SIZE")
        return int(value) if value and value.isdigit() else None

    @property
    def recipients(self) -> int:
        """RCPT commands answered, those left out by the cap included."""
        return len(self.rcpt_to) + (self.rcpt_left_out.count if self.rcpt_left_out else 0)


@dataclass(slots=True)
class DialogueEntry:
    """One line of the timeline users read: a command, a reply, a message, TLS, a gap."""

    frame: int
    time_ns: int
    sender: Side
    kind: str
    """'command', 'reply', 'message', 'tls', 'gap' or 'note'."""
    text: str
    latency_ns: int | None = None
    """For a reply: time since the command it answers was complete."""
    code: int | None = None
    decrypted: bool = False
    """It was inside TLS and came from decrypting it with the key log."""


@dataclass(slots=True)
class TlsInfo:
    mode: str
    """'starttls' or 'implicit'."""
    frame: int
    """Frame of the first TLS record."""
    facts: TlsFacts | None = None
    failed: bool = False
    decrypted: bool = False
    """A key log opened it: the dialogue inside TLS is in the session like a clear one."""


@dataclass(slots=True)
class AuthAttempt:
    mechanism: str
    frame: int
    code: int | None = None
    """The final reply (235, 535, ...), not the 334 challenges."""
    secret_commands: list[Command] = field(default_factory=list)
    """Lines that carried credentials (already redacted): where they are on the wire."""
    echoes: list[Redacted] = field(default_factory=list)
    """Credentials a later line repeated in clear (a server's reply echoing them), already
    redacted in its text: where they are on the wire, for the export to overwrite them
    (the first ``session.MAX_LISTED``)."""
    echoes_left_out: int = 0
    """Repeats past that cap: an export cannot overwrite them, so it refuses to be written."""


@dataclass(slots=True)
class Session:
    """One SMTP connection."""

    flow: TcpFlow
    capture: str
    id: int = 0
    """1-based, in order of the connection's first frame within its capture (a file, or one
    rotated set): the same whether the capture is analysed alone or with others."""
    tunnel: str | None = None
    """'socks5', 'http-connect' or 'prefix' when SMTP starts after other bytes."""
    greeting: Reply | None = None
    greeting_latency_ns: int | None = None
    helo: str | None = None
    helo_verb: str | None = None
    ehlo: Reply | None = None
    extensions: dict = field(default_factory=dict)
    """pcapsmtp.smtp.software.parse_ehlo() of the (first clear) EHLO reply."""
    server_software: SoftwareGuess | None = None
    starttls: Command | None = None
    tls: TlsInfo | None = None
    auth: list[AuthAttempt] = field(default_factory=list)
    transactions: list[Transaction] = field(default_factory=list)
    dropped_transactions: int = 0
    dialogue: list[DialogueEntry] = field(default_factory=list)
    dropped_entries: int = 0
    commands: list[Command] = field(default_factory=list)
    """Every command, in order, paired with its reply (``command.reply``); past
    MAX_COMMANDS only the last ones and those that carried credentials are kept."""
    unsolicited: list[Reply] = field(default_factory=list)
    last_reply: Reply | None = None
    quit: Command | None = None
    gaps: list[Gap] = field(default_factory=list)
    anomalies: list[Anomaly] = field(default_factory=list)
    left_out: dict[str, LeftOut] = field(default_factory=dict)
    """What the per-session caps left out of the lists above, by list name."""
    outcome: Outcome = Outcome.INCOMPLETE
    """One of SESSION_OUTCOMES, decided by pcapsmtp.smtp.outcome.decide_outcome."""
    outcome_reason: str = ""
    """A short phrase saying why this outcome (for people, not scripts)."""
    one_sided: Side | None = None
    """When the capture holds only that side's packets."""
    not_captured: list[str] = field(default_factory=list)
    """What of the session's beginning the capture lacks: 'handshake', 'greeting'."""
    unanswered: list[Unanswered] = field(default_factory=list)
    """Commands whose reply is not in the capture (lost in a hole, one-sided, never sent)."""
    uncertain: list[Reply] = field(default_factory=list)
    """Replies paired by what they can answer after bytes the capture lacks."""

    @property
    def key(self) -> tuple[str, int]:
        """(capture, id): tells apart the sessions of several captures, whose ids each
        start at 1."""
        return (self.capture, self.id)

    def limits(self) -> list[str]:
        """What the per-session caps left out, one line each ('+999,000 more recipients,
        all 250 (the first 1,000 kept)'); empty when nothing was."""
        shown = [left_out.summary() for left_out in self.left_out.values()]
        for number, transaction in enumerate(self.transactions, start=1):
            if transaction.rcpt_left_out is not None:
                shown.append(f"transaction {number}: {transaction.rcpt_left_out.summary()}")
            if transaction.message is not None and transaction.message.anomalies:
                shown += [
                    f"transaction {number}: message: {note}"
                    for note in bounds_reached(transaction.message.anomalies)
                ]
        if self.anomalies:
            shown += _lines_cut(self.anomalies)
        return shown

    @property
    def client(self) -> Endpoint:
        return self.flow.endpoints[self.flow.client]

    @property
    def server(self) -> Endpoint:
        return self.flow.endpoints[self.flow.server]

    @property
    def encrypted(self) -> bool:
        """Part of the dialogue is hidden inside TLS (it went into TLS, no key log opened it)."""
        return self.tls is not None and not self.tls.decrypted


def _lines_cut(anomalies: list[Anomaly]) -> list[str]:
    """Lines longer than the parser keeps (``Limits.max_line``), per side: 'a client line
    of more than 4096 bytes (frame 7): only its beginning kept'. Shown, they were read as
    whole lines."""
    cut: dict[Side, list[Anomaly]] = {}
    for anomaly in anomalies:
        if anomaly.code == "line_too_long":
            cut.setdefault(anomaly.sender, []).append(anomaly)
    shown = []
    for sender, found in cut.items():
        first = found[0]
        lines = f"a {sender} line" if len(found) == 1 else f"{len(found)} {sender} lines"
        where = f"frame {first.frame}" if len(found) == 1 else f"first in frame {first.frame}"
        shown.append(f"{lines} of {first.detail} ({where}): only the beginning kept")
    return shown

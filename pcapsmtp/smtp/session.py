"""Dialogue events -> Session and Transactions, and how each ended.

Transactions advance on replies (a command's reply decides it), so pipelined commands are
handled in the order the server answered them, which is the order they were sent.
"""

from __future__ import annotations

import re
from collections import deque
from types import MappingProxyType

from pcapsmtp.smtp import codes, queue_ids
from pcapsmtp.smtp.events import (
    AUTH_RESPONSE,
    CLIENT,
    END_OF_DATA,
    GREETING,
    SERVER,
    Anomaly,
    Command,
    Event,
    Gap,
    MessageEnd,
    Reply,
    TlsStarted,
    Unanswered,
    shared_text,
)
from pcapsmtp.smtp.model import (
    AuthAttempt,
    DialogueEntry,
    LeftOut,
    Outcome,
    Recipient,
    Session,
    TlsInfo,
    Transaction,
)
from pcapsmtp.smtp.outcome import (
    TIMEOUT_NS,
    abortive_reset,
    class_outcome,
    client_gave_up,
    decide_outcome,
    is_timeout_notice,
    reset_after_own_close,
)
from pcapsmtp.smtp.software import parse_ehlo, server_software
from pcapsmtp.smtp.tls.scanner import TlsScanner
from pcapsmtp.tcp.model import TcpFlow

MAX_ENTRIES = 20_000
MAX_TRANSACTIONS = 5_000
MAX_COMMANDS = 20_000
MAX_RECIPIENTS = 1_000
"""Recipients kept per transaction; RFC 5321 4.5.3.1.8 asks servers to take at least 100."""
MAX_LISTED = 1_000
"""Anomalies, gaps and unsolicited replies kept per session."""
TAIL = 100
"""Past a cap, the last this many items are kept as well: a session fails at its end."""
PATH = re.compile(r"(?:FROM|TO)\s*:\s*(<[^>]*>?|[^\s<>]*)\s*(.*)", re.IGNORECASE | re.DOTALL)
QUOTED_ADDRESS = re.compile(r"<([^<>\s]+@[^<>\s]+)>")
"""An address a reply quotes ("550 5.1.1 <dave@example.org>: Recipient address rejected")."""


def parse_path(argument: str) -> tuple[str | None, dict[str, str]]:
    """'FROM:<a@b> SIZE=10' -> ('a@b', {'SIZE': '10'}); tolerates 'FROM:a@b' and spaces."""
    match = PATH.match(argument.strip())
    if not match:
        return None, {}
    address = match.group(1).strip().removeprefix("<").removesuffix(">")
    params = {}
    for token in match.group(2).split():
        key, _, value = token.partition("=")
        params[key.upper()] = value
    return address, params


UNFILLED = MappingProxyType({})
"""The empty mapping an open session's dicts share until they are given one."""
_LISTS = (
    "auth", "transactions", "dialogue", "commands", "unsolicited", "gaps", "anomalies",
    "not_captured", "unanswered", "uncertain",
)  # fmt: skip
_UNFILLED_FIELDS = {**dict.fromkeys(_LISTS, ()), "extensions": UNFILLED, "left_out": UNFILLED}
"""The Session's lists and dicts, shared empty while its connection is open (``_grown``):
most stay empty, and a flood holds 100,000 open sessions (ten empty lists and two empty
dicts were 688 bytes of each). ``SessionBuilder.finish`` gives the finished session its own
empty ones, as ``Session()`` does."""


def _grown(session: Session, name: str) -> list:
    """``session``'s list ``name``, made its own on first use."""
    items = getattr(session, name)
    if items == ():
        items = []
        setattr(session, name, items)
    return items


def _left_out(session: Session) -> dict[str, LeftOut]:
    """``session.left_out``, made its own on first use."""
    if session.left_out is UNFILLED:
        session.left_out = {}
    return session.left_out


class _Capped:
    """A session list bounded whatever a peer sends: the first ``cap`` items, the last TAIL,
    and a count (by reply code) of those in between, in ``session.left_out``."""

    __slots__ = ("cap", "items", "name", "noun", "session", "tail", "tail_size", "unanswered")

    def __init__(self, session: Session, name: str, noun: str, cap: int, tail: int = TAIL):
        self.session, self.name, self.noun, self.cap = session, name, noun, cap
        self.items: list = _grown(session, name)
        self.tail: deque | None = None
        """Made when the cap is first reached (an empty deque costs 600 bytes, and every
        open session has six of these)."""
        self.tail_size = tail
        self.unanswered: set[int] | None = None
        """ids of commands left out before their reply came: counted when it comes."""

    def add(self, item, keep: bool = False) -> None:
        """Append ``item``; ``keep`` appends it whatever the cap (AUTH lines: the export
        must find every one to redact it)."""
        if len(self.items) < self.cap or keep:
            self.items.append(item)
            return
        if self.tail is None:
            self.tail = deque()
        self.tail.append(item)
        if len(self.tail) > self.tail_size:
            self._leave_out(self.tail.popleft())

    def _leave_out(self, item) -> None:
        left_out = self.session.left_out.get(self.name)
        if left_out is None:
            left_out = _left_out(self.session)[self.name] = LeftOut(self.noun, self.cap)
        if isinstance(item, Command) and item.reply is None:
            if self.unanswered is None:
                self.unanswered = set()
            self.unanswered.add(id(item))
            left_out.count += 1
            return
        reply = getattr(item, "reply", None)
        left_out.add(getattr(item, "code", None) or getattr(reply, "code", None))

    def answered(self, command: Command, code: int) -> None:
        """The reply to a command already left out: its code joins the count."""
        if self.unanswered and id(command) in self.unanswered:
            self.unanswered.discard(id(command))
            codes = self.session.left_out[self.name].codes
            codes[code] = codes.get(code, 0) + 1

    def finish(self) -> None:
        if self.tail:
            self.items.extend(self.tail)
            self.items.sort(key=lambda item: item.frame)  # kept AUTH lines among the tail
            self.tail.clear()


_RARE = {
    "_commands": ("commands", "commands", "MAX_COMMANDS"),
    "_gaps": ("gaps", "gaps", "MAX_LISTED"),
    "_anomalies": ("anomalies", "anomalies", "MAX_LISTED"),
    "_unsolicited": ("unsolicited", "unsolicited replies", "MAX_LISTED"),
    "_unanswered": ("unanswered", "unanswered commands", "MAX_LISTED"),
}
"""SessionBuilder's capped lists made when first needed: slot -> (Session field, noun, the
name of its cap, read when the list is made). A connection that got its greeting and no
more has one entry in its dialogue and no command."""


class SessionBuilder:
    """Feeds on the dialogue's events; ``finish()`` returns the Session."""

    __slots__ = (
        "_anomalies", "_auth", "_commands", "_current", "_dialogue", "_gaps",
        "_other_replies", "_unanswered", "_unattached", "_unsolicited", "decrypting", "session",
    )  # fmt: skip

    def __init__(self, flow: TcpFlow, capture: str) -> None:
        self.session = Session(flow=flow, capture=capture, **_UNFILLED_FIELDS)
        self.decrypting = False
        """The events now come from the dialogue inside TLS, decrypted with a key log."""
        self._current: Transaction | None = None
        self._auth: AuthAttempt | None = None
        self._other_replies: list[str] | tuple = ()
        self._unattached: list[MessageEnd] | tuple = ()
        """Both a list once something is added."""
        self._dialogue: _Capped | None = None
        """Made when the dialogue reaches its cap (``_entry``): until then entries go
        straight into ``session.dialogue``."""
        self._commands: _Capped | None = None
        self._gaps: _Capped | None = None
        self._anomalies: _Capped | None = None
        self._unsolicited: _Capped | None = None
        self._unanswered: _Capped | None = None
        """The lists most sessions never add to: made by ``_rare`` when first needed (100,000
        open connections of a flood hold them otherwise)."""

    def _rare(self, slot: str) -> _Capped:
        capped = getattr(self, slot)
        if capped is None:
            name, noun, cap = _RARE[slot]
            capped = _Capped(self.session, name, noun, globals()[cap])
            setattr(self, slot, capped)
        return capped

    def add(self, event: Event) -> None:
        if isinstance(event, Command):
            self._command(event)
        elif isinstance(event, Reply):
            self._reply(event)
        elif isinstance(event, MessageEnd):
            self._message(event)
        elif isinstance(event, Unanswered):
            self._rare("_unanswered").add(event)
            self._dispatch(event.command, None)
        elif isinstance(event, TlsStarted):
            self._tls(event)
        elif isinstance(event, Gap):
            self._rare("_gaps").add(event)
            self._entry(
                event.frame,
                event.time_ns,
                event.sender,
                "gap",
                f"[{event.length} bytes not in the capture: {event.reason}]",
            )
        elif isinstance(event, Anomaly):
            self._rare("_anomalies").add(event)

    # -- events ----------------------------------------------------------------

    def _entry(self, frame, time_ns, sender, kind, text, latency_ns=None, code=None) -> None:
        entry = DialogueEntry(frame, time_ns, sender, kind, text, latency_ns, code, self.decrypting)
        capped = self._dialogue
        if capped is None:
            entries = self.session.dialogue
            if entries == ():
                # Sized for one: a flood's open connections each hold only their greeting.
                self.session.dialogue = [entry]
                return
            if len(entries) < MAX_ENTRIES:
                entries.append(entry)  # what _Capped.add does below its cap
                return
            capped = self._dialogue = _Capped(
                self.session, "dialogue", "dialogue entries", MAX_ENTRIES
            )
        capped.add(entry)

    def _command(self, command: Command) -> None:
        if command.verb == GREETING:
            return
        self._rare("_commands").add(command, keep=command.secret)
        self._entry(command.frame, command.time_ns, CLIENT, "command", command.text)
        if command.verb == "AUTH":
            mechanism = command.argument.split(" ", 1)[0].upper()
            self._auth = AuthAttempt(mechanism, command.frame)
            _grown(self.session, "auth").append(self._auth)
        if command.secret and self._auth is not None:
            self._auth.secret_commands.append(command)

    def _reply(self, reply: Reply) -> None:
        session = self.session
        command = reply.command
        latency = None
        if reply.uncertain:
            _grown(session, "uncertain").append(reply)  # no latency: it may answer another command
        elif command is not None and command.verb == GREETING:
            latency = self._greeting_latency(reply)
        elif command is not None:
            latency = reply.time_ns - command.time_ns
        first = reply.lines[0] if reply.lines else ""
        more = f" (+{len(reply.lines) - 1} lines)" if len(reply.lines) > 1 else ""
        text = shared_text(f"{reply.code} {first}{more}".rstrip())
        self._entry(reply.frame, reply.time_ns, SERVER, "reply", text, latency, reply.code)
        session.last_reply = reply
        if command is not None and self._commands is not None and self._commands.unanswered:
            self._commands.answered(command, reply.code)
        if command is None:
            self._rare("_unsolicited").add(reply)
            self._other_reply(reply.text)
            return
        if command.verb == GREETING:
            self._on_greeting(reply, latency)
        else:
            self._dispatch(command, reply)

    def _dispatch(self, command: Command, reply: Reply | None) -> None:
        """What a command (and its reply, None when the capture lacks it) does to the session."""
        if command.verb == END_OF_DATA:
            self._on_end_of_data(command, reply)
        elif command.verb == AUTH_RESPONSE:
            self._on_auth_response(command, reply)
        elif command.verb != GREETING:
            handler = getattr(self, f"_on_{command.verb.lower()}", None)
            if handler is not None:
                handler(command, reply)

    def _greeting_latency(self, reply: Reply) -> int | None:
        flow = self.session.flow
        start = flow.handshake_ack_time_ns or flow.synack_time_ns
        return reply.time_ns - start if start else None

    def _on_greeting(self, reply: Reply, latency: int | None) -> None:
        self.session.greeting = reply
        self.session.greeting_latency_ns = latency

    def _on_ehlo(self, command: Command, reply: Reply | None) -> None:
        session = self.session
        if session.helo is None or session.tls is None:
            session.helo, session.helo_verb = command.argument, command.verb
        if reply is not None and codes.is_positive(reply.code) and session.ehlo is None:
            session.ehlo = reply
            session.extensions = parse_ehlo(reply.lines)

    _on_helo = _on_ehlo
    _on_lhlo = _on_ehlo

    def _on_starttls(self, command: Command, reply: Reply | None) -> None:
        self.session.starttls = command

    def _on_auth(self, command: Command, reply: Reply | None) -> None:
        if self._auth is not None and reply is not None and reply.code != 334:
            self._auth.code = reply.code

    def _on_auth_response(self, command: Command, reply: Reply | None) -> None:
        self._on_auth(command, reply)

    def _on_mail(self, command: Command, reply: Reply | None) -> None:
        self._close_open(Outcome.ABANDONED)
        address, params = parse_path(command.argument)
        transaction = Transaction(
            address, command.frame, command.time_ns, params, reply, last_frame=_last(command, reply)
        )
        if reply is not None and not codes.is_positive(reply.code):
            transaction.final, transaction.outcome = reply, class_outcome(reply.code)
        self._add_transaction(transaction)

    def _on_rcpt(self, command: Command, reply: Reply | None) -> None:
        transaction = self._open(command)
        address, _params = parse_path(command.argument)
        text = reply.text if reply is not None else None
        if len(transaction.rcpt_to) >= MAX_RECIPIENTS:
            if transaction.rcpt_left_out is None:
                transaction.rcpt_left_out = LeftOut("recipients", MAX_RECIPIENTS)
            transaction.rcpt_left_out.add(reply.code if reply is not None else None)
            transaction.last_frame = _last(command, reply)
            return
        transaction.rcpt_to.append(
            Recipient(
                address or command.argument,
                reply.code if reply is not None else None,
                codes.parse_enhanced(text) if text is not None else None,
                text,
                command.frame,
                reply,
            )
        )
        transaction.last_frame = _last(command, reply)

    def _on_data(self, command: Command, reply: Reply | None) -> None:
        transaction = self._open(command)
        transaction.method, transaction.data_reply = "DATA", reply
        transaction.last_frame = _last(command, reply)
        if reply is not None and reply.code != 354:
            self._decide(transaction, reply)

    def _on_bdat(self, command: Command, reply: Reply | None) -> None:
        transaction = self._open(command)
        transaction.method = "BDAT"
        self._attach(transaction, command.message)
        transaction.last_frame = _last(command, reply)
        if reply is not None and (command.bdat_last or not codes.is_positive(reply.code)):
            self._decide(transaction, reply)

    def _on_end_of_data(self, command: Command, reply: Reply | None) -> None:
        transaction = self._open(command)
        # A reply to the end of data implies DATA, also when the DATA is not in the capture.
        transaction.method = transaction.method or "DATA"
        if command.message is None:
            transaction.message_complete = False
            transaction.message_frame = command.frame
        self._attach(transaction, command.message)
        if reply is not None:
            self._decide(transaction, reply)
        else:
            transaction.last_frame = command.frame

    def _attach(self, transaction: Transaction, message: MessageEnd | None) -> None:
        if message is None:
            return
        if message in self._unattached:
            self._unattached.remove(message)
        transaction.size = message.size
        transaction.message = message.facts
        transaction.message_complete = message.complete
        transaction.message_frame = message.frame

    def _on_rset(self, command: Command, reply: Reply | None) -> None:
        self._close_open(Outcome.ABANDONED)

    def _on_quit(self, command: Command, reply: Reply | None) -> None:
        self.session.quit = command

    def _message(self, event: MessageEnd) -> None:
        """A message ended on the wire; it joins its transaction when the server answers the
        command that ended it (with pipelining, the next MAIL may already be on its way)."""
        if not self._unattached:
            self._unattached = []
        self._unattached.append(event)
        subject = event.facts.subject if event.facts is not None else None
        summary = f"[message: {event.size} bytes"
        summary += f", subject {subject!r}]" if subject else "]"
        if not event.complete:
            summary += " (incomplete in the capture)"
        self._entry(event.frame, event.time_ns, CLIENT, "message", summary)

    def _tls(self, event: TlsStarted) -> None:
        session = self.session
        if session.tls is None:
            mode = "implicit" if event.implicit else "starttls"
            session.tls = TlsInfo(mode, event.frame)
            self._entry(
                event.frame,
                event.time_ns,
                event.sender,
                "tls",
                "[TLS from the first byte]" if event.implicit else "[TLS handshake]",
            )

    # -- transactions ----------------------------------------------------------

    def _add_transaction(self, transaction: Transaction) -> None:
        session = self.session
        if len(session.transactions) >= MAX_TRANSACTIONS:
            session.dropped_transactions += 1
            left_out = session.left_out.get("transactions")
            if left_out is None:
                left_out = _left_out(session)["transactions"] = LeftOut(
                    "transactions", MAX_TRANSACTIONS
                )
            left_out.add(transaction.mail_reply.code if transaction.mail_reply else None)
        else:
            _grown(session, "transactions").append(transaction)
        self._current = transaction

    def _open(self, command: Command) -> Transaction:
        """The transaction a command belongs to (one is made for a RCPT/DATA without MAIL)."""
        if self._current is None or self._current.final is not None:
            self._add_transaction(Transaction(None, command.frame, command.time_ns))
        return self._current

    def _decide(self, transaction: Transaction, reply: Reply) -> None:
        transaction.final = reply
        transaction.outcome = class_outcome(reply.code)
        transaction.last_frame = reply.frame
        if transaction.outcome == Outcome.DELIVERED and transaction.method is None:
            transaction.outcome = Outcome.INCOMPLETE
        if codes.is_positive(reply.code):
            transaction.queue_id = queue_ids.queue_id(reply.text)
        self._other_reply(reply.text)

    def _close_open(self, outcome: Outcome) -> None:
        transaction = self._current
        if transaction is not None and transaction.final is None:
            if transaction.message_frame is not None:
                outcome = Outcome.INCOMPLETE  # sent to its end; the answer is not in the capture
            transaction.outcome = self._refused_recipients(transaction) or outcome
        self._current = None

    @staticmethod
    def _refused_recipients(transaction: Transaction) -> Outcome | None:
        """A transaction whose every recipient was refused ended there, whatever came next;
        its deciding reply is the last refusal."""
        refused = [r for r in transaction.rcpt_to if r.code is not None]
        left_out = transaction.rcpt_left_out.codes if transaction.rcpt_left_out else {}
        if not refused or any(codes.is_positive(r.code) for r in refused):
            return None
        if any(code is not None and codes.is_positive(code) for code in left_out):
            return None
        transaction.final = refused[-1].reply
        if any(codes.is_transient(r.code) for r in refused):
            return Outcome.DEFERRED
        return Outcome.REJECTED

    # -- the end ---------------------------------------------------------------

    def finish(self, tls: TlsScanner | None = None) -> Session:
        """The Session, its outcome decided; ``tls`` is the scanner of its TLS records."""
        session = self.session
        for name, empty in _UNFILLED_FIELDS.items():
            if getattr(session, name) is empty:
                setattr(session, name, {} if empty is UNFILLED else [])
        for capped in (self._commands, self._dialogue, self._gaps, self._anomalies):
            if capped is not None:
                capped.finish()
        for capped in (self._unsolicited, self._unanswered):
            if capped is not None:
                capped.finish()
        if "dialogue" in session.left_out:
            session.dropped_entries = session.left_out["dialogue"].count
        if session.tls is not None and tls is not None:
            session.tls.facts, session.tls.failed = tls.facts, tls.failed
        if session.one_sided == SERVER:
            self._server_side_transactions()
        transaction = self._current
        if transaction is not None and self._unattached:
            self._attach(transaction, self._unattached[-1])
        if transaction is not None and transaction.final is None:
            transaction.outcome = (
                self._refused_recipients(transaction) or self._unfinished_outcome()
            )
        session.server_software = server_software(
            session.greeting.text if session.greeting else None,
            session.ehlo.lines if session.ehlo else [],
            self._other_replies,
        )
        session.not_captured = not_captured(session)
        session.outcome, session.outcome_reason = decide_outcome(session)
        return session

    def _server_side_transactions(self) -> None:
        """Only the server's replies are captured: what each can answer tells the envelope's
        steps (RFC 3463 X.1.Y subjects: 0, 7, 8 the sender, the others a recipient), a 354 a
        DATA, and the reply after it answers the message (RFC 5321 4.3.2). So the outcome of
        each step is known; the addresses only where the reply quotes them."""
        before = None
        for reply in self.session.unsolicited:
            enhanced = codes.parse_enhanced(reply.lines[0] if reply.lines else "") or ""
            subject = enhanced[4:] if enhanced[1:4] == ".1." else None
            if before is not None and before.code == 354 and reply.code != 421:
                self._decide(self._current, reply)
            elif reply.code == 354:
                transaction = self._server_side_open(reply)
                transaction.method, transaction.data_reply = "DATA", reply
            elif subject in ("0", "7", "8"):
                self._close_open(Outcome.ABANDONED)
                transaction = self._server_side_open(reply)
                transaction.mail_reply = reply
                if not codes.is_positive(reply.code):
                    transaction.final, transaction.outcome = reply, class_outcome(reply.code)
            elif subject is not None:
                transaction = self._server_side_open(reply)
                quoted = QUOTED_ADDRESS.search(reply.text)
                transaction.rcpt_to.append(
                    Recipient(
                        quoted.group(1) if quoted else "",
                        reply.code,
                        enhanced,
                        reply.text,
                        reply.frame,
                        reply,
                    )
                )
                transaction.last_frame = reply.frame
            before = reply

    def _server_side_open(self, reply: Reply) -> Transaction:
        current = self._current
        if current is None or current.final is not None or current.method is not None:
            self._close_open(Outcome.ABANDONED)
            self._add_transaction(Transaction(None, reply.frame, reply.time_ns))
        self._current.last_frame = reply.frame
        return self._current

    def _other_reply(self, text: str) -> None:
        """Reply texts for the server software guess: the first MAX_LISTED are plenty."""
        if not self._other_replies:
            self._other_replies = []
        if len(self._other_replies) < MAX_LISTED:
            self._other_replies.append(text)

    def _unfinished_outcome(self) -> Outcome:
        flow = self.session.flow
        closing = [r for r in self.session.unsolicited if r.code == 421]
        if closing:
            return Outcome.TIMEOUT if is_timeout_notice(closing[0]) else Outcome.DEFERRED
        if self.session.one_sided:
            # the other side's packets, which would tell, are not captured
            return Outcome.INCOMPLETE
        if client_gave_up(flow) is not None:
            return Outcome.TIMEOUT
        if abortive_reset(flow) or reset_after_own_close(flow):
            return Outcome.RESET
        waiting = [c for c in self.session.commands if c.reply is None]
        if waiting and flow.last_time_ns - waiting[0].time_ns >= TIMEOUT_NS:
            return Outcome.TIMEOUT
        return Outcome.INCOMPLETE


def _last(command: Command, reply: Reply | None) -> int:
    return reply.frame if reply is not None else command.frame


def not_captured(session: Session) -> list[str]:
    """The parts of the session's beginning the capture lacks (it started mid-session)."""
    flow = session.flow
    said = session.commands or session.unsolicited or session.last_reply
    if not said:
        return []  # no SMTP in it: nothing of a dialogue to miss
    missing = []
    if flow.syn_time_ns is None and flow.synack_time_ns is None:
        missing.append("handshake")
    replies = [c.reply for c in session.commands if c.reply] + session.unsolicited
    first_reply = min((r.frame for r in replies), default=flow.last_frame + 1)
    lost = any(g.sender == SERVER and g.frame <= first_reply for g in session.gaps)
    if session.greeting is None and said and (missing or lost) and session.one_sided != CLIENT:
        missing.append("greeting")
    return missing

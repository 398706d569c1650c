"""Dialogue events -> Session and Transactions, and how each ended.

Transactions advance on replies (a command's reply decides it), so pipelined commands are
handled in the order the server answered them, which is the order they were sent.

The ``SessionBuilder`` holds the state (its slots), the dialogue entries, commands, AUTH,
TLS and the finished Session; what commands and replies do to transactions is its base
``transactions.TransactionSteps``, the bounded lists are ``capped.py``'s, envelope paths
``paths.py``'s. The caps stay here, read when a list is made (tests lower ``MAX_COMMANDS``).
"""

from __future__ import annotations

from collections.abc import Callable

from pcapsmtp.smtp import codes
from pcapsmtp.smtp.capped import _UNFILLED_FIELDS, UNFILLED, _Capped, _grown
from pcapsmtp.smtp.capped import TAIL as TAIL  # the tests read session.TAIL
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
    Redacted,
    Reply,
    TlsStarted,
    Unanswered,
    shared_text,
)
from pcapsmtp.smtp.model import AuthAttempt, DialogueEntry, Session, TlsInfo, Transaction
from pcapsmtp.smtp.outcome import decide_outcome
from pcapsmtp.smtp.software import server_software, shared_ehlo
from pcapsmtp.smtp.syntax import quoted
from pcapsmtp.smtp.tls.scanner import TlsScanner
from pcapsmtp.smtp.transactions import TransactionSteps
from pcapsmtp.tcp.model import TcpFlow

MAX_ENTRIES = 20_000
MAX_COMMANDS = 20_000
MAX_LISTED = 1_000
"""Anomalies, gaps and unsolicited replies kept per session."""


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


_HANDLERS: dict[type, dict[str, Callable]] = {}


def _handlers(cls: type) -> dict[str, Callable]:
    """A builder class's handlers of commands, by lower-case verb: its ``_on_<verb>``
    methods (looked up once per class, not once per command)."""
    handlers = _HANDLERS.get(cls)
    if handlers is None:
        handlers = _HANDLERS[cls] = {
            name.removeprefix("_on_"): getattr(cls, name)
            for name in dir(cls)
            if name.startswith("_on_")
        }
    return handlers


class SessionBuilder(TransactionSteps):
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
        kind = type(event)
        if kind is Reply:
            self._reply(event)
        elif kind is Command:
            self._command(event)
        elif kind is MessageEnd:
            self._message(event)
        elif kind is Unanswered:
            self._rare("_unanswered").add(event)
            self._dispatch(event.command, None)
        elif kind is TlsStarted:
            self._tls(event)
        elif kind is Gap:
            self._rare("_gaps").add(event)
            self._entry(
                event.frame,
                event.time_ns,
                event.sender,
                "gap",
                f"[{event.length} bytes not in the capture: {event.reason}]",
            )
        elif kind is Anomaly:
            self._rare("_anomalies").add(event)
        elif kind is Redacted and self._auth is not None and not self.decrypting:
            # Inside TLS the echo is encrypted on the wire: nothing for an export to overwrite.
            if len(self._auth.echoes) < MAX_LISTED:
                self._auth.echoes.append(event)
            else:
                self._auth.echoes_left_out += 1

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
        (self._commands or self._rare("_commands")).add(command, keep=command.secret)
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
        lines = reply.lines
        if len(lines) > 1:
            text = f"{reply.code} {lines[0]} (+{len(lines) - 1} lines)"
        else:
            text = f"{reply.code} {lines[0]}".rstrip() if lines else f"{reply.code}"
        self._entry(
            reply.frame, reply.time_ns, SERVER, "reply", shared_text(text), latency, reply.code
        )
        session.last_reply = reply
        commands = self._commands
        if command is not None and commands is not None and commands.unanswered:
            commands.answered(command, reply.code)
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
            handler = _handlers(type(self)).get(command.verb.lower())
            if handler is not None:
                handler(self, command, reply)

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
            session.extensions = shared_ehlo(reply.lines)

    _on_helo = _on_ehlo
    _on_lhlo = _on_ehlo

    def _on_starttls(self, command: Command, reply: Reply | None) -> None:
        self.session.starttls = command

    def _on_auth(self, command: Command, reply: Reply | None) -> None:
        if self._auth is not None and reply is not None and reply.code != 334:
            self._auth.code = reply.code

    def _on_auth_response(self, command: Command, reply: Reply | None) -> None:
        self._on_auth(command, reply)

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
        summary += f", subject {quoted(subject)}]" if subject else "]"
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

    def _other_reply(self, text: str) -> None:
        """Reply texts for the server software guess: the first MAX_LISTED are plenty."""
        if not self._other_replies:
            self._other_replies = []
        if len(self._other_replies) < MAX_LISTED:
            self._other_replies.append(text)


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
    # A snap length cuts what the capture holds (a greeting cut to "22" is still there);
    # only bytes the capture never saw mean it started after them.
    lost = any(
        g.sender == SERVER and g.frame <= first_reply and g.reason != "snaplen"
        for g in session.gaps
    )
    if session.greeting is None and said and (missing or lost) and session.one_sided != CLIENT:
        missing.append("greeting")
    return missing

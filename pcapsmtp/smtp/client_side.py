"""The client's side of a Dialogue: command lines (credentials redacted here, at parse time),
the bytes held before the reply to DATA, DATA bodies and BDAT chunks, and the client's gaps.

``ClientSide`` is a base of ``dialogue.Dialogue`` and holds no state of its own (the slots
are the Dialogue's); its methods call the Dialogue's shared ones (``_event``, ``_anomaly``,
``_framer``, ``_line_too_long``, ``_start_tls``)."""

from __future__ import annotations

from pcapsmtp._core import command_line
from pcapsmtp.smtp.auth_secrets import AuthSecrets
from pcapsmtp.smtp.events import (
    AUTH_RESPONSE,
    CLIENT,
    END_OF_DATA,
    GREETING,
    REDACTED,
    Command,
    MessageEnd,
)
from pcapsmtp.smtp.message import MessageScanner
from pcapsmtp.smtp.states import CLIENT_LINES, ClientState, ServerState
from pcapsmtp.smtp.syntax import (
    BARE_VERBS,
    BDAT_ARGUMENT,
    CREDENTIAL,
    KNOWN_VERBS,
    _decode,
    looks_like_tls,
)

_VERBS = {verb: verb for verb in KNOWN_VERBS}
"""A known verb's one string: every command holds it instead of a copy of its own (about
200 bytes a held connection)."""


def _credential(text: str) -> bool:
    """Whether a line read while AUTH is under way is a SASL response (a credential)."""
    stripped = text.strip()
    return bool(CREDENTIAL.fullmatch(stripped)) and stripped.upper() not in BARE_VERBS


class ClientSide:
    """The Dialogue's reading of the client's bytes."""

    __slots__ = ()

    def _feed_client(self, data: bytes, offset: int, frame: int, time_ns: int) -> None:
        pos = 0
        while pos < len(data):
            state = self.client
            if state in (ClientState.START, ClientState.AWAIT_TLS):
                self._client_sniff(data[pos:], frame, time_ns)
            elif state in CLIENT_LINES and self._tls_without_220(data[pos:]):
                # The 220 to STARTTLS is not in the capture, but the client starts TLS at a
                # line's start: the 220 came (TLS is told by its content, not by the reply).
                self._unanswered(self.pending.pop(), "not captured")
                self.client = ClientState.AWAIT_TLS
                if self.server != ServerState.TLS:
                    self.server = ServerState.AWAIT_TLS
            elif state in CLIENT_LINES:
                pos = self._client_lines(data, pos, offset, frame, time_ns)
            elif state == ClientState.DATA_BODY:
                pos = self._data_body(data, pos, offset, frame, time_ns)
            elif state == ClientState.BDAT_CHUNK:
                pos = self._bdat_chunk(data, pos, frame, time_ns)
            elif state == ClientState.AWAIT_DATA_REPLY:
                self._hold(data[pos:], offset + pos, frame, time_ns)
                pos = len(data)
            elif state is ClientState.DATA_TAIL:
                pos = self._data_tail(data, pos, frame)
            else:  # TLS
                self.tls.feed(CLIENT, data[pos:], frame, time_ns)
                pos = len(data)

    def _tls_without_220(self, data: bytes) -> bool:
        pending = self.pending
        return (
            bool(pending)
            and pending[-1].verb == "STARTTLS"
            and looks_like_tls(data)
            and not self._framer(CLIENT).partial
        )

    def _client_sniff(self, data: bytes, frame: int, time_ns: int) -> None:
        implicit = self.client == ClientState.START
        if looks_like_tls(data):
            self._start_tls(CLIENT, frame, time_ns, implicit)
            self.client = ClientState.TLS
        else:
            if not implicit:
                self._anomaly(
                    "starttls_not_started", frame, CLIENT, "clear text after 220 to STARTTLS"
                )
            self.client = (
                ClientState.RESYNC if implicit and self.mid_session else ClientState.COMMAND
            )

    def _client_lines(self, data: bytes, pos: int, offset: int, frame: int, time_ns: int) -> int:
        """Command lines from ``data[pos]`` on, until one of them ends the line state (DATA,
        BDAT): the framer's later lines are dropped and the bytes after it read anew. The
        core strips and decodes each line (``LineFramer.commands``)."""
        framer = self._client_framer or self._framer(CLIENT)
        command_text = self._command_text
        for line in framer.commands(data, pos, offset, frame):
            if line is None:
                self._line_too_long(CLIENT, frame)
                continue
            text, crlf, first_frame, line_offset, length, end = line
            if first_frame == frame:
                first_frame = frame  # one int object, not two, while the session is held
            command_text(text, crlf, first_frame, line_offset, length, frame, time_ns)
            if self.client not in CLIENT_LINES:
                framer.clear()
                return end
        return len(data)

    def _client_command(
        self, raw: bytes, first_frame: int, offset: int, length: int, frame: int, time_ns: int
    ) -> None:
        """A command line given whole, its line end included."""
        self._command_text(*command_line(raw), first_frame, offset, length, frame, time_ns)

    def _command_text(
        self,
        text: str,
        crlf: bool,
        first_frame: int,
        offset: int,
        length: int,
        frame: int,
        time_ns: int,
    ) -> None:
        """A command line as the core reads it: its text without the line end, decoded,
        and whether that line end was CR LF."""
        if not crlf:
            self._anomaly("bare_lf", frame, CLIENT, "command line ends in LF without CR")
        state = self.client
        if state is ClientState.AUTH_RESPONSE or (self._auth_active and _credential(text)):
            self.client = ClientState.COMMAND
            cancelled = text.strip() == "*"
            self._remember(text)
            command = Command(
                AUTH_RESPONSE,
                "*" if cancelled else REDACTED,
                frame,
                time_ns,
                first_frame,
                offset,
                length,
                secret=not cancelled,
            )
            self._push(command)
            return
        stripped = text.strip()
        verb, _, argument = stripped.partition(" ")
        verb = verb.upper()
        verb = _VERBS.get(verb, verb)
        if verb[:4] == "AUTH" and (len(verb) == 4 or verb[4].isspace()):
            # Servers split on any blank (Postfix's smtpd_token, Exim): "AUTH\tPLAIN <blob>"
            # and "AUTH PLAIN\t<blob>" log in all the same, and their blob is a credential.
            verb, argument = "AUTH", " ".join(text.split(None, 2)[1:])
        elif self._secrets is not None:
            # A later line repeating a secret of the exchange (a password typed as a command)
            scrubbed = self._scrubbed(CLIENT, text, offset, frame, identities=False)
            if scrubbed is not text:
                text = scrubbed
                stripped = text.strip()
                verb, _, argument = stripped.partition(" ")
                verb = verb if verb == REDACTED else verb.upper()
        if state is ClientState.RESYNC:
            if stripped == ".":
                self._end_of_uncaptured_message(first_frame, offset, length, frame, time_ns)
                return
            if verb not in KNOWN_VERBS:
                if not self._skipping:
                    self._anomaly("skipped_to_resync", frame, CLIENT, text[:80])
                self._skipping = True
                return
            self._skipping = False
            self.client = ClientState.COMMAND
        command = Command(verb, argument.strip(), frame, time_ns, first_frame, offset, length)
        if verb not in KNOWN_VERBS:
            self._anomaly("unknown_command", frame, CLIENT, text[:80])
        self._auth_active = False
        if verb == "AUTH":
            mechanism, _, initial = command.argument.partition(" ")
            if self._secrets is None:
                self._secrets = AuthSecrets()
            self._secrets.start(mechanism)
            if initial.strip():
                command.argument, command.secret = f"{mechanism} {REDACTED}", True
                self._secrets.add(initial)
            self._auth_active = True
        if verb == "BDAT":
            self._start_bdat(command, frame)
            return
        self._push(command)
        if verb == "DATA":
            self.client = ClientState.AWAIT_DATA_REPLY

    def _remember(self, response: str) -> None:
        """A SASL response read (and redacted): kept to redact it where it recurs."""
        if self._secrets is None:
            self._secrets = AuthSecrets()
        self._secrets.add(response)

    def _end_of_uncaptured_message(self, first_frame, offset, length, frame, time_ns) -> None:
        """A lone '.' line while reading for the next command ends a message whose start the
        capture lacks (it began before the capture or inside a gap)."""
        self._skipping = False
        self._push(Command(END_OF_DATA, "", frame, time_ns, first_frame, offset, length))
        self.client = ClientState.COMMAND

    def _push(self, command: Command) -> None:
        pending = self.pending
        command.pipelined = bool(pending) and (
            pending[-1].verb != GREETING or any(c.verb != GREETING for c in pending)
        )
        self._greeting_open = False
        if len(self.pending) >= self.limits.max_pending:
            self._unanswered(self.pending.pop(0), "not captured")
            self._anomaly("too_many_pending_commands", command.frame, CLIENT)
        if self.pending:
            self.pending.append(command)
        else:
            self.pending = [command]
        self._event(command)

    def _hold(self, data: bytes, offset: int, frame: int, time_ns: int) -> None:
        """Client bytes sent before the reply to DATA arrived (a one-sided capture, or a client
        that does not wait): kept until the reply tells what they are."""
        if not self._held:
            self._held = []
        self._held.append((data, offset, frame, time_ns))
        self._held_bytes += len(data)
        first_line = b"".join(d for d, *_ in self._held).split(b"\n", 1)
        looks_like_message = len(first_line) > 1 and (
            first_line[0].split(b" ", 1)[0].upper().decode("latin-1") not in KNOWN_VERBS
        )
        if looks_like_message or self._held_bytes > self.limits.max_held:
            self._anomaly(
                "data_without_354", frame, CLIENT, "message bytes before the reply to DATA"
            )
            self._early_data = next((c for c in self.pending if c.verb == "DATA"), None)
            self._release_held(ClientState.DATA_BODY)

    def _release_held(self, state: ClientState) -> None:
        held, self._held, self._held_bytes = self._held, (), 0
        if state == ClientState.DATA_BODY:
            self._start_message(dot_stuffed=True)
        self.client = state
        for data, offset, frame, time_ns in held:
            self._feed_client(data, offset, frame, time_ns)

    # -- message bodies ------------------------------------------------------

    def _start_message(self, dot_stuffed: bool) -> None:
        self._message = MessageScanner(dot_stuffed=dot_stuffed)
        self._message_gap = 0

    def _data_body(self, data: bytes, pos: int, offset: int, frame: int, time_ns: int) -> int:
        marker_end = self._message.feed_data(data, pos)
        if marker_end < 0:
            return len(data)
        dot = Command(END_OF_DATA, "", frame, time_ns, frame, offset + marker_end - 3, 3)
        dot.message = self._end_message(frame, time_ns, complete=self._message_gap == 0)
        self._push(dot)
        self.client = ClientState.COMMAND
        return marker_end

    def _start_tail(self, reply_frame: int) -> None:
        """The server answered the message before its final dot was read: the capture lacks
        part of the body. The client's bytes of frames before ``reply_frame`` may still come
        (the reassembly delivers bytes held behind a hole once it gives the hole up, which
        can be after the reply): they are the rest of the message up to its CRLF.CRLF, not
        commands (read as commands, its lone '.' line made a second end of data that no
        reply answers). The tail's own scanner only looks for that marker."""
        self._message = MessageScanner(dot_stuffed=True)
        self._message.lost()
        self._message_gap = 0
        self._tail_before = reply_frame
        self.client = ClientState.DATA_TAIL

    def _data_tail(self, data: bytes, pos: int, frame: int) -> int:
        """Bytes while the tail of an answered message may still come (``_start_tail``)."""
        if frame < self._tail_before:
            marker_end = self._message.feed_data(data, pos)
            if marker_end < 0:
                return len(data)
            self.client = ClientState.COMMAND
            pos = marker_end
        else:
            # Sent after the reply: the tail is over (its dot was in bytes the capture
            # lacks); after a gap in it, read for the next command as after any gap.
            self.client = ClientState.RESYNC if self._message_gap else ClientState.COMMAND
        self._message, self._tail_before = None, 0
        return pos

    def _end_message(self, frame: int, time_ns: int, complete: bool) -> MessageEnd:
        facts = self._message.finish()
        end = MessageEnd(frame, time_ns, facts.size + self._message_gap, facts, complete)
        self._event(end)
        self._message = None
        return end

    def _start_bdat(self, command: Command, frame: int) -> None:
        match = BDAT_ARGUMENT.fullmatch(command.argument)
        if not match:
            self._anomaly("bad_bdat", frame, CLIENT, command.argument[:80])
            self._push(command)
            return
        command.bdat_size, command.bdat_last = int(match.group(1)), bool(match.group(2))
        if self._message is None:
            self._start_message(dot_stuffed=False)
        self._bdat_command = command
        self._message.bdat_left = command.bdat_size
        self.client = ClientState.BDAT_CHUNK
        if command.bdat_size == 0:
            self._bdat_done(frame, command.time_ns)

    def _bdat_chunk(self, data: bytes, pos: int, frame: int, time_ns: int) -> int:
        message = self._message
        left = message.bdat_left
        take = message.feed_bdat(data, pos, left)
        message.bdat_left = left - take
        if take == left:
            self._bdat_done(frame, time_ns)
        return pos + take

    def _bdat_done(self, frame: int, time_ns: int) -> None:
        command = self._bdat_command
        command.frame, command.time_ns = frame, time_ns
        self.client = ClientState.COMMAND
        if command.bdat_last:
            command.message = self._end_message(frame, time_ns, complete=self._message_gap == 0)
        self._push(command)

    def _client_gap(self, length: int, frame: int, time_ns: int = 0) -> None:
        state = self.client
        if state != ClientState.TLS:
            self.in_step = self._whole = False
        if state == ClientState.DATA_BODY or state is ClientState.DATA_TAIL:
            self._message_gap += length
            self._message.lost()
        elif state == ClientState.BDAT_CHUNK and length < self._message.bdat_left:
            self._message_gap += length
            self._message.bdat_left -= length
        elif state == ClientState.TLS:
            self.tls.gap(CLIENT)
        else:
            if state == ClientState.BDAT_CHUNK:
                self._message_gap += self._message.bdat_left
                self._bdat_done(frame, self._bdat_command.time_ns)
            cut_credential = self._cut_credential(frame, time_ns)
            self._framer(CLIENT).clear()
            self._held, self._held_bytes = (), 0
            # The rest of a credential line the gap cut is a credential too, whatever it
            # looks like: it is read as the answer to a 334, not searched for a command.
            self.client = ClientState.AUTH_RESPONSE if cut_credential else ClientState.RESYNC

    def _cut_credential(self, frame: int, time_ns: int) -> bool:
        """Whether bytes the capture lacks cut a line that carries credentials (an AUTH
        line, an answer to a 334): what was read of it is then a line of its own, redacted
        (a truncated command, as a snap length cut gives), so that neither its start nor
        its rest after the gap reaches an output or an export in clear."""
        framer = self._framer(CLIENT)
        partial = framer.partial
        if not partial or self.client not in (ClientState.COMMAND, ClientState.AUTH_RESPONSE):
            return False
        text = _decode(partial)
        words = text.split(None, 1)
        in_auth = self.client is ClientState.AUTH_RESPONSE or (
            self._auth_active and _credential(text)
        )
        if not in_auth and not (words and words[0].upper() == "AUTH"):
            return False
        raw = partial + b"\r\n"
        self._client_command(raw, framer.first_frame, framer.offset, len(raw), frame, time_ns)
        if self.events and isinstance(self.events[-1], Command):
            self.events[-1].truncated = True
        return True

"""The server's side of a Dialogue: reply lines gathered into replies, each reply paired with
the command it answers (in order, or by ``pairing.fit`` out of step), and what a reply
changes in the client's state (354, 334, 220 to STARTTLS).

``ServerSide`` is a base of ``dialogue.Dialogue`` and holds no state of its own (the slots
are the Dialogue's); its methods call the Dialogue's shared ones and the client side's
(``_push``, ``_release_held``, ``_start_message``, ``_end_message``)."""

from __future__ import annotations

from pcapsmtp._core import reply_line
from pcapsmtp.smtp.codes import is_positive
from pcapsmtp.smtp.events import (
    AUTH_RESPONSE,
    END_OF_DATA,
    GREETING,
    SERVER,
    Command,
    Reply,
    Unanswered,
    shared_text,
)
from pcapsmtp.smtp.pairing import NO, SURE, fit
from pcapsmtp.smtp.states import (
    GREETING_COMMAND,
    NOWHERE,
    READING_COMMANDS,
    SERVER_LINES,
    ClientState,
    ServerState,
)
from pcapsmtp.smtp.syntax import looks_like_tls

HYPHEN, TAB = ord("-"), ord("\t")
"""Reply line separators as ``LineFramer.replies`` gives them (the byte's value)."""


class ServerSide:
    """The Dialogue's reading of the server's bytes."""

    __slots__ = ()

    def _feed_server(self, data: bytes, offset: int, frame: int, time_ns: int) -> None:
        pos = 0
        while pos < len(data):
            state = self.server
            if state in (ServerState.START, ServerState.AWAIT_TLS):
                implicit = state == ServerState.START
                if looks_like_tls(data[pos:]):
                    self._start_tls(SERVER, frame, time_ns, implicit)
                    self.server = ServerState.TLS
                elif implicit and (self.mid_session or not self.in_step):
                    self.server = ServerState.RESYNC
                else:
                    self.server = ServerState.LINES
            elif state == ServerState.TLS:
                self.tls.feed(SERVER, data[pos:], frame, time_ns)
                return
            else:
                pos = self._server_lines(data, pos, offset, frame, time_ns)

    def _server_lines(self, data: bytes, pos: int, offset: int, frame: int, time_ns: int) -> int:
        """Reply lines from ``data[pos]`` on, until a reply ends the line state (220 to
        STARTTLS): the framer's later lines are dropped and the bytes after it read anew.
        The core splits each line into code, separator and text (``LineFramer.replies``)."""
        framer = self._server_framer or self._framer(SERVER)
        reply_parts = self._reply_parts
        for line in framer.replies(data, pos, offset, frame):
            if line is None:
                self._line_too_long(SERVER, frame)
                continue
            code, separator, text, first_frame, line_offset, end = line
            if first_frame == frame:
                first_frame = frame  # one int object, not two, while the session is held
            reply_parts(code, separator, text, first_frame, line_offset, frame, time_ns)
            if self.server not in SERVER_LINES:
                framer.clear()
                return end
        return len(data)

    def _reply_line(
        self, raw: bytes, first_frame: int, offset: int, frame: int, time_ns: int, cut=False
    ) -> None:
        """A reply line given whole (its line end stripped or not); ``cut`` when the snap
        length cut it (it may end in the start of a credential)."""
        self._reply_parts(*reply_line(raw), first_frame, offset, frame, time_ns, cut)

    def _reply_parts(
        self,
        code: int | None,
        separator: int,
        text: str | bytes,
        first_frame: int,
        offset: int,
        frame: int,
        time_ns: int,
        cut: bool = False,
    ) -> None:
        """A reply line as the core reads it (``LineFramer.replies``): its code, the byte
        after it (0 for none) and its text; code None and the line's bytes when it is not
        a reply line."""
        if self.server is ServerState.RESYNC:
            if code is None or separator == TAB:
                return
            self.server = ServerState.LINES
        if code is None:
            detail = self._detail(SERVER, text, offset, frame, cut)
            self._anomaly("bad_reply_line", frame, SERVER, detail)
            return
        if self._secrets is not None:
            # A server may echo the credentials it was sent (535 ... <the blob>).
            text = self._scrubbed(SERVER, text, offset + (4 if separator else 3), frame, cut=cut)
        lines = self._reply_lines
        if not lines and separator != HYPHEN and separator != TAB:
            # A reply of one line (most are): whole at once, nothing held for the next.
            lines = [shared_text(text)] if self.limits.max_reply_lines > 0 else []
            reply = Reply(code, lines, frame, time_ns, first_frame, offset, line_frames=(frame,))
            self._complete_reply(reply)
            return
        if not lines:
            self._reply_code, self._reply_first = code, (first_frame, offset)
            self._reply_lines = lines = []
            self._reply_frames = [frame]
        else:
            if code != self._reply_code:
                self._anomaly(
                    "reply_code_changed", frame, SERVER, f"{self._reply_code} then {code}"
                )
            if self._reply_frames[-1] != frame:
                self._reply_frames.append(frame)
        if len(lines) < self.limits.max_reply_lines:
            lines.append(shared_text(text))
        if separator == HYPHEN:
            return
        if separator == TAB:
            self._anomaly("bad_reply_separator", frame, SERVER, "tab after the reply code")
        reply = Reply(
            self._reply_code,
            lines,
            frame,
            time_ns,
            *self._reply_first,
            line_frames=tuple(self._reply_frames),
        )
        self._reply_lines, self._reply_frames, self._reply_first = (), (), NOWHERE
        self._complete_reply(reply)

    def _complete_reply(self, reply: Reply) -> None:
        # While DATA still awaits its reply (a client that sent its message before the 354),
        # replies answer the commands before it, not the message.
        if (
            self.client is ClientState.DATA_BODY
            and not any(command.verb == "DATA" for command in self.pending)
            and (self._message_gap > 0 or is_positive(reply.code))
        ):
            # The server answered a message whose final dot we did not see: it was in bytes
            # the capture lacks. (Another reply mid-message, such as a 421 timeout, is not
            # an answer to the message: it stays unsolicited.)
            dot = Command(END_OF_DATA, "", reply.frame, reply.time_ns, reply.frame)
            dot.message = self._end_message(reply.frame, reply.time_ns, complete=False)
            self._push(dot)
            self._start_tail(reply.frame)
        command = self._answered(reply)
        if command is None and reply.code != 421:
            self._anomaly("reply_without_command", reply.frame, SERVER, f"{reply.code}")
        reply.command = command
        if command is not None and command is not GREETING_COMMAND:
            command.reply = reply
        self._event(reply)
        if command is not None:
            self._after_reply(command, reply)
        elif reply.code == 354 and self.client in READING_COMMANDS:
            # The DATA it answers is not in the capture; the client's next bytes are a message.
            self._start_message(dot_stuffed=True)
            self.client = ClientState.DATA_BODY

    def _answered(self, reply: Reply) -> Command | None:
        """The command this reply answers, taken off the waiting ones."""
        if self._greeting_open and not self.pending and reply.code in (220, 421, 554):
            # The greeting is the first reply no command preceded (RFC 5321 3.1).
            self._greeting_open = False
            self.in_step = True
            return GREETING_COMMAND
        self._greeting_open = False
        if self.in_step and not self.pending:
            return None
        if self.in_step and (self._whole or fit(self.pending[0], reply) != NO):
            command = self.pending.pop(0)
            if not self.pending:
                self.pending = ()
            return command
        # Out of step, or in step again after a hole but this reply cannot answer the next
        # command (its own command was lost): it answers the first one it can.
        self.in_step = False
        for index, command in enumerate(self.pending):
            if command.frame > reply.frame:
                break  # a reply cannot answer a command sent after it
            level = fit(command, reply)
            if level == NO:
                continue
            for _ in range(index):
                self._unanswered(self.pending.pop(0), "not captured")
            self.pending.pop(0)
            reply.uncertain = level != SURE
            self.in_step = level == SURE
            return command
        return None

    def _unanswered(self, command: Command, reason: str) -> None:
        if command.verb != GREETING:
            self._event(Unanswered(command, reason))

    def _after_reply(self, command: Command, reply: Reply) -> None:
        verb, code = command.verb, reply.code
        if verb == "DATA" and self.client == ClientState.AWAIT_DATA_REPLY:
            self._release_held(ClientState.DATA_BODY if code == 354 else ClientState.COMMAND)
        elif verb == "DATA" and code == 354 and self.client in READING_COMMANDS:
            if command is self._early_data:
                return  # its message was sent before this 354 and is already read
            self._start_message(dot_stuffed=True)
            self.client = ClientState.DATA_BODY
        elif code == 334 and (self._auth_active or verb in ("AUTH", AUTH_RESPONSE)):
            self.client = ClientState.AUTH_RESPONSE
            return
        elif verb in ("AUTH", AUTH_RESPONSE) and code < 400:
            # Refused (503 before STARTTLS, 535), a client that does not wait for 334 still
            # sends its credentials: they stay secret until its next command.
            self._auth_active = False
        elif verb == "STARTTLS" and code == 220:
            self.client = ClientState.AWAIT_TLS
            self.server = ServerState.AWAIT_TLS
        if self._secrets is not None and verb in ("AUTH", AUTH_RESPONSE):
            self._secrets.end_exchange()  # its final reply: user names are no longer searched

"""The SMTP dialogue, sans-io: (sender, bytes, frame) and gaps in; typed events out.

Both directions of one connection go through one ``Dialogue`` in capture order, because
each side's framing depends on the other's replies: a 354 turns the client's bytes into a
message, a 334 makes its next line a credential, a 220 to STARTTLS turns both into TLS.
Commands and replies are paired in order (RFC 2920 pipelining), the greeting and the end
of a message being virtual commands so every reply answers one. Bytes the capture lacks (a
gap in either direction, a capture started mid-session) put the pairing out of step: each
side is read again from its next whole line (as Zeek's SMTP_AFTER_GAP), and each reply then
answers the first waiting command it can answer (``pairing.fit``), marked uncertain until a
reply only one command draws (354 to DATA, "queued as" to the final dot) puts it back in step.
A command whose reply the capture lacks is reported as ``Unanswered``, never silently dropped.

Credentials are redacted here, at parse time, and nowhere else: AUTH initial responses
and every line answering a 334 never leave this module in clear.
"""

from __future__ import annotations

import re
from enum import Enum, auto

from pcapsmtp._core import LineFramer
from pcapsmtp.smtp.codes import is_positive
from pcapsmtp.smtp.events import (
    AUTH_RESPONSE,
    CLIENT,
    END_OF_DATA,
    GREETING,
    REDACTED,
    SERVER,
    Anomaly,
    Command,
    Event,
    Gap,
    Limits,
    MessageEnd,
    Reply,
    Side,
    TlsStarted,
    Unanswered,
    shared_text,
)
from pcapsmtp.smtp.message import MessageScanner
from pcapsmtp.smtp.pairing import NO, SURE, fit
from pcapsmtp.smtp.tls.scanner import TlsScanner

KNOWN_VERBS = frozenset(
    [
        "HELO",
        "EHLO",
        "LHLO",
        "MAIL",
        "RCPT",
        "DATA",
        "BDAT",
        "RSET",
        "VRFY",
        "EXPN",
        "HELP",
        "NOOP",
        "QUIT",
        "STARTTLS",
        "AUTH",
        "ETRN",
        "TURN",
        "ATRN",
        "XCLIENT",
        "XFORWARD",
        "SEND",
        "SOML",
        "SAML",
    ]
)
REPLY_LINE = re.compile(rb"(\d{3})([ \t-]?)(.*)", re.DOTALL)
BARE_VERBS = frozenset(["DATA", "RSET", "QUIT", "NOOP", "STARTTLS", "HELP", "TURN"])
"""Commands that take no argument: a credential line can never be mistaken for one of these
unless it is exactly the verb (and then a 334 before it would have told us)."""
CREDENTIAL = re.compile(r"[A-Za-z0-9+/=._~-]+|\*")
"""What a SASL response line looks like (base64, RFC 4954 4), or '*' to cancel."""
BDAT_ARGUMENT = re.compile(r"(\d{1,18})(?:\s+(LAST))?\s*", re.IGNORECASE)
TLS_RECORD_TYPES = (0x14, 0x15, 0x16, 0x17)


def looks_like_tls(data: bytes) -> bool:
    """A TLS record header: content type 20-23, protocol major version 3 (RFC 8446 5.1)."""
    return len(data) >= 2 and data[0] in TLS_RECORD_TYPES and data[1] == 3


def _decode(raw: bytes) -> str:
    """Wire bytes become text here, once: bytes that are not UTF-8 become the four characters
    ``\\xNN`` (as report.safe shows control bytes), so no lone surrogate reaches an encoder
    (JSON, files, terminals) and every output can write what it gets."""
    return raw.decode("utf-8", "backslashreplace")


class ClientState(Enum):
    START = auto()
    """Nothing seen yet: the first bytes tell TLS (port 465) from SMTP."""
    COMMAND = auto()
    """Reading command lines."""
    AWAIT_DATA_REPLY = auto()
    """Sent DATA: holding bytes until the server answers (354 starts the message)."""
    DATA_BODY = auto()
    """After 354: message bytes up to CRLF.CRLF."""
    BDAT_CHUNK = auto()
    """After a BDAT command line: exactly its size in message bytes."""
    AUTH_RESPONSE = auto()
    """After a 334 challenge: the next line is a credential."""
    AWAIT_TLS = auto()
    """STARTTLS accepted: the next bytes tell whether TLS really started."""
    TLS = auto()
    RESYNC = auto()
    """After a gap: skipping to the next line that reads as a command."""


READING_COMMANDS = (ClientState.COMMAND, ClientState.RESYNC)
CLIENT_LINES = (ClientState.COMMAND, ClientState.AUTH_RESPONSE, ClientState.RESYNC)
"""States in which the client's bytes are command lines."""


class ServerState(Enum):
    START = auto()
    LINES = auto()
    AWAIT_TLS = auto()
    TLS = auto()
    RESYNC = auto()


SERVER_LINES = (ServerState.LINES, ServerState.RESYNC)
"""States in which the server's bytes are reply lines."""


DEFAULT_LIMITS = Limits()
"""The limits of every Dialogue not given its own (shared: never changed)."""
NOWHERE = (0, 0)
"""(first frame, stream offset) of a reply not begun."""
GREETING_COMMAND = Command(GREETING, "", 0, 0)
"""The virtual command every greeting answers, one for all connections (each open one held
its own, 144 bytes): never changed, so its ``reply`` stays None (a greeting is
``session.greeting``; the virtual command is in no session's ``commands``)."""


class _Framers:
    """A Dialogue's line framers as they are now, each None until its side first needed
    one (``Dialogue._lines``: a read-only view, made when asked)."""

    __slots__ = ("client", "server")

    def __init__(self, client: LineFramer | None, server: LineFramer | None) -> None:
        self.client = client
        self.server = server


class Dialogue:
    """Parses one connection's SMTP dialogue; ``take()`` returns the events so far."""

    __slots__ = (
        "_auth_active", "_bdat_command", "_client_framer", "_early_data", "_greeting_open",
        "_held", "_held_bytes", "_message", "_message_gap", "_reply_code", "_reply_first",
        "_reply_frames", "_reply_lines", "_server_framer", "_skipping", "_whole",
        "client", "events", "in_step", "limits", "mid_session", "pending", "server", "tls",
    )  # fmt: skip

    def __init__(
        self,
        greeting_expected: bool = True,
        limits: Limits | None = None,
        mid_session: bool = False,
    ) -> None:
        self.limits = limits or DEFAULT_LIMITS
        self.mid_session = mid_session
        """The capture starts after the connection opened: the greeting is the first reply no
        command preceded, each side is read from its first whole line."""
        self.in_step = not mid_session
        """Replies pair with commands by position; False after bytes the capture lacks."""
        self._whole = not mid_session
        """No byte of the dialogue is missing so far: position alone is trusted."""
        self._greeting_open = mid_session
        self._skipping = False
        self._early_data: Command | None = None
        """A DATA whose message came before its 354 (pipelined, or the 354 not captured)."""
        self.client = ClientState.START
        self.server = ServerState.START
        self.pending: list[Command] | tuple = ()
        """Commands awaiting their reply, oldest first (a list: a deque costs 600 bytes even
        empty, and pipelining keeps this short); the shared empty tuple when a reply took the
        last one, so an idle connection holds no list of its own."""
        self.events: list[Event] | tuple = ()
        """The events not taken yet: the shared empty tuple when there are none (``_event``
        makes the list), so an open connection between events holds no list of its own."""
        self.tls: TlsScanner | None = None
        self._client_framer: LineFramer | None = None
        self._server_framer: LineFramer | None = None
        """The line framing of each side (the compiled core: pcapsmtp._core.LineFramer), made
        when that side first needs one (``_framer``): a flood of connections that never say
        a word (or whose client never does) holds none. Slots of the dialogue, not an object
        of their own: 56 bytes less for each of a flood's open connections."""
        self._reply_lines: list[str] | tuple = ()
        self._reply_code = 0
        self._reply_frames: list[int] | tuple = ()
        self._reply_first = NOWHERE
        """The reply being read: its lines, the frames that completed them, where it began.
        Between replies the shared empty tuple and NOWHERE (a flood's open connections each
        held two empty lists and a pair otherwise), a list from a reply's first line on."""
        self._held: list[tuple[bytes, int, int, int]] | tuple = ()
        self._held_bytes = 0
        self._message: MessageScanner | None = None
        self._message_gap = 0
        self._bdat_command: Command | None = None
        self._auth_active = False
        """Between AUTH and its final reply: lines that look like SASL responses are credentials
        even when the server's 334 is not in the capture (one-sided or mis-ordered captures)."""
        if greeting_expected:
            self.pending = [GREETING_COMMAND]

    @property
    def _lines(self) -> _Framers:
        """Each side's line framer so far (None if not made yet)."""
        return _Framers(self._client_framer, self._server_framer)

    def _framer(self, sender: Side) -> LineFramer:
        """``sender``'s line framer, made on first use."""
        if sender == CLIENT:
            if self._client_framer is None:
                self._client_framer = LineFramer(self.limits.max_line)
            return self._client_framer
        if self._server_framer is None:
            self._server_framer = LineFramer(self.limits.max_line)
        return self._server_framer

    # -- input ---------------------------------------------------------------

    def feed(self, sender: Side, data: bytes, offset: int, frame: int, time_ns: int) -> None:
        if sender == CLIENT:
            self._feed_client(data, offset, frame, time_ns)
        else:
            self._feed_server(data, offset, frame, time_ns)

    def gap(self, sender: Side, length: int, frame: int, time_ns: int, reason: str) -> None:
        self._event(Gap(sender, frame, time_ns, length, reason))
        if reason == "snaplen" and self._cut_by_snaplen(sender, frame, time_ns):
            return
        if sender == CLIENT:
            self._client_gap(length, frame)
        elif self.server == ServerState.TLS:
            self.tls.gap(SERVER)
        else:
            self.in_step = self._whole = False
            if self.server != ServerState.START:
                self._framer(SERVER).clear()
                self._reply_lines = ()
                self.server = ServerState.RESYNC

    def _cut_by_snaplen(self, sender: Side, frame: int, time_ns: int) -> bool:
        """The snap length cut the end of a segment: what it held is taken to end there.

        SMTP peers write a command or a reply per segment, so the line cut short ends at the
        segment's end (its verb or code is known), and a reply in progress is complete. This
        keeps the dialogue in step where a resynchronisation would lose every reply.
        """
        line = self._framer(sender)
        if sender == CLIENT and self.client in (ClientState.COMMAND, ClientState.AUTH_RESPONSE):
            if partial := line.partial:
                raw = partial + b"\r\n"
                first_frame, offset = line.first_frame, line.offset
                line.clear()
                self._client_command(raw, first_frame, offset, len(raw), frame, time_ns)
                if self.events and isinstance(self.events[-1], Command):
                    self.events[-1].truncated = True
            return True
        if sender == SERVER and self.server == ServerState.LINES:
            if partial := line.partial:
                raw = partial.rstrip(b"\r\n")
                first_frame, offset = line.first_frame, line.offset
                line.clear()
                self._reply_line(raw, first_frame, offset, frame, time_ns)
            if self._reply_lines:
                self._reply_line(f"{self._reply_code}".encode(), frame, 0, frame, time_ns)
            replies = [e for e in self.events if isinstance(e, Reply)]
            if replies:
                replies[-1].truncated = True
            return True
        return False

    def finish(self, frame: int, time_ns: int) -> None:
        """The connection ended (last frame given): report what was left unfinished."""
        if self._held:
            # Held for a reply to DATA that never came (a one-sided capture, a refused DATA
            # the capture lacks): what they hold is read as commands.
            self._release_held(ClientState.COMMAND)
        if self._message is not None:
            self._end_message(frame, time_ns, complete=False)
        for sender, line in ((CLIENT, self._client_framer), (SERVER, self._server_framer)):
            partial = line.partial if line is not None else None
            if partial and sender == CLIENT and self.client == ClientState.COMMAND:
                self._anomaly("incomplete_command", line.first_frame, CLIENT, _decode(partial[:80]))
            elif partial and sender == SERVER and self.server == ServerState.LINES:
                self._anomaly("incomplete_reply", line.first_frame, SERVER, _decode(partial[:80]))
        if self._reply_lines:
            self._anomaly(
                "incomplete_reply", self._reply_first[0], SERVER, self._reply_lines[0][:80]
            )
        while self.pending:
            self._unanswered(self.pending.pop(0), "end")

    def take(self) -> list[Event] | tuple:
        events, self.events = self.events, ()
        return events

    def _event(self, event: Event) -> None:
        if self.events:
            self.events.append(event)
        else:
            self.events = [event]

    def body(self) -> MessageScanner | None:
        """The scanner of the DATA body or BDAT chunk the client is sending, else None.
        While there is one, the client's next bytes are fed to it whole and make no event
        until one of them completes the end-of-data marker or the chunk (its
        ``bdat_left``), which is what lets the flow table feed them to its scan straight
        (pcapsmtp.smtp.tracker, ``TcpFlow.absorb``)."""
        if self.client is ClientState.DATA_BODY or self.client is ClientState.BDAT_CHUNK:
            return self._message
        return None

    def encrypted(self, sender: Side) -> TlsScanner | None:
        """The TLS scanner while ``sender``'s bytes are TLS records, else None (whether
        they can be walked elsewhere is ``TlsScanner.records_walk``'s to say)."""
        if sender == CLIENT:
            return self.tls if self.client is ClientState.TLS else None
        return self.tls if self.server is ServerState.TLS else None

    # -- client --------------------------------------------------------------

    def _feed_client(self, data: bytes, offset: int, frame: int, time_ns: int) -> None:
        pos = 0
        while pos < len(data):
            state = self.client
            if state in (ClientState.START, ClientState.AWAIT_TLS):
                self._client_sniff(data[pos:], frame, time_ns)
            elif state in CLIENT_LINES:
                pos = self._client_lines(data, pos, offset, frame, time_ns)
            elif state == ClientState.DATA_BODY:
                pos = self._data_body(data, pos, offset, frame, time_ns)
            elif state == ClientState.BDAT_CHUNK:
                pos = self._bdat_chunk(data, pos, frame, time_ns)
            elif state == ClientState.AWAIT_DATA_REPLY:
                self._hold(data[pos:], offset + pos, frame, time_ns)
                pos = len(data)
            else:  # TLS
                self.tls.feed(CLIENT, data[pos:], frame, time_ns)
                pos = len(data)

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
        BDAT): the framer's later lines are dropped and the bytes after it read anew."""
        framer = self._framer(CLIENT)
        for line in framer.feed(data, pos, offset, frame):
            if line is None:
                self._line_too_long(CLIENT, frame)
                continue
            raw, first_frame, line_offset, length, end = line
            self._client_command(raw, first_frame, line_offset, length, frame, time_ns)
            if self.client not in CLIENT_LINES:
                framer.clear()
                return end
        return len(data)

    def _line_too_long(self, sender: Side, frame: int) -> None:
        """A line passed the cap: its further bytes are skipped, never held."""
        self._anomaly("line_too_long", frame, sender, f"more than {self.limits.max_line} bytes")

    def _client_command(
        self, raw: bytes, first_frame: int, offset: int, length: int, frame: int, time_ns: int
    ) -> None:
        if not raw.endswith(b"\r\n"):
            self._anomaly("bare_lf", frame, CLIENT, "command line ends in LF without CR")
        text = _decode(raw.rstrip(b"\r\n"))
        if self.client == ClientState.AUTH_RESPONSE or self._is_credential(text):
            self.client = ClientState.COMMAND
            cancelled = text.strip() == "*"
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
        verb, _, argument = text.strip().partition(" ")
        verb = verb.upper()
        if self.client == ClientState.RESYNC:
            if text.strip() == ".":
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
            if initial.strip():
                command.argument, command.secret = f"{mechanism} {REDACTED}", True
            self._auth_active = True
        if verb == "BDAT":
            self._start_bdat(command, frame)
            return
        self._push(command)
        if verb == "DATA":
            self.client = ClientState.AWAIT_DATA_REPLY

    def _end_of_uncaptured_message(self, first_frame, offset, length, frame, time_ns) -> None:
        """A lone '.' line while reading for the next command ends a message whose start the
        capture lacks (it began before the capture or inside a gap)."""
        self._skipping = False
        self._push(Command(END_OF_DATA, "", frame, time_ns, first_frame, offset, length))
        self.client = ClientState.COMMAND

    def _is_credential(self, text: str) -> bool:
        stripped = text.strip()
        return (
            self._auth_active
            and bool(CREDENTIAL.fullmatch(stripped))
            and stripped.upper() not in BARE_VERBS
        )

    def _push(self, command: Command) -> None:
        command.pipelined = any(c.verb != GREETING for c in self.pending)
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

    def _client_gap(self, length: int, frame: int) -> None:
        state = self.client
        if state != ClientState.TLS:
            self.in_step = self._whole = False
        if state == ClientState.DATA_BODY:
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
            self._framer(CLIENT).clear()
            self._held, self._held_bytes = (), 0
            self.client = ClientState.RESYNC

    # -- server --------------------------------------------------------------

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
        STARTTLS): the framer's later lines are dropped and the bytes after it read anew."""
        framer = self._framer(SERVER)
        for line in framer.feed(data, pos, offset, frame):
            if line is None:
                self._line_too_long(SERVER, frame)
                continue
            raw, first_frame, line_offset, _, end = line
            self._reply_line(raw.rstrip(b"\r\n"), first_frame, line_offset, frame, time_ns)
            if self.server not in SERVER_LINES:
                framer.clear()
                return end
        return len(data)

    def _reply_line(
        self, raw: bytes, first_frame: int, offset: int, frame: int, time_ns: int
    ) -> None:
        match = REPLY_LINE.fullmatch(raw)
        if self.server == ServerState.RESYNC:
            if not match or match.group(2) not in (b" ", b"-", b""):
                return
            self.server = ServerState.LINES
        if not match:
            self._anomaly("bad_reply_line", frame, SERVER, _decode(raw[:80]))
            return
        code, separator = int(match.group(1)), match.group(2)
        text = shared_text(_decode(match.group(3)))
        if not self._reply_lines:
            self._reply_code, self._reply_first = code, (first_frame, offset)
            self._reply_lines, self._reply_frames = [], []
        elif code != self._reply_code:
            self._anomaly("reply_code_changed", frame, SERVER, f"{self._reply_code} then {code}")
        if len(self._reply_lines) < self.limits.max_reply_lines:
            self._reply_lines.append(text)
        if not self._reply_frames or self._reply_frames[-1] != frame:
            self._reply_frames.append(frame)
        if separator == b"-":
            return
        if separator == b"\t":
            self._anomaly("bad_reply_separator", frame, SERVER, "tab after the reply code")
        reply = Reply(
            self._reply_code,
            self._reply_lines,
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
        answers_data = any(command.verb == "DATA" for command in self.pending)
        lost_dot = self._message_gap > 0 or is_positive(reply.code)
        if self.client == ClientState.DATA_BODY and not answers_data and lost_dot:
            # The server answered a message whose final dot we did not see: it was in bytes
            # the capture lacks. (Another reply mid-message, such as a 421 timeout, is not
            # an answer to the message: it stays unsolicited.)
            dot = Command(END_OF_DATA, "", reply.frame, reply.time_ns, reply.frame)
            dot.message = self._end_message(reply.frame, reply.time_ns, complete=False)
            self._push(dot)
            self.client = ClientState.COMMAND
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
        elif verb in ("AUTH", AUTH_RESPONSE):
            self._auth_active = False
        elif verb == "STARTTLS" and code == 220:
            self.client = ClientState.AWAIT_TLS
            self.server = ServerState.AWAIT_TLS

    # -- shared --------------------------------------------------------------

    def _start_tls(self, sender: Side, frame: int, time_ns: int, implicit: bool) -> None:
        if self.tls is None:
            self.tls = TlsScanner()
        self._event(TlsStarted(sender, frame, time_ns, implicit))
        if implicit:
            self.pending = ()

    def _anomaly(self, code: str, frame: int, sender: Side, detail: str = "") -> None:
        self._event(Anomaly(code, frame, sender, detail))

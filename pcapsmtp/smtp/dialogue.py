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
and every line answering a 334 never leave the dialogue in clear (``client_side.py``), nor
does a later line that repeats them (a server echoing them in a reply: ``auth_secrets.py``).

The ``Dialogue`` holds the state (its slots) and what both sides share; the client's
reading is ``client_side.ClientSide``, the server's ``server_side.ServerSide``, its two
bases; the states are in ``states.py``, what a line looks like in ``syntax.py``.
"""

from __future__ import annotations

from pcapsmtp._core import LineFramer
from pcapsmtp.smtp.auth_secrets import AuthSecrets, wire_offset
from pcapsmtp.smtp.client_side import ClientSide
from pcapsmtp.smtp.events import (
    CLIENT,
    SERVER,
    Anomaly,
    Command,
    Event,
    Gap,
    Limits,
    Redacted,
    Reply,
    Side,
    TlsStarted,
)
from pcapsmtp.smtp.message import MessageScanner
from pcapsmtp.smtp.server_side import ServerSide
from pcapsmtp.smtp.states import GREETING_COMMAND, NOWHERE, ClientState, ServerState
from pcapsmtp.smtp.syntax import _decode
from pcapsmtp.smtp.tls.scanner import TlsScanner

DEFAULT_LIMITS = Limits()
"""The limits of every Dialogue not given its own (shared: never changed)."""


class _Framers:
    """A Dialogue's line framers as they are now, each None until its side first needed
    one (``Dialogue._lines``: a read-only view, made when asked)."""

    __slots__ = ("client", "server")

    def __init__(self, client: LineFramer | None, server: LineFramer | None) -> None:
        self.client = client
        self.server = server


class Dialogue(ClientSide, ServerSide):
    """Parses one connection's SMTP dialogue; ``take()`` returns the events so far."""

    __slots__ = (
        "_auth_active", "_bdat_command", "_client_framer", "_early_data", "_greeting_open",
        "_held", "_held_bytes", "_message", "_message_gap", "_reply_code", "_reply_first",
        "_reply_frames", "_reply_lines", "_secrets", "_server_framer", "_skipping",
        "_tail_before", "_whole",
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
        self._tail_before = 0
        """In ClientState.DATA_TAIL: the frame of the reply that ended the message; client
        bytes from an earlier frame are still that message's."""
        self._bdat_command: Command | None = None
        self._auth_active = False
        """Between AUTH and its final reply: lines that look like SASL responses are credentials
        even when the server's 334 is not in the capture (one-sided or mis-ordered captures)."""
        self._secrets: AuthSecrets | None = None
        """What the AUTH exchanges redacted, made at the first AUTH: redacted again wherever
        a later line repeats it (``_scrubbed``)."""
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
            self._client_gap(length, frame, time_ns)
        elif self.server == ServerState.TLS:
            self.tls.gap(SERVER)
        elif self.server == ServerState.AWAIT_TLS:
            pass  # the reply to STARTTLS the capture lost: TLS follows
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
        if sender == CLIENT and self.client is ClientState.DATA_TAIL:
            self._message.lost()  # as in COMMAND, a cut segment does not make the next a resync
            return True
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
                self._reply_line(raw, first_frame, offset, frame, time_ns, cut=True)
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
        if self._message is not None and self.client is not ClientState.DATA_TAIL:
            self._end_message(frame, time_ns, complete=False)
        for sender, line in ((CLIENT, self._client_framer), (SERVER, self._server_framer)):
            partial = line.partial if line is not None else None
            if partial and sender == CLIENT and self.client == ClientState.COMMAND:
                text = self._detail(CLIENT, partial, line.offset, line.first_frame)
                self._anomaly("incomplete_command", line.first_frame, CLIENT, text)
            elif partial and sender == SERVER and self.server == ServerState.LINES:
                text = self._detail(SERVER, partial, line.offset, line.first_frame)
                self._anomaly("incomplete_reply", line.first_frame, SERVER, text)
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

    # -- shared --------------------------------------------------------------
    def _scrubbed(
        self,
        sender: Side,
        text: str,
        offset: int,
        frame: int,
        identities: bool = True,
        cut: bool = False,
    ) -> str:
        """``text`` (wire bytes from stream offset ``offset`` of ``sender``'s direction,
        decoded) with the credentials of the AUTH exchanges so far replaced, and where they
        were on the wire told by a ``Redacted`` event; ``identities`` False leaves the user
        names (a client's own MAIL FROM may be one); ``cut`` when the line was cut short
        (its end may be the start of a credential). Only called once there are secrets."""
        scrubbed, spans = self._secrets.scrub(text, identities, cut)
        if spans:
            ranges = tuple(
                (offset + wire_offset(text, start), offset + wire_offset(text, end))
                for start, end in spans
            )
            self._event(Redacted(sender, frame, ranges))
        return scrubbed

    def _detail(self, sender: Side, raw: bytes, offset: int, frame: int, cut=False) -> str:
        """An anomaly's detail: the first 80 bytes of a line that is not one, as text, its
        credentials redacted (the whole line searched: a secret may straddle the cut)."""
        start = _decode(raw[:80])
        if self._secrets is None:
            return start
        whole = _decode(raw)
        scrubbed = self._scrubbed(sender, whole, offset, frame, cut=cut)
        return start if scrubbed is whole else scrubbed[:80]

    def _line_too_long(self, sender: Side, frame: int) -> None:
        """A line passed the cap: its further bytes are skipped, never held."""
        self._anomaly("line_too_long", frame, sender, f"more than {self.limits.max_line} bytes")

    def _start_tls(self, sender: Side, frame: int, time_ns: int, implicit: bool) -> None:
        if self.tls is None:
            self.tls = TlsScanner()
        self._event(TlsStarted(sender, frame, time_ns, implicit))
        if implicit:
            self.pending = ()

    def _anomaly(self, code: str, frame: int, sender: Side, detail: str = "") -> None:
        self._event(Anomaly(code, frame, sender, detail))

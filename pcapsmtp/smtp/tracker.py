"""TCP stream events in, SMTP sessions out: one Dialogue and one SessionBuilder per connection.

Connections on the SMTP ports (25, 465, 587 and every ``--port``) are SMTP sessions even
when nothing was said (refused, unreachable). On any other port a connection is SMTP when
its first bytes show a server greeting ``220`` and a client ``EHLO``/``HELO``/``LHLO``, also
after a SOCKS5 or HTTP CONNECT exchange; the bytes before that are skipped. Where the capture
lost bytes of one of the two, the other and a 250 as the server's first reply after the
greeting do (``_Sniffer._hello_lost``).

When ``hold_tls()`` says so, a connection that went into TLS is not finished when it ends: it
waits in ``held()`` for the bytes a key log decrypts (``decrypted()``), which a second
``Dialogue`` reads as the SMTP dialogue restarted inside TLS, into the same ``SessionBuilder``;
``finish_held()`` then returns those sessions.

While the client of a connection sends a DATA body or a BDAT chunk, the flow table feeds its
bytes to the message's scan in the core without an event each (``TcpFlow.absorb``, set after
every event to what the dialogue reads: ``Dialogue.body``); the chunk that ends the message
or the BDAT chunk, gaps and anything the dialogue has not read yet still come here as
events, so the dialogue ends up where it would have. Not on a connection recognised by its
dialogue on another port, whose bytes before the SMTP start are cut here (``starts``).
Likewise, once a side's TLS records are application data the scanner would only count
(``TlsScanner.records_walk``), the table walks them in the core (``_core.TlsRecords``), the
client's and the server's, and hands on, as an event, any chunk holding another record;
what it counted is given back to the scanner before each event of the connection.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from pcapsmtp._core import TlsRecords
from pcapsmtp.smtp.dialogue import Dialogue
from pcapsmtp.smtp.events import CLIENT, SERVER, Side
from pcapsmtp.smtp.message import MessageScanner
from pcapsmtp.smtp.model import Session
from pcapsmtp.smtp.ports import SMTP_PORTS
from pcapsmtp.smtp.session import SessionBuilder
from pcapsmtp.smtp.syntax import looks_like_tls
from pcapsmtp.smtp.tls.scanner import TlsScanner
from pcapsmtp.tcp.model import FlowEnded, FlowEvent, StreamData, StreamGap, TcpFlow

SNIFF_LIMIT = 4096
"""Bytes per direction looked at to recognise SMTP on another port."""
SNIFF_HOLD = 256 * 1024
"""Bytes held while undecided: a connection that sends more before showing both a greeting
and a hello is not SMTP (and would otherwise be buffered whole)."""
GREETING_LINE = re.compile(rb"(?:\A|(?<=[\n\x00-\x08\x0e-\x1f\x7f-\xff]))220[ -][^\r\n]*\r?\n")
FIRST_REPLY = re.compile(rb"(?:\A|(?<=\n))(?!220)(\d{3})[ -][^\r\n]*\r?\n")
"""The first reply line that does not go on with the greeting (a multi-line 220)."""
GREETING_HOLD = 512
"""Bytes of a server's first chunk a connection holds unread while nothing else came
(``_Greeted``); a longer one is read on arrival."""
HELLO_LINE = re.compile(
    rb"(?:\A|(?<=[\n\x00-\x08\x0e-\x1f\x7f-\xff]))(?:EHLO|HELO|LHLO)[ \t][^\r\n]*\r?\n",
    re.IGNORECASE,
)


@dataclass(slots=True)
class _Sniffer:
    """The first bytes of a connection on an unknown port, in arrival order."""

    chunks: list[tuple[int, int, bytes, int, int] | StreamGap] = field(default_factory=list)
    """Data chunks (direction, offset, bytes, frame, time) and gaps, in arrival order."""
    gapped: set[int] = field(default_factory=set)
    """Directions with bytes the capture lost within their head."""
    heads: dict[int, bytearray] = field(default_factory=lambda: {0: bytearray(), 1: bytearray()})
    starts: dict[int, int] = field(default_factory=dict)
    """Direction -> stream offset of its first byte seen."""
    greetings: dict[int, re.Match | None] = field(default_factory=lambda: {0: None, 1: None})
    hellos: dict[int, re.Match | None] = field(default_factory=lambda: {0: None, 1: None})
    """The searches in each head, made again only when that head grows."""
    held: int = 0

    def add(self, event: StreamData) -> None:
        direction = event.direction
        self.chunks.append((direction, event.offset, event.data, event.frame, event.time_ns))
        self.held += len(event.data)
        head = self.heads[direction]
        self.starts.setdefault(direction, event.offset)
        if len(head) < SNIFF_LIMIT:
            head += event.data[: SNIFF_LIMIT - len(head)]
            # The literal tests spare the regular expressions most heads (binary, HTTP).
            self.greetings[direction] = GREETING_LINE.search(head) if b"220" in head else None
            lower = head.lower()
            hello = b"hlo" in lower or b"helo" in lower
            self.hellos[direction] = HELLO_LINE.search(head) if hello else None

    def gap(self, event: StreamGap) -> None:
        self.chunks.append(event)
        if len(self.heads[event.direction]) < SNIFF_LIMIT:
            self.gapped.add(event.direction)

    def decide(self, final: bool) -> tuple[int, dict[int, int], str | None] | bool | None:
        """(server direction, SMTP start offset per direction, tunnel), False, or None when
        undecided."""
        for server in (0, 1):
            greeting, hello = self.greetings[server], self.hellos[1 - server]
            if greeting and hello:
                client = 1 - server
                starts = {
                    server: self.starts[server] + greeting.start(),
                    client: self.starts[client] + hello.start(),
                }
                return server, starts, self._tunnel(server, greeting.start())
            if self.gapped and (greeting or hello) and self._hello_lost(server):
                starts = {
                    d: self.starts[d] + (greeting.start() if greeting and d == server else 0)
                    for d in self.starts
                }
                return server, starts, None
        if final or self.held > SNIFF_HOLD:
            return False
        # A full head never changes again: what it lacks now, it lacks for good.
        full = {d: len(head) >= SNIFF_LIMIT for d, head in self.heads.items()}
        possible = any(
            not (full[server] and self.greetings[server] is None)
            and not (full[1 - server] and self.hellos[1 - server] is None)
            for server in (0, 1)
        )
        return None if possible else False

    def _hello_lost(self, server: int) -> bool:
        """The capture lost bytes where the greeting or the hello would be (one of them is
        seen, the other side's head has a gap), and the server's first reply after the
        greeting is 250, as to EHLO or HELO (FTP, which greets with 220 too, answers USER
        with 331): SMTP whose start is damaged, not another protocol."""
        greeting = self.greetings[server]
        if greeting is None:
            if server not in self.gapped:
                return False
            first = FIRST_REPLY.search(self.heads[server])
        else:
            if 1 - server not in self.gapped:
                return False
            first = FIRST_REPLY.search(self.heads[server], greeting.end())
        return first is not None and first.group(1) == b"250"

    def _tunnel(self, server: int, greeting_at: int) -> str | None:
        if self.heads[1 - server].startswith(b"CONNECT "):
            return "http-connect"
        if self.heads[1 - server][:1] == b"\x05":
            return "socks5"
        return "prefix" if greeting_at else None


def one_sided(flow: TcpFlow) -> Side | None:
    """The side whose packets alone the capture holds, for a connection that carried
    data or whose handshake shows: the other side's existed (data flows only over an established
    connection) but the capture point did not see them (asymmetric routing, a one-way SPAN,
    ``tcpdump -Q out``, a ``src host`` filter)."""
    client, server = flow.endpoints[flow.client], flow.endpoints[flow.server]
    history = flow.history
    # A handshake seen from one side: the client's SYN then its ACK or FIN (the SYN/ACK
    # came), or the server's SYN/ACK (it answers a SYN). A lone stray ACK proves nothing.
    handshake = "S" in history and any(letter in history for letter in "ADF")
    if not server.packets and (client.bytes or handshake):
        return CLIENT
    if not client.packets and (server.bytes or "h" in history):
        return SERVER
    return None


class _Connection(SessionBuilder):
    """One connection's state: its SessionBuilder itself, with the dialogue and the
    tracker's bookkeeping in slots of the same object (a flood holds 100,000 open ones; a
    separate object holding the builder was 88 bytes more each)."""

    __slots__ = ("absorbing", "dialogue", "inside", "records", "sniffer", "starts")

    def __init__(self, flow: TcpFlow, capture: str, sniff: bool) -> None:
        super().__init__(flow, capture)
        self.sniffer = _Sniffer() if sniff else None
        self.starts: dict[int, int] | None = None
        """Direction -> where SMTP starts in it, on a connection recognised by its dialogue."""
        handshake = flow.syn_time_ns is not None or flow.synack_time_ns is not None
        self.dialogue = Dialogue(greeting_expected=handshake, mid_session=not handshake)
        self.inside: tuple[Dialogue, dict[str, int]] | None = None
        """The dialogue inside TLS and the plaintext offset per sender, once decrypted."""
        self.absorbing: MessageScanner | TlsRecords | None = None
        """The message whose body the flow table feeds (``TcpFlow.absorb``), or the walks of
        the TLS records it feeds, if any."""
        self.records: TlsRecords | None = None
        """The walks of the TLS records of both sides, once made (reused from then on)."""

    @property
    def builder(self) -> SessionBuilder:
        """The connection's SessionBuilder: the connection itself."""
        return self


class _Greeted:
    """A connection on an SMTP port whose only event so far is the server's first chunk (its
    greeting, in a flood of connections that say nothing more, scripts/bench/hostile.py
    ``flows``): the chunk and the flow's handshake times as they were then, about 250
    bytes, instead of the dialogue, session and greeting reply read from it (about 1.3 KB,
    session 9). ``open()`` reads the chunk when anything else comes, exactly as on arrival:
    a dialogue is a function of its bytes, and the session reads of the flow only its
    handshake times (the greeting's latency), which a later packet can change, so they are
    put back as they were while it is read. A chunk that looks like TLS is read on arrival
    (the table walks the records of an implicit TLS server: ``SmtpTracker._absorb``)."""

    __slots__ = ("ack", "capture", "data", "flow", "frame", "full", "offset", "syn", "synack",
                 "time_ns")  # fmt: skip

    def __init__(self, event: StreamData, capture: str) -> None:
        flow = self.flow = event.flow
        self.capture = capture
        self.data, self.offset, self.frame, self.time_ns = (
            event.data,
            event.offset,
            event.frame,
            event.time_ns,
        )
        self.syn, self.synack, self.ack = (
            flow.syn_time_ns,
            flow.synack_time_ns,
            flow.handshake_ack_time_ns,
        )
        self.full: _Connection | None = None

    @staticmethod
    def holds(event: FlowEvent) -> bool:
        """Whether a connection's first event can wait unread: a short chunk from the
        server that is not TLS."""
        return (
            type(event) is StreamData
            and event.direction == event.flow.server
            and 0 < len(event.data) <= GREETING_HOLD
            and not looks_like_tls(event.data)
        )

    def open(self) -> _Connection:
        """The connection, its chunk read as it would have been on arrival (made once)."""
        if self.full is None:
            flow = self.flow
            now = flow.syn_time_ns, flow.synack_time_ns, flow.handshake_ack_time_ns
            flow.syn_time_ns, flow.synack_time_ns, flow.handshake_ack_time_ns = (
                self.syn,
                self.synack,
                self.ack,
            )
            try:
                full = _Connection(flow, self.capture, sniff=False)
                SmtpTracker._feed(
                    full, flow, flow.server, self.offset, self.data, self.frame, self.time_ns
                )
                SmtpTracker._absorb(full, flow)
            finally:
                flow.syn_time_ns, flow.synack_time_ns, flow.handshake_ack_time_ns = now
            self.full = full
        return self.full

    @property
    def builder(self) -> SessionBuilder:
        return self.open()

    @property
    def dialogue(self) -> Dialogue:
        return self.open().dialogue

    @property
    def starts(self) -> None:
        return None


class SmtpTracker:
    """Feed it every FlowEvent; it returns a Session when an SMTP connection ends."""

    def __init__(
        self,
        capture: str,
        extra_ports: Iterable[int] = (),
        hold_tls: Callable[[], bool] | None = None,
    ) -> None:
        self.capture = capture
        self.ports = frozenset(SMTP_PORTS) | frozenset(extra_ports)
        self.hold_tls = hold_tls
        """Asked when a TLS connection ends: keep it for its decrypted bytes? (Keys may turn
        up in the capture itself, so the answer can change as it is read.)"""
        self._connections: dict[int, _Connection] = {}
        self._ignored: set[int] = set()
        self._held: dict[int, _Connection] = {}
        """tcp.stream -> an ended connection that went into TLS, awaiting its plaintext."""
        self.seen = 0
        """SMTP connections met so far, ended or not (on an SMTP port, or recognised by
        their dialogue on another): what a progress line can count while sessions are
        still open, since a session is only handed out once its connection has ended."""

    def add(self, event: FlowEvent) -> Session | None:
        flow = event.flow
        if flow.stream in self._ignored:
            if isinstance(event, FlowEnded):
                self._ignored.discard(flow.stream)
            return None
        connection = self._connections.get(flow.stream)
        if connection is None:
            connection = self._start(flow, event)
            if connection is None:
                return None
        elif type(connection) is _Greeted:
            connection = self._connections[flow.stream] = connection.open()
        absorbing = connection.absorbing
        if absorbing is not None and absorbing is connection.records:
            # What the core walked of the TLS records since the last event, first.
            tls = connection.dialogue.tls
            for sender, server in ((CLIENT, False), (SERVER, True)):
                if absorbing.walking(server):
                    tls.walked(sender, *absorbing.counts(server))
        kind = type(event)
        if kind is StreamData:
            if connection.sniffer is None:
                self._feed(
                    connection,
                    flow,
                    event.direction,
                    event.offset,
                    event.data,
                    event.frame,
                    event.time_ns,
                )
            else:
                self._sniff(connection, event)
        elif kind is StreamGap:
            if connection.sniffer is None:
                self._gap(connection, flow, event)
            else:
                connection.sniffer.gap(event)
        else:
            return self._end(connection, flow)
        if connection.starts is None:
            self._absorb(connection, flow)
        return None

    @staticmethod
    def _absorb(connection: _Connection, flow: TcpFlow) -> None:
        """What the flow table feeds the client's bytes to from now on (``flow.absorb``):
        the message body being read, or the walks of the TLS records of each side whose
        records the scanner would only count (started where the scanner is), or nothing."""
        dialogue = connection.dialogue
        body = dialogue.body()
        target: MessageScanner | TlsRecords | None = body
        if body is None and dialogue.tls is not None:  # (no TLS scanner: nothing encrypted)
            walks = [
                None if (tls := dialogue.encrypted(sender)) is None else tls.records_walk(sender)
                for sender in (CLIENT, SERVER)
            ]
            if walks != [None, None]:
                target = connection.records
                if target is None:
                    target = connection.records = TlsRecords()
                target.walk(False, walks[0])
                target.walk(True, walks[1])
        if target is not connection.absorbing:
            connection.absorbing = target
            flow.absorb = target if body is None else body.sink()

    def _start(self, flow: TcpFlow, event: FlowEvent) -> _Connection | None:
        """The connection of a flow's first event; None when that event is held unread
        (``_Greeted``)."""
        sniff = not {flow.endpoints[0].port, flow.endpoints[1].port} & self.ports
        if sniff and type(event) is FlowEnded:
            return None  # no bytes: not SMTP (the flow table holds a sniffed flow's events)
        if not sniff:
            self.seen += 1
            if _Greeted.holds(event):
                self._connections[flow.stream] = _Greeted(event, self.capture)
                return None
        connection = self._connections[flow.stream] = _Connection(flow, self.capture, sniff)
        return connection

    def _sniff(self, connection: _Connection, event: StreamData) -> None:
        """A chunk of a connection on another port not recognised yet."""
        sniffer = connection.sniffer
        sniffer.add(event)
        decision = sniffer.decide(final=False)
        if decision is False:
            self._ignore(event.flow)
        elif decision is not None:
            self._recognised(connection, event.flow, decision)

    def _recognised(self, connection: _Connection, flow: TcpFlow, decision) -> None:
        server, starts, tunnel = decision
        self.seen += 1
        if flow.server != server and flow.role_from in ("port", "guess"):
            flow.client, flow.role_from = 1 - server, "smtp"
        connection.builder.session.tunnel = tunnel
        connection.dialogue = Dialogue(greeting_expected=True)
        connection.starts = starts
        chunks, connection.sniffer = connection.sniffer.chunks, None
        for chunk in chunks:
            if type(chunk) is StreamGap:
                self._gap(connection, flow, chunk)
            else:
                self._feed(connection, flow, *chunk)

    @staticmethod
    def _gap(connection: _Connection, flow: TcpFlow, event: StreamGap) -> None:
        sender = SERVER if event.direction == flow.server else CLIENT
        connection.dialogue.gap(sender, event.length, event.frame, event.time_ns, event.reason)
        SmtpTracker._drain(connection)

    @staticmethod
    def _feed(connection, flow, direction, offset, data, frame, time_ns) -> None:
        starts = connection.starts
        if starts:
            start = starts.get(direction, 0)
            if offset + len(data) <= start:
                return
            if offset < start:
                data, offset = data[start - offset :], start
        sender = SERVER if direction == flow.server else CLIENT
        connection.dialogue.feed(sender, data, offset, frame, time_ns)
        SmtpTracker._drain(connection)

    @staticmethod
    def _drain(connection: _Connection) -> None:
        events = connection.dialogue.take()
        if events:
            add = connection.add  # the connection is its own SessionBuilder
            for item in events:
                add(item)

    def _ignore(self, flow: TcpFlow) -> None:
        flow.ignore_payload = True
        self._connections.pop(flow.stream, None)
        self._ignored.add(flow.stream)

    def _end(self, connection: _Connection, flow: TcpFlow) -> Session | None:
        del self._connections[flow.stream]
        # A chunk handed on with the flow's end may have set it after the table cleared it.
        flow.absorb = connection.absorbing = connection.records = None
        if connection.sniffer is not None:
            decision = connection.sniffer.decide(final=True)
            if not decision:
                return None
            self._recognised(connection, flow, decision)
        dialogue = connection.dialogue
        connection.builder.session.one_sided = one_sided(flow)
        dialogue.finish(flow.last_frame, flow.last_time_ns)
        self._drain(connection)
        if dialogue.tls is not None and self.hold_tls is not None and self.hold_tls():
            self._held[flow.stream] = connection
            return None
        return connection.builder.finish(dialogue.tls)

    # -- TLS sessions and their decrypted bytes ----------------------------------

    def held(self) -> list[tuple[Session, TlsScanner]]:
        """The sessions that went into TLS and wait for their plaintext, with their TLS
        scanner (its facts are the session's only once it is finished)."""
        return [(c.builder.session, c.dialogue.tls) for c in self._held.values()]

    def decrypted(self, stream: int, sender: Side, data: bytes, frame: int, time_ns: int) -> None:
        """Application data that ``sender`` sent inside TLS on ``stream``, in capture order,
        with the frame that completed its record."""
        connection = self._held[stream]
        if connection.inside is None:
            session = connection.builder.session
            # After STARTTLS the client starts over with EHLO (RFC 3207 4.2); on port 465
            # the server greets inside TLS (RFC 8314 3.3).
            implicit = session.tls.mode == "implicit"
            connection.inside = (Dialogue(greeting_expected=implicit), {CLIENT: 0, SERVER: 0})
            connection.builder.decrypting = True
            session.tls.decrypted = True
        dialogue, offsets = connection.inside
        dialogue.feed(sender, data, offsets[sender], frame, time_ns)
        offsets[sender] += len(data)
        for item in dialogue.take():
            connection.builder.add(item)

    def finish_held(self) -> list[Session]:
        """Every held session, finished, decrypted or not."""
        sessions = []
        for connection in self._held.values():
            if connection.inside is not None:
                flow = connection.builder.session.flow
                dialogue = connection.inside[0]
                dialogue.finish(flow.last_frame, flow.last_time_ns)
                for item in dialogue.take():
                    connection.builder.add(item)
            sessions.append(connection.builder.finish(connection.dialogue.tls))
        self._held.clear()
        return sessions

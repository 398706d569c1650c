"""TCP stream events in, SMTP sessions out: one Dialogue and one SessionBuilder per connection.

Connections on the SMTP ports (25, 465, 587 and every ``--port``) are SMTP sessions even
when nothing was said (refused, unreachable). On any other port a connection is SMTP when
its first bytes show a server greeting ``220`` and a client ``EHLO``/``HELO``/``LHLO``, also
after a SOCKS5 or HTTP CONNECT exchange; the bytes before that are skipped.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from pcapsmtp.smtp.dialogue import Dialogue
from pcapsmtp.smtp.events import CLIENT, SERVER
from pcapsmtp.smtp.model import Session
from pcapsmtp.smtp.session import SessionBuilder
from pcapsmtp.tcp.model import FlowEnded, FlowEvent, StreamData, StreamGap, TcpFlow

SMTP_PORTS = (25, 465, 587)
SNIFF_LIMIT = 4096
"""Bytes per direction looked at to recognise SMTP on another port."""
SNIFF_HOLD = 256 * 1024
"""Bytes held while undecided: a connection that sends more before showing both a greeting
and a hello is not SMTP (and would otherwise be buffered whole)."""
GREETING_LINE = re.compile(rb"(?:\A|(?<=[\n\x00-\x08\x0e-\x1f\x7f-\xff]))220[ -][^\r\n]*\r?\n")
HELLO_LINE = re.compile(
    rb"(?:\A|(?<=[\n\x00-\x08\x0e-\x1f\x7f-\xff]))(?:EHLO|HELO|LHLO)[ \t][^\r\n]*\r?\n",
    re.IGNORECASE,
)


@dataclass(slots=True)
class _Sniffer:
    """The first bytes of a connection on an unknown port, in arrival order."""

    chunks: list[tuple[int, int, bytes, int, int]] = field(default_factory=list)
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

    def _tunnel(self, server: int, greeting_at: int) -> str | None:
        if self.heads[1 - server].startswith(b"CONNECT "):
            return "http-connect"
        if self.heads[1 - server][:1] == b"\x05":
            return "socks5"
        return "prefix" if greeting_at else None


class _Connection:
    __slots__ = ("builder", "dialogue", "sniffer", "starts")

    def __init__(self, flow: TcpFlow, capture: str, sniff: bool) -> None:
        self.builder = SessionBuilder(flow, capture)
        self.sniffer = _Sniffer() if sniff else None
        self.starts: dict[int, int] = {}
        greeting_expected = flow.syn_time_ns is not None or flow.synack_time_ns is not None
        self.dialogue = Dialogue(greeting_expected=greeting_expected)


class SmtpTracker:
    """Feed it every FlowEvent; it returns a Session when an SMTP connection ends."""

    def __init__(self, capture: str, extra_ports: Iterable[int] = ()) -> None:
        self.capture = capture
        self.ports = frozenset(SMTP_PORTS) | frozenset(extra_ports)
        self._connections: dict[int, _Connection] = {}
        self._ignored: set[int] = set()

    def add(self, event: FlowEvent) -> Session | None:
        flow = event.flow
        if flow.stream in self._ignored:
            if isinstance(event, FlowEnded):
                self._ignored.discard(flow.stream)
            return None
        connection = self._connections.get(flow.stream)
        if connection is None:
            connection = self._start(flow)
            if connection is None:
                return None
        if isinstance(event, StreamData):
            self._data(connection, event)
        elif isinstance(event, StreamGap):
            if connection.sniffer is None:
                sender = SERVER if event.direction == flow.server else CLIENT
                connection.dialogue.gap(
                    sender, event.length, event.frame, event.time_ns, event.reason
                )
                self._drain(connection)
        else:
            return self._end(connection, flow)
        return None

    def _start(self, flow: TcpFlow) -> _Connection | None:
        ports = {flow.endpoints[0].port, flow.endpoints[1].port}
        connection = _Connection(flow, self.capture, sniff=not ports & self.ports)
        self._connections[flow.stream] = connection
        return connection

    def _data(self, connection: _Connection, event: StreamData) -> None:
        sniffer = connection.sniffer
        if sniffer is None:
            self._feed(
                connection,
                event.flow,
                event.direction,
                event.offset,
                event.data,
                event.frame,
                event.time_ns,
            )
            return
        sniffer.add(event)
        decision = sniffer.decide(final=False)
        if decision is False:
            self._ignore(event.flow)
        elif decision is not None:
            self._recognised(connection, event.flow, decision)

    def _recognised(self, connection: _Connection, flow: TcpFlow, decision) -> None:
        server, starts, tunnel = decision
        if flow.server != server and flow.role_from in ("port", "guess"):
            flow.client, flow.role_from = 1 - server, "smtp"
        connection.builder.session.tunnel = tunnel
        connection.dialogue = Dialogue(greeting_expected=True)
        connection.starts = starts
        chunks, connection.sniffer = connection.sniffer.chunks, None
        for direction, offset, data, frame, time_ns in chunks:
            self._feed(connection, flow, direction, offset, data, frame, time_ns)

    def _feed(self, connection, flow, direction, offset, data, frame, time_ns) -> None:
        start = connection.starts.get(direction, 0)
        if offset + len(data) <= start:
            return
        if offset < start:
            data, offset = data[start - offset :], start
        sender = SERVER if direction == flow.server else CLIENT
        connection.dialogue.feed(sender, data, offset, frame, time_ns)
        self._drain(connection)

    @staticmethod
    def _drain(connection: _Connection) -> None:
        for item in connection.dialogue.take():
            connection.builder.add(item)

    def _ignore(self, flow: TcpFlow) -> None:
        flow.ignore_payload = True
        self._connections.pop(flow.stream, None)
        self._ignored.add(flow.stream)

    def _end(self, connection: _Connection, flow: TcpFlow) -> Session | None:
        del self._connections[flow.stream]
        if connection.sniffer is not None:
            decision = connection.sniffer.decide(final=True)
            if not decision:
                return None
            self._recognised(connection, flow, decision)
        dialogue = connection.dialogue
        dialogue.finish(flow.last_frame, flow.last_time_ns)
        self._drain(connection)
        return connection.builder.finish(dialogue.tls)

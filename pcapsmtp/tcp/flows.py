"""The flow table: TCP segments and ICMP errors in, ordered stream events out.

Flows are numbered like Wireshark 4.0's ``tcp.stream`` (packet-tcp.c, ``dissect_tcp``):
a number for every 4-tuple in the order of its first packet, and a new number only when
a SYN (without ACK) carries another initial sequence number than the one the 4-tuple's
conversation started with (``tcp.analysis.reused_ports``). Nothing else, neither a
reset, a close nor any time passed, starts a new number: a port scanner's second probe
or a SYN retried with the same initial sequence number an hour after the reset continues
the old stream (and its sequence analysis, so the SYN is a retransmission). An ICMP error
quoting a TCP header (16 bytes or more, see ``QuotedPacket.transport_bytes``) of a
4-tuple the capture has no packet of yet starts a stream number too, as Wireshark
dissects the quoted header as TCP (``get_tcp_conversation_data``); the quote sets no
initial sequence number.

When a flow ends and what is kept of it after, the table's bounds: pcapsmtp.tcp.limits.

The table is the core's (core/src/tcp/table.rs, bound in core/src/python_table.rs): one
call per packet, the events back in a batch (or, with ``batch_events``, one call per
decoded batch until a packet makes events, no TcpSegment objects). ``FlowTracker`` turns
them into
``StreamData`` / ``StreamGap`` / ``FlowEnded`` and keeps a Python ``TcpFlow`` only for a
flow its consumer was handed (an event named it, or ``flow_of``), made at the first such
event: a SYN flood makes none until its flows end. While a flow lives its ``TcpFlow``
holds what stays (stream, endpoints' addresses, client, first frame, ``continues``) and the
handshake times; everything else (counters, notes, state, history) is filled in when it
ends. A consumer's changes to a live flow (``client`` and ``role_from`` once the dialogue
tells the server, ``ignore_payload``, ``absorb``) reach the table before the next packet.

``absorb`` (issue 21): while a consumer sets it on a flow, the client's in-order bytes
are offered to that sink in the core before they would become ``StreamData`` (SMTP's
message bodies go straight into the message's scan), and those it takes make no event;
the table hands on as events the chunk the sink refuses (the end of the message), gaps,
and the flow's chunks that follow an event of it the consumer has not read yet, so the
consumer sees everything in the order it would have (core/src/tcp/table.rs, ``Absorber``).
What the object is, tcp/ does not know.

The ``TcpFlow`` objects are made and filled in by ``FlowObjects``, a base of
``FlowTracker`` (pcapsmtp.tcp.flow_objects).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from pcapsmtp._core import FlowTable, SegmentBatch, tcp_options
from pcapsmtp.capture.model import IPPROTO_TCP, IcmpError, TcpSegment
from pcapsmtp.tcp.flow_objects import NOTHING, FlowObjects
from pcapsmtp.tcp.limits import table_limits
from pcapsmtp.tcp.model import (
    FlowEnded,
    FlowEvent,
    Handshake,
    LiveEndpoint,
    StreamData,
    StreamGap,
    TcpFlow,
)

FINISH_BATCH = 16
"""Flows ended at a time when the capture ends, their events handed on before the next: each
batch's end facts and sessions are made at once (about 28 KB traced a flow), over the live
sessions not yet freed, so Python's allocator takes new arenas it keeps; 256 put the
generated 3 GB capture's peak 11 MiB above the end of its reading, 16 puts it 2 MiB above
(docs/performance-log.md, "Flat with the capture's length")."""


def parse_options(options: bytes) -> Handshake:
    """The handshake options of a SYN or SYN/ACK (RFC 9293, RFC 7323, RFC 2018)."""
    return Handshake(*tcp_options(options))


class FlowTracker(FlowObjects):
    """Turns segments into flows and stream events; ICMP errors are tied to their flow."""

    def __init__(self, server_ports: Iterable[int] = ()) -> None:
        self.server_ports = frozenset(server_ports)
        """Ports a server listens on, given by the caller (the SMTP ports): they name the
        client of a flow whose handshake was not captured, never the numbering. Without
        them the client is guessed from the port numbers alone."""
        self.unmatched_icmp: list[IcmpError] = []
        """ICMP errors about connections the capture holds no live packet of (none yet,
        or of a flow already ended)."""
        self.icmp_streams: dict[int, int] = {}
        """frame -> tcp.stream of the unmatched ICMP errors Wireshark gives one."""
        self.icmp_starts: list[int] = []
        """Frames of the ICMP errors that began a tcp.stream (before any of its packets)."""
        self.warnings: list[str] = []
        """Directions whose out-of-order data reached the reassembly bound: what was
        skipped (the gaps say where)."""
        self.warned_at: list[int] = []
        """Where each of ``warnings`` came in the capture: twice the flows ended before it,
        plus one for a warning between flow ends (the flow table's own). The same in every
        shard of ``only``, so their warnings merge into one pass's order."""
        self._ends = 0
        """Flows ended so far (every shard's)."""
        self._sniffing = False
        self._table = FlowTable(sorted(self.server_ports), table_limits())
        self._flows: dict[int, TcpFlow] = {}
        """The live flows the consumer was handed, by the table's id."""
        self._handed: list[TcpFlow] = []
        """Flows handed out since the last packet: what the consumer changed of them goes
        to the table before the next one."""
        self._out: list[FlowEvent] = []
        self._servers: dict[tuple[bytes, int], LiveEndpoint] = {}
        """(ip, port) -> the endpoint the live flows of that server share."""
        self._opened: dict[tuple[int, str], tuple] = {}
        """(client, role_from) -> what a flow opened with told the table (``TcpFlow._table``):
        one tuple for all of them."""
        self.only: tuple[int, int] | None = None
        """``(shard, shards)``: the consumer is handed only the flows whose stream number is
        ``shard`` modulo ``shards`` (one process of ``--jobs N``, pcapsmtp.analysis.rotated).
        The others are numbered and analysed in the core as ever, their payload ignored from
        their first event on, but no ``TcpFlow`` is made of them and none of their events
        comes out, nor any warning (``warned_at`` tells where the owner's go)."""

    def sniff(self, limit: int, hold: int) -> None:
        """Hand on no event of a flow on a port that is no server port while its first
        ``limit`` bytes per direction show neither ``220`` nor ``hlo``/``helo`` (any
        case); ignore its payload once a direction has ``limit`` bytes or more than ``hold``
        bytes came, and drop what was held (its end still comes); hand all held on once
        one does (core/src/tcp/sniff.rs). For a consumer that, like the SMTP tracker's
        sniffer, decides on those bytes alone that such a flow is not its protocol: so a
        flow on no server port that ends without the consumer ever being handed it ends
        bare, its numbers, addresses, first and last frames and times only (no notes,
        state, history or endpoint figures: 1,398 of the mixed 1 GB capture's 1,811 flows,
        their ends 29 -> 10 ms of Python)."""
        self._table.sniff(limit, hold)
        self._sniffing = True

    @property
    def streams(self) -> int:
        """Stream numbers given so far."""
        return self._table.streams

    @property
    def evicted(self) -> int:
        """Flows ended early because MAX_FLOWS were open at once."""
        return self._table.evicted

    def events(self, packets: Iterable[TcpSegment | IcmpError]) -> Iterator[FlowEvent]:
        segment, convert = self._table.segment, self._convert  # add(), unrolled
        for packet in packets:
            if self._handed:
                self._sync()
            if type(packet) is TcpSegment:
                found = segment(packet)
                if found is not None:
                    yield from convert(found)
            else:
                self._icmp(packet)
        for batch in self._finishing():
            yield from batch

    def batch_events(
        self,
        batches: Iterable[SegmentBatch],
        tick: Callable[[], None] | None = None,
        every: int = 0,
    ) -> Iterator[FlowEvent]:
        """``events`` for the decoder's batches (pcapsmtp.capture.segment_batches): the
        segments go through the table in the core, without a TcpSegment object each; the
        events come out the same, in the same order. With ``tick``, it is called before
        every ``every``-th packet (counting from 1), after the events of the packets
        before it were taken."""
        step, convert = self._table.step, self._convert
        done = 0
        """Packets of the batches before this one."""
        for batch in batches:
            size = len(batch)
            stops = [size]
            if tick is not None and every > 0:
                first = (every - 1 - done) % every
                stops = [*range(first, size, every), size]
            for stop in stops:
                while True:
                    if self._handed:
                        self._sync()
                    found = step(batch, stop)
                    if found is None:
                        break
                    if type(found) is list:
                        yield from convert(found)
                    else:
                        self._icmp(found)
                if stop < size and tick is not None:
                    tick()
            done += size
        for events in self._finishing():
            yield from events

    def add(self, packet: TcpSegment | IcmpError) -> bool:
        """Process one packet; True when events are waiting in ``take()``."""
        if self._handed:
            self._sync()
        if isinstance(packet, TcpSegment):
            found = self._table.segment(packet)
            if found is not None:
                self._out += self._convert(found)
        else:
            self._icmp(packet)
        return bool(self._out)

    def take(self) -> list[FlowEvent]:
        out, self._out = self._out, []
        return out

    def finish(self) -> None:
        """The capture ended: every flow still in the table ends now."""
        for batch in self._finishing():
            self._out += batch

    def _finishing(self) -> Iterator[list[FlowEvent]]:
        """The events of the flows ending with the capture, FINISH_BATCH flows at a time
        (made when taken: the Python objects of 100,000 open flows are never all there)."""
        if self._handed:
            self._sync()
        done = False
        while not done:
            done, found = self._table.finish(FINISH_BATCH)
            yield self._convert(found)
        self._handed = []

    def flow_of(self, seg: TcpSegment) -> TcpFlow | None:
        """The live flow a segment belongs to (after ``add``)."""
        found = self._table.flow_of(seg.src, seg.sport, seg.dst, seg.dport)
        if found is None:
            return None
        flow_id, head = found
        flow = self._flows.get(flow_id) if head is None else self._open(head)
        self._handed.append(flow)
        return flow

    def _convert(self, found: list[tuple]) -> list[FlowEvent]:
        flows, handed, out, only = self._flows, self._handed, [], self.only
        for event in found:
            kind = event[0]
            if kind == 0:
                _, flow_id, direction, offset, data, frame, time_ns = event
                flow = flows.get(flow_id)
                if flow is None:
                    continue  # not of the ``only`` shard
                out.append(StreamData(flow, direction, offset, data, frame, time_ns))
                handed.append(flow)
            elif kind == 1:
                _, flow_id, direction, offset, length, frame, time_ns, reason = event
                flow = flows.get(flow_id)
                if flow is None:
                    continue
                out.append(StreamGap(flow, direction, offset, length, frame, time_ns, reason))
                handed.append(flow)
            elif kind == 2:
                if only is None or event[1][1] % only[1] == only[0]:
                    self._open(event[1])
                else:
                    self._ignore(event[1])
            elif kind == 3:
                flow = flows.get(event[1])
                if flow is not None:
                    flow.syn_time_ns, flow.synack_time_ns, flow.handshake_ack_time_ns = event[2:]
            elif kind == 4:
                ended = event[2]
                self._ends += 1
                if only is not None and ended[0][1] % only[1] != only[0]:
                    continue  # another shard's: its warnings are that shard's to give
                flow = flows.pop(event[1], None)
                out.append(FlowEnded(self._ended(flow, ended)))
            else:
                self.warnings.append(event[1])
                self.warned_at.append(2 * self._ends + 1)
        return out

    def _icmp(self, error: IcmpError) -> None:
        quoted = error.quoted
        if quoted is None or quoted.sport is None or quoted.proto != IPPROTO_TCP:
            self.unmatched_icmp.append(error)
            return
        mtu = error.mtu if error.is_too_big else None
        found = self._table.icmp(
            error.frame,
            quoted.src,
            quoted.sport,
            quoted.dst,
            quoted.dport,
            quoted.transport_bytes,
            mtu,
        )
        if found[0] == 0:
            _, flow_id, head = found
            only = self.only
            if head is None:
                flow = self._flows.get(flow_id)
                if flow is None:
                    return  # another shard's (``only``)
            elif only is None or head[1] % only[1] == only[0]:
                flow = self._open(head)
            else:
                self._ignore(head)
                return
            if flow.icmp is NOTHING:
                flow.icmp = []
            flow.icmp.append(error)
            return
        self.unmatched_icmp.append(error)
        if found[0] == 2:
            _, stream, started = found
            if started:
                self.icmp_starts.append(error.frame)
            self.icmp_streams[error.frame] = stream


def track_flows(
    packets: Iterable[TcpSegment | IcmpError], server_ports: Iterable[int] = ()
) -> Iterator[FlowEvent]:
    """Stream events of every TCP flow, in capture order, each flow ended by FlowEnded."""
    return FlowTracker(server_ports).events(packets)

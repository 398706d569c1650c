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

Memory stays bounded by the live connections (and a bounded record of ended ones): a
flow is ended (``FlowEnded``) when a new SYN reuses its ports, ``LINGER_NS`` of capture
time after it closed, after ``IDLE_NS`` without packets, or at the end of the capture.
What the numbering needs of an ended flow (its stream number, endpoints and sequence
analysis, about 1 KB) is kept, for up to ``MAX_ENDED`` ended flows: a later packet of
the same 4-tuple starts a new flow (``TcpFlow.continues``) with the old stream number
and analysis state.

Whether a flow has ended that way is decided by its own packets, their times and frame
numbers, when its next packet comes (the periodic sweep only frees what that would end):
never by the packets of other flows. So the flows of one 4-tuple come out the same when
they are tracked on their own, which is what stitching a rotated capture set rests on
(pcapsmtp.analysis.rotated).

What each segment changes beyond the endpoint counters (Wireshark's sequence analysis,
Zeek's state and history, the data awaiting acknowledgement, the zero windows) is the
core's ``FlowAnalysis`` (core/src/tcp/): one call per segment, its flags back.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from pcapsmtp._core import FlowAnalysis, tcp_options
from pcapsmtp.capture.addresses import endpoint_name
from pcapsmtp.capture.model import IPPROTO_TCP, IcmpError, TcpSegment
from pcapsmtp.tcp.flowkey import flow_key
from pcapsmtp.tcp.model import (
    IP_ID_STEP,
    TH_ACK,
    TH_FIN,
    TH_RST,
    TH_SYN,
    WIRESHARK_NAMES,
    ConnState,
    Endpoint,
    Flag,
    FlowEnded,
    FlowEvent,
    Handshake,
    SegmentNote,
    StreamData,
    StreamGap,
    TcpFlow,
)
from pcapsmtp.tcp.reassembly import MAX_PENDING_BYTES, Chunk, StreamReassembler
from pcapsmtp.tcp.sequence import MASK

LINGER_NS = 10 * 1_000_000_000
LINGER_FRAMES = 2_000
"""A closed flow stays this long, and this many frames, in the table for late packets."""
IDLE_NS = 15 * 60 * 1_000_000_000
IDLE_FRAMES = 100_000
"""A flow silent this long and this many frames is ended (RFC 5321's longest timeout is 10 min).

Both a time and a frame distance are required, so a bogus timestamp in a small capture
(they exist: a frame dated 2063 among frames of 2015) never ends a flow early.
"""
MAX_FLOWS = 100_000
"""Flows open at once. Past it the least recently active 1 % are ended early (a SYN flood
or a scan otherwise grows the table without bound); ``FlowTracker.evicted`` counts them."""
SWEEP_EVERY = 10_000
"""TCP segments between two sweeps of the table (which only free memory, see above)."""
MAX_NOTES = 20_000
"""Segment notes kept per flow; counts go on past it."""
MAX_ENDED = 100_000
"""Ended flows (and ICMP-only conversations) remembered for their stream number, the
oldest forgotten first: a 4-tuple that comes back after this many others have ended gets
a new number where Wireshark continues the old one (and every later number is one more).
About 1 KB each (938 bytes measured with tracemalloc on CPython 3.11, the retired
``FlowAnalysis`` included), so at most about 100 MB, reached only by captures of more
than 100,000 connections."""
QUOTED_TCP_BYTES = 16
"""Bytes of a quoted TCP header Wireshark needs to look up its conversation (up to the
window field; shorter quotes end its TCP dissection before that)."""

ANY_RETRANSMISSION = Flag.ANY_RETRANSMISSION.value
COUNTED = [(flag.value, name) for flag, name in WIRESHARK_NAMES.items()]
"""(flag bits, Wireshark name) for the per-endpoint counts, as ints (the flags of
``FlowAnalysis.segment``)."""


def parse_options(options: bytes) -> Handshake:
    """The handshake options of a SYN or SYN/ACK (RFC 9293, RFC 7323, RFC 2018)."""
    return Handshake(*tcp_options(options))


class _Ended:
    """What stream numbering needs of an ended flow, or of a conversation only ICMP errors
    quoted (``analysis`` None): Wireshark's conversation, still there for later packets."""

    __slots__ = ("analysis", "client", "first", "frame", "role_from", "stream")

    def __init__(
        self,
        stream: int,
        frame: int,
        first: tuple | None = None,
        client: int = 0,
        role_from: str = "",
        analysis: FlowAnalysis | None = None,
    ) -> None:
        self.stream = stream
        self.frame = frame
        """Where the stream began: the first frame of its first flow, or the ICMP error."""
        self.first = first
        """(ip, port) of the flow's endpoint 0."""
        self.client = client
        self.role_from = role_from
        self.analysis = analysis
        """Retired (``FlowAnalysis.retire``): what a later flow continues."""


class _Live:
    """A flow and the machinery filling it."""

    __slots__ = ("analysis", "closed_at", "flow", "isn", "reassembly")

    def __init__(self, flow: TcpFlow, previous: FlowAnalysis | None = None) -> None:
        self.flow = flow
        self.analysis = FlowAnalysis(flow.client != 0, previous)
        self.reassembly: list[StreamReassembler | None] = [None, None]
        """Per direction, made when that direction first needs it (``reassembler``): a
        SYN flood or a scan holds 100,000 flows that never carry a byte."""
        self.isn: list[int | None] = [None, None]
        """Per direction, the SYN's sequence number while its reassembler is not made yet."""
        self.closed_at: int | None = None


def _reassembler(live: _Live, d: int) -> StreamReassembler:
    reassembler = live.reassembly[d]
    if reassembler is None:
        reassembler = live.reassembly[d] = StreamReassembler()
        if live.isn[d] is not None:
            reassembler.start(live.isn[d])
    return reassembler


class FlowTracker:
    """Turns segments into flows and stream events; ICMP errors are tied to their flow."""

    def __init__(self, server_ports: Iterable[int] = ()) -> None:
        self.server_ports = frozenset(server_ports)
        """Ports a server listens on, given by the caller (the SMTP ports): they name the
        client of a flow whose handshake was not captured, never the numbering. Without
        them the client is guessed from the port numbers alone."""
        self.streams = 0
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
        self._table: dict[tuple, _Live] = {}
        self._ended: dict[tuple, _Ended] = {}
        self._out: list[FlowEvent] = []
        self._packets = 0
        self.evicted = 0
        """Flows ended early because MAX_FLOWS were open at once."""

    def events(self, packets: Iterable[TcpSegment | IcmpError]) -> Iterator[FlowEvent]:
        segment, icmp = self._segment, self._icmp  # add(), unrolled: it runs for every packet
        for packet in packets:
            if type(packet) is TcpSegment:
                segment(packet)
            else:
                icmp(packet)
            if self._out:
                yield from self.take()
        self.finish()
        yield from self.take()

    def add(self, packet: TcpSegment | IcmpError) -> bool:
        """Process one packet; True when events are waiting in ``take()``."""
        if isinstance(packet, TcpSegment):
            self._segment(packet)
        else:
            self._icmp(packet)
        return bool(self._out)

    def take(self) -> list[FlowEvent]:
        out, self._out = self._out, []
        return out

    def finish(self) -> None:
        """The capture ended: every flow still in the table ends now."""
        for key in list(self._table):
            self._end(key, remember=False)
        self._ended.clear()

    def flow_of(self, seg: TcpSegment) -> TcpFlow | None:
        """The live flow a segment belongs to (after ``add``)."""
        live = self._table.get(flow_key(seg.src, seg.sport, seg.dst, seg.dport))
        return live.flow if live else None

    def _segment(self, seg: TcpSegment) -> None:
        self._packets += 1
        if self._packets % SWEEP_EVERY == 0:
            self._sweep(seg.time_ns, seg.frame)
        key = flow_key(seg.src, seg.sport, seg.dst, seg.dport)
        live = self._table.get(key)
        if (
            live is not None
            and (live.closed_at is not None or seg.time_ns - live.flow.last_time_ns > IDLE_NS)
            and _expired(live, seg.time_ns, seg.frame)
        ):
            self._end(key)
            live = None
        flags = seg.flags
        if live is None and self._ended:
            ended = self._ended.pop(key, None)
            if ended is not None:
                live = self._table[key] = self._revive(ended, seg)
        reused = False
        if live is not None and flags & TH_SYN:
            reused = live.analysis.reuses(self._direction(live.flow, seg), seg.seq)
            if reused and not flags & TH_ACK:
                if live.flow.last_frame:
                    self._end(key, remember=False)
                else:  # revived for this SYN, which starts a new stream instead
                    del self._table[key]
                live = None
        if live is None:
            if len(self._table) >= MAX_FLOWS:
                self._evict()
            live = self._table[key] = _Live(self._new_flow(seg))
        if live.flow.ignore_payload:
            self._number_only(live, seg)
        else:
            self._update(live, seg, reused)

    def _revive(self, ended: _Ended, seg: TcpSegment) -> _Live:
        """A flow continuing the stream number (and sequence analysis) of an ended flow, or
        of a conversation only ICMP errors quoted so far."""
        if ended.analysis is None:
            flow = self._new_flow(seg, ended.stream)
            flow.continues = ended.frame
            return _Live(flow)
        first = Endpoint(*ended.first)
        if (seg.src, seg.sport) == ended.first:
            second = Endpoint(seg.dst, seg.dport)
        else:
            second = Endpoint(seg.src, seg.sport)
        flow = TcpFlow(
            stream=ended.stream,
            endpoints=(first, second),
            client=ended.client,
            first_frame=seg.frame,
            first_time_ns=seg.time_ns,
            role_from=ended.role_from,
            continues=ended.frame,
        )
        return _Live(flow, ended.analysis)

    def _remember(self, key: tuple, ended: _Ended) -> None:
        self._ended[key] = ended
        if len(self._ended) > MAX_ENDED:
            del self._ended[next(iter(self._ended))]

    def _new_flow(self, seg: TcpSegment, stream: int | None = None) -> TcpFlow:
        first = Endpoint(seg.src, seg.sport)
        second = Endpoint(seg.dst, seg.dport)
        client, role_from = 0, "syn"
        if seg.flags & TH_SYN:
            if seg.flags & TH_ACK:
                client, role_from = 1, "syn-ack"
        elif seg.dport in self.server_ports and seg.sport not in self.server_ports:
            role_from = "port"
        elif seg.sport in self.server_ports and seg.dport not in self.server_ports:
            client, role_from = 1, "port"
        else:
            client, role_from = (0 if seg.sport >= seg.dport else 1), "guess"
        if stream is None:
            stream = self.streams
            self.streams += 1
        return TcpFlow(
            stream=stream,
            endpoints=(first, second),
            client=client,
            first_frame=seg.frame,
            first_time_ns=seg.time_ns,
            role_from=role_from,
        )

    @staticmethod
    def _direction(flow: TcpFlow, seg: TcpSegment) -> int:
        first = flow.endpoints[0]
        return 0 if first.port == seg.sport and first.ip == seg.src else 1

    def _update(self, live: _Live, seg: TcpSegment, reused: bool) -> None:
        flow = live.flow
        first = flow.endpoints[0]
        d = 0 if first.port == seg.sport and first.ip == seg.src else 1  # _direction, inlined
        sender = flow.endpoints[d]
        flags, length, time_ns = seg.flags, seg.length, seg.time_ns
        flow.last_frame, flow.last_time_ns = seg.frame, time_ns

        if flags & (TH_FIN | TH_RST) and sender.closed_frame is None:
            sender.closed_frame = seg.frame
            peer = flow.endpoints[1 - d]
            if peer.packets:
                sender.peer_silent_ns = time_ns - peer.last_time_ns
        sender.last_time_ns = time_ns
        sender.packets += 1
        sender.bytes += length
        sender.ip_bytes += seg.ip_len
        sender.count_packet(seg.ttl, seg.df)
        if seg.version == 4 and not flags & TH_RST:
            last = sender.ip_id_last  # _count_ip_id, inlined: this runs for every packet
            if last is not None:
                sender.ip_id_pairs += 1
                if 0 < (seg.ip_id - last) & 0xFFFF <= IP_ID_STEP:
                    sender.ip_id_steps += 1
            sender.ip_id_last = seg.ip_id
        if seg.fragment_frames:
            sender.fragmented += 1
            if len(sender.fragment_frames) < 50:
                sender.fragment_frames.extend(
                    seg.fragment_frames[: 50 - len(sender.fragment_frames)]
                )
        if length:
            sender.data_segments += 1
            if length > sender.max_segment:
                sender.max_segment = length
            if seg.ip_len > sender.max_ip_len:
                sender.max_ip_len = seg.ip_len
            if sender.too_big_mtu is not None and seg.ip_len > sender.max_ip_len_after_too_big:
                sender.max_ip_len_after_too_big = seg.ip_len

        wscale = self._handshake(live, d, seg) if flags & TH_SYN else None
        analysis = live.analysis.segment(
            d,
            d == flow.client,
            seg.frame,
            time_ns,
            seg.seq,
            seg.ack,
            length,
            flags,
            seg.window,
            seg.ip_len,
            reused,
            wscale,
        )
        handshake_done = flow.synack_time_ns is not None and flow.handshake_ack_time_ns is None
        if handshake_done and flags & (TH_SYN | TH_ACK) == TH_ACK:
            flow.handshake_ack_time_ns = time_ns
        if analysis:
            self._count(sender, analysis, seg)
        if analysis or flags & (TH_SYN | TH_FIN | TH_RST):
            self._note(flow, d, seg, analysis)
        self._reassemble(live, d, seg)
        self._closing(live, d, flags, time_ns)

    def _number_only(self, live: _Live, seg: TcpSegment) -> None:
        """A segment of a flow its consumer gave up (``ignore_payload``): only what the
        stream numbering rests on is kept up to date, i.e. the initial sequence numbers
        (port reuse), the last packet (idle flows) and the closing (lingering flows).
        Counters, analysis flags, notes, state and history stop where they were."""
        flow = live.flow
        flags = seg.flags
        flow.last_frame, flow.last_time_ns = seg.frame, seg.time_ns
        d = self._direction(flow, seg)
        live.analysis.number_only(d, seg.seq, seg.ack, flags)
        if flags & (TH_FIN | TH_RST):
            sender = flow.endpoints[d]
            if sender.closed_frame is None:
                sender.closed_frame = seg.frame
            self._closing(live, d, flags, seg.time_ns)

    @staticmethod
    def _closing(live: _Live, d: int, flags: int, time_ns: int) -> None:
        """A RST, or a FIN after the peer's FIN or RST, closes the flow: it lingers from now."""
        peer_closed = live.flow.endpoints[1 - d].closed_frame is not None
        if flags & TH_RST or (flags & TH_FIN and peer_closed):
            live.closed_at = time_ns
            for reassembler in live.reassembly:
                if reassembler is not None:
                    reassembler.release()

    def _handshake(self, live: _Live, d: int, seg: TcpSegment) -> int | None:
        """A SYN or SYN/ACK: its options and times; the window scale it announced."""
        flow = live.flow
        handshake = parse_options(seg.options)
        is_synack = bool(seg.flags & TH_ACK)
        if flow.endpoints[d].handshake is None:
            flow.endpoints[d].handshake = handshake
        if is_synack:
            if flow.synack_time_ns is None:
                flow.synack_time_ns = seg.time_ns
        elif flow.syn_time_ns is None:
            flow.syn_time_ns = seg.time_ns
        if live.reassembly[d] is not None:
            live.reassembly[d].start(seg.seq)
        elif live.isn[d] is None:  # as StreamReassembler.start: the first SYN sets the base
            live.isn[d] = seg.seq
        return handshake.wscale

    @staticmethod
    def _count(sender: Endpoint, analysis: int, seg: TcpSegment) -> None:
        for flag, name in COUNTED:
            if analysis & flag:
                sender.count_flag(name)
        if analysis & ANY_RETRANSMISSION and seg.length:
            sender.count_retransmitted(seg.ip_len)

    @staticmethod
    def _note(flow: TcpFlow, d: int, seg: TcpSegment, analysis: int) -> None:
        if len(flow.notes) >= MAX_NOTES:
            flow.dropped_notes += 1
            return
        flow.notes.append(
            SegmentNote(
                frame=seg.frame,
                time_ns=seg.time_ns,
                direction=d,
                tcp_flags=seg.flags,
                analysis=Flag(analysis),
                seq=seg.seq,
                length=seg.length,
                ip_len=seg.ip_len,
                ttl=seg.ttl,
                ip_id=seg.ip_id if seg.version == 4 else 0,
                prev_ip_id=(
                    flow.endpoints[d].ip_id_last
                    if seg.version == 4 and seg.flags & TH_RST
                    else None
                ),
            )
        )

    def _reassemble(self, live: _Live, d: int, seg: TcpSegment) -> None:
        flags = seg.flags
        mine = live.reassembly[d]
        if seg.length or flags & TH_FIN:
            mine = _reassembler(live, d)
            if seg.length:
                mine.segment(seg.seq, seg.payload, seg.length, seg.frame, seg.time_ns)
            if flags & TH_FIN:
                mine.fin((seg.seq + seg.length) & MASK)
        peers = live.reassembly[1 - d]
        if flags & TH_ACK:
            isn = live.isn[1 - d]
            # An ACK of the peer's SYN alone changes nothing in a reassembler not made yet.
            if peers is None and isn is not None and seg.ack != (isn + 1) & MASK:
                peers = _reassembler(live, 1 - d)
            if peers is not None:
                peers.acknowledged(seg.ack, seg.frame, seg.time_ns)
        # What this ACK releases of the peer's stream (a gap, the bytes held behind it) was
        # sent before this segment: it goes first, so a reply follows the command it answers.
        if peers is not None and peers.out:
            self._emit(live, 1 - d, peers.take())
        if mine is not None and mine.out:
            self._emit(live, d, mine.take())

    def _emit(self, live: _Live, direction: int, chunks: list[Chunk]) -> None:
        flow = live.flow
        endpoint = flow.endpoints[direction]
        for chunk in chunks:
            if chunk.data is None:
                endpoint.gaps += 1
                endpoint.gap_bytes += chunk.length
                live.analysis.record("g", direction == flow.client)
                self._out.append(
                    StreamGap(
                        flow,
                        direction,
                        chunk.offset,
                        chunk.length,
                        chunk.frame,
                        chunk.time_ns,
                        chunk.reason,
                    )
                )
            else:
                endpoint.stream_bytes += chunk.length
                self._out.append(
                    StreamData(
                        flow, direction, chunk.offset, chunk.data, chunk.frame, chunk.time_ns
                    )
                )

    def _icmp(self, error: IcmpError) -> None:
        quoted = error.quoted
        if quoted is None or quoted.sport is None or quoted.proto != IPPROTO_TCP:
            self.unmatched_icmp.append(error)
            return
        key = flow_key(quoted.src, quoted.sport, quoted.dst, quoted.dport)
        live = self._table.get(key)
        if live is None:
            self.unmatched_icmp.append(error)
            if quoted.transport_bytes >= QUOTED_TCP_BYTES:
                ended = self._ended.get(key)
                if ended is None:
                    ended = _Ended(self.streams, error.frame)
                    self.streams += 1
                    self.icmp_starts.append(error.frame)
                    self._remember(key, ended)
                self.icmp_streams[error.frame] = ended.stream
            return
        live.flow.icmp.append(error)
        if error.is_too_big and error.mtu:
            sender = live.flow.endpoints[
                0
                if live.flow.endpoints[0].port == quoted.sport
                and live.flow.endpoints[0].ip == quoted.src
                else 1
            ]
            if sender.too_big_mtu is None or error.mtu < sender.too_big_mtu:
                sender.too_big_mtu = error.mtu
            sender.max_ip_len_after_too_big = 0

    def _sweep(self, now_ns: int, frame: int) -> None:
        for key, live in list(self._table.items()):
            if _expired(live, now_ns, frame):
                self._end(key)

    def _evict(self) -> None:
        """End the least recently active 1 % of the flows: one sort per that many new flows."""
        by_activity = sorted(self._table.items(), key=lambda item: item[1].flow.last_frame)
        for key, _live in by_activity[: max(1, MAX_FLOWS // 100)]:
            self._end(key)
            self.evicted += 1

    def _end(self, key: tuple, remember: bool = True) -> None:
        """End a flow; ``remember``: keep what a later packet of its 4-tuple needs to
        continue its stream number."""
        live = self._table.pop(key)
        flow = live.flow
        for d in (0, 1):
            reassembler = live.reassembly[d]
            if reassembler is not None:
                if not flow.ignore_payload:
                    reassembler.finish(flow.last_frame, flow.last_time_ns)
                    if reassembler.out:
                        self._emit(live, d, reassembler.take())
                flow.endpoints[d].retransmission_mismatches = reassembler.mismatches
                if reassembler.limited:
                    self.warnings.append(_limited(flow, d, reassembler))
            else:
                flow.endpoints[d].retransmission_mismatches = 0
        state, flow.history, directions = live.analysis.end(flow.last_time_ns, flow.client)
        flow.state = ConnState(state)
        for endpoint, facts in zip(flow.endpoints, directions, strict=True):
            (
                endpoint.max_acked_segment,
                endpoint.max_acked_ip_len,
                endpoint.last_acked_frame,
                endpoint.longest_zero_window_ns,
                unacked,
            ) = facts
            for size in unacked:
                endpoint.count_unacked(size)
        if remember:
            live.analysis.retire()
            first = flow.endpoints[0]
            self._remember(
                key,
                _Ended(
                    flow.stream,
                    flow.first_frame if flow.continues is None else flow.continues,
                    (first.ip, first.port),
                    flow.client,
                    flow.role_from,
                    live.analysis,
                ),
            )
        self._out.append(FlowEnded(flow))


def _limited(flow: TcpFlow, d: int, reassembler: StreamReassembler) -> str:
    sender, receiver = flow.endpoints[d], flow.endpoints[1 - d]
    return (
        f"tcp.stream {flow.stream}, {endpoint_name(sender)} -> {endpoint_name(receiver)}: "
        f"data held behind holes that did not fill reached the reassembly bound "
        f"({MAX_PENDING_BYTES // (1024 * 1024)} MiB) {reassembler.limited:,} times; "
        f"{reassembler.limited_bytes:,} bytes were skipped (gaps 'buffer limit'), and "
        "segments of them arriving later were not used"
    )


def evicted_warning(evicted: int) -> str:
    """The capture warning when the flow table's cap ended connections early."""
    return (
        f"{evicted:,} connection(s) ended early: more than {MAX_FLOWS:,} were open at once "
        "(the flow table's cap, docs/limits.md); each is shown as far as it was seen"
    )


def _expired(live: _Live, now_ns: int, frame: int) -> bool:
    """A flow closed ``LINGER_NS`` and ``LINGER_FRAMES`` ago, or silent ``IDLE_NS`` and
    ``IDLE_FRAMES``, as seen from a packet at ``now_ns`` in ``frame``."""
    since = frame - live.flow.last_frame
    closed = live.closed_at is not None and now_ns - live.closed_at > LINGER_NS
    idle = now_ns - live.flow.last_time_ns > IDLE_NS
    return (closed and since > LINGER_FRAMES) or (idle and since > IDLE_FRAMES)


def track_flows(
    packets: Iterable[TcpSegment | IcmpError], server_ports: Iterable[int] = ()
) -> Iterator[FlowEvent]:
    """Stream events of every TCP flow, in capture order, each flow ended by FlowEnded."""
    return FlowTracker(server_ports).events(packets)

"""What the TCP layer hands upward: flows with their facts, and ordered stream events."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from enum import IntFlag, StrEnum

from pcapsmtp.capture.model import IcmpError


class Flag(IntFlag):
    """Per-segment analysis flags, with Wireshark's meaning and ``tcp.analysis.*`` names."""

    RETRANSMISSION = 0x0001
    LOST_SEGMENT = 0x0002
    """Previous segment not captured: this segment starts beyond the highest byte seen."""
    ACK_LOST_SEGMENT = 0x0004
    """ACKed segment that wasn't captured: this ACK covers bytes the capture never saw."""
    KEEP_ALIVE = 0x0008
    DUPLICATE_ACK = 0x0010
    ZERO_WINDOW = 0x0020
    ZERO_WINDOW_PROBE = 0x0040
    ZERO_WINDOW_PROBE_ACK = 0x0080
    KEEP_ALIVE_ACK = 0x0100
    OUT_OF_ORDER = 0x0200
    FAST_RETRANSMISSION = 0x0400
    WINDOW_UPDATE = 0x0800
    WINDOW_FULL = 0x1000
    REUSED_PORTS = 0x2000
    SPURIOUS_RETRANSMISSION = 0x4000

    ANY_RETRANSMISSION = RETRANSMISSION | FAST_RETRANSMISSION | SPURIOUS_RETRANSMISSION


WIRESHARK_NAMES = {
    # As in Wireshark, "retransmission" covers the fast and spurious ones too.
    Flag.ANY_RETRANSMISSION: "retransmission",
    Flag.FAST_RETRANSMISSION: "fast_retransmission",
    Flag.SPURIOUS_RETRANSMISSION: "spurious_retransmission",
    Flag.OUT_OF_ORDER: "out_of_order",
    Flag.LOST_SEGMENT: "lost_segment",
    Flag.ACK_LOST_SEGMENT: "ack_lost_segment",
    Flag.DUPLICATE_ACK: "duplicate_ack",
    Flag.ZERO_WINDOW: "zero_window",
    Flag.ZERO_WINDOW_PROBE: "zero_window_probe",
    Flag.ZERO_WINDOW_PROBE_ACK: "zero_window_probe_ack",
    Flag.KEEP_ALIVE: "keep_alive",
    Flag.KEEP_ALIVE_ACK: "keep_alive_ack",
    Flag.WINDOW_UPDATE: "window_update",
    Flag.WINDOW_FULL: "window_full",
    Flag.REUSED_PORTS: "reused_ports",
}

TH_FIN = 0x01
TH_SYN = 0x02
TH_RST = 0x04
TH_PUSH = 0x08
TH_ACK = 0x10
TH_URG = 0x20
TH_ECE = 0x40  # ECN echo, RFC 3168
TH_CWR = 0x80

IP_ID_STEP = 1024
"""Largest rise of the IP ID between two packets of one side still read as a counter going
on (Linux counts per connection, Windows per host, so other traffic adds to the step)."""


@dataclass(slots=True, frozen=True)
class SegmentNote:
    """A segment worth remembering: it carried an analysis flag, a SYN, FIN or RST."""

    frame: int
    time_ns: int
    direction: int
    """Index of the sending endpoint in ``TcpFlow.endpoints``."""
    tcp_flags: int
    analysis: Flag
    seq: int
    """Sequence number relative to the sender's initial sequence number."""
    length: int
    ip_len: int
    ttl: int
    ip_id: int = 0
    """IPv4 identification (0 for IPv6)."""
    prev_ip_id: int | None = None
    """For a RST (IPv4): the IP ID of the sender's last packet before it that was not a RST;
    a host numbers its packets with a counter, its own RST continues the count and a forged
    one does not."""
    rst_ahead: int = 0
    """For a RST: how many sequence numbers it lay beyond the next one expected of its
    sender (0 otherwise). Wireshark moves its next expected number there, so a RST the hosts
    ignored makes its sender's next segments "retransmissions" though they carry new data."""


@dataclass(slots=True)
class Handshake:
    """What one side announced in its SYN or SYN/ACK."""

    mss: int | None = None
    wscale: int | None = None
    sack_permitted: bool = False
    timestamps: bool = False


def _counter() -> Counter:
    """An empty Counter, made without ``Counter.__init__`` (Python, 1.1 us against 0.3):
    the properties of ``Endpoint`` below make one for each side that saw no such packet,
    about 30,000 times while a 200 MB capture's 1,794 sessions are diagnosed and written."""
    return Counter.__new__(Counter)


@dataclass(slots=True)
class Endpoint:
    """One side of a flow and everything measured about what it sent."""

    ip: bytes
    port: int
    handshake: Handshake | None = None
    """None when this side's SYN (or SYN/ACK) was not captured."""
    packets: int = 0
    bytes: int = 0
    """Payload bytes on the wire (``tcp.len`` summed, retransmissions included)."""
    ip_bytes: int = 0
    """IP bytes on the wire (the IP total length summed, as Zeek's ``orig_ip_bytes``)."""
    data_segments: int = 0
    max_segment: int = 0
    """Largest payload sent, in bytes."""
    max_ip_len: int = 0
    """Largest IP packet carrying data sent: what a path MTU limits."""
    max_acked_segment: int = 0
    """Largest payload the peer acknowledged completely."""
    max_acked_ip_len: int = 0
    last_acked_frame: int | None = None
    """Frame of the last data segment of this side the peer acknowledged completely."""
    # The counters below are read through the properties that follow (``ttls``, ``df``,
    # ``counts``, ...): most flows have one TTL, one DF setting and no flag, so they are kept
    # as plain fields and a Counter is made only when needed; an empty Counter costs 80
    # bytes, a Counter of one entry 160, and a flood holds 100,000 flows of two endpoints.
    _ttl: int = 0
    _ttl_packets: int = 0
    """The one TTL seen so far and its packets, while there is only one."""
    _ttls: Counter | None = field(default=None, repr=False)
    """TTL -> packets, once a second TTL was seen."""
    _df_set: int = 0
    _df_clear: int = 0
    _retransmitted_sizes: Counter | None = field(default=None, repr=False)
    _unacked_sizes: Counter | None = field(default=None, repr=False)
    _counts: Counter | None = field(default=None, repr=False)

    def count_packet(self, ttl: int, df: bool) -> None:
        """One more packet sent with this TTL and DF bit."""
        if df:
            self._df_set += 1
        else:
            self._df_clear += 1
        if self._ttls is not None:
            self._ttls[ttl] += 1
        elif ttl == self._ttl or not self._ttl_packets:
            self._ttl = ttl
            self._ttl_packets += 1
        else:
            self._ttls = Counter({self._ttl: self._ttl_packets, ttl: 1})

    def count_flag(self, name: str) -> None:
        if self._counts is None:
            self._counts = Counter()
        self._counts[name] += 1

    def count_retransmitted(self, ip_len: int) -> None:
        if self._retransmitted_sizes is None:
            self._retransmitted_sizes = Counter()
        self._retransmitted_sizes[ip_len] += 1

    def count_unacked(self, ip_len: int) -> None:
        if self._unacked_sizes is None:
            self._unacked_sizes = Counter()
        self._unacked_sizes[ip_len] += 1

    @property
    def ttls(self) -> Counter:
        """TTL (hop limit) -> packets sent with it (a copy while there is only one TTL)."""
        if self._ttls is not None:
            return self._ttls
        found = _counter()
        if self._ttl_packets:
            found[self._ttl] = self._ttl_packets
        return found

    @property
    def df(self) -> Counter:
        """True/False -> packets with / without the Don't Fragment bit."""
        found = _counter()
        if self._df_set:
            found[True] = self._df_set
        if self._df_clear:
            found[False] = self._df_clear
        return found

    @property
    def counts(self) -> Counter:
        """Analysis flag name (Wireshark's) -> segments this side sent with that flag."""
        return self._counts if self._counts is not None else _counter()

    @property
    def retransmitted_sizes(self) -> Counter:
        """IP packet length -> number of retransmissions of that size (all kinds)."""
        return self._retransmitted_sizes if self._retransmitted_sizes is not None else _counter()

    @property
    def unacked_sizes(self) -> Counter:
        """IP packet length -> data segments never acknowledged by the end of the capture."""
        return self._unacked_sizes if self._unacked_sizes is not None else _counter()

    ip_id_last: int | None = None
    """IP ID of the last IPv4 packet this side sent that was not a RST."""
    ip_id_pairs: int = 0
    """Consecutive non-RST IPv4 packets of this side compared for their IP IDs ..."""
    ip_id_steps: int = 0
    """... and how many of them counted up by 1 to IP_ID_STEP: an incrementing counter."""
    fragmented: int = 0
    """Segments that arrived in IP fragments."""
    fragment_frames: list[int] = field(default_factory=list)
    """Frames of the first fragments (up to 50), as evidence."""
    stream_bytes: int = 0
    """Bytes delivered in order to the consumer."""
    gaps: int = 0
    gap_bytes: int = 0
    retransmission_mismatches: int = 0
    """Retransmissions whose bytes differ from the first copy."""
    longest_zero_window_ns: int = 0
    """Longest time this side kept its receive window closed: from a zero-window segment to
    its next segment with a window above 0 (or the end of the flow)."""
    too_big_mtu: int | None = None
    """Smallest next-hop MTU an ICMP fragmentation-needed / Packet Too Big told this side."""
    max_ip_len_after_too_big: int = 0
    """Largest data packet this side sent after the (last) ICMP told it to shrink."""
    last_time_ns: int = 0
    closed_frame: int | None = None
    """Frame of this side's first FIN or RST."""
    peer_silent_ns: int | None = None
    """How long the peer had sent nothing when this side first closed (FIN or RST):
    a client closing after a long silence gave up waiting."""


_FRESH = Endpoint(b"", 0)
"""What an endpoint of a flow still in the flow table reads beyond its address."""


class LiveEndpoint:
    """An endpoint of a flow the flow table (pcapsmtp.tcp.flows) still holds: its address.

    Its figures are the table's until the flow ends, when ``FlowTracker`` puts a filled-in
    ``Endpoint`` in its place; until then every other field reads as a fresh ``Endpoint``'s
    (as the ``Endpoint`` held there before read). A full ``Endpoint`` is 312 bytes and a
    flood holds 100,000 open flows of two (docs/performance-log.md, "Hostile captures"); one of
    these is 48, and a server's is shared by its flows (``FlowTracker``). Read-only.
    """

    __slots__ = ("ip", "port")

    def __init__(self, ip: bytes, port: int) -> None:
        self.ip = ip
        self.port = port

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        value = getattr(_FRESH, name)
        return [] if name == "fragment_frames" else value

    def __eq__(self, other: object) -> bool:
        if isinstance(other, LiveEndpoint):
            return (self.ip, self.port) == (other.ip, other.port)
        return NotImplemented

    __hash__ = None  # as Endpoint's (a mutable dataclass)

    def __repr__(self) -> str:
        return f"LiveEndpoint(ip={self.ip!r}, port={self.port!r})"


class ConnState(StrEnum):
    """Zeek's conn_state (base/protocols/conn/main.zeek), the client as Zeek's originator,
    in docs/zeek-conn.md's words. A StrEnum: the outputs carry the value ("SF")."""

    S0 = "S0"
    """The client tried to connect, no answer seen."""
    S1 = "S1"
    """Connected, not closed within the capture."""
    SF = "SF"
    """Connected and closed normally."""
    REJ = "REJ"
    """The connection attempt was refused (RST)."""
    S2 = "S2"
    """Connected; the client began to close, no close seen from the server."""
    S3 = "S3"
    """Connected; the server began to close, no close seen from the client."""
    RSTO = "RSTO"
    """Connected, then the client aborted it (RST)."""
    RSTR = "RSTR"
    """The server aborted it (RST)."""
    RSTOS0 = "RSTOS0"
    """The client sent a SYN, then a RST; no SYN/ACK seen."""
    RSTRH = "RSTRH"
    """The server sent a SYN/ACK, then a RST; the client's SYN not seen."""
    SH = "SH"
    """The client sent a SYN, then a FIN; no SYN/ACK seen (half open)."""
    SHR = "SHR"
    """The server sent a SYN/ACK, then a FIN; the client's SYN not seen."""
    OTH = "OTH"
    """No SYN seen: the capture began mid-connection, or nothing matched."""


@dataclass(slots=True)
class TcpFlow:
    """One TCP connection (one Wireshark ``tcp.stream``)."""

    stream: int
    endpoints: tuple[Endpoint, Endpoint]
    """Endpoint 0 sent the flow's first packet."""
    client: int
    """Index of the client (who sent the SYN, else guessed from ports)."""
    first_frame: int
    first_time_ns: int
    last_frame: int = 0
    last_time_ns: int = 0
    syn_time_ns: int | None = None
    synack_time_ns: int | None = None
    handshake_ack_time_ns: int | None = None
    role_from: str = "syn"
    """How the client was identified: 'syn', 'syn-ack', 'port' or 'guess'."""
    continues: int | None = None
    """The frame at which this flow's ``tcp.stream`` began, when that is before its first
    frame: an earlier flow of the same 4-tuple that Wireshark numbers as the same stream
    (a SYN with the same initial sequence number, a late packet), or an ICMP error quoting
    the 4-tuple before any of its packets."""
    notes: list[SegmentNote] = field(default_factory=list)
    dropped_notes: int = 0
    """Notes not kept because a flow reached its cap (the counts still include them)."""
    icmp: list[IcmpError] = field(default_factory=list)
    state: ConnState = ConnState.OTH
    history: str = ""
    """Zeek's history string (uppercase: the client; lowercase: the server)."""
    ignore_payload: bool = False
    """Set by a consumer that does not want this flow (not SMTP): reassembly and analysis
    stop, only what stream numbering needs is kept; counters, notes and state stay as they
    were when it was set."""
    absorb: object | None = field(default=None, repr=False, compare=False)
    """Set by a consumer while it wants the client's next bytes fed to a sink of the
    core instead of handed on (opaque here: SMTP's message body scan, see
    core/src/python_table.rs); None when the flow ends."""
    _table: tuple | None = field(default=None, repr=False, compare=False)
    """While the flow table (pcapsmtp.tcp.flows) holds the flow: its id there and the
    ``client``, ``role_from``, ``ignore_payload`` and ``absorb`` it last told the table
    (a tuple of its own, shared by the flows that told the same)."""

    @property
    def server(self) -> int:
        return 1 - self.client

    @property
    def rtt_ns(self) -> int | None:
        """Handshake round trip as Wireshark's iRTT: SYN to the ACK of the SYN/ACK."""
        if self.syn_time_ns is None or self.handshake_ack_time_ns is None:
            return None
        return self.handshake_ack_time_ns - self.syn_time_ns


@dataclass(slots=True)
class StreamData:
    """Bytes of one direction, in order, where they first became contiguous."""

    flow: TcpFlow
    direction: int
    offset: int
    """Stream offset of ``data[0]``: 0 is the first byte after the SYN (or the first seen)."""
    data: bytes
    frame: int
    time_ns: int


@dataclass(slots=True)
class StreamGap:
    """Bytes of one direction the capture does not hold; the consumer must resynchronise."""

    flow: TcpFlow
    direction: int
    offset: int
    length: int
    frame: int
    """The frame at which the gap became certain."""
    time_ns: int
    reason: str
    """'not captured' (the peer acknowledged them), 'snaplen', 'never filled' (the flow
    ended before the hole filled) or 'buffer limit' (the data held behind the hole
    reached the out-of-order bound, tcp.reassembly.MAX_PENDING_BYTES)."""


@dataclass(slots=True)
class FlowEnded:
    """The flow is complete: no more events will name it."""

    flow: TcpFlow


FlowEvent = StreamData | StreamGap | FlowEnded

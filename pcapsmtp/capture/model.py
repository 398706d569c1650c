"""Records the capture layer hands upward: frames, decoded packets, capture facts."""

from __future__ import annotations

from dataclasses import dataclass, field

LINKTYPE_SYSTEMD_JOURNAL = -1
"""Pseudo link type of a pcapng systemd Journal Export Block: a frame with no packet."""

LINKTYPE_NULL = 0
LINKTYPE_ETHERNET = 1
DLT_RAW_12 = 12
DLT_RAW_14 = 14
LINKTYPE_RAW = 101
LINKTYPE_LOOP = 108
LINKTYPE_LINUX_SLL = 113
LINKTYPE_IPV4 = 228
LINKTYPE_IPV6 = 229
LINKTYPE_LINUX_SLL2 = 276

LINKTYPE_NAMES = {
    LINKTYPE_NULL: "null",
    LINKTYPE_ETHERNET: "ethernet",
    DLT_RAW_12: "raw",
    DLT_RAW_14: "raw",
    LINKTYPE_RAW: "raw",
    LINKTYPE_LOOP: "loop",
    LINKTYPE_LINUX_SLL: "linux-sll",
    LINKTYPE_IPV4: "ipv4",
    LINKTYPE_IPV6: "ipv6",
    LINKTYPE_LINUX_SLL2: "linux-sll2",
    LINKTYPE_SYSTEMD_JOURNAL: "systemd-journal",
}

IPPROTO_ICMP = 1
IPPROTO_TCP = 6
IPPROTO_UDP = 17
IPPROTO_ICMP6 = 58
"""IP protocol numbers (IANA), as dpkt names them."""


@dataclass(slots=True)
class Frame:
    """One record of the capture file, undecoded."""

    number: int
    """1-based record index: exactly Wireshark's ``frame.number``."""
    time_ns: int
    """Absolute time, nanoseconds since the Unix epoch, UTC."""
    linktype: int
    """LINKTYPE_* value of the interface that captured this frame (or LINKTYPE_SYSTEMD_JOURNAL)."""
    data: bytes
    """The captured bytes (``len(data)`` is the captured length)."""
    wire_len: int
    """Length of the frame on the wire; larger than ``len(data)`` when the snap length cut it."""
    interface: int = 0


@dataclass(slots=True)
class IPPacket:
    """An IPv4 or IPv6 packet (or a datagram reassembled from fragments)."""

    frame: int
    time_ns: int
    version: int
    src: bytes
    """4 or 16 bytes."""
    dst: bytes
    proto: int
    """Upper-layer protocol (after IPv6 extension headers)."""
    ttl: int
    """TTL (IPv4) or hop limit (IPv6)."""
    df: bool
    """Don't Fragment (IPv4); always True for IPv6, which routers never fragment."""
    ident: int
    total_len: int
    """Length of the whole IP packet according to its header."""
    payload: bytes
    """Captured upper-layer bytes (may be shorter than ``payload_len`` under a snap length)."""
    payload_len: int
    """Upper-layer length according to the IP header."""
    frag_offset: int = 0
    """Byte offset of this fragment in its datagram."""
    more_fragments: bool = False
    fragment_frames: tuple[int, ...] = ()
    """Frames of the fragments this datagram was reassembled from; empty when not fragmented."""

    @property
    def is_fragment(self) -> bool:
        return self.more_fragments or self.frag_offset > 0


@dataclass(slots=True)
class TcpSegment:
    """One TCP segment with the IP facts the analysis needs."""

    frame: int
    time_ns: int
    version: int
    src: bytes
    dst: bytes
    sport: int
    dport: int
    seq: int
    ack: int
    flags: int
    window: int
    """The raw window field, before window scaling."""
    options: bytes
    payload: bytes
    """Captured payload; shorter than ``length`` when the snap length cut the frame."""
    length: int
    """Payload length on the wire (Wireshark's ``tcp.len``)."""
    ttl: int
    df: bool
    ip_id: int
    ip_len: int
    """Size of the IP packet that carried the segment (what a path MTU limits)."""
    fragment_frames: tuple[int, ...] = ()


@dataclass(slots=True, frozen=True)
class QuotedPacket:
    """The head of the packet an ICMP error quotes back (RFC 792, RFC 4443)."""

    src: bytes
    dst: bytes
    proto: int
    total_len: int
    """IP length of the packet that could not be delivered."""
    df: bool
    sport: int | None = None
    dport: int | None = None
    seq: int | None = None
    transport_bytes: int = 0
    """Bytes of the quoted TCP or UDP header and payload present. RFC 792 promises 8 (the
    ports and the sequence number); Wireshark reads a quoted TCP header as TCP, and gives
    it a ``tcp.stream``, only when 16 are there (up to the window field)."""


@dataclass(slots=True, frozen=True)
class IcmpError:
    """An ICMP or ICMPv6 error message: who complained, why, and about which packet."""

    frame: int
    time_ns: int
    version: int
    src: bytes
    """The reporting router or host."""
    dst: bytes
    type: int
    code: int
    mtu: int | None
    """Next-hop MTU of a fragmentation-needed (type 3 code 4) or Packet Too Big message."""
    quoted: QuotedPacket | None

    @property
    def is_too_big(self) -> bool:
        if self.version == 4:
            return self.type == 3 and self.code == 4
        return self.type == 2


@dataclass(slots=True, frozen=True)
class DnsDatagram:
    """A UDP datagram to or from port 53: a DNS message, still as bytes (pcapsmtp.dns reads
    it). The resolver's lookups an MTA makes for its mail (MX, A/AAAA, PTR) travel so."""

    frame: int
    time_ns: int
    version: int
    src: bytes
    dst: bytes
    sport: int
    dport: int
    payload: bytes
    """The captured UDP payload: shorter than ``length`` when the snap length cut the frame."""
    length: int
    """The UDP payload length on the wire, from the UDP header."""
    fragment_frames: tuple[int, ...] = ()


@dataclass(slots=True, frozen=True)
class DecryptionSecrets:
    """A pcapng Decryption Secrets Block, kept for TLS decryption."""

    secrets_type: int
    data: bytes

    TLS_KEY_LOG = 0x544C534B


@dataclass(slots=True)
class CaptureInfo:
    """Facts about one capture file, filled in while it is read."""

    file: str
    format: str = ""
    """``pcap``, ``pcap-ns`` or ``pcapng``."""
    compression: str | None = None
    frames: int = 0
    first_time_ns: int | None = None
    last_time_ns: int | None = None
    link_types: dict[int, int] = field(default_factory=dict)
    """LINKTYPE value -> number of frames."""
    snaplen: int | None = None
    truncated: int = 0
    """Frames whose captured length is below their length on the wire."""
    ip_frames: int = 0
    reassembled: int = 0
    """IP datagrams reassembled from fragments."""
    undecoded: dict[str, int] = field(default_factory=dict)
    """Frames we could not decode, by reason (unsupported link type, malformed IP, ...)."""
    copy_frames: set[int] = field(default_factory=set)
    """TCP frames that repeat a packet captured just before (a SPAN port or a bridge that
    shows each packet twice): Wireshark's counts take them for retransmissions, the
    diagnosis does not take them for loss."""
    time_backwards: tuple[int, int, int] = (0, 0, 0)
    """Frames whose time is earlier than the frame before them, the first of them, and the
    largest step back in nanoseconds (core/src/tally.rs)."""
    warnings: list[str] = field(default_factory=list)
    secrets: list[DecryptionSecrets] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    """The files of a rotated set read as this one capture (pcapsmtp.capture.sets), in
    order; empty for a single file."""

    def count_undecoded(self, reason: str) -> None:
        self.undecoded[reason] = self.undecoded.get(reason, 0) + 1

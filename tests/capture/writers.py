"""Capture files the real tools cannot make, written byte by byte with ``struct``.

editcap, mergecap and tcpdump make most test variants; they cannot choose a pcap byte order,
set ``if_tsresol`` / ``if_tsoffset``, write Simple or obsolete Packet Blocks, or re-encode a
frame under another link layer (``editcap -T`` relabels the file, it does not rewrite the
frames). This module does those few things, independently of the reader under test: it
parses only what ``editcap -F pcap`` writes and only the link layers it converts from.
Formats: pcap-savefile(5) and draft-ietf-opsawg-pcapng.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

PCAP_MAGIC_US = 0xA1B2C3D4
PCAP_MAGIC_NS = 0xA1B23C4D

LINKTYPE_NULL = 0
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101
LINKTYPE_LOOP = 108
LINKTYPE_LINUX_SLL = 113
LINKTYPE_IPV4 = 228
LINKTYPE_IPV6 = 229
LINKTYPE_LINUX_SLL2 = 276

ETH_TYPE_IP = 0x0800
ETH_TYPE_IP6 = 0x86DD
ETH_TYPE_8021Q = 0x8100
ETH_TYPE_8021AD = 0x88A8


@dataclass(slots=True)
class Record:
    """One frame as stored: time in nanoseconds, captured bytes, length on the wire."""

    time_ns: int
    data: bytes
    wire_len: int


# --- pcap -------------------------------------------------------------------------------


@dataclass(slots=True)
class PcapFile:
    """A parsed pcap file."""

    linktype: int
    records: list[Record]
    order: str = "<"
    """``<`` little-endian or ``>`` big-endian, as written."""
    nanoseconds: bool = False
    snaplen: int = 262144

    def to_bytes(self) -> bytes:
        order, scale = self.order, 1 if self.nanoseconds else 1000
        magic = PCAP_MAGIC_NS if self.nanoseconds else PCAP_MAGIC_US
        out = [struct.pack(order + "IHHiIII", magic, 2, 4, 0, 0, self.snaplen, self.linktype)]
        for r in self.records:
            sec, rest = divmod(r.time_ns, 1_000_000_000)
            out.append(struct.pack(order + "IIII", sec, rest // scale, len(r.data), r.wire_len))
            out.append(r.data)
        return b"".join(out)


def read_pcap(raw: bytes) -> PcapFile:
    """A well-formed pcap file of either byte order and time resolution."""
    for order in "<>":
        (magic,) = struct.unpack_from(order + "I", raw)
        if magic in (PCAP_MAGIC_US, PCAP_MAGIC_NS):
            break
    else:
        raise ValueError("not a pcap file")
    scale = 1000 if magic == PCAP_MAGIC_US else 1
    snaplen, linktype = struct.unpack_from(order + "II", raw, 16)
    records, offset = [], 24
    while offset < len(raw):
        sec, frac, caplen, wire_len = struct.unpack_from(order + "IIII", raw, offset)
        data = raw[offset + 16 : offset + 16 + caplen]
        records.append(Record(sec * 1_000_000_000 + frac * scale, data, wire_len))
        offset += 16 + caplen
    return PcapFile(linktype & 0x0FFFFFFF, records, order, scale == 1, snaplen)


# --- pcapng -----------------------------------------------------------------------------


def _block(btype: int, body: bytes, order: str) -> bytes:
    body += b"\x00" * (-len(body) % 4)
    length = len(body) + 12
    return struct.pack(order + "II", btype, length) + body + struct.pack(order + "I", length)


def _options(options: list[tuple[int, bytes]], order: str) -> bytes:
    if not options:
        return b""
    out = b""
    for code, value in options:
        out += struct.pack(order + "HH", code, len(value)) + value + b"\x00" * (-len(value) % 4)
    return out + struct.pack(order + "HH", 0, 0)  # opt_endofopt


def shb(order: str = "<") -> bytes:
    """Section Header Block, section length unknown (-1)."""
    return _block(0x0A0D0D0A, struct.pack(order + "IHHq", 0x1A2B3C4D, 1, 0, -1), order)


def idb(
    linktype: int,
    order: str = "<",
    snaplen: int = 0,
    tsresol: int | None = None,
    tsoffset: int | None = None,
) -> bytes:
    """Interface Description Block; ``tsresol`` is the raw option byte, ``tsoffset`` seconds."""
    options = []
    if tsresol is not None:
        options.append((9, bytes([tsresol])))
    if tsoffset is not None:
        options.append((14, struct.pack(order + "q", tsoffset)))
    body = struct.pack(order + "HHI", linktype, 0, snaplen) + _options(options, order)
    return _block(1, body, order)


def epb(interface: int, units: int, data: bytes, wire_len: int, order: str = "<") -> bytes:
    """Enhanced Packet Block; ``units`` is the timestamp in the interface's resolution."""
    head = struct.pack(
        order + "IIIII", interface, units >> 32, units & 0xFFFFFFFF, len(data), wire_len
    )
    return _block(6, head + data, order)


def spb(data: bytes, wire_len: int, order: str = "<") -> bytes:
    """Simple Packet Block: interface 0, no timestamp, captured length implied."""
    return _block(3, struct.pack(order + "I", wire_len) + data, order)


def obsolete_pb(interface: int, units: int, data: bytes, wire_len: int, order: str = "<") -> bytes:
    """The obsolete Packet Block (type 2) with its 16-bit interface and drops count."""
    head = struct.pack(
        order + "HHIIII", interface, 0, units >> 32, units & 0xFFFFFFFF, len(data), wire_len
    )
    return _block(2, head + data, order)


def dsb(secrets_type: int, data: bytes, order: str = "<") -> bytes:
    """Decryption Secrets Block."""
    return _block(0x0A, struct.pack(order + "II", secrets_type, len(data)) + data, order)


# --- link layers ------------------------------------------------------------------------


def network_layer(linktype: int, frame: bytes) -> tuple[int, bytes] | None:
    """(EtherType, network-layer bytes) of an Ethernet or Linux SLL frame; None for others."""
    if linktype == LINKTYPE_ETHERNET and len(frame) >= 14:
        return struct.unpack_from(">H", frame, 12)[0], frame[14:]
    if linktype == LINKTYPE_LINUX_SLL and len(frame) >= 16:
        return struct.unpack_from(">H", frame, 14)[0], frame[16:]
    if linktype == LINKTYPE_LINUX_SLL2 and len(frame) >= 20:
        return struct.unpack_from(">H", frame, 0)[0], frame[20:]
    return None


MAC_A = bytes.fromhex("020000000001")
MAC_B = bytes.fromhex("020000000002")


def encapsulate(linktype: int, ethertype: int, payload: bytes, tags: tuple[int, ...] = ()) -> bytes:
    """``payload`` framed for ``linktype``; ``tags``: VLAN tags (TPID << 16 | TCI), outer first."""
    if linktype == LINKTYPE_ETHERNET:
        tagged = b"".join(struct.pack(">I", tag) for tag in tags)
        return MAC_A + MAC_B + tagged + struct.pack(">H", ethertype) + payload
    if linktype == LINKTYPE_LINUX_SLL:
        # packet type 0 (to us), ARPHRD_ETHER, address length 6, address padded to 8
        return struct.pack(">HHH8sH", 0, 1, 6, MAC_B, ethertype) + payload
    if linktype == LINKTYPE_LINUX_SLL2:
        # protocol, reserved, interface index, ARPHRD_ETHER, packet type, address length, address
        return struct.pack(">HHIHBB8s", ethertype, 0, 2, 1, 0, 6, MAC_B) + payload
    family = 2 if ethertype == ETH_TYPE_IP else 30  # AF_INET; AF_INET6 as OpenBSD/macOS number it
    if linktype == LINKTYPE_NULL:
        return struct.pack("<I", family) + payload  # host byte order of the writer
    if linktype == LINKTYPE_LOOP:
        return struct.pack(">I", family) + payload  # network byte order
    return payload  # raw IP in every numbering


def relink(
    records: list[Record], from_linktype: int, to_linktype: int, tags: tuple[int, ...] = ()
) -> tuple[list[Record], list[int]]:
    """Frames re-encoded under ``to_linktype``, with the 1-based numbers of the frames kept.

    Frames without IP are dropped when the new link layer cannot carry them (raw IP and
    loopback); so are IPv6 frames under LINKTYPE_IPV4 and IPv4 under LINKTYPE_IPV6.
    """
    ip_only = to_linktype not in (LINKTYPE_ETHERNET, LINKTYPE_LINUX_SLL, LINKTYPE_LINUX_SLL2)
    wanted = {LINKTYPE_IPV4: {ETH_TYPE_IP}, LINKTYPE_IPV6: {ETH_TYPE_IP6}}.get(
        to_linktype, {ETH_TYPE_IP, ETH_TYPE_IP6}
    )
    out, kept = [], []
    for number, record in enumerate(records, 1):
        parsed = network_layer(from_linktype, record.data)
        if parsed is None or (ip_only and parsed[0] not in wanted):
            continue
        ethertype, payload = parsed
        data = encapsulate(to_linktype, ethertype, payload, tags)
        grown = len(data) - len(record.data)
        out.append(Record(record.time_ns, data, record.wire_len + grown))
        kept.append(number)
    return out, kept


def systemd_journal(entry: bytes, order: str = "<") -> bytes:
    """systemd Journal Export Block: one journal entry in export format."""
    return _block(9, entry, order)

"""Packets for the IP-layer tests: dpkt where it builds them, ``struct`` where it cannot
(IPv6 extension-header chains, fragments with chosen offsets, ICMP with a chosen quote).

Addresses come from the documentation ranges (RFC 5737, RFC 3849).
"""

from __future__ import annotations

import struct
from pathlib import Path

import dpkt

from tests.capture.writers import (
    ETH_TYPE_IP,
    ETH_TYPE_IP6,
    LINKTYPE_ETHERNET,
    PcapFile,
    Record,
    encapsulate,
)

CLIENT4, SERVER4, ROUTER4 = (
    bytes([192, 0, 2, 10]),
    bytes([198, 51, 100, 25]),
    bytes([203, 0, 113, 1]),
)
CLIENT6 = bytes.fromhex("20010db8000000000000000000000010")
SERVER6 = bytes.fromhex("20010db8000000010000000000000025")
ROUTER6 = bytes.fromhex("20010db80000ffff0000000000000001")
T0 = 1_700_000_000_123_456_000
"""Time of the first frame; each further frame 1 ms later."""

TCP, UDP, ICMP, ICMP6 = 6, 17, 1, 58
HOP_BY_HOP, ROUTING, FRAGMENT, DEST_OPTS = 0, 43, 44, 60


def tcp(payload: bytes = b"EHLO client.example\r\n", seq: int = 1000, sport: int = 40000) -> bytes:
    """A TCP segment to port 25 (checksum left 0: tshark does not verify it by default)."""
    segment = dpkt.tcp.TCP(sport=sport, dport=25, seq=seq, ack=1, flags=0x18, win=502)
    segment.data = payload
    return bytes(segment)


def ipv4(
    body: bytes,
    proto: int = TCP,
    ident: int = 0x1234,
    offset: int = 0,
    more: bool = False,
    df: bool = False,
    options: bytes = b"",
    src: bytes = CLIENT4,
    dst: bytes = SERVER4,
) -> bytes:
    """An IPv4 packet; ``offset`` in bytes (a multiple of 8), ``options`` padded by the caller."""
    packet = dpkt.ip.IP(src=src, dst=dst, p=proto, ttl=61, id=ident, opts=options, data=body)
    packet.hl = (20 + len(options)) // 4  # dpkt does not count the options itself
    packet.offset, packet.mf, packet.df = offset // 8, int(more), int(df)
    return bytes(packet)


def ipv6(body: bytes, nxt: int = TCP, src: bytes = CLIENT6, dst: bytes = SERVER6) -> bytes:
    """An IPv6 header (hop limit 57) before ``body``, which may start with extension headers."""
    return struct.pack(">IHBB", 6 << 28, len(body), nxt, 57) + src + dst + body


def extension(nxt: int, options: bytes = b"") -> bytes:
    """Hop-by-hop or destination options header, padded with PadN to a multiple of 8."""
    pad = -(2 + len(options)) % 8
    padding = b"" if pad == 0 else (b"\x00" if pad == 1 else bytes([1, pad - 2]) + bytes(pad - 2))
    return bytes([nxt, (2 + len(options) + pad) // 8 - 1]) + options + padding


def routing(nxt: int) -> bytes:
    """A Segment Routing header (RFC 8754, routing type 4): one segment, segments left 0."""
    return bytes([nxt, 2, 4, 0, 0, 0, 0, 0]) + SERVER6


def fragment_header(nxt: int, offset: int, more: bool, ident: int) -> bytes:
    return struct.pack(">BBHI", nxt, 0, offset | int(more), ident)


def ethernet(packet: bytes) -> bytes:
    ethertype = ETH_TYPE_IP if packet[0] >> 4 == 4 else ETH_TYPE_IP6
    return encapsulate(LINKTYPE_ETHERNET, ethertype, packet)


def write_pcap(path: Path, packets: list[bytes], times: list[int] | None = None) -> Path:
    """IP packets in Ethernet frames, 1 ms apart from T0 unless ``times`` (ns) are given."""
    return write_frames(path, [ethernet(p) for p in packets], times)


def icmp4_error(icmp_type: int, code: int, quoted: bytes, mtu: int = 0) -> bytes:
    """An ICMP error from the router to the client, quoting ``quoted`` (RFC 792, RFC 1191)."""
    message = struct.pack(">BBHHH", icmp_type, code, 0, 0, mtu) + quoted
    checksum = dpkt.in_cksum(message)
    message = message[:2] + struct.pack(">H", checksum) + message[4:]
    return ipv4(message, proto=ICMP, src=ROUTER4, dst=CLIENT4)


def icmp6_error(icmp_type: int, code: int, quoted: bytes, mtu: int = 0) -> bytes:
    """An ICMPv6 error (RFC 4443) from the router to the client, checksum left 0."""
    message = struct.pack(">BBHI", icmp_type, code, 0, mtu) + quoted
    return ipv6(message, nxt=ICMP6, src=ROUTER6, dst=CLIENT6)


def write_frames(path: Path, frames: list[bytes], times: list[int] | None = None) -> Path:
    """Ethernet frames as they are, 1 ms apart from T0 unless ``times`` (ns) are given."""
    times = times or [T0 + i * 1_000_000 for i in range(len(frames))]
    records = [Record(t, f, len(f)) for t, f in zip(times, frames, strict=True)]
    path.write_bytes(PcapFile(LINKTYPE_ETHERNET, records).to_bytes())
    return path

"""The fast path: frame bytes straight to a TcpSegment for the common packet.

Most frames of a mail capture are Ethernet (or Linux cooked, or raw IP) carrying an IPv4
header without options or an IPv6 header without extension headers, carrying TCP, not a
fragment. For those, one pass of ``struct`` over the frame builds the ``TcpSegment``
without the ``IPPacket`` in between; an IP packet that is neither TCP nor ICMP is counted
and dropped before any object is built for it. Every other frame (VLAN stacks, PPPoE,
MPLS, IP options, extension headers, fragments, ICMP, anything malformed or cut short)
returns ``None`` and takes the general path of ``decode.py``, which gives the same result
for the frames the fast path takes: tests/capture/test_fastpath.py runs both on every
capture and compares them.
"""

from __future__ import annotations

import struct

from pcapsmtp.capture.decode import IPPROTO_ICMP, IPPROTO_ICMP6, IPPROTO_TCP
from pcapsmtp.capture.model import LINK_LAYOUTS, TcpSegment

IRRELEVANT = "irrelevant"
"""An IP packet that is neither TCP nor ICMP (UDP, say): counted as IP, then dropped."""

_ETHERTYPE_IP = b"\x08\x00"
_ETHERTYPE_IP6 = b"\x86\xdd"
_IPV4 = struct.Struct(">xxHHHBB")  # total length, identification, flags+offset, TTL, protocol
_IPV6 = struct.Struct(">xxxxHBB")  # payload length, next header, hop limit
_TCP = struct.Struct(">HHIIHH")  # ports, seq, ack, data offset+flags, window
_MAYBE_INTERESTING = (IPPROTO_TCP, IPPROTO_ICMP, IPPROTO_ICMP6)


def fast_segment(data: bytes, linktype: int, number: int, time_ns: int) -> TcpSegment | str | None:
    """The TCP segment in a common frame, IRRELEVANT, or None: take the general path."""
    layout = LINK_LAYOUTS.get(linktype)
    if layout is None:
        return None
    start, type_at = layout
    if len(data) < start + 40:
        return None
    if type_at >= 0:
        ethertype = data[type_at : type_at + 2]
        if ethertype != _ETHERTYPE_IP and ethertype != _ETHERTYPE_IP6:
            return None
    first = data[start]
    if first == 0x45:
        return _ipv4(data, start, number, time_ns)
    if first >> 4 == 6:
        return _ipv6(data, start, number, time_ns)
    return None


def _ipv4(data: bytes, start: int, number: int, time_ns: int) -> TcpSegment | str | None:
    total_len, ident, frag, ttl, proto = _IPV4.unpack_from(data, start)
    if frag & 0x3FFF or total_len < 20:  # a fragment; or 0 (offload) or malformed
        return None
    if proto != IPPROTO_TCP:
        return None if proto in _MAYBE_INTERESTING else IRRELEVANT
    end = start + min(total_len, len(data) - start)
    return _tcp(data, start, start + 20, end, total_len - 20, 4, ttl, bool(frag & 0x4000), ident,
                total_len, number, time_ns)  # fmt: skip


def _ipv6(data: bytes, start: int, number: int, time_ns: int) -> TcpSegment | str | None:
    payload_len, next_header, hop_limit = _IPV6.unpack_from(data, start)
    if payload_len == 0:  # jumbogram or offload
        return None
    if next_header != IPPROTO_TCP:
        # Extension headers (and a fragment header among them) need the general path.
        return IRRELEVANT if next_header == 17 else None
    total_len = 40 + payload_len
    end = start + min(total_len, len(data) - start)
    return _tcp(data, start, start + 40, end, payload_len, 6, hop_limit, True, 0, total_len,
                number, time_ns)  # fmt: skip


def _tcp(
    data: bytes,
    ip_start: int,
    tcp_start: int,
    end: int,
    ip_payload_len: int,
    version: int,
    ttl: int,
    df: bool,
    ident: int,
    ip_len: int,
    number: int,
    time_ns: int,
) -> TcpSegment | None:
    if end - tcp_start < 20:
        return None  # truncated TCP header: the general path says so
    sport, dport, seq, ack, off_flags, window = _TCP.unpack_from(data, tcp_start)
    header_len = (off_flags >> 12) * 4
    if header_len < 20 or header_len > ip_payload_len:
        return None
    addr_len = 4 if version == 4 else 16
    src_at = ip_start + (12 if version == 4 else 8)
    payload_at = tcp_start + header_len
    return TcpSegment(
        number,
        time_ns,
        version,
        data[src_at : src_at + addr_len],
        data[src_at + addr_len : src_at + 2 * addr_len],
        sport,
        dport,
        seq,
        ack,
        off_flags & 0x0FFF,
        window,
        data[tcp_start + 20 : min(payload_at, end)],
        data[payload_at:end],
        ip_payload_len - header_len,
        ttl,
        df,
        ident,
        ip_len,
    )

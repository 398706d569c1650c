"""Frames -> IP packets -> TCP segments and ICMP errors.

Header fields are read with ``struct.unpack_from`` on the frame's bytes: building dpkt
objects for every packet would cost more than all the analysis after it (DESIGN.md,
"Speed"); the common packet does not even come here (``fast.py``). The constants keep
dpkt's names, written out so that reading a capture does not import dpkt (~70 ms).
"""

from __future__ import annotations

import struct
from dataclasses import replace

from pcapsmtp.capture.model import (
    LINK_LAYOUTS,
    LINKTYPE_ETHERNET,
    LINKTYPE_LOOP,
    LINKTYPE_NULL,
    LINKTYPE_SYSTEMD_JOURNAL,
    Frame,
    IcmpError,
    IPPacket,
    QuotedPacket,
    TcpSegment,
)

# EtherTypes (IEEE 802 numbers, as dpkt.ethernet names them) and IP protocol numbers (IANA),
# written out: importing dpkt costs ~70 ms of start-up, and the common path needs no dpkt.
ETH_TYPE_IP = 0x0800
ETH_TYPE_IP6 = 0x86DD
VLAN_TAGS = {0x8100, 0x88A8, 0x9100}  # 802.1Q, 802.1ad, the old QinQ tag
ETH_TYPE_CISCO_METADATA = 0x8909
"""Cisco TrustSec inline SGT tag: version, length, options, SGT, then the next EtherType.
Switches insert it on trunk and SPAN links, so captures taken there carry it."""
ETH_TYPE_PPPOE_SESSION = 0x8864
ETH_TYPE_MPLS = 0x8847
PPP_IP = 0x0021
PPP_IP6 = 0x0057

# BSD loopback address families (DLT_NULL is host byte order, DLT_LOOP network order).
AF_INET = 2
AF_INET6 = {10, 24, 28, 30}

IPPROTO_ICMP = 1
IPPROTO_TCP = 6
IPPROTO_UDP = 17
IPPROTO_ICMP6 = 58
# hop-by-hop, routing, destination options, mobility, HIP, shim6
IPV6_EXTENSION_HEADERS = {0, 43, 60, 135, 139, 140}
IPV6_FRAGMENT = 44
IPV6_AH = 51
IPV6_CHAIN = IPV6_EXTENSION_HEADERS | {IPV6_AH}
"""Extension headers walked to reach the upper layer (the fragment header is handled apart)."""

ICMP_UNREACH = 3
ICMP_TIME_EXCEEDED = 11
ICMP_PARAM_PROBLEM = 12
ICMP_FRAG_NEEDED = 4
ICMP4_ERRORS = {ICMP_UNREACH, ICMP_TIME_EXCEEDED, ICMP_PARAM_PROBLEM, 4}  # 4: source quench
ICMP6_ERRORS = {1, 2, 3, 4}  # unreachable, packet too big, time exceeded, parameter problem
ICMP6_PACKET_TOO_BIG = 2


def _ip_start(frame: Frame) -> int:
    """Offset of the IP header in the frame, or -1 when the frame carries no IP."""
    data = frame.data
    linktype = frame.linktype
    layout = LINK_LAYOUTS.get(linktype)
    if layout is not None:
        start, type_at = layout
        return start if type_at < 0 else _ethertype_payload(data, type_at, header_len=start)
    if linktype in (LINKTYPE_NULL, LINKTYPE_LOOP):
        if len(data) < 4:
            return -1
        family = struct.unpack_from(">I" if linktype == LINKTYPE_LOOP else "<I", data)[0]
        if family > 0xFFFF:  # a capture written on a host of the other byte order
            family = struct.unpack_from("<I" if linktype == LINKTYPE_LOOP else ">I", data)[0]
        return 4 if family == AF_INET or family in AF_INET6 else -1
    if linktype == LINKTYPE_SYSTEMD_JOURNAL:
        return -1  # a log entry, not a packet
    return -2


def _ethertype_payload(data: bytes, type_offset: int, header_len: int | None = None) -> int:
    """Follow VLAN and SGT tags, PPPoE and MPLS from the EtherType at ``type_offset``."""
    if len(data) < type_offset + 2:
        return -1
    (ethertype,) = struct.unpack_from(">H", data, type_offset)
    offset = header_len if header_len is not None else type_offset + 2
    while ethertype in VLAN_TAGS or ethertype == ETH_TYPE_CISCO_METADATA:
        size = 4 if ethertype in VLAN_TAGS else 8
        if len(data) < offset + size:
            return -1
        (ethertype,) = struct.unpack_from(">H", data, offset + size - 2)
        offset += size
    if ethertype in (ETH_TYPE_IP, ETH_TYPE_IP6):
        return offset
    if ethertype == ETH_TYPE_PPPOE_SESSION and len(data) >= offset + 8:
        (ppp,) = struct.unpack_from(">H", data, offset + 6)
        return offset + 8 if ppp in (PPP_IP, PPP_IP6) else -1
    if ethertype == ETH_TYPE_MPLS:
        while len(data) >= offset + 4:
            bottom = data[offset + 2] & 1
            offset += 4
            if bottom:
                return offset if len(data) > offset and data[offset] >> 4 in (4, 6) else -1
    return -1


def decode_ip(frame: Frame) -> IPPacket | str | None:
    """The IP packet in a frame; None when it carries none; a reason string when malformed."""
    start = _ip_start(frame)
    if start == -2:
        return "unsupported link type"
    if start < 0:
        return None
    data = frame.data
    if len(data) <= start:
        return None if frame.linktype == LINKTYPE_ETHERNET else "malformed IP header"
    return parse_ip(data, start, frame.number, frame.time_ns)


def parse_ip(data: bytes, start: int, number: int = 0, time_ns: int = 0) -> IPPacket | str:
    """The IPv4 or IPv6 packet at ``data[start:]``, or why it cannot be read."""
    version = data[start] >> 4
    if version == 4:
        return _ipv4(number, time_ns, data, start)
    if version == 6:
        return _ipv6(number, time_ns, data, start)
    return "malformed IP header"


def _ipv4(number: int, time_ns: int, data: bytes, start: int) -> IPPacket | str:
    if len(data) < start + 20:
        return "truncated IP header"
    vihl, _tos, total_len, ident, frag, ttl, proto = struct.unpack_from(">BBHHHBB", data, start)
    header_len = (vihl & 0x0F) * 4
    if header_len < 20 or len(data) < start + header_len:
        return "malformed IP header"
    captured = len(data) - start
    if total_len == 0:
        total_len = captured  # TCP segmentation offload: the length field is left at 0
    elif total_len < header_len:
        return "malformed IP header"
    end = start + min(total_len, captured)
    return IPPacket(
        frame=number,
        time_ns=time_ns,
        version=4,
        src=data[start + 12 : start + 16],
        dst=data[start + 16 : start + 20],
        proto=proto,
        ttl=ttl,
        df=bool(frag & 0x4000),
        ident=ident,
        total_len=total_len,
        payload=data[start + header_len : end],
        payload_len=total_len - header_len,
        frag_offset=(frag & 0x1FFF) * 8,
        more_fragments=bool(frag & 0x2000),
    )


def _ipv6(number: int, time_ns: int, data: bytes, start: int) -> IPPacket | str:
    if len(data) < start + 40:
        return "truncated IP header"
    payload_len, next_header, hop_limit = struct.unpack_from(">HBB", data, start + 4)
    captured = len(data) - start - 40
    if payload_len == 0:
        payload_len = captured  # jumbogram or offload
    offset = start + 40
    frag_offset, more, ident = 0, False, 0
    while True:
        walked = _extension_chain(data, offset, next_header)
        if isinstance(walked, str):
            return walked
        offset, next_header = walked
        if next_header != IPV6_FRAGMENT:
            break
        if len(data) < offset + 8:
            return "truncated IPv6 extension header"
        off_flags, ident = struct.unpack_from(">HI", data, offset + 2)
        frag_offset, more = off_flags & 0xFFF8, bool(off_flags & 1)
        next_header = data[offset]
        offset += 8
        if frag_offset or more:
            # Headers after the fragment header belong to the fragmentable part (RFC 8200,
            # 4.5): a later fragment holds only data. They are read after reassembly.
            break
    header_len = offset - start
    if header_len - 40 > payload_len:
        return "malformed IPv6 extension headers"
    total_len = 40 + payload_len
    end = start + min(total_len, len(data) - start)
    return IPPacket(
        frame=number,
        time_ns=time_ns,
        version=6,
        src=data[start + 8 : start + 24],
        dst=data[start + 24 : start + 40],
        proto=next_header,
        ttl=hop_limit,
        df=True,
        ident=ident,
        total_len=total_len,
        payload=data[offset:end],
        payload_len=total_len - header_len,
        frag_offset=frag_offset,
        more_fragments=more,
    )


def _extension_chain(data: bytes, offset: int, next_header: int) -> tuple[int, int] | str:
    """Skip IPv6 extension headers other than the fragment header from ``data[offset]``:
    (offset of what follows, its protocol)."""
    while next_header in IPV6_CHAIN:
        if len(data) < offset + 8:
            return "truncated IPv6 extension header"
        nh, ext_len = data[offset], data[offset + 1]
        offset += (ext_len + 2) * 4 if next_header == IPV6_AH else (ext_len + 1) * 8
        next_header = nh
    return offset, next_header


def ipv6_upper_layer(ip: IPPacket) -> IPPacket | str:
    """A reassembled IPv6 datagram past the extension headers of its fragmentable part."""
    if ip.version != 6 or ip.proto not in IPV6_CHAIN:
        return ip
    walked = _extension_chain(ip.payload, 0, ip.proto)
    if isinstance(walked, str):
        return walked
    skip, proto = walked
    if skip > ip.payload_len:
        return "malformed IPv6 extension headers"
    return replace(ip, proto=proto, payload=ip.payload[skip:], payload_len=ip.payload_len - skip)


def decode_tcp(ip: IPPacket) -> TcpSegment | str:
    """The TCP segment in an (unfragmented or reassembled) IP packet."""
    seg = ip.payload
    if len(seg) < 20:
        return "truncated TCP header"
    sport, dport, seq, ack, off_flags, window = struct.unpack_from(">HHIIHH", seg)
    header_len = (off_flags >> 12) * 4
    if header_len < 20 or header_len > ip.payload_len:
        return "malformed TCP header"
    return TcpSegment(
        frame=ip.frame,
        time_ns=ip.time_ns,
        version=ip.version,
        src=ip.src,
        dst=ip.dst,
        sport=sport,
        dport=dport,
        seq=seq,
        ack=ack,
        flags=off_flags & 0x0FFF,
        window=window,
        options=seg[20:header_len],
        payload=seg[header_len:],
        length=ip.payload_len - header_len,
        ttl=ip.ttl,
        df=ip.df,
        ip_id=ip.ident,
        ip_len=ip.total_len,
        fragment_frames=ip.fragment_frames,
    )


def decode_icmp_error(ip: IPPacket) -> IcmpError | None:
    """An ICMP(v6) error with the head of the packet it quotes; None for other ICMP."""
    body = ip.payload
    if len(body) < 8:
        return None
    icmp_type, code = body[0], body[1]
    mtu = None
    if ip.version == 4:
        if icmp_type not in ICMP4_ERRORS:
            return None
        if icmp_type == ICMP_UNREACH and code == ICMP_FRAG_NEEDED:
            mtu = struct.unpack_from(">H", body, 6)[0]
    else:
        if icmp_type not in ICMP6_ERRORS:
            return None
        if icmp_type == ICMP6_PACKET_TOO_BIG:
            mtu = struct.unpack_from(">I", body, 4)[0]
    return IcmpError(
        frame=ip.frame,
        time_ns=ip.time_ns,
        version=ip.version,
        src=ip.src,
        dst=ip.dst,
        type=icmp_type,
        code=code,
        mtu=mtu,
        quoted=_quoted(body[8:]),
    )


def _quoted(data: bytes) -> QuotedPacket | None:
    """The quoted original header; RFC 792 promises its first 8 payload bytes: ports and seq."""
    if not data:
        return None
    packet = parse_ip(data, 0)
    if isinstance(packet, str):
        return None
    payload = packet.payload
    sport = dport = seq = None
    if len(payload) >= 4 and packet.proto in (IPPROTO_TCP, IPPROTO_UDP):
        sport, dport = struct.unpack_from(">HH", payload)
    if len(payload) >= 8 and packet.proto == IPPROTO_TCP:
        (seq,) = struct.unpack_from(">I", payload, 4)
    return QuotedPacket(
        packet.src,
        packet.dst,
        packet.proto,
        packet.total_len,
        packet.df,
        sport,
        dport,
        seq,
        len(payload) if packet.proto in (IPPROTO_TCP, IPPROTO_UDP) else 0,
    )

"""decode.py: link layers down to IP, IP headers, TCP, ICMP errors and their quoted packets.

Packets are built with dpkt (``build.py``), written into a pcap, and what we decode is
checked against the values we built and against what tshark makes of the same file.
"""

from __future__ import annotations

import struct
from dataclasses import replace

import dpkt
import pytest

from pcapsmtp.capture import IcmpError, IPPacket, QuotedPacket, TcpSegment, open_capture, packets
from pcapsmtp.capture.decode import decode_ip
from tests.capture import build as b
from tests.capture.tshark import TSHARK, reader_facts, tshark_facts, tshark_fields
from tests.capture.writers import ETH_TYPE_IP, ETH_TYPE_IP6, LINKTYPE_ETHERNET, encapsulate

SEGMENT = b.tcp()
IPV4 = b.ipv4(SEGMENT)
IPV6 = b.ipv6(SEGMENT)


def decoded(path) -> list:
    with open_capture(str(path)) as capture:
        return list(packets(capture))


@pytest.fixture
def oracle():
    if TSHARK is None:
        pytest.skip("tshark is not installed")


# --- link layers ------------------------------------------------------------------------


def tag(tpid: int, vid: int) -> int:
    return tpid << 16 | vid


def cisco_metadata(sgt: int, ethertype: int) -> bytes:
    """Cisco MetaData (EtherType 0x8909): version, length, options, SGT, next EtherType."""
    return struct.pack(">BBHHH", 1, 1, 1, sgt, ethertype)


def pppoe_session(ppp_protocol: int, payload: bytes) -> bytes:
    return struct.pack(">BBHHH", 0x11, 0, 0x2A, len(payload) + 2, ppp_protocol) + payload


def mpls(labels: list[int], payload: bytes) -> bytes:
    stack = b"".join(
        struct.pack(">I", label << 12 | (i == len(labels) - 1) << 8 | 64)
        for i, label in enumerate(labels)
    )
    return stack + payload


def ethernet(ethertype: int, payload: bytes, tags: tuple[int, ...] = ()) -> bytes:
    return encapsulate(LINKTYPE_ETHERNET, ethertype, payload, tags)


# (name, frame, the IP packet inside or None)
ETHERNET_CASES = [
    ("untagged IPv4", ethernet(ETH_TYPE_IP, IPV4), IPV4),
    ("untagged IPv6", ethernet(ETH_TYPE_IP6, IPV6), IPV6),
    ("802.1Q", ethernet(ETH_TYPE_IP, IPV4, (tag(0x8100, 100),)), IPV4),
    ("802.1ad QinQ", ethernet(ETH_TYPE_IP6, IPV6, (tag(0x88A8, 7), tag(0x8100, 100))), IPV6),
    ("0x9100 QinQ", ethernet(ETH_TYPE_IP, IPV4, (tag(0x9100, 7), tag(0x8100, 100))), IPV4),
    ("Cisco MetaData (SGT)", ethernet(0x8909, cisco_metadata(17, ETH_TYPE_IP) + IPV4), IPV4),
    (
        "802.1Q then Cisco MetaData",
        ethernet(0x8909, cisco_metadata(17, ETH_TYPE_IP6) + IPV6, (tag(0x8100, 5),)),
        IPV6,
    ),
    ("PPPoE session", ethernet(0x8864, pppoe_session(0x0021, IPV4)), IPV4),
    ("MPLS, two labels", ethernet(0x8847, mpls([16, 17], IPV4)), IPV4),
    ("ARP", ethernet(0x0806, bytes(dpkt.arp.ARP())), None),
    ("PPPoE LCP", ethernet(0x8864, pppoe_session(0xC021, b"\x01\x01\x00\x04")), None),
]


@pytest.mark.parametrize(
    ("frame", "expected"),
    [case[1:] for case in ETHERNET_CASES],
    ids=[case[0] for case in ETHERNET_CASES],
)
def test_ethernet_encapsulations(tmp_path, frame: bytes, expected: bytes | None) -> None:
    """Tags, PPPoE and MPLS are followed to the IP header; frames without IP give None."""
    path = tmp_path / "frame.pcap"
    b.write_frames(path, [frame])
    with open_capture(str(path)) as capture:
        (ip,) = [decode_ip(f) for f in capture.frames()]
    if expected is None:
        assert ip is None
        return
    assert isinstance(ip, IPPacket)
    assert (ip.src, ip.dst, ip.proto) in {
        (b.CLIENT4, b.SERVER4, b.TCP),
        (b.CLIENT6, b.SERVER6, b.TCP),
    }
    assert (ip.total_len, ip.payload, ip.payload_len) == (len(expected), SEGMENT, len(SEGMENT))


@pytest.mark.oracle
def test_ethernet_encapsulations_agree_with_tshark(tmp_path, oracle) -> None:
    """tshark finds IP in exactly the frames where we do."""
    path = tmp_path / "encapsulations.pcap"
    b.write_frames(path, [case[1] for case in ETHERNET_CASES])
    ours, _info = reader_facts(path)
    assert ours == tshark_facts(path).facts
    assert ours.ip_frames == tuple(i for i, case in enumerate(ETHERNET_CASES, 1) if case[2])


# --- IP headers -------------------------------------------------------------------------

RECORD_ROUTE = bytes([7, 11, 4]) + b.ROUTER4 + bytes(4) + b"\x00"  # RFC 791, 3.1; then EOL
# (name, IP packet carrying SEGMENT)
IP_HEADER_CASES = [
    ("IPv4, Router Alert option", b.ipv4(SEGMENT, options=bytes([148, 4, 0, 0]))),
    ("IPv4, Record Route option", b.ipv4(SEGMENT, options=RECORD_ROUTE)),
    ("IPv4, 40 bytes of options", b.ipv4(SEGMENT, options=bytes([1]) * 39 + b"\x00")),
    ("IPv6, hop-by-hop", b.ipv6(b.extension(b.TCP, bytes([5, 2, 0, 0])) + SEGMENT, b.HOP_BY_HOP)),
    (
        "IPv6, hop-by-hop, destination options",
        b.ipv6(b.extension(b.DEST_OPTS) + b.extension(b.TCP) + SEGMENT, b.HOP_BY_HOP),
    ),
    (
        "IPv6, hop-by-hop, routing, destination options",
        b.ipv6(
            b.extension(b.ROUTING) + b.routing(b.DEST_OPTS) + b.extension(b.TCP) + SEGMENT,
            b.HOP_BY_HOP,
        ),
    ),
    (
        "IPv6, atomic fragment (RFC 6946)",
        b.ipv6(b.fragment_header(b.TCP, 0, False, 77) + SEGMENT, b.FRAGMENT),
    ),
    (
        "IPv6, destination options, atomic fragment, destination options",
        b.ipv6(
            b.extension(b.FRAGMENT)
            + b.fragment_header(b.DEST_OPTS, 0, False, 78)
            + b.extension(b.TCP)
            + SEGMENT,
            b.DEST_OPTS,
        ),
    ),
]


@pytest.mark.parametrize(
    "packet", [case[1] for case in IP_HEADER_CASES], ids=[case[0] for case in IP_HEADER_CASES]
)
def test_ip_header_options_and_extension_headers(tmp_path, packet: bytes) -> None:
    """Options and extension headers are skipped: the TCP segment comes out whole."""
    (segment,) = decoded(b.write_pcap(tmp_path / "ip.pcap", [packet]))
    assert isinstance(segment, TcpSegment)
    expected = dpkt.tcp.TCP(SEGMENT)
    assert (segment.sport, segment.dport, segment.seq, segment.payload) == (
        expected.sport,
        expected.dport,
        expected.seq,
        expected.data,
    )
    assert (segment.ip_len, segment.length) == (len(packet), len(expected.data))


TCP_FIELDS = ["frame.number", "tcp.srcport", "tcp.dstport", "tcp.seq_raw", "tcp.len", "tcp.payload"]


def tshark_segments(path) -> list[tuple]:
    """(frame, sport, dport, seq, length, payload) of every TCP segment tshark dissects
    (at the frame completing a reassembly), leaving out the quotes inside ICMP errors."""
    rows = tshark_fields(path, TCP_FIELDS, "tcp and not icmp and not icmpv6")
    return [
        (int(r["frame.number"][0]), *(int(r[f][0]) for f in TCP_FIELDS[1:5]),
         bytes.fromhex(r["tcp.payload"][0] if r["tcp.payload"] else ""))
        for r in rows
    ]  # fmt: skip


def our_segments(path) -> list[tuple]:
    return [
        (s.frame, s.sport, s.dport, s.seq, s.length, s.payload)
        for s in decoded(path)
        if isinstance(s, TcpSegment)
    ]


@pytest.mark.oracle
def test_ip_headers_agree_with_tshark(tmp_path, oracle) -> None:
    """tshark finds the same TCP segments behind the same options and extension headers."""
    path = b.write_pcap(tmp_path / "headers.pcap", [case[1] for case in IP_HEADER_CASES])
    ours = our_segments(path)
    assert len(ours) == len(IP_HEADER_CASES)
    assert ours == tshark_segments(path)


# --- ICMP errors ------------------------------------------------------------------------

QUOTED_SEQ = 0x7EC453B0
FULL_SEGMENT = b.tcp(b"x" * 1400, seq=QUOTED_SEQ)
BIG4 = b.ipv4(FULL_SEGMENT, df=True)
BIG6 = b.ipv6(FULL_SEGMENT)
QUOTED4 = QuotedPacket(b.CLIENT4, b.SERVER4, b.TCP, len(BIG4), True, 40000, 25, QUOTED_SEQ)
QUOTED6 = QuotedPacket(b.CLIENT6, b.SERVER6, b.TCP, len(BIG6), True, 40000, 25, QUOTED_SEQ)
UDP_DATAGRAM = b.ipv4(struct.pack(">HHHH", 53000, 53, 30, 0) + bytes(22), proto=b.UDP)

# (name, ICMP packet, (type, code, mtu, quoted) or None for an ICMP message that is no error)
ICMP_CASES = [
    (
        "fragmentation needed, 8 bytes of TCP quoted",
        b.icmp4_error(3, 4, BIG4[:28], mtu=1400),
        (3, 4, 1400, replace(QUOTED4, transport_bytes=8)),
    ),
    (
        "fragmentation needed, 576 bytes quoted (RFC 1812)",
        b.icmp4_error(3, 4, BIG4[:576], mtu=1280),
        (3, 4, 1280, replace(QUOTED4, transport_bytes=556)),
    ),
    (
        "fragmentation needed, quoted header with options",
        b.icmp4_error(
            3, 4, b.ipv4(FULL_SEGMENT, df=True, options=bytes([148, 4, 0, 0]))[:32], 1400
        ),
        (
            3,
            4,
            1400,
            QuotedPacket(
                b.CLIENT4, b.SERVER4, b.TCP, len(BIG4) + 4, True, 40000, 25, QUOTED_SEQ, 8
            ),
        ),
    ),
    (
        "port unreachable, UDP quoted",
        b.icmp4_error(3, 3, UDP_DATAGRAM[:28]),
        (3, 3, None, QuotedPacket(b.CLIENT4, b.SERVER4, b.UDP, 50, False, 53000, 53, None, 8)),
    ),
    (
        "TTL exceeded",
        b.icmp4_error(11, 0, BIG4[:28]),
        (11, 0, None, replace(QUOTED4, transport_bytes=8)),
    ),
    (
        "ICMPv6 Packet Too Big",
        b.icmp6_error(2, 0, BIG6[:1232], mtu=1280),
        (2, 0, 1280, replace(QUOTED6, transport_bytes=1192)),
    ),
    (
        "ICMPv6 Packet Too Big quoting a hop-by-hop header",
        b.icmp6_error(2, 0, b.ipv6(b.extension(b.TCP) + FULL_SEGMENT, b.HOP_BY_HOP)[:1232], 1280),
        (
            2,
            0,
            1280,
            QuotedPacket(
                b.CLIENT6, b.SERVER6, b.TCP, len(BIG6) + 8, True, 40000, 25, QUOTED_SEQ, 1184
            ),
        ),
    ),
    (
        "ICMPv6 unreachable",
        b.icmp6_error(1, 4, BIG6[:100]),
        (1, 4, None, replace(QUOTED6, transport_bytes=60)),
    ),
    ("echo request", b.ipv4(bytes([8, 0, 0, 0, 0, 1, 0, 1]), proto=b.ICMP), None),
    ("ICMPv6 echo request", b.ipv6(bytes([128, 0, 0, 0, 0, 1, 0, 1]), nxt=b.ICMP6), None),
]


@pytest.mark.parametrize(
    ("packet", "expected"),
    [case[1:] for case in ICMP_CASES],
    ids=[case[0] for case in ICMP_CASES],
)
def test_icmp_errors(tmp_path, packet: bytes, expected) -> None:
    """ICMP errors give type, code, next-hop MTU and the quoted src/dst/ports/seq; other
    ICMP messages give nothing."""
    found = decoded(b.write_pcap(tmp_path / "icmp.pcap", [packet]))
    if expected is None:
        assert found == []
        return
    (error,) = found
    assert isinstance(error, IcmpError)
    assert (error.type, error.code, error.mtu, error.quoted) == expected
    assert error.src in (b.ROUTER4, b.ROUTER6)
    assert error.is_too_big == (expected[2] is not None)


ICMP_FIELDS = ["frame.number", "icmp.mtu", "icmpv6.mtu", "ip.src", "ip.dst", "ipv6.src",
               "ipv6.dst", "tcp.srcport", "tcp.dstport", "tcp.seq", "udp.srcport",
               "udp.dstport"]  # fmt: skip
ICMP_ERRORS = "icmp.type in {3, 4, 11, 12} or icmpv6.type in {1, 2, 3, 4}"


def tshark_icmp_errors(path) -> list[tuple]:
    """(frame, mtu, quoted src, quoted dst, sport, dport, seq) as tshark dissects them."""
    out = []
    for r in tshark_fields(path, ICMP_FIELDS, ICMP_ERRORS):
        v6 = bool(r["ipv6.src"])
        mtu = (r["icmpv6.mtu"] if v6 else r["icmp.mtu"]) or [None]
        src, dst = (r["ipv6.src"], r["ipv6.dst"]) if v6 else (r["ip.src"], r["ip.dst"])
        ports = (r["tcp.srcport"], r["tcp.dstport"]) if r["tcp.srcport"] else (
            r["udp.srcport"], r["udp.dstport"])  # fmt: skip
        seq = int(r["tcp.seq"][0]) if r["tcp.seq"] else None  # absolute inside ICMP
        number = int(r["frame.number"][0])
        mtu_value = int(mtu[0]) if mtu[0] is not None else None
        out.append((number, mtu_value, src[-1], dst[-1], *(int(p[0]) for p in ports), seq))
    return out


def our_icmp_errors(path) -> list[tuple]:
    import ipaddress

    return [
        (e.frame, e.mtu, str(ipaddress.ip_address(e.quoted.src)),
         str(ipaddress.ip_address(e.quoted.dst)), e.quoted.sport, e.quoted.dport, e.quoted.seq)
        for e in decoded(path) if isinstance(e, IcmpError)
    ]  # fmt: skip


@pytest.mark.oracle
def test_icmp_errors_agree_with_tshark(tmp_path, oracle) -> None:
    """MTU and quoted addresses, ports and sequence number are tshark's."""
    path = b.write_pcap(tmp_path / "icmp.pcap", [case[1] for case in ICMP_CASES])
    ours = our_icmp_errors(path)
    assert len(ours) == sum(1 for case in ICMP_CASES if case[2])
    assert ours == tshark_icmp_errors(path)


@pytest.mark.oracle
@pytest.mark.parametrize("name", ["zeek-smtp.pcap", "arkime-arkime_synthetic.pcap"])
def test_real_icmp_errors_agree_with_tshark(public_capture, oracle, name: str) -> None:
    """The path-MTU ICMP errors in real captures decode as tshark decodes them."""
    path = public_capture(name)
    ours = our_icmp_errors(path)
    assert ours
    assert ours == tshark_icmp_errors(path)

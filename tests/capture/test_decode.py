"""decode.py: link layers down to IP, IP headers, TCP, ICMP errors and their quoted packets.

Packets are built with dpkt (extension headers and tags with ``struct`` where dpkt has no
builder), written into a pcap, and what we decode is checked against the values we built
and against what tshark makes of the same file.
"""

from __future__ import annotations

import struct

import dpkt
import pytest

from pcapsmtp.capture import IPPacket, open_capture
from pcapsmtp.capture.decode import decode_ip
from tests.capture.tshark import TSHARK, reader_facts, tshark_facts
from tests.capture.writers import (
    ETH_TYPE_IP,
    ETH_TYPE_IP6,
    LINKTYPE_ETHERNET,
    PcapFile,
    Record,
    encapsulate,
)

CLIENT4, SERVER4 = bytes([192, 0, 2, 10]), bytes([198, 51, 100, 25])
CLIENT6 = bytes.fromhex("20010db8000000000000000000000010")
SERVER6 = bytes.fromhex("20010db8000000010000000000000025")
T0 = 1_700_000_000_123_456_000


def tcp(
    payload: bytes = b"EHLO client.example\r\n", seq: int = 1000, sport: int = 40000
) -> dpkt.tcp.TCP:
    return dpkt.tcp.TCP(sport=sport, dport=25, seq=seq, ack=1, flags=0x18, win=502, data=payload)


def ipv4(payload=None, **fields) -> bytes:
    segment = tcp() if payload is None else payload
    proto = fields.pop("p", dpkt.ip.IP_PROTO_TCP)
    return bytes(
        dpkt.ip.IP(src=CLIENT4, dst=SERVER4, p=proto, ttl=61, id=0x1234, data=segment, **fields)
    )


def ipv6(payload=None, nxt: int = dpkt.ip.IP_PROTO_TCP, extensions: bytes = b"") -> bytes:
    """IPv6 built by hand: dpkt cannot serialise an extension-header chain."""
    body = extensions + bytes(tcp() if payload is None else payload)
    header = struct.pack(">IHBB", 6 << 28, len(body), nxt, 57) + CLIENT6 + SERVER6
    return header + body


def write_pcap(path, frames: list[bytes], linktype: int = LINKTYPE_ETHERNET) -> None:
    records = [Record(T0 + i * 1_000_000, f, len(f)) for i, f in enumerate(frames)]
    path.write_bytes(PcapFile(linktype, records).to_bytes())


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
    ("untagged IPv4", ethernet(ETH_TYPE_IP, ipv4()), ipv4()),
    ("untagged IPv6", ethernet(ETH_TYPE_IP6, ipv6()), ipv6()),
    ("802.1Q", ethernet(ETH_TYPE_IP, ipv4(), (tag(0x8100, 100),)), ipv4()),
    ("802.1ad QinQ", ethernet(ETH_TYPE_IP6, ipv6(), (tag(0x88A8, 7), tag(0x8100, 100))), ipv6()),
    ("0x9100 QinQ", ethernet(ETH_TYPE_IP, ipv4(), (tag(0x9100, 7), tag(0x8100, 100))), ipv4()),
    ("Cisco MetaData (SGT)", ethernet(0x8909, cisco_metadata(17, ETH_TYPE_IP) + ipv4()), ipv4()),
    (
        "802.1Q then Cisco MetaData",
        ethernet(0x8909, cisco_metadata(17, ETH_TYPE_IP6) + ipv6(), (tag(0x8100, 5),)),
        ipv6(),
    ),
    ("PPPoE session", ethernet(0x8864, pppoe_session(0x0021, ipv4())), ipv4()),
    ("MPLS, two labels", ethernet(0x8847, mpls([16, 17], ipv4())), ipv4()),
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
    write_pcap(path, [frame])
    with open_capture(str(path)) as capture:
        (decoded,) = [decode_ip(f) for f in capture.frames()]
    if expected is None:
        assert decoded is None
        return
    assert isinstance(decoded, IPPacket)
    assert (decoded.src, decoded.dst, decoded.proto) in {
        (CLIENT4, SERVER4, dpkt.ip.IP_PROTO_TCP),
        (CLIENT6, SERVER6, dpkt.ip.IP_PROTO_TCP),
    }
    assert decoded.total_len == len(expected)
    assert len(decoded.payload) == decoded.payload_len == len(bytes(tcp()))
    assert expected.endswith(decoded.payload)


@pytest.mark.oracle
def test_ethernet_encapsulations_agree_with_tshark(tmp_path) -> None:
    """tshark finds IP in exactly the frames where we do."""
    if TSHARK is None:
        pytest.skip("tshark is not installed")
    path = tmp_path / "encapsulations.pcap"
    write_pcap(path, [case[1] for case in ETHERNET_CASES])
    ours, _info = reader_facts(path)
    assert ours == tshark_facts(path).facts
    assert ours.ip_frames == tuple(i for i, case in enumerate(ETHERNET_CASES, 1) if case[2])

"""The struct fast path (fast.py) against the general path (decode.py).

Both must give the same TcpSegments, IcmpErrors and capture facts: on every capture we
have, re-framed under each link layer the fast path reads, on generated benchmark
captures, and on a table of frames at each edge of the fast path (where it must hand the
frame to the general path instead of deciding itself).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from pcapsmtp.capture import open_capture, packets
from pcapsmtp.capture.decode import decode_ip, decode_tcp
from pcapsmtp.capture.fast import IRRELEVANT, fast_segment
from pcapsmtp.capture.model import Frame
from tests.capture import build as b
from tests.capture.writers import (
    ETH_TYPE_IP,
    ETH_TYPE_IP6,
    LINKTYPE_ETHERNET,
    LINKTYPE_IPV4,
    LINKTYPE_LINUX_SLL,
    LINKTYPE_LINUX_SLL2,
    LINKTYPE_RAW,
    PcapFile,
    Record,
    encapsulate,
    read_pcap,
    relink,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts" / "bench"))

from gencapture import LINKTYPE_LINUX_SLL as GEN_SLL
from gencapture import generate

from tests.captures import LAB, all_captures, capture_id


def both_paths(path: Path) -> tuple[tuple, tuple]:
    """(packets, facts) read with the fast path, and the same read without it."""
    results = []
    for fast in (True, False):
        with open_capture(str(path)) as capture:
            found = list(packets(capture, fast=fast))
            info = capture.info
            facts = (info.frames, info.ip_frames, info.reassembled, info.undecoded, info.warnings)
        results.append((found, facts))
    return results[0], results[1]


@pytest.mark.parametrize("path", all_captures(), ids=capture_id)
def test_same_packets_on_every_capture(path: Path) -> None:
    fast, general = both_paths(path)
    assert fast == general


RELINKED = [LINKTYPE_LINUX_SLL, LINKTYPE_LINUX_SLL2, LINKTYPE_RAW, LINKTYPE_IPV4]


@pytest.mark.parametrize("linktype", RELINKED)
@pytest.mark.parametrize(
    "path", sorted(LAB.glob("*.pcap")), ids=lambda p: p.name if isinstance(p, Path) else p
)
def test_same_packets_under_every_fast_link_layer(path: Path, linktype: int, tmp_path) -> None:
    original = read_pcap(path.read_bytes())
    records, _ = relink(original.records, original.linktype, linktype)
    moved = tmp_path / "relinked.pcap"
    moved.write_bytes(PcapFile(linktype, records).to_bytes())
    fast, general = both_paths(moved)
    assert fast == general


@pytest.mark.parametrize(
    ("mix", "linktype", "fmt"),
    [("smtp", LINKTYPE_ETHERNET, "pcap"), ("mixed", GEN_SLL, "pcap"), ("smtp", 1, "pcapng")],
)
def test_same_packets_on_generated_captures(mix, linktype, fmt, tmp_path) -> None:
    path = tmp_path / f"generated.{fmt}"
    with open(path, "wb") as out:
        generate(out, 3 << 20, seed=7, mix=mix, linktype=linktype, fmt=fmt, concurrency=40)
    fast, general = both_paths(path)
    assert fast == general
    # The fast path does take nearly every frame of such a capture.
    with open_capture(str(path)) as capture:
        frames = list(capture.frames())
    taken = [f for f in frames if fast_segment(f.data, f.linktype, f.number, f.time_ns)]
    assert len(taken) > 0.95 * len(frames)


# --- the edges of the fast path -------------------------------------------------------------

SEGMENT = b.tcp(b"MAIL FROM:<a@example.org>\r\n")


def with_data_offset(segment: bytes, words: int) -> bytes:
    return segment[:12] + bytes([words << 4]) + segment[13:]


def ipv4_total_length(packet: bytes, value: int) -> bytes:
    return packet[:2] + value.to_bytes(2, "big") + packet[4:]


FRAMES = {
    # name: (link type, frame bytes, the path expected to decide)
    "ethernet-ipv4-tcp": (1, b.ethernet(b.ipv4(SEGMENT, df=True)), "fast"),
    "ethernet-ipv6-tcp": (1, b.ethernet(b.ipv6(SEGMENT)), "fast"),
    "sll-ipv4": (113, encapsulate(113, ETH_TYPE_IP, b.ipv4(SEGMENT)), "fast"),
    "sll2-ipv6": (276, encapsulate(276, ETH_TYPE_IP6, b.ipv6(SEGMENT)), "fast"),
    "raw-ipv4": (101, b.ipv4(SEGMENT), "fast"),
    "ipv4-udp": (1, b.ethernet(b.ipv4(b"\0" * 30, proto=b.UDP)), "irrelevant"),
    "ipv6-udp": (1, b.ethernet(b.ipv6(b"\0" * 30, nxt=b.UDP)), "irrelevant"),
    "ethernet-padding": (1, b.ethernet(b.ipv4(b.tcp(b""))) + b"\0" * 6, "fast"),
    "snaplen-cut-payload": (1, b.ethernet(b.ipv4(SEGMENT))[:60], "fast"),
    "tcp-options-cut": (1, b.ethernet(b.ipv4(with_data_offset(b.tcp(bytes(80)), 15)))[:74], "fast"),
    "vlan": (1, encapsulate(1, ETH_TYPE_IP, b.ipv4(SEGMENT), tags=(0x81000064,)), "general"),
    "ipv4-options": (1, b.ethernet(b.ipv4(SEGMENT, options=b"\x01\x01\x01\x00")), "general"),
    "ipv4-length-zero": (1, b.ethernet(ipv4_total_length(b.ipv4(SEGMENT), 0)), "general"),
    "ipv4-length-short": (1, b.ethernet(ipv4_total_length(b.ipv4(SEGMENT), 12)), "general"),
    "ipv4-first-fragment": (1, b.ethernet(b.ipv4(SEGMENT, more=True)), "general"),
    "ipv4-later-fragment": (1, b.ethernet(b.ipv4(SEGMENT, offset=64)), "general"),
    "ipv4-icmp": (1, b.ethernet(b.icmp4_error(3, 4, b.ipv4(SEGMENT)[:28], 1400)), "general"),
    "ipv6-hop-by-hop": (1, b.ethernet(b.ipv6(b.extension(b.TCP) + SEGMENT, nxt=0)), "general"),
    "tcp-offset-too-small": (1, b.ethernet(b.ipv4(with_data_offset(SEGMENT, 4))), "general"),
    "tcp-offset-past-packet": (1, b.ethernet(b.ipv4(with_data_offset(b.tcp(b""), 8))), "general"),
    "tcp-header-cut": (1, b.ethernet(b.ipv4(SEGMENT))[:45], "general"),
    "arp": (1, encapsulate(1, 0x0806, b"\0" * 28), "general"),
    "unknown-link-type": (147, b.ipv4(SEGMENT), "general"),
    "ipv4-as-ipv6-linktype": (LINKTYPE_IPV4, b.ipv6(SEGMENT), "fast"),
}


def general(frame: Frame):
    ip = decode_ip(frame)
    if ip is None or isinstance(ip, str) or ip.is_fragment:
        return ip
    if ip.proto != b.TCP:
        return IRRELEVANT if ip.proto not in (b.ICMP, b.ICMP6) else ip
    return decode_tcp(ip)


@pytest.mark.parametrize("name", FRAMES)
def test_fast_path_decides_only_what_it_decodes_as_the_general_path(name: str) -> None:
    linktype, data, expected = FRAMES[name]
    frame = Frame(7, 1_700_000_000_000_000_000, linktype, data, len(data))
    fast = fast_segment(data, linktype, frame.number, frame.time_ns)
    taken = "general" if fast is None else ("irrelevant" if fast is IRRELEVANT else "fast")
    assert taken == expected
    if fast is not None:
        assert fast == general(frame)


def test_fast_and_general_agree_in_a_file_of_edge_frames(tmp_path) -> None:
    frames = [data for linktype, data, _ in FRAMES.values() if linktype == LINKTYPE_ETHERNET]
    path = b.write_frames(tmp_path / "edges.pcap", frames)
    fast, general_path = both_paths(path)
    assert fast == general_path


def test_snaplen_cut_frames_agree(tmp_path) -> None:
    """Frames cut at every length from the bare Ethernet header to the whole segment."""
    whole = b.ethernet(b.ipv4(SEGMENT))
    records = [Record(b.T0 + n, whole[:n], len(whole)) for n in range(14, len(whole) + 1)]
    path = tmp_path / "cut.pcap"
    path.write_bytes(PcapFile(LINKTYPE_ETHERNET, records).to_bytes())
    fast, general_path = both_paths(path)
    assert fast == general_path

"""The core's decoder over whole batches (``packets()``) against decoding frame by frame.

Until issue 21 moved decoding into the core, this file compared the struct fast path
(fast.py) with the general path (decode.py). Both are gone; the same cases now check that
the decoder run over the reader's batches, fragments and counters included, gives what
its single-frame entry points (capture/decode.py) give for each frame: on every capture
we have, on the lab captures re-framed under other link layers (where it must also give
the original capture's packets), on generated benchmark captures, and on the table of
frames that sat at each edge of the old fast path.
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import pytest

from pcapsmtp.capture import IcmpError, TcpSegment, open_capture, packets
from pcapsmtp.capture.decode import decode_icmp_error, decode_ip, decode_tcp
from pcapsmtp.capture.model import IPPROTO_ICMP, IPPROTO_ICMP6, IPPROTO_TCP, Frame
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


def batched(path: Path) -> tuple[list, tuple]:
    """(packets, facts) of one pass through ``packets()``."""
    with open_capture(str(path)) as capture:
        found = list(packets(capture))
        info = capture.info
        facts = (info.frames, info.ip_frames, info.reassembled, info.undecoded)
    return found, facts


def one_frame(frame: Frame):
    """What the single-frame entry points make of a frame: a packet, a reason, "ip" (IP
    carrying nothing we keep), "fragment" or None (no IP)."""
    ip = decode_ip(frame)
    if ip is None or isinstance(ip, str):
        return ip
    if ip.is_fragment:
        return "fragment"
    if ip.proto == IPPROTO_TCP:
        segment = decode_tcp(ip)
        return segment if isinstance(segment, TcpSegment) else f"tcp: {segment}"
    if ip.proto in (IPPROTO_ICMP, IPPROTO_ICMP6):
        return decode_icmp_error(ip) or "ip"
    return "ip"


def frame_by_frame(path: Path) -> tuple[list, tuple]:
    """(packets, facts) rebuilt from one_frame; a reassembled datagram is not, so the
    facts leave reassembly out and the packets leave out those carried by fragments."""
    found, ip_frames, undecoded, frames = [], 0, {}, 0
    with open_capture(str(path)) as capture:
        for frame in capture.frames():
            frames += 1
            result = one_frame(frame)
            if result is None:
                continue
            if isinstance(result, TcpSegment | IcmpError):
                found.append(result)
            elif result not in ("ip", "fragment"):
                if result.startswith("unsupported"):
                    result = f"{result} (link type {frame.linktype})"
                ip_frames += result.startswith("tcp: ")
                result = result.removeprefix("tcp: ")
                undecoded[result] = undecoded.get(result, 0) + 1
                continue
            ip_frames += 1
    return found, (frames, ip_frames, undecoded)


def assert_agree(path: Path) -> None:
    found, (frames, ip_frames, reassembled, undecoded) = batched(path)
    single, single_facts = frame_by_frame(path)
    unfragmented = [p for p in found if not getattr(p, "fragment_frames", ())]
    assert unfragmented == single
    if reassembled:
        # reasons met only in a reassembled datagram's extension headers
        assert all(undecoded.get(reason, 0) >= n for reason, n in single_facts[2].items())
        assert (frames, ip_frames) == single_facts[:2]
    else:
        assert (frames, ip_frames, undecoded) == single_facts


@pytest.mark.parametrize("path", all_captures(), ids=capture_id)
def test_same_packets_on_every_capture(path: Path) -> None:
    assert_agree(path)


RELINKED = [LINKTYPE_LINUX_SLL, LINKTYPE_LINUX_SLL2, LINKTYPE_RAW, LINKTYPE_IPV4]


def renumbered(packet, kept: list[int]):
    """A packet of a re-linked capture with the original capture's frame numbers."""
    if isinstance(packet, TcpSegment):
        frames = tuple(kept[f - 1] for f in packet.fragment_frames)
        return replace(packet, frame=kept[packet.frame - 1], fragment_frames=frames)
    return replace(packet, frame=kept[packet.frame - 1])


@pytest.mark.parametrize("linktype", RELINKED)
@pytest.mark.parametrize(
    "path", sorted(LAB.glob("*.pcap")), ids=lambda p: p.name if isinstance(p, Path) else p
)
def test_same_packets_under_every_link_layer(path: Path, linktype: int, tmp_path) -> None:
    """Batches and single frames agree, and give the original capture's packets."""
    original = read_pcap(path.read_bytes())
    records, kept = relink(original.records, original.linktype, linktype)
    moved = tmp_path / "relinked.pcap"
    moved.write_bytes(PcapFile(linktype, records).to_bytes())
    assert_agree(moved)
    found, _facts = batched(moved)
    wanted = set(kept)
    expected = [p for p in batched(path)[0] if p.frame in wanted]
    assert [renumbered(p, kept) for p in found] == expected


@pytest.mark.parametrize(
    ("mix", "linktype", "fmt"),
    [("smtp", LINKTYPE_ETHERNET, "pcap"), ("mixed", GEN_SLL, "pcap"), ("smtp", 1, "pcapng")],
)
def test_same_packets_on_generated_captures(mix, linktype, fmt, tmp_path) -> None:
    path = tmp_path / f"generated.{fmt}"
    with open(path, "wb") as out:
        generate(out, 3 << 20, seed=7, mix=mix, linktype=linktype, fmt=fmt, concurrency=40)
    assert_agree(path)
    # Nearly every frame of such a capture is IP; nine in ten of the SMTP capture's, TCP
    # (the rest is DNS).
    found, (frames, ip_frames, _reassembled, _undecoded) = batched(path)
    assert ip_frames > 0.95 * frames
    if mix == "smtp":
        assert len(found) > 0.9 * frames


# --- the edges of the old fast path ---------------------------------------------------------

SEGMENT = b.tcp(b"MAIL FROM:<a@example.org>\r\n")


def with_data_offset(segment: bytes, words: int) -> bytes:
    return segment[:12] + bytes([words << 4]) + segment[13:]


def ipv4_total_length(packet: bytes, value: int) -> bytes:
    return packet[:2] + value.to_bytes(2, "big") + packet[4:]


FRAMES = {
    # name: (link type, frame bytes, what it decodes to: "segment", "icmp", "ip" (IP that
    # gives no packet), "fragment", None (no IP) or the reason it is not decoded)
    "ethernet-ipv4-tcp": (1, b.ethernet(b.ipv4(SEGMENT, df=True)), "segment"),
    "ethernet-ipv6-tcp": (1, b.ethernet(b.ipv6(SEGMENT)), "segment"),
    "sll-ipv4": (113, encapsulate(113, ETH_TYPE_IP, b.ipv4(SEGMENT)), "segment"),
    "sll2-ipv6": (276, encapsulate(276, ETH_TYPE_IP6, b.ipv6(SEGMENT)), "segment"),
    "raw-ipv4": (101, b.ipv4(SEGMENT), "segment"),
    "ipv4-udp": (1, b.ethernet(b.ipv4(b"\0" * 30, proto=b.UDP)), "ip"),
    "ipv6-udp": (1, b.ethernet(b.ipv6(b"\0" * 30, nxt=b.UDP)), "ip"),
    "ethernet-padding": (1, b.ethernet(b.ipv4(b.tcp(b""))) + b"\0" * 6, "segment"),
    "snaplen-cut-payload": (1, b.ethernet(b.ipv4(SEGMENT))[:60], "segment"),
    "tcp-options-cut": (
        1,
        b.ethernet(b.ipv4(with_data_offset(b.tcp(bytes(80)), 15)))[:74],
        "segment",
    ),
    "vlan": (1, encapsulate(1, ETH_TYPE_IP, b.ipv4(SEGMENT), tags=(0x81000064,)), "segment"),
    "ipv4-options": (1, b.ethernet(b.ipv4(SEGMENT, options=b"\x01\x01\x01\x00")), "segment"),
    "ipv4-length-zero": (1, b.ethernet(ipv4_total_length(b.ipv4(SEGMENT), 0)), "segment"),
    "ipv4-length-short": (
        1,
        b.ethernet(ipv4_total_length(b.ipv4(SEGMENT), 12)),
        "malformed IP header",
    ),
    "ipv4-first-fragment": (1, b.ethernet(b.ipv4(SEGMENT, more=True)), "fragment"),
    "ipv4-later-fragment": (1, b.ethernet(b.ipv4(SEGMENT, offset=64)), "fragment"),
    "ipv4-icmp": (1, b.ethernet(b.icmp4_error(3, 4, b.ipv4(SEGMENT)[:28], 1400)), "icmp"),
    "ipv6-hop-by-hop": (1, b.ethernet(b.ipv6(b.extension(b.TCP) + SEGMENT, nxt=0)), "segment"),
    "tcp-offset-too-small": (
        1,
        b.ethernet(b.ipv4(with_data_offset(SEGMENT, 4))),
        "malformed TCP header",
    ),
    "tcp-offset-past-packet": (
        1,
        b.ethernet(b.ipv4(with_data_offset(b.tcp(b""), 8))),
        "malformed TCP header",
    ),
    "tcp-header-cut": (1, b.ethernet(b.ipv4(SEGMENT))[:45], "truncated TCP header"),
    "arp": (1, encapsulate(1, 0x0806, b"\0" * 28), None),
    "unknown-link-type": (147, b.ipv4(SEGMENT), "unsupported link type"),
    "ipv4-as-ipv6-linktype": (LINKTYPE_IPV4, b.ipv6(SEGMENT), "segment"),
}


@pytest.mark.parametrize("name", FRAMES)
def test_each_edge_frame_decodes_alone_as_in_a_batch(name: str, tmp_path) -> None:
    linktype, data, expected = FRAMES[name]
    frame = Frame(1, b.T0, linktype, data, len(data))
    result = one_frame(frame)
    kind = {TcpSegment: "segment", IcmpError: "icmp"}.get(type(result), result)
    kind = kind.removeprefix("tcp: ") if isinstance(kind, str) else kind
    assert kind == expected
    path = tmp_path / "frame.pcap"
    path.write_bytes(PcapFile(linktype, [Record(b.T0, data, len(data))]).to_bytes())
    found, _facts = batched(path)
    assert found == ([result] if kind in ("segment", "icmp") else [])
    assert_agree(path)


def test_batches_and_single_frames_agree_in_a_file_of_edge_frames(tmp_path) -> None:
    frames = [data for linktype, data, _ in FRAMES.values() if linktype == LINKTYPE_ETHERNET]
    path = b.write_frames(tmp_path / "edges.pcap", frames)
    assert_agree(path)


def test_snaplen_cut_frames_agree(tmp_path) -> None:
    """Frames cut at every length from the bare Ethernet header to the whole segment."""
    whole = b.ethernet(b.ipv4(SEGMENT))
    records = [Record(b.T0 + n, whole[:n], len(whole)) for n in range(14, len(whole) + 1)]
    path = tmp_path / "cut.pcap"
    path.write_bytes(PcapFile(LINKTYPE_ETHERNET, records).to_bytes())
    assert_agree(path)


def test_one_decoder_across_the_files_of_a_rotated_set(tmp_path) -> None:
    """A datagram whose fragments fall into two files of a set is reassembled at the frame
    completing it, numbered on from the first file, and counted once in the set's facts."""
    from pcapsmtp.capture.sets import CaptureSet, ChainedCapture

    segment = b.tcp(b"x" * 100)
    first = b.write_pcap(tmp_path / "gw-1.pcap", [b.ipv4(segment[:64], ident=5, more=True)])
    second = b.write_pcap(
        tmp_path / "gw-2.pcap", [b.ipv4(segment[64:], ident=5, offset=64)], [b.T0 + 1]
    )
    with ChainedCapture(CaptureSet("gw-*.pcap", [str(first), str(second)])) as capture:
        found = list(packets(capture))
        info = capture.info
    assert [(p.frame, p.fragment_frames, p.length) for p in found] == [(2, (1, 2), 100)]
    assert (info.frames, info.ip_frames, info.reassembled, info.warnings) == (2, 2, 1, [])

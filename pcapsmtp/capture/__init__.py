"""The capture layer: files in, TCP segments and ICMP errors out. Knows nothing of SMTP."""

from __future__ import annotations

from collections.abc import Iterator

from pcapsmtp.capture.decode import (
    IPPROTO_ICMP,
    IPPROTO_ICMP6,
    IPPROTO_TCP,
    decode_icmp_error,
    decode_ip,
    decode_tcp,
    ipv6_upper_layer,
)
from pcapsmtp.capture.fast import IRRELEVANT, fast_segment
from pcapsmtp.capture.files import Capture, open_capture
from pcapsmtp.capture.fragments import Reassembler
from pcapsmtp.capture.model import (
    LINKTYPE_NAMES,
    CaptureInfo,
    DecryptionSecrets,
    Frame,
    IcmpError,
    IPPacket,
    QuotedPacket,
    TcpSegment,
)

__all__ = [
    "LINKTYPE_NAMES",
    "Capture",
    "CaptureInfo",
    "DecryptionSecrets",
    "Frame",
    "IPPacket",
    "IcmpError",
    "QuotedPacket",
    "TcpSegment",
    "ip_packets",
    "open_capture",
    "packets",
]


def ip_packets(capture: Capture) -> Iterator[IPPacket]:
    """Every IP packet, fragments reassembled (a datagram comes with the frame completing it)."""
    reassembler = Reassembler()
    for frame in capture.frames():
        ip = _ip_packet(frame, capture.info, reassembler)
        if ip is not None:
            yield ip
    _finish(capture.info, reassembler)


def packets(capture: Capture, fast: bool = True) -> Iterator[TcpSegment | IcmpError]:
    """TCP segments and ICMP errors, in capture order.

    The common frame takes the struct fast path of ``fast.py``; the others, and every frame
    when ``fast`` is False (the tests compare both), the general path of ``decode.py``.
    """
    info = capture.info
    reassembler = Reassembler()
    for frame in capture.frames():
        if fast:
            segment = fast_segment(frame.data, frame.linktype, frame.number, frame.time_ns)
            if segment is not None:
                info.ip_frames += 1
                if segment is not IRRELEVANT:
                    yield segment
                continue
        ip = _ip_packet(frame, info, reassembler)
        if ip is not None:
            packet = _upper_layer(ip, info)
            if packet is not None:
                yield packet
    _finish(info, reassembler)


def _ip_packet(frame: Frame, info: CaptureInfo, reassembler: Reassembler) -> IPPacket | None:
    """The IP packet of a frame (a datagram when the frame completes one), counted in info."""
    ip = decode_ip(frame)
    if ip is None:
        return None
    if isinstance(ip, str):
        info.count_undecoded(
            f"{ip} (link type {frame.linktype})" if ip.startswith("unsupported") else ip
        )
        return None
    info.ip_frames += 1
    if ip.is_fragment:
        ip = reassembler.add(ip)
        if ip is None:
            return None
        info.reassembled += 1
        ip = ipv6_upper_layer(ip)
        if isinstance(ip, str):
            info.count_undecoded(ip)
            return None
    return ip


def _upper_layer(ip: IPPacket, info: CaptureInfo) -> TcpSegment | IcmpError | None:
    if ip.proto == IPPROTO_TCP:
        segment = decode_tcp(ip)
        if isinstance(segment, str):
            info.count_undecoded(segment)
            return None
        return segment
    if ip.proto in (IPPROTO_ICMP, IPPROTO_ICMP6):
        return decode_icmp_error(ip)
    return None


def _finish(info: CaptureInfo, reassembler: Reassembler) -> None:
    """Warnings about what could not be read, once the capture has been read."""
    incomplete = reassembler.finish()
    if incomplete:
        frames = sorted(f for group in incomplete for f in group)
        shown = ", ".join(map(str, frames[:10])) + (" ..." if len(frames) > 10 else "")
        info.warnings.append(
            f"{len(incomplete)} IP datagram(s) never got all their fragments (frames {shown}); "
            "their content is missing"
        )
    for reason, count in info.undecoded.items():
        info.warnings.append(f"{count} frame(s) not decoded: {reason}")

"""The capture layer: files in, TCP segments and ICMP errors out. Knows nothing of SMTP."""

from __future__ import annotations

from collections.abc import Iterator

from pcapsmtp.capture.decode import (
    IPPROTO_ICMP,
    IPPROTO_ICMP6,
    IPPROTO_TCP,
    LINKTYPE_NAMES,
    decode_icmp_error,
    decode_ip,
    decode_tcp,
    ipv6_upper_layer,
)
from pcapsmtp.capture.files import Capture, open_capture
from pcapsmtp.capture.fragments import Reassembler
from pcapsmtp.capture.model import (
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
    info = capture.info
    reassembler = Reassembler()
    for frame in capture.frames():
        ip = decode_ip(frame)
        if ip is None:
            continue
        if isinstance(ip, str):
            info.count_undecoded(
                f"{ip} (link type {frame.linktype})" if ip.startswith("unsupported") else ip
            )
            continue
        info.ip_frames += 1
        if ip.is_fragment:
            ip = reassembler.add(ip)
            if ip is None:
                continue
            info.reassembled += 1
            ip = ipv6_upper_layer(ip)
            if isinstance(ip, str):
                info.count_undecoded(ip)
                continue
        yield ip
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


def packets(capture: Capture) -> Iterator[TcpSegment | IcmpError]:
    """TCP segments and ICMP errors, in capture order."""
    info = capture.info
    for ip in ip_packets(capture):
        if ip.proto == IPPROTO_TCP:
            segment = decode_tcp(ip)
            if isinstance(segment, str):
                info.count_undecoded(segment)
                continue
            yield segment
        elif ip.proto in (IPPROTO_ICMP, IPPROTO_ICMP6):
            error = decode_icmp_error(ip)
            if error is not None:
                yield error

"""Decoding one frame or one IP packet at a time, in the compiled core.

The decoder itself is core/src/decode.rs (``packets()`` runs whole batches through it);
these are its single-frame entry points, for what works on one raw frame (``export``
rewrites a frame's bytes in place, so it needs to know where its IP header starts) and
for tests that feed it any bytes.
"""

from __future__ import annotations

from pcapsmtp import _core
from pcapsmtp.capture import MODELS
from pcapsmtp.capture.model import Frame, IcmpError, IPPacket, TcpSegment


def decode_ip(frame: Frame) -> IPPacket | str | None:
    """The IP packet in a frame; None when it carries none; a reason string when malformed."""
    return MODELS.decode_ip(frame.linktype, frame.data, frame.number, frame.time_ns)


def parse_ip(data: bytes, start: int, number: int = 0, time_ns: int = 0) -> IPPacket | str:
    """The IPv4 or IPv6 packet at ``data[start:]``, or why it cannot be read."""
    return MODELS.parse_ip(data, start, number, time_ns)


def ip_start(frame: Frame) -> int:
    """Offset of the IP header in the frame: -1 when the frame carries no IP, -2 when its
    link type is not one we read."""
    return _core.ip_start(frame.linktype, frame.data)


def decode_tcp(ip: IPPacket) -> TcpSegment | str:
    """The TCP segment in an (unfragmented or reassembled) IP packet, or why not."""
    return MODELS.decode_tcp(ip)


def decode_icmp_error(ip: IPPacket) -> IcmpError | None:
    """An ICMP(v6) error with the head of the packet it quotes; None for other ICMP."""
    return MODELS.decode_icmp_error(ip)

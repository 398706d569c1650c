"""Connections re-read from a capture, segment by segment, for ``diff --same-session``.

The analysis keeps only the segments worth a note (flags, retransmissions); comparing two
capture points of one connection needs every segment of it: where it started in the
sequence space, its size, its TTL, whether it came in IP fragments. So the capture is read
once more, keeping only the connections asked for, and at most ``MAX_SEGMENTS`` of each.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

from pcapsmtp.capture import TcpSegment, open_capture, packets
from pcapsmtp.smtp.events import CLIENT, SERVER, Side
from pcapsmtp.tcp.flowkey import flow_key
from pcapsmtp.tcp.model import TH_ACK, TH_SYN, TcpFlow
from pcapsmtp.tcp.sequence import MASK

MAX_SEGMENTS = 200_000
"""Segments kept per connection; a longer one is compared on its first ones."""
FIRST_BYTES = 1024
"""Bytes of each side's stream kept to pair connections whose sequence numbers differ: the
client's first kilobyte holds EHLO, MAIL, RCPT and the start of the message (Message-ID)."""


@dataclass(slots=True, frozen=True)
class Segment:
    """One TCP segment of the connection as this capture saw it."""

    frame: int
    time_ns: int
    sender: Side
    """'client' or 'server'."""
    seq: int
    """Raw sequence number."""
    length: int
    """TCP payload bytes."""
    ip_len: int
    ttl: int
    flags: int
    fragmented: bool
    """It arrived in IP fragments, reassembled by the reader."""
    digest: int
    """CRC-32 of the captured payload (0 for none): the same bytes on both sides."""


@dataclass(slots=True)
class FlowView:
    """One connection as one capture saw it."""

    flow: TcpFlow
    isn: dict[Side, int] = field(default_factory=dict)
    """'client' / 'server' -> raw sequence number of its SYN (or SYN/ACK), when captured."""
    first_bytes: dict[Side, bytes] = field(default_factory=dict)
    """'client' / 'server' -> the first bytes of its stream (in order, up to FIRST_BYTES)."""
    _next_seq: dict[str, int | None] = field(default_factory=dict)
    segments: list[Segment] = field(default_factory=list)
    dropped: int = 0
    """Segments not kept past MAX_SEGMENTS."""
    last_time_ns: int = 0

    def sender_of(self, seg: TcpSegment) -> Side:
        client = self.flow.endpoints[self.flow.client]
        return CLIENT if seg.src == client.ip and seg.sport == client.port else SERVER


def read_views(path: str, flows: list[TcpFlow], record: bool = False) -> list[FlowView]:
    """The views of ``flows`` in the capture at ``path``; segments kept when ``record``."""
    views = [FlowView(flow) for flow in flows]
    index: dict[tuple, list[FlowView]] = {}
    for view in views:
        first, second = view.flow.endpoints
        index.setdefault(flow_key(first.ip, first.port, second.ip, second.port), []).append(view)
    with open_capture(path) as capture:
        for packet in packets(capture):
            if not isinstance(packet, TcpSegment):
                continue
            candidates = index.get(flow_key(packet.src, packet.sport, packet.dst, packet.dport))
            if not candidates:
                continue
            view = _owner(candidates, packet.frame)
            if view is not None:
                _add(view, packet, record)
    return views


def _owner(candidates: list[FlowView], frame: int) -> FlowView | None:
    for view in candidates:
        if view.flow.first_frame <= frame <= view.flow.last_frame:
            return view
    return None


def _collect(view: FlowView, sender: Side, seg: TcpSegment) -> None:
    """Append the segment to the sender's first bytes when it continues them in order."""
    if sender not in view.first_bytes:
        view.first_bytes[sender] = b""
        view._next_seq[sender] = seg.seq
    have = view.first_bytes[sender]
    if view._next_seq[sender] != seg.seq or len(have) >= FIRST_BYTES:
        return
    view.first_bytes[sender] = (have + seg.payload)[:FIRST_BYTES]
    # A payload cut by the snap length ends the bytes we can trust.
    complete = len(seg.payload) == seg.length
    view._next_seq[sender] = (seg.seq + seg.length) & MASK if complete else None


def _add(view: FlowView, seg: TcpSegment, record: bool) -> None:
    sender = view.sender_of(seg)
    view.last_time_ns = seg.time_ns
    # The client's SYN, or the server's SYN/ACK (not a simultaneous open's bare SYN).
    is_handshake = seg.flags & TH_SYN and (sender == CLIENT or seg.flags & TH_ACK)
    if is_handshake and sender not in view.isn:
        view.isn[sender] = seg.seq
    if seg.length:
        _collect(view, sender, seg)
    if not record:
        return
    if len(view.segments) >= MAX_SEGMENTS:
        view.dropped += 1
        return
    view.segments.append(
        Segment(
            frame=seg.frame,
            time_ns=seg.time_ns,
            sender=sender,
            seq=seg.seq,
            length=seg.length,
            ip_len=seg.ip_len,
            ttl=seg.ttl,
            flags=seg.flags,
            fragmented=bool(seg.fragment_frames),
            digest=zlib.crc32(seg.payload) if seg.payload else 0,
        )
    )

"""A second pass over a capture for chosen TCP streams: their frames and their segments.

``analyze`` keeps facts, not packets: a flow remembers counts and the segments worth a note,
never every frame. What ``export`` (the frames to copy) and the report's time-sequence
graphs (every segment's time, sequence offset and acknowledgement) need is collected here,
for the few streams asked for, by replaying the capture through a flow table set up as the
analysis's own (pcapsmtp.analysis.one_pass.collect_streams), so stream numbers are the ones
``analyze`` gave (Wireshark's ``tcp.stream``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from pcapsmtp.capture import IcmpError, TcpSegment
from pcapsmtp.tcp import FlowEnded, FlowTracker, TcpFlow
from pcapsmtp.tcp.model import TH_ACK, TH_SYN
from pcapsmtp.tcp.sequence import MASK

MAX_SEGMENTS = 100_000
"""Segments remembered per stream for the graphs; frames are always all kept."""


@dataclass(slots=True, frozen=True)
class SegmentPoint:
    """One TCP segment of a stream, placed in its sender's byte stream."""

    frame: int
    time_ns: int
    direction: int
    """Index of the sender in ``TcpFlow.endpoints``."""
    offset: int | None
    """Stream offset of its first byte (0 = the byte after the SYN, or the first byte seen),
    as ``tcp.reassembly`` counts; None before the sender's base is known."""
    length: int
    flags: int
    ack: int | None
    """The acknowledgement as an offset in the peer's stream, when the ACK flag is set and
    the peer's base is known."""


@dataclass(slots=True)
class StreamFrames:
    """Everything a second pass knows about one stream."""

    stream: int
    flow: TcpFlow | None = None
    frames: set[int] = field(default_factory=set)
    """Every frame of the stream (IP fragments included) and the ICMP errors tied to it."""
    icmp_frames: list[int] = field(default_factory=list)
    segments: list[SegmentPoint] = field(default_factory=list)
    dropped_segments: int = 0
    fragmented: list[tuple[int | None, int, int, tuple[int, ...]]] = field(default_factory=list)
    """(offset, length, direction, fragment frames) of each segment that came in fragments."""
    _bases: list[int | None] = field(default_factory=lambda: [None, None])

    def base(self, direction: int) -> int | None:
        return self._bases[direction]

    def add(self, seg: TcpSegment, flow: TcpFlow, keep_segments: bool) -> None:
        self.flow = flow
        self.frames.add(seg.frame)
        self.frames.update(seg.fragment_frames)
        first = flow.endpoints[0]
        d = 0 if (seg.src, seg.sport) == (first.ip, first.port) else 1
        bases = self._bases
        # As the reassembler: the SYN fixes the base, else the first data segment does.
        if bases[d] is None and seg.flags & TH_SYN:
            bases[d] = (seg.seq + 1) & MASK
        elif bases[d] is None and seg.length:
            bases[d] = seg.seq
        offset = (seg.seq - bases[d]) & MASK if bases[d] is not None else None
        if seg.fragment_frames:
            self.fragmented.append((offset, seg.length, d, seg.fragment_frames))
        if not keep_segments:
            return
        if len(self.segments) >= MAX_SEGMENTS:
            self.dropped_segments += 1
            return
        peer = bases[1 - d]
        ack = (seg.ack - peer) & MASK if seg.flags & TH_ACK and peer is not None else None
        self.segments.append(
            SegmentPoint(seg.frame, seg.time_ns, d, offset, seg.length, seg.flags, ack)
        )


def follow_streams(
    found: Iterable[TcpSegment | IcmpError],
    tracker: FlowTracker,
    streams: Iterable[int],
    segments: bool = True,
) -> dict[int, StreamFrames]:
    """Frames (and, when asked, segments) of the given ``tcp.stream`` numbers among the
    packets of a capture, through a fresh flow table configured as the analysis's own
    (pcapsmtp.analysis.one_pass.collect_streams), so the numbers are the same."""
    wanted = {n: StreamFrames(n) for n in streams}
    for packet in found:
        tracker.add(packet)
        if isinstance(packet, TcpSegment):
            flow = tracker.flow_of(packet)
            if flow is None:
                continue
            flow.ignore_payload = True  # offsets are computed here; no reassembly needed
            chosen = wanted.get(flow.stream)
            if chosen is not None:
                chosen.add(packet, flow, segments)
        for event in tracker.take():
            if isinstance(event, FlowEnded):
                _icmp(wanted.get(event.flow.stream), event.flow)
    tracker.finish()
    for event in tracker.take():
        if isinstance(event, FlowEnded):
            _icmp(wanted.get(event.flow.stream), event.flow)
    return wanted


def _icmp(found: StreamFrames | None, flow: TcpFlow) -> None:
    if found is None:
        return
    errors: list[IcmpError] = flow.icmp
    found.icmp_frames = sorted(e.frame for e in errors)
    found.frames.update(found.icmp_frames)

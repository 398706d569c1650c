"""What became of one side's segments between the point where it sent them and the point
where they should have arrived.

A segment is named by its sequence number relative to the sender's initial one (which a box
that randomises sequence numbers changes consistently) and its length; when neither capture
holds the SYN, by the raw sequence number. A transmission seen upstream "arrived" when the
downstream capture holds a segment with the same name (one copy per transmission, the copy
nearest in time once the clock offset between the captures is known), or holds every byte
of it in other segments (re-segmented), or holds a segment with the same payload. Otherwise
it "vanished" -- or, when the downstream capture has nothing later from this connection,
it is "unconfirmed": that capture may have stopped before it could arrive.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import Counter
from dataclasses import dataclass, field
from statistics import median

from pcapsmtp.smtp.events import Side
from pcapsmtp.tcp.model import TH_RST
from pcapsmtp.tcp.sequence import MASK

from .model import DirectionTransit
from .segments import FlowView, Segment


@dataclass(slots=True)
class Transit:
    """The result for one direction, with the segments themselves as evidence."""

    summary: DirectionTransit
    vanished: list[Segment] = field(default_factory=list)
    unconfirmed: list[Segment] = field(default_factory=list)
    arrived: list[Segment] = field(default_factory=list)
    fragmented: list[tuple[Segment, Segment]] = field(default_factory=list)
    """(as sent, as received) of segments that arrived in IP fragments."""
    offset_ns: int = 0
    """Downstream clock minus upstream clock, transit time included."""


@dataclass(slots=True)
class ResetTransit:
    """A RST of one sender and whether the other capture saw it too."""

    sender: Side
    segment: Segment
    seen_at: str
    """'up' (the sender's side) or 'down' (the receiver's side)."""
    both: bool
    """The other capture holds it too."""
    other_continued: bool
    """The other capture holds packets of this connection after it."""


def _relative(view: FlowView, other: FlowView, sender: Side):
    """seq -> name in the sequence space both captures share."""
    mine, theirs = view.isn.get(sender), other.isn.get(sender)
    base = mine if mine is not None and theirs is not None else 0
    return lambda seq: (seq - base) & MASK


def data_of(view: FlowView, sender: Side) -> list[Segment]:
    return [s for s in view.segments if s.sender == sender and s.length]


def compare_direction(up: FlowView, down: FlowView, sender: Side) -> Transit:
    """The ``sender``'s data segments as ``up`` (its side) and ``down`` (the other) saw them."""
    rel_up, rel_down = _relative(up, down, sender), _relative(down, up, sender)
    sent, received = data_of(up, sender), data_of(down, sender)
    copies: dict[tuple[int, int], list[Segment]] = {}
    for segment in received:
        copies.setdefault((rel_down(segment.seq), segment.length), []).append(segment)
    offset = _offset(sent, copies, rel_up)
    transit = Transit(DirectionTransit(sender, sent=len(sent)), offset_ns=offset)
    matched: dict[int, Segment] = _match_copies(sent, copies, rel_up, offset)
    covered = _Coverage((rel_down(s.seq), s.length) for s in received)
    digests = {(s.digest, s.length) for s in received if s.digest}
    for i, segment in enumerate(sent):
        copy = matched.get(i)
        if copy is not None:
            transit.arrived.append(segment)
            if copy.fragmented and not segment.fragmented:
                transit.fragmented.append((segment, copy))
        elif covered.holds(rel_up(segment.seq), segment.length) or (
            segment.digest and (segment.digest, segment.length) in digests
        ):
            transit.arrived.append(segment)
        elif down.last_time_ns > segment.time_ns + offset:
            transit.vanished.append(segment)
        else:
            transit.unconfirmed.append(segment)
    _summarise(transit, up, down, received, copies, matched, rel_up)
    return transit


def _offset(sent: list[Segment], copies: dict, rel_up) -> int:
    """Median of (arrival - departure) over segments sent once and received once."""
    counts = Counter((rel_up(s.seq), s.length) for s in sent)
    deltas = [
        copies[key][0].time_ns - s.time_ns
        for s in sent
        if counts[key := (rel_up(s.seq), s.length)] == 1 and len(copies.get(key, ())) == 1
    ]
    return int(median(deltas)) if deltas else 0


def _match_copies(sent: list[Segment], copies: dict, rel_up, offset: int) -> dict[int, Segment]:
    """Transmission index -> the received copy it became: each copy goes to the unmatched
    transmission whose expected arrival is nearest to it."""
    by_key: dict[tuple[int, int], list[int]] = {}
    for i, segment in enumerate(sent):
        by_key.setdefault((rel_up(segment.seq), segment.length), []).append(i)
    matched: dict[int, Segment] = {}
    for key, received in copies.items():
        free = list(by_key.get(key, ()))
        for copy in received:
            if not free:
                break
            best = min(free, key=lambda i: abs(sent[i].time_ns + offset - copy.time_ns))
            free.remove(best)
            matched[best] = copy
    return matched


class _Coverage:
    """Byte ranges [start, end) held by a capture, merged, for 're-segmented' checks."""

    def __init__(self, ranges) -> None:
        merged: list[list[int]] = []
        for start, length in sorted(ranges):
            if merged and start <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], start + length)
            else:
                merged.append([start, start + length])
        self._starts = [r[0] for r in merged]
        self._ranges = merged

    def holds(self, start: int, length: int) -> bool:
        i = bisect_right(self._starts, start) - 1
        return i >= 0 and self._ranges[i][1] >= start + length


def _summarise(transit: Transit, up, down, received, copies, matched, rel_up) -> None:
    summary = transit.summary
    summary.arrived = len(transit.arrived)
    summary.vanished = len(transit.vanished)
    summary.unconfirmed = len(transit.unconfirmed)
    summary.fragmented = len(transit.fragmented)
    summary.vanished_sizes = dict(sorted(Counter(s.ip_len for s in transit.vanished).items()))
    summary.arrived_sizes = dict(sorted(Counter(s.ip_len for s in transit.arrived).items()))
    used = {id(copy) for copy in matched.values()}
    sent_ranges = _Coverage((rel_up(s.seq), s.length) for s in data_of(up, summary.sender))
    rel_down = _relative(down, up, summary.sender)
    summary.appeared = sum(
        1
        for s in received
        if id(s) not in used and not sent_ranges.holds(rel_down(s.seq), s.length)
    )
    summary.hops = _hops(up, down, summary.sender)


def usual_ttl(view: FlowView, sender: Side) -> int | None:
    ttls = Counter(s.ttl for s in view.segments if s.sender == sender)
    return ttls.most_common(1)[0][0] if ttls else None


def _hops(up: FlowView, down: FlowView, sender: Side) -> int | None:
    ttl_up, ttl_down = usual_ttl(up, sender), usual_ttl(down, sender)
    return None if ttl_up is None or ttl_down is None else ttl_up - ttl_down


def resets(up: FlowView, down: FlowView, sender: Side, offset: int) -> list[ResetTransit]:
    """The ``sender``'s RSTs on either side, each saying whether the other side saw it."""
    rel_up, rel_down = _relative(up, down, sender), _relative(down, up, sender)
    ups = [s for s in up.segments if s.sender == sender and s.flags & TH_RST]
    downs = [s for s in down.segments if s.sender == sender and s.flags & TH_RST]
    up_names = Counter(rel_up(s.seq) for s in ups)
    down_names = Counter(rel_down(s.seq) for s in downs)
    out = []
    for segment in ups:
        both = down_names[rel_up(segment.seq)] > 0
        continued = down.last_time_ns > segment.time_ns + offset
        out.append(ResetTransit(sender, segment, "up", both, continued))
    for segment in downs:
        if up_names[rel_down(segment.seq)]:
            continue
        continued = up.last_time_ns > segment.time_ns - offset
        out.append(ResetTransit(sender, segment, "down", False, continued))
    return out

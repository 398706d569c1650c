"""The data of a session's time-sequence graphs (Stevens / tcptrace style), one per direction.

For each direction: every data segment as (time, first byte, length, kind), the peer's
acknowledgements as a step line, and the connection's resets and ICMP errors as marks. Times
are milliseconds since the session's first frame; bytes are stream offsets (0 = the first
byte after the SYN). Long sessions are thinned so a graph stays small: every segment that
carried an analysis flag is kept, the plain ones are sampled.

Beside the points, what a reader should not have to work out: the silences (no packet in
either direction for a while), where a direction stalled (its data stopped being
acknowledged and was sent again) and the event that ended a session that failed.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Protocol

from pcapsmtp.report.safe import wire
from pcapsmtp.smtp.model import Session
from pcapsmtp.tcp.model import TH_FIN, TH_RST, TH_SYN, Flag

MAX_POINTS = 2500
"""Segments drawn per direction (flagged ones always)."""
MAX_ACKS = 2500
SILENCE_MS = 1000.0
"""A pause with no packet in either direction at least this long is a silence."""
NO_END_OUTCOMES = ("delivered", "encrypted")
"""Outcomes that are no failure: no annotation of how the session ended."""


def _kind(analysis: Flag) -> str:
    if analysis & Flag.ANY_RETRANSMISSION:
        return "retransmission"
    if analysis & Flag.OUT_OF_ORDER:
        return "out-of-order"
    if analysis & (Flag.ZERO_WINDOW_PROBE | Flag.KEEP_ALIVE):
        return "probe"
    return ""


def _thin(points: list, keep) -> list:
    """At most about MAX_POINTS points: those ``keep`` says to keep, and a regular sample."""
    if len(points) <= MAX_POINTS:
        return points
    step = len(points) / MAX_POINTS
    sampled = {int(i * step) for i in range(MAX_POINTS)}
    return [p for i, p in enumerate(points) if i in sampled or keep(p)]


def _steps(acks: list[list[float]]) -> list[list[float]]:
    """Only the acknowledgements that moved the line (duplicates add nothing to it)."""
    out: list[list[float]] = []
    for t, ack in acks:
        if not out or ack > out[-1][1]:
            out.append([t, ack])
    if acks and out[-1][0] != acks[-1][0]:
        out.append([acks[-1][0], out[-1][1]])
    if len(out) > MAX_ACKS:
        step = len(out) / MAX_ACKS
        out = [out[int(i * step)] for i in range(MAX_ACKS)] + [out[-1]]
    return out


class Segment(Protocol):
    """One segment of the second pass (``streams.SegmentPoint``): offsets in the sender's
    stream, ``ack`` in the peer's."""

    @property
    def frame(self) -> int: ...
    @property
    def time_ns(self) -> int: ...
    @property
    def direction(self) -> int: ...
    @property
    def offset(self) -> int | None: ...
    @property
    def length(self) -> int: ...
    @property
    def flags(self) -> int: ...
    @property
    def ack(self) -> int | None: ...


class Replayed(Protocol):
    """What the graphs need of a stream read again (``streams.StreamFrames``), which the
    ticket layer replays: the report reads it, never reads the capture."""

    @property
    def segments(self) -> Sequence[Segment]: ...
    @property
    def dropped_segments(self) -> int: ...


def session_series(session: Session, found: Replayed) -> dict:
    flow = session.flow
    start = flow.first_time_ns
    flags = {note.frame: note.analysis for note in flow.notes}
    ms = lambda time_ns: round((time_ns - start) / 1e6, 3)  # noqa: E731
    directions = []
    for sender, receiver in ((flow.client, flow.server), (flow.server, flow.client)):
        data, acks = [], []
        for seg in found.segments:
            if seg.direction == sender and seg.length and seg.offset is not None:
                kind = _kind(flags.get(seg.frame, Flag(0)))
                data.append([ms(seg.time_ns), seg.offset, seg.length, kind, seg.frame])
            elif seg.direction == receiver and seg.ack is not None:
                acks.append([ms(seg.time_ns), seg.ack])
        directions.append(
            {
                "from": "client" if sender == flow.client else "server",
                "segments": len(data),
                "bytes": max((p[1] + p[2] for p in data), default=0),
                "retransmitted": sum(p[3] == "retransmission" for p in data),
                "stall": _stall(data, acks, flow.endpoints[sender]),
                "unseen": _unseen([seg for seg in found.segments if seg.direction == sender], ms),
                "data": _thin(data, keep=lambda p: bool(p[3])),
                "acks": _steps(acks),
            }
        )
    times = [seg.time_ns for seg in found.segments] + [e.time_ns for e in flow.icmp]
    return {
        "span_ms": ms(flow.last_time_ns),
        "directions": directions,
        "marks": _marks(session, ms),
        "silences": silences(sorted(ms(t) for t in times)),
        "end": _end(session, ms),
        "dropped_segments": found.dropped_segments,
    }


def silences(times_ms: list[float], least: float = SILENCE_MS) -> list[list[float]]:
    """[start, end] of each pause of at least ``least`` ms between consecutive packets."""
    return [[a, b] for a, b in itertools.pairwise(times_ms) if b - a >= least]


def _stall(data: list, acks: list, sender) -> dict | None:
    """Where this direction's data stopped being acknowledged for good: the last time the
    peer's acknowledgement moved, when bytes sent were still unacknowledged at the end and
    some of them were sent again after it (a capture that merely ends is no stall). With
    the sizes that tell a path MTU black hole: packets larger than any ever acknowledged,
    sent again and again."""
    sent = max((p[1] + p[2] for p in data), default=0)
    final = max((a[1] for a in acks), default=0)
    if not data or final >= sent:
        return None
    since = next((t for t, ack in acks if ack >= final), 0.0) if acks else 0.0
    again = [p for p in data if p[0] > since and p[3] == "retransmission" and p[1] >= final]
    if not again:
        return None
    acked = sender.max_acked_ip_len
    bigger = {size: n for size, n in sender.retransmitted_sizes.items() if size > acked}
    return {
        "t": since,
        "acked": final,
        "waiting": sent - final,
        "retransmissions": len(again),
        "frames": [again[0][4], again[-1][4]],
        "largest_acked_packet": acked or None,
        "larger_sent_again": max(bigger) if acked and bigger else None,
        "larger_times": sum(bigger.values()) if acked and bigger else 0,
    }


def _unseen(segments: list, ms) -> dict | None:
    """The first segment whose sequence number is beyond every byte (and FIN) this
    direction was seen to carry (a bare ACK numbered 21,720 bytes on): bytes the sender
    sent that never reached the capture point, as a capture at the receiving end of a path
    MTU black hole shows. SYNs and resets are left out: their numbers say nothing of data."""
    counted = [s for s in segments if s.offset is not None and not s.flags & (TH_SYN | TH_RST)]
    seen = max(
        (s.offset + s.length + (1 if s.flags & TH_FIN else 0)
         for s in counted if s.length or s.flags & TH_FIN),
        default=0,
    )  # fmt: skip
    beyond = next((s for s in counted if seen < s.offset < seen + 2**31), None)
    if beyond is None:
        return None
    return {"t": ms(beyond.time_ns), "frame": beyond.frame, "offset": beyond.offset,
            "bytes": beyond.offset - seen}  # fmt: skip


def _end(session: Session, ms) -> dict | None:
    """The event that ended a session that failed: its first reset, or the negative reply
    that ended it (a 421 after a timeout) when that came first; the last frame otherwise."""
    if session.outcome in NO_END_OUTCOMES:
        return None
    flow = session.flow
    events = []
    reset = next((note for note in flow.notes if note.tcp_flags & TH_RST), None)
    if reset is not None:
        who = "client" if reset.direction == flow.client else "server"
        events.append((reset.frame, reset.time_ns, f"RST from the {who}"))
    last = session.last_reply
    if last is not None and last.code >= 400:
        text = f"{last.code} {last.lines[0] if last.lines else ''}".strip()
        events.append((last.frame, last.time_ns, wire(text)))
    if not events:
        events.append((flow.last_frame, flow.last_time_ns, session.outcome_reason))
    frame, time_ns, what = min(events)
    return {"t": ms(time_ns), "frame": frame, "outcome": session.outcome, "what": what}


def _marks(session: Session, ms) -> list[dict]:
    """Handshake, closes, resets and ICMP errors: vertical marks on both graphs."""
    flow = session.flow
    marks = []
    for note in flow.notes:
        sender = "client" if note.direction == flow.client else "server"
        for bit, kind in ((TH_RST, "RST"), (TH_FIN, "FIN"), (TH_SYN, "SYN")):
            if note.tcp_flags & bit:
                marks.append(
                    {"t": ms(note.time_ns), "kind": kind, "from": sender, "frame": note.frame}
                )
                break
    for error in flow.icmp:
        marks.append(
            {"t": ms(error.time_ns), "kind": "ICMP", "from": "network", "frame": error.frame}
        )
    return sorted(marks, key=lambda m: m["frame"])

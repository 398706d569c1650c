"""The data of a session's time-sequence graphs (Stevens / tcptrace style), one per direction.

For each direction: every data segment as (time, first byte, length, kind), the peer's
acknowledgements as a step line, and the connection's resets and ICMP errors as marks. Times
are milliseconds since the session's first frame; bytes are stream offsets (0 = the first
byte after the SYN). Long sessions are thinned so a graph stays small: every segment that
carried an analysis flag is kept, the plain ones are sampled.
"""

from __future__ import annotations

from pcapsmtp.smtp.model import Session
from pcapsmtp.streams import StreamFrames
from pcapsmtp.tcp.model import TH_FIN, TH_RST, TH_SYN, Flag

MAX_POINTS = 2500
"""Segments drawn per direction (flagged ones always)."""
MAX_ACKS = 2500


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


def session_series(session: Session, found: StreamFrames) -> dict:
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
                "data": _thin(data, keep=lambda p: bool(p[3])),
                "acks": _steps(acks),
            }
        )
    return {
        "span_ms": ms(flow.last_time_ns),
        "directions": directions,
        "marks": _marks(session, ms),
        "dropped_segments": found.dropped_segments,
    }


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

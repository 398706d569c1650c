"""A time axis with its idle stretches cut short, for the time-sequence graphs.

SMTP sessions come in bursts: a dialogue in milliseconds, then 45 s of retransmission
backoff, or five minutes of silence before a 421. On a linear axis the burst that matters
is a sliver. Here every stretch with no event that is longer than a share of the session
becomes a narrow break labelled with its length, and the active stretches share the width
in proportion to their length. Within a stretch time stays linear, so what is drawn there
reads as usual; the breaks say how much time they hide.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

BREAK_SHARE = 0.1
"""A silence longer than this share of the session is cut short."""
BREAK_PX = 30.0
MIN_STRETCH_PX = 34.0
INSET_PX = 5.0
"""Space between a break and the first or last event of a stretch."""


@dataclass(slots=True, frozen=True)
class Piece:
    start: float
    end: float
    x0: float
    x1: float
    is_break: bool


def _step(limit: float) -> float:
    """A round step giving about five ticks up to ``limit``."""
    if limit <= 0:
        return 1.0
    raw = limit / 5
    power = 1.0
    while power * 10 <= raw:
        power *= 10
    while power > raw:
        power /= 10
    for factor in (1, 2, 2.5, 5, 10):
        if raw <= factor * power:
            return factor * power
    return 10 * power


def ticks(limit: float) -> list[float]:
    step = _step(limit)
    return [i * step for i in range(int(limit / step + 1e-9) + 1)]


def duration_label(ms: float) -> str:
    if ms >= 1000:
        return f"{ms / 1000:.3f}".rstrip("0").rstrip(".") + " s"
    if ms >= 10:
        return f"{ms:.1f}".rstrip("0").rstrip(".") + " ms"
    return f"{ms:.3f}".rstrip("0").rstrip(".") + " ms"


class TimeAxis:
    """Maps milliseconds since the session began to x, cutting idle stretches short."""

    def __init__(self, times: list[float], span: float, x0: float, width: float) -> None:
        self.span = max(span, 0.001)
        self.pieces = self._layout(sorted({0.0, self.span, *times}), x0, width)

    def _layout(self, times: list[float], x0: float, width: float) -> list[Piece]:
        threshold = self.span * BREAK_SHARE
        stretches, breaks, start = [], [], times[0]
        for a, b in itertools.pairwise(times):
            if b - a > threshold:
                stretches.append((start, a))
                breaks.append((a, b))
                start = b
        stretches.append((start, times[-1]))
        if not breaks:
            return [Piece(0.0, self.span, x0, x0 + width, False)]
        free = width - BREAK_PX * len(breaks) - MIN_STRETCH_PX * len(stretches)
        total = sum(b - a for a, b in stretches) or 1.0
        pieces, x = [], x0
        for i, (a, b) in enumerate(stretches):
            w = MIN_STRETCH_PX + max(free, 0) * (b - a) / total
            pieces.append(Piece(a, b, x, x + w, False))
            x += w
            if i < len(breaks):
                pieces.append(Piece(breaks[i][0], breaks[i][1], x, x + BREAK_PX, True))
                x += BREAK_PX
        return pieces

    @property
    def breaks(self) -> list[Piece]:
        return [p for p in self.pieces if p.is_break]

    def x(self, t: float) -> float:
        t = min(max(t, 0.0), self.span)
        for piece in self.pieces:
            inside = piece.start < t < piece.end if piece.is_break else t <= piece.end
            if inside:
                return self._within(piece, t)
        return self._within(self.pieces[-1], t)

    def _within(self, piece: Piece, t: float) -> float:
        inset = 0.0 if piece.is_break or len(self.pieces) == 1 else INSET_PX
        lo, hi = piece.x0 + inset, piece.x1 - inset
        if piece.end <= piece.start:
            return (lo + hi) / 2
        return lo + (hi - lo) * (t - piece.start) / (piece.end - piece.start)

    def ticks(self) -> list[tuple[float, str]]:
        """(x, label) for the grid: round values inside wide stretches, the start of each
        stretch otherwise; none closer than 56 px to the one before."""
        out: list[tuple[float, str]] = []
        for piece in self.pieces:
            if piece.is_break:
                continue
            values = [piece.start]
            if piece.x1 - piece.x0 >= 160 and piece.end > piece.start:
                step = _step(piece.end - piece.start)
                first = (piece.start // step + 1) * step
                values += [first + i * step for i in range(int((piece.end - first) / step) + 1)]
            for value in values:
                x = self.x(value)
                if not out or x - out[-1][0] >= 56:
                    out.append((x, duration_label(value)))
        return out

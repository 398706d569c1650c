"""TCP sequence-number arithmetic: numbers modulo 2**32 (RFC 9293 section 3.4), compared
within half the space either way, written once for the whole layer.

The per-segment code calls these a few times a segment, each one Python call and no more
(none calls another). Offsets from a base (``(seq - base) & MASK``) and sums
(``(seq + n) & MASK``) are written in place with ``MASK``.
"""

from __future__ import annotations

MASK = 0xFFFFFFFF
"""Sequence numbers are 32 bits."""
HALF = 0x80000000
"""Half the space: a number up to this far after another is after it, further is before."""
SPAN = 0x100000000


def unwrap(seq: int, near: int) -> int:
    """``seq`` as the unwrapped (64-bit) number closest to ``near``, an unwrapped number of
    the same sequence space: the step that carries a stream across the 2**32 wrap.
    ``unwrap(a, b) - b`` is ``a - b`` as a signed 32-bit difference."""
    d = (seq - near) & MASK
    return near + (d - SPAN if d & HALF else d)


def gt(a: int, b: int) -> bool:
    """``a`` after ``b``."""
    return 0 < (a - b) & MASK < HALF


def lt(a: int, b: int) -> bool:
    """``a`` before ``b``."""
    return (a - b) & MASK >= HALF


def le(a: int, b: int) -> bool:
    """``a`` before or at ``b``."""
    d = (a - b) & MASK
    return d == 0 or d >= HALF

"""One direction of a TCP connection as an ordered byte stream with explicit gaps.

Sequence numbers become 64-bit stream offsets (0 = the first byte after the SYN, or
the first byte seen when the capture starts mid-connection), so wrap-around is
handled once, here. Out-of-order bytes wait in a bounded buffer; bytes that will never
come (the peer acknowledged them, the snap length cut them, the buffer overflowed, the
flow ended) become a gap the consumer can resynchronise after.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

MASK = 0xFFFFFFFF
MAX_PENDING_BYTES = 4 * 1024 * 1024
"""Out-of-order bytes held per direction before the hole in front of them is given up."""
RECENT_SEGMENTS = 8
"""Delivered segments kept to compare retransmissions with (different bytes = a finding)."""


def _delta(a: int, b: int) -> int:
    d = (a - b) & MASK
    return d - 0x100000000 if d & 0x80000000 else d


@dataclass(slots=True)
class Chunk:
    """Contiguous bytes, or a hole when ``data`` is None."""

    offset: int
    length: int
    data: bytes | None
    frame: int
    time_ns: int
    reason: str = ""


class StreamReassembler:
    """Feed segments of one direction in capture order; collect chunks in stream order."""

    def __init__(self) -> None:
        self.base: int | None = None
        """Sequence number of stream offset 0."""
        self.expected = 0
        """Offset of the next byte to deliver."""
        self.fin_offset: int | None = None
        self._pending: dict[int, tuple[bytes, int, int, int]] = {}
        self._pending_bytes = 0
        self._recent: deque[tuple[int, bytes]] = deque(maxlen=RECENT_SEGMENTS)
        self.mismatches = 0
        """Retransmitted bytes that differ from the first copy."""
        self.out: list[Chunk] = []

    def start(self, isn: int) -> None:
        """The SYN's sequence number: data starts one after it."""
        if self.base is None:
            self.base = (isn + 1) & MASK

    def offset(self, seq: int) -> int:
        assert self.base is not None
        return self.expected + _delta((seq - self.base) & MASK, self.expected & MASK)

    def segment(self, seq: int, data: bytes, wire_len: int, frame: int, time_ns: int) -> None:
        """A data segment; ``data`` may be shorter than ``wire_len`` under a snap length."""
        if self.base is None:
            self.base = seq
        start = self.offset(seq)
        end = start + wire_len
        if end <= self.expected:
            self._compare(start, data)
            return
        if start < self.expected:
            self._compare(start, data[: self.expected - start])
            cut = self.expected - start
            data, wire_len, start = data[cut:], wire_len - cut, self.expected
        if start == self.expected:
            self._deliver(start, data, wire_len, frame, time_ns)
            self._drain()
        else:
            held = self._pending.get(start)
            if held is None or held[1] < wire_len:
                self._pending_bytes += len(data) - (len(held[0]) if held else 0)
                self._pending[start] = (data, wire_len, frame, time_ns)
            if self._pending_bytes > MAX_PENDING_BYTES:
                self._skip_to(min(self._pending), frame, time_ns, "buffer limit")

    def fin(self, seq: int) -> None:
        if self.base is None:
            self.base = seq
        self.fin_offset = self.offset(seq)

    def acknowledged(self, ack: int, frame: int, time_ns: int) -> None:
        """The peer acknowledged up to ``ack``: bytes before it that we lack were not captured."""
        if self.base is None:
            return
        limit = self.offset(ack)
        if self.fin_offset is not None and limit == self.fin_offset + 1:
            limit -= 1
        if limit > self.expected:
            hole_end = min([limit, *self._pending])
            if hole_end > self.expected:
                self._skip_to(hole_end, frame, time_ns, "not captured")

    def finish(self, frame: int, time_ns: int) -> None:
        """The flow ended: whatever waits behind a hole is delivered after a gap."""
        while self._pending:
            self._skip_to(min(self._pending), frame, time_ns, "never filled")

    def _deliver(self, start: int, data: bytes, wire_len: int, frame: int, time_ns: int) -> None:
        if data:
            self.out.append(Chunk(start, len(data), data, frame, time_ns))
            self._recent.append((start, data))
        self.expected = start + len(data)
        if wire_len > len(data):
            self.out.append(
                Chunk(self.expected, wire_len - len(data), None, frame, time_ns, "snaplen")
            )
            self.expected = start + wire_len

    def _drain(self) -> None:
        while self._pending:
            ready = [o for o in self._pending if o <= self.expected]
            if not ready:
                return
            for start in sorted(ready):
                data, wire_len, frame, time_ns = self._pending.pop(start)
                self._pending_bytes -= len(data)
                if start + wire_len <= self.expected:
                    continue
                cut = self.expected - start
                self._deliver(self.expected, data[cut:], wire_len - cut, frame, time_ns)

    def _skip_to(self, offset: int, frame: int, time_ns: int, reason: str) -> None:
        self.out.append(Chunk(self.expected, offset - self.expected, None, frame, time_ns, reason))
        self.expected = offset
        self._drain()

    def _compare(self, start: int, data: bytes) -> None:
        for old_start, old in self._recent:
            lo, hi = max(start, old_start), min(start + len(data), old_start + len(old))
            if lo < hi:
                if data[lo - start : hi - start] != old[lo - old_start : hi - old_start]:
                    self.mismatches += 1
                return

    def release(self) -> None:
        """The connection closed: drop the copies kept to compare retransmissions with (up
        to RECENT_SEGMENTS payloads), so that a closed flow lingering in the flow table for
        late packets holds no payload. A retransmission after the close is not compared."""
        self._recent.clear()

    def take(self) -> list[Chunk]:
        out, self.out = self.out, []
        return out

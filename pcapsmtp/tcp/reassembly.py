"""One direction of a TCP connection as an ordered byte stream with explicit gaps.

Sequence numbers become 64-bit stream offsets (0 = the first byte after the SYN, or
the first byte seen when the capture starts mid-connection), so wrap-around is
handled once, here. Out-of-order bytes wait in a bounded buffer; bytes that will never
come (the peer acknowledged them, the snap length cut them, the buffer overflowed, the
flow ended) become a gap the consumer can resynchronise after.

Held segments are found by offset through a heap, so a direction of n segments costs
O(n log n) whatever their order and however many holes never fill (a port scan, a lossy
capture of a big transfer, a hostile flow). The buffer is bounded per direction, as
Zeek's and Suricata's are (a memcap): when what it holds would pass
``MAX_PENDING_BYTES``, the hole in front of the held data is declared a gap (reason
'buffer limit'), the data behind it is delivered and the stream goes on.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

from pcapsmtp.tcp.sequence import MASK, unwrap

MAX_PENDING_BYTES = 4 * 1024 * 1024
"""What the out-of-order buffer of one direction may hold (payload plus
``SEGMENT_OVERHEAD`` per held segment) before the hole in front of it is given up.

When the receiver's acknowledgements are in the capture, a hole they pass is declared
'not captured' at once, so the buffer holds at most about one receive window: Linux's
default maximum receive buffer (net.ipv4.tcp_rmem) is 6 MiB, of which the window it
advertises is a part, and mail servers rarely open one that far. Only
data behind a hole that never fills, in a capture without those acknowledgements (one
direction captured, a hostile or damaged flow), comes near the bound; 4 MiB per
direction keeps a normal transfer whole and one such flow under about 10 MiB."""
SEGMENT_OVERHEAD = 288
"""Bytes charged per held segment beyond its payload: what holding one costs in CPython
3.11 on 64-bit (tuple, heap and dict entries, ints, the bytes object: about 275 bytes,
checked in tests/tcp/test_reassembly.py), so that many tiny segments reach the bound as
surely as a few large ones."""
RECENT_SEGMENTS = 8
"""Delivered segments kept to compare retransmissions with (different bytes = a finding)."""


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

    __slots__ = (
        "_pending", "_pending_bytes", "_recent", "_starts", "base", "expected", "fin_offset",
        "limited", "limited_bytes", "mismatches", "out",
    )  # fmt: skip

    def __init__(self) -> None:
        self.base: int | None = None
        """Sequence number of stream offset 0."""
        self.expected = 0
        """Offset of the next byte to deliver."""
        self.fin_offset: int | None = None
        self._pending: dict[int, tuple[bytes, int, int, int]] = {}
        """offset -> (data, wire length, frame, time) of the held out-of-order segments."""
        self._starts: list[int] = []
        """Heap of the offsets in ``_pending`` (each once)."""
        self._pending_bytes = 0
        """What ``_pending`` holds, as charged against MAX_PENDING_BYTES."""
        self._recent: list[tuple[int, bytes]] = []
        """The last RECENT_SEGMENTS delivered, oldest first (a list: a deque costs 600
        bytes even empty, and a flood holds 100,000 flows)."""
        self.mismatches = 0
        """Retransmitted bytes that differ from the first copy."""
        self.limited = 0
        self.limited_bytes = 0
        """Holes given up at the buffer bound, and their bytes."""
        self.out: list[Chunk] = []

    def start(self, isn: int) -> None:
        """The SYN's sequence number: data starts one after it."""
        if self.base is None:
            self.base = (isn + 1) & MASK

    def offset(self, seq: int) -> int:
        assert self.base is not None
        return unwrap(seq - self.base, self.expected)

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
            if held is None:
                heapq.heappush(self._starts, start)
                self._pending_bytes += len(data) + SEGMENT_OVERHEAD
                self._pending[start] = (data, wire_len, frame, time_ns)
            elif held[1] < wire_len:
                self._pending_bytes += len(data) - len(held[0])
                self._pending[start] = (data, wire_len, frame, time_ns)
            while self._pending_bytes > MAX_PENDING_BYTES:
                self._skip_to(self._starts[0], frame, time_ns, "buffer limit")

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
            hole_end = min(limit, self._starts[0]) if self._starts else limit
            if hole_end > self.expected:
                self._skip_to(hole_end, frame, time_ns, "not captured")

    def finish(self, frame: int, time_ns: int) -> None:
        """The flow ended: whatever waits behind a hole is delivered after a gap."""
        while self._starts:
            self._skip_to(self._starts[0], frame, time_ns, "never filled")

    def _deliver(self, start: int, data: bytes, wire_len: int, frame: int, time_ns: int) -> None:
        if data:
            self.out.append(Chunk(start, len(data), data, frame, time_ns))
            recent = self._recent
            recent.append((start, data))
            if len(recent) > RECENT_SEGMENTS:
                del recent[0]
        self.expected = start + len(data)
        if wire_len > len(data):
            self.out.append(
                Chunk(self.expected, wire_len - len(data), None, frame, time_ns, "snaplen")
            )
            self.expected = start + wire_len

    def _drain(self) -> None:
        starts = self._starts
        while starts and starts[0] <= self.expected:
            start = heapq.heappop(starts)
            data, wire_len, frame, time_ns = self._pending.pop(start)
            self._pending_bytes -= len(data) + SEGMENT_OVERHEAD
            if start + wire_len <= self.expected:
                continue
            cut = self.expected - start
            self._deliver(self.expected, data[cut:], wire_len - cut, frame, time_ns)

    def _skip_to(self, offset: int, frame: int, time_ns: int, reason: str) -> None:
        if reason == "buffer limit":
            self.limited += 1
            self.limited_bytes += offset - self.expected
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

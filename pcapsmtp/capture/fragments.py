"""IPv4 and IPv6 fragment reassembly, bounded, remembering each fragment's frame.

Like Wireshark, a reassembled datagram belongs to the frame that completed it, the
first copy of an overlapping byte wins, and a copy of a fragment arriving after its
datagram was reassembled (a SPAN port that sees every packet twice) is dropped rather
than taken for the start of a datagram that never completes. Memory is bounded: at most
``MAX_PENDING`` datagrams wait for their missing pieces, none longer than
``TIMEOUT_NS`` of capture time; what is given up is reported, with its frames.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from pcapsmtp.capture.model import IPPacket

MAX_PENDING = 4096
MAX_DATAGRAM = 65535 + 40
TIMEOUT_NS = 60 * 1_000_000_000
"""Linux's ipfrag_time is 30 s; a capture is allowed some slack beyond it."""


@dataclass(slots=True)
class _Pending:
    first_time_ns: int
    pieces: list[tuple[int, bytes]] = field(default_factory=list)
    frames: list[int] = field(default_factory=list)
    head: IPPacket | None = None
    """The fragment at offset 0: its header becomes the datagram's."""
    total: int | None = None
    """Payload length, known once the last fragment (MF clear) arrives."""

    def assemble(self) -> bytes:
        """The datagram's payload, the first copy of any overlapping byte winning."""
        buffer = bytearray(self.total or 0)
        covered: list[tuple[int, int]] = []
        for offset, data in self.pieces:
            end = min(offset + len(data), len(buffer))
            pos = offset
            for start, stop in covered:
                if stop <= pos:
                    continue
                if start >= end:
                    break
                if start > pos:
                    buffer[pos:start] = data[pos - offset : start - offset]
                pos = max(pos, stop)
            if pos < end:
                buffer[pos:end] = data[pos - offset : end - offset]
            covered = _merge([*covered, (offset, end)])
        return bytes(buffer)

    def complete(self) -> bool:
        """Every byte from 0 to the end announced by the last fragment is present."""
        if self.total is None or self.head is None:
            return False
        reach = 0
        for start, end in _merge([(o, o + len(d)) for o, d in self.pieces]):
            if start > reach:
                return False
            reach = max(reach, end)
        return reach >= self.total


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


class Reassembler:
    """Feed fragments in capture order; get whole datagrams back when they complete."""

    def __init__(self) -> None:
        self._pending: dict[tuple, _Pending] = {}
        self._completed: dict[tuple, tuple[int, int]] = {}
        """Key -> (time completed, payload length) of recently reassembled datagrams."""
        self.given_up: list[tuple[int, ...]] = []
        """Frames of fragment sets that never completed (evicted, expired or left at the end)."""

    def add(self, fragment: IPPacket) -> IPPacket | None:
        key = (fragment.version, fragment.src, fragment.dst, fragment.proto, fragment.ident)
        self._expire(fragment.time_ns)
        completed = self._completed.get(key)
        if completed is not None:
            if fragment.frag_offset + fragment.payload_len <= completed[1]:
                return None  # a copy of a piece of a datagram already reassembled
            del self._completed[key]  # beyond its end: the IP ID was used again
        pending = self._pending.get(key)
        if pending is None:
            if len(self._pending) >= MAX_PENDING:
                oldest = next(iter(self._pending))
                self.given_up.append(tuple(self._pending.pop(oldest).frames))
            pending = self._pending[key] = _Pending(fragment.time_ns)
        pending.frames.append(fragment.frame)
        if fragment.frag_offset + len(fragment.payload) > MAX_DATAGRAM:
            self.given_up.append(tuple(self._pending.pop(key).frames))
            return None
        pending.pieces.append((fragment.frag_offset, fragment.payload))
        if fragment.frag_offset == 0:
            pending.head = fragment
        if not fragment.more_fragments:
            pending.total = fragment.frag_offset + fragment.payload_len
        if not pending.complete():
            return None
        payload = pending.assemble()
        del self._pending[key]
        self._completed[key] = (fragment.time_ns, len(payload))
        if len(self._completed) > MAX_PENDING:
            del self._completed[next(iter(self._completed))]
        head = pending.head
        header_len = head.total_len - head.payload_len
        return replace(
            head,
            frame=fragment.frame,
            time_ns=fragment.time_ns,
            payload=payload,
            payload_len=len(payload),
            total_len=header_len + len(payload),
            frag_offset=0,
            more_fragments=False,
            fragment_frames=tuple(pending.frames),
        )

    def _expire(self, now_ns: int) -> None:
        while self._completed:
            key, (done_ns, _length) = next(iter(self._completed.items()))
            if now_ns - done_ns <= TIMEOUT_NS:
                break
            del self._completed[key]
        while self._pending:
            key, oldest = next(iter(self._pending.items()))
            if now_ns - oldest.first_time_ns <= TIMEOUT_NS:
                return
            self.given_up.append(tuple(oldest.frames))
            del self._pending[key]

    def finish(self) -> list[tuple[int, ...]]:
        """Frames of every fragment set that never completed."""
        self.given_up.extend(tuple(p.frames) for p in self._pending.values())
        self._pending.clear()
        return self.given_up

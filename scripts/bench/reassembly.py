#!/usr/bin/env python3
"""The stream reassembler alone (pcapsmtp.tcp.reassembly), in one process: CPU and memory.

    PYTHONPATH=CHECKOUT python3 scripts/bench/reassembly.py

Compare two checkouts by running it with each one's PYTHONPATH. Three figures:

- in order: 200,000 segments of 1,448 bytes, each acknowledged, the chunks taken after
  each (what a clean transfer costs the flow table's reassembly calls);
- holes: 100,000 segments of 100 bytes behind 1-byte holes that never fill, in a random
  order (seeded), an ACK that declares nothing every second segment, the chunks taken
  after each, the end of the flow: the shape of scripts/bench/holes.py, the memcap
  reached thousands of times;
- held: what holding a segment costs (5,000 held 10-byte segments), in the Python heap
  (tracemalloc) and, in a separate run, in the C allocator's (glibc mallinfo2's bytes in
  use: where the compiled core allocates, and where Python's own blocks of 512 bytes and
  more come from, which tracemalloc traces too). The payloads are made before: a Python
  reassembler holds the caller's bytes object, the core copies the payload.
"""

from __future__ import annotations

import ctypes
import random
import time
import tracemalloc

from pcapsmtp.tcp.reassembly import StreamReassembler


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
                     "uordblks", "fordblks", "keepcost")
    ]  # fmt: skip


def in_order(count: int = 200_000, size: int = 1448) -> float:
    data = bytes(size)
    r = StreamReassembler()
    r.start(1000)
    seq = 1001
    start = time.process_time()
    for i in range(count):
        r.segment(seq & 0xFFFFFFFF, data, size, i, i)
        seq += size
        r.acknowledged(seq & 0xFFFFFFFF, i, i)
        if r.out:
            r.take()
    return time.process_time() - start


def holes(count: int = 100_000, size: int = 100) -> float:
    data = bytes(size)
    offsets = [1 + i * (size + 1) for i in range(count)]
    random.Random(1).shuffle(offsets)
    r = StreamReassembler()
    r.start(1000)
    start = time.process_time()
    for i, offset in enumerate(offsets):
        r.segment((1001 + offset) & 0xFFFFFFFF, data, size, i, i)
        if i % 2:
            r.acknowledged(1001, i, i)
        if r.out:
            r.take()
    r.finish(count, count)
    r.take()
    return time.process_time() - start


def _hold(count: int, measure) -> int:
    """What ``measure()`` grows by while ``count`` 10-byte segments are held."""
    r = StreamReassembler()
    r.start(0)
    payloads = [bytes([i % 256]) * 10 for i in range(count)]
    before = measure()
    for i, data in enumerate(payloads):
        r.segment(1 + 100 + 20 * i, data, 10, 10**6 + i, 1_700_000_000 * 10**9 + i)
    return measure() - before


def held(count: int = 5000) -> tuple[float, float]:
    """Bytes per held segment in the Python heap and in the C heap: two runs, each heap
    measured alone (tracemalloc's own tables are malloc'd)."""
    mallinfo2 = ctypes.CDLL(None).mallinfo2
    mallinfo2.restype = _MallInfo2
    tracemalloc.start()
    try:
        traced = _hold(count, lambda: tracemalloc.get_traced_memory()[0])
    finally:
        tracemalloc.stop()
    c_heap = _hold(count, lambda: mallinfo2().uordblks)
    return traced / count, c_heap / count


def main() -> None:
    print(f"in order, 200,000 x 1,448 B: {in_order():.2f} s CPU")
    print(f"holes, 100,000 x 100 B:      {holes():.2f} s CPU")
    python_heap, c_heap = held()
    print(f"held 10-byte segment:        {python_heap:.0f} B Python heap, {c_heap:.0f} B C heap")


if __name__ == "__main__":
    main()

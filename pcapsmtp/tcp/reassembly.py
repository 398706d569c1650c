"""One direction of a TCP connection as an ordered byte stream with explicit gaps.

The work is the compiled core's (core/src/reassembly.rs, bound in
core/src/python_reassembly.rs): sequence numbers become 64-bit stream offsets (0 = the
first byte after the SYN, or the first byte seen when the capture starts
mid-connection), so wrap-around is handled once, there. Out-of-order bytes wait in a
bounded buffer; bytes that will never come (the peer acknowledged them, the snap length
cut them, the buffer overflowed, the flow ended) become a gap the consumer can
resynchronise after, with its reason: 'not captured', 'snaplen', 'buffer limit',
'never filled'.

Held segments are kept ordered by offset, so a direction of n segments costs
O(n log n) whatever their order and however many holes never fill (a port scan, a lossy
capture of a big transfer, a hostile flow). The buffer is bounded per direction, as
Zeek's and Suricata's are (a memcap): when what it holds would pass
``MAX_PENDING_BYTES``, the hole in front of the held data is declared a gap (reason
'buffer limit'), the data behind it is delivered and the stream goes on.

``StreamReassembler`` (feed segments of one direction in capture order, ``take()`` the
``Chunk`` list in stream order) reads ``MAX_PENDING_BYTES`` from this module when it is
made, so a test can lower the bound.
"""

from __future__ import annotations

from pcapsmtp import _core
from pcapsmtp._core import Chunk

__all__ = [
    "MAX_PENDING_BYTES",
    "RECENT_SEGMENTS",
    "SEGMENT_OVERHEAD",
    "Chunk",
    "StreamReassembler",
]

MAX_PENDING_BYTES: int = _core.MAX_PENDING_BYTES
"""What the out-of-order buffer of one direction may hold (payload plus
``SEGMENT_OVERHEAD`` per held segment) before the hole in front of it is given up.

When the receiver's acknowledgements are in the capture, a hole they pass is declared
'not captured' at once, so the buffer holds at most about one receive window: Linux's
default maximum receive buffer (net.ipv4.tcp_rmem) is 6 MiB, of which the window it
advertises is a part, and mail servers rarely open one that far. Only
data behind a hole that never fills, in a capture without those acknowledgements (one
direction captured, a hostile or damaged flow), comes near the bound; 4 MiB per
direction keeps a normal transfer whole and one such flow under about 10 MiB."""
SEGMENT_OVERHEAD: int = _core.SEGMENT_OVERHEAD
"""Bytes charged per held segment beyond its payload, so that many tiny segments reach
the bound as surely as a few large ones: what holding one cost in the CPython
implementation this replaced (about 275 bytes), kept so that the bound fires at exactly
the same point. The core holds one in less (measured in tests/tcp/test_reassembly.py)."""
RECENT_SEGMENTS: int = _core.RECENT_SEGMENTS
"""Delivered segments kept to compare retransmissions with (different bytes = a finding)."""


class StreamReassembler(_core.StreamReassembler):
    """Feed segments of one direction in capture order; collect chunks in stream order.

    ``segment(seq, data, wire_len, frame, time_ns)``, ``fin(seq)``,
    ``acknowledged(ack, frame, time_ns)``, ``finish(frame, time_ns)``, ``release()`` and
    ``take()``; ``out`` is the number of chunks waiting for ``take()``. ``base``,
    ``expected``, ``fin_offset``, ``mismatches`` (retransmitted bytes that differ from the
    first copy), ``limited`` and ``limited_bytes`` (holes given up at the bound) are read
    only."""

    __slots__ = ()

    def __new__(cls) -> StreamReassembler:
        return super().__new__(cls, MAX_PENDING_BYTES)

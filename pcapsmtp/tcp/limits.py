"""The flow table's bounds, as the core's table (core/src/tcp/table.rs) takes them.

Memory stays bounded by the live connections (and a bounded record of ended ones): a
flow is ended (``FlowEnded``) when a new SYN reuses its ports, ``LINGER_NS`` of capture
time after it closed, after ``IDLE_NS`` without packets, or at the end of the capture.
What the numbering needs of an ended flow (its stream number, endpoints and sequence
analysis, about 0.35 KB) is kept, for up to ``MAX_ENDED`` ended flows: a later packet of
the same 4-tuple starts a new flow (``TcpFlow.continues``) with the old stream number
and analysis state.

Whether a flow has ended that way is decided by its own packets, their times and frame
numbers, when its next packet comes (the periodic sweep only frees what that would end):
never by the packets of other flows. So the flows of one 4-tuple come out the same when
they are tracked on their own, which is what stitching a rotated capture set rests on
(pcapsmtp.analysis.rotated).
"""

from __future__ import annotations

from pcapsmtp.tcp import reassembly

LINGER_NS = 10 * 1_000_000_000
LINGER_FRAMES = 2_000
"""A closed flow stays this long, and this many frames, in the table for late packets."""
IDLE_NS = 15 * 60 * 1_000_000_000
IDLE_FRAMES = 100_000
"""A flow silent this long and this many frames is ended (RFC 5321's longest timeout is 10 min).

Both a time and a frame distance are required, so a bogus timestamp in a small capture
(they exist: a frame dated 2063 among frames of 2015) never ends a flow early.
"""
MAX_FLOWS = 100_000
"""Flows open at once. Past it the least recently active 1 % are ended early (a SYN flood
or a scan otherwise grows the table without bound); ``FlowTracker.evicted`` counts them."""
SWEEP_EVERY = 10_000
"""TCP segments between two sweeps of the table (which only free memory, see above)."""
MAX_NOTES = 20_000
"""Segment notes kept per flow; counts go on past it."""
MAX_ENDED = 100_000
"""Ended flows (and ICMP-only conversations) remembered for their stream number, the
oldest forgotten first: a 4-tuple that comes back after this many others have ended gets
a new number where Wireshark continues the old one (and every later number is one more).
Each is kept in the core: the 4-tuple's key, a 48-byte record and the retired sequence
analysis packed losslessly into 128 bytes (a late packet's flags are told against it as
tshark does), about 345 bytes of heap with the table's entries (counted by allocator,
session 8; 492 before the packing); the Python version measured 938 bytes each with
tracemalloc, so at most about 33 MB now, reached only by captures of more than 100,000
connections."""
QUOTED_TCP_BYTES = 16
"""Bytes of a quoted TCP header Wireshark needs to look up its conversation (up to the
window field; shorter quotes end its TCP dissection before that)."""


def table_limits() -> tuple:
    """The module's bounds as the core's table takes them (read when a table is made, so
    a test can lower them)."""
    return (
        LINGER_NS,
        LINGER_FRAMES,
        IDLE_NS,
        IDLE_FRAMES,
        MAX_FLOWS,
        SWEEP_EVERY,
        MAX_NOTES,
        MAX_ENDED,
        QUOTED_TCP_BYTES,
        reassembly.MAX_PENDING_BYTES,
    )


def evicted_warning(evicted: int) -> str:
    """The capture warning when the flow table's cap ended connections early."""
    return (
        f"{evicted:,} connection(s) ended early: more than {MAX_FLOWS:,} were open at once "
        "(the flow table's cap, docs/limits.md); each is shown as far as it was seen"
    )

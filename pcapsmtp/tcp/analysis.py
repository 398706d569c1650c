"""Wireshark's TCP sequence analysis, segment by segment, with its semantics and names.

This follows ``tcp_analyze_sequence_number()`` in Wireshark's packet-tcp.c (4.0), the
reference our users read their captures with, so that our counts of retransmissions,
out-of-order segments, duplicate ACKs and the rest equal tshark's ``tcp.analysis.*``.
Its conventions are kept on purpose: 0 means "not seen yet" for ``nextseq``, ``lastack``
and ``maxseqtobeacked``; comparisons are modulo 2**32 (``gt``, ``lt``, ``le`` of tcp.sequence).

The "ACKed segment that wasn't captured" rule differs between the Wireshark versions whose
source we could read; the one here (one report per stall, then the mark moves to the
highest byte seen) is the one that reproduces tshark 4.0.17 frame for frame on every
capture in tests/tcp/test_oracle.py.
"""

from __future__ import annotations

import heapq

from pcapsmtp.tcp.model import TH_ACK, TH_FIN, TH_RST, TH_SYN, Flag
from pcapsmtp.tcp.sequence import MASK, gt, le, lt, unwrap

MAX_UNACKED_SEGMENTS = 1000
"""Wireshark stops listing unacknowledged segments at this many (TCP_MAX_UNACKED_SEGMENTS)."""
FAST_RETRANSMISSION_WINDOW_NS = 20_000_000
"""A retransmission within 20 ms of the second duplicate ACK is a fast one (Wireshark)."""
DEFAULT_OUT_OF_ORDER_NS = 3_000_000
"""Out-of-order threshold when the handshake RTT is unknown (Wireshark)."""
WIN_SCALE_UNKNOWN = -1
WIN_SCALE_NONE = -2


# The flags as plain ints: this module runs for every segment, and each IntFlag operator
# is a Python-level call. ``analyze`` returns an int; ``Flag(value)`` makes it a Flag again.
RETRANSMISSION = Flag.RETRANSMISSION.value
LOST_SEGMENT = Flag.LOST_SEGMENT.value
ACK_LOST_SEGMENT = Flag.ACK_LOST_SEGMENT.value
KEEP_ALIVE = Flag.KEEP_ALIVE.value
DUPLICATE_ACK = Flag.DUPLICATE_ACK.value
ZERO_WINDOW = Flag.ZERO_WINDOW.value
ZERO_WINDOW_PROBE = Flag.ZERO_WINDOW_PROBE.value
ZERO_WINDOW_PROBE_ACK = Flag.ZERO_WINDOW_PROBE_ACK.value
KEEP_ALIVE_ACK = Flag.KEEP_ALIVE_ACK.value
OUT_OF_ORDER = Flag.OUT_OF_ORDER.value
FAST_RETRANSMISSION = Flag.FAST_RETRANSMISSION.value
WINDOW_UPDATE = Flag.WINDOW_UPDATE.value
WINDOW_FULL = Flag.WINDOW_FULL.value
SPURIOUS_RETRANSMISSION = Flag.SPURIOUS_RETRANSMISSION.value


class DirectionState:
    """Wireshark's per-direction ``tcp_flow_t`` and ``tcp_analyze_seq_info``."""

    __slots__ = (
        "base_seq",
        "base_set",
        "dupacknum",
        "lastack",
        "lastack_time",
        "lastnondupack",
        "lastsegmentflags",
        "maxseqtobeacked",
        "nextseq",
        "nextseq_time",
        "unacked",
        "unwrapped",
        "win_scale",
        "window",
    )

    def __init__(self) -> None:
        self.base_seq = 0
        self.base_set = False
        self.nextseq = 0
        self.nextseq_time = 0
        self.maxseqtobeacked = 0
        self.lastack = 0
        self.lastack_time = 0
        self.lastnondupack = 0
        self.dupacknum = 0
        self.window = 0
        self.win_scale = WIN_SCALE_UNKNOWN
        self.lastsegmentflags = 0
        """Analysis flags (an int) of this direction's last segment."""
        self.unacked: list[int] = []
        """Heap of the unwrapped next-sequence numbers of Wireshark's unacked-segment list."""
        self.unwrapped = 0
        """A recent sequence number of this direction, unwrapped to 64 bits."""

    def unwrap(self, seq: int) -> int:
        self.unwrapped = value = unwrap(seq, self.unwrapped)
        return value

    def acknowledge(self, ack: int) -> None:
        """Drop the listed segments an ACK from the peer covers."""
        if self.unacked:
            limit = unwrap(ack, self.unwrapped)
            while self.unacked and self.unacked[0] <= limit:
                heapq.heappop(self.unacked)


class SequenceAnalysis:
    """Both directions of one conversation plus the handshake timing Wireshark keeps."""

    __slots__ = ("dirs", "first_rtt_ns", "mru_syn_ns")

    def __init__(self) -> None:
        self.dirs = (DirectionState(), DirectionState())
        self.first_rtt_ns = 0
        self.mru_syn_ns = 0

    def analyze(
        self,
        direction: int,
        frame: int,
        time_ns: int,
        seq: int,
        ack: int,
        seglen: int,
        flags: int,
        window: int,
    ) -> int:
        """The analysis flags of one segment (``Flag`` values as an int); updates the state
        as Wireshark does."""
        fwd = self.dirs[direction]
        rev = self.dirs[1 - direction]
        result = 0
        self.bases(direction, seq, ack, flags)

        no_control = not flags & (TH_SYN | TH_FIN | TH_RST)
        same_position = seq == fwd.nextseq and ack == fwd.lastack

        if seglen == 1 and seq == fwd.nextseq and rev.window == 0:
            result |= ZERO_WINDOW_PROBE
        else:
            if window == 0 and no_control:
                result |= ZERO_WINDOW
            if fwd.nextseq and gt(seq, fwd.nextseq) and not flags & TH_RST:
                result |= LOST_SEGMENT
            if seglen <= 1 and seq == (fwd.nextseq - 1) & MASK and no_control:
                result |= KEEP_ALIVE
            if seglen == 0 and window and window != fwd.window and same_position and no_control:
                result |= WINDOW_UPDATE
            if seglen > 0 and rev.win_scale != WIN_SCALE_UNKNOWN and no_control:
                scale = rev.win_scale if rev.win_scale >= 0 else 0
                if (seq + seglen) & MASK == (rev.lastack + (rev.window << scale)) & MASK:
                    result |= WINDOW_FULL
            result = self._acks(result, fwd, rev, seglen, window, same_position, no_control)

        if ack != fwd.lastack:
            fwd.lastnondupack = frame
            fwd.dupacknum = 0

        if rev.maxseqtobeacked and gt(ack, rev.maxseqtobeacked) and flags & TH_ACK:
            if rev.maxseqtobeacked > rev.nextseq:  # Wireshark compares these without wrap
                result |= ACK_LOST_SEGMENT
            else:
                # One report per stall: -1 until the other side's ACK moves again.
                if rev.dupacknum == 0:
                    result |= ACK_LOST_SEGMENT
                rev.dupacknum = -1
            rev.maxseqtobeacked = rev.nextseq

        if seglen > 0 or flags & (TH_SYN | TH_FIN):
            result |= self._retransmission(result, fwd, rev, time_ns, seq, seglen, flags)

        nextseq = (seq + seglen) & MASK
        if (seglen or flags & (TH_SYN | TH_FIN)) and len(fwd.unacked) < MAX_UNACKED_SEGMENTS:
            if flags & (TH_SYN | TH_FIN):
                nextseq = (nextseq + 1) & MASK
            heapq.heappush(fwd.unacked, fwd.unwrap(nextseq))
        probe = result & ZERO_WINDOW_PROBE
        if (gt(nextseq, fwd.nextseq) or not fwd.nextseq) and not probe:
            fwd.nextseq = nextseq
            fwd.nextseq_time = time_ns
        if (seq == fwd.maxseqtobeacked or not fwd.maxseqtobeacked) and not probe:
            fwd.maxseqtobeacked = fwd.nextseq

        fwd.window = window
        fwd.lastack = ack
        fwd.lastack_time = time_ns
        fwd.lastsegmentflags = result
        rev.acknowledge(ack)
        return result

    def bases(self, direction: int, seq: int, ack: int, flags: int) -> None:
        """Each direction's initial sequence number, from its first segment or the first ACK
        of it (kept also for flows whose analysis is off: port reuse is told by it)."""
        fwd = self.dirs[direction]
        if not fwd.base_set:
            fwd.base_seq = seq if flags & TH_SYN else (seq - 1) & MASK
            fwd.base_set = True
            fwd.unwrapped = seq
        rev = self.dirs[1 - direction]
        if not rev.base_set and flags & TH_ACK:
            rev.base_seq = (ack - 1) & MASK
            rev.base_set = True

    @staticmethod
    def _acks(result, fwd, rev, seglen, window, same_position, no_control) -> int:
        """Keep-alive ACK, zero-window-probe ACK and duplicate ACK (mutually exclusive)."""
        if not (seglen == 0 and same_position and no_control):
            return result
        if window and window == fwd.window and rev.lastsegmentflags & KEEP_ALIVE:
            return result | KEEP_ALIVE_ACK
        if window == 0 and fwd.window == 0 and rev.lastsegmentflags & ZERO_WINDOW_PROBE:
            return result | ZERO_WINDOW_PROBE_ACK
        if window and window == fwd.window:
            fwd.dupacknum = 1 if fwd.dupacknum == -1 else fwd.dupacknum + 1
            return result | DUPLICATE_ACK
        return result

    def _retransmission(self, result, fwd, rev, time_ns, seq, seglen, flags) -> int:
        if result & KEEP_ALIVE:
            return 0
        not_advanced = bool(fwd.nextseq) and lt(seq, fwd.nextseq)
        if seglen > 1 and (fwd.nextseq - 1) & MASK == seq:
            not_advanced = False
        if seglen > 0 and rev.lastack and le((seq + seglen) & MASK, rev.lastack):
            return SPURIOUS_RETRANSMISSION
        if (
            not_advanced
            and rev.dupacknum >= 2
            and rev.lastack == seq
            and 0 <= time_ns - rev.lastack_time < FAST_RETRANSMISSION_WINDOW_NS
        ):
            return FAST_RETRANSMISSION
        threshold = self.first_rtt_ns or DEFAULT_OUT_OF_ORDER_NS
        syn_fin = 1 if flags & (TH_SYN | TH_FIN) else 0
        if (
            not_advanced
            and 0 <= time_ns - fwd.nextseq_time < threshold
            and fwd.nextseq != (seq + seglen + syn_fin) & MASK
        ):
            return OUT_OF_ORDER
        return RETRANSMISSION if not_advanced else 0

    def after_segment(self, time_ns: int, flags: int) -> None:
        """Handshake timing Wireshark records after analysing a segment."""
        if flags & TH_SYN and not flags & TH_ACK:
            self.mru_syn_ns = time_ns
        elif flags & (TH_SYN | TH_ACK) == TH_ACK and self.mru_syn_ns and not self.first_rtt_ns:
            self.first_rtt_ns = time_ns - self.mru_syn_ns

    def set_window_scale(self, direction: int, wscale: int | None, is_synack: bool) -> None:
        """Wireshark's window-scale bookkeeping for a SYN or SYN/ACK."""
        fwd = self.dirs[direction]
        rev = self.dirs[1 - direction]
        if wscale is not None:
            fwd.win_scale = wscale
        if fwd.win_scale == WIN_SCALE_UNKNOWN:
            fwd.win_scale = rev.win_scale = WIN_SCALE_NONE
        elif is_synack and rev.win_scale == WIN_SCALE_NONE:
            fwd.win_scale = WIN_SCALE_NONE

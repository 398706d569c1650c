//! Wireshark's TCP sequence analysis (`tcp_analyze_sequence_number()` in packet-tcp.c,
//! 4.0), segment by segment, so that our `tcp.analysis.*` flags equal tshark's frame for
//! frame. Its conventions are kept on purpose: 0 means "not seen yet" for `nextseq`,
//! `lastack` and `maxseqtobeacked`, and comparisons are modulo 2**32.
//!
//! The "ACKed segment that wasn't captured" rule differs between the Wireshark versions
//! whose source we could read; the one here (one report per stall, then the mark moves to
//! the highest byte seen) reproduces tshark 4.0.17 on every capture of tests/tcp.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use super::sequence::{add, gt, le, lt, unwrap};
use super::{TH_ACK, TH_FIN, TH_RST, TH_SYN};

/// The flags, with Wireshark's meaning (pcapsmtp.tcp.model.Flag holds the same values).
pub const RETRANSMISSION: u16 = 0x0001;
pub const LOST_SEGMENT: u16 = 0x0002;
pub const ACK_LOST_SEGMENT: u16 = 0x0004;
pub const KEEP_ALIVE: u16 = 0x0008;
pub const DUPLICATE_ACK: u16 = 0x0010;
pub const ZERO_WINDOW: u16 = 0x0020;
pub const ZERO_WINDOW_PROBE: u16 = 0x0040;
pub const ZERO_WINDOW_PROBE_ACK: u16 = 0x0080;
pub const KEEP_ALIVE_ACK: u16 = 0x0100;
pub const OUT_OF_ORDER: u16 = 0x0200;
pub const FAST_RETRANSMISSION: u16 = 0x0400;
pub const WINDOW_UPDATE: u16 = 0x0800;
pub const WINDOW_FULL: u16 = 0x1000;
pub const REUSED_PORTS: u16 = 0x2000;
pub const SPURIOUS_RETRANSMISSION: u16 = 0x4000;
pub const ANY_RETRANSMISSION: u16 = RETRANSMISSION | FAST_RETRANSMISSION | SPURIOUS_RETRANSMISSION;

/// Wireshark stops listing unacknowledged segments at this many (TCP_MAX_UNACKED_SEGMENTS).
pub const MAX_UNACKED_SEGMENTS: usize = 1000;
/// A retransmission within 20 ms of the second duplicate ACK is a fast one (Wireshark).
pub const FAST_RETRANSMISSION_WINDOW_NS: i128 = 20_000_000;
/// Out-of-order threshold when the handshake RTT is unknown (Wireshark).
pub const DEFAULT_OUT_OF_ORDER_NS: i128 = 3_000_000;
const WIN_SCALE_UNKNOWN: i8 = -1;
const WIN_SCALE_NONE: i8 = -2;

/// Wireshark's per-direction `tcp_flow_t` and `tcp_analyze_seq_info`.
#[derive(Clone, Debug)]
pub struct DirectionState {
    pub base_seq: u32,
    pub base_set: bool,
    nextseq: u32,
    nextseq_time: i128,
    maxseqtobeacked: u32,
    lastack: u32,
    lastack_time: i128,
    dupacknum: i64,
    window: u16,
    win_scale: i8,
    /// Analysis flags of this direction's last segment.
    lastsegmentflags: u16,
    /// Unwrapped next-sequence numbers of Wireshark's unacked-segment list.
    unacked: Unacked,
    /// How many of them `unacked` holds in place (kept here, where it fills padding).
    unacked_held: u8,
    /// A recent sequence number of this direction, unwrapped to 64 bits.
    unwrapped: i64,
}

impl Default for DirectionState {
    fn default() -> Self {
        DirectionState {
            base_seq: 0,
            base_set: false,
            nextseq: 0,
            nextseq_time: 0,
            maxseqtobeacked: 0,
            lastack: 0,
            lastack_time: 0,
            dupacknum: 0,
            window: 0,
            win_scale: WIN_SCALE_UNKNOWN,
            lastsegmentflags: 0,
            unacked: Unacked::default(),
            unacked_held: 0,
            unwrapped: 0,
        }
    }
}

/// Values held in place by an [`Unacked`] list before it moves them to a heap.
const UNACKED_IN_PLACE: usize = 2;

/// Wireshark's unacknowledged-segment list of one direction as the analysis reads it: how
/// many it holds, and dropping every value an ACK covers (what is left does not depend on
/// the order values are kept in). An open flow holds one or two, which stay in place; a
/// heap, made past [`UNACKED_IN_PLACE`], holds them from then on, so a direction costs
/// no allocation until then (issue 19: 100,000 open flows). How many are held in place
/// (`held`, 0 once the heap is made) is the owner's, passed to each call: beside the
/// owner's small fields it costs no room of its own.
#[derive(Clone, Debug, Default)]
pub struct Unacked {
    in_place: [i64; UNACKED_IN_PLACE],
    #[allow(clippy::box_collection)]
    heap: Option<Box<BinaryHeap<Reverse<i64>>>>,
}

impl Unacked {
    pub fn len(&self, held: u8) -> usize {
        match &self.heap {
            Some(heap) => heap.len(),
            None => usize::from(held).min(UNACKED_IN_PLACE),
        }
    }

    pub fn is_empty(&self, held: u8) -> bool {
        self.len(held) == 0
    }

    pub fn push(&mut self, held: &mut u8, value: i64) {
        let n = usize::from(*held);
        match &mut self.heap {
            Some(heap) => heap.push(Reverse(value)),
            None if n < UNACKED_IN_PLACE => {
                self.in_place[n] = value;
                *held += 1;
            }
            None => {
                let mut heap = BinaryHeap::with_capacity(2 * UNACKED_IN_PLACE);
                heap.extend(self.in_place.iter().map(|&v| Reverse(v)));
                heap.push(Reverse(value));
                self.heap = Some(Box::new(heap));
                *held = 0;
            }
        }
    }

    /// Drop every value at or below `limit`.
    pub fn drop_up_to(&mut self, held: &mut u8, limit: i64) {
        match &mut self.heap {
            Some(heap) => {
                while let Some(Reverse(lowest)) = heap.peek() {
                    if *lowest > limit {
                        break;
                    }
                    heap.pop();
                }
            }
            None => {
                let mut kept = 0;
                for at in 0..usize::from(*held).min(UNACKED_IN_PLACE) {
                    let value = self.in_place[at];
                    if value > limit {
                        self.in_place[kept] = value;
                        kept += 1;
                    }
                }
                *held = kept as u8;
            }
        }
    }
}

impl DirectionState {
    fn unwrap(&mut self, seq: u32) -> i64 {
        self.unwrapped = unwrap(seq, self.unwrapped);
        self.unwrapped
    }

    /// Drop the listed segments an ACK from the peer covers.
    fn acknowledge(&mut self, ack: u32) {
        if self.unacked.is_empty(self.unacked_held) {
            return;
        }
        let limit = unwrap(ack, self.unwrapped);
        self.unacked.drop_up_to(&mut self.unacked_held, limit);
    }
}

/// One segment's fields as the analysis reads them.
#[derive(Clone, Copy, Debug, Default)]
pub struct Segment {
    pub frame: u64,
    pub time_ns: i128,
    pub seq: u32,
    pub ack: u32,
    pub length: u64,
    pub flags: u16,
    pub window: u16,
}

/// Both directions of one conversation plus the handshake timing Wireshark keeps.
#[derive(Clone, Debug, Default)]
pub struct SequenceAnalysis {
    pub dirs: [DirectionState; 2],
    first_rtt_ns: i128,
    mru_syn_ns: i128,
}

impl SequenceAnalysis {
    /// The analysis flags of one segment sent in `direction` (0 or 1); updates the state
    /// as Wireshark does.
    pub fn analyze(&mut self, direction: usize, seg: &Segment) -> u16 {
        let d = direction & 1;
        let (seq, ack, seglen, flags, window) =
            (seg.seq, seg.ack, seg.length, seg.flags, seg.window);
        self.bases(d, seq, ack, flags);
        let first_rtt_ns = self.first_rtt_ns;
        let [a, b] = &mut self.dirs;
        let (fwd, rev) = if d == 0 { (a, b) } else { (b, a) };
        let mut result = 0u16;

        let no_control = flags & (TH_SYN | TH_FIN | TH_RST) == 0;
        let same_position = seq == fwd.nextseq && ack == fwd.lastack;

        if seglen == 1 && seq == fwd.nextseq && rev.window == 0 {
            result |= ZERO_WINDOW_PROBE;
        } else {
            if window == 0 && no_control {
                result |= ZERO_WINDOW;
            }
            if fwd.nextseq != 0 && gt(seq, fwd.nextseq) && flags & TH_RST == 0 {
                result |= LOST_SEGMENT;
            }
            if seglen <= 1 && seq == fwd.nextseq.wrapping_sub(1) && no_control {
                result |= KEEP_ALIVE;
            }
            if seglen == 0 && window != 0 && window != fwd.window && same_position && no_control {
                result |= WINDOW_UPDATE;
            }
            if seglen > 0 && rev.win_scale != WIN_SCALE_UNKNOWN && no_control {
                let scale = rev.win_scale.max(0) as u32;
                let edge = add(rev.lastack, u64::from(rev.window) << scale);
                if add(seq, seglen) == edge {
                    result |= WINDOW_FULL;
                }
            }
            result = acks(result, fwd, rev, seglen, window, same_position, no_control);
        }

        if ack != fwd.lastack {
            fwd.dupacknum = 0;
        }

        if rev.maxseqtobeacked != 0 && gt(ack, rev.maxseqtobeacked) && flags & TH_ACK != 0 {
            if rev.maxseqtobeacked > rev.nextseq {
                // Wireshark compares these without wrap.
                result |= ACK_LOST_SEGMENT;
            } else {
                // One report per stall: -1 until the other side's ACK moves again.
                if rev.dupacknum == 0 {
                    result |= ACK_LOST_SEGMENT;
                }
                rev.dupacknum = -1;
            }
            rev.maxseqtobeacked = rev.nextseq;
        }

        if seglen > 0 || flags & (TH_SYN | TH_FIN) != 0 {
            result |= retransmission(result, fwd, rev, first_rtt_ns, seg);
        }

        let mut nextseq = add(seq, seglen);
        if (seglen != 0 || flags & (TH_SYN | TH_FIN) != 0)
            && fwd.unacked.len(fwd.unacked_held) < MAX_UNACKED_SEGMENTS
        {
            if flags & (TH_SYN | TH_FIN) != 0 {
                nextseq = nextseq.wrapping_add(1);
            }
            let unwrapped = fwd.unwrap(nextseq);
            fwd.unacked.push(&mut fwd.unacked_held, unwrapped);
        }
        let probe = result & ZERO_WINDOW_PROBE != 0;
        if (gt(nextseq, fwd.nextseq) || fwd.nextseq == 0) && !probe {
            fwd.nextseq = nextseq;
            fwd.nextseq_time = seg.time_ns;
        }
        if (seq == fwd.maxseqtobeacked || fwd.maxseqtobeacked == 0) && !probe {
            fwd.maxseqtobeacked = fwd.nextseq;
        }

        fwd.window = window;
        fwd.lastack = ack;
        fwd.lastack_time = seg.time_ns;
        fwd.lastsegmentflags = result;
        rev.acknowledge(ack);
        result
    }

    /// How far `seq` lies beyond the next sequence number expected of `direction` (0 when
    /// it does not, or nothing was seen yet). Asked of a RST before it is analysed: Wireshark
    /// moves its next expected number up to a RST's, so that side's next segments below it
    /// are flagged retransmissions though they carry new data.
    pub fn ahead_of_next(&self, direction: usize, seq: u32) -> u32 {
        let fwd = &self.dirs[direction & 1];
        if fwd.nextseq != 0 && gt(seq, fwd.nextseq) {
            seq.wrapping_sub(fwd.nextseq)
        } else {
            0
        }
    }

    /// Each direction's initial sequence number, from its first segment or the first ACK
    /// of it (kept also for flows whose analysis is off: port reuse is told by it).
    pub fn bases(&mut self, direction: usize, seq: u32, ack: u32, flags: u16) {
        let d = direction & 1;
        let fwd = &mut self.dirs[d];
        if !fwd.base_set {
            fwd.base_seq = if flags & TH_SYN != 0 {
                seq
            } else {
                seq.wrapping_sub(1)
            };
            fwd.base_set = true;
            fwd.unwrapped = i64::from(seq);
        }
        let rev = &mut self.dirs[1 - d];
        if !rev.base_set && flags & TH_ACK != 0 {
            rev.base_seq = ack.wrapping_sub(1);
            rev.base_set = true;
        }
    }

    /// Handshake timing Wireshark records after analysing a segment.
    pub fn after_segment(&mut self, time_ns: i128, flags: u16) {
        if flags & TH_SYN != 0 && flags & TH_ACK == 0 {
            self.mru_syn_ns = time_ns;
        } else if flags & (TH_SYN | TH_ACK) == TH_ACK
            && self.mru_syn_ns != 0
            && self.first_rtt_ns == 0
        {
            self.first_rtt_ns = time_ns - self.mru_syn_ns;
        }
    }

    /// Wireshark's window-scale bookkeeping for a SYN or SYN/ACK.
    pub fn set_window_scale(&mut self, direction: usize, wscale: Option<u8>, is_synack: bool) {
        let d = direction & 1;
        let rev_scale = self.dirs[1 - d].win_scale;
        let fwd = &mut self.dirs[d];
        if let Some(scale) = wscale {
            fwd.win_scale = scale.min(14) as i8;
        }
        if fwd.win_scale == WIN_SCALE_UNKNOWN {
            fwd.win_scale = WIN_SCALE_NONE;
            self.dirs[1 - d].win_scale = WIN_SCALE_NONE;
        } else if is_synack && rev_scale == WIN_SCALE_NONE {
            fwd.win_scale = WIN_SCALE_NONE;
        }
    }

    /// A SYN of `direction` with another initial sequence number than the one its side
    /// started with: Wireshark's `tcp.analysis.reused_ports`.
    pub fn reuses(&self, direction: usize, seq: u32) -> bool {
        let state = &self.dirs[direction & 1];
        state.base_set && seq != state.base_seq
    }

    /// Forget the unacknowledged-segment lists (an ended flow kept for its numbering: no
    /// flag depends on them, they only bound their growth).
    pub fn forget_unacked(&mut self) {
        for state in &mut self.dirs {
            state.unacked = Unacked::default();
            state.unacked_held = 0;
        }
    }
}

/// One direction of a [`PackedSequence`]: [`DirectionState`] without its
/// unacknowledged-segment list, times and counters in 64 bits.
#[derive(Clone, Debug, PartialEq, Eq)]
struct PackedDirection {
    nextseq_time: i64,
    lastack_time: i64,
    dupacknum: i64,
    unwrapped: i64,
    base_seq: u32,
    nextseq: u32,
    maxseqtobeacked: u32,
    lastack: u32,
    window: u16,
    lastsegmentflags: u16,
    win_scale: i8,
    base_set: bool,
}

/// The sequence analysis of an ended flow kept for its numbering (issue 19: up to
/// `max_ended` of them), in 128 bytes instead of 224 plus two empty lists. Lossless:
/// [`SequenceAnalysis::pack`] refuses a state it could not give back exactly (a time
/// beyond 64-bit nanoseconds, or unacknowledged segments still listed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PackedSequence {
    dirs: [PackedDirection; 2],
    first_rtt_ns: i64,
    mru_syn_ns: i64,
}

impl SequenceAnalysis {
    /// This state in fewer bytes, or None if some of it would not fit (see
    /// [`PackedSequence`]); `unpack` of the result equals `self`.
    pub fn pack(&self) -> Option<PackedSequence> {
        let dir = |d: &DirectionState| {
            if !d.unacked.is_empty(d.unacked_held) {
                return None;
            }
            Some(PackedDirection {
                nextseq_time: i64::try_from(d.nextseq_time).ok()?,
                lastack_time: i64::try_from(d.lastack_time).ok()?,
                dupacknum: d.dupacknum,
                unwrapped: d.unwrapped,
                base_seq: d.base_seq,
                nextseq: d.nextseq,
                maxseqtobeacked: d.maxseqtobeacked,
                lastack: d.lastack,
                window: d.window,
                lastsegmentflags: d.lastsegmentflags,
                win_scale: d.win_scale,
                base_set: d.base_set,
            })
        };
        Some(PackedSequence {
            dirs: [dir(&self.dirs[0])?, dir(&self.dirs[1])?],
            first_rtt_ns: i64::try_from(self.first_rtt_ns).ok()?,
            mru_syn_ns: i64::try_from(self.mru_syn_ns).ok()?,
        })
    }
}

impl PackedSequence {
    /// The state it was packed from.
    pub fn unpack(&self) -> SequenceAnalysis {
        let dir = |d: &PackedDirection| DirectionState {
            base_seq: d.base_seq,
            base_set: d.base_set,
            nextseq: d.nextseq,
            nextseq_time: i128::from(d.nextseq_time),
            maxseqtobeacked: d.maxseqtobeacked,
            lastack: d.lastack,
            lastack_time: i128::from(d.lastack_time),
            dupacknum: d.dupacknum,
            window: d.window,
            win_scale: d.win_scale,
            lastsegmentflags: d.lastsegmentflags,
            unacked: Unacked::default(),
            unacked_held: 0,
            unwrapped: d.unwrapped,
        };
        SequenceAnalysis {
            dirs: [dir(&self.dirs[0]), dir(&self.dirs[1])],
            first_rtt_ns: i128::from(self.first_rtt_ns),
            mru_syn_ns: i128::from(self.mru_syn_ns),
        }
    }
}

/// Keep-alive ACK, zero-window-probe ACK and duplicate ACK (mutually exclusive).
fn acks(
    result: u16,
    fwd: &mut DirectionState,
    rev: &DirectionState,
    seglen: u64,
    window: u16,
    same_position: bool,
    no_control: bool,
) -> u16 {
    if !(seglen == 0 && same_position && no_control) {
        return result;
    }
    if window != 0 && window == fwd.window && rev.lastsegmentflags & KEEP_ALIVE != 0 {
        return result | KEEP_ALIVE_ACK;
    }
    if window == 0 && fwd.window == 0 && rev.lastsegmentflags & ZERO_WINDOW_PROBE != 0 {
        return result | ZERO_WINDOW_PROBE_ACK;
    }
    if window != 0 && window == fwd.window {
        fwd.dupacknum = if fwd.dupacknum == -1 {
            1
        } else {
            fwd.dupacknum + 1
        };
        return result | DUPLICATE_ACK;
    }
    result
}

fn retransmission(
    result: u16,
    fwd: &DirectionState,
    rev: &DirectionState,
    first_rtt_ns: i128,
    seg: &Segment,
) -> u16 {
    if result & KEEP_ALIVE != 0 {
        return 0;
    }
    let (seq, seglen, time_ns) = (seg.seq, seg.length, seg.time_ns);
    let mut not_advanced = fwd.nextseq != 0 && lt(seq, fwd.nextseq);
    if seglen > 1 && fwd.nextseq.wrapping_sub(1) == seq {
        not_advanced = false;
    }
    if seglen > 0 && rev.lastack != 0 && le(add(seq, seglen), rev.lastack) {
        return SPURIOUS_RETRANSMISSION;
    }
    let since_ack = time_ns - rev.lastack_time;
    if not_advanced
        && rev.dupacknum >= 2
        && rev.lastack == seq
        && (0..FAST_RETRANSMISSION_WINDOW_NS).contains(&since_ack)
    {
        return FAST_RETRANSMISSION;
    }
    let threshold = if first_rtt_ns != 0 {
        first_rtt_ns
    } else {
        DEFAULT_OUT_OF_ORDER_NS
    };
    let syn_fin = u64::from(seg.flags & (TH_SYN | TH_FIN) != 0);
    let since_next = time_ns - fwd.nextseq_time;
    if not_advanced
        && 0 <= since_next
        && since_next < threshold
        && fwd.nextseq != add(seq, seglen.wrapping_add(syn_fin))
    {
        return OUT_OF_ORDER;
    }
    if not_advanced {
        RETRANSMISSION
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The list kept in place, then on a heap, holds what a plain heap holds: the same
    /// length after every push and every ACK, over random runs with values far apart and
    /// close together.
    #[test]
    fn an_unacked_list_holds_what_a_heap_holds() {
        let mut next = crate::tcp::test_random(0x9e37_79b9_u64);
        for round in 0..500u64 {
            let (mut list, mut heap) = (Unacked::default(), BinaryHeap::new());
            let mut held = 0u8;
            let spread = 1 + round % 50;
            let mut base = i64::MIN / 2 + (round as i64) * 1_000_000_007;
            for _ in 0..100 {
                if next(3) == 0 {
                    base += next(spread) as i64;
                    list.drop_up_to(&mut held, base);
                    while heap.peek().is_some_and(|Reverse(v)| *v <= base) {
                        heap.pop();
                    }
                } else {
                    let value = base + next(2 * spread) as i64 - spread as i64 / 2;
                    list.push(&mut held, value);
                    heap.push(Reverse(value));
                }
                assert_eq!(list.len(held), heap.len(), "round {round}");
                assert_eq!(list.is_empty(held), heap.is_empty());
            }
            let mut left: Vec<i64> = match &list.heap {
                Some(h) => h.iter().map(|Reverse(v)| *v).collect(),
                None => list.in_place[..usize::from(held)].to_vec(),
            };
            let mut want: Vec<i64> = heap.into_iter().map(|Reverse(v)| v).collect();
            left.sort_unstable();
            want.sort_unstable();
            assert_eq!(left, want, "round {round}");
        }
        // The extremes of i64 stay in place and go exactly.
        let (mut list, mut held) = (Unacked::default(), 0);
        list.push(&mut held, i64::MAX);
        list.push(&mut held, i64::MIN);
        list.drop_up_to(&mut held, i64::MIN);
        assert_eq!(list.len(held), 1);
        list.drop_up_to(&mut held, i64::MAX);
        assert!(list.is_empty(held) && list.heap.is_none());
    }
}

//! One direction of a TCP connection as an ordered byte stream with explicit gaps.
//!
//! Sequence numbers become 64-bit stream offsets (0 = the first byte after the SYN, or
//! the first byte seen when the capture starts mid-connection), so wrap-around is
//! handled once, here. Out-of-order bytes wait in a bounded buffer; bytes that will never
//! come (the peer acknowledged them, the snap length cut them, the buffer overflowed, the
//! flow ended) become a gap the consumer can resynchronise after.
//!
//! Held segments are kept in a map ordered by offset, so a direction of n segments costs
//! O(n log n) whatever their order and however many holes never fill (a port scan, a
//! lossy capture of a big transfer, a hostile flow). The buffer is bounded per direction,
//! as Zeek's and Suricata's are (a memcap): when what it holds would pass the bound, the
//! hole in front of the held data is declared a gap ([`GapReason::BufferLimit`]), the
//! data behind it is delivered and the stream goes on.
//!
//! The struct knows nothing of Python: a flow table owns one per direction and hands
//! the chunks of [`StreamReassembler::take`] to the SMTP framing
//! ([`crate::smtp_framing::LineFramer`]) directly. Nothing here panics on any input: the
//! fuzz target `reassembly` feeds it arbitrary segments and checks the invariants.

use std::collections::BTreeMap;

/// What the out-of-order buffer of one direction may hold (payload plus
/// [`SEGMENT_OVERHEAD`] per held segment) before the hole in front of it is given up.
///
/// When the receiver's acknowledgements are in the capture, a hole they pass is declared
/// 'not captured' at once, so the buffer holds at most about one receive window (Linux's
/// default maximum receive buffer, net.ipv4.tcp_rmem, is 6 MiB, of which the advertised
/// window is a part). Only data behind a hole that never fills, in a capture without
/// those acknowledgements, comes near the bound; 4 MiB per direction keeps a normal
/// transfer whole and one such flow under about 10 MiB.
pub const MAX_PENDING_BYTES: u64 = 4 * 1024 * 1024;

/// Bytes charged per held segment beyond its payload, so that many tiny segments reach
/// the bound as surely as a few large ones. The figure is what holding one cost in the
/// CPython implementation this one replaced (about 275 bytes); it is kept so the bound
/// fires at exactly the same point as before. Holding one here costs less (an entry of
/// the ordered map and the payload's allocation, measured in
/// tests/tcp/test_reassembly.py), so the charge is an upper bound.
pub const SEGMENT_OVERHEAD: u64 = 288;

/// Delivered segments kept to compare retransmissions with (different bytes = a finding).
pub const RECENT_SEGMENTS: usize = 8;

const MASK: i64 = 0xFFFF_FFFF;
const HALF: i64 = 0x8000_0000;
const SPAN: i64 = 0x1_0000_0000;

/// `seq` (a 32-bit offset from the base) as the unwrapped offset closest to `near`.
fn unwrap(seq: u32, near: i64) -> i64 {
    let d = (i64::from(seq) - near) & MASK;
    near + if d & HALF != 0 { d - SPAN } else { d }
}

/// Why bytes of the stream will not come.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GapReason {
    /// The snap length cut the payload.
    Snaplen,
    /// The peer acknowledged bytes the capture does not hold.
    NotCaptured,
    /// The out-of-order buffer reached [`MAX_PENDING_BYTES`].
    BufferLimit,
    /// The flow ended with the hole still open.
    NeverFilled,
}

impl GapReason {
    /// The name the JSON output and the findings use.
    pub fn as_str(self) -> &'static str {
        match self {
            GapReason::Snaplen => "snaplen",
            GapReason::NotCaptured => "not captured",
            GapReason::BufferLimit => "buffer limit",
            GapReason::NeverFilled => "never filled",
        }
    }
}

/// Contiguous bytes of the stream, or a gap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    Data(Vec<u8>),
    Gap(GapReason),
}

/// What the reassembler delivers, in stream order: each chunk starts where the last ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    pub offset: u64,
    pub length: u64,
    pub content: Content,
    /// The frame that carried the bytes, or that made the gap known.
    pub frame: u64,
    pub time_ns: i128,
}

/// A held out-of-order segment.
#[derive(Debug, Clone)]
pub struct Held {
    pub data: Box<[u8]>,
    pub wire_len: u64,
    pub frame: u64,
    pub time_ns: i128,
}

/// Feed segments of one direction in capture order; collect chunks in stream order.
#[derive(Debug, Clone)]
pub struct StreamReassembler {
    /// Sequence number of stream offset 0.
    base: Option<u32>,
    /// Offset of the next byte to deliver.
    expected: i64,
    /// The FIN's offset, or [`NO_FIN`] (an offset is within 2**31 of `expected`).
    fin_offset: i64,
    /// What came out of order, made when a segment first does: an open flow's
    /// directions seldom need it (issue 19: 100,000 of them at once).
    out_of_order: Option<Box<OutOfOrder>>,
    max_pending: u64,
    /// The last RECENT_SEGMENTS delivered (offset, bytes); `recent_next` is the oldest
    /// once the ring is full.
    recent: Vec<(i64, Box<[u8]>)>,
    recent_next: u32,
    /// Retransmitted bytes that differ from the first copy.
    mismatches: u64,
    out: Vec<Chunk>,
}

/// `StreamReassembler::fin_offset` before a FIN.
const NO_FIN: i64 = i64::MIN;

/// The out-of-order buffer of one direction and what its bound gave up.
#[derive(Debug, Clone, Default)]
struct OutOfOrder {
    /// The held out-of-order segments by offset (each offset once, always past `expected`).
    pending: BTreeMap<i64, Held>,
    /// What `pending` holds, as charged against `max_pending`.
    pending_bytes: u64,
    /// Holes given up at the buffer bound, and their bytes.
    limited: u64,
    limited_bytes: u64,
}

/// What a direction that never held a segment out of order reads.
static IN_ORDER: OutOfOrder = OutOfOrder {
    pending: BTreeMap::new(),
    pending_bytes: 0,
    limited: 0,
    limited_bytes: 0,
};

impl Default for StreamReassembler {
    fn default() -> Self {
        Self::new(MAX_PENDING_BYTES)
    }
}

impl StreamReassembler {
    /// A direction whose out-of-order buffer holds at most `max_pending` (as charged).
    pub fn new(max_pending: u64) -> Self {
        StreamReassembler {
            base: None,
            expected: 0,
            fin_offset: NO_FIN,
            out_of_order: None,
            max_pending,
            recent: Vec::new(),
            recent_next: 0,
            mismatches: 0,
            out: Vec::new(),
        }
    }

    pub fn base(&self) -> Option<u32> {
        self.base
    }
    pub fn expected(&self) -> u64 {
        self.expected as u64
    }
    pub fn fin_offset(&self) -> Option<i64> {
        Some(self.fin_offset).filter(|&fin| fin != NO_FIN)
    }
    pub fn mismatches(&self) -> u64 {
        self.mismatches
    }
    pub fn limited(&self) -> u64 {
        self.held().limited
    }
    pub fn limited_bytes(&self) -> u64 {
        self.held().limited_bytes
    }
    pub fn pending_bytes(&self) -> u64 {
        self.held().pending_bytes
    }
    pub fn pending(&self) -> &BTreeMap<i64, Held> {
        &self.held().pending
    }

    fn held(&self) -> &OutOfOrder {
        self.out_of_order.as_deref().unwrap_or(&IN_ORDER)
    }

    /// The offset of the first held segment.
    fn first_pending(&self) -> Option<i64> {
        let held = self.out_of_order.as_deref()?;
        held.pending.first_key_value().map(|(&first, _)| first)
    }
    /// Chunks waiting for [`take`](Self::take).
    pub fn ready(&self) -> usize {
        self.out.len()
    }

    /// The SYN's sequence number: data starts one after it (the first SYN counts).
    pub fn start(&mut self, isn: u32) {
        if self.base.is_none() {
            self.base = Some(isn.wrapping_add(1));
        }
    }

    /// The stream offset of `seq` (the base set), closest to the next byte expected.
    pub fn offset(&self, seq: u32) -> Option<i64> {
        self.base
            .map(|base| unwrap(seq.wrapping_sub(base), self.expected))
    }

    fn offset_or_base(&mut self, seq: u32) -> i64 {
        let base = *self.base.get_or_insert(seq);
        unwrap(seq.wrapping_sub(base), self.expected)
    }

    /// A data segment; `data` may be shorter than `wire_len` under a snap length.
    pub fn segment(&mut self, seq: u32, data: &[u8], wire_len: u64, frame: u64, time_ns: i128) {
        let mut start = self.offset_or_base(seq);
        // At most an IPv6 jumbogram's payload, so offsets stay far from i64's limits.
        let wire = wire_len.min(u64::from(u32::MAX)) as i64;
        let end = start + wire;
        if end <= self.expected {
            self.compare(start, data);
            return;
        }
        let (mut data, mut wire) = (data, wire);
        if start < self.expected {
            let cut = self.expected - start;
            self.compare(start, &data[..data.len().min(cut as u64 as usize)]);
            data = &data[data.len().min(cut as u64 as usize)..];
            wire -= cut;
            start = self.expected;
        }
        if start == self.expected {
            self.deliver(start, data, wire, frame, time_ns);
            self.drain();
            return;
        }
        let held_ooo = self.out_of_order.get_or_insert_with(Default::default);
        match held_ooo.pending.get_mut(&start) {
            None => {
                held_ooo.pending_bytes += data.len() as u64 + SEGMENT_OVERHEAD;
                held_ooo.pending.insert(
                    start,
                    Held {
                        data: data.into(),
                        wire_len: wire as u64,
                        frame,
                        time_ns,
                    },
                );
            }
            Some(held) if (held.wire_len as i64) < wire => {
                held_ooo.pending_bytes =
                    held_ooo.pending_bytes + data.len() as u64 - held.data.len() as u64;
                *held = Held {
                    data: data.into(),
                    wire_len: wire as u64,
                    frame,
                    time_ns,
                };
            }
            Some(_) => {}
        }
        while self.pending_bytes() > self.max_pending {
            let Some(first) = self.first_pending() else {
                break;
            };
            self.skip_to(first, frame, time_ns, GapReason::BufferLimit);
        }
    }

    /// The FIN's sequence number (after the segment's data).
    pub fn fin(&mut self, seq: u32) {
        self.fin_offset = self.offset_or_base(seq);
    }

    /// The peer acknowledged up to `ack`: bytes before it that we lack were not captured.
    pub fn acknowledged(&mut self, ack: u32, frame: u64, time_ns: i128) {
        let Some(mut limit) = self.offset(ack) else {
            return;
        };
        if self.fin_offset != NO_FIN && limit == self.fin_offset + 1 {
            limit -= 1;
        }
        if limit > self.expected {
            let hole_end = match self.first_pending() {
                Some(first) => limit.min(first),
                None => limit,
            };
            if hole_end > self.expected {
                self.skip_to(hole_end, frame, time_ns, GapReason::NotCaptured);
            }
        }
    }

    /// The flow ended: whatever waits behind a hole is delivered after a gap.
    pub fn finish(&mut self, frame: u64, time_ns: i128) {
        while let Some(first) = self.first_pending() {
            self.skip_to(first, frame, time_ns, GapReason::NeverFilled);
        }
    }

    /// The connection closed: drop the copies kept to compare retransmissions with, so a
    /// closed flow lingering for late packets holds no payload. A retransmission after
    /// the close is not compared.
    pub fn release(&mut self) {
        self.recent = Vec::new();
        self.recent_next = 0;
    }

    /// The chunks delivered since the last call, in stream order.
    pub fn take(&mut self) -> Vec<Chunk> {
        std::mem::take(&mut self.out)
    }

    fn deliver(&mut self, start: i64, data: &[u8], wire: i64, frame: u64, time_ns: i128) {
        if !data.is_empty() {
            self.out.push(Chunk {
                offset: start as u64,
                length: data.len() as u64,
                content: Content::Data(data.to_vec()),
                frame,
                time_ns,
            });
            self.remember(start, data);
        }
        self.expected = start + data.len() as i64;
        if wire > data.len() as i64 {
            self.out.push(Chunk {
                offset: self.expected as u64,
                length: (wire - data.len() as i64) as u64,
                content: Content::Gap(GapReason::Snaplen),
                frame,
                time_ns,
            });
            self.expected = start + wire;
        }
    }

    fn remember(&mut self, start: i64, data: &[u8]) {
        if self.recent.len() < RECENT_SEGMENTS {
            // Room for one more at a time: an open SMTP flow has delivered one or two
            // segments, and the amortized growth would make room for four.
            self.recent.reserve_exact(1);
            self.recent.push((start, data.into()));
        } else {
            let next = self.recent_next as usize;
            let slot = &mut self.recent[next];
            slot.0 = start;
            if slot.1.len() == data.len() {
                slot.1.copy_from_slice(data);
            } else {
                slot.1 = data.into();
            }
            self.recent_next = ((next + 1) % RECENT_SEGMENTS) as u32;
        }
    }

    fn drain(&mut self) {
        while let Some(held_ooo) = self.out_of_order.as_deref_mut() {
            let Some(entry) = held_ooo.pending.first_entry() else {
                break;
            };
            let start = *entry.key();
            if start > self.expected {
                break;
            }
            let held = entry.remove();
            held_ooo.pending_bytes -= held.data.len() as u64 + SEGMENT_OVERHEAD;
            let wire = held.wire_len as i64;
            if start + wire <= self.expected {
                continue;
            }
            let cut = self.expected - start;
            let data = &held.data[held.data.len().min(cut as usize)..];
            self.deliver(self.expected, data, wire - cut, held.frame, held.time_ns);
        }
    }

    fn skip_to(&mut self, offset: i64, frame: u64, time_ns: i128, reason: GapReason) {
        if reason == GapReason::BufferLimit {
            let held = self.out_of_order.get_or_insert_with(Default::default);
            held.limited += 1;
            held.limited_bytes += (offset - self.expected) as u64;
        }
        self.out.push(Chunk {
            offset: self.expected as u64,
            length: (offset - self.expected) as u64,
            content: Content::Gap(reason),
            frame,
            time_ns,
        });
        self.expected = offset;
        self.drain();
    }

    /// A retransmission of `data` at `start`: compared with the first delivered segment
    /// (oldest first) it overlaps.
    fn compare(&mut self, start: i64, data: &[u8]) {
        let n = self.recent.len();
        let first = if n < RECENT_SEGMENTS {
            0
        } else {
            self.recent_next as usize
        };
        for i in 0..n {
            let (old_start, old) = &self.recent[(first + i) % n];
            let lo = start.max(*old_start);
            let hi = (start + data.len() as i64).min(old_start + old.len() as i64);
            if lo < hi {
                let mine = &data[(lo - start) as usize..(hi - start) as usize];
                let theirs = &old[(lo - old_start) as usize..(hi - old_start) as usize];
                if mine != theirs {
                    self.mismatches += 1;
                }
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ISN: u32 = 0xFFFF_F000;

    fn seq(offset: u64) -> u32 {
        ISN.wrapping_add(1).wrapping_add(offset as u32)
    }

    /// Segments (offset, bytes) in the order given, then the end of the flow.
    fn feed(r: &mut StreamReassembler, segments: &[(u64, &[u8])]) -> Vec<Chunk> {
        r.start(ISN);
        let mut out = Vec::new();
        for (i, (offset, data)) in segments.iter().enumerate() {
            r.segment(seq(*offset), data, data.len() as u64, i as u64 + 1, 0);
            out.extend(r.take());
        }
        r.finish(segments.len() as u64 + 1, 0);
        out.extend(r.take());
        out
    }

    fn contiguous(chunks: &[Chunk]) {
        let mut at = chunks.first().map_or(0, |c| c.offset);
        for c in chunks {
            assert_eq!(c.offset, at);
            assert!(c.length > 0);
            if let Content::Data(d) = &c.content {
                assert_eq!(d.len() as u64, c.length);
            }
            at += c.length;
        }
    }

    fn bytes(chunks: &[Chunk]) -> Vec<u8> {
        chunks
            .iter()
            .filter_map(|c| match &c.content {
                Content::Data(d) => Some(d.as_slice()),
                Content::Gap(_) => None,
            })
            .flatten()
            .copied()
            .collect()
    }

    fn gaps(chunks: &[Chunk]) -> Vec<(u64, u64, GapReason)> {
        chunks
            .iter()
            .filter_map(|c| match c.content {
                Content::Gap(r) => Some((c.offset, c.length, r)),
                Content::Data(_) => None,
            })
            .collect()
    }

    fn permutations(n: usize) -> Vec<Vec<usize>> {
        if n == 0 {
            return vec![vec![]];
        }
        let mut out = Vec::new();
        for p in permutations(n - 1) {
            for i in 0..=p.len() {
                let mut q = p.clone();
                q.insert(i, n - 1);
                out.push(q);
            }
        }
        out
    }

    #[test]
    fn every_order_gives_the_same_stream_across_the_wrap() {
        let stream: Vec<u8> = (0..5000u32).map(|i| (i * 7 % 251) as u8).collect();
        // Overlapping segments that cross the 2**32 wrap (the ISN is 4,095 below it).
        let cuts: [(u64, u64); 5] = [
            (0, 1200),
            (1000, 2500),
            (2500, 3000),
            (2900, 4200),
            (4200, 5000),
        ];
        for order in permutations(cuts.len()) {
            let segments: Vec<(u64, &[u8])> = order
                .iter()
                .map(|&i| (cuts[i].0, &stream[cuts[i].0 as usize..cuts[i].1 as usize]))
                .collect();
            let mut r = StreamReassembler::default();
            let chunks = feed(&mut r, &segments);
            contiguous(&chunks);
            assert_eq!(bytes(&chunks), stream, "order {order:?}");
            assert!(gaps(&chunks).is_empty());
            assert_eq!(r.expected(), 5000);
            assert_eq!(r.mismatches(), 0);
            assert_eq!(r.pending_bytes(), 0);
        }
    }

    #[test]
    fn holes_become_gaps_where_they_are_in_every_order() {
        let segments: [(u64, &[u8]); 4] = [(0, b"aaaa"), (10, b"bbbb"), (14, b"cc"), (30, b"d")];
        for order in permutations(segments.len()) {
            let ordered: Vec<_> = order.iter().map(|&i| segments[i]).collect();
            let mut r = StreamReassembler::default();
            let chunks = feed(&mut r, &ordered);
            contiguous(&chunks);
            assert_eq!(bytes(&chunks), b"aaaabbbbccd");
            assert_eq!(
                gaps(&chunks),
                [
                    (4, 6, GapReason::NeverFilled),
                    (16, 14, GapReason::NeverFilled)
                ]
            );
        }
    }

    #[test]
    fn overlaps_keep_the_first_bytes_and_count_differences() {
        let mut r = StreamReassembler::default();
        r.start(ISN);
        r.segment(seq(0), b"EHLO a\r\n", 8, 1, 0);
        r.segment(seq(4), b" a\r\nMAIL", 8, 2, 0); // same bytes where they overlap
        assert_eq!(r.mismatches(), 0);
        r.segment(seq(0), b"HELO", 4, 3, 0); // a retransmission with other bytes
        assert_eq!(r.mismatches(), 1);
        let chunks = r.take();
        assert_eq!(bytes(&chunks), b"EHLO a\r\nMAIL");
        assert_eq!(chunks[1].offset, 8);
        // Once released, retransmissions are no longer compared.
        r.release();
        r.segment(seq(0), b"XXXX", 4, 4, 0);
        assert_eq!(r.mismatches(), 1);
    }

    #[test]
    fn a_longer_copy_of_a_held_segment_replaces_it() {
        let mut r = StreamReassembler::default();
        let chunks = feed(
            &mut r,
            &[(10, b"bb"), (10, b"bbbb"), (10, b"b"), (0, b"aaaaaaaaaa")],
        );
        assert_eq!(bytes(&chunks), b"aaaaaaaaaabbbb");
        assert_eq!(chunks[1].frame, 2);
    }

    #[test]
    fn acknowledged_holes_are_not_captured_up_to_held_data() {
        let mut r = StreamReassembler::default();
        r.start(ISN);
        r.acknowledged(seq(0), 1, 0);
        r.segment(seq(10), b"0123456789", 10, 2, 0);
        r.acknowledged(seq(30), 3, 0);
        let chunks = r.take();
        assert_eq!(gaps(&chunks), [(0, 10, GapReason::NotCaptured)]);
        assert_eq!(bytes(&chunks), b"0123456789");
        r.acknowledged(seq(30), 4, 0);
        assert_eq!(gaps(&r.take()), [(20, 10, GapReason::NotCaptured)]);
        // The ACK of a FIN covers one sequence number past the data: no gap for it.
        r.fin(seq(30));
        r.acknowledged(seq(31), 5, 0);
        assert!(r.take().is_empty());
    }

    #[test]
    fn a_snap_length_cut_is_a_gap_also_when_held() {
        let mut r = StreamReassembler::default();
        let mut chunks = feed(&mut r, &[]);
        r.segment(seq(1400), b"xy", 100, 2, 0);
        r.segment(seq(0), b"abc", 1400, 1, 0);
        chunks.extend(r.take());
        assert_eq!(
            gaps(&chunks),
            [
                (3, 1397, GapReason::Snaplen),
                (1402, 98, GapReason::Snaplen)
            ]
        );
        contiguous(&chunks);
    }

    #[test]
    fn no_base_no_offset_and_no_gap() {
        let mut r = StreamReassembler::default();
        r.acknowledged(12345, 1, 0);
        assert!(r.take().is_empty());
        assert_eq!(r.base(), None);
        // Without a SYN the first data segment sets the base.
        r.segment(77, b"x", 1, 2, 0);
        assert_eq!(r.base(), Some(77));
        assert_eq!(bytes(&r.take()), b"x");
    }

    #[test]
    fn the_memcap_gives_up_the_first_hole_and_goes_on() {
        let size = 100u64;
        let bound = 3 * (size + SEGMENT_OVERHEAD);
        let mut r = StreamReassembler::new(bound);
        r.start(ISN);
        let mut chunks = Vec::new();
        for i in 0..10u64 {
            let data = vec![b'A' + i as u8; size as usize];
            r.segment(seq(1 + i * (size + 1)), &data, size, i + 1, 0);
            assert!(r.pending_bytes() <= bound);
            assert!(r.pending().len() <= 3);
            chunks.extend(r.take());
        }
        let limited: Vec<_> = gaps(&chunks);
        assert_eq!(limited.len(), 7);
        assert!(limited
            .iter()
            .enumerate()
            .all(|(i, g)| *g == (i as u64 * (size + 1), 1, GapReason::BufferLimit)));
        assert_eq!((r.limited(), r.limited_bytes()), (7, 7));
        // Exactly at the bound is still within it: the fourth segment of the same size
        // would pass it, a smaller one does not.
        let mut r = StreamReassembler::new(bound);
        r.start(ISN);
        for i in 0..3u64 {
            r.segment(seq(1 + i * 200), &[b'x'; 100], 100, i, 0);
        }
        assert_eq!(r.pending_bytes(), bound);
        assert_eq!(r.limited(), 0);
        r.segment(seq(1000), b"y", 1, 9, 0);
        assert_eq!(r.limited(), 1);
        assert!(r.pending_bytes() <= bound);
    }

    #[test]
    fn a_segment_before_the_base_or_from_the_far_side_of_the_space_is_no_panic() {
        let mut r = StreamReassembler::default();
        r.start(1000);
        r.segment(900, b"old bytes", 9, 1, 0); // before offset 0: all of it old
        r.segment(995, b"0123456789", 10, 2, 0); // straddles offset 0
        r.segment(1001u32.wrapping_add(0x8000_0000), b"far", 3, 3, -5);
        r.acknowledged(1001u32.wrapping_add(0x7FFF_FFFF), 4, i128::MAX);
        r.fin(0);
        r.finish(5, i128::MIN);
        let chunks = r.take();
        contiguous(&chunks);
        assert_eq!(&bytes(&chunks)[..4], b"6789");
    }
}

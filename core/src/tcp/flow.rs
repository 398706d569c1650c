//! Everything one flow's segments update beyond the endpoint counters: the sequence
//! analysis, Zeek's state and history, the data awaiting acknowledgement and the zero
//! windows. One call per segment (`FlowAnalysis::segment`) does it all, so a flow table,
//! Python's or a Rust one, keeps one of these per flow.

use super::analysis::{Segment, SequenceAnalysis, ANY_RETRANSMISSION, REUSED_PORTS, ZERO_WINDOW};
use super::conn_state::ConnectionState;
use super::sent::{Acked, Sent};
use super::{TH_ACK, TH_RST, TH_SYN};

/// One direction's zero-window figures (made for a flow when a side first closes its
/// window: most flows never do).
#[derive(Clone, Copy, Debug, Default)]
pub struct ZeroWindow {
    /// When this side closed its receive window, while it stays closed.
    pub since: Option<i128>,
    /// Longest time this side kept its window closed (ended by a segment opening it).
    pub longest_ns: i128,
}

/// One segment with what the flow table knows of it beyond its header.
#[derive(Clone, Copy, Debug, Default)]
pub struct SegmentIn {
    pub segment: Segment,
    /// Index of the sending endpoint (0: the flow's first packet's sender).
    pub direction: usize,
    pub is_client: bool,
    pub ip_len: u64,
    /// A SYN reusing the 4-tuple with a new initial sequence number.
    pub reused: bool,
    /// The window scale of a SYN's options (None: absent, or no SYN).
    pub wscale: Option<u8>,
}

#[derive(Clone, Debug)]
pub struct FlowAnalysis {
    pub sequence: SequenceAnalysis,
    pub conn: ConnectionState,
    /// Per direction, made when that direction first sends data (what the peer
    /// acknowledged of it is there: nothing is before).
    sent: [Option<Box<Sent>>; 2],
    /// Per direction, made when a side first announces a zero window.
    zero: Option<Box<[ZeroWindow; 2]>>,
}

/// What a flow's end reads of one direction.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DirectionEnd {
    pub acked: Acked,
    pub longest_zero_window_ns: i128,
    /// IP lengths of the data segments never acknowledged.
    pub unacked_sizes: Vec<u64>,
}

impl FlowAnalysis {
    /// A flow whose client is endpoint 1 has `flipped` set (Zeek's '^').
    pub fn new(flipped: bool) -> Self {
        FlowAnalysis {
            sequence: SequenceAnalysis::default(),
            conn: ConnectionState::new(flipped),
            sent: [None, None],
            zero: None,
        }
    }

    /// A flow continuing the sequence analysis of an ended one (same 4-tuple and
    /// stream); state, history and the rest start anew.
    pub fn continuing(sequence: SequenceAnalysis, flipped: bool) -> Self {
        FlowAnalysis {
            sequence,
            ..FlowAnalysis::new(flipped)
        }
    }

    /// The analysis flags of one segment (with REUSED_PORTS when `reused`).
    pub fn segment(&mut self, s: &SegmentIn) -> u16 {
        let d = s.direction & 1;
        let seg = &s.segment;
        let flags = seg.flags;
        if flags & TH_SYN != 0 {
            self.sequence
                .set_window_scale(d, s.wscale, flags & TH_ACK != 0);
        }
        let mut analysis = self.sequence.analyze(d, seg);
        if s.reused {
            analysis |= REUSED_PORTS;
        }
        self.sequence.after_segment(seg.time_ns, flags);
        if analysis & ZERO_WINDOW != 0 {
            let zero = &mut self.zero.get_or_insert_with(Default::default)[d];
            if zero.since.is_none() {
                zero.since = Some(seg.time_ns);
            }
        } else if let Some(zero) = self.zero.as_deref_mut().map(|zero| &mut zero[d]) {
            if let Some(since) = zero.since {
                if seg.window != 0 && flags & TH_RST == 0 {
                    let ns = seg.time_ns - since;
                    if ns > zero.longest_ns {
                        zero.longest_ns = ns;
                    }
                    zero.since = None;
                }
            }
        }
        if seg.length != 0 {
            self.sent[d]
                .get_or_insert_with(Default::default)
                .sent(seg.seq, seg.length, s.ip_len, seg.frame);
        }
        if flags & TH_ACK != 0 {
            if let Some(peer) = self.sent[1 - d].as_mut() {
                peer.acknowledged(seg.ack);
            }
        }
        self.conn
            .segment(d, s.is_client, flags, seg.seq, seg.length);
        if analysis & ANY_RETRANSMISSION != 0 && seg.length != 0 {
            self.conn.record(b't', s.is_client, None);
        }
        if analysis & ZERO_WINDOW != 0 {
            self.conn.record(b'w', s.is_client, None);
        }
        analysis
    }

    /// A segment of a flow whose analysis stopped: only the initial sequence numbers
    /// (port reuse is told by them) are kept up to date.
    pub fn number_only(&mut self, direction: usize, seq: u32, ack: u32, flags: u16) {
        let dirs = &self.sequence.dirs;
        if !(dirs[0].base_set && dirs[1].base_set) {
            self.sequence.bases(direction, seq, ack, flags);
        }
    }

    /// The flow ended at `last_time_ns`: each direction's figures (a window still closed
    /// counts until then).
    pub fn end(&self, last_time_ns: i128) -> [DirectionEnd; 2] {
        std::array::from_fn(|d| {
            let zero = self.zero.as_deref().map(|zero| zero[d]).unwrap_or_default();
            let mut longest = zero.longest_ns;
            if let Some(since) = zero.since {
                longest = longest.max(last_time_ns - since);
            }
            let sent = self.sent[d].as_deref();
            DirectionEnd {
                acked: sent.map(|sent| sent.acked).unwrap_or_default(),
                longest_zero_window_ns: longest,
                unacked_sizes: sent.map(|sent| sent.unacked_sizes()).unwrap_or_default(),
            }
        })
    }

    /// Keep only what a later flow of the same 4-tuple continues: the sequence analysis,
    /// without its unacknowledged-segment lists.
    pub fn into_sequence(mut self) -> SequenceAnalysis {
        self.sequence.forget_unacked();
        self.sequence
    }
}

impl FlowAnalysis {
    /// An ended flow kept for its stream numbering: only the sequence analysis stays
    /// (without its unacknowledged-segment lists), for `continuing`.
    pub fn retire(&mut self) {
        self.sequence.forget_unacked();
        self.conn = ConnectionState::default();
        self.sent = [None, None];
        self.zero = None;
    }
}

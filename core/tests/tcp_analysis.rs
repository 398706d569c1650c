//! The per-segment TCP analysis (crate::tcp) on short conversations written segment by
//! segment: each Wireshark flag where packet-tcp.c sets it, and where it does not; Zeek's
//! state and history; the largest-acknowledged and zero-window figures.

use _core::tcp::analysis::*;
use _core::tcp::flow::{FlowAnalysis, SegmentIn};
use _core::tcp::{TH_ACK, TH_FIN, TH_RST, TH_SYN};

const C: usize = 0;
const S: usize = 1;
const MS: i128 = 1_000_000;
const PSH: u16 = 0x08;

/// A conversation: client ISN 1000, server ISN 5000, times in ms.
struct Talk {
    flow: FlowAnalysis,
    frame: u64,
}

impl Talk {
    fn new() -> Self {
        Talk {
            flow: FlowAnalysis::new(false),
            frame: 0,
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn send(
        &mut self,
        d: usize,
        ms: i128,
        seq: u32,
        ack: u32,
        len: u64,
        flags: u16,
        window: u16,
    ) -> u16 {
        self.frame += 1;
        self.flow.segment(&SegmentIn {
            segment: Segment {
                frame: self.frame,
                time_ns: ms * MS,
                seq,
                ack,
                length: len,
                flags,
                window,
            },
            direction: d,
            is_client: d == C,
            ip_len: len + 40,
            reused: false,
            wscale: None,
        })
    }

    /// The handshake (RTT 10 ms) then nothing: client next seq 1001, server 5001.
    fn established() -> Self {
        let mut t = Talk::new();
        assert_eq!(t.send(C, 0, 1000, 0, 0, TH_SYN, 64000), 0);
        assert_eq!(t.send(S, 5, 5000, 1001, 0, TH_SYN | TH_ACK, 64000), 0);
        assert_eq!(t.send(C, 10, 1001, 5001, 0, TH_ACK, 64000), 0);
        t
    }
}

const A: u16 = TH_ACK;
const PA: u16 = TH_ACK | PSH;

#[test]
fn an_in_order_exchange_carries_no_flag() {
    let mut t = Talk::established();
    assert_eq!(t.send(S, 20, 5001, 1001, 100, PA, 64000), 0);
    assert_eq!(t.send(C, 30, 1001, 5101, 50, PA, 64000), 0);
    assert_eq!(t.send(S, 40, 5101, 1051, 0, A, 64000), 0);
    assert_eq!(t.flow.conn.history, "ShAdDa"); // the server spoke first
    assert_eq!(t.flow.conn.conn_state(C), "S1");
}

#[test]
fn a_resent_segment_is_a_retransmission_and_late_it_is_not_out_of_order() {
    let mut t = Talk::established();
    t.send(C, 20, 1001, 5001, 100, PA, 64000);
    // 200 ms later, far beyond the 10 ms handshake RTT: a retransmission.
    assert_eq!(t.send(C, 220, 1001, 5001, 100, PA, 64000), RETRANSMISSION);
    assert_eq!(t.flow.conn.history, "ShADT");
}

#[test]
fn an_earlier_segment_within_the_rtt_is_out_of_order() {
    let mut t = Talk::established();
    t.send(C, 20, 1101, 5001, 100, PA, 64000); // 1001..1101 missing
                                               // (that one was a lost segment, tested below)
    assert_eq!(t.send(C, 21, 1001, 5001, 100, PA, 64000), OUT_OF_ORDER);
}

#[test]
fn a_segment_beyond_the_highest_byte_is_after_a_lost_one_and_its_ack_too() {
    let mut t = Talk::established();
    assert_eq!(t.send(C, 20, 1101, 5001, 100, PA, 64000), LOST_SEGMENT);
    // The server acknowledges bytes the capture never saw: once per stall.
    assert_eq!(t.send(S, 30, 5001, 1301, 0, A, 64000), ACK_LOST_SEGMENT);
    assert_eq!(t.send(S, 31, 5001, 1401, 0, A, 64000), 0);
    // A RST far beyond is no lost segment.
    assert_eq!(t.send(C, 40, 9000, 0, 0, TH_RST, 0) & LOST_SEGMENT, 0);
}

#[test]
fn duplicate_acks_then_a_fast_retransmission() {
    let mut t = Talk::established();
    t.send(C, 20, 1001, 5001, 100, PA, 64000);
    t.send(C, 21, 1101, 5001, 100, PA, 64000);
    t.send(C, 22, 1201, 5001, 100, PA, 64000);
    assert_eq!(t.send(S, 30, 5001, 1101, 0, A, 64000), 0);
    assert_eq!(t.send(S, 31, 5001, 1101, 0, A, 64000), DUPLICATE_ACK);
    assert_eq!(t.send(S, 32, 5001, 1101, 0, A, 64000), DUPLICATE_ACK);
    // Within 20 ms of the second duplicate ACK, at the ACKed position.
    assert_eq!(
        t.send(C, 40, 1101, 5001, 100, PA, 64000),
        FAST_RETRANSMISSION
    );
}

#[test]
fn a_duplicate_ack_needs_the_same_window_and_a_changed_window_is_an_update() {
    let mut t = Talk::established();
    assert_eq!(t.send(C, 20, 1001, 5001, 0, A, 64000), DUPLICATE_ACK);
    assert_eq!(t.send(C, 21, 1001, 5001, 0, A, 32000), WINDOW_UPDATE);
    // A SYN, FIN or RST is never a duplicate ACK.
    assert_eq!(
        t.send(C, 22, 1001, 5001, 0, A | TH_FIN, 32000) & DUPLICATE_ACK,
        0
    );
}

#[test]
fn data_already_acknowledged_is_a_spurious_retransmission() {
    let mut t = Talk::established();
    t.send(C, 20, 1001, 5001, 100, PA, 64000);
    t.send(S, 30, 5001, 1101, 0, A, 64000);
    assert_eq!(
        t.send(C, 40, 1001, 5001, 100, PA, 64000),
        SPURIOUS_RETRANSMISSION
    );
}

#[test]
fn keep_alive_and_its_ack() {
    let mut t = Talk::established();
    t.send(C, 20, 1001, 5001, 100, PA, 64000);
    t.send(S, 30, 5001, 1101, 0, A, 64000);
    // One byte before the next sequence number: a keep-alive (never a retransmission).
    assert_eq!(t.send(C, 60_000, 1100, 5001, 1, A, 64000), KEEP_ALIVE);
    assert_eq!(t.send(S, 60_001, 5001, 1101, 0, A, 64000), KEEP_ALIVE_ACK);
    assert_eq!(t.send(C, 120_000, 1100, 5001, 0, A, 64000), KEEP_ALIVE);
}

#[test]
fn zero_window_probe_and_probe_ack_and_the_window_closed_time() {
    let mut t = Talk::established();
    t.send(C, 20, 1001, 5001, 100, PA, 64000);
    assert_eq!(t.send(S, 30, 5001, 1101, 0, A, 0), ZERO_WINDOW);
    assert_eq!(t.send(C, 40, 1101, 5001, 1, PA, 64000), ZERO_WINDOW_PROBE);
    assert_eq!(
        t.send(S, 41, 5001, 1101, 0, A, 0),
        ZERO_WINDOW | ZERO_WINDOW_PROBE_ACK
    );
    assert_eq!(t.send(S, 530, 5001, 1101, 0, A, 8000), WINDOW_UPDATE);
    let ends = t.flow.end(1000 * MS);
    assert_eq!(ends[S].longest_zero_window_ns, 500 * MS);
    assert_eq!(ends[C].longest_zero_window_ns, 0);
    assert_eq!(t.flow.conn.history, "ShADaw");
}

#[test]
fn a_window_still_closed_at_the_end_counts_until_then() {
    let mut t = Talk::established();
    t.send(S, 30, 5001, 1001, 0, A, 0);
    assert_eq!(t.flow.end(2030 * MS)[S].longest_zero_window_ns, 2000 * MS);
}

#[test]
fn a_segment_filling_the_scaled_window_is_window_full() {
    let mut t = Talk::new();
    let scaled = |t: &mut Talk, d, ms, seq, ack, flags, wscale| {
        t.frame += 1;
        t.flow.segment(&SegmentIn {
            segment: Segment {
                frame: t.frame,
                time_ns: ms * MS,
                seq,
                ack,
                length: 0,
                flags,
                window: 100,
            },
            direction: d,
            is_client: d == C,
            ip_len: 40,
            reused: false,
            wscale,
        })
    };
    scaled(&mut t, C, 0, 1000, 0, TH_SYN, Some(2));
    scaled(&mut t, S, 5, 5000, 1001, TH_SYN | TH_ACK, Some(2));
    scaled(&mut t, C, 10, 1001, 5001, TH_ACK, None);
    // The client's window: 100 << 2 = 400 bytes from 5001.
    assert_eq!(t.send(S, 20, 5001, 1001, 300, PA, 100), 0);
    assert_eq!(t.send(S, 21, 5301, 1001, 100, PA, 100), WINDOW_FULL);
}

#[test]
fn without_window_scaling_on_both_sides_the_raw_window_counts() {
    let mut t = Talk::established(); // no wscale option: scaling off
    assert_eq!(t.send(C, 20, 1001, 5001, 64000, PA, 64000), WINDOW_FULL);
}

#[test]
fn the_largest_segment_acknowledged_counts_only_the_latest_transmission() {
    let mut t = Talk::established();
    t.send(C, 20, 1001, 5001, 1400, PA, 64000);
    t.send(C, 300, 1001, 5001, 500, PA, 64000); // resent smaller (MTU probing)
    t.send(S, 310, 5001, 1501, 0, A, 64000);
    let ends = t.flow.end(400 * MS);
    assert_eq!(ends[C].acked.max_segment, 500);
    assert_eq!(ends[C].acked.max_ip_len, 540);
    assert_eq!(ends[C].acked.last_frame, Some(5));
    assert_eq!(ends[C].unacked_sizes, Vec::<u64>::new());
    t.send(C, 320, 1501, 5001, 900, PA, 64000);
    assert_eq!(t.flow.end(400 * MS)[C].unacked_sizes, vec![940]);
}

#[test]
fn a_syn_with_another_isn_reuses_the_ports() {
    let t = Talk::established();
    assert!(!t.flow.sequence.reuses(C, 1000));
    assert!(t.flow.sequence.reuses(C, 77));
    // The server's initial sequence number is known from the first ACK of it.
    let mut late = Talk::new();
    late.send(C, 0, 1001, 5001, 0, A, 100);
    assert!(late.flow.sequence.reuses(S, 4999));
    assert!(!late.flow.sequence.reuses(S, 5000));
}

#[test]
fn a_continuing_flow_keeps_the_sequence_analysis_and_starts_its_history_anew() {
    let mut t = Talk::established();
    t.send(C, 20, 1001, 5001, 100, PA, 64000);
    t.send(C, 30, 1101, 5001, 0, TH_FIN | TH_ACK, 64000);
    t.flow.retire();
    let mut next = FlowAnalysis::continuing(t.flow.sequence.clone(), false);
    assert_eq!(next.conn.history, "");
    // The same FIN again: a retransmission of the old stream.
    let flags = next.segment(&SegmentIn {
        segment: Segment {
            frame: 9,
            time_ns: 5000 * MS,
            seq: 1101,
            ack: 5001,
            length: 0,
            flags: TH_FIN | TH_ACK,
            window: 64000,
        },
        direction: C,
        is_client: true,
        ip_len: 40,
        reused: false,
        wscale: None,
    });
    assert_eq!(flags, RETRANSMISSION);
    assert_eq!(next.conn.history, "F");
}

#[test]
fn a_packed_sequence_analysis_gives_the_same_state_back() {
    let mut t = Talk::established();
    t.send(C, 20, 1001, 5001, 100, PA, 64000);
    t.send(S, 25, 5001, 1101, 0, A, 0);
    t.send(S, 26, 5001, 1101, 0, A, 0);
    t.send(C, 30, 1101, 5001, 0, TH_FIN | TH_ACK, 64000);
    // Unacknowledged segments still listed: not packed (they would be lost).
    assert!(t.flow.sequence.pack().is_none());
    let full = t.flow.clone().into_sequence();
    let packed = full.pack().expect("fits");
    assert_eq!(format!("{:?}", packed.unpack()), format!("{full:?}"));
    assert_eq!(packed.unpack().pack(), Some(packed.clone()));
    assert_eq!(std::mem::size_of::<PackedSequence>(), 128);
    // A late segment is analysed alike on the packed and the full state.
    let late = |sequence: SequenceAnalysis| {
        let mut next = Talk {
            flow: FlowAnalysis::continuing(sequence, false),
            frame: 8,
        };
        next.send(C, 31, 1101, 5001, 0, TH_FIN | TH_ACK, 64000)
    };
    assert_eq!(late(packed.unpack()), RETRANSMISSION);
    assert_eq!(late(full), RETRANSMISSION);
    // A time beyond 64-bit nanoseconds: kept whole instead.
    let mut far = Talk::new();
    far.send(C, i128::from(i64::MAX), 1000, 0, 0, TH_SYN, 64000);
    assert!(far.flow.into_sequence().pack().is_none());
}

#[test]
fn sequence_numbers_wrap() {
    let mut t = Talk::new();
    t.send(C, 0, 0xFFFF_FF00, 0, 0, TH_SYN, 64000);
    t.send(S, 5, 5000, 0xFFFF_FF01, 0, TH_SYN | TH_ACK, 64000);
    t.send(C, 10, 0xFFFF_FF01, 5001, 0, A, 64000);
    assert_eq!(t.send(C, 20, 0xFFFF_FF01, 5001, 0x200, PA, 64000), 0);
    assert_eq!(t.send(C, 21, 0x101, 5001, 0x100, PA, 64000), 0);
    assert_eq!(t.send(S, 30, 5001, 0x201, 0, A, 64000), 0);
    let ends = t.flow.end(40 * MS);
    assert_eq!(ends[C].acked.max_segment, 0x200);
    assert_eq!(
        t.send(C, 300, 0x101, 5001, 0x100, PA, 64000),
        SPURIOUS_RETRANSMISSION
    );
}

#[test]
fn number_only_keeps_the_bases() {
    let mut flow = FlowAnalysis::new(true);
    flow.number_only(S, 5000, 1001, TH_SYN | TH_ACK);
    assert!(flow.sequence.reuses(S, 6000));
    assert!(flow.sequence.reuses(C, 2000));
    assert!(!flow.sequence.reuses(C, 1000));
    assert_eq!(flow.conn.history, "^");
}

#[test]
fn a_flow_analysis_stays_small() {
    // What a flow table holds per open flow before any data: issue 19 wants open flows cheap.
    let size = std::mem::size_of::<FlowAnalysis>();
    println!("FlowAnalysis: {size} bytes");
    assert!(size <= 512, "{size}");
}

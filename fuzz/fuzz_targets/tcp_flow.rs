//! Any sequence of segments through one flow's per-segment analysis (the sequence
//! analysis, Zeek's state and history, the acknowledgement and zero-window bookkeeping),
//! with handshake options parsed from the input, a retirement and a continuing flow in the
//! middle. Beyond "no panic, no hang", what must hold: the flags are Wireshark's known bits,
//! the history holds only Zeek's letters, the state is one of Zeek's, and what the end
//! reports was sent.
#![no_main]

use _core::tcp::analysis::Segment;
use _core::tcp::flow::{FlowAnalysis, SegmentIn};
use _core::tcp::options::parse_options;
use libfuzzer_sys::fuzz_target;

const KNOWN: u16 = 0x7FFF;
const STATES: [&str; 13] = [
    "S0", "S1", "SF", "REJ", "S2", "S3", "RSTO", "RSTR", "RSTOS0", "RSTRH", "SH", "SHR", "OTH",
];
const RECORD: usize = 24;

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fuzz_target!(|data: &[u8]| {
    let (head, records) = data.split_at(data.len().min(40));
    let options = parse_options(head);
    let mut flow = FlowAnalysis::new(head.first().is_some_and(|b| b & 1 == 1));
    let mut sent = [0u64; 2];
    let mut time: i128 = 0;
    for (i, r) in records.chunks_exact(RECORD).enumerate() {
        let direction = usize::from(r[0] & 1);
        // Times mostly rise, sometimes jump back (bogus timestamps exist) or far ahead.
        time += match r[1] >> 6 {
            0 => -i128::from(r[2]) * 1_000_000,
            3 => i128::from(u32_at(r, 2)) << 40,
            _ => i128::from(r[2]) * 100_000,
        };
        let length = if r[1] & 1 == 1 {
            u64::from(u32_at(r, 14))
        } else {
            u64::from(r[14])
        };
        let segment = SegmentIn {
            segment: Segment {
                frame: i as u64 + 1,
                time_ns: time,
                seq: u32_at(r, 6),
                ack: u32_at(r, 10),
                length,
                flags: u16::from(r[18]) | (u16::from(r[19] & 1) << 8),
                window: u16::from_be_bytes([r[20], r[21]]),
            },
            direction,
            is_client: r[0] & 2 == 2,
            ip_len: length + 40,
            reused: r[0] & 4 == 4,
            wscale: if r[0] & 8 == 8 {
                options.wscale.or(Some(r[22]))
            } else {
                None
            },
        };
        let flags = if r[0] & 16 == 16 {
            flow.number_only(
                direction,
                segment.segment.seq,
                segment.segment.ack,
                segment.segment.flags,
            );
            0
        } else {
            if length != 0 {
                sent[direction] += 1;
            }
            flow.segment(&segment)
        };
        assert_eq!(flags & !KNOWN, 0);
        let _ = flow.sequence.reuses(direction, segment.segment.seq);
        if r[23] == 0xA5 {
            // The flow ends and a later one of the same 4-tuple continues its analysis.
            flow.retire();
            flow = FlowAnalysis::continuing(flow.sequence.clone(), r[0] & 32 == 32);
            sent = [0, 0];
        }
        if r[23] == 0x5A {
            flow.conn
                .record(b"gtwx"[usize::from(r[22] & 3)], r[0] & 2 == 2, None);
        }
    }
    for client in 0..2 {
        assert!(STATES.contains(&flow.conn.conn_state(client)));
    }
    assert!(flow
        .conn
        .history
        .bytes()
        .all(|b| b"^adiqgtwshfrADIQGTWSHFR".contains(&b)));
    for (d, end) in flow.end(time).iter().enumerate() {
        assert!(end.unacked_sizes.len() as u64 <= sent[d]);
        assert!(end.longest_zero_window_ns >= 0);
    }
});

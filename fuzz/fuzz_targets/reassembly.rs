//! Segments, acknowledgements and FINs of one TCP direction in any order, any overlap and
//! any sequence numbers (the 32-bit wrap included) through the stream reassembler, with a
//! small out-of-order bound so the memcap fires often. Every copy of a byte is the same
//! (a function of its stream offset), so beyond "no panic, no hang": the chunks are
//! contiguous and in order from offset 0, each data chunk holds exactly the bytes of its
//! offsets, no retransmission is counted as different, and the bytes held never pass the
//! bound.
#![no_main]

use _core::reassembly::{Content, StreamReassembler, SEGMENT_OVERHEAD};
use libfuzzer_sys::fuzz_target;

fn byte_at(offset: i64, key: u8) -> u8 {
    (offset.wrapping_mul(31).wrapping_add(7) as u8) ^ key
}

struct Check {
    next: u64,
    key: u8,
}

impl Check {
    fn chunks(&mut self, r: &mut StreamReassembler) {
        for chunk in r.take() {
            assert_eq!(chunk.offset, self.next);
            assert!(chunk.length > 0);
            if let Content::Data(data) = &chunk.content {
                assert_eq!(data.len() as u64, chunk.length);
                for (i, b) in data.iter().enumerate() {
                    assert_eq!(*b, byte_at(chunk.offset as i64 + i as i64, self.key));
                }
            }
            self.next += chunk.length;
        }
        assert_eq!(r.expected(), self.next);
    }
}

fuzz_target!(|input: &[u8]| {
    let Some((head, mut ops)) = input.split_first_chunk::<6>() else {
        return;
    };
    let isn = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
    let bound = u64::from(head[4]) * 64 + SEGMENT_OVERHEAD;
    let mut check = Check {
        next: 0,
        key: head[5],
    };
    let mut r = StreamReassembler::new(bound);
    let mut frame = 0u64;
    while let Some((op, rest)) = ops.split_first_chunk::<4>() {
        ops = rest;
        frame += 1;
        let near = u32::from(u16::from_le_bytes([op[1], op[2]]));
        let seq = match op[0] & 0x0F {
            0 => {
                r.start(isn);
                continue;
            }
            // Anywhere in the sequence space, for the wrap and for segments far off.
            1 => isn.wrapping_add(near << 16),
            _ => isn.wrapping_add(1).wrapping_add(near % 4096),
        };
        match op[0] >> 4 {
            0..=9 => {
                let wire = u64::from(op[3]) * 4 + 1;
                // A snap length cuts some payloads.
                let captured = if op[0] & 0x10 != 0 { wire / 2 } else { wire };
                let at = r.offset(seq).unwrap_or(0);
                let data: Vec<u8> = (0..captured as i64)
                    .map(|i| byte_at(at + i, check.key))
                    .collect();
                r.segment(seq, &data, wire, frame, i128::from(frame));
            }
            10..=12 => r.acknowledged(seq, frame, 0),
            13 => r.fin(seq),
            14 => r.release(),
            _ => check.chunks(&mut r),
        }
        assert!(r.pending_bytes() <= bound);
        let held: u64 = r
            .pending()
            .values()
            .map(|h| h.data.len() as u64 + SEGMENT_OVERHEAD)
            .sum();
        assert_eq!(held, r.pending_bytes());
        assert!(r.pending().keys().all(|&k| k > r.expected() as i64));
    }
    check.chunks(&mut r);
    r.finish(frame + 1, 0);
    check.chunks(&mut r);
    assert!(r.pending().is_empty() && r.pending_bytes() == 0);
    assert_eq!(r.mismatches(), 0);
    assert!(r.limited_bytes() <= r.expected());
});

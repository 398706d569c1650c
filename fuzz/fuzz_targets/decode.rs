//! Any bytes through the packet decoder, as frames of any link type we read (and one we
//! do not): each frame is a link-type selector byte, a 16-bit length and that many bytes
//! (fewer at the end), its time a little later than the last one's, or much later, so
//! fragments also time out. Beyond "no panic, no hang, bounded memory", what must hold:
//! a packet belongs to the frame that gave it (or completed its datagram, naming that
//! frame among its fragments), no more frames count as IP than were given, and every
//! fragment set left incomplete is reported.
#![no_main]

use _core::decode::{incomplete_warning, Decoder, Packet};
use _core::reader::Frame;
use libfuzzer_sys::fuzz_target;

const LINK_TYPES: [i64; 12] = [0, 1, 12, 14, 101, 108, 113, 228, 229, 276, -1, 147];

fuzz_target!(|data: &[u8]| {
    let mut decoder = Decoder::new();
    let (mut at, mut number, mut time_ns) = (0usize, 0u64, 0i128);
    while at + 3 <= data.len() {
        let selector = data[at];
        let len = usize::from(u16::from_be_bytes([data[at + 1], data[at + 2]]));
        let end = (at + 3 + len).min(data.len());
        number += 1;
        time_ns += if selector & 0x80 != 0 {
            30_000_000_000
        } else {
            1_000
        };
        let frame = Frame {
            number,
            time_ns,
            linktype: LINK_TYPES[usize::from(selector & 0x7F) % LINK_TYPES.len()],
            data: data[at + 3..end].to_vec(),
            wire_len: len as u32,
            interface: 0,
        };
        at = end;
        match decoder.decode(&frame) {
            Some(Packet::Tcp(s)) => {
                assert_eq!(s.frame, number);
                assert!(s.fragment_frames.is_empty() || s.fragment_frames.contains(&number));
                assert!(s.payload.len() <= frame.data.len().max(65535 + 40));
            }
            Some(Packet::Icmp(e)) => assert_eq!(e.frame, number),
            Some(Packet::Dns(d)) => {
                assert_eq!(d.frame, number);
                assert!(d.payload.len() <= d.length);
            }
            None => {}
        }
    }
    assert!(decoder.ip_frames <= number);
    assert!(decoder.reassembled <= decoder.ip_frames);
    let lost = decoder.finish();
    assert_eq!(incomplete_warning(&lost).is_some(), !lost.is_empty());
});

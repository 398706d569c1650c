//! Any bytes through the capture reader, as the Python binding drives it: opening
//! (compression sniffed and undone, with the bomb limit), then every frame. Beyond "no
//! panic, no hang, bounded memory", what must hold: frame numbers run 1, 2, 3, ... and
//! reading ends with at most one warning; and the frames read in batches, each batch's
//! window handed on (`take_window`, where `record_in_hand` ends a batch, as the binding
//! reads), are the frames read one by one, with the same warnings.
#![no_main]

use std::io::Cursor;

use _core::input::{self, Limits};
use _core::reader::{Format, Reader, MAX_BLOCK_LEN};
use libfuzzer_sys::fuzz_target;

type Facts = (u64, i128, i64, Vec<u8>, u32, u32);

fn open(data: &[u8]) -> Option<Reader<input::Stream>> {
    let limits = Limits {
        min_inflated: 1 << 20,
        max_inflation: 100,
    };
    let opened = input::open(Box::new(Cursor::new(data.to_vec())), limits).ok()?;
    let format = Format::sniff(&opened.head)?;
    Some(Reader::new(opened.stream, format, opened.compression, 0))
}

fuzz_target!(|data: &[u8]| {
    let Some(mut reader) = open(data) else {
        return;
    };
    let mut one_by_one: Vec<Facts> = Vec::new();
    while let Some(frame) = reader.next_frame() {
        assert_eq!(frame.number, one_by_one.len() as u64 + 1);
        assert!(frame.data.len() <= MAX_BLOCK_LEN as usize);
        let f = frame;
        one_by_one.push((
            f.number,
            f.time_ns,
            f.linktype,
            f.data,
            f.wire_len,
            f.interface,
        ));
    }
    let warnings = reader.take_warnings();
    assert!(warnings.len() <= 1);

    let mut reader = open(data).expect("opened once already");
    let (mut batched, mut spare): (Vec<Facts>, Vec<u8>) = (Vec::new(), Vec::new());
    loop {
        let mut batch = Vec::new();
        reader.next_frames_at(&mut batch, usize::MAX, usize::MAX);
        if batch.is_empty() {
            break;
        }
        let window = reader.take_window(spare);
        for at in batch {
            let data = at.view(&window).data.to_vec();
            batched.push((
                at.number,
                at.time_ns,
                at.linktype,
                data,
                at.wire_len,
                at.interface,
            ));
        }
        spare = window;
    }
    assert!(batched == one_by_one);
    assert_eq!(reader.take_warnings(), warnings);
});

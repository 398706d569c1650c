//! Any bytes through the capture reader, as the Python binding drives it: opening
//! (compression sniffed and undone, with the bomb limit), then every frame. Beyond "no
//! panic, no hang, bounded memory", what must hold: frame numbers run 1, 2, 3, ... and
//! reading ends with at most one warning.
#![no_main]

use std::io::Cursor;

use _core::input::{self, Limits};
use _core::reader::{Format, Reader, MAX_BLOCK_LEN};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        min_inflated: 1 << 20,
        max_inflation: 100,
    };
    let Ok(opened) = input::open(Box::new(Cursor::new(data.to_vec())), limits) else {
        return;
    };
    let Some(format) = Format::sniff(&opened.head) else {
        return;
    };
    let mut reader = Reader::new(opened.stream, format, opened.compression, 0);
    let mut count = 0;
    while let Some(frame) = reader.next_frame() {
        count += 1;
        assert_eq!(frame.number, count);
        assert!(frame.data.len() <= MAX_BLOCK_LEN as usize);
    }
    assert!(reader.take_warnings().len() <= 1);
});

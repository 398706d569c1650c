//! Any bytes through the walk of an encrypted TLS direction (core/src/tls_records.rs), split
//! into chunks at places the input chooses, with or without a TLS 1.3 alert size to refuse.
//! Beyond "no panic, no hang": a refused chunk changes nothing; a header split across chunks
//! is never longer than a header; and the chunks it took, walked again as one chunk, are
//! taken and give the same counts and position (the split never changes what is counted).
#![no_main]

use _core::tls_records::{TlsRecordWalk, MAX_RECORD};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&[mode, alert], body)) = data.split_first_chunk::<2>() else {
        return;
    };
    let alert_size = (mode & 1 == 1).then_some(usize::from(alert) + 1);
    let spread = usize::from(mode >> 1) + 1;
    let mut walk = TlsRecordWalk {
        alert_size,
        ..TlsRecordWalk::default()
    };
    let mut taken = Vec::new();
    let mut pos = 0;
    while pos < body.len() {
        let size = 1 + usize::from(body[pos]) * spread % 700;
        let chunk = &body[pos..(pos + size).min(body.len())];
        pos += chunk.len();
        let before = walk.clone();
        if walk.take(chunk) {
            taken.extend_from_slice(chunk);
        } else {
            assert_eq!(walk, before, "a refused chunk changed the walk");
        }
        assert!(walk.head.len() < 5);
        assert!(walk.skip <= MAX_RECORD);
        assert!(walk.application_bytes <= walk.records * MAX_RECORD as u64);
    }
    let mut whole = TlsRecordWalk {
        alert_size,
        ..TlsRecordWalk::default()
    };
    assert!(
        whole.take(&taken),
        "what was taken in chunks is refused as one"
    );
    assert_eq!(whole, walk, "the split changed what was counted");
});

//! Any bytes through the SMTP framing as the dialogue drives it: split into segments at
//! places the input chooses, into the line framer (a small cap, so cutting is exercised),
//! the end-of-data finder and the message scanner (DATA and BDAT), whose header blocks a
//! naive describer reads (a `boundary=` opens a multipart, a `name=` makes an attachment).
//! Beyond "no panic, no hang, bounded memory", what must hold: lines are contiguous on the
//! stream and never longer than the cap, a line's reply parts (code, separator, text) are
//! the line less its line end, the marker ends inside its segment, the message
//! size never exceeds what was fed (plus the CRLF a DATA message gets), attachments stay
//! within their bound.
#![no_main]

use _core::message_scan::{Describe, Entity, LeafInfo, MessageScan, MAX_ATTACHMENTS};
use _core::smtp_framing::{reply_parts, strip_line_end, DataEnd, Framed, LineFramer};
use libfuzzer_sys::fuzz_target;

struct Naive;

fn param(block: &[u8], name: &[u8]) -> Option<Vec<u8>> {
    let at = block.windows(name.len()).position(|w| w == name)? + name.len();
    Some(
        block[at..]
            .iter()
            .copied()
            .take_while(|b| !b" ;\r\n\"".contains(b))
            .take(100)
            .collect(),
    )
}

impl Describe for Naive {
    fn describe(&mut self, block: &[u8], _top: bool, _nested: bool, digest: bool) -> Entity {
        let base64 = block.windows(6).any(|w| w == b"base64");
        Entity {
            boundary: param(block, b"boundary="),
            digest: !digest && block.windows(6).any(|w| w == b"digest"),
            attachment: param(block, b"name=").map(|name| LeafInfo {
                attachment: true,
                content_type: "application/octet-stream".into(),
                encoding: if base64 { "base64" } else { "7bit" }.into(),
                filename: Some(String::from_utf8_lossy(&name).into_owned()),
            }),
            anomalies: Vec::new(),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&control, data)) = data.split_first() else {
        return;
    };
    let Some((&step, data)) = data.split_first() else {
        return;
    };
    let max_line = usize::from(control % 64) + 1;
    let step = usize::from(step) + 1;
    let segments: Vec<&[u8]> = data.chunks(step).collect();

    let mut framer = LineFramer::new(max_line);
    let mut offset = 0u64;
    let mut next_line = None;
    for (frame, segment) in segments.iter().enumerate() {
        for item in framer.feed(segment, 0, offset, frame as u64) {
            if let Framed::Line {
                raw,
                offset: at,
                length,
                end,
                ..
            } = item
            {
                assert!(raw.len() <= max_line);
                assert!(end <= segment.len());
                // The line as a reply line: its end stripped, code, separator and text.
                let line = strip_line_end(&raw);
                assert!(raw.starts_with(line));
                assert!(!matches!(line.last(), Some(b'\r' | b'\n')));
                assert!(raw[line.len()..].iter().all(|b| b"\r\n".contains(b)));
                if let Some((code, separator, text)) = reply_parts(line) {
                    assert!(code <= 999 && line.ends_with(text));
                    let skipped = usize::from(separator != 0);
                    assert_eq!(3 + skipped + text.len(), line.len());
                    assert!(b" -\t\0".contains(&separator));
                }
                if let Some(expected) = next_line {
                    assert_eq!(at, expected);
                }
                next_line = Some(at + length);
            }
        }
        assert!(framer.partial().len() <= max_line);
        offset += segment.len() as u64;
    }

    let dot_stuffed = control & 0x80 == 0;
    let mut end = DataEnd::new();
    let mut scan = MessageScan::new(dot_stuffed);
    let mut fed = 0u64;
    for segment in &segments {
        if !dot_stuffed {
            fed += segment.len() as u64;
            scan.feed(segment, &mut Naive);
            continue;
        }
        let found = end.find(segment);
        assert!(found.released.len() <= 2 && found.body <= segment.len());
        fed += (found.released.len() + found.body) as u64;
        scan.feed(&found.released, &mut Naive);
        scan.feed(&segment[..found.body], &mut Naive);
        if let Some(marker_end) = found.marker_end {
            assert!(found.body <= marker_end && marker_end <= segment.len());
            break;
        }
    }
    let held = end.take_held();
    fed += held.len() as u64;
    scan.feed(&held, &mut Naive);
    let facts = scan.finish(&mut Naive);
    assert!(facts.size <= fed + 2);
    assert!(facts.attachments.len() <= MAX_ATTACHMENTS);
    assert!(facts.bare_lf <= fed);
});

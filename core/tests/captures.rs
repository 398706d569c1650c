//! The reader on the lab's real captures (captures/ at the top of the repository): each
//! one read plain, rewritten big-endian, as nanosecond pcap, as pcapng, and compressed
//! three ways gives the same frames; damage gives the frames before it and one warning.

use std::fs;
use std::io::{Cursor, Read, Write};
use std::path::PathBuf;

use _core::input::{self, Limits};
use _core::reader::{Format, Frame, Reader};

fn lab_captures() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../captures");
    let mut found: Vec<PathBuf> = fs::read_dir(&dir)
        .expect("captures/ next to core/")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "pcap"))
        .collect();
    found.sort();
    assert!(
        found.len() > 20,
        "the lab captures are committed: {}",
        found.len()
    );
    found
}

/// Frames and warnings of a whole input, through the same path as the Python binding.
fn read(data: Vec<u8>, limits: Limits) -> (Option<&'static str>, Vec<Frame>, Vec<String>) {
    let opened = input::open(Box::new(Cursor::new(data)), limits).expect("opens");
    let format = Format::sniff(&opened.head).expect("a capture");
    let mut reader = Reader::new(opened.stream, format, opened.compression, 0);
    let mut frames = Vec::new();
    while let Some(frame) = reader.next_frame() {
        frames.push(frame);
    }
    (opened.compression, frames, reader.take_warnings())
}

fn read_plain(data: Vec<u8>) -> (Vec<Frame>, Vec<String>) {
    let (_, frames, warnings) = read(data, Limits::default());
    (frames, warnings)
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

/// (sec, usec, captured bytes, wire length) of a pcap record.
type Record = (u32, u32, Vec<u8>, u32);

/// (link type, records) of a little-endian µs pcap.
fn pcap_records(data: &[u8]) -> (u32, Vec<Record>) {
    assert_eq!(
        data[..4],
        [0xd4, 0xc3, 0xb2, 0xa1],
        "the lab writes little-endian µs pcap"
    );
    let mut records = Vec::new();
    let mut at = 24;
    while at + 16 <= data.len() {
        let caplen = le32(data, at + 8) as usize;
        let body = data[at + 16..at + 16 + caplen].to_vec();
        records.push((
            le32(data, at),
            le32(data, at + 4),
            body,
            le32(data, at + 12),
        ));
        at += 16 + caplen;
    }
    (le32(data, 20), records)
}

fn big_endian_ns(data: &[u8]) -> Vec<u8> {
    let (linktype, records) = pcap_records(data);
    let mut out = vec![0xa1, 0xb2, 0x3c, 0x4d, 0, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0];
    out.extend(le32(data, 16).to_be_bytes());
    out.extend(linktype.to_be_bytes());
    for (sec, usec, body, wire) in records {
        for v in [sec, usec * 1000, body.len() as u32, wire] {
            out.extend(v.to_be_bytes());
        }
        out.extend(body);
    }
    out
}

fn block(out: &mut Vec<u8>, btype: u32, body: &[u8]) {
    let padded = body.len().div_ceil(4) * 4;
    let len = (12 + padded) as u32;
    out.extend(btype.to_le_bytes());
    out.extend(len.to_le_bytes());
    out.extend(body);
    out.extend(vec![0; padded - body.len()]);
    out.extend(len.to_le_bytes());
}

/// The capture as pcapng: a dummy interface first, the real one second with if_tsresol
/// 2^-20 s and if_tsoffset 10 s, so indexes, binary resolutions and offsets all count.
fn pcapng(data: &[u8]) -> Vec<u8> {
    let (linktype, records) = pcap_records(data);
    let mut out = Vec::new();
    let mut shb = 0x1A2B_3C4Du32.to_le_bytes().to_vec();
    shb.extend([1, 0, 0, 0]);
    shb.extend((-1i64).to_le_bytes());
    block(&mut out, 0x0A0D_0D0A, &shb);
    block(&mut out, 1, &[101, 0, 0, 0, 0, 0, 0, 0]);
    let mut idb = (linktype as u16).to_le_bytes().to_vec();
    idb.extend([0, 0, 0, 0, 0, 0]);
    idb.extend([9, 0, 1, 0, 0x80 | 20, 0, 0, 0]);
    idb.extend([14, 0, 8, 0]);
    idb.extend((-10i64).to_le_bytes());
    idb.extend([0, 0, 0, 0]);
    block(&mut out, 1, &idb);
    for (sec, usec, body, wire) in records {
        // Units of 2^-20 s, less the offset the interface adds back.
        let units = ((u64::from(sec) + 10) << 20) + (u64::from(usec) << 20) / 1_000_000;
        let mut epb = 1u32.to_le_bytes().to_vec();
        epb.extend(((units >> 32) as u32).to_le_bytes());
        epb.extend((units as u32).to_le_bytes());
        epb.extend((body.len() as u32).to_le_bytes());
        epb.extend(wire.to_le_bytes());
        epb.extend(&body);
        block(&mut out, 6, &epb);
    }
    out
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn bzip2(data: &[u8]) -> Vec<u8> {
    let mut e = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn xz(data: &[u8]) -> Vec<u8> {
    let mut e = xz2::write::XzEncoder::new(Vec::new(), 1);
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// (number, time, link type, bytes, wire length) for comparing readings.
fn facts(frames: &[Frame]) -> Vec<(u64, i128, i64, &[u8], u32)> {
    frames
        .iter()
        .map(|f| (f.number, f.time_ns, f.linktype, &f.data[..], f.wire_len))
        .collect()
}

#[test]
fn every_lab_capture_reads_the_same_in_every_format_and_compression() {
    for path in lab_captures() {
        let data = fs::read(&path).unwrap();
        let (records_linktype, records) = pcap_records(&data);
        let (frames, warnings) = read_plain(data.clone());
        assert!(warnings.is_empty(), "{path:?}: {warnings:?}");
        assert_eq!(frames.len(), records.len(), "{path:?}");
        for (frame, (sec, usec, body, wire)) in frames.iter().zip(&records) {
            assert_eq!(
                frame.time_ns,
                i128::from(*sec) * 1_000_000_000 + i128::from(*usec) * 1000
            );
            assert_eq!((&frame.data, frame.wire_len), (body, *wire));
            assert_eq!(frame.linktype, i64::from(records_linktype));
        }
        assert_eq!(
            facts(&read_plain(big_endian_ns(&data)).0),
            facts(&frames),
            "{path:?}"
        );
        let (ng, ng_warnings) = read_plain(pcapng(&data));
        assert!(ng_warnings.is_empty(), "{path:?}: {ng_warnings:?}");
        for (a, b) in ng.iter().zip(&frames) {
            // 2^-20 s units: within a microsecond of the pcap's time.
            assert!(
                (a.time_ns - b.time_ns).abs() < 1000,
                "{path:?}: {} {}",
                a.time_ns,
                b.time_ns
            );
            assert_eq!(
                (a.number, &a.data, a.wire_len, a.interface),
                (b.number, &b.data, b.wire_len, 1)
            );
        }
        assert_eq!(ng.len(), frames.len());
        for (name, packed) in [
            ("gzip", gzip(&data)),
            ("bzip2", bzip2(&data)),
            ("xz", xz(&data)),
        ] {
            let (compression, unpacked, warnings) = read(packed, Limits::default());
            assert_eq!(compression, Some(name));
            assert!(warnings.is_empty(), "{path:?} {name}: {warnings:?}");
            assert_eq!(facts(&unpacked), facts(&frames), "{path:?} {name}");
        }
    }
}

#[test]
fn a_cut_capture_gives_the_frames_before_the_cut_and_one_warning() {
    for path in lab_captures().iter().take(8) {
        let data = fs::read(path).unwrap();
        let (frames, _) = read_plain(data.clone());
        let cut = data.len() - 3;
        let (before, warnings) = read_plain(data[..cut].to_vec());
        assert_eq!(
            facts(&before),
            facts(&frames[..frames.len() - 1]),
            "{path:?}"
        );
        assert_eq!(warnings.len(), 1);
        assert!(
            warnings[0].contains(&format!("cut short inside record {}", frames.len())),
            "{warnings:?}"
        );

        let ng = pcapng(&data);
        let (ng_before, warnings) = read_plain(ng[..ng.len() - 3].to_vec());
        assert_eq!(ng_before.len(), frames.len() - 1);
        assert_eq!(warnings.len(), 1);
        assert!(
            warnings[0].contains("cut short inside a block"),
            "{warnings:?}"
        );

        // A compressed stream cut short: the frames its intact part holds, one warning.
        let packed = gzip(&data);
        let (_, cut_frames, warnings) =
            read(packed[..packed.len() * 2 / 3].to_vec(), Limits::default());
        assert!(cut_frames.len() < frames.len());
        assert_eq!(facts(&cut_frames), facts(&frames[..cut_frames.len()]));
        assert_eq!(warnings.len(), 1);
        assert!(
            warnings[0].starts_with("the gzip stream is damaged after frame"),
            "{warnings:?}"
        );
    }
}

#[test]
fn a_record_beyond_the_bound_stops_the_reading() {
    let path = &lab_captures()[0];
    let mut data = fs::read(path).unwrap();
    let second = 24 + 16 + le32(&data, 24 + 8) as usize;
    data[second + 8..second + 12].copy_from_slice(&0x7FFF_FFFFu32.to_le_bytes());
    let (frames, warnings) = read_plain(data);
    assert_eq!(frames.len(), 1);
    assert_eq!(
        warnings,
        ["record 2 claims 2147483647 captured bytes (more than 262144): the file is damaged from \
          there on; stopped reading after 1 frames"]
    );
}

#[test]
fn a_decompression_bomb_stops_with_a_warning() {
    let path = &lab_captures()[0];
    let mut data = fs::read(path).unwrap();
    let (frames, _) = read_plain(data.clone());
    data.extend(vec![0; 8 << 20]); // a record of zeros claims 0 bytes: endless empty frames
    let limits = Limits {
        min_inflated: 1 << 20,
        max_inflation: 100,
    };
    let (_, read_frames, warnings) = read(gzip(&data), limits);
    assert!(read_frames.len() > frames.len());
    assert_eq!(facts(&read_frames[..frames.len()]), facts(&frames));
    assert_eq!(warnings.len(), 1);
    assert!(
        warnings[0].contains("a decompression bomb, or not a capture"),
        "{warnings:?}"
    );
}

#[test]
fn input_that_is_no_capture_is_not_sniffed_as_one() {
    let opened = input::open(
        Box::new(Cursor::new(gzip(b"HELO mail.example.org\r\n"))),
        Limits::default(),
    )
    .unwrap();
    assert_eq!(opened.head, b"HELO mai");
    assert_eq!(Format::sniff(&opened.head), None);
    let mut broken = vec![0x1f, 0x8b, 8, 0];
    broken.extend(0..60u8);
    let error = input::open(Box::new(Cursor::new(broken)), Limits::default())
        .err()
        .expect("cannot decompress");
    assert!(!input::describe(&error).is_empty());
    let mut rest = Vec::new();
    let opened = input::open(Box::new(Cursor::new(b"".to_vec())), Limits::default()).unwrap();
    opened.stream.take(10).read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty());
}

/// A pipe's deliveries: each read returns at most what is left of the piece at hand, as a
/// pipe returns what the writer has written so far.
struct Pieces(std::collections::VecDeque<Vec<u8>>);

impl Read for Pieces {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let Some(piece) = self.0.front_mut() else {
            return Ok(0);
        };
        let n = piece.len().min(buf.len());
        buf[..n].copy_from_slice(&piece[..n]);
        piece.drain(..n);
        if piece.is_empty() {
            self.0.pop_front();
        }
        Ok(n)
    }
}

#[test]
fn the_reader_tells_when_the_bytes_that_arrived_are_used_up() {
    // greylisting.pcap arriving in three pieces: the file header, record 1 and half of
    // record 2; the rest of record 2 and record 3; the rest. A record cut between two
    // pieces is read whole; after record 3 nothing is in hand, which is where the Python
    // binding ends a batch rather than wait for the source (analyze --follow).
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../captures/greylisting.pcap");
    let data = fs::read(path).expect("the lab capture");
    let mut ends = vec![24];
    while *ends.last().unwrap() < data.len() {
        let at = *ends.last().unwrap();
        ends.push(at + 16 + le32(&data, at + 8) as usize);
    }
    let half = (ends[1] + ends[2]) / 2;
    let pieces = [&data[..half], &data[half..ends[3]], &data[ends[3]..]];
    let source = Pieces(pieces.iter().map(|p| p.to_vec()).collect());
    let opened = input::open(Box::new(source), Limits::default()).expect("opens");
    let format = Format::sniff(&opened.head).expect("a capture");
    let stream = std::io::BufReader::with_capacity(input::CHUNK, opened.stream);
    let mut reader = Reader::new(stream, format, None, 0);
    let mut in_hand = Vec::new();
    let mut frames = Vec::new();
    while let Some(frame) = reader.next_frame() {
        frames.push(frame);
        in_hand.push(reader.has_buffered());
    }
    let records = ends.len() - 1;
    let mut expected = vec![true; records];
    expected[2] = false;
    expected[records - 1] = false;
    assert_eq!(in_hand, expected);
    assert_eq!(facts(&frames), facts(&read_plain(data.clone()).0));
    assert!(reader.take_warnings().is_empty());
}

/// A source whose reads return at most `step` bytes: records cut anywhere by the reads.
struct Trickle {
    data: Cursor<Vec<u8>>,
    step: usize,
}

impl Read for Trickle {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min(self.step);
        self.data.read(&mut buf[..n])
    }
}

/// Frames read as the Python binding reads them: in batches that end where the next
/// record is not all in hand, each batch's window handed on (`take_window`) and read
/// again into the one handed on before.
fn read_batched(data: Vec<u8>, step: usize) -> (Vec<Frame>, Vec<String>, usize) {
    let source = Trickle {
        data: Cursor::new(data),
        step,
    };
    let opened = input::open(Box::new(source), Limits::default()).expect("opens");
    let format = Format::sniff(&opened.head).expect("a capture");
    let mut reader = Reader::new(opened.stream, format, None, 0);
    let (mut frames, mut batches, mut spare) = (Vec::new(), 0, vec![0xAA; 10]);
    loop {
        let mut batch = Vec::new();
        reader.next_frames_at(&mut batch, usize::MAX, usize::MAX);
        if batch.is_empty() {
            break;
        }
        batches += 1;
        let window = reader.take_window(spare);
        for at in batch {
            let view = at.view(&window);
            frames.push(Frame {
                number: at.number,
                time_ns: at.time_ns,
                linktype: at.linktype,
                data: view.data.to_vec(),
                wire_len: at.wire_len,
                interface: at.interface,
            });
        }
        spare = window;
    }
    (frames, reader.take_warnings(), batches)
}

#[test]
fn frames_handed_on_in_windows_are_the_frames_read_one_by_one() {
    for (i, path) in lab_captures().into_iter().enumerate() {
        let data = fs::read(&path).unwrap();
        // Reads of a few bytes on two captures (slow in a debug build), of a frame's size
        // and a chunk's on all.
        let steps: &[usize] = if i < 2 {
            &[1, 7, 100, 1 << 20]
        } else {
            &[1500, 1 << 20]
        };
        for variant in [data.clone(), pcapng(&data)] {
            let (expected, warnings) = read_plain(variant.clone());
            for &step in steps {
                let (frames, got_warnings, batches) = read_batched(variant.clone(), step);
                let (got, want) = (facts(&frames), facts(&expected));
                let first = got.iter().zip(&want).position(|(a, b)| a != b);
                assert!(
                    first.is_none() && got.len() == want.len(),
                    "{path:?} step {step}: {} frames, {} expected, first differing {first:?}: {:?} {:?}",
                    got.len(),
                    want.len(),
                    first.map(|i| (got[i].0, got[i].1, got[i].2, got[i].3.len(), got[i].4)),
                    first.map(|i| (want[i].0, want[i].1, want[i].2, want[i].3.len(), want[i].4)),
                );
                assert_eq!(got_warnings, warnings, "{path:?} step {step}");
                assert!(batches >= 1);
            }
        }
        // Cut inside the last record: the same frames before the cut, one warning.
        let cut = data[..data.len() - 3].to_vec();
        let (expected, warnings) = read_plain(cut.clone());
        let (frames, got_warnings, _) = read_batched(cut, 100);
        assert!(facts(&frames) == facts(&expected), "{path:?} cut");
        assert_eq!(got_warnings, warnings, "{path:?} cut");
        assert_eq!(got_warnings.len(), 1, "{path:?} cut");
    }
}

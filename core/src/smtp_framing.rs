//! SMTP framing, the part of the dialogue that looks at every byte: command and reply
//! lines split out of a direction's bytes (a line held across segments, capped, never
//! grown past the cap), and the end of a DATA message (CRLF.CRLF, also when it arrives
//! split across segments).
//!
//! A line's bytes are read here too: its line end stripped, a reply line split into code,
//! separator and text ([`strip_line_end`], [`reply_parts`]). What the lines mean
//! (commands, replies, the state that decides whether the next bytes are lines, a message
//! or TLS) stays with the dialogue in Python
//! (`pcapsmtp/smtp/dialogue.py`): it feeds a segment, reads the lines in order and, when
//! one of them changes the state, clears the framer and goes on from that line's end.
//! Nothing here panics on any input: the fuzz target `smtp_framer` feeds it arbitrary
//! bytes in arbitrary splits.

use memchr::memmem;

/// What a framer found in a segment, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Framed {
    /// A complete line: its bytes (at most the cap, the line end included when it fit),
    /// the frame and stream offset where it began, its length on the wire (line end
    /// included, also the bytes past the cap) and the index in the segment just after it.
    Line {
        raw: Vec<u8>,
        first_frame: u64,
        offset: u64,
        length: u64,
        end: usize,
    },
    /// The line being read passed the cap in this segment: its further bytes are skipped,
    /// never held (said once per line).
    TooLong,
}

/// Splits one direction's bytes into lines ending in LF, holding the partial last line.
#[derive(Debug, Clone)]
pub struct LineFramer {
    max_line: usize,
    buffer: Vec<u8>,
    first_frame: u64,
    offset: u64,
    cut: bool,
}

impl LineFramer {
    pub fn new(max_line: usize) -> Self {
        LineFramer {
            max_line,
            buffer: Vec::new(),
            first_frame: 0,
            offset: 0,
            cut: false,
        }
    }

    /// The lines of `data[pos..]`, whose first byte is at stream offset `offset + pos`,
    /// in `frame`; the bytes after the last LF are held for the next call.
    pub fn feed(&mut self, data: &[u8], pos: usize, offset: u64, frame: u64) -> Vec<Framed> {
        let mut out = Vec::new();
        let mut pos = pos.min(data.len());
        while pos < data.len() {
            if self.buffer.is_empty() && !self.cut {
                self.first_frame = frame;
                self.offset = offset.saturating_add(pos as u64);
            }
            let Some(nl) = memchr::memchr(b'\n', &data[pos..]) else {
                self.append(&data[pos..], &mut out);
                break;
            };
            let end = pos + nl + 1;
            self.append(&data[pos..end], &mut out);
            let length = offset
                .saturating_add(end as u64)
                .saturating_sub(self.offset);
            out.push(Framed::Line {
                raw: std::mem::take(&mut self.buffer),
                first_frame: self.first_frame,
                offset: self.offset,
                length,
                end,
            });
            self.cut = false;
            pos = end;
        }
        out
    }

    fn append(&mut self, chunk: &[u8], out: &mut Vec<Framed>) {
        let room = self.max_line.saturating_sub(self.buffer.len());
        let mut chunk = chunk;
        if chunk.len() > room {
            if !self.cut {
                out.push(Framed::TooLong);
                self.cut = true;
            }
            chunk = &chunk[..room];
        }
        self.buffer.extend_from_slice(chunk);
    }

    /// Forget the partial line (a gap, or the bytes after it are no longer lines).
    pub fn clear(&mut self) {
        self.buffer.clear();
        self.cut = false;
    }

    /// The partial line held (at most the cap).
    pub fn partial(&self) -> &[u8] {
        &self.buffer
    }

    /// Frame and stream offset where the partial line began.
    pub fn start(&self) -> (u64, u64) {
        (self.first_frame, self.offset)
    }
}

/// A line without its line end: every CR and LF at its end dropped (as Python's
/// `rstrip(b"\r\n")`, so "250 ok\r\r\n" is "250 ok").
pub fn strip_line_end(raw: &[u8]) -> &[u8] {
    let keep = raw
        .iter()
        .rposition(|&b| b != b'\r' && b != b'\n')
        .map_or(0, |at| at + 1);
    &raw[..keep]
}

/// A reply line read as `(\d{3})([ \t-]?)(.*)` (the line end stripped, [`strip_line_end`]):
/// its code, its separator (`b' '`, `b'-'`, `b'\t'`, or 0 when the text follows the code
/// at once) and its text; None when it does not start with three ASCII digits.
pub fn reply_parts(line: &[u8]) -> Option<(u16, u8, &[u8])> {
    let digits = line.get(..3)?;
    if !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let code = digits
        .iter()
        .fold(0u16, |code, &d| code * 10 + u16::from(d - b'0'));
    match line.get(3) {
        Some(&sep @ (b' ' | b'-' | b'\t')) => Some((code, sep, &line[4..])),
        _ => Some((code, 0, &line[3..])),
    }
}

/// The end of a DATA message: CRLF "." CRLF (RFC 5321 4.1.1.4), found across segments.
pub const END_MARKER: &[u8] = b"\r\n.\r\n";

/// Where a segment of a DATA message ends, as [`DataEnd::find`] says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// Bytes held back from earlier segments that turned out to be message: fed first.
    pub released: Vec<u8>,
    /// Bytes of this segment that are message (from its start).
    pub body: usize,
    /// Where the end-of-data marker ends in this segment, when it does.
    pub marker_end: Option<usize>,
}

/// Finds the end-of-data marker in a message's bytes as they arrive. A "." or ".CR" after
/// a line end at the end of a segment may be the marker's start: it is held back until the
/// next segment tells (so the message never gets the marker's bytes), and handed back by
/// [`DataEnd::take_held`] when the message ends otherwise.
#[derive(Debug, Clone)]
pub struct DataEnd {
    /// The last bytes seen (at most four): the start of a marker split across segments.
    tail: [u8; 4],
    tail_len: usize,
    held: [u8; 2],
    held_len: usize,
}

impl Default for DataEnd {
    fn default() -> Self {
        Self::new()
    }
}

impl DataEnd {
    /// At the start of a message the CRLF before it counts: "." CRLF at once ends it.
    pub fn new() -> Self {
        DataEnd {
            tail: [b'\r', b'\n', 0, 0],
            tail_len: 2,
            held: [0; 2],
            held_len: 0,
        }
    }

    /// Bytes the capture lacks: a marker cannot span them. Returns the bytes held back,
    /// which are message.
    pub fn gap(&mut self) -> Vec<u8> {
        self.tail_len = 0;
        self.take_held()
    }

    /// The bytes held back (message bytes, once the message ends without its marker).
    pub fn take_held(&mut self) -> Vec<u8> {
        let held = self.held[..self.held_len].to_vec();
        self.held_len = 0;
        held
    }

    /// Reads `data`; the caller feeds [`Found::released`], then `data[..body]`.
    pub fn find(&mut self, data: &[u8]) -> Found {
        let tail_len = self.tail_len;
        let mut head = [0u8; 8];
        head[..tail_len].copy_from_slice(&self.tail[..tail_len]);
        let lead = data.len().min(4);
        head[tail_len..tail_len + lead].copy_from_slice(&data[..lead]);
        let found = memmem::find(&head[..tail_len + lead], END_MARKER)
            .or_else(|| memmem::find(data, END_MARKER).map(|at| at + tail_len));
        if let Some(at) = found {
            // Held bytes sit at the tail's end: a marker starting in the tail holds them.
            let released = if at >= tail_len {
                self.take_held()
            } else {
                self.held_len = 0;
                Vec::new()
            };
            let marker_end = (at + END_MARKER.len())
                .saturating_sub(tail_len)
                .min(data.len());
            let body = (at + 2).saturating_sub(tail_len).min(marker_end);
            return Found {
                released,
                body,
                marker_end: Some(marker_end),
            };
        }
        let mut window = [0u8; 8];
        let take = data.len().min(4);
        window[..tail_len].copy_from_slice(&self.tail[..tail_len]);
        window[tail_len..tail_len + take].copy_from_slice(&data[data.len() - take..]);
        let total = tail_len + take;
        let hold = if window[..total].ends_with(b"\r\n.\r") {
            2
        } else if window[..total].ends_with(b"\r\n.") {
            1
        } else {
            0
        };
        let hold = hold.min(self.held_len + data.len());
        let keep = total.min(4);
        self.tail[..keep].copy_from_slice(&window[total - keep..total]);
        self.tail_len = keep;
        // Of the held bytes and this segment, all but the last `hold` are message.
        let old_len = self.held_len;
        let from_old = hold.saturating_sub(data.len()).min(old_len);
        let released = self.held[..old_len - from_old].to_vec();
        let mut held = [0u8; 2];
        held[..from_old].copy_from_slice(&self.held[old_len - from_old..old_len]);
        let from_data = hold - from_old;
        held[from_old..hold].copy_from_slice(&data[data.len() - from_data..]);
        self.held = held;
        self.held_len = hold;
        let body = data.len().saturating_sub(hold);
        Found {
            released,
            body,
            marker_end: None,
        }
    }
}

/// How many of a BDAT chunk's remaining bytes `available` bytes hold.
pub fn bdat_take(remaining: u64, available: usize) -> usize {
    remaining.min(available as u64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(framed: &[Framed]) -> Vec<(Vec<u8>, u64, u64, u64, usize)> {
        framed
            .iter()
            .filter_map(|f| match f {
                Framed::Line {
                    raw,
                    first_frame,
                    offset,
                    length,
                    end,
                } => Some((raw.clone(), *first_frame, *offset, *length, *end)),
                Framed::TooLong => None,
            })
            .collect()
    }

    #[test]
    fn lines_split_and_held_across_segments() {
        let mut framer = LineFramer::new(4096);
        let got = framer.feed(b"EHLO a\r\nMAIL FR", 0, 100, 7);
        assert_eq!(lines(&got), vec![(b"EHLO a\r\n".to_vec(), 7, 100, 8, 8)]);
        assert_eq!(framer.partial(), b"MAIL FR");
        assert_eq!(framer.start(), (7, 108));
        let got = framer.feed(b"OM:<a@b>\r\nRCPT", 0, 115, 9);
        assert_eq!(
            lines(&got),
            vec![(b"MAIL FROM:<a@b>\r\n".to_vec(), 7, 108, 17, 10)]
        );
        assert_eq!(framer.start(), (9, 125));
    }

    #[test]
    fn feeding_starts_at_pos() {
        let mut framer = LineFramer::new(4096);
        let got = framer.feed(b"xxQUIT\n", 2, 0, 1);
        assert_eq!(lines(&got), vec![(b"QUIT\n".to_vec(), 1, 2, 5, 7)]);
        assert!(framer.feed(b"abc", 3, 0, 1).is_empty());
        assert!(framer.feed(b"abc", 9, 0, 1).is_empty());
    }

    #[test]
    fn a_long_line_is_cut_once_and_never_held_whole() {
        let mut framer = LineFramer::new(10);
        let got = framer.feed(&[b'a'; 25], 0, 0, 1);
        assert_eq!(got, vec![Framed::TooLong]);
        assert_eq!(framer.partial().len(), 10);
        let got = framer.feed(&[b'b'; 1000], 0, 25, 2);
        assert!(got.is_empty(), "said once per line");
        assert_eq!(framer.partial().len(), 10);
        let got = framer.feed(b"c\r\nNOOP\r\n", 0, 1025, 3);
        let found = lines(&got);
        assert_eq!(found[0], (vec![b'a'; 10], 1, 0, 1028, 3));
        assert_eq!(found[1], (b"NOOP\r\n".to_vec(), 3, 1028, 6, 9));
    }

    #[test]
    fn a_line_that_fits_exactly_is_not_cut() {
        let mut framer = LineFramer::new(6);
        let got = framer.feed(b"QUIT\r\nQUITS\r\n", 0, 0, 1);
        assert_eq!(got.len(), 3);
        assert_eq!(got[1], Framed::TooLong);
        assert_eq!(lines(&got)[1].0, b"QUITS\r".to_vec());
    }

    #[test]
    fn clear_forgets_the_partial_line_and_the_cut() {
        let mut framer = LineFramer::new(4);
        framer.feed(b"abcdefg", 0, 0, 1);
        framer.clear();
        assert!(framer.partial().is_empty());
        let got = framer.feed(b"ab\n", 0, 50, 4);
        assert_eq!(lines(&got), vec![(b"ab\n".to_vec(), 4, 50, 3, 3)]);
    }

    /// (segment where the marker ended, where in it, the message bytes before it).
    fn whole(chunks: &[&[u8]]) -> (Option<(usize, usize)>, Vec<u8>) {
        let mut end = DataEnd::new();
        let mut message = Vec::new();
        for (i, chunk) in chunks.iter().enumerate() {
            let found = end.find(chunk);
            message.extend_from_slice(&found.released);
            message.extend_from_slice(&chunk[..found.body]);
            if let Some(marker_end) = found.marker_end {
                return (Some((i, marker_end)), message);
            }
        }
        message.extend(end.take_held());
        (None, message)
    }

    #[test]
    fn the_end_of_data_in_one_segment() {
        let got = whole(&[b"Subject: x\r\n\r\nbody\r\n.\r\nQUIT"]);
        assert_eq!(got, (Some((0, 23)), b"Subject: x\r\n\r\nbody\r\n".to_vec()));
        assert_eq!(
            whole(&[b".\r\n"]),
            (Some((0, 3)), Vec::new()),
            "an empty message"
        );
        let got = whole(&[b"a\r\n..\r\nb"]);
        assert_eq!(got, (None, b"a\r\n..\r\nb".to_vec()), "a stuffed dot line");
    }

    #[test]
    fn the_end_of_data_split_at_every_place() {
        let wire = b"line\r\n..\r\n.\r\nQUIT";
        let message = b"line\r\n..\r\n".to_vec();
        for at in 0..=wire.len() {
            for at2 in at..=wire.len() {
                let (a, rest) = wire.split_at(at);
                let (b, c) = rest.split_at(at2 - at);
                let (found, got) = whole(&[a, b, c]);
                assert_eq!(got, message, "split at {at}, {at2}");
                let (segment, marker_end) = found.expect("found");
                let base = [0, a.len(), at2][segment];
                assert_eq!(base + marker_end, 13, "split at {at}, {at2}");
            }
        }
    }

    #[test]
    fn held_bytes_that_are_no_marker_are_message() {
        let (found, got) = whole(&[b"a\r\n.", b"x\r\n.\r", b"\r\n", b".\r\n"]);
        assert_eq!(found, Some((3, 3)));
        assert_eq!(got, b"a\r\n.x\r\n.\r\r\n".to_vec());
        let (found, got) = whole(&[b"a\r\n.\r"]);
        assert_eq!((found, got), (None, b"a\r\n.\r".to_vec()));
    }

    #[test]
    fn the_end_of_data_across_tiny_segments() {
        let wire = b"x\r\n.\r\n";
        let chunks: Vec<&[u8]> = wire.chunks(1).collect();
        assert_eq!(whole(&chunks), (Some((5, 1)), b"x\r\n".to_vec()));
    }

    #[test]
    fn no_end_of_data_across_a_gap() {
        let mut end = DataEnd::new();
        assert_eq!(end.find(b"a\r\n.").body, 3);
        assert_eq!(end.gap(), b".".to_vec(), "held bytes are message");
        assert_eq!(end.find(b".\r\nb").marker_end, None);
        assert_eq!(end.find(b"\r\n.\r\n").marker_end, Some(5));
    }

    #[test]
    fn line_ends_are_stripped_as_python_rstrip_does() {
        assert_eq!(strip_line_end(b"250 ok\r\n"), b"250 ok");
        assert_eq!(strip_line_end(b"250 ok\r\r\n\n"), b"250 ok");
        assert_eq!(strip_line_end(b"250 o\rk\n"), b"250 o\rk");
        assert_eq!(strip_line_end(b"\r\n"), b"");
        assert_eq!(strip_line_end(b""), b"");
    }

    #[test]
    fn reply_lines_split_into_code_separator_text() {
        assert_eq!(
            reply_parts(b"250 2.0.0 Ok"),
            Some((250, b' ', &b"2.0.0 Ok"[..]))
        );
        assert_eq!(
            reply_parts(b"250-PIPELINING"),
            Some((250, b'-', &b"PIPELINING"[..]))
        );
        assert_eq!(reply_parts(b"220\tx"), Some((220, b'\t', &b"x"[..])));
        assert_eq!(reply_parts(b"250"), Some((250, 0, &b""[..])));
        assert_eq!(reply_parts(b"250ok"), Some((250, 0, &b"ok"[..])));
        assert_eq!(reply_parts(b"007 x"), Some((7, b' ', &b"x"[..])));
        assert_eq!(reply_parts(b"999--"), Some((999, b'-', &b"-"[..])));
        assert_eq!(reply_parts(b"25"), None);
        assert_eq!(reply_parts(b"2a0 x"), None);
        assert_eq!(
            reply_parts(b"\xd9\xa0\xd9\xa1\xd9\xa2"),
            None,
            "ASCII digits only"
        );
        assert_eq!(reply_parts(b""), None);
    }

    #[test]
    fn bdat_counts_what_is_there() {
        assert_eq!(bdat_take(10, 4), 4);
        assert_eq!(bdat_take(3, 4), 3);
        assert_eq!(bdat_take(u64::MAX, 7), 7);
    }
}

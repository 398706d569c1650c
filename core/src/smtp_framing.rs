//! SMTP framing, the part of the dialogue that looks at every byte: command and reply
//! lines split out of a direction's bytes (a line held across segments, capped, never
//! grown past the cap), and the end of a DATA message (CRLF.CRLF, also when it arrives
//! split across segments).
//!
//! What the lines mean (commands, replies, the state that decides whether the next bytes
//! are lines, a message or TLS) stays with the dialogue in Python
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

/// The end of a DATA message: CRLF "." CRLF (RFC 5321 4.1.1.4), found across segments.
pub const END_MARKER: &[u8] = b"\r\n.\r\n";

/// Finds the end-of-data marker in a message's bytes as they arrive.
#[derive(Debug, Clone)]
pub struct DataEnd {
    /// The last bytes seen (at most four): the start of a marker split across segments.
    tail: [u8; 4],
    tail_len: usize,
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
        }
    }

    /// Bytes the capture lacks: a marker cannot span them.
    pub fn gap(&mut self) {
        self.tail_len = 0;
    }

    /// In `data`: where the message's bytes end (just after the CRLF before the dot; 0
    /// when that CRLF came in earlier segments) and where the marker ends, or None when
    /// all of `data` is message.
    pub fn find(&mut self, data: &[u8]) -> Option<(usize, usize)> {
        let tail_len = self.tail_len;
        let mut head = [0u8; 8];
        head[..tail_len].copy_from_slice(&self.tail[..tail_len]);
        let lead = data.len().min(4);
        head[tail_len..tail_len + lead].copy_from_slice(&data[..lead]);
        let found = memmem::find(&head[..tail_len + lead], END_MARKER)
            .or_else(|| memmem::find(data, END_MARKER).map(|at| at + tail_len));
        match found {
            Some(at) => {
                let body_end = (at + 2).saturating_sub(tail_len);
                let marker_end = (at + END_MARKER.len()).saturating_sub(tail_len);
                let marker_end = marker_end.min(data.len());
                Some((body_end.min(marker_end), marker_end))
            }
            None => {
                let mut window = [0u8; 12];
                let take = data.len().min(4);
                window[..tail_len].copy_from_slice(&self.tail[..tail_len]);
                window[tail_len..tail_len + take].copy_from_slice(&data[data.len() - take..]);
                let total = tail_len + take;
                let keep = total.min(4);
                self.tail[..keep].copy_from_slice(&window[total - keep..total]);
                self.tail_len = keep;
                None
            }
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

    fn whole(chunks: &[&[u8]]) -> Option<(usize, usize, usize)> {
        let mut end = DataEnd::new();
        for (i, chunk) in chunks.iter().enumerate() {
            if let Some((body, marker)) = end.find(chunk) {
                return Some((i, body, marker));
            }
        }
        None
    }

    #[test]
    fn the_end_of_data_in_one_segment() {
        assert_eq!(
            whole(&[b"Subject: x\r\n\r\nbody\r\n.\r\nQUIT"]),
            Some((0, 20, 23))
        );
        assert_eq!(whole(&[b".\r\n"]), Some((0, 0, 3)), "an empty message");
        assert_eq!(whole(&[b"a\r\n..\r\nb"]), None, "a stuffed dot line");
    }

    #[test]
    fn the_end_of_data_split_at_every_byte() {
        let message = b"line\r\n.\r\n";
        for at in 0..=message.len() {
            let (a, b) = message.split_at(at);
            let expected = if at == message.len() {
                (0, 6, 9)
            } else {
                (1, 6usize.saturating_sub(at), 9 - at)
            };
            assert_eq!(whole(&[a, b]), Some(expected), "split at {at}");
        }
    }

    #[test]
    fn the_end_of_data_across_tiny_segments() {
        let mut end = DataEnd::new();
        let wire = b"x\r\n.\r\n";
        for (i, byte) in wire.iter().enumerate() {
            let got = end.find(std::slice::from_ref(byte));
            if i + 1 < wire.len() {
                assert_eq!(got, None);
            } else {
                assert_eq!(got, Some((0, 1)));
            }
        }
    }

    #[test]
    fn no_end_of_data_across_a_gap() {
        let mut end = DataEnd::new();
        assert_eq!(end.find(b"a\r\n"), None);
        end.gap();
        assert_eq!(end.find(b".\r\nb"), None);
        assert_eq!(end.find(b"\r\n.\r\n"), Some((2, 5)));
    }

    #[test]
    fn bdat_counts_what_is_there() {
        assert_eq!(bdat_take(10, 4), 4);
        assert_eq!(bdat_take(3, 4), 3);
        assert_eq!(bdat_take(u64::MAX, 7), 7);
    }
}

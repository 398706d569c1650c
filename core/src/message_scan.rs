//! The byte scans of a mail message as it crosses DATA or BDAT: dot-unstuffing (RFC 5321
//! 4.5.2), the size as the server stores it, bare LFs and 8-bit bytes, where each header
//! block ends, which header lines are kept (bounded), the MIME delimiter lines of the open
//! multiparts (RFC 2046 5.1.1) and the size of attached parts (base64 alphabet counted).
//!
//! What a header block says (its fields, Content-Type, the boundary, file names, RFC 2047)
//! is read by Python's `email` package: the scanner hands each complete block to a
//! [`Describe`] and goes on with the [`Entity`] it returns (`pcapsmtp/smtp/message.py`).
//! Bounded like the Python scanner it replaces: only the top header block (256 KiB), one
//! part header block at a time (64 KiB) and a few bytes of overlap are kept; a body is
//! never held. Never panics on any input (fuzz target `smtp_framer`).

use std::sync::OnceLock;

use memchr::memmem;

/// Bytes of the message's own header block kept for parsing; the rest is counted.
pub const HEADER_LIMIT: usize = 256 * 1024;
/// Bytes of one MIME part's header block kept for parsing.
pub const PART_HEADER_LIMIT: usize = 64 * 1024;
/// Nested multiparts followed; a deeper one is one opaque part.
pub const MAX_DEPTH: usize = 20;
/// Whitespace allowed after a boundary before its line ends (transport padding).
pub const MAX_PADDING: usize = 1000;
/// Fed bytes are gathered up to this size before scanning. Every message in progress holds
/// up to one batch: 64 KiB held ~37 KiB per open message (275 open at once on a generated
/// 1 GB capture, 10 MB); at 4 KiB its peak RSS fell 14.8 MB with the same CPU and output
/// (issue 21: docs/performance-log.md, "What a lingering connection holds").
pub const BATCH: usize = 4 * 1024;
/// Attachments recorded; further ones are only counted in `parts`.
pub const MAX_ATTACHMENTS: usize = 1000;
/// Leaf parts that are no attachment recorded (for Zeek's files.log); further ones are only
/// counted in `parts`.
pub const MAX_OTHER_PARTS: usize = 1000;

/// What a leaf part is, as its header block says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeafInfo {
    pub content_type: String,
    pub encoding: String,
    pub filename: Option<String>,
    /// An attachment, not a part of the text (a body, an alternative).
    pub attachment: bool,
}

/// What a header block says about the body after it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Entity {
    /// The multipart boundary (without "--"), when the entity is a multipart with one.
    pub boundary: Option<Vec<u8>>,
    /// multipart/digest: its parts' default type is message/rfc822.
    pub digest: bool,
    /// Set when the part, read as a leaf, is to be recorded (an attachment or not).
    pub attachment: Option<LeafInfo>,
    /// Anomaly codes found in the block, in order.
    pub anomalies: Vec<String>,
}

/// Reads header blocks: `top` is the message's own block, `nested` a part of a multipart,
/// `parent_digest` a part of a multipart/digest.
pub trait Describe {
    fn describe(&mut self, block: &[u8], top: bool, nested: bool, parent_digest: bool) -> Entity;
}

/// A recorded leaf part (an attachment or not): what its header said and its sizes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    pub info: LeafInfo,
    /// Decoded size (base64: 6 bits an alphabet character).
    pub size: u64,
    /// Bytes of the body on the wire, without the line break before the next delimiter.
    pub encoded_size: u64,
    /// Which MIME entity of the message it is: 1 for the message's own header block, then
    /// each header block in order (multiparts included), as Zeek counts them.
    pub entity: u64,
    /// What Zeek's MIME analyzer delivers of it: `size`, except for quoted-printable, decoded
    /// as Zeek decodes it (QuotedPrintable).
    pub delivered: u64,
}

/// What the scans found, once the message is finished.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts {
    pub size: u64,
    pub parts: u64,
    /// The recorded leaf parts in message order, at most MAX_ATTACHMENTS attachments and
    /// MAX_OTHER_PARTS others; `info.attachment` tells them apart.
    pub attachments: Vec<Attachment>,
    pub headers_truncated: bool,
    pub anomalies: Vec<String>,
    pub bare_lf: u64,
    pub eight_bit: bool,
    /// Header blocks read: the MIME entities the message began.
    pub entities: u64,
}

#[derive(Debug, Clone)]
struct Multipart {
    /// Finds "\n--" and the boundary: built once, not at each search (the searcher's set-up
    /// cost as much as a search of a batch).
    needle: memmem::Finder<'static>,
    digest: bool,
    opened: bool,
}

#[derive(Debug, Clone)]
struct Leaf {
    start: i64,
    info: Option<LeafInfo>,
    base64_chars: u64,
    entity: u64,
    /// A part of a multipart: the line break before the next delimiter, which is not fed,
    /// ended its last line.
    in_multipart: bool,
    qp: QuotedPrintable,
}

/// Counts what Zeek's MIME analyzer delivers for a quoted-printable body, fed in any split
/// (its MIME_Entity::DecodeQuotedPrintable, line by line): trailing blanks dropped, `=XY`
/// one byte, `=` at the end of a line a soft break, any other byte as it is, and a CRLF
/// after every line that does not end in a soft break.
#[derive(Debug, Clone, Default)]
struct QuotedPrintable {
    out: u64,
    state: QpState,
    /// Blanks not yet known to be followed by more of the line.
    blanks: u64,
    cr: bool,
    started: bool,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum QpState {
    #[default]
    Text,
    Equals,
    EqualsHex,
    EqualsBlank,
}

impl QuotedPrintable {
    fn feed(&mut self, data: &[u8]) {
        for &b in data {
            if self.cr {
                self.cr = false;
                if b == b'\n' {
                    self.line_end();
                    continue;
                }
                self.text(b'\r');
            }
            match b {
                b'\n' => self.line_end(),
                b'\r' => {
                    self.cr = true;
                    self.started = true;
                }
                _ => {
                    self.started = true;
                    self.text(b);
                }
            }
        }
    }

    fn text(&mut self, b: u8) {
        let blank = b == b' ' || b == b'\t';
        match self.state {
            QpState::Equals if b.is_ascii_hexdigit() => {
                self.state = QpState::EqualsHex;
                return;
            }
            QpState::Equals if blank => {
                self.state = QpState::EqualsBlank;
                self.blanks = 1;
                return;
            }
            QpState::EqualsBlank if blank => {
                self.blanks += 1;
                return;
            }
            QpState::EqualsHex if b.is_ascii_hexdigit() => {
                self.out += 1;
                self.state = QpState::Text;
                return;
            }
            // '=' not followed by two hex digits is itself, and so is a first digit
            QpState::Equals | QpState::EqualsBlank => self.out += 1,
            QpState::EqualsHex => self.out += 2,
            QpState::Text => {}
        }
        self.state = QpState::Text;
        if blank {
            self.blanks += 1;
            return;
        }
        self.out += std::mem::take(&mut self.blanks);
        if b == b'=' {
            self.state = QpState::Equals;
        } else {
            self.out += 1;
        }
    }

    fn line_end(&mut self) {
        match self.state {
            QpState::Equals | QpState::EqualsBlank => {} // a soft line break
            QpState::EqualsHex => self.out += 2 + 2,
            QpState::Text => self.out += 2,
        }
        self.state = QpState::Text;
        self.blanks = 0;
        self.cr = false;
        self.started = false;
    }

    /// The count once the body ended; `in_multipart`: the line break before the delimiter
    /// ended a last line (a line of its own when the body ended with a line break).
    fn finish(&mut self, in_multipart: bool, empty: bool) -> u64 {
        if self.cr {
            self.cr = false;
            self.text(b'\r');
        }
        if (in_multipart && !empty) || self.started {
            self.line_end();
        }
        self.out
    }
}

/// Bytes of `data` in the base64 alphabet (RFC 4648 4). Comparisons, not a table lookup,
/// so the compiler counts many bytes at a time: this runs over every byte of every base64
/// attachment (a table lookup a byte was most of the message scan's time).
fn base64_chars(data: &[u8]) -> u64 {
    let mut total = 0u64;
    for block in data.chunks(255) {
        let mut count = 0u8; // at most 255 a block
        for &b in block {
            let letter = (b | 0x20).wrapping_sub(b'a') < 26; // A-Z or a-z
            let digit = b.wrapping_sub(b'0') < 10;
            count += u8::from(letter | digit | (b == b'+') | (b == b'/'));
        }
        total += u64::from(count);
    }
    total
}

/// Message bytes in, [`Facts`] out.
pub struct MessageScan {
    dot_stuffed: bool,
    held: Vec<u8>,
    virtual_crlf: bool,
    prev_cr: bool,
    single_dots: u64,
    last: Option<u8>,
    headers: bool,
    /// Unconsumed stream from `head`; in header state `buf[head]` is the LF before the
    /// current line.
    buf: Vec<u8>,
    head: usize,
    /// Stream offset of `buf[head]` (-1: the virtual LF before the first line).
    buf_pos: i64,
    search: usize,
    skip_line: bool,
    hdr: Vec<u8>,
    hdr_cut: bool,
    dropping: bool,
    stack: Vec<Multipart>,
    leaf: Option<Leaf>,
    top_done: bool,
    finished: bool,
    batch: Vec<u8>,
    facts: Facts,
    attachments_listed: usize,
    others_listed: usize,
}

impl MessageScan {
    /// `dot_stuffed`: DATA (a leading dot of a line is removed), else BDAT.
    pub fn new(dot_stuffed: bool) -> Self {
        MessageScan {
            dot_stuffed,
            held: if dot_stuffed {
                b"\r\n".to_vec()
            } else {
                Vec::new()
            },
            virtual_crlf: dot_stuffed,
            prev_cr: false,
            single_dots: 0,
            last: None,
            headers: true,
            buf: vec![b'\n'],
            head: 0,
            buf_pos: -1,
            search: 1,
            skip_line: false,
            hdr: Vec::new(),
            hdr_cut: false,
            dropping: false,
            stack: Vec::new(),
            leaf: None,
            top_done: false,
            finished: false,
            batch: Vec::new(),
            attachments_listed: 0,
            others_listed: 0,
            facts: Facts::default(),
        }
    }

    /// Message bytes in stream order, any split (for DATA still dot-stuffed, without the
    /// final ".CRLF"; the CRLF before it may be fed or left out).
    pub fn feed(&mut self, data: &[u8], describe: &mut dyn Describe) {
        if data.is_empty() || self.finished {
            return;
        }
        let need = self.batch.len() + data.len();
        if need > self.batch.capacity() {
            // Grown by doubling but never past the batch size (or the one chunk that passes
            // it): hundreds of messages can be in progress at once.
            let target = (self.batch.capacity() * 2).max(need).min(BATCH.max(need));
            self.batch.reserve_exact(target - self.batch.len());
        }
        self.batch.extend_from_slice(data);
        if self.batch.len() >= BATCH {
            self.scan_batch(describe);
        }
    }

    /// Whether `finish` was called.
    pub fn finished(&self) -> bool {
        self.finished
    }

    /// The facts about everything fed; the scanner takes no more bytes after this.
    pub fn finish(&mut self, describe: &mut dyn Describe) -> Facts {
        if self.finished {
            return self.facts.clone();
        }
        self.finished = true;
        self.scan_batch(describe);
        if self.dot_stuffed {
            let held = std::mem::take(&mut self.held);
            let tail = self.unstuff_block(&held);
            let tail = if self.virtual_crlf {
                tail.get(2..).unwrap_or_default().to_vec()
            } else {
                tail
            };
            self.parse(&tail, false, describe);
            if self.facts.size > 0 && self.last != Some(b'\n') {
                // The CRLF that ends the last line belongs to the message (RFC 5321 4.1.1.4).
                self.parse(b"\r\n", false, describe);
            }
        }
        self.parse(b"", true, describe);
        if self.leaf.is_some() {
            let end = self.buf_pos + (self.buf.len() - self.head) as i64;
            self.end_leaf(end);
        }
        self.close_levels(0);
        if self.single_dots > 0 {
            self.anomaly("unstuffed_leading_dot");
        }
        if self.facts.bare_lf > 0 {
            self.anomaly("bare_lf");
        }
        self.buf = Vec::new();
        self.head = 0;
        self.hdr = Vec::new();
        self.facts.clone()
    }

    fn scan_batch(&mut self, describe: &mut dyn Describe) {
        if self.batch.is_empty() {
            return;
        }
        let data = std::mem::take(&mut self.batch);
        self.note_raw(&data);
        if self.dot_stuffed {
            let body = self.unstuff(&data);
            self.parse(&body, false, describe);
        } else {
            self.parse(&data, false, describe);
        }
        drop(data); // not kept for the next batch: a message in progress holds little
    }

    fn note_raw(&mut self, data: &[u8]) {
        let mut prev_cr = self.prev_cr;
        let mut bare = 0u64;
        for at in memchr::memchr_iter(b'\n', data) {
            let cr = if at == 0 {
                prev_cr
            } else {
                data[at - 1] == b'\r'
            };
            if !cr {
                bare += 1;
            }
        }
        if let Some(&last) = data.last() {
            prev_cr = last == b'\r';
        }
        self.prev_cr = prev_cr;
        self.facts.bare_lf += bare;
        if !self.facts.eight_bit && !data.is_ascii() {
            self.facts.eight_bit = true;
        }
    }

    // -- dot-stuffing (RFC 5321 4.5.2) ------------------------------------------------

    /// Remove the dot that starts a line; hold back a possible "CRLF." across batches.
    fn unstuff(&mut self, data: &[u8]) -> Vec<u8> {
        let mut buf = std::mem::take(&mut self.held);
        buf.extend_from_slice(data);
        let hold = [&b"\r\n."[..], b"\r\n", b"\r"]
            .iter()
            .find(|p| buf.ends_with(p))
            .map_or(0, |p| p.len());
        let split = buf.len() - hold;
        self.held = buf[split..].to_vec();
        let mut body = self.unstuff_block(&buf[..split]);
        if self.virtual_crlf && !body.is_empty() {
            body.drain(..body.len().min(2));
            self.virtual_crlf = false;
        }
        body
    }

    fn unstuff_block(&mut self, block: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(block.len());
        let mut starts = 0u64;
        let mut doubled = 0u64;
        let mut from = 0;
        static CRLF_DOT: OnceLock<memmem::Finder<'static>> = OnceLock::new();
        let finder = CRLF_DOT.get_or_init(|| memmem::Finder::new(b"\r\n."));
        for at in finder.find_iter(block) {
            starts += 1;
            if block.get(at + 3) == Some(&b'.') {
                doubled += 1;
            }
            out.extend_from_slice(&block[from..at + 2]);
            from = at + 3;
        }
        out.extend_from_slice(&block[from..]);
        if starts > 0 {
            // A line with a single leading dot: still deleted, but a client that stuffs
            // would have doubled it, so the message loses a dot the sender meant to send.
            let trailing = u64::from(block.ends_with(b"\r\n."));
            self.single_dots += starts.saturating_sub(doubled + trailing);
        }
        out
    }

    // -- the MIME walk -----------------------------------------------------------------

    fn len(&self) -> usize {
        self.buf.len() - self.head
    }

    fn at(&self, i: usize) -> Option<u8> {
        self.buf.get(self.head + i).copied()
    }

    /// Forget the first `n` bytes of the unconsumed stream.
    fn drop_front(&mut self, n: usize) {
        let n = n.min(self.len());
        self.head += n;
        self.buf_pos += n as i64;
    }

    fn parse(&mut self, data: &[u8], last_call: bool, describe: &mut dyn Describe) {
        if !data.is_empty() {
            self.facts.size += data.len() as u64;
            self.last = data.last().copied();
            if self.head > 0 {
                self.buf.drain(..self.head);
                self.head = 0;
            }
            self.buf.extend_from_slice(data);
        }
        loop {
            let changed = if self.headers {
                self.walk_headers(last_call, describe)
            } else {
                self.body(last_call)
            };
            if !changed {
                break;
            }
        }
        self.compact();
    }

    /// Give back what the unconsumed stream no longer needs (most of a batch once its
    /// body is scanned): many messages are in progress at once on a busy capture.
    fn compact(&mut self) {
        let len = self.len();
        if self.buf.capacity() > 4096 && len < self.buf.capacity() / 4 {
            self.buf.drain(..self.head);
            self.head = 0;
            self.buf.shrink_to(len.max(1024) * 2);
        }
    }

    fn header_line_at_1(&self) -> bool {
        // email.feedparser's headerRE: "From ", a field name and ":", or folding white space.
        let line = &self.buf[(self.head + 1).min(self.buf.len())..];
        if line.starts_with(b"From ") {
            return true;
        }
        if matches!(line.first(), Some(b'\t' | b' ')) {
            return true;
        }
        let name = line
            .iter()
            .take_while(|&&b| (0x21..=0x39).contains(&b) || (0x3b..=0x7e).contains(&b))
            .count();
        line.get(name) == Some(&b':')
    }

    fn limit(&self) -> usize {
        if self.top_done {
            PART_HEADER_LIMIT
        } else {
            HEADER_LIMIT
        }
    }

    /// Walk complete header lines; true once the block has ended (the state changed).
    fn walk_headers(&mut self, last_call: bool, describe: &mut dyn Describe) -> bool {
        loop {
            let len = self.len();
            let from = self.search.min(len);
            let found = memchr::memchr(b'\n', &self.buf[self.head + from..]).map(|i| i + from);
            let nl = match found {
                Some(nl) => nl,
                None => {
                    if !last_call || len <= 1 {
                        return self.wait_for_line(last_call, describe);
                    }
                    len
                }
            };
            if self.skip_line {
                self.skip_line = false;
            } else if nl == 1 || (nl == 2 && self.at(1) == Some(b'\r')) {
                return self.end_headers(nl, describe);
            } else if !self.header_line_at_1() {
                // email.feedparser ends the header block here too.
                self.anomaly("missing_header_separator");
                return self.end_headers(0, describe);
            } else {
                self.keep_header_line(1, nl + 1);
            }
            if nl == len {
                return self.end_headers(nl, describe);
            }
            self.drop_front(nl);
            self.search = 1;
        }
    }

    /// No line end yet: keep the partial line, unless it is already over the limit.
    fn wait_for_line(&mut self, last_call: bool, describe: &mut dyn Describe) -> bool {
        let len = self.len();
        if last_call {
            return self.end_headers(len, describe);
        }
        if !self.skip_line && len <= self.limit() {
            self.search = len;
            return false;
        }
        if !self.skip_line {
            if !self.header_line_at_1() {
                self.anomaly("missing_header_separator");
                return self.end_headers(0, describe);
            }
            self.cut_headers();
            self.skip_line = true;
            self.dropping = true;
        }
        // Forget the overlong line's bytes; the offset stays right for what follows.
        self.drop_front(len);
        self.search = 0;
        false
    }

    /// Keep a header line if the block has room; over the limit a field is left out whole
    /// (with its continuation lines), and a later one that fits is still kept.
    fn keep_header_line(&mut self, start: usize, end: usize) {
        let end = end.min(self.len());
        let start = start.min(end);
        if matches!(self.at(start), Some(b' ' | b'\t')) && self.dropping {
            return;
        }
        self.dropping = self.hdr.len() + end - start > self.limit();
        if self.dropping {
            self.cut_headers();
        } else {
            let (a, b) = (self.head + start, self.head + end);
            self.hdr.extend_from_slice(&self.buf[a..b]);
        }
    }

    fn cut_headers(&mut self) {
        if !self.hdr_cut {
            self.hdr_cut = true;
            if self.top_done {
                self.anomaly("part_header_too_long");
            } else {
                self.facts.headers_truncated = true;
                self.anomaly("header_too_long");
            }
        }
    }

    /// The header block ended; the body's first byte follows `buf[body_at]`.
    fn end_headers(&mut self, body_at: usize, describe: &mut dyn Describe) -> bool {
        let block = std::mem::take(&mut self.hdr);
        self.hdr_cut = false;
        self.dropping = false;
        self.skip_line = false;
        self.drop_front(body_at);
        self.headers = false;
        let parent_digest = self.stack.last().map(|m| m.digest);
        let top = !self.top_done;
        self.top_done = true;
        self.facts.entities += 1;
        let entity = describe.describe(
            &block,
            top,
            parent_digest.is_some(),
            parent_digest == Some(true),
        );
        for code in &entity.anomalies {
            self.anomaly(code);
        }
        if let Some(boundary) = entity.boundary {
            if self.stack.len() < MAX_DEPTH {
                let mut needle = b"\n--".to_vec();
                needle.extend_from_slice(&boundary);
                self.stack.push(Multipart {
                    needle: memmem::Finder::new(&needle).into_owned(),
                    digest: entity.digest,
                    opened: false,
                });
                return true;
            }
            self.anomaly("multipart_too_deep");
        }
        self.leaf = Some(Leaf {
            start: self.buf_pos + 1,
            info: entity.attachment,
            base64_chars: 0,
            entity: self.facts.entities,
            in_multipart: !self.stack.is_empty(),
            qp: QuotedPrintable::default(),
        });
        self.facts.parts += 1;
        true
    }

    /// Consume body bytes up to the next delimiter; true when one was found.
    fn body(&mut self, last_call: bool) -> bool {
        if self.stack.is_empty() {
            self.consume(self.len());
            return false;
        }
        let Some((at, level, eol, close)) = self.next_delimiter(last_call) else {
            let keep = if last_call {
                0
            } else {
                self.stack
                    .iter()
                    .map(|m| m.needle.needle().len())
                    .max()
                    .unwrap_or(0)
            };
            self.consume(self.len().saturating_sub(keep));
            return false;
        };
        let Some(eol) = eol else {
            self.consume(at.saturating_sub(1));
            return false;
        };
        let end = if at > 0 && self.at(at - 1) == Some(b'\r') {
            at - 1
        } else {
            at
        };
        self.consume(end);
        if self.leaf.is_some() {
            self.end_leaf(self.buf_pos);
        }
        self.close_levels(level + 1);
        if let Some(multipart) = self.stack.get_mut(level) {
            multipart.opened = true;
        }
        if close {
            self.stack.truncate(level);
        }
        self.drop_front(eol.saturating_sub(end));
        if !close {
            self.headers = true;
            self.search = 1;
        }
        true
    }

    fn close_levels(&mut self, level: usize) {
        let closing: Vec<bool> = self.stack.iter().skip(level).map(|m| m.opened).collect();
        for opened in closing {
            if opened {
                self.anomaly("unterminated_multipart");
            } else {
                // No delimiter at all: like the email package, the body is one part.
                self.anomaly("boundary_not_found");
                self.facts.parts += 1;
            }
        }
        self.stack.truncate(level);
    }

    /// (position, stack level, line end or None when more bytes are needed, close).
    fn next_delimiter(&self, last_call: bool) -> Option<(usize, usize, Option<usize>, bool)> {
        let data = &self.buf[self.head..];
        // The next occurrence of each level's needle at or after `start` (None: no more).
        let mut next: Vec<Option<usize>> = self.stack.iter().map(|m| m.needle.find(data)).collect();
        let mut start = 0;
        loop {
            for (i, multipart) in self.stack.iter().enumerate() {
                if let Some(at) = next[i] {
                    if at < start {
                        next[i] = multipart.needle.find(&data[start..]).map(|p| p + start);
                    }
                }
            }
            let mut best: Option<(usize, usize)> = None;
            for (i, at) in next.iter().enumerate() {
                if let Some(at) = *at {
                    match best {
                        Some((b, _)) if b <= at => {}
                        _ => best = Some((at, i)),
                    }
                }
            }
            let (at, level) = best?;
            let k = at + self.stack[level].needle.needle().len();
            if let Some((eol, close)) = delimiter_end(data, k, last_call) {
                return Some((at, level, eol, close));
            }
            start = at + 1;
        }
    }

    /// Hand the first `n` unconsumed bytes to the current leaf (if any) and forget them.
    fn consume(&mut self, n: usize) {
        let n = n.min(self.len());
        if n == 0 {
            return;
        }
        if let Some(leaf) = self.leaf.as_mut() {
            let encoding = leaf.info.as_ref().map(|i| i.encoding.as_str());
            let s = (leaf.start - self.buf_pos).max(0) as usize;
            if s < n {
                let chunk = &self.buf[self.head + s..self.head + n];
                if encoding == Some("base64") {
                    leaf.base64_chars += base64_chars(chunk);
                } else if encoding == Some("quoted-printable") {
                    leaf.qp.feed(chunk);
                }
            }
        }
        self.drop_front(n);
    }

    fn end_leaf(&mut self, end: i64) {
        let Some(mut leaf) = self.leaf.take() else {
            return;
        };
        let Some(info) = leaf.info else {
            return;
        };
        if info.attachment {
            if self.attachments_listed >= MAX_ATTACHMENTS {
                self.anomaly("too_many_attachments");
                return;
            }
            self.attachments_listed += 1;
        } else {
            if self.others_listed >= MAX_OTHER_PARTS {
                return;
            }
            self.others_listed += 1;
        }
        let encoded = (end - leaf.start).max(0) as u64;
        let size = if info.encoding == "base64" {
            leaf.base64_chars * 6 / 8 // RFC 4648 4: 6 bits a character
        } else {
            encoded
        };
        let delivered = if info.encoding == "quoted-printable" {
            leaf.qp.finish(leaf.in_multipart, encoded == 0)
        } else {
            size
        };
        self.facts.attachments.push(Attachment {
            info,
            size,
            encoded_size: encoded,
            entity: leaf.entity,
            delivered,
        });
    }

    fn anomaly(&mut self, code: &str) {
        if !self.facts.anomalies.iter().any(|c| c == code) {
            self.facts.anomalies.push(code.to_string());
        }
    }
}

/// After "--boundary" at `k`: (index of the LF ending the line or None when more bytes are
/// needed, close delimiter), or None when this is no delimiter line (only "--" and linear
/// white space may follow the boundary).
fn delimiter_end(buf: &[u8], k: usize, last_call: bool) -> Option<(Option<usize>, bool)> {
    let n = buf.len();
    let start = k;
    let mut k = k;
    let close = buf.get(k..).is_some_and(|rest| rest.starts_with(b"--"));
    if close {
        k += 2;
    } else if n.saturating_sub(k) < 2
        && b"--".starts_with(buf.get(k..).unwrap_or_default())
        && !last_call
    {
        return Some((None, false));
    }
    while matches!(buf.get(k), Some(b' ' | b'\t')) {
        k += 1;
    }
    if k >= n {
        if last_call {
            return Some((Some(n), close));
        }
        return if k - start < MAX_PADDING {
            Some((None, close))
        } else {
            None
        };
    }
    match buf[k] {
        b'\n' => Some((Some(k), close)),
        b'\r' if k + 1 == n => Some((if last_call { Some(n) } else { None }, close)),
        b'\r' if buf[k + 1] == b'\n' => Some((Some(k + 1), close)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A describer that reads `boundary=X` and `filename=Y` naively: enough to drive the
    /// walk in tests (the real one is Python's email package).
    pub struct Naive;

    fn param(block: &[u8], name: &[u8]) -> Option<Vec<u8>> {
        let at = memmem::find(block, name)? + name.len();
        let value: Vec<u8> = block[at..]
            .iter()
            .copied()
            .take_while(|b| !b" ;\r\n\"".contains(b))
            .collect();
        Some(value)
    }

    impl Describe for Naive {
        fn describe(&mut self, block: &[u8], _top: bool, _nested: bool, _digest: bool) -> Entity {
            let filename = param(block, b"filename=").map(|f| String::from_utf8_lossy(&f).into());
            let base64 = memmem::find(block, b"base64").is_some();
            Entity {
                boundary: param(block, b"boundary="),
                digest: false,
                attachment: filename.map(|filename| LeafInfo {
                    attachment: true,
                    content_type: "application/octet-stream".into(),
                    encoding: if base64 { "base64" } else { "7bit" }.into(),
                    filename: Some(filename),
                }),
                anomalies: Vec::new(),
            }
        }
    }

    fn scan(data: &[u8], dot_stuffed: bool, splits: &[usize]) -> Facts {
        let mut scanner = MessageScan::new(dot_stuffed);
        let mut pos = 0;
        for &size in splits {
            let end = (pos + size).min(data.len());
            scanner.feed(&data[pos..end], &mut Naive);
            pos = end;
        }
        scanner.feed(&data[pos..], &mut Naive);
        scanner.finish(&mut Naive)
    }

    const BASE64_ALPHABET: &[u8] =
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

    #[test]
    fn base64_alphabet_counted() {
        for b in 0..=255u8 {
            let expected = u64::from(BASE64_ALPHABET.contains(&b));
            assert_eq!(base64_chars(&[b]), expected, "byte {b}");
        }
        let long: Vec<u8> = (0..2000u32).map(|i| (i % 256) as u8).collect();
        let expected = long.iter().filter(|b| BASE64_ALPHABET.contains(b)).count() as u64;
        assert_eq!(base64_chars(&long), expected);
        assert_eq!(base64_chars(&[b'A'; 1000]), 1000);
    }

    #[test]
    fn unstuffing_at_every_split() {
        let wire = b"..start\r\n...two\r\nx\r\n....three";
        let message_len = b".start\r\n..two\r\nx\r\n...three\r\n".len() as u64;
        for at in 0..=wire.len() {
            let facts = scan(wire, true, &[at]);
            assert_eq!(facts.size, message_len, "split at {at}");
            assert_eq!(facts.anomalies, vec!["missing_header_separator"]);
        }
    }

    #[test]
    fn a_single_leading_dot_is_noted() {
        let facts = scan(b"Subject: x\r\n\r\n.oops\r\nend", true, &[]);
        assert_eq!(
            facts.size,
            b"Subject: x\r\n\r\noops\r\nend\r\n".len() as u64
        );
        assert!(facts
            .anomalies
            .contains(&"unstuffed_leading_dot".to_string()));
    }

    #[test]
    fn bdat_is_not_unstuffed_and_gets_no_crlf() {
        let message = b"Subject: x\r\n\r\n..body";
        assert_eq!(scan(message, false, &[]).size, message.len() as u64);
    }

    #[test]
    fn bare_lf_and_eight_bit_across_splits() {
        let facts = scan(b"a\r", true, &[]);
        assert_eq!(facts.bare_lf, 0);
        let mut scanner = MessageScan::new(true);
        scanner.feed(b"a\r", &mut Naive);
        scanner.feed(b"\nb\n\xe9", &mut Naive);
        let facts = scanner.finish(&mut Naive);
        assert_eq!(facts.bare_lf, 1);
        assert!(facts.eight_bit);
        assert!(facts.anomalies.contains(&"bare_lf".to_string()));
    }

    const MIXED: &[u8] = b"Subject: x\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n\
        preamble\r\n--b\r\nContent-Type: text/plain\r\n\r\nhello\r\n\
        --b\r\nContent-Disposition: attachment; filename=a.bin\r\n\
        Content-Transfer-Encoding: base64\r\n\r\nQUJD\r\nREVG\r\n--b--\r\nepilogue\r\n";

    #[test]
    fn parts_and_attachment_sizes_at_every_split() {
        let whole = scan(MIXED, false, &[]);
        assert_eq!(whole.parts, 2);
        assert_eq!(whole.anomalies, Vec::<String>::new());
        assert_eq!(whole.attachments.len(), 1);
        assert_eq!(whole.attachments[0].size, 6);
        assert_eq!(whole.attachments[0].encoded_size, 10);
        assert_eq!(whole.size, MIXED.len() as u64);
        for at in 0..=MIXED.len() {
            // Splits only matter at the batch size; feed in two and compare.
            let mut scanner = MessageScan::new(false);
            scanner.feed(&MIXED[..at], &mut Naive);
            scanner.scan_batch(&mut Naive);
            scanner.feed(&MIXED[at..], &mut Naive);
            assert_eq!(scanner.finish(&mut Naive), whole, "split at {at}");
        }
    }

    #[test]
    fn an_unclosed_multipart_and_a_missing_boundary() {
        let facts = scan(
            b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\nx\r\n",
            false,
            &[],
        );
        assert_eq!(facts.anomalies, vec!["unterminated_multipart"]);
        let facts = scan(
            b"Content-Type: multipart/mixed; boundary=b\r\n\r\nno parts\r\n",
            false,
            &[],
        );
        assert_eq!(facts.anomalies, vec!["boundary_not_found"]);
        assert_eq!(facts.parts, 1);
    }

    #[test]
    fn a_huge_header_is_cut_and_not_held() {
        let mut message = b"Subject: x\r\nX-Long: ".to_vec();
        message.extend(vec![b'a'; HEADER_LIMIT * 2]);
        message.extend_from_slice(b"\r\nFrom: a@b\r\n\r\nbody\r\n");
        let mut scanner = MessageScan::new(false);
        for chunk in message.chunks(1460) {
            scanner.feed(chunk, &mut Naive);
            assert!(scanner.buf.len() <= HEADER_LIMIT + BATCH + 2);
            assert!(scanner.hdr.len() <= HEADER_LIMIT);
        }
        let facts = scanner.finish(&mut Naive);
        assert!(facts.headers_truncated);
        assert_eq!(facts.anomalies, vec!["header_too_long"]);
        assert_eq!(facts.size, message.len() as u64);
    }

    #[test]
    fn nesting_is_bounded() {
        let mut message = Vec::new();
        for i in 0..(MAX_DEPTH + 5) {
            message.extend_from_slice(
                format!("Content-Type: multipart/mixed; boundary={i}b\r\n\r\n--{i}b\r\n")
                    .as_bytes(),
            );
        }
        // (A boundary that another one at the same place starts with hides the longer
        // one, as in the Python scanner this replaced: hence "{i}b", not "b{i}".)
        let facts = scan(&message, false, &[]);
        assert!(
            facts.anomalies.contains(&"multipart_too_deep".to_string()),
            "{facts:?}"
        );
    }

    /// Records every leaf; those naming a file are attachments.
    struct EveryLeaf;

    impl Describe for EveryLeaf {
        fn describe(&mut self, block: &[u8], top: bool, nested: bool, digest: bool) -> Entity {
            let mut entity = Naive.describe(block, top, nested, digest);
            if entity.boundary.is_none() && entity.attachment.is_none() {
                entity.attachment = Some(LeafInfo {
                    content_type: "text/plain".into(),
                    encoding: "7bit".into(),
                    filename: None,
                    attachment: false,
                });
            }
            entity
        }
    }

    #[test]
    fn other_leaves_are_recorded_apart_from_the_attachment_bound() {
        let mut message = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n".to_vec();
        for _ in 0..(MAX_OTHER_PARTS + 10) {
            message.extend_from_slice(b"--b\r\n\r\ntext\r\n");
        }
        for _ in 0..(MAX_ATTACHMENTS + 10) {
            message.extend_from_slice(
                b"--b\r\nContent-Disposition: attachment; filename=a\r\n\r\nxy\r\n",
            );
        }
        message.extend_from_slice(b"--b--\r\n");
        let mut scanner = MessageScan::new(false);
        scanner.feed(&message, &mut EveryLeaf);
        let facts = scanner.finish(&mut EveryLeaf);
        assert_eq!(facts.parts, (MAX_OTHER_PARTS + MAX_ATTACHMENTS + 20) as u64);
        let (attached, others): (Vec<_>, Vec<_>) =
            facts.attachments.iter().partition(|a| a.info.attachment);
        assert_eq!(
            (attached.len(), others.len()),
            (MAX_ATTACHMENTS, MAX_OTHER_PARTS)
        );
        assert_eq!((others[0].size, attached[0].size), (4, 2));
        assert_eq!(
            (others[0].entity, attached[0].entity),
            (2, MAX_OTHER_PARTS as u64 + 12)
        );
        assert_eq!(
            facts.entities,
            (MAX_OTHER_PARTS + MAX_ATTACHMENTS + 21) as u64
        );
        assert_eq!(facts.anomalies, vec!["too_many_attachments"]);
    }

    fn quoted_printable(body: &[u8], in_multipart: bool, splits: &[usize]) -> u64 {
        let mut qp = QuotedPrintable::default();
        let mut pos = 0;
        for &size in splits {
            let end = (pos + size).min(body.len());
            qp.feed(&body[pos..end]);
            pos = end;
        }
        qp.feed(&body[pos..]);
        qp.finish(in_multipart, body.is_empty())
    }

    #[test]
    fn quoted_printable_counts_as_zeek_decodes() {
        let cases: &[(&[u8], bool, u64)] = &[
            (b"abc", true, 5),                    // the last line ends at the delimiter
            (b"abc\r\n", true, 7),                // then an empty line of its own
            (b"abc\r\n", false, 5),               // the message's end: no line after it
            (b"a=3Db  \t\r\nc", true, 3 + 2 + 3), // =3D one byte, trailing blanks dropped
            (b"soft=\r\nbreak", true, 4 + 5 + 2), // no CRLF after a soft break
            (b"soft= \t\r\nx", true, 4 + 1 + 2),  // blanks after '=' still a soft break
            (b"=G =4 =4x =\tz", true, 2 + 1 + 2 + 1 + 3 + 1 + 3 + 2), // '=' as it is
            (b"end=4", true, 3 + 2 + 2),          // '=' and a digit at the end: as they are
            (b"a\rb\nc", true, 3 + 2 + 1 + 2),    // a lone CR is text, a bare LF ends a line
        ];
        for &(body, in_multipart, expected) in cases {
            for at in 0..=body.len() {
                assert_eq!(
                    quoted_printable(body, in_multipart, &[at, 1]),
                    expected,
                    "{:?} split at {at}",
                    String::from_utf8_lossy(body)
                );
            }
        }
    }

    #[test]
    fn padding_after_a_boundary_is_bounded() {
        let mut message = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b".to_vec();
        message.extend(vec![b' '; 5000]);
        let facts = scan(&message, false, &[]);
        assert_eq!(facts.parts, 1);
    }
}

//! The record loops of pcap and pcapng: frames out, damage turned into one warning.
//!
//! Our own loops rather than the `pcap-parser` crate's readers: the frame numbers must be
//! Wireshark's even on damaged files (every frame before the damage, none after it), each
//! kind of damage gets a warning saying what was lost (which record, how many bytes were
//! present), a pcap record longer than Wireshark's 262144 bytes stops the reading instead
//! of growing a buffer to the claimed size, and Simple Packet Blocks, systemd journal
//! blocks and Decryption Secrets Blocks count or are kept as Wireshark does. The loops
//! read each record by its length fields; nothing is indexed unchecked and the module has
//! no `unsafe`.
//!
//! The input is read in chunks straight into a window (`Window`) and the records are
//! parsed where they lie: a frame's bytes are copied once, by the read, and a batch of
//! frames hands the window itself on (`Reader::take_window`) rather than copying each
//! frame out of a buffered reader into a batch buffer (that second copy was 15 % of
//! reading and decoding a 1 GB capture).

use std::io::{self, Read};
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};

use crate::input::{describe, inflation_limit, CHUNK};

/// Wireshark's WTAP_MAX_PACKET_SIZE_STANDARD: a longer pcap record means a damaged file.
pub const MAX_RECORD_LEN: u32 = 262_144;
/// A pcapng block claiming more than this is damage, not data (Wireshark's bound too).
pub const MAX_BLOCK_LEN: u32 = 16 * 1024 * 1024;
/// The upper bits of the pcap link-type field carry FCS information (pcap-savefile(5)).
const LINKTYPE_MASK: u32 = 0x0FFF_FFFF;
/// Pseudo link type of a pcapng systemd Journal Export Block: a frame with no packet.
pub const LINKTYPE_SYSTEMD_JOURNAL: i64 = -1;

pub const PCAPNG_MAGIC: [u8; 4] = [0x0a, 0x0d, 0x0d, 0x0a];
const BYTE_ORDER_MAGIC: u32 = 0x1A2B_3C4D;
const BT_SHB: u32 = 0x0A0D_0D0A;
const BT_IDB: u32 = 1;
const BT_PB: u32 = 2;
const BT_SPB: u32 = 3;
const BT_EPB: u32 = 6;
const BT_SYSTEMD_JOURNAL: u32 = 9;
const BT_DSB: u32 = 10;
const OPT_ENDOFOPT: u16 = 0;
const OPT_IF_TSRESOL: u16 = 9;
const OPT_IF_TSOFFSET: u16 = 14;
const JOURNAL_REALTIME: &[u8] = b"__REALTIME_TIMESTAMP=";

/// One record of the capture, undecoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// 1-based record index plus the reader's offset: Wireshark's frame.number.
    pub number: u64,
    /// Nanoseconds since the Unix epoch (any value a file can hold: before 1970, beyond i64).
    pub time_ns: i128,
    pub linktype: i64,
    pub data: Vec<u8>,
    pub wire_len: u32,
    pub interface: u32,
}

impl Frame {
    /// The frame as the decoder reads it.
    pub fn view(&self) -> FrameView<'_> {
        FrameView {
            number: self.number,
            time_ns: self.time_ns,
            linktype: self.linktype,
            data: &self.data,
            wire_len: self.wire_len,
        }
    }
}

/// A frame whose captured bytes lie in a buffer shared with other frames (the reader's
/// window, `Reader::next_frame_at`): `data` is `buffer[start..start + len]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameAt {
    pub number: u64,
    pub time_ns: i128,
    pub linktype: i64,
    pub start: usize,
    pub len: usize,
    pub wire_len: u32,
    pub interface: u32,
}

impl FrameAt {
    /// The frame as the decoder reads it, its bytes in `buffer`.
    pub fn view<'a>(&self, buffer: &'a [u8]) -> FrameView<'a> {
        FrameView {
            number: self.number,
            time_ns: self.time_ns,
            linktype: self.linktype,
            data: &buffer[self.start..self.start + self.len],
            wire_len: self.wire_len,
        }
    }
}

/// A frame's facts and bytes, borrowed: what the decoder and the tally read of a frame,
/// whether it owns its bytes (`Frame`) or shares a batch's buffer (`FrameAt`).
#[derive(Clone, Copy, Debug)]
pub struct FrameView<'a> {
    pub number: u64,
    pub time_ns: i128,
    pub linktype: i64,
    pub data: &'a [u8],
    pub wire_len: u32,
}

/// A pcapng Decryption Secrets Block, kept for TLS decryption.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Secrets {
    pub kind: u32,
    pub data: Vec<u8>,
}

/// The record format, from the first four (decompressed) bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Pcap { big_endian: bool, nanoseconds: bool },
    Pcapng,
}

impl Format {
    pub fn sniff(head: &[u8]) -> Option<Format> {
        let magic: [u8; 4] = head.get(..4)?.try_into().ok()?;
        match magic {
            [0xa1, 0xb2, 0xc3, 0xd4] => Some(Format::Pcap {
                big_endian: true,
                nanoseconds: false,
            }),
            [0xd4, 0xc3, 0xb2, 0xa1] => Some(Format::Pcap {
                big_endian: false,
                nanoseconds: false,
            }),
            [0xa1, 0xb2, 0x3c, 0x4d] => Some(Format::Pcap {
                big_endian: true,
                nanoseconds: true,
            }),
            [0x4d, 0x3c, 0xb2, 0xa1] => Some(Format::Pcap {
                big_endian: false,
                nanoseconds: true,
            }),
            PCAPNG_MAGIC => Some(Format::Pcapng),
            _ => None,
        }
    }

    /// CaptureInfo.format: ``pcap``, ``pcap-ns`` or ``pcapng``.
    pub fn name(self) -> &'static str {
        match self {
            Format::Pcap {
                nanoseconds: false, ..
            } => "pcap",
            Format::Pcap {
                nanoseconds: true, ..
            } => "pcap-ns",
            Format::Pcapng => "pcapng",
        }
    }
}

#[derive(Clone, Copy)]
struct Order {
    big: bool,
}

impl Order {
    fn u16(self, b: &[u8], at: usize) -> u16 {
        let v = [b[at], b[at + 1]];
        if self.big {
            u16::from_be_bytes(v)
        } else {
            u16::from_le_bytes(v)
        }
    }

    fn u32(self, b: &[u8], at: usize) -> u32 {
        let v = [b[at], b[at + 1], b[at + 2], b[at + 3]];
        if self.big {
            u32::from_be_bytes(v)
        } else {
            u32::from_le_bytes(v)
        }
    }

    fn i64(self, b: &[u8], at: usize) -> i64 {
        let mut v = [0; 8];
        v.copy_from_slice(&b[at..at + 8]);
        if self.big {
            i64::from_be_bytes(v)
        } else {
            i64::from_le_bytes(v)
        }
    }
}

/// A pcapng interface: its link type and how its timestamps become nanoseconds.
#[derive(Clone, Debug)]
struct Interface {
    linktype: i64,
    snaplen: u32,
    /// Nanoseconds per timestamp unit, as numerator / denominator (a power of 2 or 10).
    numerator: u128,
    denominator: u128,
    offset_ns: i128,
}

impl Interface {
    fn time_ns(&self, high: u32, low: u32) -> i128 {
        let units = (u128::from(high) << 32) | u128::from(low);
        // units < 2^64 and numerator <= 10^9: the product fits in 94 bits.
        (units * self.numerator / self.denominator) as i128 + self.offset_ns
    }
}

/// if_tsresol -> (numerator, denominator) of nanoseconds per unit. A denominator beyond
/// 2^100 makes every time 0, as it does with exact arithmetic (units * 10^9 < 2^94).
fn resolution(value: u8) -> (u128, u128) {
    let exponent = u32::from(value & 0x7F);
    let huge = 1u128 << 100;
    if value & 0x80 != 0 {
        return (
            1_000_000_000,
            if exponent >= 100 { huge } else { 1 << exponent },
        );
    }
    if exponent <= 9 {
        return (10u128.pow(9 - exponent), 1);
    }
    (
        1,
        10u128.checked_pow(exponent - 9).unwrap_or(huge).min(huge),
    )
}

/// Bytes read from the input that the records are parsed in: `data[..filled]` was read,
/// `data[pos..filled]` is what no record has taken yet. `data` beyond `filled` is room
/// already allocated and initialised, so a read needs no clearing first.
#[derive(Default)]
struct Window {
    data: Vec<u8>,
    filled: usize,
    pos: usize,
}

impl Window {
    fn unread(&self) -> usize {
        self.filled - self.pos
    }

    /// Reads until `n` bytes from `pos` on are in hand or the input ends: how many are (at
    /// most `n`). Each read asks for CHUNK bytes, as a buffered reader of that capacity
    /// does, and only when the bytes in hand are too few: the input is read at the same
    /// points as before (where a decompression bomb is stopped, or a pipe waits).
    fn ensure<R: Read + ?Sized>(&mut self, input: &mut R, n: usize) -> io::Result<usize> {
        while self.unread() < n {
            let end = self.filled + CHUNK;
            if self.data.len() < end {
                self.data.resize(end, 0);
            }
            match input.read(&mut self.data[self.filled..end]) {
                Ok(0) => break,
                Ok(got) => self.filled += got.min(CHUNK),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(self.unread().min(n))
    }

    /// The window's bytes in hand, from where the next record starts.
    fn rest(&self) -> &[u8] {
        &self.data[self.pos..self.filled]
    }
}

/// Why reading stopped: a warning, or the end of the input.
enum Stop {
    Warning(String),
    End,
}

type Step<T> = Result<T, Stop>;

/// Frames from a pcap or pcapng stream, one at a time.
pub struct Reader<R> {
    input: R,
    window: Window,
    format: Format,
    compression: Option<&'static str>,
    started: bool,
    done: bool,
    /// Frames read so far (without the offset).
    count: u64,
    offset: u64,
    warnings: Vec<String>,
    snaplen: Option<u32>,
    secrets: Vec<Secrets>,
    // pcap
    order: Order,
    linktype: i64,
    // pcapng
    interfaces: Vec<Interface>,
    last_time_ns: i128,
}

impl<R: Read> Reader<R> {
    /// A reader of `input`, which starts with the magic of `format` (Format::sniff). Frame
    /// numbers start after `offset` (the frames of the earlier files of a rotated set);
    /// `compression` names the stream in warnings about decompression.
    pub fn new(input: R, format: Format, compression: Option<&'static str>, offset: u64) -> Self {
        Reader {
            input,
            window: Window::default(),
            format,
            compression,
            started: false,
            done: false,
            count: 0,
            offset,
            warnings: Vec::new(),
            snaplen: None,
            secrets: Vec::new(),
            order: Order { big: false },
            linktype: 0,
            interfaces: Vec::new(),
            last_time_ns: 0,
        }
    }

    pub fn format(&self) -> Format {
        self.format
    }

    /// Frames read so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The largest snap length the file announces (pcap header, pcapng interfaces).
    pub fn snaplen(&self) -> Option<u32> {
        self.snaplen
    }

    /// Warnings since the last call: what damage or a limit cut off.
    pub fn take_warnings(&mut self) -> Vec<String> {
        std::mem::take(&mut self.warnings)
    }

    /// Decryption secrets since the last call.
    pub fn take_secrets(&mut self) -> Vec<Secrets> {
        std::mem::take(&mut self.secrets)
    }

    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Stops reading with a warning (the caller's: a failure outside the loops).
    pub fn stop(&mut self, warning: String) {
        self.done = true;
        self.warnings.push(warning);
    }

    /// The next frame, its bytes its own; None at the end, or after damage (a warning then
    /// says what was lost).
    pub fn next_frame(&mut self) -> Option<Frame> {
        let at = self.next_frame_at()?;
        let data = at.view(self.window()).data.to_vec();
        // Nothing refers to the window's bytes: what has been taken is let go of.
        let w = &mut self.window;
        if w.pos >= CHUNK || w.unread() == 0 {
            w.data.copy_within(w.pos..w.filled, 0);
            (w.filled, w.pos) = (w.unread(), 0);
        }
        Some(Frame {
            number: at.number,
            time_ns: at.time_ns,
            linktype: at.linktype,
            data,
            wire_len: at.wire_len,
            interface: at.interface,
        })
    }

    /// The next frame, its captured bytes in the window (`window()`, until
    /// `take_window`): no copy and no allocation per frame. None at the end, or after
    /// damage (a warning then says what was lost).
    pub fn next_frame_at(&mut self) -> Option<FrameAt> {
        if self.done {
            return None;
        }
        let mut w = std::mem::take(&mut self.window);
        let step = catch_unwind(AssertUnwindSafe(|| match self.format {
            Format::Pcap { .. } => self.pcap_record(&mut w),
            Format::Pcapng => self.pcapng_frame(&mut w),
        }));
        // The window goes back before a panic goes on: the frames read before keep their bytes.
        self.window = w;
        match step.unwrap_or_else(|panic| resume_unwind(panic)) {
            Ok(frame) => {
                self.count += 1;
                Some(frame)
            }
            Err(stop) => {
                self.done = true;
                if let Stop::Warning(warning) = stop {
                    self.warnings.push(warning);
                }
                None
            }
        }
    }

    /// Frames appended to `frames` until the next record is not all in hand (where a read
    /// of the input ended: the bytes carried over to the next window are part of one
    /// record, and a pipe's frames are handed on before the reader waits), `max_frames`
    /// are there, `max_bytes` of captured bytes were added, or the input ends: a batch as
    /// the Python binding reads it, before `take_window`.
    pub fn next_frames_at(
        &mut self,
        frames: &mut Vec<FrameAt>,
        max_frames: usize,
        max_bytes: usize,
    ) {
        let mut bytes = 0;
        while frames.len() < max_frames && bytes < max_bytes {
            let Some(frame) = self.next_frame_at() else {
                break;
            };
            bytes += frame.len;
            frames.push(frame);
            if !self.record_in_hand() {
                break;
            }
        }
    }

    /// The bytes the frames of `next_frame_at` lie in.
    pub fn window(&self) -> &[u8] {
        &self.window.data[..self.window.filled]
    }

    /// Hands on the window, with the bytes of every frame read since the last call where
    /// those frames say; reading goes on in `fresh` (its contents do not matter), into
    /// which the bytes read but not yet taken by a record are moved (part of one record
    /// when a batch ends where `record_in_hand` says).
    pub fn take_window(&mut self, mut fresh: Vec<u8>) -> Vec<u8> {
        let w = &mut self.window;
        let rest = w.unread();
        if fresh.len() < rest {
            fresh.resize(rest, 0);
        }
        fresh[..rest].copy_from_slice(w.rest());
        let mut old = std::mem::replace(&mut w.data, fresh);
        old.truncate(w.filled);
        (w.filled, w.pos) = (rest, 0);
        old
    }

    /// Whether bytes already taken from the source wait in the window. When none do, the
    /// next frame may have to wait for the source: a pipe fed by a live capture
    /// (`tcpdump -w - | pcapsmtp analyze - --follow`) delivers packets as they are seen.
    pub fn has_buffered(&self) -> bool {
        self.window.unread() > 0
    }

    /// Whether the next record lies whole in the window (as far as its length fields
    /// say): when not, the next frame needs another read, which may wait for a pipe.
    pub fn record_in_hand(&self) -> bool {
        let rest = self.window.rest();
        let o = self.order;
        let need = match self.format {
            Format::Pcap { .. } if !self.started => return false,
            Format::Pcap { .. } if rest.len() >= 16 => 16 + o.u32(rest, 8) as usize,
            Format::Pcap { .. } => 16,
            Format::Pcapng if rest.len() >= 8 => (o.u32(rest, 4) as usize).max(12),
            Format::Pcapng => 12,
        };
        rest.len() >= need
    }

    /// Reads `N` bytes, or fewer when the input ends (the count says how many); a failing
    /// input stops the reading.
    fn read_head<const N: usize>(&mut self, w: &mut Window) -> Step<([u8; N], usize)> {
        let mut head = [0; N];
        let got = self.read_into(w, N)?.1;
        head[..got].copy_from_slice(&w.data[w.pos - got..w.pos]);
        Ok((head, got))
    }

    /// Takes the next `n` bytes of the window, or fewer when the input ends: (where they
    /// start, how many); a failing input stops the reading.
    fn read_into(&mut self, w: &mut Window, n: usize) -> Step<(usize, usize)> {
        match w.ensure(&mut self.input, n) {
            Ok(got) => {
                w.pos += got;
                Ok((w.pos - got, got))
            }
            Err(e) => Err(Stop::Warning(self.input_failed(&e))),
        }
    }

    fn input_failed(&self, error: &io::Error) -> String {
        if let Some(limit) = inflation_limit(error) {
            return format!(
                "reading stopped after frame {}: the {} stream {}; the frames before it were read",
                self.count,
                self.compression.unwrap_or("file"),
                limit
            );
        }
        format!(
            "the {} stream is damaged after frame {} ({}); the frames before it were read",
            self.compression.unwrap_or("file"),
            self.count,
            describe(error)
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn frame(
        &self,
        time_ns: i128,
        linktype: i64,
        start: usize,
        len: usize,
        wire_len: u32,
        interface: u32,
    ) -> FrameAt {
        FrameAt {
            number: self.offset + self.count + 1,
            time_ns,
            linktype,
            start,
            len,
            wire_len,
            interface,
        }
    }

    // -- pcap (https://www.tcpdump.org/manpages/pcap-savefile.5.html) -----------------

    fn pcap_record(&mut self, w: &mut Window) -> Step<FrameAt> {
        let Format::Pcap {
            big_endian,
            nanoseconds,
        } = self.format
        else {
            return Err(Stop::End);
        };
        if !self.started {
            self.started = true;
            let (header, got) = self.read_head::<24>(w)?;
            if got < 24 {
                return Err(Stop::Warning(
                    "the file ends inside the pcap file header: no frames".into(),
                ));
            }
            self.order = Order { big: big_endian };
            self.snaplen = Some(self.order.u32(&header, 16));
            self.linktype = i64::from(self.order.u32(&header, 20) & LINKTYPE_MASK);
        }
        let number = self.count + 1;
        let (head, got) = self.read_head::<16>(w)?;
        if got < 16 {
            if got == 0 {
                return Err(Stop::End);
            }
            return Err(Stop::Warning(format!(
                "the file is cut short inside the header of record {number} ({got} of 16 bytes): \
                 it was not read"
            )));
        }
        let o = self.order;
        let (sec, frac, caplen, wire_len) = (
            o.u32(&head, 0),
            o.u32(&head, 4),
            o.u32(&head, 8),
            o.u32(&head, 12),
        );
        if caplen > MAX_RECORD_LEN {
            return Err(Stop::Warning(format!(
                "record {number} claims {caplen} captured bytes (more than {MAX_RECORD_LEN}): \
                 the file is damaged from there on; stopped reading after {} frames",
                self.count
            )));
        }
        let (start, got) = self.read_into(w, caplen as usize)?;
        if got < caplen as usize {
            return Err(Stop::Warning(format!(
                "the file is cut short inside record {number} ({got} of {caplen} bytes present): \
                 that frame was not read"
            )));
        }
        let per_unit = if nanoseconds { 1 } else { 1000 };
        let time_ns = i128::from(sec) * 1_000_000_000 + i128::from(frac) * per_unit;
        Ok(self.frame(time_ns, self.linktype, start, got, wire_len, 0))
    }

    // -- pcapng (draft-ietf-opsawg-pcapng) ---------------------------------------------

    fn damage(&self, what: String) -> Stop {
        Stop::Warning(format!("{what}; the frames before it were read"))
    }

    /// (type, where the whole block starts in the window; it ends at `w.pos`) of the next
    /// block; a section header switches the byte order.
    fn block(&mut self, w: &mut Window) -> Step<(u32, usize)> {
        let after = self.count;
        let (head, got) = self.read_head::<12>(w)?;
        if got == 0 {
            return Err(Stop::End);
        }
        if got < 12 {
            return Err(self.damage(format!(
                "the file is cut short inside a block header after frame {after}"
            )));
        }
        if head[..4] == PCAPNG_MAGIC {
            let bom = [head[8], head[9], head[10], head[11]];
            if u32::from_le_bytes(bom) == BYTE_ORDER_MAGIC {
                self.order = Order { big: false };
            } else if u32::from_be_bytes(bom) == BYTE_ORDER_MAGIC {
                self.order = Order { big: true };
            } else {
                return Err(self.damage(format!(
                    "a section header after frame {after} has no valid byte-order magic"
                )));
            }
        }
        let (btype, length) = (self.order.u32(&head, 0), self.order.u32(&head, 4));
        if length < 12 || length % 4 != 0 || length > MAX_BLOCK_LEN {
            return Err(self.damage(format!(
                "a block after frame {after} claims an impossible length ({length} bytes)"
            )));
        }
        let start = w.pos - 12;
        let got = self.read_into(w, length as usize - 12)?.1;
        if got < length as usize - 12 {
            return Err(self.damage(format!(
                "the file is cut short inside a block after frame {after} ({} of {length} bytes present)",
                got + 12
            )));
        }
        if self.order.u32(&w.data, w.pos - 4) != length {
            return Err(self.damage(format!(
                "a block after frame {after} has mismatched length fields"
            )));
        }
        Ok((btype, start))
    }

    fn pcapng_frame(&mut self, w: &mut Window) -> Step<FrameAt> {
        loop {
            let (btype, start) = self.block(w)?;
            let block = &w.data[start..w.pos];
            match btype {
                BT_EPB => return self.packet(block, start, "an enhanced packet block", true),
                BT_SPB => return self.simple(block, start),
                BT_PB => return self.packet(block, start, "a packet block", false),
                BT_SYSTEMD_JOURNAL => return Ok(self.journal(block, start)),
                _ => {}
            }
            match btype {
                BT_SHB => self.interfaces.clear(),
                BT_IDB => self.add_interface(block)?,
                BT_DSB if block.len() >= 20 => {
                    let kind = self.order.u32(block, 8);
                    let size = self.order.u32(block, 12) as usize;
                    let end = 16usize.saturating_add(size).min(block.len());
                    self.secrets.push(Secrets {
                        kind,
                        data: block[16..end].to_vec(),
                    });
                }
                _ => {}
            }
        }
    }

    fn add_interface(&mut self, block: &[u8]) -> Step<()> {
        if block.len() < 20 {
            return Err(self.damage(format!(
                "an interface description after frame {} is malformed (got {}, 20 needed at least)",
                self.count,
                block.len()
            )));
        }
        let o = self.order;
        let mut interface = Interface {
            linktype: i64::from(o.u16(block, 8)),
            snaplen: o.u32(block, 12),
            numerator: 1000,
            denominator: 1,
            offset_ns: 0,
        };
        // Options as dpkt reads them: a value is cut where the options end, and the first
        // opt_endofopt ends them.
        let options = &block[16..block.len() - 4];
        let mut at = 0;
        while at + 4 <= options.len() {
            let code = o.u16(options, at);
            let len = usize::from(o.u16(options, at + 2));
            let value = &options[at + 4..(at + 4 + len).min(options.len())];
            if code == OPT_ENDOFOPT {
                break;
            }
            if code == OPT_IF_TSRESOL && !value.is_empty() {
                (interface.numerator, interface.denominator) = resolution(value[0]);
            } else if code == OPT_IF_TSOFFSET && value.len() >= 8 {
                interface.offset_ns = i128::from(o.i64(value, 0)) * 1_000_000_000;
            }
            at += 4 + value.len().div_ceil(4) * 4;
        }
        if interface.snaplen != 0 {
            self.snaplen = Some(self.snaplen.unwrap_or(0).max(interface.snaplen));
        }
        self.interfaces.push(interface);
        Ok(())
    }

    fn interface(&self, index: u32) -> Step<&Interface> {
        self.interfaces.get(index as usize).ok_or_else(|| {
            self.damage(format!(
                "frame {} refers to interface {index}, which the section does not describe",
                self.count + 1
            ))
        })
    }

    /// The frame of a packet block whose captured bytes are `start..start + len` of the
    /// buffer, timed by its interface.
    #[allow(clippy::too_many_arguments)]
    fn timed(
        &mut self,
        index: u32,
        high: u32,
        low: u32,
        start: usize,
        len: usize,
        wire_len: u32,
    ) -> Step<FrameAt> {
        let interface = self.interface(index)?;
        let (time_ns, linktype) = (interface.time_ns(high, low), interface.linktype);
        self.last_time_ns = time_ns;
        Ok(self.frame(time_ns, linktype, start, len, wire_len, index))
    }

    /// An enhanced or an obsolete packet block (`block`, at `start` in the window): the
    /// same layout but for the interface index, 32 bits in the enhanced block and 16 (then
    /// a drops count) in the obsolete one.
    fn packet(
        &mut self,
        block: &[u8],
        start: usize,
        name: &str,
        wide_index: bool,
    ) -> Step<FrameAt> {
        if block.len() < 32 {
            return Err(self.damage(format!("{name} after frame {} is too short", self.count)));
        }
        let o = self.order;
        let index = if wide_index {
            o.u32(block, 8)
        } else {
            u32::from(o.u16(block, 8))
        };
        let (high, low, caplen, wire_len) = (
            o.u32(block, 12),
            o.u32(block, 16),
            o.u32(block, 20),
            o.u32(block, 24),
        );
        if caplen as usize > block.len() - 32 {
            return Err(self.damage(format!(
                "frame {} claims more captured bytes than its block holds",
                self.count + 1
            )));
        }
        self.timed(index, high, low, start + 28, caplen as usize, wire_len)
    }

    fn simple(&mut self, block: &[u8], start: usize) -> Step<FrameAt> {
        if block.len() < 16 {
            return Err(self.damage(format!(
                "a simple packet block after frame {} is too short",
                self.count
            )));
        }
        let wire_len = self.order.u32(block, 8);
        let snaplen = self.interface(0)?.snaplen;
        let mut caplen = (wire_len as usize).min(block.len() - 16);
        if snaplen != 0 {
            caplen = caplen.min(snaplen as usize);
        }
        let (linktype, time_ns) = (self.interfaces[0].linktype, self.last_time_ns);
        // A Simple Packet Block has no timestamp (tshark shows none). Time 0 would put the
        // frame in 1970 and stretch the capture over decades; the time of the frame before
        // it keeps times in order and is the closest thing to the truth we know.
        Ok(self.frame(time_ns, linktype, start + 12, caplen, wire_len, 0))
    }

    /// A journal entry (`block`, at `start` in the window), timed like Wireshark does: by
    /// its `__REALTIME_TIMESTAMP` (µs). Its frame has no bytes.
    fn journal(&mut self, block: &[u8], start: usize) -> FrameAt {
        if let Some(us) = journal_time(&block[8..block.len() - 4]) {
            self.last_time_ns = us * 1000;
        }
        self.frame(self.last_time_ns, LINKTYPE_SYSTEMD_JOURNAL, start, 0, 0, 0)
    }
}

/// The first `__REALTIME_TIMESTAMP=<1-20 digits>\n` at the start of the entry or of a line
/// (systemd's Journal Export Format).
fn journal_time(entry: &[u8]) -> Option<i128> {
    let mut from = 0;
    while let Some(found) = find(&entry[from..], JOURNAL_REALTIME) {
        let at = from + found;
        from = at + 1;
        if at > 0 && entry[at - 1] != b'\n' {
            continue;
        }
        let digits_at = at + JOURNAL_REALTIME.len();
        let digits = entry[digits_at..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        if (1..=20).contains(&digits) && entry.get(digits_at + digits) == Some(&b'\n') {
            let text = std::str::from_utf8(&entry[digits_at..digits_at + digits]).ok()?;
            return text.parse().ok();
        }
    }
    None
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

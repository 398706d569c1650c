//! The decoder's binding: `pcapsmtp._core.Models` (capture/model.py's classes, and
//! decoding one frame or packet at a time) and `pcapsmtp._core.Decoder` (a reader's
//! batches decoded into TcpSegment and IcmpError objects, fragments reassembled, and
//! DnsDatagram objects on the side when asked) and `pcapsmtp._core.SegmentBatch` (the
//! same batch with its TCP segments kept in Rust, for `FlowTable.step`).

use std::borrow::Cow;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyTuple};

use crate::decode::{self, Ip, IpPacket, IpStart, Packet, QuotedPacket};
use crate::input::Stream;
use crate::python::{panic_message, read_frames, Buffer, FrameBatch, Pool, Reader};
use crate::reader::{Reader as RecordReader, Secrets};
use crate::tally::Tally;
use crate::tcp::table::{self, SegmentRef};
use crate::tcp::{TH_FIN, TH_RST, TH_SYN};

/// The dataclasses of capture/model.py the decoder builds, and decoding one frame or one
/// IP packet at a time (export rewrites single frames; tests decode any bytes).
#[pyclass(module = "pcapsmtp._core", frozen)]
pub struct Models {
    ip_packet: Py<PyAny>,
    tcp_segment: Py<PyAny>,
    icmp_error: Py<PyAny>,
    quoted_packet: Py<PyAny>,
    /// None: DNS datagrams are not built (callers that want only TCP and ICMP).
    dns_datagram: Option<Py<PyAny>>,
}

fn tuple<'py>(py: Python<'py>, items: Vec<Bound<'py, PyAny>>) -> PyResult<Bound<'py, PyTuple>> {
    PyTuple::new(py, items)
}

macro_rules! any {
    ($py:expr, $value:expr) => {
        $value.into_pyobject($py)?.into_any()
    };
}

fn boolean(py: Python<'_>, value: bool) -> Bound<'_, PyAny> {
    pyo3::types::PyBool::new(py, value).to_owned().into_any()
}

fn bytes<'py>(py: Python<'py>, data: &[u8]) -> Bound<'py, PyAny> {
    PyBytes::new(py, data).into_any()
}

fn frames<'py>(py: Python<'py>, frames: &[u64]) -> PyResult<Bound<'py, PyAny>> {
    Ok(PyTuple::new(py, frames)?.into_any())
}

/// A Python IPPacket's fields, for decode_tcp and decode_icmp_error.
fn ip_from_py(ip: &Bound<'_, PyAny>) -> PyResult<IpPacket<'static>> {
    let get = |name: &str| ip.getattr(name);
    Ok(IpPacket {
        frame: get("frame")?.extract()?,
        time_ns: get("time_ns")?.extract()?,
        version: get("version")?.extract()?,
        src: Cow::Owned(get("src")?.extract()?),
        dst: Cow::Owned(get("dst")?.extract()?),
        proto: get("proto")?.extract()?,
        ttl: get("ttl")?.extract()?,
        df: get("df")?.extract()?,
        ident: get("ident")?.extract()?,
        total_len: get("total_len")?.extract()?,
        payload: Cow::Owned(get("payload")?.extract()?),
        payload_len: get("payload_len")?.extract()?,
        frag_offset: get("frag_offset")?.extract()?,
        more_fragments: get("more_fragments")?.extract()?,
        fragment_frames: get("fragment_frames")?.extract()?,
    })
}

impl Models {
    fn ip<'py>(&self, py: Python<'py>, ip: &IpPacket<'_>) -> PyResult<Bound<'py, PyAny>> {
        let args = tuple(
            py,
            vec![
                any!(py, ip.frame),
                any!(py, ip.time_ns),
                any!(py, ip.version),
                bytes(py, &ip.src),
                bytes(py, &ip.dst),
                any!(py, ip.proto),
                any!(py, ip.ttl),
                boolean(py, ip.df),
                any!(py, ip.ident),
                any!(py, ip.total_len),
                bytes(py, &ip.payload),
                any!(py, ip.payload_len),
                any!(py, ip.frag_offset),
                boolean(py, ip.more_fragments),
                frames(py, &ip.fragment_frames)?,
            ],
        )?;
        self.ip_packet.bind(py).call1(args)
    }

    fn quoted<'py>(&self, py: Python<'py>, q: &QuotedPacket<'_>) -> PyResult<Bound<'py, PyAny>> {
        let args = tuple(
            py,
            vec![
                bytes(py, &q.src),
                bytes(py, &q.dst),
                any!(py, q.proto),
                any!(py, q.total_len),
                boolean(py, q.df),
                any!(py, q.sport),
                any!(py, q.dport),
                any!(py, q.seq),
                any!(py, q.transport_bytes),
            ],
        )?;
        self.quoted_packet.bind(py).call1(args)
    }

    /// The DnsDatagram object of a DNS datagram, when the models have its class.
    fn dns<'py>(
        &self,
        py: Python<'py>,
        d: &decode::DnsDatagram<'_>,
    ) -> PyResult<Option<Bound<'py, PyAny>>> {
        let Some(class) = &self.dns_datagram else {
            return Ok(None);
        };
        let args = tuple(
            py,
            vec![
                any!(py, d.frame),
                any!(py, d.time_ns),
                any!(py, d.version),
                bytes(py, &d.src),
                bytes(py, &d.dst),
                any!(py, d.sport),
                any!(py, d.dport),
                bytes(py, &d.payload),
                any!(py, d.length),
                frames(py, &d.fragment_frames)?,
            ],
        )?;
        class.bind(py).call1(args).map(Some)
    }

    /// The TcpSegment, IcmpError or DnsDatagram object of a decoded packet (None for a
    /// DNS datagram when the models have no class for it).
    pub fn packet<'py>(&self, py: Python<'py>, packet: &Packet<'_>) -> PyResult<Bound<'py, PyAny>> {
        match packet {
            Packet::Tcp(s) => {
                let args = tuple(
                    py,
                    vec![
                        any!(py, s.frame),
                        any!(py, s.time_ns),
                        any!(py, s.version),
                        bytes(py, &s.src),
                        bytes(py, &s.dst),
                        any!(py, s.sport),
                        any!(py, s.dport),
                        any!(py, s.seq),
                        any!(py, s.ack),
                        any!(py, s.flags),
                        any!(py, s.window),
                        bytes(py, &s.options),
                        bytes(py, &s.payload),
                        any!(py, s.length),
                        any!(py, s.ttl),
                        boolean(py, s.df),
                        any!(py, s.ip_id),
                        any!(py, s.ip_len),
                        frames(py, &s.fragment_frames)?,
                    ],
                )?;
                self.tcp_segment.bind(py).call1(args)
            }
            Packet::Icmp(e) => {
                let quoted = match &e.quoted {
                    Some(q) => self.quoted(py, q)?,
                    None => py.None().into_bound(py),
                };
                let args = tuple(
                    py,
                    vec![
                        any!(py, e.frame),
                        any!(py, e.time_ns),
                        any!(py, e.version),
                        bytes(py, &e.src),
                        bytes(py, &e.dst),
                        any!(py, e.kind),
                        any!(py, e.code),
                        any!(py, e.mtu),
                        quoted,
                    ],
                )?;
                self.icmp_error.bind(py).call1(args)
            }
            Packet::Dns(d) => Ok(self.dns(py, d)?.unwrap_or_else(|| py.None().into_bound(py))),
        }
    }

    fn ip_or_reason<'py>(&self, py: Python<'py>, ip: Ip<'_>) -> PyResult<Bound<'py, PyAny>> {
        match ip {
            Ip::Packet(ip) => self.ip(py, &ip),
            Ip::None => Ok(py.None().into_bound(py)),
            Ip::Reason(reason) => Ok(any!(py, reason)),
        }
    }
}

#[pymethods]
impl Models {
    #[new]
    #[pyo3(signature = (ip_packet, tcp_segment, icmp_error, quoted_packet, dns_datagram=None))]
    fn new(
        ip_packet: Py<PyAny>,
        tcp_segment: Py<PyAny>,
        icmp_error: Py<PyAny>,
        quoted_packet: Py<PyAny>,
        dns_datagram: Option<Py<PyAny>>,
    ) -> Self {
        Models {
            ip_packet,
            tcp_segment,
            icmp_error,
            quoted_packet,
            dns_datagram,
        }
    }

    /// The IP packet in a frame (``linktype``, ``data``); None when it carries none; the
    /// reason when it cannot be read.
    fn decode_ip<'py>(
        &self,
        py: Python<'py>,
        linktype: i64,
        data: &[u8],
        number: u64,
        time_ns: i128,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.ip_or_reason(py, decode::decode_ip(linktype, data, number, time_ns))
    }

    /// The IPv4 or IPv6 packet at ``data[start:]``, or why it cannot be read.
    fn parse_ip<'py>(
        &self,
        py: Python<'py>,
        data: &[u8],
        start: usize,
        number: u64,
        time_ns: i128,
    ) -> PyResult<Bound<'py, PyAny>> {
        let ip = match decode::parse_ip(data, start, number, time_ns) {
            Ok(ip) => Ip::Packet(ip),
            Err(reason) => Ip::Reason(reason),
        };
        self.ip_or_reason(py, ip)
    }

    /// The TcpSegment in an IPPacket, or why it cannot be read.
    fn decode_tcp<'py>(
        &self,
        py: Python<'py>,
        ip: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        match decode::decode_tcp(ip_from_py(ip)?) {
            Ok(segment) => self.packet(py, &Packet::Tcp(segment)),
            Err(reason) => Ok(any!(py, reason)),
        }
    }

    /// The IcmpError in an IPPacket; None for other ICMP.
    fn decode_icmp_error<'py>(
        &self,
        py: Python<'py>,
        ip: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        match decode::decode_icmp_error(&ip_from_py(ip)?) {
            Some(error) => self.packet(py, &Packet::Icmp(error)),
            None => Ok(py.None().into_bound(py)),
        }
    }
}

/// Offset of the IP header in a frame: -1 when it carries no IP, -2 for a link type we
/// do not read.
#[pyfunction]
fn ip_start(linktype: i64, data: &[u8]) -> i64 {
    match decode::ip_start(linktype, data) {
        IpStart::At(start) => start as i64,
        IpStart::None => -1,
        IpStart::Unsupported => -2,
    }
}

/// A capture's frames decoded, batch by batch, into TcpSegment and IcmpError objects,
/// IP fragments reassembled across batches (and across the files of a rotated set). DNS
/// datagrams (when the models have their class) are kept apart, for ``take_dns``: the
/// flow table never sees them.
/// A panic while decoding a frame leaves that frame out and becomes one warning.
#[pyclass(module = "pcapsmtp._core")]
pub struct Decoder {
    models: Py<Models>,
    /// The decoding state; a thread's while it reads and decodes a file ahead (`Ahead`).
    work: Work,
    dns: Vec<Py<PyAny>>,
    /// `decode` returns a `SegmentBatch` (TCP segments kept in Rust) instead of a list.
    segments: bool,
}

/// One packet of a `SegmentBatch`: a TCP segment kept in Rust, or the Python object of
/// an ICMP error (`Item::Object`): the items the reading thread decoded, where they lie
/// (no move of each into another vector on the GIL's thread).
pub(crate) type BatchItem = Item;

/// Bytes of a kept segment: a range of its batch's buffer (the frame they were read
/// from), or its own (a datagram reassembled from fragments).
pub(crate) enum Span {
    In(usize, usize),
    Owned(Vec<u8>),
}

impl Span {
    /// `part` as a range of `buffer` when it lies in it, else copied.
    fn of(buffer: &[u8], part: Cow<'_, [u8]>) -> Span {
        if let Cow::Borrowed(slice) = &part {
            let at = (slice.as_ptr() as usize).wrapping_sub(buffer.as_ptr() as usize);
            if at <= buffer.len() && slice.len() <= buffer.len() - at {
                return Span::In(at, at + slice.len());
            }
        }
        Span::Owned(part.into_owned())
    }

    fn get<'a>(&'a self, buffer: &'a [u8]) -> &'a [u8] {
        match self {
            Span::In(start, end) => &buffer[*start..*end],
            Span::Owned(bytes) => bytes,
        }
    }
}

/// A decoded TCP segment kept for the flow table: what `SegmentRef` reads, its bytes
/// left where the reader put them (no copy, no allocation per segment).
pub(crate) struct Kept {
    /// The segment's numbers (its slices empty: they are the fields below).
    head: SegmentRef<'static>,
    options: Span,
    payload: Span,
    fragment_frames: Vec<u64>,
    /// The IP ID whole (an IPv6 fragment's is 32 bits), for a TcpSegment object.
    ip_id: u32,
}

impl Kept {
    fn new(s: decode::TcpSegment<'_>, buffer: &[u8]) -> Kept {
        Kept {
            head: SegmentRef {
                frame: s.frame,
                time_ns: s.time_ns,
                version: s.version,
                src: table::Ip::new(&s.src),
                dst: table::Ip::new(&s.dst),
                sport: s.sport,
                dport: s.dport,
                seq: s.seq,
                ack: s.ack,
                flags: s.flags,
                window: s.window,
                options: &[],
                payload: &[],
                length: s.length as u64,
                ttl: s.ttl,
                df: s.df,
                // An IP ID is 16 bits in every segment the table sees (IPv4's header
                // field; IPv6 fragments' 32-bit identification is kept to its low 16 bits).
                ip_id: (s.ip_id & 0xffff) as u16,
                ip_len: s.ip_len as u64,
                fragment_frames: &[],
            },
            options: Span::of(buffer, s.options),
            payload: Span::of(buffer, s.payload),
            fragment_frames: s.fragment_frames,
            ip_id: s.ip_id,
        }
    }
}

impl Kept {
    /// The segment as the decoder gave it, its bytes in `buffer` (its batch's).
    fn segment<'a>(&'a self, buffer: &'a [u8]) -> decode::TcpSegment<'a> {
        let h = &self.head;
        decode::TcpSegment {
            frame: h.frame,
            time_ns: h.time_ns,
            version: h.version,
            src: Cow::Borrowed(h.src.as_slice()),
            dst: Cow::Borrowed(h.dst.as_slice()),
            sport: h.sport,
            dport: h.dport,
            seq: h.seq,
            ack: h.ack,
            flags: h.flags,
            window: h.window,
            options: Cow::Borrowed(self.options.get(buffer)),
            payload: Cow::Borrowed(self.payload.get(buffer)),
            length: h.length as usize,
            ttl: h.ttl,
            df: h.df,
            ip_id: self.ip_id,
            ip_len: h.ip_len as usize,
            fragment_frames: self.fragment_frames.clone(),
        }
    }
}

/// A decoded batch whose TCP segments stay in Rust, for the flow table's fast path
/// (`FlowTable.step`, core/src/python_table.rs): no TcpSegment object per packet. ICMP
/// errors are Python objects in their capture-order place among the segments. The
/// segments' bytes stay in the reader's buffer, which the batch holds.
#[pyclass(module = "pcapsmtp._core")]
pub struct SegmentBatch {
    pub(crate) items: Vec<BatchItem>,
    /// The next item the flow table takes.
    pub(crate) pos: usize,
    buffer: Buffer,
}

impl SegmentBatch {
    /// A kept segment as the flow table reads it.
    pub(crate) fn segment_ref<'a>(&'a self, s: &'a Kept) -> SegmentRef<'a> {
        let buffer = self.buffer.bytes();
        SegmentRef {
            options: s.options.get(buffer),
            payload: s.payload.get(buffer),
            fragment_frames: &s.fragment_frames,
            ..s.head
        }
    }
}

#[pymethods]
impl SegmentBatch {
    fn __len__(&self) -> usize {
        self.items.len()
    }
}

/// What decoding keeps from frame to frame: the decoder (fragments waiting for the rest of
/// their datagram, the counts) and the frames it failed on.
#[derive(Default)]
pub(crate) struct Work {
    inner: decode::Decoder,
    failed: u64,
    first_failure: Option<(u64, String)>,
    copies: Copies,
}

/// How many TCP segments back a copy is looked for, and how soon after: a SPAN port that
/// mirrors both ports of a path (or a capture on a bridge and its member) delivers each
/// packet twice, microseconds apart, with little or nothing between the two.
const COPY_LOOKBACK: usize = 4;
const COPY_WINDOW_NS: i128 = 5_000_000;

/// What makes two TCP segments the same packet: every IP and TCP field but the TTL (and
/// the checksums that follow it), so a copy mirrored on both sides of a router counts too.
/// A sender's retransmission differs: a new IPv4 ID, a new timestamp option, and it comes
/// after a round trip, not in the next few packets.
#[derive(Clone, Copy, PartialEq)]
struct PacketId {
    /// The segment's numbers, its frame, time and TTL zeroed.
    head: SegmentRef<'static>,
    ip_id: u32,
    options: [u8; 40],
    options_len: u8,
}

impl PacketId {
    /// None for a segment whose copies are not told from the sender's own repeats: a RST
    /// (a host answers each segment of a dead connection with the same RST, IP ID 0), and
    /// a bare ACK without an IP ID (IPv6, or a stack that sends ID 0): a duplicate ACK.
    fn of(k: &Kept, buffer: &[u8]) -> Option<PacketId> {
        let h = &k.head;
        let options = k.options.get(buffer);
        if h.flags & TH_RST != 0
            || (k.ip_id == 0 && h.length == 0 && h.flags & (TH_SYN | TH_FIN) == 0)
            || options.len() > 40
            || !k.fragment_frames.is_empty()
        {
            return None;
        }
        let mut bytes = [0u8; 40];
        bytes[..options.len()].copy_from_slice(options);
        Some(PacketId {
            head: SegmentRef {
                frame: 0,
                time_ns: 0,
                ttl: 0,
                ..*h
            },
            ip_id: k.ip_id,
            options: bytes,
            options_len: options.len() as u8,
        })
    }
}

/// Copy frames remembered by number (a few bytes each); the finding names the first ones.
const MAX_COPY_FRAMES: usize = 100_000;

/// The last few TCP segments, to tell a frame that is a copy of one of them, and the copies
/// found. The copies still go to the flow table: its facts are Wireshark's, which reads each
/// copy as a retransmission; the diagnosis leaves them out of what it calls packet loss.
#[derive(Default)]
struct Copies {
    recent: [Option<(PacketId, i128)>; COPY_LOOKBACK],
    next: usize,
    frames: Vec<u64>,
}

impl Copies {
    /// Record `k` as a copy when it repeats one of the last segments seen within
    /// COPY_WINDOW_NS.
    fn check(&mut self, k: &Kept, buffer: &[u8]) {
        let Some(id) = PacketId::of(k, buffer) else {
            return;
        };
        let time_ns = k.head.time_ns;
        let copy = self.recent.iter().flatten().any(|(seen, seen_ns)| {
            *seen == id && (0..=COPY_WINDOW_NS).contains(&(time_ns - seen_ns))
        });
        if copy {
            if self.frames.len() < MAX_COPY_FRAMES {
                self.frames.push(k.head.frame);
            }
        } else {
            self.recent[self.next] = Some((id, time_ns));
            self.next = (self.next + 1) % COPY_LOOKBACK;
        }
    }
}

/// A decoded packet: a TCP segment as the flow table keeps it, an ICMP error or a DNS
/// datagram with its bytes its own (no Python object yet: a thread reading ahead may not
/// make one); in a `SegmentBatch`, an ICMP error becomes its Python object and a DNS
/// datagram leaves (`Decoder::hand_on`). Not boxed: nearly every item is a segment, and a
/// box would be the allocation per segment the batch exists to avoid.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Item {
    Tcp(Kept),
    Icmp(decode::IcmpError<'static>),
    Dns(decode::DnsDatagram<'static>),
    Object(Py<PyAny>),
    /// A DNS datagram taken out, until the batch's items are compacted.
    Taken,
}

impl Work {
    /// The packets of a batch's frames. A panic while decoding a frame leaves that frame
    /// out and is counted.
    fn decode(&mut self, batch: &FrameBatch) -> Vec<Item> {
        let buffer = batch.buffer.bytes();
        let mut items = Vec::with_capacity(batch.frames.len());
        for at in &batch.frames {
            let frame = at.view(buffer);
            let inner = &mut self.inner;
            match catch_unwind(AssertUnwindSafe(|| inner.decode_view(frame))) {
                Ok(Some(Packet::Tcp(s))) => {
                    let kept = Kept::new(s, buffer);
                    self.copies.check(&kept, buffer);
                    items.push(Item::Tcp(kept))
                }
                Ok(Some(Packet::Icmp(e))) => items.push(Item::Icmp(e.into_owned())),
                Ok(Some(Packet::Dns(d))) => items.push(Item::Dns(d.into_owned())),
                Ok(None) => {}
                Err(panic) => {
                    self.failed += 1;
                    self.first_failure
                        .get_or_insert_with(|| (at.number, panic_message(&panic)));
                }
            }
        }
        items
    }
}

/// A file read and decoded ahead on a thread of its own while Python works on the batch
/// before (the whole pass is otherwise one thread: reading and decoding a 1 GB mixed
/// capture is a third of its CPU). The thread owns the record reader and the decoding
/// state until the input ends, then hands both back (`Done`); it makes no Python object
/// and never takes the GIL (only a file the core opened itself is read this way, never a
/// Python stream). Batches come in capture order through a channel of one, so at most two
/// are read ahead. Dropping it (the reader closed or gone) ends the thread, and waits for it.
pub(crate) struct Ahead {
    /// In a mutex as the reader must be Sync (a Receiver is not); only the GIL's holder
    /// takes it.
    batches: Mutex<Option<Receiver<Message>>>,
    thread: Option<JoinHandle<()>>,
}

/// What a reading thread starts from: the record reader, the tally so far, the buffer
/// pool, the size of the last batch, the decoding state.
type Detached = (RecordReader<Stream>, Tally, Pool, usize, Work);

/// A decoded batch, with what the reader knew after it; then, once, the state handed back.
/// (Once per batch: not worth a box.)
#[allow(clippy::large_enum_variant)]
enum Message {
    Batch {
        buffer: Buffer,
        items: Vec<Item>,
        tally: Tally,
        snaplen: Option<u32>,
        secrets: Vec<Secrets>,
    },
    Done(Box<(RecordReader<Stream>, Work)>),
}

impl Ahead {
    /// The thread started on the reader's state and the decoding state; both back when
    /// no thread can be started (the caller reads on without one).
    fn start(state: Box<Detached>) -> Result<Ahead, Box<Detached>> {
        let (send, batches) = sync_channel(1);
        let shared = Arc::new(Mutex::new(Some(state)));
        let taken = shared.clone();
        let started = std::thread::Builder::new()
            .name("pcapsmtp-read".into())
            .spawn(move || {
                let state = taken.lock().unwrap_or_else(|e| e.into_inner()).take();
                if let Some(state) = state {
                    let (records, tally, pool, last_frames, work) = *state;
                    read_ahead(records, tally, pool, last_frames, work, send);
                }
            });
        match started {
            Ok(thread) => Ok(Ahead {
                batches: Mutex::new(Some(batches)),
                thread: Some(thread),
            }),
            Err(_) => {
                let state = shared.lock().unwrap_or_else(|e| e.into_inner()).take();
                Err(state.expect("a thread that never started took nothing"))
            }
        }
    }
}

impl Drop for Ahead {
    fn drop(&mut self) {
        // The thread's next send fails: it stops there.
        *self.batches.get_mut().unwrap_or_else(|e| e.into_inner()) = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The reading thread: batches read, counted and decoded until the input ends (or the
/// receiver is gone), then the record reader and the decoding state sent back.
fn read_ahead(
    records: RecordReader<Stream>,
    mut tally: Tally,
    pool: Pool,
    mut last_frames: usize,
    work: Work,
    send: SyncSender<Message>,
) {
    let mut state = (records, work);
    let outcome = catch_unwind(AssertUnwindSafe(|| loop {
        let (records, work) = &mut state;
        let batch = read_frames(records, &pool, &mut last_frames);
        if batch.frames.is_empty() {
            return;
        }
        batch.count(&mut tally);
        let items = work.decode(&batch);
        let message = Message::Batch {
            buffer: batch.buffer,
            items,
            tally: tally.clone(),
            snaplen: records.snaplen(),
            secrets: records.take_secrets(),
        };
        if send.send(message).is_err() {
            return;
        }
    }));
    if let Err(panic) = outcome {
        let count = state.0.count();
        state.0.stop(format!(
            "the capture reader failed after frame {count} (an internal error: {}); \
             the frames before it were read",
            panic_message(&panic)
        ));
    }
    let _ = send.send(Message::Done(Box::new(state)));
}

impl Decoder {
    /// The Python side of a batch's packets: a SegmentBatch, or a list of objects.
    fn hand_on<'py>(
        &mut self,
        py: Python<'py>,
        buffer: Buffer,
        items: Vec<Item>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let models = self.models.get();
        if self.segments {
            // The segments stay where the reading thread put them; the rare other items
            // are changed in place.
            let mut items = items;
            let mut taken = false;
            for item in items.iter_mut() {
                if matches!(item, Item::Tcp(_) | Item::Object(_)) {
                    continue;
                }
                match std::mem::replace(item, Item::Taken) {
                    Item::Icmp(e) => {
                        *item = Item::Object(models.packet(py, &Packet::Icmp(e))?.unbind());
                    }
                    Item::Dns(d) => {
                        taken = true;
                        if let Some(datagram) = models.dns(py, &d)? {
                            self.dns.push(datagram.unbind());
                        }
                    }
                    _ => {}
                }
            }
            if taken {
                items.retain(|item| !matches!(item, Item::Taken));
            }
            let batch = SegmentBatch {
                items,
                pos: 0,
                buffer,
            };
            return Ok(Bound::new(py, batch)?.into_any());
        }
        let out = PyList::empty(py);
        for item in items {
            let packet = match item {
                Item::Dns(d) => {
                    if let Some(datagram) = models.dns(py, &d)? {
                        self.dns.push(datagram.unbind());
                    }
                    continue;
                }
                Item::Tcp(s) => models.packet(py, &Packet::Tcp(s.segment(buffer.bytes())))?,
                Item::Icmp(e) => models.packet(py, &Packet::Icmp(e))?,
                Item::Object(packet) => packet.into_bound(py),
                Item::Taken => continue,
            };
            out.append(packet)?;
        }
        Ok(out.into_any())
    }

    /// The next batch from the thread reading `reader` ahead (started at the first call
    /// when the reader allows it); None when no thread reads it; Some(None) at its end.
    fn read_ahead_batch<'py>(
        &mut self,
        py: Python<'py>,
        reader: &Bound<'py, Reader>,
    ) -> PyResult<Option<Option<Bound<'py, PyAny>>>> {
        let mut r = reader.borrow_mut();
        if r.ahead.is_none() {
            let Some((records, tally, pool, last)) = r.detach() else {
                return Ok(None);
            };
            let work = std::mem::take(&mut self.work);
            match Ahead::start(Box::new((records, tally, pool, last, work))) {
                Ok(ahead) => r.ahead = Some(ahead),
                Err(state) => {
                    let (records, _, _, _, work) = *state;
                    // No thread to be had (the system refused one): read here instead.
                    self.work = work;
                    r.attach(records);
                    return Ok(None);
                }
            }
        }
        let Some(batches) = r.ahead.as_mut().and_then(|a| {
            a.batches
                .get_mut()
                .unwrap_or_else(|e| e.into_inner())
                .take()
        }) else {
            return Ok(None);
        };
        let (message, batches) = py.allow_threads(move || (batches.recv(), batches));
        if let Some(ahead) = r.ahead.as_mut() {
            *ahead.batches.get_mut().unwrap_or_else(|e| e.into_inner()) = Some(batches);
        }
        match message {
            Ok(Message::Batch {
                buffer,
                items,
                tally,
                snaplen,
                secrets,
            }) => {
                r.tally = tally;
                r.ahead_snaplen = snaplen;
                r.ahead_secrets.extend(secrets);
                drop(r);
                Ok(Some(Some(self.hand_on(py, buffer, items)?)))
            }
            Ok(Message::Done(state)) => {
                let (records, work) = *state;
                self.work = work;
                r.ahead = None;
                r.attach(records);
                Ok(Some(None))
            }
            Err(_) => {
                // The thread is gone without handing its state back (it cannot panic
                // outside its catch_unwind; this is for safety only).
                r.ahead = None;
                r.ahead_done = true;
                Ok(Some(None))
            }
        }
    }
}

#[pymethods]
impl Decoder {
    /// ``segments``: ``decode`` returns SegmentBatch objects (the flow table's fast path)
    /// instead of lists of TcpSegment and IcmpError objects.
    #[new]
    #[pyo3(signature = (models, segments=false))]
    fn new(models: Py<Models>, segments: bool) -> Self {
        Decoder {
            models,
            work: Work::default(),
            dns: Vec::new(),
            segments,
        }
    }

    /// The DnsDatagram objects of the batches decoded since the last call, in capture order.
    fn take_dns<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        PyList::new(py, std::mem::take(&mut self.dns))
    }

    /// The packets of the reader's next batch of frames (a list, or a SegmentBatch when
    /// made with ``segments``); None once the reader has no more frames. With
    /// ``segments``, a file the core reads itself is read and decoded ahead on a thread
    /// (`Ahead`); the packets and everything counted are the same.
    fn decode<'py>(
        &mut self,
        py: Python<'py>,
        reader: &Bound<'py, Reader>,
    ) -> PyResult<Option<Bound<'py, PyAny>>> {
        if self.segments {
            if let Some(batch) = self.read_ahead_batch(py, reader)? {
                return Ok(batch);
            }
        }
        let batch = reader.borrow_mut().read_batch()?;
        if batch.frames.is_empty() {
            return Ok(None);
        }
        let items = self.work.decode(&batch);
        Ok(Some(self.hand_on(py, batch.buffer, items)?))
    }

    #[getter]
    fn ip_frames(&self) -> u64 {
        self.work.inner.ip_frames
    }

    /// Frame numbers of the TCP segments that repeat one just before (SPAN copies), the
    /// first MAX_COPY_FRAMES.
    #[getter]
    fn copy_frames(&self) -> Vec<u64> {
        self.work.copies.frames.clone()
    }

    #[getter]
    fn reassembled(&self) -> u64 {
        self.work.inner.reassembled
    }

    /// (reason, frames) of the frames not decoded, in the order the reasons were met.
    #[getter]
    fn undecoded(&self) -> Vec<(String, u64)> {
        self.work.inner.undecoded.clone()
    }

    /// Once the capture has been read: the warnings about fragment sets that never
    /// completed and about frames the decoder failed on.
    fn finish(&mut self) -> Vec<String> {
        let mut warnings = Vec::new();
        let work = &mut self.work;
        let incomplete = catch_unwind(AssertUnwindSafe(|| work.inner.finish())).unwrap_or_default();
        warnings.extend(decode::incomplete_warning(&incomplete));
        if let Some((frame, message)) = &self.work.first_failure {
            warnings.push(format!(
                "the packet decoder failed on {} frame(s) (an internal error: {message}; first: \
                 frame {frame}); those frames were left out",
                self.work.failed
            ));
        }
        warnings
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Models>()?;
    m.add_class::<Decoder>()?;
    m.add_class::<SegmentBatch>()?;
    m.add_function(wrap_pyfunction!(ip_start, m)?)?;
    Ok(())
}

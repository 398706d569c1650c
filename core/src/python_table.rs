//! The Python binding of the flow table (crate::tcp::table): `pcapsmtp._core.FlowTable`,
//! which pcapsmtp/tcp/flows.py's `FlowTracker` wraps. One call per packet; the events come
//! back as tuples in a list (None when there are none), which flows.py turns into its
//! `StreamData` / `StreamGap` / `FlowEnded` objects:
//!
//! - `(0, id, direction, offset, data, frame, time_ns)`: stream bytes;
//! - `(1, id, direction, offset, length, frame, time_ns, reason)`: a gap;
//! - `(2, head)`: the first event naming flow `id` (head: see `head`);
//! - `(3, id, syn_time_ns, synack_time_ns, handshake_ack_time_ns)`: handshake times changed;
//! - `(4, id, ended)`: the flow ended (ended: see `ended`);
//! - `(5, message)`: the table failed on a packet (a panic), which was left out.
//!
//! A panic inside the table becomes that last event: the packet is left out and the rest
//! of the capture is read.
//!
//! Message bodies (issue 21): `update`'s `absorb`, ``(scan, describe)`` with `scan` a
//! `MessageScan` (python_smtp) and `describe` its describer, attaches a `BodySink` to the
//! flow's client bytes (crate::tcp::table::Absorber says when a chunk is offered): while
//! the SMTP dialogue reads a DATA body or a BDAT chunk, the client's chunks go straight
//! into the message's scan, as `MessageScan.data_end` or `bdat` would feed them, and make
//! no event; the chunk that ends the message (or the BDAT chunk), gaps, and whatever follows an event of the flow not yet
//! read go out as events. A header block the scan completes is described by the Python
//! describer as before; should it raise, the call that fed the chunk (`segment`, `step`,
//! `finish`) raises it.
//!
//! Encrypted TLS records (issue 21): an `absorb` that is a `TlsRecords` (python_smtp)
//! attaches a `TlsSink`, which walks the client's and the server's records
//! (crate::tls_records) while the TLS scanner would only count them; a chunk holding any other record goes out as an
//! event, and the SMTP tracker reads the counts back before each event of the flow.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyTuple};
use pyo3::IntoPyObjectExt;

use crate::python::panic_message;
use crate::python_decode::{BatchItem, SegmentBatch};
use crate::python_smtp::{MessageScan, TlsRecords};
use crate::tcp::table::{
    self, Absorber, Addr, EndedFlow, EndpointFacts, Event, FlowHead, IcmpMatch, Ip, Limits,
    SegmentRef, Tally, COUNTED,
};

macro_rules! tuple {
    ($py:expr; $($item:expr),* $(,)?) => {
        PyTuple::new($py, [$($item.into_bound_py_any($py)?),*])
    };
}

/// A time in ns: nearly always an i64 (the fast conversion), else a wider int.
fn time_ns(value: &Bound<'_, PyAny>) -> PyResult<i128> {
    match value.extract::<i64>() {
        Ok(v) => Ok(i128::from(v)),
        Err(_) => value.extract::<i128>(),
    }
}

fn head<'py>(py: Python<'py>, h: &FlowHead) -> PyResult<Bound<'py, PyTuple>> {
    let [(ip0, port0), (ip1, port1)] = h.endpoints;
    tuple!(py;
        h.id,
        h.stream,
        PyBytes::new(py, ip0.as_slice()),
        port0,
        PyBytes::new(py, ip1.as_slice()),
        port1,
        h.client,
        h.first_frame,
        h.first_time_ns,
        h.role_from.as_str(),
        h.continues,
        h.syn_time_ns,
        h.synack_time_ns,
        h.handshake_ack_time_ns,
    )
}

fn tally<K: Copy>(t: &Tally<K>) -> Vec<(K, u64)> {
    t.entries.clone()
}

fn endpoint<'py>(
    py: Python<'py>,
    e: &EndpointFacts,
    end: &crate::tcp::flow::DirectionEnd,
    mismatches: u64,
) -> PyResult<Bound<'py, PyTuple>> {
    let handshake = e
        .handshake
        .map(|h| (h.mss, h.wscale, h.sack_permitted, h.timestamps));
    let rare = e.rare();
    let counts: Vec<(&str, u64)> = rare
        .counts
        .entries
        .iter()
        .map(|&(i, n)| (COUNTED[usize::from(i) % COUNTED.len()].1, n))
        .collect();
    let mut unacked = Tally::<u64>::default();
    for &size in &end.unacked_sizes {
        unacked.add(size);
    }
    tuple!(py;
        handshake,
        e.packets,
        e.bytes,
        e.ip_bytes,
        e.data_segments,
        e.max_segment,
        e.max_ip_len,
        end.acked.max_segment,
        end.acked.max_ip_len,
        end.acked.last_frame,
        e.ttls.entries(),
        e.df_set,
        e.df_clear,
        counts,
        tally(&rare.retransmitted_sizes),
        unacked.entries,
        e.ip_id_last,
        e.ip_id_pairs,
        e.ip_id_steps,
        rare.fragmented,
        rare.fragment_frames.clone(),
        e.stream_bytes,
        rare.gaps,
        rare.gap_bytes,
        mismatches,
        end.longest_zero_window_ns,
        rare.too_big_mtu,
        rare.max_ip_len_after_too_big,
        e.last_time_ns,
        rare.closed_frame,
        rare.peer_silent_ns,
    )
}

/// `(head, last_frame, last_time_ns, notes, dropped_notes, ignore_payload, state,
/// history, endpoints, limited)`; each note a SegmentNote's fields in order, each
/// endpoint as `endpoint` gives it, `limited` per direction `(holes, bytes)`.
fn ended<'py>(py: Python<'py>, e: &EndedFlow) -> PyResult<Bound<'py, PyTuple>> {
    let f = &e.flow;
    let h = FlowHead {
        id: e.id,
        stream: f.stream,
        endpoints: [
            (f.endpoints[0].ip, f.endpoints[0].port),
            (f.endpoints[1].ip, f.endpoints[1].port),
        ],
        client: f.client,
        first_frame: f.first_frame,
        first_time_ns: f.first_time_ns,
        role_from: f.role_from.clone(),
        continues: f.continues,
        syn_time_ns: f.syn_time_ns.get(),
        synack_time_ns: f.synack_time_ns.get(),
        handshake_ack_time_ns: f.handshake_ack_time_ns.get(),
    };
    let notes = PyList::empty(py);
    for n in &f.notes {
        notes.append(tuple!(py;
            n.frame, n.time_ns, n.direction, n.tcp_flags, n.analysis, n.seq, n.length,
            n.ip_len, n.ttl, n.ip_id, n.prev_ip_id, n.rst_ahead,
        )?)?;
    }
    let endpoints = (
        endpoint(py, &f.endpoints[0], &e.ends[0], e.mismatches[0])?,
        endpoint(py, &f.endpoints[1], &e.ends[1], e.mismatches[1])?,
    );
    tuple!(py;
        head(py, &h)?,
        f.last_frame,
        f.last_time_ns,
        notes,
        f.dropped_notes,
        f.ignore_payload,
        e.state,
        e.history.as_str(),
        endpoints,
        e.limited.to_vec(),
    )
}

fn events<'py>(py: Python<'py>, out: Vec<Event>) -> PyResult<Bound<'py, PyList>> {
    let list = PyList::empty(py);
    for event in out {
        let item = match event {
            Event::Data {
                flow,
                direction,
                offset,
                data,
                frame,
                time_ns,
            } => tuple!(py; 0u8, flow, direction, offset, PyBytes::new(py, &data), frame, time_ns)?,
            Event::Gap {
                flow,
                direction,
                offset,
                length,
                frame,
                time_ns,
                reason,
            } => tuple!(py; 1u8, flow, direction, offset, length, frame, time_ns, reason.as_str())?,
            Event::Opened(h) => tuple!(py; 2u8, head(py, &h)?)?,
            Event::Handshake {
                flow,
                syn_time_ns,
                synack_time_ns,
                handshake_ack_time_ns,
            } => tuple!(py; 3u8, flow, syn_time_ns, synack_time_ns, handshake_ack_time_ns)?,
            Event::Ended(e) => tuple!(py; 4u8, e.id, ended(py, &e)?)?,
        };
        list.append(item)?;
    }
    Ok(list)
}

fn addr(ip: &[u8], port: u16) -> Addr {
    (Ip::new(ip), port)
}

/// The first error a body sink's describer raised, for the table's caller to raise.
#[derive(Debug, Default)]
struct SinkError {
    set: AtomicBool,
    error: Mutex<Option<PyErr>>,
}

impl SinkError {
    fn keep(&self, err: PyErr) {
        if let Ok(mut slot) = self.error.lock() {
            if slot.is_none() {
                *slot = Some(err);
            }
        }
        self.set.store(true, Ordering::Relaxed);
    }

    /// The error kept, if any (taken).
    fn check(&self) -> PyResult<()> {
        if !self.set.load(Ordering::Relaxed) {
            return Ok(());
        }
        self.set.store(false, Ordering::Relaxed);
        match self.error.lock().ok().and_then(|mut slot| slot.take()) {
            Some(err) => Err(err),
            None => Ok(()),
        }
    }
}

/// A DATA body's scan attached to a flow's client bytes (see the module's docs).
#[derive(Debug)]
struct BodySink {
    scan: Py<MessageScan>,
    describe: Py<PyAny>,
    error: Arc<SinkError>,
}

impl Absorber for BodySink {
    fn absorb(&mut self, data: &[u8]) -> bool {
        Python::with_gil(|py| {
            // Borrowed elsewhere (never, as the dialogue is not running): not taken.
            let Ok(mut scan) = self.scan.bind(py).try_borrow_mut() else {
                return false;
            };
            match scan.absorb(data, self.describe.bind(py)) {
                Ok(taken) => taken,
                Err(err) => {
                    self.error.keep(err);
                    true
                }
            }
        })
    }
}

/// The TLS record walks attached to a flow's bytes, the client's and the server's
/// (python_smtp's `TlsRecords`; the scanner reads their counts back whenever it is
/// called for the flow).
#[derive(Debug)]
struct TlsSink {
    records: Py<TlsRecords>,
}

impl TlsSink {
    fn take(&self, server: bool, data: &[u8]) -> bool {
        Python::with_gil(|py| match self.records.bind(py).try_borrow_mut() {
            Ok(mut records) => records.take_from(server, data),
            Err(_) => false,
        })
    }
}

impl Absorber for TlsSink {
    fn absorb(&mut self, data: &[u8]) -> bool {
        self.take(false, data)
    }

    fn absorb_server(&mut self, data: &[u8]) -> bool {
        self.take(true, data)
    }
}

/// The flow table of pcapsmtp.tcp.flows.FlowTracker.
///
/// ``FlowTable(server_ports, limits)``, limits ``(linger_ns, linger_frames, idle_ns,
/// idle_frames, max_flows, sweep_every, max_notes, max_ended, quoted_tcp_bytes,
/// max_pending_bytes)``.
#[pyclass(module = "pcapsmtp._core")]
pub struct FlowTable {
    inner: table::FlowTable,
    error: Arc<SinkError>,
}

type LimitsIn = (i128, i128, i128, i128, usize, u64, usize, usize, u64, u64);

impl FlowTable {
    /// One segment into the table; the events it made (with the failure's), if any.
    fn run<'py>(
        &mut self,
        py: Python<'py>,
        segment: &SegmentRef<'_>,
    ) -> PyResult<Option<Bound<'py, PyList>>> {
        let inner = &mut self.inner;
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| inner.segment(segment))) {
            let what = format!(
                "the flow table failed on frame {}: {}; the frame was left out",
                segment.frame,
                panic_message(&panic)
            );
            return Ok(Some(self.failed(py, what)?));
        }
        self.error.check()?;
        if !self.inner.ready() {
            return Ok(None);
        }
        Ok(Some(events(py, self.inner.take())?))
    }

    fn failed<'py>(&mut self, py: Python<'py>, what: String) -> PyResult<Bound<'py, PyList>> {
        let list = events(py, self.inner.take())?;
        list.append((5u8, what))?;
        Ok(list)
    }
}

#[pymethods]
impl FlowTable {
    #[new]
    fn new(server_ports: Vec<u16>, limits: LimitsIn) -> Self {
        let limits = Limits {
            linger_ns: limits.0,
            linger_frames: limits.1,
            idle_ns: limits.2,
            idle_frames: limits.3,
            max_flows: limits.4,
            sweep_every: limits.5,
            max_notes: limits.6,
            max_ended: limits.7,
            quoted_tcp_bytes: limits.8,
            max_pending_bytes: limits.9,
        };
        FlowTable {
            inner: table::FlowTable::new(server_ports, limits),
            error: Arc::default(),
        }
    }

    /// One TCP segment (a pcapsmtp.capture.TcpSegment): its events, None when none.
    fn segment<'py>(
        &mut self,
        py: Python<'py>,
        seg: &Bound<'py, PyAny>,
    ) -> PyResult<Option<Bound<'py, PyList>>> {
        let get = |name: &Bound<'py, pyo3::types::PyString>| seg.getattr(name);
        let options = get(intern!(py, "options"))?;
        let payload = get(intern!(py, "payload"))?;
        let src = get(intern!(py, "src"))?;
        let dst = get(intern!(py, "dst"))?;
        let fragments = get(intern!(py, "fragment_frames"))?;
        let fragment_frames: Vec<u64> = if fragments.is_truthy()? {
            fragments.extract()?
        } else {
            Vec::new()
        };
        let segment = SegmentRef {
            frame: get(intern!(py, "frame"))?.extract()?,
            time_ns: time_ns(&get(intern!(py, "time_ns"))?)?,
            version: get(intern!(py, "version"))?.extract()?,
            src: Ip::new(src.extract::<&[u8]>()?),
            dst: Ip::new(dst.extract::<&[u8]>()?),
            sport: get(intern!(py, "sport"))?.extract()?,
            dport: get(intern!(py, "dport"))?.extract()?,
            seq: get(intern!(py, "seq"))?.extract()?,
            ack: get(intern!(py, "ack"))?.extract()?,
            flags: get(intern!(py, "flags"))?.extract()?,
            window: get(intern!(py, "window"))?.extract()?,
            options: options.extract::<&[u8]>()?,
            payload: payload.extract::<&[u8]>()?,
            length: get(intern!(py, "length"))?.extract()?,
            ttl: get(intern!(py, "ttl"))?.extract()?,
            df: get(intern!(py, "df"))?.is_truthy()?,
            // As the fast path: an IPv6 fragment's 32-bit identification keeps its low 16 bits.
            ip_id: (get(intern!(py, "ip_id"))?.extract::<u32>()? & 0xffff) as u16,
            ip_len: get(intern!(py, "ip_len"))?.extract()?,
            fragment_frames: &fragment_frames,
        };
        self.run(py, &segment)
    }

    /// The fast path: a decoder's SegmentBatch, from where the last call stopped up to
    /// item ``end``. Stops after the first segment that makes events (the list of them),
    /// or at an ICMP error (its object, for the caller to hand to ``icmp``); None once
    /// ``end`` is reached. So the caller sees every packet's events before the next
    /// packet is read, and its changes to a flow (``update``) apply from that packet on,
    /// as with ``segment``.
    fn step<'py>(
        &mut self,
        py: Python<'py>,
        batch: &Bound<'py, SegmentBatch>,
        end: usize,
    ) -> PyResult<Option<Bound<'py, PyAny>>> {
        let mut batch = batch.borrow_mut();
        let end = end.min(batch.items.len());
        while batch.pos < end {
            let at = batch.pos;
            batch.pos += 1;
            match &batch.items[at] {
                BatchItem::Tcp(s) => {
                    if let Some(found) = self.run(py, &batch.segment_ref(s))? {
                        return Ok(Some(found.into_any()));
                    }
                }
                BatchItem::Object(packet) => return Ok(Some(packet.bind(py).clone())),
                _ => {} // none once handed on (python_decode's `hand_on`)
            }
        }
        Ok(None)
    }

    /// An ICMP error quoting a TCP header: ``(0, id, head or None)`` tied to a live flow,
    /// ``(1,)`` unmatched, ``(2, stream, started)`` unmatched with a stream number.
    #[allow(clippy::too_many_arguments)]
    fn icmp<'py>(
        &mut self,
        py: Python<'py>,
        frame: u64,
        src: &[u8],
        sport: u16,
        dst: &[u8],
        dport: u16,
        quoted_bytes: u64,
        too_big_mtu: Option<u64>,
    ) -> PyResult<Bound<'py, PyTuple>> {
        let found = self.inner.icmp(
            frame,
            addr(src, sport),
            addr(dst, dport),
            quoted_bytes,
            too_big_mtu,
        );
        match found {
            IcmpMatch::Live(id, h) => {
                let h = h.map(|h| head(py, &h)).transpose()?;
                tuple!(py; 0u8, id, h)
            }
            IcmpMatch::Unmatched => tuple!(py; 1u8),
            IcmpMatch::Numbered { stream, started } => tuple!(py; 2u8, stream, started),
        }
    }

    /// The live flow of a segment: ``(id, head or None)``, None when there is none.
    fn flow_of<'py>(
        &mut self,
        py: Python<'py>,
        src: &[u8],
        sport: u16,
        dst: &[u8],
        dport: u16,
    ) -> PyResult<Option<Bound<'py, PyTuple>>> {
        let Some((id, h)) = self.inner.flow_id(addr(src, sport), addr(dst, dport)) else {
            return Ok(None);
        };
        let h = h.map(|h| head(py, &h)).transpose()?;
        Ok(Some(tuple!(py; id, h)?))
    }

    /// The consumer's changes to live flow ``id`` (between ``a`` and ``b``): its client,
    /// how that was found, whether its payload is ignored from now on, and ``absorb``:
    /// None, ``(scan, describe)`` to feed its client's bytes to (the module's docs), or a
    /// ``TlsRecords`` to walk them as encrypted TLS records.
    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (a, a_port, b, b_port, id, client, role_from, ignore_payload, absorb=None))]
    fn update(
        &mut self,
        a: &[u8],
        a_port: u16,
        b: &[u8],
        b_port: u16,
        id: u64,
        client: usize,
        role_from: &str,
        ignore_payload: bool,
        absorb: Option<Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let (a, b) = (addr(a, a_port), addr(b, b_port));
        let sink = match absorb {
            None => None,
            Some(sink) => Some(match sink.downcast::<TlsRecords>() {
                Ok(records) => Box::new(TlsSink {
                    records: records.clone().unbind(),
                }) as Box<dyn Absorber>,
                Err(_) => {
                    let (scan, describe): (Py<MessageScan>, Py<PyAny>) = sink.extract()?;
                    Box::new(BodySink {
                        scan,
                        describe,
                        error: Arc::clone(&self.error),
                    }) as Box<dyn Absorber>
                }
            }),
        };
        self.inner
            .update(a, b, id, client, role_from, ignore_payload);
        self.inner.absorb(a, b, id, sink);
        Ok(())
    }

    /// The capture ended: up to ``max`` open flows end (in the order they began);
    /// ``(done, events)``, done once no flow is left.
    fn finish<'py>(&mut self, py: Python<'py>, max: usize) -> PyResult<(bool, Bound<'py, PyList>)> {
        let inner = &mut self.inner;
        match catch_unwind(AssertUnwindSafe(|| inner.finish_some(max))) {
            Ok(done) => {
                self.error.check()?;
                Ok((done, events(py, self.inner.take())?))
            }
            Err(panic) => {
                let what = format!(
                    "the flow table failed at the end of the capture: {}",
                    panic_message(&panic)
                );
                self.inner = table::FlowTable::new(Vec::new(), Limits::default());
                Ok((true, self.failed(py, what)?))
            }
        }
    }

    /// ``sniff(limit, hold)``: the events of a flow on no server port are held while its
    /// first ``limit`` bytes per direction could not be SMTP (crate::tcp::sniff).
    fn sniff(&mut self, limit: usize, hold: usize) {
        self.inner.sniff(limit, hold);
    }

    /// Flows whose events are held now (``sniff``).
    #[getter]
    fn held(&self) -> usize {
        self.inner.held()
    }

    /// Stream numbers given so far.
    #[getter]
    fn streams(&self) -> u64 {
        self.inner.streams
    }

    /// Flows ended early because the table was full.
    #[getter]
    fn evicted(&self) -> u64 {
        self.inner.evicted
    }

    /// Flows whose client's bytes go to a sink (``update``'s ``absorb``) now.
    #[getter]
    fn absorbing(&self) -> usize {
        self.inner.absorbing()
    }

    /// Flows open now.
    #[getter]
    fn open(&self) -> usize {
        self.inner.open()
    }
}

//! The Python binding of the per-segment TCP analysis (crate::tcp): `FlowAnalysis` for the
//! flow table of pcapsmtp.tcp.flows, `ConnectionState` for pcapsmtp.tcp.state and
//! `tcp_options` for the handshake options.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::tcp::analysis::Segment;
use crate::tcp::conn_state;
use crate::tcp::flow::{self, SegmentIn};
use crate::tcp::options::parse_options;

/// A time in ns: nearly always an i64 (the fast conversion), else a wider int.
fn time_ns(value: &Bound<'_, PyAny>) -> PyResult<i128> {
    match value.extract::<i64>() {
        Ok(v) => Ok(i128::from(v)),
        Err(_) => value.extract::<i128>(),
    }
}

/// The per-segment analysis of one flow (pcapsmtp.tcp.flows keeps one per live flow).
///
/// ``FlowAnalysis(flipped, previous=None)``: ``flipped`` when the client is endpoint 1;
/// ``previous``, the retired analysis of an ended flow of the same 4-tuple whose sequence
/// analysis this one continues.
#[pyclass(module = "pcapsmtp._core")]
pub struct FlowAnalysis {
    inner: flow::FlowAnalysis,
}

#[pymethods]
impl FlowAnalysis {
    #[new]
    #[pyo3(signature = (flipped, previous=None))]
    fn new(flipped: bool, previous: Option<PyRef<'_, FlowAnalysis>>) -> Self {
        let inner = match previous {
            Some(previous) => {
                flow::FlowAnalysis::continuing(previous.inner.sequence.clone(), flipped)
            }
            None => flow::FlowAnalysis::new(flipped),
        };
        FlowAnalysis { inner }
    }

    /// One segment: its analysis flags (pcapsmtp.tcp.model.Flag values as an int).
    /// ``wscale``: the window scale of a SYN's options.
    #[allow(clippy::too_many_arguments)]
    fn segment(
        &mut self,
        direction: usize,
        is_client: bool,
        frame: u64,
        time: &Bound<'_, PyAny>,
        seq: u32,
        ack: u32,
        length: u64,
        flags: u16,
        window: u16,
        ip_len: u64,
        reused: bool,
        wscale: Option<u8>,
    ) -> PyResult<u16> {
        let segment = SegmentIn {
            segment: Segment {
                frame,
                time_ns: time_ns(time)?,
                seq,
                ack,
                length,
                flags,
                window,
            },
            direction,
            is_client,
            ip_len,
            reused,
            wscale,
        };
        Ok(self.inner.segment(&segment))
    }

    /// A SYN of ``direction`` with another initial sequence number than its side's first.
    fn reuses(&self, direction: usize, seq: u32) -> bool {
        self.inner.sequence.reuses(direction, seq)
    }

    /// A segment of a flow whose analysis stopped: the initial sequence numbers only.
    fn number_only(&mut self, direction: usize, seq: u32, ack: u32, flags: u16) {
        self.inner.number_only(direction, seq, ack, flags);
    }

    /// The flow ended at ``last_time_ns``: ``(conn_state, history, directions)``, each
    /// direction ``(max_acked_segment, max_acked_ip_len, last_acked_frame,
    /// longest_zero_window_ns, unacked_sizes)``.
    #[allow(clippy::type_complexity)]
    fn end(
        &self,
        last_time_ns: &Bound<'_, PyAny>,
        client: usize,
    ) -> PyResult<(
        &'static str,
        String,
        Vec<(u64, u64, Option<u64>, i128, Vec<u64>)>,
    )> {
        let ends = self.inner.end(time_ns(last_time_ns)?);
        let directions = ends
            .into_iter()
            .map(|e| {
                (
                    e.acked.max_segment,
                    e.acked.max_ip_len,
                    e.acked.last_frame,
                    e.longest_zero_window_ns,
                    e.unacked_sizes,
                )
            })
            .collect();
        Ok((
            self.inner.conn.conn_state(client),
            self.inner.conn.history.clone(),
            directions,
        ))
    }

    /// Record a history letter the flow table found (``g``: a gap in the stream).
    fn record(&mut self, letter: &str, is_client: bool) -> PyResult<()> {
        record(&mut self.inner.conn, letter, is_client, None)
    }

    /// Keep only what a later flow of the same 4-tuple continues.
    fn retire(&mut self) {
        self.inner.retire();
    }
}

fn record(
    conn: &mut conn_state::ConnectionState,
    letter: &str,
    is_client: bool,
    seq: Option<u32>,
) -> PyResult<()> {
    match letter.as_bytes() {
        [byte] if conn.record(*byte, is_client, seq) => Ok(()),
        _ => Err(PyValueError::new_err(format!(
            "not a history letter: {letter:?}"
        ))),
    }
}

/// Both endpoints' states and Zeek's history string, fed segment by segment.
#[pyclass(module = "pcapsmtp._core")]
pub struct ConnectionState {
    inner: conn_state::ConnectionState,
}

#[pymethods]
impl ConnectionState {
    #[new]
    fn new(flipped: bool) -> Self {
        ConnectionState {
            inner: conn_state::ConnectionState::new(flipped),
        }
    }

    #[pyo3(signature = (letter, is_client, seq=None))]
    fn record(&mut self, letter: &str, is_client: bool, seq: Option<u32>) -> PyResult<()> {
        record(&mut self.inner, letter, is_client, seq)
    }

    fn segment(&mut self, sender: usize, is_client: bool, flags: u16, seq: u32, length: u64) {
        self.inner.segment(sender, is_client, flags, seq, length);
    }

    /// Zeek's conn_state, the endpoint ``client`` taken as Zeek's originator.
    fn conn_state(&self, client: usize) -> &'static str {
        self.inner.conn_state(client)
    }

    #[getter]
    fn history(&self) -> String {
        self.inner.history.clone()
    }

    /// Each endpoint's state (pcapsmtp.tcp.state.EndpointState values).
    #[getter]
    fn states(&self) -> Vec<u32> {
        // Not Vec<u8>: that would be bytes.
        self.inner.states.iter().map(|&s| u32::from(s)).collect()
    }

    /// Payload bytes each endpoint sent.
    #[getter]
    fn sizes(&self) -> Vec<u64> {
        self.inner.sizes.to_vec()
    }
}

/// The handshake options of a SYN: ``(mss, wscale, sack_permitted, timestamps)``.
#[pyfunction]
fn tcp_options(options: &[u8]) -> (Option<u16>, Option<u8>, bool, bool) {
    let found = parse_options(options);
    (
        found.mss,
        found.wscale,
        found.sack_permitted,
        found.timestamps,
    )
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<FlowAnalysis>()?;
    m.add_class::<ConnectionState>()?;
    m.add_function(wrap_pyfunction!(tcp_options, m)?)?;
    Ok(())
}

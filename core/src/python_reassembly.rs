//! The Python binding of the stream reassembly: `pcapsmtp._core.StreamReassembler` and
//! `pcapsmtp._core.Chunk`, driven by `pcapsmtp/tcp/flows.py` one call a segment and read
//! back in batches (`take()`: the chunks since the last call, bytes only where there are).

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyString};

use crate::reassembly::{self, Content};

/// A time in nanoseconds: an int of any size the reader gives (i64 on the fast path;
/// a timestamp beyond it, from a damaged capture, still fits i128).
fn time(value: &Bound<'_, PyAny>) -> PyResult<i128> {
    match value.extract::<i64>() {
        Ok(t) => Ok(i128::from(t)),
        Err(_) => value.extract::<i128>(),
    }
}

/// Contiguous bytes, or a hole when ``data`` is None (``reason`` says why).
#[pyclass(module = "pcapsmtp._core", name = "Chunk", frozen)]
pub struct Chunk {
    #[pyo3(get)]
    offset: u64,
    #[pyo3(get)]
    length: u64,
    #[pyo3(get)]
    data: Option<Py<PyBytes>>,
    #[pyo3(get)]
    frame: u64,
    #[pyo3(get)]
    time_ns: i128,
    #[pyo3(get)]
    reason: String,
}

#[pymethods]
impl Chunk {
    #[new]
    #[pyo3(signature = (offset, length, data, frame, time_ns, reason=String::new()))]
    fn new(
        offset: u64,
        length: u64,
        data: Option<Py<PyBytes>>,
        frame: u64,
        time_ns: &Bound<'_, PyAny>,
        reason: String,
    ) -> PyResult<Self> {
        Ok(Chunk {
            offset,
            length,
            data,
            frame,
            time_ns: time(time_ns)?,
            reason,
        })
    }

    fn __eq__(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<bool> {
        let Ok(other) = other.downcast::<Chunk>() else {
            return Ok(false);
        };
        let other = other.get();
        let same_data = match (&self.data, &other.data) {
            (None, None) => true,
            (Some(a), Some(b)) => a.as_bytes(py) == b.as_bytes(py),
            _ => false,
        };
        Ok(same_data
            && (
                self.offset,
                self.length,
                self.frame,
                self.time_ns,
                &self.reason,
            ) == (
                other.offset,
                other.length,
                other.frame,
                other.time_ns,
                &other.reason,
            ))
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let data = match &self.data {
            Some(d) => d.bind(py).repr()?.to_string(),
            None => "None".into(),
        };
        let reason = PyString::new(py, &self.reason).repr()?;
        Ok(format!(
            "Chunk(offset={}, length={}, data={}, frame={}, time_ns={}, reason={})",
            self.offset, self.length, data, self.frame, self.time_ns, reason
        ))
    }
}

/// One direction of a TCP connection (see `reassembly`): feed segments in capture
/// order, ``take()`` the chunks in stream order. ``StreamReassembler(max_pending_bytes)``;
/// pcapsmtp/tcp/reassembly.py subclasses it to pass its module's bound.
#[pyclass(module = "pcapsmtp._core", name = "StreamReassembler", subclass)]
pub struct StreamReassembler {
    inner: reassembly::StreamReassembler,
}

#[pymethods]
impl StreamReassembler {
    #[new]
    #[pyo3(signature = (max_pending_bytes=reassembly::MAX_PENDING_BYTES))]
    fn new(max_pending_bytes: u64) -> Self {
        StreamReassembler {
            inner: reassembly::StreamReassembler::new(max_pending_bytes),
        }
    }

    /// The SYN's sequence number: data starts one after it.
    fn start(&mut self, isn: u32) {
        self.inner.start(isn);
    }

    /// The stream offset of ``seq``; None before the base is known.
    fn offset(&self, seq: u32) -> Option<i64> {
        self.inner.offset(seq)
    }

    /// A data segment; ``data`` may be shorter than ``wire_len`` under a snap length.
    fn segment(
        &mut self,
        seq: u32,
        data: &[u8],
        wire_len: u64,
        frame: u64,
        time_ns: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        self.inner
            .segment(seq, data, wire_len, frame, time(time_ns)?);
        Ok(())
    }

    fn fin(&mut self, seq: u32) {
        self.inner.fin(seq);
    }

    /// The peer acknowledged up to ``ack``: bytes before it that we lack were not captured.
    fn acknowledged(&mut self, ack: u32, frame: u64, time_ns: &Bound<'_, PyAny>) -> PyResult<()> {
        self.inner.acknowledged(ack, frame, time(time_ns)?);
        Ok(())
    }

    /// The flow ended: whatever waits behind a hole is delivered after a gap.
    fn finish(&mut self, frame: u64, time_ns: &Bound<'_, PyAny>) -> PyResult<()> {
        self.inner.finish(frame, time(time_ns)?);
        Ok(())
    }

    /// The connection closed: drop the payload copies kept to compare retransmissions with.
    fn release(&mut self) {
        self.inner.release();
    }

    /// The chunks delivered since the last call, as a list of ``Chunk``.
    fn take<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let out = PyList::empty(py);
        for chunk in self.inner.take() {
            let (data, reason) = match chunk.content {
                Content::Data(bytes) => (Some(PyBytes::new(py, &bytes).unbind()), String::new()),
                Content::Gap(reason) => (None, reason.as_str().to_owned()),
            };
            out.append(Chunk {
                offset: chunk.offset,
                length: chunk.length,
                data,
                frame: chunk.frame,
                time_ns: chunk.time_ns,
                reason,
            })?;
        }
        Ok(out)
    }

    /// How many chunks wait for ``take()`` (true when any do).
    #[getter]
    fn out(&self) -> usize {
        self.inner.ready()
    }

    /// Sequence number of stream offset 0; None before a SYN or a data segment.
    #[getter]
    fn base(&self) -> Option<u32> {
        self.inner.base()
    }

    /// Offset of the next byte to deliver.
    #[getter]
    fn expected(&self) -> u64 {
        self.inner.expected()
    }

    #[getter]
    fn fin_offset(&self) -> Option<i64> {
        self.inner.fin_offset()
    }

    /// Retransmitted bytes that differ from the first copy.
    #[getter]
    fn mismatches(&self) -> u64 {
        self.inner.mismatches()
    }

    /// Holes given up at the buffer bound.
    #[getter]
    fn limited(&self) -> u64 {
        self.inner.limited()
    }

    /// The bytes of those holes.
    #[getter]
    fn limited_bytes(&self) -> u64 {
        self.inner.limited_bytes()
    }

    /// What the held segments are charged against the bound.
    #[getter]
    fn _pending_bytes(&self) -> u64 {
        self.inner.pending_bytes()
    }

    /// The held segments: offset -> (data, wire length, frame, time), for tests.
    #[getter]
    fn _pending<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let out = PyDict::new(py);
        for (offset, held) in self.inner.pending() {
            out.set_item(
                offset,
                (
                    PyBytes::new(py, &held.data),
                    held.wire_len,
                    held.frame,
                    held.time_ns,
                ),
            )?;
        }
        Ok(out)
    }
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Chunk>()?;
    m.add_class::<StreamReassembler>()?;
    m.add("MAX_PENDING_BYTES", reassembly::MAX_PENDING_BYTES)?;
    m.add("SEGMENT_OVERHEAD", reassembly::SEGMENT_OVERHEAD)?;
    m.add("RECENT_SEGMENTS", reassembly::RECENT_SEGMENTS)?;
    Ok(())
}

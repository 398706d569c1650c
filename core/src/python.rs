//! The Python binding: `pcapsmtp._core.Reader`, frames in batches.

use std::fs::File;
use std::io::{self, Read};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList};

use crate::input::{self, Limits, Stream};
use crate::python_decode::Ahead;
use crate::reader::{Format, FrameAt, Reader as RecordReader, Secrets};
use crate::tally::Tally;

/// Frames per batch, and the captured bytes after which a batch ends early. A batch
/// normally ends sooner, after the last record wholly in hand of one read of the input
/// (`Reader::record_in_hand`): 1 MiB, a thousand frames of a mixed capture (at most 1024
/// until the reader read into its window, when a batch ended where a frame count said and
/// the bytes after it had to be copied over to the next one).
const BATCH_FRAMES: usize = 16384;
const BATCH_BYTES: usize = 4 << 20;
/// Batch buffers kept for reuse, and the largest kept (a pcapng block of up to
/// MAX_BLOCK_LEN grows one beyond it): a buffer reused is memory already mapped, where a
/// new one costs the kernel a page fault and a cleared page every 4 KiB.
const POOLED_BUFFERS: usize = 4;
const POOLED_CAPACITY: usize = 2 * BATCH_BYTES;

/// The batch buffers no batch holds any more.
pub(crate) type Pool = Arc<Mutex<Vec<Vec<u8>>>>;

/// A batch's buffer: the captured bytes of its frames one after the other (for pcapng,
/// with the rest of their blocks). Back to the pool when its batch is dropped.
pub(crate) struct Buffer {
    data: Vec<u8>,
    pool: Pool,
}

impl Buffer {
    /// A buffer of the pool (or a new one) to read into; its contents do not matter
    /// (it is not cleared: the reader writes over it).
    fn from_pool(pool: &Pool) -> Vec<u8> {
        pool.lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop()
            .unwrap_or_default()
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        &self.data
    }
}

impl Drop for Buffer {
    fn drop(&mut self) {
        if self.data.capacity() <= POOLED_CAPACITY {
            let mut pool = self.pool.lock().unwrap_or_else(|e| e.into_inner());
            if pool.len() < POOLED_BUFFERS {
                pool.push(std::mem::take(&mut self.data));
            }
        }
    }
}

/// The frames of one batch, their bytes in one buffer.
pub(crate) struct FrameBatch {
    pub(crate) buffer: Buffer,
    pub(crate) frames: Vec<FrameAt>,
}

impl FrameBatch {
    /// The batch's frames counted in `tally`.
    pub(crate) fn count(&self, tally: &mut Tally) {
        for frame in &self.frames {
            tally.count(&frame.view(self.buffer.bytes()));
        }
    }
}

/// The next frames of `records` (none at the end), their bytes in a buffer of `pool`. A
/// panic inside the reader ends the reading with a warning.
pub(crate) fn read_frames(
    records: &mut RecordReader<Stream>,
    pool: &Pool,
    last_frames: &mut usize,
) -> FrameBatch {
    // Room for as many frames as the last batch had: no growing (and copying) per batch.
    let mut frames = Vec::with_capacity((*last_frames).max(16));
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        records.next_frames_at(&mut frames, BATCH_FRAMES, BATCH_BYTES)
    }));
    if let Err(panic) = outcome {
        let message = panic_message(&panic);
        let count = records.count() + frames.len() as u64;
        records.stop(format!(
            "the capture reader failed after frame {count} (an internal error: {message}); \
             the frames before it were read"
        ));
    }
    *last_frames = frames.len();
    let data = records.take_window(Buffer::from_pool(pool));
    FrameBatch {
        buffer: Buffer {
            data,
            pool: pool.clone(),
        },
        frames,
    }
}

/// A Python binary stream (a file, ``sys.stdin.buffer``, a pipe) read as a Rust reader.
/// An exception that is no Exception (KeyboardInterrupt, SystemExit) is kept to be raised
/// again once the reader returns to Python; any other becomes an input error.
struct PyStream {
    stream: Py<PyAny>,
    method: &'static str,
    interrupt: Arc<Mutex<Option<PyErr>>>,
}

impl Read for PyStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        Python::with_gil(|py| {
            let result = self.stream.call_method1(py, self.method, (buf.len(),));
            let data = match result {
                Ok(data) => data,
                Err(err) => {
                    // str(exception), as Python code would show it.
                    let message = err
                        .value(py)
                        .str()
                        .map(|s| s.to_string())
                        .unwrap_or_else(|_| err.to_string());
                    if !err.is_instance_of::<PyException>(py) {
                        *self.interrupt.lock().unwrap_or_else(|e| e.into_inner()) = Some(err);
                    }
                    return Err(io::Error::other(message));
                }
            };
            if data.is_none(py) {
                return Ok(0); // a non-blocking stream with nothing yet: taken as its end
            }
            let bytes = data
                .extract::<&[u8]>(py)
                .map_err(|e| io::Error::other(e.to_string()))?;
            let n = bytes.len().min(buf.len());
            buf[..n].copy_from_slice(&bytes[..n]);
            Ok(n)
        })
    }
}

/// Reads a capture from a Python binary stream: sniffs compression and format at once,
/// then hands out frames in batches.
///
/// ``Reader(stream, frame_class, frame_offset, min_inflated, max_inflation, path)``: frames
/// are built by calling ``frame_class(number, time_ns, linktype, data, wire_len,
/// interface)``. With ``path``, the regular file ``stream`` was opened from, the reader
/// opens and reads that file itself (no Python call and no copy per chunk); the stream
/// is read when ``path`` is not a regular file.
/// An input that cannot be decompressed at all sets ``open_error``; one that is no capture
/// leaves ``format`` None (``head`` holds its first bytes). A panic inside the reader ends
/// the reading with a warning, never the process.
#[pyclass(module = "pcapsmtp._core")]
pub struct Reader {
    records: Mutex<Option<RecordReader<Stream>>>,
    frame_class: Py<PyAny>,
    interrupt: Arc<Mutex<Option<PyErr>>>,
    raw_bytes: Arc<std::sync::atomic::AtomicU64>,
    #[pyo3(get)]
    compression: Option<&'static str>,
    #[pyo3(get)]
    format: Option<&'static str>,
    head: Vec<u8>,
    #[pyo3(get)]
    open_error: Option<String>,
    pub(crate) tally: Tally,
    pool: Pool,
    /// Frames in the last batch read.
    last_frames: usize,
    /// The input is a file the core reads itself (no Python call to read it): its batches
    /// can be read and decoded ahead on a thread of their own (`python_decode::Ahead`).
    in_rust: bool,
    /// While a thread reads ahead: it, and the snap length and decryption secrets of the
    /// batches it has handed on (the record reader is the thread's until it ends).
    pub(crate) ahead: Option<Ahead>,
    pub(crate) ahead_snaplen: Option<u32>,
    pub(crate) ahead_secrets: Vec<Secrets>,
    /// A thread has read this input to its end (or stopped): it is not started again.
    pub(crate) ahead_done: bool,
}

#[pymethods]
impl Reader {
    #[new]
    #[pyo3(signature = (stream, frame_class, frame_offset=0, min_inflated=16<<20, max_inflation=100, path=None))]
    fn new(
        py: Python<'_>,
        stream: Py<PyAny>,
        frame_class: Py<PyAny>,
        frame_offset: u64,
        min_inflated: u64,
        max_inflation: u64,
        path: Option<PathBuf>,
    ) -> PyResult<Self> {
        let method = if stream.bind(py).hasattr("read1")? {
            "read1"
        } else {
            "read"
        };
        let interrupt = Arc::new(Mutex::new(None));
        let file = path.as_deref().and_then(regular_file);
        let in_rust = file.is_some();
        let source: Box<dyn Read + Send> = match file {
            Some(file) => Box::new(file),
            None => Box::new(PyStream {
                stream,
                method,
                interrupt: interrupt.clone(),
            }),
        };
        let limits = Limits {
            min_inflated,
            max_inflation,
        };
        let opened = catch_unwind(AssertUnwindSafe(|| input::open(source, limits)));
        let mut reader = Reader {
            records: Mutex::new(None),
            frame_class,
            interrupt,
            raw_bytes: Arc::default(),
            compression: None,
            format: None,
            head: Vec::new(),
            open_error: None,
            tally: Tally::default(),
            pool: Pool::default(),
            last_frames: 0,
            in_rust,
            ahead: None,
            ahead_snaplen: None,
            ahead_secrets: Vec::new(),
            ahead_done: false,
        };
        reader.raise_interrupt()?;
        match opened {
            Err(panic) => {
                reader.open_error = Some(format!("cannot read: {}", panic_message(&panic)))
            }
            Ok(Err(e)) => {
                reader.open_error = Some(format!("cannot decompress: {}", input::describe(&e)))
            }
            Ok(Ok(opened)) => {
                reader.compression = opened.compression;
                reader.raw_bytes = opened.raw_bytes;
                reader.head = opened.head;
                if let Some(format) = Format::sniff(&reader.head) {
                    reader.format = Some(format.name());
                    *reader.records.get_mut().unwrap_or_else(|e| e.into_inner()) = Some(
                        RecordReader::new(opened.stream, format, opened.compression, frame_offset),
                    );
                }
            }
        }
        Ok(reader)
    }

    /// Stops reading and lets go of the input (a file the reader opened itself is closed).
    fn close(&mut self) {
        self.ahead = None; // the thread ends (and closes the file) before this returns
        *self.records.get_mut().unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// The first bytes of the (decompressed) input: what the format was sniffed from.
    #[getter]
    fn head<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.head)
    }

    /// Bytes read from the stream so far (compressed bytes when it is compressed).
    #[getter]
    fn raw_position(&self) -> u64 {
        self.raw_bytes.load(Ordering::Relaxed)
    }

    /// The largest snap length announced so far.
    #[getter]
    fn snaplen(&self) -> Option<u32> {
        match self
            .records
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
        {
            Some(records) => records.snaplen(),
            None => self.ahead_snaplen,
        }
    }

    /// The next frames, at most ``BATCH_FRAMES`` of them; an empty list at the end.
    fn next_batch<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let batch = PyList::empty(py);
        let class = self.frame_class.bind(py).clone();
        let read = self.read_batch()?;
        for f in &read.frames {
            let data = PyBytes::new(py, f.view(read.buffer.bytes()).data);
            batch.append(class.call1((
                f.number,
                f.time_ns,
                f.linktype,
                data,
                f.wire_len,
                f.interface,
            ))?)?;
        }
        Ok(batch)
    }

    /// What CaptureInfo counts of the frames read so far: (frames, first time, last time,
    /// [(link type, frames)], truncated, most bytes kept of a cut frame, frames whose
    /// time is not a date, the first of them, (frames whose time goes back, the first of
    /// them, the largest step back in ns)).
    #[allow(clippy::type_complexity)]
    fn tally(
        &self,
    ) -> (
        u64,
        Option<i128>,
        Option<i128>,
        Vec<(i64, u64)>,
        u64,
        usize,
        u64,
        u64,
        (u64, u64, i128),
    ) {
        let t = &self.tally;
        (
            t.frames,
            t.first_time_ns,
            t.last_time_ns,
            t.link_types.clone(),
            t.truncated,
            t.kept,
            t.undated,
            t.first_undated,
            (t.backwards, t.first_backwards, t.most_backwards_ns),
        )
    }

    /// Warnings since the last call, each one line: what damage or a limit cut off.
    fn take_warnings(&mut self) -> Vec<String> {
        self.records
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .as_mut()
            .map(|r| r.take_warnings())
            .unwrap_or_default()
    }

    /// Decryption Secrets Blocks since the last call, as (secrets type, data).
    fn take_secrets<'py>(&mut self, py: Python<'py>) -> Vec<(u32, Bound<'py, PyBytes>)> {
        let mut secrets = std::mem::take(&mut self.ahead_secrets);
        if let Some(records) = self
            .records
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .as_mut()
        {
            secrets.extend(records.take_secrets());
        }
        secrets
            .into_iter()
            .map(|s| (s.kind, PyBytes::new(py, &s.data)))
            .collect()
    }
}

impl Reader {
    /// The next frames, counted in the tally; none at the end. A panic inside the reader
    /// ends the reading with a warning.
    pub(crate) fn read_batch(&mut self) -> PyResult<FrameBatch> {
        let batch = match self
            .records
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .as_mut()
        {
            None => FrameBatch {
                buffer: Buffer {
                    data: Vec::new(),
                    pool: self.pool.clone(),
                },
                frames: Vec::new(),
            },
            Some(records) => read_frames(records, &self.pool, &mut self.last_frames),
        };
        self.raise_interrupt()?;
        batch.count(&mut self.tally);
        Ok(batch)
    }

    /// What a thread reading ahead needs, taken from the reader (None when the input is
    /// not a file the core reads, or a thread has read it already): the record reader,
    /// the tally so far, the buffer pool and the size of the last batch.
    pub(crate) fn detach(&mut self) -> Option<(RecordReader<Stream>, Tally, Pool, usize)> {
        if !self.in_rust || self.ahead_done || self.ahead.is_some() {
            return None;
        }
        let records = self
            .records
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .take()?;
        Some((
            records,
            self.tally.clone(),
            self.pool.clone(),
            self.last_frames,
        ))
    }

    /// The record reader back from the thread that read ahead, at its end.
    pub(crate) fn attach(&mut self, records: RecordReader<Stream>) {
        *self.records.get_mut().unwrap_or_else(|e| e.into_inner()) = Some(records);
        self.ahead_done = true;
    }

    fn raise_interrupt(&mut self) -> PyResult<()> {
        match self
            .interrupt
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            Some(err) => {
                if let Some(records) = self
                    .records
                    .get_mut()
                    .unwrap_or_else(|e| e.into_inner())
                    .as_mut()
                {
                    records.stop(String::new());
                    records.take_warnings();
                }
                Err(err)
            }
            None => Ok(()),
        }
    }
}

/// The regular file at `path`, opened for reading; None for anything else (a pipe, a
/// device) or when it cannot be opened: the Python stream is read then.
fn regular_file(path: &Path) -> Option<File> {
    let file = File::open(path).ok()?;
    file.metadata().ok()?.is_file().then_some(file)
}

pub(crate) fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic".into()
    }
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Reader>()?;
    crate::python_decode::register(m)?;
    crate::python_reassembly::register(m)?;
    crate::python_smtp::register(m)?;
    crate::python_tcp::register(m)?;
    m.add("MAX_RECORD_LEN", crate::reader::MAX_RECORD_LEN)?;
    m.add("MAX_BLOCK_LEN", crate::reader::MAX_BLOCK_LEN)?;
    Ok(())
}

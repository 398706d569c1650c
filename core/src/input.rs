//! The byte stream under the records: compression undone, a decompression bomb stopped.
//!
//! Nothing here seeks, so standard input and pipes work like files. The format of the
//! capture is sniffed from its first bytes, which are then served again to the reader.

use std::io::{self, Chain, Cursor, Read};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Bytes read from the source per call: what a buffered read of a file asks for.
pub const CHUNK: usize = 1 << 20;
const SNIFF: usize = 8;

pub const GZIP_MAGIC: &[u8] = b"\x1f\x8b";
pub const BZIP2_MAGIC: &[u8] = b"BZh";
pub const XZ_MAGIC: &[u8] = b"\xfd7zXZ\x00";

/// When a compressed capture is taken for a decompression bomb (pcapsmtp/capture/files.py
/// holds the values: MIN_INFLATED, MAX_INFLATION).
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Below this many inflated bytes the ratio is not checked.
    pub min_inflated: u64,
    /// Inflated bytes per compressed byte beyond which reading stops.
    pub max_inflation: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            min_inflated: 16 << 20,
            max_inflation: 100,
        }
    }
}

/// Why reading stopped early: carried inside an `io::Error` so the record reader can tell a
/// bomb from damage.
#[derive(Debug)]
pub struct InflationLimit(pub String);

impl std::fmt::Display for InflationLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for InflationLimit {}

/// The inflation limit's message when `error` is one, else None.
pub fn inflation_limit(error: &io::Error) -> Option<&str> {
    error
        .get_ref()
        .and_then(|e| e.downcast_ref::<InflationLimit>())
        .map(|e| e.0.as_str())
}

/// Counts the bytes its reader served.
struct Counted<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// A decompressor's output, stopped with InflationLimit once it exceeds the limits
/// relative to the compressed bytes read: the capture is streamed, never inflated whole.
struct Inflated<R> {
    inner: R,
    out: u64,
    raw: Arc<AtomicU64>,
    limits: Limits,
}

impl<R: Read> Read for Inflated<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.out += n as u64;
        let raw = self.raw.load(Ordering::Relaxed);
        if self.out > self.limits.min_inflated
            && self.out > self.limits.max_inflation.saturating_mul(raw)
        {
            return Err(io::Error::other(InflationLimit(format!(
                "it inflates to more than {} times its size ({} MiB from {} MiB): \
                 a decompression bomb, or not a capture",
                self.limits.max_inflation,
                self.out >> 20,
                raw >> 20
            ))));
        }
        Ok(n)
    }
}

/// The first bytes of a stream (up to `SNIFF`), read to the end or an error.
fn sniff<R: Read>(stream: &mut R) -> io::Result<Vec<u8>> {
    let mut head = vec![0; SNIFF];
    let n = read_full(stream, &mut head)?;
    head.truncate(n);
    Ok(head)
}

/// Reads until `buf` is full or the stream ends; the count of bytes read.
pub fn read_full<R: Read + ?Sized>(stream: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match stream.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

pub type Stream = Chain<Cursor<Vec<u8>>, Box<dyn Read + Send>>;

/// An opened input: its compression, its first bytes, and the stream that serves them again.
pub struct Opened {
    pub compression: Option<&'static str>,
    /// The first bytes after decompression: what the format is sniffed from.
    pub head: Vec<u8>,
    pub stream: Stream,
    /// Compressed bytes read so far (all bytes read when the input is not compressed).
    pub raw_bytes: Arc<AtomicU64>,
}

/// Opens `source`: undoes gzip, bzip2 or xz compression (several concatenated members or
/// streams are read as one, as gzip(1) does). An error is a compressed stream that cannot
/// be decompressed at all, or the source failing.
pub fn open(source: Box<dyn Read + Send>, limits: Limits) -> io::Result<Opened> {
    let raw_bytes = Arc::new(AtomicU64::new(0));
    let mut counted = Counted {
        inner: source,
        count: raw_bytes.clone(),
    };
    let head = sniff(&mut counted)?;
    let raw: Box<dyn Read + Send> = Box::new(Cursor::new(head.clone()).chain(counted));
    let (compression, mut inflated): (_, Box<dyn Read + Send>) = if head.starts_with(GZIP_MAGIC) {
        let decoder = flate2::read::MultiGzDecoder::new(raw);
        (Some("gzip"), Box::new(decoder))
    } else if head.starts_with(BZIP2_MAGIC) {
        (
            Some("bzip2"),
            Box::new(bzip2::read::MultiBzDecoder::new(raw)),
        )
    } else if head.starts_with(XZ_MAGIC) {
        (
            Some("xz"),
            Box::new(xz2::read::XzDecoder::new_multi_decoder(raw)),
        )
    } else {
        return Ok(Opened {
            compression: None,
            stream: Cursor::new(Vec::new()).chain(raw),
            head,
            raw_bytes,
        });
    };
    inflated = Box::new(Inflated {
        inner: inflated,
        out: 0,
        raw: raw_bytes.clone(),
        limits,
    });
    let head = sniff(&mut inflated)?;
    Ok(Opened {
        compression,
        stream: Cursor::new(head.clone()).chain(inflated),
        head,
        raw_bytes,
    })
}

/// An input error as a message: a stream cut short is said as Python's decompressors say
/// it, whichever decompressor noticed.
pub fn describe(error: &io::Error) -> String {
    let message = error.to_string();
    let cut = [
        "incomplete deflate stream",
        "unexpected end of file",
        "failed to fill whole buffer",
    ];
    if error.kind() == io::ErrorKind::UnexpectedEof || cut.contains(&message.as_str()) {
        return "Compressed file ended before the end-of-stream marker was reached".into();
    }
    message
}

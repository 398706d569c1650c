//! The Python binding of the SMTP framing: `pcapsmtp._core.LineFramer` and
//! `pcapsmtp._core.MessageScan`, driven by `pcapsmtp/smtp/dialogue.py` and `message.py`.

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyString, PyTuple};

use crate::message_scan::{self, Describe, Entity, LeafInfo};
use crate::smtp_framing::{self, DataEnd, Framed};
use crate::tls_records::TlsRecordWalk;

/// One direction's lines: ``feed(data, pos, offset, frame)`` returns, in order, a tuple
/// ``(raw, first_frame, offset, length, end)`` per complete line (``raw`` cut at the
/// cap, ``end`` the index in ``data`` after the line) and None where the line being read
/// passed the cap; the partial last line is held.
#[pyclass(module = "pcapsmtp._core")]
pub struct LineFramer {
    framer: smtp_framing::LineFramer,
}

/// A complete line as the framer gives it: ``(raw, first_frame, offset, length, end)``.
type Line = (Vec<u8>, u64, u64, u64, usize);

impl LineFramer {
    /// The framer's items for ``data[pos..]`` (``(data, pos, offset, frame)`` as ``feed``
    /// takes them) as a list: each complete line as ``made`` makes it, None where the line
    /// being read passed the cap.
    fn framed<'py, T: IntoPyObject<'py>>(
        &mut self,
        py: Python<'py>,
        (data, pos, offset, frame): (&[u8], usize, u64, u64),
        made: impl Fn(Line) -> PyResult<T>,
    ) -> PyResult<Bound<'py, PyList>> {
        let out = PyList::empty(py);
        for item in self.framer.feed(data, pos, offset, frame) {
            match item {
                Framed::Line {
                    raw,
                    first_frame,
                    offset,
                    length,
                    end,
                } => out.append(made((raw, first_frame, offset, length, end))?)?,
                Framed::TooLong => out.append(py.None())?,
            }
        }
        Ok(out)
    }
}

#[pymethods]
impl LineFramer {
    #[new]
    fn new(max_line: usize) -> Self {
        LineFramer {
            framer: smtp_framing::LineFramer::new(max_line),
        }
    }

    fn feed<'py>(
        &mut self,
        py: Python<'py>,
        data: &[u8],
        pos: usize,
        offset: u64,
        frame: u64,
    ) -> PyResult<Bound<'py, PyList>> {
        self.framed(
            py,
            (data, pos, offset, frame),
            |(raw, first, at, length, end)| Ok((PyBytes::new(py, &raw), first, at, length, end)),
        )
    }

    /// As ``feed``, each complete line read as a reply line (one call per segment instead
    /// of a regular expression and a decoding per line): ``(code, separator, text,
    /// first_frame, offset, end)`` with the line end stripped, ``separator`` the byte
    /// after the code (32, 45 or 9; 0 when none) and ``text`` decoded as
    /// ``syntax._decode`` does; ``code`` None and ``text`` the stripped bytes for a line
    /// that does not start with three digits; None where the line passed the cap.
    fn replies<'py>(
        &mut self,
        py: Python<'py>,
        data: &[u8],
        pos: usize,
        offset: u64,
        frame: u64,
    ) -> PyResult<Bound<'py, PyList>> {
        self.framed(
            py,
            (data, pos, offset, frame),
            |(raw, first, at, _, end)| {
                let (code, separator, text) = reply_line(py, &raw)?;
                Ok((code, separator, text, first, at, end))
            },
        )
    }

    /// As ``feed``, each complete line as a command line: ``(text, crlf, first_frame,
    /// offset, length, end)``, ``text`` the line without its line end decoded as
    /// ``syntax._decode`` does, ``crlf`` whether it ended in CR LF; None where the line
    /// passed the cap.
    fn commands<'py>(
        &mut self,
        py: Python<'py>,
        data: &[u8],
        pos: usize,
        offset: u64,
        frame: u64,
    ) -> PyResult<Bound<'py, PyList>> {
        self.framed(
            py,
            (data, pos, offset, frame),
            |(raw, first, at, length, end)| {
                let (text, crlf) = command_line(py, &raw)?;
                Ok((text, crlf, first, at, length, end))
            },
        )
    }

    /// Forget the partial line.
    fn clear(&mut self) {
        self.framer.clear();
    }

    /// The partial line held (at most the cap).
    #[getter]
    fn partial<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, self.framer.partial())
    }

    /// Frame where the partial line began.
    #[getter]
    fn first_frame(&self) -> u64 {
        self.framer.start().0
    }

    /// Stream offset where the partial line began.
    #[getter]
    fn offset(&self) -> u64 {
        self.framer.start().1
    }
}

/// Wire bytes as text, as ``pcapsmtp.smtp.syntax._decode`` makes them: UTF-8, other bytes
/// as ``\xNN`` (Python's own decoder for the lines that are not UTF-8, so both agree).
fn decoded<'py>(py: Python<'py>, raw: &[u8]) -> PyResult<Bound<'py, PyString>> {
    match std::str::from_utf8(raw) {
        Ok(text) => Ok(PyString::new(py, text)),
        Err(_) => PyString::from_object(&PyBytes::new(py, raw), "utf-8", "backslashreplace"),
    }
}

/// ``(code, separator, text)`` of a reply line (see ``LineFramer.replies``).
type ReplyLine<'py> = (Option<u16>, u8, Bound<'py, PyAny>);

/// A reply line read (see ``LineFramer.replies``).
fn reply_line<'py>(py: Python<'py>, raw: &[u8]) -> PyResult<ReplyLine<'py>> {
    let line = smtp_framing::strip_line_end(raw);
    Ok(match smtp_framing::reply_parts(line) {
        Some((code, separator, text)) => (Some(code), separator, decoded(py, text)?.into_any()),
        None => (None, 0, PyBytes::new(py, line).into_any()),
    })
}

/// A command line read (see ``LineFramer.commands``).
fn command_line<'py>(py: Python<'py>, raw: &[u8]) -> PyResult<(Bound<'py, PyString>, bool)> {
    let text = decoded(py, smtp_framing::strip_line_end(raw))?;
    Ok((text, raw.ends_with(b"\r\n")))
}

/// ``reply_line(raw)``: a reply line as ``LineFramer.replies`` reads it,
/// ``(code, separator, text)``.
#[pyfunction(name = "reply_line")]
fn py_reply_line<'py>(py: Python<'py>, raw: &[u8]) -> PyResult<ReplyLine<'py>> {
    reply_line(py, raw)
}

/// ``command_line(raw)``: a command line as ``LineFramer.commands`` reads it,
/// ``(text, crlf)``.
#[pyfunction(name = "command_line")]
fn py_command_line<'py>(py: Python<'py>, raw: &[u8]) -> PyResult<(Bound<'py, PyString>, bool)> {
    command_line(py, raw)
}

/// What the Python describer returns (see [`PyDescribe`]).
type Described = (
    Option<Vec<u8>>,
    bool,
    Option<(String, String, Option<String>, bool)>,
    Vec<String>,
);

/// Calls the Python describer: ``describe(block, top, nested, parent_digest)`` returns
/// ``(boundary or None, digest, (content_type, encoding, filename, attachment) or None,
/// anomalies)``: a leaf is recorded when the third is given.
/// The first error it raises is kept to be raised once the scan returns to Python.
struct PyDescribe<'a, 'py> {
    callable: &'a Bound<'py, PyAny>,
    error: Option<PyErr>,
}

impl PyDescribe<'_, '_> {
    fn call(&self, block: &[u8], top: bool, nested: bool, digest: bool) -> PyResult<Entity> {
        let py = self.callable.py();
        let result = self
            .callable
            .call1((PyBytes::new(py, block), top, nested, digest))?;
        let (boundary, digest, attachment, anomalies): Described = result.extract()?;
        Ok(Entity {
            boundary,
            digest,
            attachment: attachment.map(|(content_type, encoding, filename, attachment)| LeafInfo {
                content_type,
                encoding,
                filename,
                attachment,
            }),
            anomalies,
        })
    }
}

impl Describe for PyDescribe<'_, '_> {
    fn describe(&mut self, block: &[u8], top: bool, nested: bool, digest: bool) -> Entity {
        if self.error.is_some() {
            return Entity::default();
        }
        match self.call(block, top, nested, digest) {
            Ok(entity) => entity,
            Err(err) => {
                self.error = Some(err);
                Entity::default()
            }
        }
    }
}

fn checked<T>(describer: PyDescribe<'_, '_>, value: T) -> PyResult<T> {
    match describer.error {
        Some(err) => Err(err),
        None => Ok(value),
    }
}

/// A message's byte scans (pcapsmtp.smtp.message): ``feed`` message bytes, or for DATA
/// ``data_end`` the client's bytes, which finds the end-of-data marker too; ``finish``
/// returns ``(size, parts, attachments, headers_truncated, anomalies, bare_lf,
/// eight_bit, entities)`` with attachments (the recorded leaf parts) as ``(content_type,
/// encoding, filename, size, encoded_size, attachment, entity, delivered)``. Each call that may complete a header block takes the describer.
#[pyclass(module = "pcapsmtp._core")]
pub struct MessageScan {
    scan: message_scan::MessageScan,
    end: DataEnd,
    /// BDAT: bytes of the chunk being read still to come, once the dialogue set it.
    bdat_left: Option<u64>,
}

type FinishedFacts = (
    u64,
    u64,
    Vec<(String, String, Option<String>, u64, u64, bool, u64, u64)>,
    bool,
    Vec<String>,
    u64,
    bool,
    u64,
);

impl MessageScan {
    /// The flow table's way in (python_table's `BodySink`): the client's next bytes, all
    /// of them message, fed as `data_end` (DATA) or `bdat` (BDAT, once ``bdat_left`` is
    /// set) feeds them; false, with nothing changed, when they complete the end-of-data
    /// marker or reach the end of the BDAT chunk (the dialogue reads that chunk itself,
    /// so it knows where the message or the chunk ended). An error the describer raised
    /// comes back once the bytes are fed.
    pub(crate) fn absorb(&mut self, data: &[u8], describe: &Bound<'_, PyAny>) -> PyResult<bool> {
        if let Some(left) = self.bdat_left {
            if data.len() as u64 >= left {
                return Ok(false);
            }
            self.bdat_left = Some(left - data.len() as u64);
            let mut describer = PyDescribe {
                callable: describe,
                error: None,
            };
            self.scan.feed(data, &mut describer);
            return checked(describer, true);
        }
        let mut end = self.end.clone();
        let found = end.find(data);
        if found.marker_end.is_some() {
            return Ok(false);
        }
        self.end = end;
        let mut describer = PyDescribe {
            callable: describe,
            error: None,
        };
        self.scan.feed(&found.released, &mut describer);
        self.scan.feed(&data[..found.body], &mut describer);
        checked(describer, true)
    }
}

#[pymethods]
impl MessageScan {
    #[new]
    #[pyo3(signature = (dot_stuffed=true))]
    fn new(dot_stuffed: bool) -> Self {
        MessageScan {
            scan: message_scan::MessageScan::new(dot_stuffed),
            end: DataEnd::new(),
            bdat_left: None,
        }
    }

    /// BDAT: bytes of the chunk being read still to come (0 before the dialogue set it);
    /// the flow table lowers it as it feeds the chunk's bytes.
    #[getter]
    fn bdat_left(&self) -> u64 {
        self.bdat_left.unwrap_or(0)
    }

    #[setter]
    fn set_bdat_left(&mut self, left: u64) {
        self.bdat_left = Some(left);
    }

    fn feed(&mut self, data: &[u8], describe: &Bound<'_, PyAny>) -> PyResult<()> {
        let mut describer = PyDescribe {
            callable: describe,
            error: None,
        };
        self.scan.feed(data, &mut describer);
        checked(describer, ())
    }

    /// DATA bytes ``data[pos:]``: the message's part of them is fed; returns the index
    /// in ``data`` where the end-of-data marker ends, or -1 when all of it is message.
    fn data_end(&mut self, data: &[u8], pos: usize, describe: &Bound<'_, PyAny>) -> PyResult<i64> {
        let rest = data.get(pos..).unwrap_or_default();
        let mut describer = PyDescribe {
            callable: describe,
            error: None,
        };
        let found = self.end.find(rest);
        self.scan.feed(&found.released, &mut describer);
        self.scan.feed(&rest[..found.body], &mut describer);
        let found = found.marker_end.map_or(-1, |end| (pos + end) as i64);
        checked(describer, found)
    }

    /// A BDAT chunk's bytes in ``data[pos:]``, ``remaining`` of the chunk still to come:
    /// feeds what the chunk holds of them and returns how many that was.
    fn bdat(
        &mut self,
        data: &[u8],
        pos: usize,
        remaining: u64,
        describe: &Bound<'_, PyAny>,
    ) -> PyResult<usize> {
        let rest = data.get(pos..).unwrap_or_default();
        let take = smtp_framing::bdat_take(remaining, rest.len());
        let mut describer = PyDescribe {
            callable: describe,
            error: None,
        };
        self.scan.feed(&rest[..take], &mut describer);
        checked(describer, take)
    }

    /// Bytes of the DATA stream the capture lacks: the marker cannot span them.
    fn gap(&mut self, describe: &Bound<'_, PyAny>) -> PyResult<()> {
        let held = self.end.gap();
        let mut describer = PyDescribe {
            callable: describe,
            error: None,
        };
        self.scan.feed(&held, &mut describer);
        checked(describer, ())
    }

    fn finish<'py>(
        &mut self,
        py: Python<'py>,
        describe: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyTuple>> {
        let mut describer = PyDescribe {
            callable: describe,
            error: None,
        };
        // A message that ends without its marker: what was held back as its possible start
        // is message.
        let held = self.end.take_held();
        self.scan.feed(&held, &mut describer);
        let facts = self.scan.finish(&mut describer);
        let facts = checked(describer, facts)?;
        let attachments = facts
            .attachments
            .into_iter()
            .map(|a| {
                (
                    a.info.content_type,
                    a.info.encoding,
                    a.info.filename,
                    a.size,
                    a.encoded_size,
                    a.info.attachment,
                    a.entity,
                    a.delivered,
                )
            })
            .collect();
        let out: FinishedFacts = (
            facts.size,
            facts.parts,
            attachments,
            facts.headers_truncated,
            facts.anomalies,
            facts.bare_lf,
            facts.eight_bit,
            facts.entities,
        );
        out.into_pyobject(py)
    }
}

/// The record walks of the encrypted TLS directions (crate::tls_records) that the flow
/// table feeds a flow's bytes to (python_table's `TlsSink`) while the TLS scanner
/// (pcapsmtp.smtp.tls.scanner) would only count their application_data records:
/// ``TlsRecords()``, then ``walk(server, (skip, head, alert_size))`` starts the walk of
/// the client's (server False) or the server's bytes, ``walk(server, None)`` stops it
/// (its bytes are refused); ``take(data, server)`` walks bytes as the table does;
/// ``counts(server)`` returns ``(skip, head, records, application_bytes)`` and sets the
/// counts back to 0.
#[pyclass(module = "pcapsmtp._core")]
#[derive(Default)]
pub struct TlsRecords {
    /// The client's walk and the server's.
    pub(crate) walks: [Option<TlsRecordWalk>; 2],
}

impl TlsRecords {
    /// Bytes of the client (`server` false) or the server: true when walked.
    pub(crate) fn take_from(&mut self, server: bool, data: &[u8]) -> bool {
        match &mut self.walks[usize::from(server)] {
            Some(walk) => walk.take(data),
            None => false,
        }
    }
}

#[pymethods]
impl TlsRecords {
    #[new]
    fn new() -> Self {
        Self::default()
    }

    /// Where the walk of a direction starts, ``(skip, head, alert_size)``, or None to stop.
    fn walk(&mut self, server: bool, start: Option<(usize, Vec<u8>, Option<usize>)>) {
        self.walks[usize::from(server)] = start.map(|(skip, head, alert_size)| TlsRecordWalk {
            skip,
            head,
            alert_size,
            ..Default::default()
        });
    }

    /// Whether a direction is walked.
    fn walking(&self, server: bool) -> bool {
        self.walks[usize::from(server)].is_some()
    }

    /// The next bytes of a direction: True when taken, False (nothing changed) when refused.
    #[pyo3(signature = (data, server=false))]
    fn take(&mut self, data: &[u8], server: bool) -> bool {
        self.take_from(server, data)
    }

    /// ``(skip, head, records, application_bytes)`` of a direction walked; the counts
    /// start again from 0.
    fn counts<'py>(
        &mut self,
        py: Python<'py>,
        server: bool,
    ) -> PyResult<(usize, Bound<'py, PyBytes>, u64, u64)> {
        let Some(walk) = &mut self.walks[usize::from(server)] else {
            return Err(pyo3::exceptions::PyValueError::new_err(
                "that direction is not walked",
            ));
        };
        let out = (
            walk.skip,
            PyBytes::new(py, &walk.head),
            walk.records,
            walk.application_bytes,
        );
        walk.records = 0;
        walk.application_bytes = 0;
        Ok(out)
    }
}

/// Adds the SMTP framing classes to `pcapsmtp._core`.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<LineFramer>()?;
    m.add_class::<MessageScan>()?;
    m.add_class::<TlsRecords>()?;
    m.add_function(wrap_pyfunction!(py_reply_line, m)?)?;
    m.add_function(wrap_pyfunction!(py_command_line, m)?)?;
    m.add("HEADER_LIMIT", message_scan::HEADER_LIMIT)?;
    m.add("PART_HEADER_LIMIT", message_scan::PART_HEADER_LIMIT)?;
    m.add("MAX_DEPTH", message_scan::MAX_DEPTH)?;
    m.add("MAX_ATTACHMENTS", message_scan::MAX_ATTACHMENTS)?;
    m.add("MAX_OTHER_PARTS", message_scan::MAX_OTHER_PARTS)?;
    Ok(())
}

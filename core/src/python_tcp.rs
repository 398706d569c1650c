//! The Python binding of the TCP layer (crate::tcp): `FlowTable` (crate::python_table) for
//! pcapsmtp.tcp.flows, `ConnectionState` for pcapsmtp.tcp.state and `tcp_options` for the
//! handshake options.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::tcp::conn_state;
use crate::tcp::options::parse_options;

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
        self.inner.history.to_string()
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
    m.add_class::<crate::python_table::FlowTable>()?;
    m.add_class::<ConnectionState>()?;
    m.add_function(wrap_pyfunction!(tcp_options, m)?)?;
    Ok(())
}

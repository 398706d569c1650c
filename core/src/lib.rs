//! pcapsmtp's compiled core: the capture reader, the packet decoder and the SMTP framing.
//!
//! `input` undoes compression, `reader` turns pcap and pcapng records into frames,
//! `decode` (with `fragments`) turns frames into TCP segments and ICMP errors, `tally`
//! counts the frames for CaptureInfo, `tcp` is the flow table and the per-segment analysis
//! of a TCP flow,
//! `reassembly` turns a TCP direction's segments into an ordered stream with gaps,
//! `smtp_framing` and `message_scan` are the byte scans of the SMTP layer, `tls_records`
//! the record walk of an encrypted TLS direction, and `python`
//! (feature "python", which maturin turns on, with `python_decode`, `python_reassembly`,
//! `python_smtp`, `python_table` and `python_tcp`) is the `pcapsmtp._core` module.
#![forbid(unsafe_code)]

pub mod decode;
pub mod fragments;
pub mod input;
pub mod message_scan;
pub mod reader;
pub mod reassembly;
pub mod smtp_framing;
pub mod tally;
pub mod tcp;
pub mod tls_records;

#[cfg(feature = "python")]
mod python;
#[cfg(feature = "python")]
mod python_decode;
#[cfg(feature = "python")]
mod python_reassembly;
#[cfg(feature = "python")]
mod python_smtp;
#[cfg(feature = "python")]
mod python_table;
#[cfg(feature = "python")]
mod python_tcp;

//! pcapsmtp's compiled core: the capture reader and the SMTP framing.
//!
//! `input` undoes compression, `reader` turns pcap and pcapng records into frames, and
//! `python` (feature "python", which maturin turns on) is the `pcapsmtp._core` module;
//! `smtp_framing` and `message_scan` are the byte scans of the SMTP layer (`python_smtp`).
#![forbid(unsafe_code)]

pub mod input;
pub mod message_scan;
pub mod reader;
pub mod smtp_framing;

#[cfg(feature = "python")]
mod python;
#[cfg(feature = "python")]
mod python_smtp;

//! pcapsmtp's compiled core: the capture reader.
//!
//! `input` undoes compression, `reader` turns pcap and pcapng records into frames, and
//! `python` (feature "python", which maturin turns on) is the `pcapsmtp._core` module.
#![forbid(unsafe_code)]

pub mod input;
pub mod reader;

#[cfg(feature = "python")]
mod python;

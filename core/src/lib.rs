//! pcapsmtp's compiled core: the capture reader and the packet decoder.
//!
//! `input` undoes compression, `reader` turns pcap and pcapng records into frames,
//! `decode` (with `fragments`) turns frames into TCP segments and ICMP errors, `tally`
//! counts the frames for CaptureInfo, and
//! `python` (feature "python", which maturin turns on) is the `pcapsmtp._core` module.
#![forbid(unsafe_code)]

pub mod decode;
pub mod fragments;
pub mod input;
pub mod reader;
pub mod tally;

#[cfg(feature = "python")]
mod python;
#[cfg(feature = "python")]
mod python_decode;

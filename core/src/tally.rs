//! What CaptureInfo counts of every frame as it passes (capture/files.py turns it into
//! the capture's facts and warnings): one place for the frames handed to Python and for
//! the frames decoded here.

use crate::reader::FrameView;

/// 9999-12-31 23:59:59.999999999 UTC, the last instant Python's ``datetime`` can hold
/// (capture/timestamps.py's LAST_DATE_NS).
pub const LAST_DATE_NS: i128 = 253_402_300_799 * 1_000_000_000 + 999_999_999;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    pub frames: u64,
    pub first_time_ns: Option<i128>,
    pub last_time_ns: Option<i128>,
    /// Link type -> frames, in the order the link types were first seen.
    pub link_types: Vec<(i64, u64)>,
    /// Frames whose captured length is below their length on the wire.
    pub truncated: u64,
    /// The most bytes kept of a cut frame: the snap length actually applied.
    pub kept: usize,
    /// Frames whose time is not a date, and the first of them.
    pub undated: u64,
    pub first_undated: u64,
    /// Frames whose time is earlier than the frame before them, the first of them, and
    /// the largest step back (ns): the capture's clock (or a merge of several) went
    /// backwards, and durations measured across such frames mean nothing.
    pub backwards: u64,
    pub first_backwards: u64,
    pub most_backwards_ns: i128,
}

impl Tally {
    pub fn count(&mut self, frame: &FrameView<'_>) {
        self.frames += 1;
        if !(0..=LAST_DATE_NS).contains(&frame.time_ns) {
            self.undated += 1;
            if self.first_undated == 0 {
                self.first_undated = frame.number;
            }
        }
        if let Some(last) = self.last_time_ns.filter(|&last| frame.time_ns < last) {
            self.backwards += 1;
            if self.first_backwards == 0 {
                self.first_backwards = frame.number;
            }
            self.most_backwards_ns = self.most_backwards_ns.max(last - frame.time_ns);
        }
        self.first_time_ns.get_or_insert(frame.time_ns);
        self.last_time_ns = Some(frame.time_ns);
        match self.link_types.last_mut() {
            Some((linktype, n)) if *linktype == frame.linktype => *n += 1,
            _ => match self
                .link_types
                .iter_mut()
                .find(|(linktype, _)| *linktype == frame.linktype)
            {
                Some((_, n)) => *n += 1,
                None => self.link_types.push((frame.linktype, 1)),
            },
        }
        if frame.wire_len as usize > frame.data.len() {
            self.truncated += 1;
            self.kept = self.kept.max(frame.data.len());
        }
    }
}

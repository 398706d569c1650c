//! Holding back the events of a flow on a port that is not a server port until its first
//! bytes could be SMTP (issue 21, the mixed capture).
//!
//! The SMTP tracker (pcapsmtp/smtp/tracker.py, `_Sniffer`) recognises SMTP on any other
//! port by a greeting line (`220`) in the first `limit` bytes of one direction and a hello
//! (`EHLO`, `HELO`, `LHLO`) in the other's, and gives a connection up (its payload ignored
//! from then on) once a full head of one direction lacks what it would need, or once it
//! held more than `hold` bytes. A head in which neither the literal `220` nor `hlo`/`helo`
//! (any case) occurs can hold neither, so while both heads of a flow are such, the
//! tracker only keeps its chunks, and it gives the flow up exactly when a head becomes
//! full or the bytes held pass `hold`. The flow table ([`super::table::FlowTable::sniff`])
//! does that itself: it keeps the flow's Data and Gap events instead of handing them on,
//! and
//! - gives the flow up at that same chunk (its payload ignored: what the tracker's
//!   `ignore_payload` would have set before the next packet) and drops what it kept: the
//!   consumer is never handed the flow before its end, where the tracker decides on no
//!   bytes, as it would have on these;
//! - hands everything kept on, in order, as soon as a head shows one of the literals (the
//!   consumer reads exactly the events it would have read, only later), and the flow's
//!   events from then on as ever;
//! - at the flow's end drops what it kept (the tracker decides "not SMTP" there too).

use super::table::Event;

/// The tracker's bounds: bytes of each direction looked at, bytes held while undecided.
#[derive(Clone, Copy, Debug)]
pub struct SniffLimits {
    pub limit: usize,
    pub hold: usize,
}

/// What the table does with a flow after a chunk.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Keep holding its events.
    Hold,
    /// A head could be SMTP: hand everything on.
    Release,
    /// The tracker would give it up now.
    Drop,
}

/// A flow whose events are held: its heads, the bytes it held, the events.
#[derive(Debug, Default)]
pub(crate) struct Sniff {
    heads: [Vec<u8>; 2],
    held: usize,
    pub(crate) events: Vec<Event>,
}

impl Sniff {
    /// A data chunk of `direction` (its event kept by the caller as the verdict says).
    pub(crate) fn data(&mut self, direction: usize, data: &[u8], limits: SniffLimits) -> Verdict {
        self.held += data.len();
        let head = &mut self.heads[direction & 1];
        if head.len() < limits.limit {
            // Only windows ending in the new bytes can be new.
            let from = head.len().saturating_sub(3);
            let take = (limits.limit - head.len()).min(data.len());
            head.extend_from_slice(&data[..take]);
            if maybe_smtp(&head[from..]) {
                return Verdict::Release;
            }
        }
        if self.held > limits.hold || self.heads.iter().any(|h| h.len() >= limits.limit) {
            Verdict::Drop
        } else {
            Verdict::Hold
        }
    }
}

/// Whether `bytes` hold `220`, or `hlo` or `helo` in any case: the tracker's literal
/// tests before its regular expressions (a greeting line, a hello line).
fn maybe_smtp(bytes: &[u8]) -> bool {
    memchr::memchr3_iter(b'2', b'h', b'H', bytes).any(|at| {
        let rest = &bytes[at..];
        rest.starts_with(b"220")
            || rest
                .get(..3)
                .is_some_and(|w| w.eq_ignore_ascii_case(b"hlo"))
            || rest
                .get(..4)
                .is_some_and(|w| w.eq_ignore_ascii_case(b"helo"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: SniffLimits = SniffLimits {
        limit: 16,
        hold: 40,
    };

    #[test]
    fn literals_release_in_either_direction_and_across_chunks() {
        for (direction, first, second) in [
            (0, &b"xx2"[..], &b"20 hi"[..]),
            (1, b"abcEh", b"LOxx"),
            (0, b"zzzHE", b"Lo"),
        ] {
            let mut sniff = Sniff::default();
            assert_eq!(sniff.data(direction, first, LIMITS), Verdict::Hold);
            assert_eq!(sniff.data(direction, second, LIMITS), Verdict::Release);
        }
    }

    #[test]
    fn the_literals_are_found_wherever_they_lie() {
        let cases: [(&[u8], bool); 9] = [
            (b"220", true),
            (b"xx22", false),
            (b"2220", true),
            (b"hLo", true),
            (b"hhlo", true),
            (b"HeLo", true),
            (b"heo hel lo h", false),
            (b"h", false),
            (b"", false),
        ];
        for (bytes, found) in cases {
            assert_eq!(maybe_smtp(bytes), found, "{bytes:?}");
        }
    }

    #[test]
    fn a_full_head_without_literals_drops() {
        let mut sniff = Sniff::default();
        assert_eq!(sniff.data(1, b"GET / HTTP/1.1", LIMITS), Verdict::Hold);
        assert_eq!(sniff.data(0, b"HTTP/1.1 200 OK", LIMITS), Verdict::Hold);
        assert_eq!(sniff.data(0, b"\r\n", LIMITS), Verdict::Drop);
    }

    #[test]
    fn literals_past_the_head_are_not_seen_and_holding_is_bounded() {
        let mut sniff = Sniff::default();
        assert_eq!(sniff.data(0, b"0123456789abcdef220", LIMITS), Verdict::Drop);
        let mut sniff = Sniff::default();
        for _ in 0..4 {
            assert_eq!(sniff.data(0, b"", LIMITS), Verdict::Hold);
        }
        assert_eq!(sniff.data(0, &[b'x'; 15], LIMITS), Verdict::Hold);
        let mut sniff = Sniff {
            held: 39,
            ..Sniff::default()
        };
        assert_eq!(sniff.data(1, b"ab", LIMITS), Verdict::Drop);
    }
}

//! Connection state and history in Zeek's conn.log vocabulary (`conn_state` and `history`
//! of base/protocols/conn/main.zeek). Uppercase history letters are the client's (Zeek's
//! originator), lowercase the server's.

use super::{TH_ACK, TH_FIN, TH_RST, TH_SYN};

pub const INACTIVE: u8 = 0;
pub const SYN_SENT: u8 = 1;
pub const SYN_ACK_SENT: u8 = 2;
/// Sent packets, but its connection set-up was not seen (capture started mid-stream).
pub const PARTIAL: u8 = 3;
pub const ESTABLISHED: u8 = 4;
/// Sent a FIN.
pub const CLOSED: u8 = 5;
/// Sent a RST.
pub const RESET: u8 = 6;

/// The letters a history holds, lowercase (the server's); each also uppercase.
const LETTERS: &[u8; 11] = b"adiqgtwshfr";
/// Letters recorded once per side.
const ONCE: &[u8] = b"adiq";
/// Letters recorded at the 1st, 10th, 100th ... time.
const LOGARITHMIC: &[u8] = b"gtw";
/// Where in LETTERS the logarithmic letters (g t w) begin, then those recorded again only
/// with another sequence number (s h f r).
const LOG_AT: usize = 4;
const BY_SEQ: usize = 7;
const POWERS: [u32; 7] = [1, 10, 100, 1000, 10000, 100000, 1000000];

/// Letters a [`History`] holds in place.
const HISTORY_IN_PLACE: usize = 15;

/// Zeek's history letters (ASCII): in place up to [`HISTORY_IN_PLACE`], in a String
/// past that. Nearly every flow's history is short ("ShAdDaFf"), and a String would be
/// an allocation per open flow (issue 19); this is no bigger than one (24 bytes).
#[derive(Clone, Default)]
pub struct History {
    len: u8,
    letters: [u8; HISTORY_IN_PLACE],
    /// All the letters, once more than fit in place.
    #[allow(clippy::box_collection)]
    long: Option<Box<String>>,
}

impl History {
    pub fn as_str(&self) -> &str {
        match &self.long {
            Some(text) => text,
            None => std::str::from_utf8(&self.letters[..usize::from(self.len)]).unwrap_or_default(),
        }
    }

    /// Append an ASCII letter (anything else is not a history letter and is dropped).
    pub fn push(&mut self, letter: u8) {
        if !letter.is_ascii() {
            return;
        }
        if let Some(text) = &mut self.long {
            text.push(char::from(letter));
        } else if usize::from(self.len) < HISTORY_IN_PLACE {
            self.letters[usize::from(self.len)] = letter;
            self.len += 1;
        } else {
            let mut text = String::with_capacity(2 * HISTORY_IN_PLACE);
            text.push_str(self.as_str());
            text.push(char::from(letter));
            self.long = Some(Box::new(text));
        }
    }
}

impl PartialEq for History {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for History {}

impl From<&str> for History {
    fn from(text: &str) -> Self {
        let mut history = History::default();
        for letter in text.bytes() {
            history.push(letter);
        }
        history
    }
}

impl std::ops::Deref for History {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl std::fmt::Debug for History {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.as_str(), f)
    }
}

impl std::fmt::Display for History {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<&str> for History {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<str> for History {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

/// Both endpoints' states and the history string, fed segment by segment.
#[derive(Clone, Debug, Default)]
pub struct ConnectionState {
    pub states: [u8; 2],
    /// Payload bytes each endpoint sent.
    pub sizes: [u64; 2],
    pub history: History,
    /// The once-per-side letters recorded (a bit per LETTERS index, uppercase 11 up).
    seen: u32,
    /// Times each logarithmic letter was recorded: g t w, then G T W.
    counts: [u32; 6],
    /// The sequence number each s h f r letter (lowercase, then uppercase) was last
    /// recorded with, valid where its bit in `seq_set` is.
    last_seq: [u32; 8],
    seq_set: u8,
}

/// The per-case index of a letter slot among `count` letters starting at `from`.
fn within(at: usize, from: usize, count: usize) -> usize {
    at % 11 - from + if at >= 11 { count } else { 0 }
}

/// Index of a letter (LETTERS lowercase, then uppercase), None for a letter Zeek's history
/// has not.
fn slot(letter: u8) -> Option<usize> {
    let lower = letter.to_ascii_lowercase();
    let at = LETTERS.iter().position(|&l| l == lower)?;
    Some(if letter.is_ascii_uppercase() {
        at + 11
    } else {
        at
    })
}

impl ConnectionState {
    pub fn new(flipped: bool) -> Self {
        ConnectionState {
            history: if flipped {
                "^".into()
            } else {
                History::default()
            },
            ..Default::default()
        }
    }

    /// Record a history letter (lowercase given; uppercase when it is the client's).
    /// False for a letter Zeek's history has not.
    pub fn record(&mut self, letter: u8, is_client: bool, seq: Option<u32>) -> bool {
        let letter = if is_client {
            letter.to_ascii_uppercase()
        } else {
            letter.to_ascii_lowercase()
        };
        let Some(at) = slot(letter) else {
            return false;
        };
        let lower = letter.to_ascii_lowercase();
        let append = if ONCE.contains(&lower) {
            let first = self.seen & (1 << at) == 0;
            self.seen |= 1 << at;
            first
        } else if LOGARITHMIC.contains(&lower) {
            let count = &mut self.counts[within(at, LOG_AT, 3)];
            *count = count.saturating_add(1);
            POWERS.contains(count)
        } else {
            let index = within(at, BY_SEQ, 4);
            let last = (self.seq_set & (1 << index) != 0).then_some(self.last_seq[index]);
            if last != seq {
                match seq {
                    Some(value) => {
                        self.last_seq[index] = value;
                        self.seq_set |= 1 << index;
                    }
                    None => self.seq_set &= !(1 << index),
                }
                true
            } else {
                false
            }
        };
        if append {
            self.history.push(letter);
        }
        true
    }

    pub fn segment(&mut self, sender: usize, is_client: bool, flags: u16, seq: u32, length: u64) {
        let sender = sender & 1;
        self.sizes[sender] = self.sizes[sender].saturating_add(length);
        let (syn, fin, rst, ack) = (
            flags & TH_SYN != 0,
            flags & TH_FIN != 0,
            flags & TH_RST != 0,
            flags & TH_ACK != 0,
        );
        if !(syn || fin || rst) {
            // Nearly every segment: data or a bare ACK, letters recorded once per side.
            let letter = if length != 0 {
                Some(b'd')
            } else if ack {
                Some(b'a')
            } else {
                None
            };
            if let Some(letter) = letter {
                let upper = if is_client {
                    letter.to_ascii_uppercase()
                } else {
                    letter
                };
                if slot(upper).is_some_and(|at| self.seen & (1 << at) == 0) {
                    self.record(letter, is_client, None);
                }
            }
            self.transition(sender, false, false, false, ack);
            return;
        }
        if syn && (fin || rst) {
            self.record(b'q', is_client, None);
        } else if fin && rst {
            self.record(b'i', is_client, None);
        } else {
            if syn {
                self.record(if ack { b'h' } else { b's' }, is_client, Some(seq));
            }
            if fin {
                self.record(b'f', is_client, Some(seq));
            }
            if rst {
                self.record(b'r', is_client, Some(seq));
            }
            if length != 0 {
                self.record(b'd', is_client, None);
            }
        }
        self.transition(sender, syn, fin, rst, ack);
    }

    fn transition(&mut self, sender: usize, syn: bool, fin: bool, rst: bool, ack: bool) {
        let (me, peer) = (self.states[sender], self.states[1 - sender]);
        if rst {
            self.states[sender] = RESET;
        } else if me == RESET {
        } else if fin {
            self.states[sender] = CLOSED;
        } else if syn {
            if me == INACTIVE || me == PARTIAL {
                self.states[sender] = if ack { SYN_ACK_SENT } else { SYN_SENT };
            }
        } else if me == SYN_SENT || me == SYN_ACK_SENT {
            if matches!(peer, SYN_SENT | SYN_ACK_SENT | ESTABLISHED) {
                self.states[sender] = ESTABLISHED;
                if peer != ESTABLISHED {
                    self.states[1 - sender] = ESTABLISHED;
                }
            }
        } else if me == INACTIVE {
            self.states[sender] = PARTIAL;
        }
    }

    /// Zeek's conn_state, the endpoint `client` taken as Zeek's originator.
    pub fn conn_state(&self, client: usize) -> &'static str {
        let client = client & 1;
        let (os, rs) = (self.states[client], self.states[1 - client]);
        let inactive = |s: u8| s == INACTIVE || s == PARTIAL;
        let (o_inactive, r_inactive) = (inactive(os), inactive(rs));
        if rs == RESET {
            let no_bytes = self.sizes[0] == 0 && self.sizes[1] == 0;
            if os == SYN_SENT || os == SYN_ACK_SENT || (os == RESET && no_bytes) {
                return "REJ";
            }
            return if o_inactive { "RSTRH" } else { "RSTR" };
        }
        if os == RESET {
            if r_inactive {
                return if self.syn_then_reset() {
                    "RSTOS0"
                } else {
                    "OTH"
                };
            }
            return "RSTO";
        }
        if rs == CLOSED && os == CLOSED {
            return "SF";
        }
        if os == CLOSED {
            return if r_inactive { "SH" } else { "S2" };
        }
        if rs == CLOSED {
            return if o_inactive { "SHR" } else { "S3" };
        }
        if os == SYN_SENT && rs == INACTIVE {
            return "S0";
        }
        if os == ESTABLISHED && rs == ESTABLISHED {
            return "S1";
        }
        "OTH"
    }

    /// Zeek's /^?S[^HAFGIQ]*R.*/ on the history.
    fn syn_then_reset(&self) -> bool {
        let history = self.history.trim_start_matches('^').as_bytes();
        if history.first() != Some(&b'S') {
            return false;
        }
        for letter in &history[1..] {
            if *letter == b'R' {
                return true;
            }
            if b"HAFGIQ".contains(letter) {
                return false;
            }
        }
        false
    }
}

#[cfg(test)]
mod history_tests {
    use super::*;

    /// In place, past the place and from a str: the letters a String would hold.
    #[test]
    fn a_history_holds_what_a_string_holds() {
        assert_eq!(std::mem::size_of::<History>(), 24);
        for n in 0..60usize {
            let (mut history, mut text) = (History::default(), String::new());
            for at in 0..n {
                let letter = LETTERS[at % LETTERS.len()];
                let letter = if at % 3 == 0 {
                    letter.to_ascii_uppercase()
                } else {
                    letter
                };
                history.push(letter);
                text.push(char::from(letter));
                assert_eq!(history, text.as_str());
            }
            assert_eq!(history.long.is_some(), n > HISTORY_IN_PLACE);
            assert_eq!(History::from(text.as_str()), history);
            assert_eq!(format!("{history:?}"), format!("{text:?}"));
            assert_eq!(history.to_string(), text);
        }
    }
}

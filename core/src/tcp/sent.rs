//! Data segments awaiting acknowledgement: the source of "largest segment acknowledged".
//!
//! Only a segment's latest transmission counts: when a sender resends the bytes at a seq in
//! a smaller segment (Linux MTU probing) and that one is acknowledged, the large original
//! was not.

use std::collections::{HashMap, VecDeque};

use super::sequence::unwrap;

/// Unacknowledged data segments tracked per direction.
pub const MAX_SENT: usize = 50_000;
/// Segments awaiting their ACK that `Sent` makes room for one at a time.
const SENT_EXACT: usize = 4;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Entry {
    start: i64,
    end: i64,
    length: u64,
    ip_len: u64,
    frame: u64,
    /// Which transmission this is (a queue entry counts only while it is the latest).
    serial: u64,
}

/// What the peer acknowledged completely of one direction's data.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Acked {
    pub max_segment: u64,
    pub max_ip_len: u64,
    /// Frame of the last data segment acknowledged completely.
    pub last_frame: Option<u64>,
}

/// One direction's data segments not acknowledged yet, in the order sent.
#[derive(Clone, Debug, Default)]
pub struct Sent {
    reference: Option<i64>,
    latest: HashMap<i64, Entry>,
    queue: VecDeque<Entry>,
    serial: u64,
}

impl Sent {
    fn unwrap(&mut self, seq: u32) -> i64 {
        let value = match self.reference {
            None => i64::from(seq),
            Some(near) => unwrap(seq, near),
        };
        self.reference = Some(value);
        value
    }

    pub fn sent(&mut self, seq: u32, length: u64, ip_len: u64, frame: u64) {
        if self.latest.len() >= MAX_SENT {
            return;
        }
        let start = self.unwrap(seq);
        self.serial += 1;
        let entry = Entry {
            start,
            end: start.saturating_add(i64::try_from(length).unwrap_or(i64::MAX)),
            length,
            ip_len,
            frame,
            serial: self.serial,
        };
        self.latest.insert(start, entry);
        // Room for one more at a time while short: an open flow has one or two segments
        // awaiting their ACK, and the amortized growth would make room for four.
        if self.queue.len() == self.queue.capacity() && self.queue.len() < SENT_EXACT {
            self.queue.reserve_exact(1);
        }
        self.queue.push_back(entry);
    }

    pub fn acknowledged(&mut self, ack: u32, acked: &mut Acked) {
        if self.queue.is_empty() {
            return;
        }
        let limit = self.unwrap(ack);
        while let Some(entry) = self.queue.front().copied() {
            if self.latest.get(&entry.start) != Some(&entry) {
                self.queue.pop_front();
                continue;
            }
            if entry.end > limit {
                return;
            }
            self.queue.pop_front();
            self.latest.remove(&entry.start);
            acked.max_segment = acked.max_segment.max(entry.length);
            acked.max_ip_len = acked.max_ip_len.max(entry.ip_len);
            acked.last_frame = Some(entry.frame);
        }
    }

    /// IP lengths of the segments never acknowledged.
    pub fn unacked_sizes(&self) -> Vec<u64> {
        self.latest.values().map(|entry| entry.ip_len).collect()
    }
}

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
/// Queue entries up to which a segment's latest transmission is found by scanning the
/// queue; past it `Sent` keeps an index. An open flow has one or two segments awaiting
/// their ACK, and an index of one entry costs about 240 bytes (a flood holds 100,000).
const SCAN_UP_TO: usize = 8;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Entry {
    start: i64,
    length: u64,
    ip_len: u64,
    frame: u64,
    /// Which transmission this is (a queue entry counts only while it is the latest).
    serial: u64,
}

impl Entry {
    /// Where the bytes sent end.
    fn end(&self) -> i64 {
        self.start
            .saturating_add(i64::try_from(self.length).unwrap_or(i64::MAX))
    }
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
///
/// The latest transmission of each start is the last queue entry with that start: an
/// entry acknowledged is the front one, so none of its start is left behind it. While the
/// queue is short that entry is found by scanning it; `latest` indexes it once longer.
#[derive(Clone, Debug, Default)]
pub struct Sent {
    reference: Option<i64>,
    /// Start -> latest transmission, made once the queue outgrew `SCAN_UP_TO`.
    #[allow(clippy::box_collection)]
    latest: Option<Box<HashMap<i64, Entry>>>,
    queue: VecDeque<Entry>,
    serial: u64,
    /// What the peer acknowledged completely so far.
    pub acked: Acked,
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

    /// The latest transmission of the bytes at `start`.
    fn latest(&self, start: i64) -> Option<&Entry> {
        match &self.latest {
            Some(latest) => latest.get(&start),
            None => self.queue.iter().rev().find(|entry| entry.start == start),
        }
    }

    /// The queue entry of a transmission (the next serial).
    fn entry(&mut self, seq: u32, length: u64, ip_len: u64, frame: u64) -> Entry {
        let start = self.unwrap(seq);
        self.serial += 1;
        Entry {
            start,
            length,
            ip_len,
            frame,
            serial: self.serial,
        }
    }

    pub fn sent(&mut self, seq: u32, length: u64, ip_len: u64, frame: u64) {
        if self
            .latest
            .as_ref()
            .is_some_and(|latest| latest.len() >= MAX_SENT)
        {
            return;
        }
        let entry = self.entry(seq, length, ip_len, frame);
        let start = entry.start;
        match &mut self.latest {
            Some(latest) => {
                latest.insert(start, entry);
            }
            None if self.queue.len() >= SCAN_UP_TO => {
                let mut latest: HashMap<i64, Entry> =
                    self.queue.iter().map(|e| (e.start, *e)).collect();
                latest.insert(start, entry);
                self.latest = Some(Box::new(latest));
            }
            None => {}
        }
        // Room for one more at a time while short: an open flow has one or two segments
        // awaiting their ACK, and the amortized growth would make room for four.
        if self.queue.len() == self.queue.capacity() && self.queue.len() < SENT_EXACT {
            self.queue.reserve_exact(1);
        }
        self.queue.push_back(entry);
    }

    pub fn acknowledged(&mut self, ack: u32) {
        if self.queue.is_empty() {
            return;
        }
        let limit = self.unwrap(ack);
        while let Some(entry) = self.queue.front().copied() {
            if self.latest(entry.start) != Some(&entry) {
                self.queue.pop_front();
                continue;
            }
            if entry.end() > limit {
                return;
            }
            self.queue.pop_front();
            if let Some(latest) = &mut self.latest {
                latest.remove(&entry.start);
            }
            let acked = &mut self.acked;
            acked.max_segment = acked.max_segment.max(entry.length);
            acked.max_ip_len = acked.max_ip_len.max(entry.ip_len);
            acked.last_frame = Some(entry.frame);
        }
    }

    /// IP lengths of the segments never acknowledged.
    pub fn unacked_sizes(&self) -> Vec<u64> {
        match &self.latest {
            Some(latest) => latest.values().map(|entry| entry.ip_len).collect(),
            None => self
                .queue
                .iter()
                .enumerate()
                .filter(|&(at, entry)| self.queue.range(at + 1..).all(|e| e.start != entry.start))
                .map(|(_, entry)| entry.ip_len)
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The index kept from the first segment on (how `Sent` worked before it scanned
    /// short queues): what `Sent` must still give, whatever the queue's length.
    #[derive(Default)]
    struct Indexed {
        sent: Sent,
        latest: HashMap<i64, Entry>,
    }

    impl Indexed {
        fn sent(&mut self, seq: u32, length: u64, ip_len: u64, frame: u64) {
            if self.latest.len() >= MAX_SENT {
                return;
            }
            let entry = self.sent.entry(seq, length, ip_len, frame);
            self.latest.insert(entry.start, entry);
            self.sent.queue.push_back(entry);
        }

        fn acknowledged(&mut self, ack: u32, acked: &mut Acked) {
            if self.sent.queue.is_empty() {
                return;
            }
            let limit = self.sent.unwrap(ack);
            while let Some(entry) = self.sent.queue.front().copied() {
                if self.latest.get(&entry.start) != Some(&entry) {
                    self.sent.queue.pop_front();
                    continue;
                }
                if entry.end() > limit {
                    return;
                }
                self.sent.queue.pop_front();
                self.latest.remove(&entry.start);
                acked.max_segment = acked.max_segment.max(entry.length);
                acked.max_ip_len = acked.max_ip_len.max(entry.ip_len);
                acked.last_frame = Some(entry.frame);
            }
        }
    }

    fn sorted(mut sizes: Vec<u64>) -> Vec<u64> {
        sizes.sort_unstable();
        sizes
    }

    /// Retransmissions (same starts, other lengths), partial and late ACKs, queues short
    /// and long: the same figures with and without the index.
    #[test]
    fn scanning_a_short_queue_gives_what_the_index_gave() {
        let mut next = crate::tcp::test_random(0x2545_f491_u64);
        for round in 0..400 {
            let (mut new, mut old) = (Sent::default(), Indexed::default());
            let (mut new_acked, mut old_acked) = (Acked::default(), Acked::default());
            let width = 1 + round % 40;
            let mut acked_to = 1000u32;
            for frame in 0..200 {
                if next(3) == 0 {
                    acked_to = acked_to.wrapping_add(next(300) as u32);
                    new.acknowledged(acked_to);
                    new_acked = new.acked;
                    old.acknowledged(acked_to, &mut old_acked);
                } else {
                    let seq = acked_to.wrapping_add(100 * next(width) as u32);
                    let length = 1 + next(150);
                    new.sent(seq, length, length + 40, frame);
                    old.sent(seq, length, length + 40, frame);
                }
                assert_eq!(new_acked, old_acked, "round {round}, frame {frame}");
                let old_sizes = old.latest.values().map(|e| e.ip_len).collect();
                assert_eq!(sorted(new.unacked_sizes()), sorted(old_sizes));
            }
        }
    }

    #[test]
    fn a_short_queue_has_no_index() {
        let mut sent = Sent::default();
        for at in 0..SCAN_UP_TO as u32 {
            sent.sent(1000 + 10 * at, 10, 50, u64::from(at));
        }
        assert!(sent.latest.is_none());
        sent.sent(5000, 10, 50, 99);
        assert_eq!(
            sent.latest.as_ref().map(|latest| latest.len()),
            Some(SCAN_UP_TO + 1)
        );
    }
}

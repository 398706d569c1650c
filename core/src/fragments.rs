//! IPv4 and IPv6 fragment reassembly, bounded, remembering each fragment's frame.
//!
//! Like Wireshark, a reassembled datagram belongs to the frame that completed it, the
//! first copy of an overlapping byte wins, and a copy of a fragment arriving after its
//! datagram was reassembled (a SPAN port that sees every packet twice) is dropped rather
//! than taken for the start of a datagram that never completes. Memory is bounded: at most
//! `MAX_PENDING` datagrams wait for their missing pieces, none longer than `TIMEOUT_NS` of
//! capture time; what is given up is reported, with its frames.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};

use crate::decode::IpPacket;

pub const MAX_PENDING: usize = 4096;
pub const MAX_DATAGRAM: usize = 65535 + 40;
/// Linux's ipfrag_time is 30 s; a capture is allowed some slack beyond it.
pub const TIMEOUT_NS: i128 = 60 * 1_000_000_000;

/// (version, source, destination, protocol, identification): which datagram a fragment
/// belongs to.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Key {
    version: u8,
    src: Vec<u8>,
    dst: Vec<u8>,
    proto: u8,
    ident: u32,
}

/// A map that remembers the order its keys were first inserted in (as a Python dict
/// does): the oldest entry is the one given up first.
struct Ordered<V> {
    entries: HashMap<Key, (u64, V)>,
    order: BTreeMap<u64, Key>,
    next: u64,
}

impl<V> Default for Ordered<V> {
    fn default() -> Self {
        Ordered {
            entries: HashMap::new(),
            order: BTreeMap::new(),
            next: 0,
        }
    }
}

impl<V> Ordered<V> {
    fn len(&self) -> usize {
        self.entries.len()
    }

    fn get(&self, key: &Key) -> Option<&V> {
        self.entries.get(key).map(|(_, v)| v)
    }

    fn get_mut(&mut self, key: &Key) -> Option<&mut V> {
        self.entries.get_mut(key).map(|(_, v)| v)
    }

    /// Inserts at the end; the caller has removed the key first.
    fn insert(&mut self, key: Key, value: V) {
        self.remove(&key);
        self.order.insert(self.next, key.clone());
        self.entries.insert(key, (self.next, value));
        self.next += 1;
    }

    fn remove(&mut self, key: &Key) -> Option<V> {
        let (at, value) = self.entries.remove(key)?;
        self.order.remove(&at);
        Some(value)
    }

    fn oldest(&self) -> Option<(&Key, &V)> {
        let (_, key) = self.order.first_key_value()?;
        self.entries.get(key).map(|(_, v)| (key, v))
    }

    fn pop_oldest(&mut self) -> Option<V> {
        let (_, key) = self.order.pop_first()?;
        self.entries.remove(&key).map(|(_, v)| v)
    }

    fn drain(&mut self) -> Vec<V> {
        let order = std::mem::take(&mut self.order);
        let mut entries = std::mem::take(&mut self.entries);
        order
            .into_values()
            .filter_map(|key| entries.remove(&key).map(|(_, v)| v))
            .collect()
    }
}

struct Pending {
    first_time_ns: i128,
    pieces: Vec<(usize, Vec<u8>)>,
    frames: Vec<u64>,
    /// The fragment at offset 0: its header becomes the datagram's.
    head: Option<IpPacket<'static>>,
    /// Payload length, known once the last fragment (MF clear) arrives.
    total: Option<usize>,
}

/// Spans sorted and joined where they touch or overlap. A span may be reversed (a piece
/// beyond the announced end): it is kept as it is, like the rest of the arithmetic.
fn merge(mut spans: Vec<(usize, usize)>) -> Vec<(usize, usize)> {
    spans.sort_unstable();
    let mut merged: Vec<(usize, usize)> = Vec::with_capacity(spans.len());
    for (start, end) in spans {
        match merged.last_mut() {
            Some(last) if start <= last.1 => last.1 = last.1.max(end),
            _ => merged.push((start, end)),
        }
    }
    merged
}

fn copy(buffer: &mut [u8], to: (usize, usize), data: &[u8], from: usize) {
    let (a, b) = to;
    if let (Some(target), Some(source)) = (
        buffer.get_mut(a..b),
        data.get(from..from.saturating_add(b.saturating_sub(a))),
    ) {
        if target.len() == source.len() {
            target.copy_from_slice(source);
        }
    }
}

impl Pending {
    /// The datagram's payload, the first copy of any overlapping byte winning.
    fn assemble(&self) -> Vec<u8> {
        let mut buffer = vec![0u8; self.total.unwrap_or(0)];
        let mut covered: Vec<(usize, usize)> = Vec::new();
        for (offset, data) in &self.pieces {
            let offset = *offset;
            let end = (offset + data.len()).min(buffer.len());
            let mut pos = offset;
            for &(start, stop) in &covered {
                if stop <= pos {
                    continue;
                }
                if start >= end {
                    break;
                }
                if start > pos {
                    copy(&mut buffer, (pos, start), data, pos - offset);
                }
                pos = pos.max(stop);
            }
            if pos < end {
                copy(&mut buffer, (pos, end), data, pos - offset);
            }
            covered.push((offset, end));
            covered = merge(covered);
        }
        buffer
    }

    /// Every byte from 0 to the end announced by the last fragment is present.
    fn complete(&self) -> bool {
        let (Some(total), Some(_)) = (self.total, &self.head) else {
            return false;
        };
        let mut reach = 0;
        let spans = self.pieces.iter().map(|(o, d)| (*o, o + d.len())).collect();
        for (start, end) in merge(spans) {
            if start > reach {
                return false;
            }
            reach = reach.max(end);
        }
        reach >= total
    }
}

/// Feed fragments in capture order; get whole datagrams back when they complete.
#[derive(Default)]
pub struct Reassembler {
    pending: Ordered<Pending>,
    /// Key -> (time completed, payload length) of recently reassembled datagrams.
    completed: Ordered<(i128, usize)>,
    /// Frames of fragment sets that never completed (evicted, expired or left at the end).
    given_up: Vec<Vec<u64>>,
}

impl Reassembler {
    pub fn add(&mut self, fragment: IpPacket<'_>) -> Option<IpPacket<'static>> {
        let key = Key {
            version: fragment.version,
            src: fragment.src.to_vec(),
            dst: fragment.dst.to_vec(),
            proto: fragment.proto,
            ident: fragment.ident,
        };
        self.expire(fragment.time_ns);
        if let Some(&(_, length)) = self.completed.get(&key) {
            if fragment.frag_offset + fragment.payload_len <= length {
                return None; // a copy of a piece of a datagram already reassembled
            }
            self.completed.remove(&key); // beyond its end: the IP ID was used again
        }
        if self.pending.get(&key).is_none() {
            if self.pending.len() >= MAX_PENDING {
                if let Some(oldest) = self.pending.pop_oldest() {
                    self.given_up.push(oldest.frames);
                }
            }
            self.pending.insert(
                key.clone(),
                Pending {
                    first_time_ns: fragment.time_ns,
                    pieces: Vec::new(),
                    frames: Vec::new(),
                    head: None,
                    total: None,
                },
            );
        }
        let pending = self.pending.get_mut(&key)?;
        pending.frames.push(fragment.frame);
        if fragment.frag_offset + fragment.payload.len() > MAX_DATAGRAM {
            if let Some(pending) = self.pending.remove(&key) {
                self.given_up.push(pending.frames);
            }
            return None;
        }
        let (offset, time_ns, frame) = (fragment.frag_offset, fragment.time_ns, fragment.frame);
        pending.pieces.push((offset, fragment.payload.to_vec()));
        if !fragment.more_fragments {
            pending.total = Some(offset + fragment.payload_len);
        }
        if offset == 0 {
            pending.head = Some(fragment.into_owned());
        }
        if !pending.complete() {
            return None;
        }
        let payload = pending.assemble();
        let pending = self.pending.remove(&key)?;
        self.completed.insert(key, (time_ns, payload.len()));
        if self.completed.len() > MAX_PENDING {
            self.completed.pop_oldest();
        }
        let head = pending.head?;
        let header_len = head.total_len - head.payload_len;
        Some(IpPacket {
            frame,
            time_ns,
            total_len: header_len + payload.len(),
            payload_len: payload.len(),
            payload: Cow::Owned(payload),
            frag_offset: 0,
            more_fragments: false,
            fragment_frames: pending.frames,
            ..head
        })
    }

    fn expire(&mut self, now_ns: i128) {
        while let Some((_, &(done_ns, _))) = self.completed.oldest() {
            if now_ns - done_ns <= TIMEOUT_NS {
                break;
            }
            self.completed.pop_oldest();
        }
        while let Some((_, oldest)) = self.pending.oldest() {
            if now_ns - oldest.first_time_ns <= TIMEOUT_NS {
                return;
            }
            if let Some(oldest) = self.pending.pop_oldest() {
                self.given_up.push(oldest.frames);
            }
        }
    }

    /// Frames of every fragment set that never completed.
    pub fn finish(&mut self) -> Vec<Vec<u64>> {
        let left = self.pending.drain();
        self.given_up.extend(left.into_iter().map(|p| p.frames));
        std::mem::take(&mut self.given_up)
    }
}

//! The ended flows a flow table remembers for their stream numbers (issue 19): up to a
//! bound of (key, record) pairs, the oldest remembered forgotten first. The pairs sit in
//! a ring of slots in the order they were remembered, found through a hash table that
//! holds only a slot's position, so each key is stored once and no queue repeats it.
//!
//! A pair taken out (its flow came back) leaves a hole in the ring; the holes are dropped
//! at the ring's front as it moves, and all of them at once when the ring is full, which
//! it may be up to a quarter beyond the bound (so that dropping them frees at least that
//! many slots and costs O(1) a pair on average).

use hashbrown::HashTable;
use std::collections::VecDeque;
use std::hash::{BuildHasher, Hash};

/// Up to `bound` (key, record) pairs in the order they were remembered.
#[derive(Debug)]
pub(crate) struct Remembered<K, V, S> {
    /// The pairs, the oldest first; `None` where one was taken out.
    slots: VecDeque<Option<(K, V)>>,
    /// The position of `slots[0]`: positions count (wrapping) the pairs ever pushed, so
    /// that dropping the front leaves the other positions as they were.
    base: u32,
    /// The position of each pair in `slots`, hashed by its key.
    index: HashTable<u32>,
    /// Pairs in `slots` (its length less the holes).
    len: usize,
    bound: usize,
    hasher: S,
}

impl<K: Hash + Eq, V, S: BuildHasher> Remembered<K, V, S> {
    /// At most `bound` pairs (capped at 2^30, so that positions fit a u32).
    pub(crate) fn new(bound: usize, hasher: S) -> Self {
        Remembered {
            slots: VecDeque::new(),
            base: 0,
            index: HashTable::new(),
            len: 0,
            bound: bound.min(1 << 30),
            hasher,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The record remembered for `key`.
    pub(crate) fn get(&self, key: &K) -> Option<&V> {
        let hash = self.hasher.hash_one(key);
        let position = self.index.find(hash, |&p| self.holds(p, key))?;
        self.slot(*position).map(|(_, v)| v)
    }

    /// Forgets `key`, giving its record.
    pub(crate) fn remove(&mut self, key: &K) -> Option<V> {
        let hash = self.hasher.hash_one(key);
        let (slots, base) = (&self.slots, self.base);
        let entry = self
            .index
            .find_entry(hash, |&p| at(slots, base, p).is_some_and(|(k, _)| k == key))
            .ok()?;
        let (position, _) = entry.remove();
        let i = position.wrapping_sub(self.base) as usize;
        let (_, value) = self.slots.get_mut(i)?.take()?;
        self.len -= 1;
        self.trim();
        Some(value)
    }

    /// Remembers `value` for `key` as the newest pair (in place of what `key` had), the
    /// oldest forgotten if that makes one more than the bound.
    pub(crate) fn insert(&mut self, key: K, value: V) {
        if self.bound == 0 {
            return;
        }
        self.remove(&key);
        if self.len == self.bound {
            self.forget_oldest();
        }
        if self.slots.len() == self.slots.capacity() {
            self.make_room();
        }
        let position = self.base.wrapping_add(self.slots.len() as u32);
        let hash = self.hasher.hash_one(&key);
        self.slots.push_back(Some((key, value)));
        self.len += 1;
        let (slots, base, hasher) = (&self.slots, self.base, &self.hasher);
        self.index.insert_unique(hash, position, |&p| {
            at(slots, base, p).map_or(0, |(k, _)| hasher.hash_one(k))
        });
    }

    /// Forgets every pair (the memory stays for reuse).
    pub(crate) fn clear(&mut self) {
        self.slots.clear();
        self.index.clear();
        self.base = 0;
        self.len = 0;
    }

    /// The keys, the oldest first.
    #[cfg(test)]
    pub(crate) fn keys(&self) -> impl Iterator<Item = &K> {
        self.slots.iter().flatten().map(|(k, _)| k)
    }

    fn slot(&self, position: u32) -> Option<&(K, V)> {
        at(&self.slots, self.base, position)
    }

    fn holds(&self, position: u32, key: &K) -> bool {
        self.slot(position).is_some_and(|(k, _)| k == key)
    }

    /// Drops the holes at the front, so that the front is a pair (or the ring is empty).
    fn trim(&mut self) {
        while let Some(None) = self.slots.front() {
            self.slots.pop_front();
            self.base = self.base.wrapping_add(1);
        }
    }

    fn forget_oldest(&mut self) {
        let position = self.base;
        let Some(Some((key, _))) = self.slots.pop_front() else {
            return;
        };
        self.base = self.base.wrapping_add(1);
        let hash = self.hasher.hash_one(&key);
        if let Ok(entry) = self.index.find_entry(hash, |&p| p == position) {
            entry.remove();
        }
        self.len -= 1;
        self.trim();
    }

    /// The ring is full: grows it (doubling, up to the bound, then up to a quarter
    /// beyond), or drops its holes when they are a quarter of it or it may grow no more.
    fn make_room(&mut self) {
        let used = self.slots.len();
        let capacity = self.slots.capacity();
        let most = self.bound + self.bound / 4 + 16;
        if used > 0 && ((used - self.len) * 4 >= used || capacity >= most) {
            self.compact();
            return;
        }
        let target = if capacity < self.bound {
            self.bound
        } else {
            most
        };
        let grown = capacity.saturating_mul(2).max(16).min(target);
        self.slots.reserve_exact(grown - used);
    }

    /// Drops every hole, the pairs kept in order, and indexes them again.
    fn compact(&mut self) {
        self.slots.retain(Option::is_some);
        self.index.clear();
        let (slots, base, hasher) = (&self.slots, self.base, &self.hasher);
        for (i, slot) in slots.iter().enumerate() {
            if let Some((key, _)) = slot {
                let position = base.wrapping_add(i as u32);
                self.index
                    .insert_unique(hasher.hash_one(key), position, |&p| {
                        at(slots, base, p).map_or(0, |(k, _)| hasher.hash_one(k))
                    });
            }
        }
    }
}

/// The pair at `position` of a ring whose front is at `base`.
fn at<K, V>(slots: &VecDeque<Option<(K, V)>>, base: u32, position: u32) -> Option<&(K, V)> {
    slots
        .get(position.wrapping_sub(base) as usize)
        .and_then(Option::as_ref)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// What the flow table kept before (a map and a queue of its keys in the order
    /// remembered, each with a serial so that a stale one is skipped), the reference.
    struct Reference {
        map: HashMap<u16, (u64, u64)>,
        order: VecDeque<(u16, u64)>,
        serial: u64,
        bound: usize,
    }

    impl Reference {
        fn insert(&mut self, key: u16, value: u64) {
            self.serial += 1;
            self.order.push_back((key, self.serial));
            self.map.insert(key, (value, self.serial));
            while self.map.len() > self.bound {
                let Some((oldest, serial)) = self.order.pop_front() else {
                    break;
                };
                if self.map.get(&oldest).is_some_and(|e| e.1 == serial) {
                    self.map.remove(&oldest);
                }
            }
            if self.order.len() > 2 * self.map.len() + 64 {
                let map = &self.map;
                self.order
                    .retain(|(key, serial)| map.get(key).is_some_and(|e| e.1 == *serial));
            }
        }

        fn keys(&self) -> Vec<u16> {
            let map = &self.map;
            self.order
                .iter()
                .filter(|(key, serial)| map.get(key).is_some_and(|e| e.1 == *serial))
                .map(|(key, _)| *key)
                .collect()
        }
    }

    /// Random runs of remembering, taking out (a flow coming back), looking up and
    /// clearing give what the map and queue gave, for bounds from 0 up, each reached
    /// many times; the ring never holds more than a quarter (and 16) beyond the bound.
    #[test]
    fn matches_the_map_and_queue() {
        let mut next = crate::tcp::test_random(0x19b);
        for bound in [0, 1, 2, 3, 5, 16, 17, 40, 100, 300] {
            for round in 0..6u64 {
                let keys = bound as u64 * (2 + round % 3) + 4 + round;
                let mut ring = Remembered::new(bound, foldhash::fast::RandomState::default());
                let mut reference = Reference {
                    map: HashMap::new(),
                    order: VecDeque::new(),
                    serial: 0,
                    bound,
                };
                let mut evictions = 0u64;
                for step in 0..20_000u64 {
                    let key = next(keys) as u16;
                    match next(100) {
                        0..=54 => {
                            let before = reference.map.len()
                                + usize::from(!reference.map.contains_key(&key));
                            ring.insert(key, step);
                            reference.insert(key, step);
                            evictions += (before > reference.map.len()) as u64;
                        }
                        55..=84 => {
                            assert_eq!(ring.remove(&key), reference.map.remove(&key).map(|e| e.0));
                        }
                        85..=98 => {
                            assert_eq!(ring.get(&key), reference.map.get(&key).map(|e| &e.0));
                        }
                        _ if next(50) == 0 => {
                            ring.clear();
                            reference.map.clear();
                            reference.order.clear();
                        }
                        _ => {}
                    }
                    assert_eq!(ring.len(), reference.map.len());
                    assert_eq!(ring.is_empty(), reference.map.is_empty());
                    assert!(ring.slots.capacity() <= bound + bound / 4 + 16);
                    if step % 97 == 0 {
                        assert_eq!(ring.keys().copied().collect::<Vec<_>>(), reference.keys());
                    }
                }
                assert_eq!(ring.keys().copied().collect::<Vec<_>>(), reference.keys());
                if bound > 0 {
                    assert!(evictions > 20, "bound {bound}: reached {evictions} times");
                }
            }
        }
    }

    /// Positions wrap past u32::MAX as the ring moves.
    #[test]
    fn positions_wrap() {
        let mut ring = Remembered::new(3, foldhash::fast::RandomState::default());
        ring.base = u32::MAX - 5;
        for key in 0..20u32 {
            ring.insert(key, key * 10);
            if key % 4 == 0 {
                assert_eq!(ring.remove(&key), Some(key * 10));
            }
        }
        assert_eq!(ring.keys().copied().collect::<Vec<_>>(), vec![17, 18, 19]);
        assert_eq!(ring.get(&18), Some(&180));
        assert_eq!(ring.get(&16), None);
    }
}

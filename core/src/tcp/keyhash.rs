//! The hash of the flow table's maps: a keyed multiply-fold (foldhash's construction),
//! several times faster than std's SipHash on a flow key (two addresses and two ports,
//! hashed up to three times per segment: SipHash was 5 % of a mixed capture's CPU).
//!
//! The seed comes from std's `RandomState` (random per process), so which 4-tuples
//! collide cannot be worked out in advance from the capture alone: the table keeps the
//! resistance to crafted collisions it had, for keys an attacker controls, at the level
//! foldhash offers (hashbrown's default hasher), not SipHash's.

use std::hash::{BuildHasher, Hasher, RandomState};

const MULTIPLIER: u64 = 0x9E37_79B9_7F4A_7C15;
const FINISH: u64 = 0x2D35_8DCC_AA6C_78A5;

/// The 128-bit product of `a` and `b`, its halves xored.
fn fold(a: u64, b: u64) -> u64 {
    let product = u128::from(a) * u128::from(b);
    (product as u64) ^ ((product >> 64) as u64)
}

/// Builds `KeyHasher`s with this process's seed.
#[derive(Clone, Debug)]
pub struct KeyHashState {
    seed: u64,
}

impl Default for KeyHashState {
    fn default() -> Self {
        KeyHashState {
            seed: RandomState::new().hash_one(MULTIPLIER) | 1,
        }
    }
}

impl BuildHasher for KeyHashState {
    type Hasher = KeyHasher;

    fn build_hasher(&self) -> KeyHasher {
        KeyHasher { state: self.seed }
    }
}

/// One key's hash in the making.
pub struct KeyHasher {
    state: u64,
}

impl KeyHasher {
    fn mix(&mut self, value: u64) {
        self.state = fold(self.state ^ value, MULTIPLIER);
    }
}

impl Hasher for KeyHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0; 8];
            word.copy_from_slice(chunk);
            self.mix(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.mix(u64::from_le_bytes(word) ^ ((rest.len() as u64) << 59));
        }
    }

    fn write_u8(&mut self, value: u8) {
        self.mix(u64::from(value));
    }

    fn write_u16(&mut self, value: u16) {
        self.mix(u64::from(value));
    }

    fn write_u32(&mut self, value: u32) {
        self.mix(u64::from(value));
    }

    fn write_u64(&mut self, value: u64) {
        self.mix(value);
    }

    fn write_usize(&mut self, value: usize) {
        self.mix(value as u64);
    }

    fn finish(&self) -> u64 {
        fold(self.state, FINISH)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_keys_hash_equal_and_near_keys_apart() {
        let state = KeyHashState::default();
        let key = |port: u16| (([10u8, 0, 0, 1], 25u16), ([10u8, 0, 0, 2], port));
        assert_eq!(state.hash_one(key(40000)), state.hash_one(key(40000)));
        let hashes: std::collections::HashSet<u64> =
            (0..10_000).map(|p| state.hash_one(key(p))).collect();
        assert_eq!(hashes.len(), 10_000);
        // The low 7 bits (hashbrown's buckets of a small table) spread too.
        let low: std::collections::HashSet<u64> =
            (0..1000).map(|p| state.hash_one(key(p)) & 127).collect();
        assert!(low.len() > 100);
    }
}

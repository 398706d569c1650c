//! Sequence numbers modulo 2**32 (RFC 9293 section 3.4), compared within half the space.

pub const HALF: u32 = 0x8000_0000;

/// `a` after `b`.
pub fn gt(a: u32, b: u32) -> bool {
    let d = a.wrapping_sub(b);
    0 < d && d < HALF
}

/// `a` before `b`.
pub fn lt(a: u32, b: u32) -> bool {
    a.wrapping_sub(b) >= HALF
}

/// `a` before or at `b`.
pub fn le(a: u32, b: u32) -> bool {
    let d = a.wrapping_sub(b);
    d == 0 || d >= HALF
}

/// `seq` as the unwrapped (64-bit) number closest to `near`, an unwrapped number of the
/// same sequence space.
pub fn unwrap(seq: u32, near: i64) -> i64 {
    let d = seq.wrapping_sub(near as u32);
    near + i64::from(d as i32)
}

/// `seq + n` modulo 2**32.
pub fn add(seq: u32, n: u64) -> u32 {
    (u64::from(seq).wrapping_add(n)) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comparisons_wrap() {
        assert!(gt(1, 0xFFFF_FFFF));
        assert!(lt(0xFFFF_FFFF, 1));
        assert!(le(5, 5));
        assert!(!gt(5, 5));
        assert!(!lt(5, 5));
        assert!(lt(0, HALF)); // exactly half: before
        assert!(!gt(HALF, 0));
    }

    #[test]
    fn unwrap_crosses_the_wrap_both_ways() {
        assert_eq!(unwrap(5, 0xFFFF_FFF0), 0x1_0000_0005);
        assert_eq!(unwrap(0xFFFF_FFF0, 0x1_0000_0005), 0xFFFF_FFF0);
        assert_eq!(unwrap(0xFFFF_FFFF, 0), -1);
        assert_eq!(unwrap(7, -1), 7);
    }
}

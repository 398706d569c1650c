//! The per-segment TCP work of one flow: Wireshark's sequence analysis (`analysis`), Zeek's
//! connection state and history (`conn_state`), the largest-acknowledged bookkeeping
//! (`sent`), the handshake options (`options`), and `flow`, which runs them all for one
//! segment; `table`, the flow table (its maps hashed by foldhash) that keeps one of them per flow with the flow's
//! counters, notes and reassembly (bound for Python in `python_table`), and `ended`, the
//! ended flows it remembers for their stream numbers. Plain Rust.

pub mod analysis;
pub mod conn_state;
mod ended;
pub mod flow;
pub mod options;
pub mod sent;
pub mod sequence;
pub mod sniff;
pub mod table;

/// TCP header flags (RFC 9293).
pub const TH_FIN: u16 = 0x01;
pub const TH_SYN: u16 = 0x02;
pub const TH_RST: u16 = 0x04;
pub const TH_ACK: u16 = 0x10;

/// A deterministic random source for the tests' random runs (xorshift64): `next(n)` is
/// in 0..n.
#[cfg(test)]
pub(crate) fn test_random(seed: u64) -> impl FnMut(u64) -> u64 {
    let mut state = seed;
    move |n| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % n
    }
}

//! Any sequence of TCP segments and ICMP errors among a few hosts and ports through the
//! flow table, with small bounds so that lingering, idle expiry, the sweep, the cap and
//! the record of ended flows all come into play, and a consumer that now and then takes a
//! flow's payload up no more, or attaches a sink to its client's bytes (the table's
//! `Absorber`, as SMTP's message bodies are fed) that takes or refuses chunks. Beyond "no panic, no hang", what must hold: a flow is opened
//! before any event names it and ended once, nothing names it after; each direction's
//! chunks follow one another without overlap (but for the bytes a sink took); after the
//! end every flow has ended and no sink is left.
#![no_main]

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use _core::tcp::table::{Absorber, Event, FlowTable, IcmpMatch, Ip, Limits, SegmentRef};
use libfuzzer_sys::fuzz_target;

const RECORD: usize = 20;
const HOSTS: [[u8; 4]; 3] = [[10, 0, 0, 1], [10, 0, 0, 2], [10, 0, 0, 3]];
const PORTS: [u16; 4] = [25, 587, 40000, 40001];

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// A sink that takes a chunk or refuses it as `refuse` says, in turn, and counts what it
/// took per flow.
#[derive(Debug)]
struct Sink {
    id: u64,
    refuse: u8,
    turn: u8,
    taken: Arc<Mutex<HashMap<u64, u64>>>,
}

impl Absorber for Sink {
    fn absorb(&mut self, data: &[u8]) -> bool {
        self.turn = self.turn.wrapping_add(1);
        if self.refuse >> (self.turn % 8) & 1 == 1 {
            return false;
        }
        *self.taken.lock().unwrap().entry(self.id).or_default() += data.len() as u64;
        true
    }
}

#[derive(Default)]
struct Check {
    open: HashSet<u64>,
    ended: HashSet<u64>,
    next: HashMap<(u64, usize), u64>,
    /// Bytes the sinks took, per flow (their direction's offsets skip them).
    taken: Arc<Mutex<HashMap<u64, u64>>>,
    /// Of the bytes taken, those the checker has skipped over.
    skipped: HashMap<u64, u64>,
}

impl Check {
    fn named(&mut self, id: u64, direction: usize, offset: u64, length: u64) {
        assert!(
            self.open.contains(&id),
            "event of flow {id} before it opened"
        );
        assert!(
            !self.ended.contains(&id),
            "event of flow {id} after its end"
        );
        let next = self.next.entry((id, direction)).or_insert(offset);
        if *next != offset {
            // Only a sink's bytes may lie between two chunks, and only once.
            let taken = self.taken.lock().unwrap().get(&id).copied().unwrap_or(0);
            let skipped = self.skipped.entry(id).or_default();
            assert!(
                offset > *next && offset - *next <= taken - *skipped,
                "chunks of a direction must follow one another"
            );
            *skipped += offset - *next;
        }
        *next = offset + length;
    }

    fn events(&mut self, events: Vec<Event>) {
        for event in events {
            match event {
                Event::Opened(head) => {
                    assert!(!self.ended.contains(&head.id));
                    assert!(self.open.insert(head.id), "flow {} opened twice", head.id);
                }
                Event::Data {
                    flow,
                    direction,
                    offset,
                    data,
                    ..
                } => {
                    assert!(!data.is_empty());
                    self.named(flow, direction, offset, data.len() as u64);
                }
                Event::Gap {
                    flow,
                    direction,
                    offset,
                    length,
                    ..
                } => self.named(flow, direction, offset, length),
                Event::Handshake { flow, .. } => assert!(self.open.contains(&flow)),
                Event::Ended(ended) => {
                    assert!(self.ended.insert(ended.id), "flow {} ended twice", ended.id);
                    self.open.remove(&ended.id);
                    assert!(ended.flow.notes.len() <= 8);
                    for e in &ended.flow.endpoints {
                        assert!(e.rare().fragment_frames.len() <= 50);
                    }
                }
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        linger_ns: 1_000,
        linger_frames: 3,
        idle_ns: 10_000,
        idle_frames: 5,
        max_flows: 4,
        sweep_every: 7,
        max_notes: 8,
        max_ended: 3,
        quoted_tcp_bytes: 16,
        max_pending_bytes: 2_000,
    };
    let mut table = FlowTable::new([25, 587], limits);
    let mut check = Check::default();
    let mut time: i128 = 0;
    let payload = [b'x'; 1536];
    let fragments: Vec<u64> = (1..=60).collect();
    for (i, r) in data.chunks_exact(RECORD).enumerate() {
        let frame = i as u64 + 1;
        time += match r[0] >> 6 {
            0 => -i128::from(r[1]),
            3 => i128::from(u32_at(r, 1)) << 20,
            _ => i128::from(r[1]) * 100,
        };
        let src = (
            Ip::new(&HOSTS[usize::from(r[2] % 3)]),
            PORTS[usize::from(r[2] >> 4) % 4],
        );
        let dst = (
            Ip::new(&HOSTS[usize::from(r[3] % 3)]),
            PORTS[usize::from(r[3] >> 4) % 4],
        );
        match r[0] & 3 {
            0 => {
                let found =
                    table.icmp(frame, src, dst, u64::from(r[4]), Some(u64::from(r[5]) * 10));
                if let IcmpMatch::Live(id, head) = found {
                    if let Some(head) = head {
                        check.events(vec![Event::Opened(head)]);
                    }
                    assert!(check.open.contains(&id));
                }
            }
            1 if r[4] & 1 == 1 => {
                if let Some((id, head)) = table.flow_id(src, dst) {
                    if let Some(head) = head {
                        check.events(vec![Event::Opened(head)]);
                    }
                    table.update(src, dst, id, usize::from(r[5] & 1), "smtp", r[5] & 2 == 2);
                    let sink = (r[5] & 4 == 4).then(|| {
                        Box::new(Sink {
                            id,
                            refuse: r[6],
                            turn: 0,
                            taken: Arc::clone(&check.taken),
                        }) as Box<dyn Absorber>
                    });
                    table.absorb(src, dst, id, sink);
                }
            }
            _ => {
                let length = u64::from(r[16]) * 6;
                let captured = if r[17] & 1 == 1 { length / 2 } else { length };
                table.segment(&SegmentRef {
                    frame,
                    time_ns: time,
                    version: if r[17] & 2 == 2 { 6 } else { 4 },
                    src: src.0,
                    dst: dst.0,
                    sport: src.1,
                    dport: dst.1,
                    seq: u32_at(r, 6) % 4096,
                    ack: u32_at(r, 10) % 4096,
                    flags: u16::from(r[14]),
                    window: u16::from(r[15]),
                    options: &r[4..4 + usize::from(r[5] % 14)],
                    payload: &payload[..captured as usize],
                    length,
                    ttl: r[18],
                    df: r[19] & 1 == 1,
                    ip_id: u16::from(r[19]),
                    ip_len: length + 40,
                    fragment_frames: &fragments[..usize::from(r[17] >> 2) % 60],
                });
            }
        }
        check.events(table.take());
    }
    let batch = data.first().map_or(1, |b| usize::from(*b % 5) + 1);
    while !table.finish_some(batch) {
        check.events(table.take());
    }
    check.events(table.take());
    assert!(check.open.is_empty(), "flows left open after the end");
    assert_eq!(table.absorbing(), 0, "sinks left after the end");
});

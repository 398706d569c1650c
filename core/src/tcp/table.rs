//! The flow table: TCP segments and ICMP errors in, ordered stream events out
//! (pcapsmtp/tcp/flows.py wraps it; its docstring says what the numbering follows).
//!
//! Flows are numbered like Wireshark 4.0's `tcp.stream`: a number for every 4-tuple in
//! the order of its first packet, and a new number only when a SYN (without ACK) carries
//! another initial sequence number than the one the 4-tuple's conversation started with.
//! An ICMP error quoting enough of a TCP header of a 4-tuple with no packet yet starts a
//! number too. A flow ends when a new SYN reuses its ports, `linger` after it closed,
//! after `idle` without packets, when the table is full (`max_flows`, the least recently
//! active 1 % go) or at the end of the capture; what numbering needs of it (stream,
//! endpoints, sequence analysis) is kept for up to `max_ended` ended flows, so a later
//! packet of the 4-tuple continues its stream.
//!
//! Per flow it keeps the endpoint counters, the segment notes, the handshake, the
//! per-segment analysis ([`FlowAnalysis`]) and one [`StreamReassembler`] per direction,
//! made when that direction first needs it (a SYN flood holds flows that never carry a
//! byte). Events name a flow by its id (unique for the table's life, in the order flows
//! entered the table); the one that ends a flow carries everything known of it.
//!
//! Plain Rust: the Python binding is `python_table`. Nothing here panics on any input
//! (the fuzz target `flow_table` feeds it arbitrary packets).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::analysis::{PackedSequence, Segment, SequenceAnalysis};
use super::analysis::{
    ACK_LOST_SEGMENT, ANY_RETRANSMISSION, DUPLICATE_ACK, FAST_RETRANSMISSION, KEEP_ALIVE,
    KEEP_ALIVE_ACK, LOST_SEGMENT, OUT_OF_ORDER, REUSED_PORTS, SPURIOUS_RETRANSMISSION, WINDOW_FULL,
    WINDOW_UPDATE, ZERO_WINDOW, ZERO_WINDOW_PROBE, ZERO_WINDOW_PROBE_ACK,
};
use super::ended::Remembered;
use super::flow::{DirectionEnd, FlowAnalysis, SegmentIn};
use super::options::{parse_options, Handshake};
use super::sniff::{Sniff, SniffLimits, Verdict};
use super::{TH_ACK, TH_FIN, TH_RST, TH_SYN};
use crate::reassembly::{Chunk, Content, GapReason, StreamReassembler, MAX_PENDING_BYTES};
use foldhash::fast::RandomState as KeyHashState;

/// Largest rise of the IP ID between two packets of one side still read as a counter.
pub const IP_ID_STEP: u16 = 1024;
/// Notes a flow makes room for one at a time before growing its list the usual way.
const NOTES_EXACT: usize = 8;
/// Fragment frames kept per endpoint as evidence.
pub const MAX_FRAGMENT_FRAMES: usize = 50;

/// (flag bits, Wireshark name) of the per-endpoint counts, in pcapsmtp.tcp.model's
/// WIRESHARK_NAMES order ("retransmission" covers the fast and spurious ones too).
pub const COUNTED: [(u16, &str); 15] = [
    (ANY_RETRANSMISSION, "retransmission"),
    (FAST_RETRANSMISSION, "fast_retransmission"),
    (SPURIOUS_RETRANSMISSION, "spurious_retransmission"),
    (OUT_OF_ORDER, "out_of_order"),
    (LOST_SEGMENT, "lost_segment"),
    (ACK_LOST_SEGMENT, "ack_lost_segment"),
    (DUPLICATE_ACK, "duplicate_ack"),
    (ZERO_WINDOW, "zero_window"),
    (ZERO_WINDOW_PROBE, "zero_window_probe"),
    (ZERO_WINDOW_PROBE_ACK, "zero_window_probe_ack"),
    (KEEP_ALIVE, "keep_alive"),
    (KEEP_ALIVE_ACK, "keep_alive_ack"),
    (WINDOW_UPDATE, "window_update"),
    (WINDOW_FULL, "window_full"),
    (REUSED_PORTS, "reused_ports"),
];

/// The table's bounds (pcapsmtp/tcp/flows.py's module constants, read when a table is
/// made so tests can lower them).
#[derive(Clone, Debug)]
pub struct Limits {
    pub linger_ns: i128,
    pub linger_frames: i128,
    pub idle_ns: i128,
    pub idle_frames: i128,
    pub max_flows: usize,
    pub sweep_every: u64,
    pub max_notes: usize,
    pub max_ended: usize,
    pub quoted_tcp_bytes: u64,
    pub max_pending_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            linger_ns: 10 * 1_000_000_000,
            linger_frames: 2_000,
            idle_ns: 15 * 60 * 1_000_000_000,
            idle_frames: 100_000,
            max_flows: 100_000,
            sweep_every: 10_000,
            max_notes: 20_000,
            max_ended: 100_000,
            quoted_tcp_bytes: 16,
            max_pending_bytes: MAX_PENDING_BYTES,
        }
    }
}

/// An IPv4 or IPv6 address as its packed bytes (longer input is cut at 16), ordered as
/// Python orders bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Ip {
    len: u8,
    bytes: [u8; 16],
}

impl Ip {
    pub fn new(packed: &[u8]) -> Self {
        let len = packed.len().min(16);
        let mut bytes = [0u8; 16];
        bytes[..len].copy_from_slice(&packed[..len]);
        Ip {
            len: len as u8,
            bytes,
        }
    }
    pub fn as_slice(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

impl Ord for Ip {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_slice().cmp(other.as_slice())
    }
}

impl PartialOrd for Ip {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// (address, port).
pub type Addr = (Ip, u16);
/// The two (address, port) pairs, the lower first: a packet and its answer share it.
pub type Key = (Addr, Addr);

pub fn flow_key(src: Addr, dst: Addr) -> Key {
    if src <= dst {
        (src, dst)
    } else {
        (dst, src)
    }
}

/// One TCP segment as the table reads it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SegmentRef<'a> {
    pub frame: u64,
    pub time_ns: i128,
    pub version: u8,
    pub src: Ip,
    pub dst: Ip,
    pub sport: u16,
    pub dport: u16,
    pub seq: u32,
    pub ack: u32,
    pub flags: u16,
    pub window: u16,
    pub options: &'a [u8],
    /// Captured payload; shorter than `length` under a snap length.
    pub payload: &'a [u8],
    pub length: u64,
    pub ttl: u8,
    pub df: bool,
    pub ip_id: u16,
    pub ip_len: u64,
    pub fragment_frames: &'a [u64],
}

/// How the client of a flow was identified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Role {
    Syn,
    SynAck,
    Port,
    Guess,
    /// Set by a consumer (the SMTP tracker's "smtp"): the table's one copy of the name,
    /// shared by its flows (see [`FlowTable::update`]).
    Other(Arc<str>),
}

impl Role {
    pub fn as_str(&self) -> &str {
        match self {
            Role::Syn => "syn",
            Role::SynAck => "syn-ack",
            Role::Port => "port",
            Role::Guess => "guess",
            Role::Other(s) => s,
        }
    }
    pub fn named(s: &str) -> Self {
        match s {
            "syn" => Role::Syn,
            "syn-ack" => Role::SynAck,
            "port" => Role::Port,
            "guess" => Role::Guess,
            other => Role::Other(other.into()),
        }
    }
}

/// Counts by a key, in the order keys were first seen (as a Python Counter iterates).
#[derive(Clone, Debug, Default)]
pub struct Tally<K> {
    pub entries: Vec<(K, u64)>,
    /// Key -> its place in `entries`, once there are many. Boxed on purpose: most
    /// tallies never have one, and None then costs 8 bytes instead of a HashMap's 48.
    #[allow(clippy::box_collection)]
    index: Option<Box<HashMap<K, usize>>>,
}

const TALLY_INDEX_FROM: usize = 16;
/// Keys a tally makes room for one at a time before growing the usual way.
const TALLY_EXACT: usize = 4;

impl<K> Tally<K> {
    pub const fn new() -> Self {
        Tally {
            entries: Vec::new(),
            index: None,
        }
    }
}

impl<K: Copy + Eq + std::hash::Hash> Tally<K> {
    pub fn add(&mut self, key: K) {
        let at = match &self.index {
            Some(index) => index.get(&key).copied(),
            None => self.entries.iter().position(|(k, _)| *k == key),
        };
        match at {
            Some(i) => self.entries[i].1 += 1,
            None => {
                // Exact room for the first few keys (an endpoint sends with one TTL; the
                // amortized growth would make room for four at once).
                if self.entries.len() == self.entries.capacity() && self.entries.len() < TALLY_EXACT
                {
                    self.entries.reserve_exact(1);
                }
                self.entries.push((key, 1));
                let n = self.entries.len();
                if let Some(index) = &mut self.index {
                    index.insert(key, n - 1);
                } else if n > TALLY_INDEX_FROM {
                    self.index = Some(Box::new(
                        self.entries
                            .iter()
                            .enumerate()
                            .map(|(i, (k, _))| (*k, i))
                            .collect(),
                    ));
                }
            }
        }
    }
}

/// The TTLs an endpoint sent with and how many segments each, in the order first seen
/// (a [`Tally`]): the first in place, since nearly every endpoint keeps one TTL; the
/// others, if any, in a tally made when the second TTL comes (issue 19: two allocations
/// fewer per open flow).
#[derive(Clone, Debug, Default)]
pub struct Ttls {
    first: u8,
    /// Segments sent with `first` (0: none yet).
    first_count: u64,
    #[allow(clippy::box_collection)]
    others: Option<Box<Tally<u8>>>,
}

impl Ttls {
    pub fn add(&mut self, ttl: u8) {
        if self.first_count == 0 {
            self.first = ttl;
            self.first_count = 1;
        } else if ttl == self.first {
            self.first_count += 1;
        } else {
            self.others.get_or_insert_with(Default::default).add(ttl);
        }
    }

    /// (TTL, segments) in the order first seen, as a [`Tally`]'s entries.
    pub fn entries(&self) -> Vec<(u8, u64)> {
        let mut entries = Vec::new();
        if self.first_count != 0 {
            entries.push((self.first, self.first_count));
        }
        if let Some(others) = &self.others {
            entries.extend_from_slice(&others.entries);
        }
        entries
    }
}

/// One side of a flow and everything measured about what it sent
/// (pcapsmtp.tcp.model.Endpoint). What most flows never need (analysis flags,
/// fragments, gaps, ICMP too-big, closing) lives in `rare`, made when first needed, so
/// an open flow that only talks costs no more than its common counters.
#[derive(Clone, Debug, Default)]
pub struct EndpointFacts {
    pub ip: Ip,
    pub port: u16,
    pub handshake: Option<Handshake>,
    pub ip_id_last: Option<u16>,
    pub packets: u64,
    pub bytes: u64,
    pub ip_bytes: u64,
    pub data_segments: u64,
    pub max_segment: u64,
    pub max_ip_len: u64,
    pub ttls: Ttls,
    pub df_set: u64,
    pub df_clear: u64,
    pub ip_id_pairs: u64,
    pub ip_id_steps: u64,
    pub stream_bytes: u64,
    pub last_time_ns: i128,
    rare: Option<Box<EndpointRare>>,
}

/// The figures of an endpoint most flows never use (see [`EndpointFacts`]).
#[derive(Clone, Debug, Default)]
pub struct EndpointRare {
    /// Index into [`COUNTED`] -> segments.
    pub counts: Tally<u8>,
    pub retransmitted_sizes: Tally<u64>,
    pub fragmented: u64,
    pub fragment_frames: Vec<u64>,
    pub gaps: u64,
    pub gap_bytes: u64,
    pub too_big_mtu: Option<u64>,
    pub max_ip_len_after_too_big: u64,
    pub closed_frame: Option<u64>,
    pub peer_silent_ns: Option<i128>,
}

/// What an endpoint without rare figures reads.
static NO_RARE: EndpointRare = EndpointRare {
    counts: Tally::new(),
    retransmitted_sizes: Tally::new(),
    fragmented: 0,
    fragment_frames: Vec::new(),
    gaps: 0,
    gap_bytes: 0,
    too_big_mtu: None,
    max_ip_len_after_too_big: 0,
    closed_frame: None,
    peer_silent_ns: None,
};

impl EndpointFacts {
    fn new(addr: Addr) -> Self {
        EndpointFacts {
            ip: addr.0,
            port: addr.1,
            ..Default::default()
        }
    }

    fn addr(&self) -> Addr {
        (self.ip, self.port)
    }

    /// The rare figures (all zero / empty when none were ever set).
    pub fn rare(&self) -> &EndpointRare {
        self.rare.as_deref().unwrap_or(&NO_RARE)
    }

    /// The rare figures, made on first use.
    pub fn rare_mut(&mut self) -> &mut EndpointRare {
        self.rare.get_or_insert_with(Default::default)
    }
}

/// A segment worth remembering: it carried an analysis flag, a SYN, FIN or RST.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Note {
    pub frame: u64,
    pub time_ns: i128,
    pub direction: u8,
    pub tcp_flags: u16,
    pub analysis: u16,
    pub seq: u32,
    pub length: u64,
    pub ip_len: u64,
    pub ttl: u8,
    pub ip_id: u16,
    pub prev_ip_id: Option<u16>,
    /// For a RST: how far its sequence number was beyond the next one expected of its
    /// sender (`SequenceAnalysis::ahead_of_next`); 0 otherwise.
    pub rst_ahead: u32,
}

/// A time in nanoseconds, or none: an `Option<i128>` in 24 bytes instead of 32 (the
/// value kept as two 64-bit halves, so the flag does not take i128's 16-byte alignment);
/// it compares with and shows as the `Option<i128>` it stands for.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub struct MaybeTime {
    set: bool,
    low: u64,
    high: i64,
}

impl MaybeTime {
    pub const NONE: MaybeTime = MaybeTime {
        set: false,
        low: 0,
        high: 0,
    };

    pub fn some(time_ns: i128) -> Self {
        MaybeTime {
            set: true,
            low: time_ns as u64,
            high: (time_ns >> 64) as i64,
        }
    }

    pub fn get(self) -> Option<i128> {
        self.set
            .then(|| (i128::from(self.high) << 64) | i128::from(self.low))
    }

    pub fn is_some(self) -> bool {
        self.set
    }

    pub fn is_none(self) -> bool {
        !self.set
    }
}

impl From<Option<i128>> for MaybeTime {
    fn from(time_ns: Option<i128>) -> Self {
        time_ns.map_or(MaybeTime::NONE, MaybeTime::some)
    }
}

impl PartialEq<Option<i128>> for MaybeTime {
    fn eq(&self, other: &Option<i128>) -> bool {
        self.get() == *other
    }
}

impl std::fmt::Debug for MaybeTime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&self.get(), f)
    }
}

/// One TCP connection (pcapsmtp.tcp.model.TcpFlow), as far as the table fills it.
#[derive(Clone, Debug)]
pub struct FlowFacts {
    pub stream: u64,
    pub endpoints: [EndpointFacts; 2],
    pub client: usize,
    pub first_frame: u64,
    pub first_time_ns: i128,
    pub last_frame: u64,
    pub last_time_ns: i128,
    pub syn_time_ns: MaybeTime,
    pub synack_time_ns: MaybeTime,
    pub handshake_ack_time_ns: MaybeTime,
    pub role_from: Role,
    pub continues: Option<u64>,
    pub notes: Vec<Note>,
    pub dropped_notes: u64,
    pub ignore_payload: bool,
}

impl FlowFacts {
    fn direction(&self, src: Addr) -> usize {
        usize::from(self.endpoints[0].addr() != src)
    }
}

/// What a consumer first learns of a live flow (what stays as it is while it lives; the
/// handshake times change later only through [`Event::Handshake`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlowHead {
    pub id: u64,
    pub stream: u64,
    pub endpoints: [Addr; 2],
    pub client: usize,
    pub first_frame: u64,
    pub first_time_ns: i128,
    pub role_from: Role,
    pub continues: Option<u64>,
    pub syn_time_ns: Option<i128>,
    pub synack_time_ns: Option<i128>,
    pub handshake_ack_time_ns: Option<i128>,
}

/// What an ended flow hands over beyond its facts.
#[derive(Clone, Debug)]
pub struct EndedFlow {
    pub id: u64,
    pub flow: FlowFacts,
    pub state: &'static str,
    pub history: String,
    pub ends: [DirectionEnd; 2],
    /// Per direction: retransmitted bytes that differ from the first copy.
    pub mismatches: [u64; 2],
    /// Per direction: holes given up at the reassembly bound, and their bytes.
    pub limited: [(u64, u64); 2],
}

/// What the table hands its consumer, in order.
#[derive(Clone, Debug)]
pub enum Event {
    Data {
        flow: u64,
        direction: usize,
        offset: u64,
        data: Vec<u8>,
        frame: u64,
        time_ns: i128,
    },
    Gap {
        flow: u64,
        direction: usize,
        offset: u64,
        length: u64,
        frame: u64,
        time_ns: i128,
        reason: GapReason,
    },
    /// The consumer is handed a flow for the first time (before the events naming it).
    Opened(Box<FlowHead>),
    /// The handshake times of a flow its consumer has seen changed.
    Handshake {
        flow: u64,
        syn_time_ns: Option<i128>,
        synack_time_ns: Option<i128>,
        handshake_ack_time_ns: Option<i128>,
    },
    Ended(Box<EndedFlow>),
}

/// A consumer's sink for the in-order bytes of a flow's client: SMTP's message bodies
/// (pcapsmtp/smtp/dialogue.py's DATA_BODY; the binding is python_table's `BodySink`), or
/// the encrypted TLS records of the client and the server (crate::tls_records;
/// python_table's `TlsSink`, the one sink offered the server's bytes too,
/// `absorb_server`; what is said here of the client's chunks holds for them as well).
/// While one is attached ([`FlowTable::absorb`]), each data chunk of the client's
/// direction is offered to it before it becomes an [`Event::Data`]; a chunk it takes
/// makes no event at all, so the consumer is not called for it.
///
/// The contract, which keeps what the consumer ends up with the same as when it reads
/// every chunk itself:
/// - a chunk is offered only while no [`Event::Data`] or [`Event::Gap`] naming its flow
///   waits among the events not taken yet: what the consumer has not seen may change what
///   it wants (a reply that ends the message, a gap), so from such an event on, the
///   flow's chunks of that batch go out as events, in the reassembler's order;
/// - gaps are never offered: they go out as events;
/// - the sink refuses a chunk it must not take (for a DATA body the one that completes
///   the end-of-data marker, where the dialogue goes on), leaving its state as if the
///   chunk had never been offered; that chunk goes out as an event;
/// - the sink stays attached until the consumer detaches it (a later `absorb` with
///   None) or the flow ends, and is dropped with the flow. The consumer attaches it only
///   between batches, once it has read every event before (pcapsmtp/tcp/flows.py's
///   `_sync`, before the next packet), so a sink never sees a byte it should not.
pub trait Absorber: Send + Sync + std::fmt::Debug {
    /// The next chunk of the client's bytes: true when taken.
    fn absorb(&mut self, data: &[u8]) -> bool;

    /// The next chunk of the server's bytes: true when taken (none is, unless the sink
    /// says so: a TLS sink walks the server's records too).
    fn absorb_server(&mut self, _data: &[u8]) -> bool {
        false
    }
}

/// What became of an ICMP error quoting a TCP header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IcmpMatch {
    /// Tied to a live flow: its id, and its head the first time the consumer is told.
    Live(u64, Option<Box<FlowHead>>),
    /// No live flow, and too short a quote for a stream number.
    Unmatched,
    /// No live flow: the stream number Wireshark gives it, and whether it began it.
    Numbered { stream: u64, started: bool },
}

/// What numbering needs of an ended flow, or of a conversation only ICMP errors quoted
/// (`sequence` [`Kept::Nothing`]). Up to `max_ended` of them are kept, so it is small
/// (issue 19): 40 bytes beside its key in [`Remembered`]'s ring, the sequence analysis
/// packed apart (see [`Kept`]).
#[derive(Clone, Debug)]
struct Ended {
    stream: u64,
    /// Where the stream began: the first frame of its first flow, or the ICMP error.
    frame: u64,
    /// How the client was identified: [`Role`]'s four kinds as 0..=3, a consumer's name
    /// as 4 + its place in `FlowTable::role_names`.
    role: u32,
    /// The client's endpoint (0 or 1).
    client: u8,
    /// The ended flow's endpoint 0 is the key's first (address, port).
    first_is_low: bool,
    sequence: Kept,
}

/// The sequence analysis an ended flow continues with when a packet of its 4-tuple
/// comes back: a late segment's flags are told against it as tshark does.
#[derive(Clone, Debug)]
enum Kept {
    /// A conversation only ICMP errors quoted.
    Nothing,
    Packed(Box<PackedSequence>),
    /// What [`SequenceAnalysis::pack`] could not pack (a time beyond 64-bit ns).
    Full(Box<SequenceAnalysis>),
}

const ROLE_OTHER: u32 = 4;

/// A flow and the machinery filling it.
#[derive(Debug)]
struct Live {
    id: u64,
    flow: FlowFacts,
    analysis: FlowAnalysis,
    reassembly: [Option<Box<StreamReassembler>>; 2],
    /// Per direction, the SYN's sequence number while its reassembler is not made yet.
    isn: [Option<u32>; 2],
    closed_at: MaybeTime,
    /// The consumer was handed the flow (an event named it, or `flow_id` found it).
    exposed: bool,
}

/// The flow table.
#[derive(Debug)]
pub struct FlowTable {
    limits: Limits,
    server_ports: HashSet<u16>,
    /// Stream numbers given so far.
    pub streams: u64,
    /// Flows ended early because `max_flows` were open at once.
    pub evicted: u64,
    table: HashMap<Key, Box<Live>, KeyHashState>,
    /// Up to `max_ended` ended flows, the oldest remembered forgotten first.
    ended: Remembered<Key, Ended, KeyHashState>,
    /// The consumers' role names of ended flows, each once (see `Ended::role`).
    /// The same names give consumer roles ([`Role::Other`]) their one copy.
    role_names: Vec<Arc<str>>,
    role_codes: HashMap<Arc<str>, u32>,
    next_id: u64,
    packets: u64,
    out: Vec<Event>,
    /// Flows named by a Data or Gap event in `out` (none is offered to its absorber).
    named: Vec<u64>,
    /// Flow id -> the sink its client's bytes go to (see [`Absorber`]); apart from
    /// [`Live`] so that a flow without one costs nothing.
    absorbers: HashMap<u64, Box<dyn Absorber>>,
    /// While `finish_some` ends the flows: those left, the next last.
    finishing: Option<Vec<Key>>,
    /// Set by [`FlowTable::sniff`]: the events of flows on other ports held (super::sniff).
    sniff: Option<SniffLimits>,
    /// Flow id -> the events held of it, while its heads are undecided.
    sniffing: HashMap<u64, Box<Sniff>>,
}

fn expired(limits: &Limits, live: &Live, now_ns: i128, frame: u64) -> bool {
    let since = i128::from(frame) - i128::from(live.flow.last_frame);
    let closed = live
        .closed_at
        .get()
        .is_some_and(|at| now_ns - at > limits.linger_ns);
    let idle = now_ns - live.flow.last_time_ns > limits.idle_ns;
    (closed && since > limits.linger_frames) || (idle && since > limits.idle_frames)
}

impl FlowTable {
    pub fn new(server_ports: impl IntoIterator<Item = u16>, limits: Limits) -> Self {
        let ended = Remembered::new(limits.max_ended, KeyHashState::default());
        FlowTable {
            limits,
            server_ports: server_ports.into_iter().collect(),
            streams: 0,
            evicted: 0,
            table: HashMap::default(),
            ended,
            role_names: Vec::new(),
            role_codes: HashMap::new(),
            next_id: 0,
            packets: 0,
            out: Vec::new(),
            named: Vec::new(),
            absorbers: HashMap::new(),
            finishing: None,
            sniff: None,
            sniffing: HashMap::new(),
        }
    }

    /// Hold the Data and Gap events of a flow whose ports are no server port, never handed
    /// to the consumer yet, while its first `limit` bytes per direction show neither
    /// `220` nor `hlo`/`helo`; give it up (its payload ignored) once a head is full or more
    /// than `hold` bytes were held; hand all on once one shows them (super::sniff: the
    /// SMTP tracker's sniffer on other ports decides the same on the same events).
    pub fn sniff(&mut self, limit: usize, hold: usize) {
        self.sniff = Some(SniffLimits { limit, hold });
    }

    /// Flows whose events are held now.
    pub fn held(&self) -> usize {
        self.sniffing.len()
    }

    /// Flows open now.
    pub fn open(&self) -> usize {
        self.table.len()
    }

    /// Ended flows remembered for their numbering now.
    pub fn remembered(&self) -> usize {
        self.ended.len()
    }

    /// The events since the last call.
    pub fn take(&mut self) -> Vec<Event> {
        self.named.clear();
        std::mem::take(&mut self.out)
    }

    /// Attach `absorber` to the client's bytes of live flow `id` (between `src` and
    /// `dst`), or with None detach the one it has (see [`Absorber`]). A flow no longer
    /// live is left alone.
    pub fn absorb(&mut self, src: Addr, dst: Addr, id: u64, absorber: Option<Box<dyn Absorber>>) {
        if !self
            .table
            .get(&flow_key(src, dst))
            .is_some_and(|live| live.id == id)
        {
            return;
        }
        match absorber {
            Some(absorber) => {
                self.absorbers.insert(id, absorber);
            }
            None => {
                self.absorbers.remove(&id);
            }
        }
    }

    /// Flows with an absorber attached.
    pub fn absorbing(&self) -> usize {
        self.absorbers.len()
    }

    /// Events wait for `take`.
    pub fn ready(&self) -> bool {
        !self.out.is_empty()
    }

    /// The live flow a segment of `src` -> `dst` belongs to: its id, and its head the
    /// first time the consumer is handed it.
    pub fn flow_id(&mut self, src: Addr, dst: Addr) -> Option<(u64, Option<Box<FlowHead>>)> {
        let live = self.table.get_mut(&flow_key(src, dst))?;
        Some((live.id, expose(live)))
    }

    /// The consumer's changes to a live flow: the client it recognised (with how), and
    /// whether it gave the payload up (only numbering is kept from then on).
    pub fn update(
        &mut self,
        src: Addr,
        dst: Addr,
        id: u64,
        client: usize,
        role: &str,
        ignore: bool,
    ) {
        let key = flow_key(src, dst);
        let changed = self
            .table
            .get(&key)
            .is_some_and(|live| live.id == id && live.flow.role_from.as_str() != role);
        let named = if changed {
            Some(self.named(role))
        } else {
            None
        };
        if let Some(live) = self.table.get_mut(&key) {
            if live.id == id {
                live.flow.client = client & 1;
                if let Some(named) = named {
                    live.flow.role_from = named;
                }
                live.flow.ignore_payload = ignore;
            }
        }
    }

    /// One TCP segment.
    pub fn segment(&mut self, seg: &SegmentRef<'_>) {
        self.packets += 1;
        if self.limits.sweep_every != 0 && self.packets % self.limits.sweep_every == 0 {
            self.sweep(seg.time_ns, seg.frame);
        }
        let src = (seg.src, seg.sport);
        let key = flow_key(src, (seg.dst, seg.dport));
        // The common case of a flow given up, in one lookup: what the steps below come to
        // for a live flow that has not expired and a segment without SYN.
        if let Some(live) = self.table.get_mut(&key) {
            if live.flow.ignore_payload
                && seg.flags & TH_SYN == 0
                && !expired(&self.limits, live, seg.time_ns, seg.frame)
            {
                number_only(live, seg);
                return;
            }
        }
        let mut present = match self.table.get(&key) {
            Some(live) => {
                if expired(&self.limits, live, seg.time_ns, seg.frame) {
                    self.end(&key, true);
                    false
                } else {
                    true
                }
            }
            None => false,
        };
        if !present && !self.ended.is_empty() {
            if let Some(ended) = self.ended.remove(&key) {
                let live = self.revive(ended, seg);
                self.table.insert(key, live);
                present = true;
            }
        }
        let mut reused = false;
        if present && seg.flags & TH_SYN != 0 {
            if let Some(live) = self.table.get(&key) {
                let d = live.flow.direction(src);
                reused = live.analysis.sequence.reuses(d, seg.seq);
                if reused && seg.flags & TH_ACK == 0 {
                    if live.flow.last_frame != 0 {
                        self.end(&key, false);
                    } else {
                        // Revived for this SYN, which starts a new stream instead.
                        self.table.remove(&key);
                    }
                    present = false;
                }
            }
        }
        if !present {
            if self.table.len() >= self.limits.max_flows {
                self.evict();
            }
            let flow = self.new_flow(seg, None);
            let live = self.live(flow, None);
            self.table.insert(key, live);
        }
        // A flow given up (most packets of a capture of other traffic) is updated where it
        // lies; update_flow needs the table too, so its flow is taken out meanwhile.
        match self.table.get_mut(&key) {
            Some(live) if live.flow.ignore_payload => {
                number_only(live, seg);
                return;
            }
            Some(_) => {}
            None => return,
        }
        let Some(mut live) = self.table.remove(&key) else {
            return;
        };
        self.update_flow(&mut live, seg, reused);
        self.table.insert(key, live);
    }

    fn live(&mut self, flow: FlowFacts, previous: Option<Box<SequenceAnalysis>>) -> Box<Live> {
        let flipped = flow.client != 0;
        let analysis = match previous {
            Some(sequence) => FlowAnalysis::continuing(*sequence, flipped),
            None => FlowAnalysis::new(flipped),
        };
        let id = self.next_id;
        self.next_id += 1;
        Box::new(Live {
            id,
            flow,
            analysis,
            reassembly: [None, None],
            isn: [None, None],
            closed_at: MaybeTime::NONE,
            exposed: false,
        })
    }

    /// A flow continuing the stream number (and sequence analysis) of an ended flow, or
    /// of a conversation only ICMP errors quoted so far.
    fn revive(&mut self, ended: Ended, seg: &SegmentRef<'_>) -> Box<Live> {
        let sequence = match ended.sequence {
            Kept::Nothing => {
                let mut flow = self.new_flow(seg, Some(ended.stream));
                flow.continues = Some(ended.frame);
                return self.live(flow, None);
            }
            Kept::Packed(packed) => Box::new(packed.unpack()),
            Kept::Full(full) => full,
        };
        let src = (seg.src, seg.sport);
        let (low, high) = flow_key(src, (seg.dst, seg.dport));
        let first = if ended.first_is_low { low } else { high };
        let second = if src == first {
            (seg.dst, seg.dport)
        } else {
            src
        };
        let flow = FlowFacts {
            stream: ended.stream,
            endpoints: [EndpointFacts::new(first), EndpointFacts::new(second)],
            client: usize::from(ended.client),
            first_frame: seg.frame,
            first_time_ns: seg.time_ns,
            last_frame: 0,
            last_time_ns: 0,
            syn_time_ns: MaybeTime::NONE,
            synack_time_ns: MaybeTime::NONE,
            handshake_ack_time_ns: MaybeTime::NONE,
            role_from: self.role(ended.role),
            continues: Some(ended.frame),
            notes: Vec::new(),
            dropped_notes: 0,
            ignore_payload: false,
        };
        self.live(flow, Some(sequence))
    }

    /// The code `Ended::role` keeps for `role`.
    fn role_code(&mut self, role: &Role) -> u32 {
        match role {
            Role::Syn => 0,
            Role::SynAck => 1,
            Role::Port => 2,
            Role::Guess => 3,
            Role::Other(name) => self.other_code(name),
        }
    }

    /// The code of a consumer's role name (4 up), given on its first use.
    fn other_code(&mut self, name: &str) -> u32 {
        if let Some(&code) = self.role_codes.get(name) {
            return code;
        }
        let code = ROLE_OTHER.saturating_add(self.role_names.len() as u32);
        let shared: Arc<str> = name.into();
        self.role_names.push(Arc::clone(&shared));
        self.role_codes.insert(shared, code);
        code
    }

    /// The role called `name`; a consumer's name is the table's one copy of it.
    fn named(&mut self, name: &str) -> Role {
        match Role::named(name) {
            Role::Other(_) => {
                let code = self.other_code(name);
                self.role(code)
            }
            known => known,
        }
    }

    /// The role `role_code` gave `code`.
    fn role(&self, code: u32) -> Role {
        match code {
            0 => Role::Syn,
            1 => Role::SynAck,
            2 => Role::Port,
            3 => Role::Guess,
            _ => {
                let i = (code - ROLE_OTHER) as usize;
                Role::Other(
                    self.role_names
                        .get(i)
                        .cloned()
                        .unwrap_or_else(|| Arc::from("")),
                )
            }
        }
    }

    fn remember(&mut self, key: Key, ended: Ended) {
        self.ended.insert(key, ended);
    }

    fn new_flow(&mut self, seg: &SegmentRef<'_>, stream: Option<u64>) -> FlowFacts {
        let ports = &self.server_ports;
        let (client, role_from) = if seg.flags & TH_SYN != 0 {
            if seg.flags & TH_ACK != 0 {
                (1, Role::SynAck)
            } else {
                (0, Role::Syn)
            }
        } else if ports.contains(&seg.dport) && !ports.contains(&seg.sport) {
            (0, Role::Port)
        } else if ports.contains(&seg.sport) && !ports.contains(&seg.dport) {
            (1, Role::Port)
        } else {
            (usize::from(seg.sport < seg.dport), Role::Guess)
        };
        let stream = stream.unwrap_or_else(|| {
            self.streams += 1;
            self.streams - 1
        });
        FlowFacts {
            stream,
            endpoints: [
                EndpointFacts::new((seg.src, seg.sport)),
                EndpointFacts::new((seg.dst, seg.dport)),
            ],
            client,
            first_frame: seg.frame,
            first_time_ns: seg.time_ns,
            last_frame: 0,
            last_time_ns: 0,
            syn_time_ns: MaybeTime::NONE,
            synack_time_ns: MaybeTime::NONE,
            handshake_ack_time_ns: MaybeTime::NONE,
            role_from,
            continues: None,
            notes: Vec::new(),
            dropped_notes: 0,
            ignore_payload: false,
        }
    }

    fn update_flow(&mut self, live: &mut Live, seg: &SegmentRef<'_>, reused: bool) {
        let d = live.flow.direction((seg.src, seg.sport));
        let (flags, length, time_ns) = (seg.flags, seg.length, seg.time_ns);
        let flow = &mut live.flow;
        flow.last_frame = seg.frame;
        flow.last_time_ns = time_ns;
        let peer_packets = flow.endpoints[1 - d].packets;
        let peer_last = flow.endpoints[1 - d].last_time_ns;
        let sender = &mut flow.endpoints[d];
        if flags & (TH_FIN | TH_RST) != 0 && sender.rare().closed_frame.is_none() {
            let rare = sender.rare_mut();
            rare.closed_frame = Some(seg.frame);
            if peer_packets != 0 {
                rare.peer_silent_ns = Some(time_ns - peer_last);
            }
        }
        sender.last_time_ns = time_ns;
        sender.packets += 1;
        sender.bytes += length;
        sender.ip_bytes += seg.ip_len;
        if seg.df {
            sender.df_set += 1;
        } else {
            sender.df_clear += 1;
        }
        sender.ttls.add(seg.ttl);
        if seg.version == 4 && flags & TH_RST == 0 {
            if let Some(last) = sender.ip_id_last {
                sender.ip_id_pairs += 1;
                let step = seg.ip_id.wrapping_sub(last);
                if step > 0 && step <= IP_ID_STEP {
                    sender.ip_id_steps += 1;
                }
            }
            sender.ip_id_last = Some(seg.ip_id);
        }
        if !seg.fragment_frames.is_empty() {
            let rare = sender.rare_mut();
            rare.fragmented += 1;
            let room = MAX_FRAGMENT_FRAMES.saturating_sub(rare.fragment_frames.len());
            let n = room.min(seg.fragment_frames.len());
            rare.fragment_frames
                .extend_from_slice(&seg.fragment_frames[..n]);
        }
        if length != 0 {
            sender.data_segments += 1;
            sender.max_segment = sender.max_segment.max(length);
            sender.max_ip_len = sender.max_ip_len.max(seg.ip_len);
            if let Some(rare) = sender.rare.as_deref_mut() {
                if rare.too_big_mtu.is_some() && seg.ip_len > rare.max_ip_len_after_too_big {
                    rare.max_ip_len_after_too_big = seg.ip_len;
                }
            }
        }

        let wscale = if flags & TH_SYN != 0 {
            self.handshake(live, d, seg)
        } else {
            None
        };
        let rst_ahead = if flags & TH_RST != 0 {
            live.analysis.sequence.ahead_of_next(d, seg.seq)
        } else {
            0
        };
        let flow = &mut live.flow;
        let analysis = live.analysis.segment(&SegmentIn {
            segment: Segment {
                frame: seg.frame,
                time_ns,
                seq: seg.seq,
                ack: seg.ack,
                length,
                flags,
                window: seg.window,
            },
            direction: d,
            is_client: d == flow.client,
            ip_len: seg.ip_len,
            reused,
            wscale,
        });
        if flow.synack_time_ns.is_some()
            && flow.handshake_ack_time_ns.is_none()
            && flags & (TH_SYN | TH_ACK) == TH_ACK
        {
            flow.handshake_ack_time_ns = MaybeTime::some(time_ns);
            self.handshake_changed(live);
        }
        let flow = &mut live.flow;
        if analysis != 0 {
            let rare = flow.endpoints[d].rare_mut();
            for (i, (bits, _)) in COUNTED.iter().enumerate() {
                if analysis & bits != 0 {
                    rare.counts.add(i as u8);
                }
            }
            if analysis & ANY_RETRANSMISSION != 0 && length != 0 {
                rare.retransmitted_sizes.add(seg.ip_len);
            }
        }
        if analysis != 0 || flags & (TH_SYN | TH_FIN | TH_RST) != 0 {
            if flow.notes.len() >= self.limits.max_notes {
                flow.dropped_notes += 1;
            } else {
                let v4 = seg.version == 4;
                // Exact room for a flow's first few notes (a handshake leaves two; the
                // amortized growth would make room for four at once).
                if flow.notes.len() == flow.notes.capacity() && flow.notes.len() < NOTES_EXACT {
                    flow.notes.reserve_exact(1);
                }
                flow.notes.push(Note {
                    frame: seg.frame,
                    time_ns,
                    direction: d as u8,
                    tcp_flags: flags,
                    analysis,
                    seq: seg.seq,
                    length,
                    ip_len: seg.ip_len,
                    ttl: seg.ttl,
                    ip_id: if v4 { seg.ip_id } else { 0 },
                    prev_ip_id: if v4 && flags & TH_RST != 0 {
                        flow.endpoints[d].ip_id_last
                    } else {
                        None
                    },
                    rst_ahead,
                });
            }
        }
        self.reassemble(live, d, seg);
        closing(live, d, flags, time_ns);
    }

    fn handshake_changed(&mut self, live: &Live) {
        if live.exposed {
            self.out.push(Event::Handshake {
                flow: live.id,
                syn_time_ns: live.flow.syn_time_ns.get(),
                synack_time_ns: live.flow.synack_time_ns.get(),
                handshake_ack_time_ns: live.flow.handshake_ack_time_ns.get(),
            });
        }
    }

    /// A SYN or SYN/ACK: its options and times; the window scale it announced.
    fn handshake(&mut self, live: &mut Live, d: usize, seg: &SegmentRef<'_>) -> Option<u8> {
        let handshake = parse_options(seg.options);
        let flow = &mut live.flow;
        if flow.endpoints[d].handshake.is_none() {
            flow.endpoints[d].handshake = Some(handshake);
        }
        let mut changed = false;
        if seg.flags & TH_ACK != 0 {
            if flow.synack_time_ns.is_none() {
                flow.synack_time_ns = MaybeTime::some(seg.time_ns);
                changed = true;
            }
        } else if flow.syn_time_ns.is_none() {
            flow.syn_time_ns = MaybeTime::some(seg.time_ns);
            changed = true;
        }
        if changed {
            self.handshake_changed(live);
        }
        if let Some(reassembler) = live.reassembly[d].as_mut() {
            reassembler.start(seg.seq);
        } else if live.isn[d].is_none() {
            live.isn[d] = Some(seg.seq);
        }
        handshake.wscale
    }

    fn reassembler<'a>(&self, live: &'a mut Live, d: usize) -> &'a mut StreamReassembler {
        let isn = live.isn[d];
        let max = self.limits.max_pending_bytes;
        live.reassembly[d].get_or_insert_with(|| {
            let mut reassembler = StreamReassembler::new(max);
            if let Some(isn) = isn {
                reassembler.start(isn);
            }
            Box::new(reassembler)
        })
    }

    fn reassemble(&mut self, live: &mut Live, d: usize, seg: &SegmentRef<'_>) {
        let flags = seg.flags;
        if seg.length != 0 || flags & TH_FIN != 0 {
            let mine = self.reassembler(live, d);
            if seg.length != 0 {
                mine.segment(seg.seq, seg.payload, seg.length, seg.frame, seg.time_ns);
            }
            if flags & TH_FIN != 0 {
                mine.fin(seg.seq.wrapping_add(seg.length as u32));
            }
        }
        if flags & TH_ACK != 0 {
            // An ACK of the peer's SYN alone changes nothing in a reassembler not made yet.
            if live.reassembly[1 - d].is_none() {
                if let Some(isn) = live.isn[1 - d] {
                    if seg.ack != isn.wrapping_add(1) {
                        self.reassembler(live, 1 - d);
                    }
                }
            }
            if let Some(peers) = live.reassembly[1 - d].as_mut() {
                peers.acknowledged(seg.ack, seg.frame, seg.time_ns);
            }
        }
        // What this ACK releases of the peer's stream (a gap, the bytes held behind it) was
        // sent before this segment: it goes first, so a reply follows the command it answers.
        for direction in [1 - d, d] {
            let chunks = match live.reassembly[direction].as_mut() {
                Some(r) if r.ready() != 0 => r.take(),
                _ => continue,
            };
            self.emit(live, direction, chunks);
        }
    }

    fn emit(&mut self, live: &mut Live, direction: usize, chunks: Vec<Chunk>) {
        let mut held = self.sniff.is_some() && self.sniffed(live);
        if !held {
            if let Some(head) = expose(live) {
                self.out.push(Event::Opened(head));
            }
        }
        let is_client = direction == live.flow.client;
        for chunk in chunks {
            let endpoint = &mut live.flow.endpoints[direction];
            match chunk.content {
                Content::Gap(reason) => {
                    let rare = endpoint.rare_mut();
                    rare.gaps += 1;
                    rare.gap_bytes += chunk.length;
                    live.analysis.conn.record(b'g', is_client, None);
                    let event = Event::Gap {
                        flow: live.id,
                        direction,
                        offset: chunk.offset,
                        length: chunk.length,
                        frame: chunk.frame,
                        time_ns: chunk.time_ns,
                        reason,
                    };
                    if held {
                        held = self.hold(live, event, Verdict::Hold);
                        continue;
                    }
                    self.name(live.id);
                    self.out.push(event);
                }
                Content::Data(data) => {
                    endpoint.stream_bytes += chunk.length;
                    let verdict =
                        held.then(|| match (self.sniff, self.sniffing.get_mut(&live.id)) {
                            (Some(limits), Some(sniff)) => sniff.data(direction, &data, limits),
                            _ => Verdict::Drop,
                        });
                    if !held && !self.absorbers.is_empty() && !self.named.contains(&live.id) {
                        if let Some(absorber) = self.absorbers.get_mut(&live.id) {
                            let taken = if is_client {
                                absorber.absorb(&data)
                            } else {
                                absorber.absorb_server(&data)
                            };
                            if taken {
                                continue;
                            }
                        }
                    }
                    let event = Event::Data {
                        flow: live.id,
                        direction,
                        offset: chunk.offset,
                        data,
                        frame: chunk.frame,
                        time_ns: chunk.time_ns,
                    };
                    if let Some(verdict) = verdict {
                        held = self.hold(live, event, verdict);
                        continue;
                    }
                    self.name(live.id);
                    self.out.push(event);
                }
            }
        }
    }

    /// Whether the events of `live` are held (super::sniff), from now on if it is a flow
    /// to sniff seen for the first time; also for one given up (its later chunks of the
    /// same packet go nowhere, as the tracker would drop their events).
    fn sniffed(&mut self, live: &Live) -> bool {
        if self.sniffing.contains_key(&live.id) {
            return true;
        }
        if live.exposed {
            return false;
        }
        if live.flow.ignore_payload {
            return true;
        }
        let [first, second] = &live.flow.endpoints;
        if self.server_ports.contains(&first.port) || self.server_ports.contains(&second.port) {
            return false;
        }
        self.sniffing.insert(live.id, Box::default());
        true
    }

    /// `event` of a held flow, after the verdict on its chunk: kept, or with everything
    /// kept handed on (the flow handed to the consumer), or dropped with it (the flow's
    /// payload ignored). Whether the flow's events are still held.
    fn hold(&mut self, live: &mut Live, event: Event, verdict: Verdict) -> bool {
        let Some(mut sniff) = self.sniffing.remove(&live.id) else {
            return true; // given up: nothing goes out
        };
        sniff.events.push(event);
        match verdict {
            Verdict::Hold => {
                self.sniffing.insert(live.id, sniff);
                true
            }
            Verdict::Drop => {
                live.flow.ignore_payload = true;
                true
            }
            Verdict::Release => {
                if let Some(head) = expose(live) {
                    self.out.push(Event::Opened(head));
                }
                self.name(live.id);
                self.out.append(&mut sniff.events);
                false
            }
        }
    }

    /// Flow `id` has an event in `out` from now on.
    fn name(&mut self, id: u64) {
        if self.named.last() != Some(&id) && !self.named.contains(&id) {
            self.named.push(id);
        }
    }

    /// An ICMP error quoting a TCP header of `src` -> `dst` (`quoted_bytes` of it
    /// present); `too_big_mtu`: the MTU of a fragmentation-needed or Packet Too Big.
    pub fn icmp(
        &mut self,
        frame: u64,
        src: Addr,
        dst: Addr,
        quoted_bytes: u64,
        too_big_mtu: Option<u64>,
    ) -> IcmpMatch {
        let key = flow_key(src, dst);
        if let Some(live) = self.table.get_mut(&key) {
            if let Some(mtu) = too_big_mtu.filter(|&mtu| mtu != 0) {
                let d = live.flow.direction(src);
                let rare = live.flow.endpoints[d].rare_mut();
                match rare.too_big_mtu {
                    Some(known) if known <= mtu => {}
                    _ => rare.too_big_mtu = Some(mtu),
                }
                rare.max_ip_len_after_too_big = 0;
            }
            let head = expose(live);
            return IcmpMatch::Live(live.id, head);
        }
        if quoted_bytes < self.limits.quoted_tcp_bytes {
            return IcmpMatch::Unmatched;
        }
        if let Some(ended) = self.ended.get(&key) {
            return IcmpMatch::Numbered {
                stream: ended.stream,
                started: false,
            };
        }
        let stream = self.streams;
        self.streams += 1;
        self.remember(
            key,
            Ended {
                stream,
                frame,
                role: 0,
                client: 0,
                first_is_low: true,
                sequence: Kept::Nothing,
            },
        );
        IcmpMatch::Numbered {
            stream,
            started: true,
        }
    }

    /// The capture ended: every flow still in the table ends now.
    pub fn finish(&mut self) {
        while !self.finish_some(usize::MAX) {}
    }

    /// The capture ended: up to `max` of the flows still in the table end now, in the
    /// order they entered it (so their events can be taken a batch at a time); true once
    /// none is left. No packet may come until it returned true.
    pub fn finish_some(&mut self, max: usize) -> bool {
        let keys = self.finishing.get_or_insert_with(|| {
            let mut keys: Vec<(u64, Key)> = self.table.iter().map(|(k, l)| (l.id, *k)).collect();
            keys.sort_unstable_by_key(|(id, _)| std::cmp::Reverse(*id));
            keys.into_iter().map(|(_, key)| key).collect()
        });
        let batch: Vec<Key> = keys.split_off(keys.len().saturating_sub(max));
        for key in batch.iter().rev() {
            self.end(key, false);
        }
        if self.finishing.as_ref().is_some_and(|keys| !keys.is_empty()) {
            return false;
        }
        self.finishing = None;
        self.ended.clear();
        true
    }

    fn sweep(&mut self, now_ns: i128, frame: u64) {
        let limits = &self.limits;
        let mut keys: Vec<(u64, Key)> = self
            .table
            .iter()
            .filter(|(_, live)| expired(limits, live, now_ns, frame))
            .map(|(k, l)| (l.id, *k))
            .collect();
        keys.sort_unstable_by_key(|(id, _)| *id);
        for (_, key) in keys {
            self.end(&key, true);
        }
    }

    /// End the least recently active 1 % of the flows: one sort per that many new flows.
    fn evict(&mut self) {
        let mut by_activity: Vec<(u64, u64, Key)> = self
            .table
            .iter()
            .map(|(k, l)| (l.flow.last_frame, l.id, *k))
            .collect();
        by_activity.sort_unstable_by_key(|(last, id, _)| (*last, *id));
        let n = (self.limits.max_flows / 100).max(1);
        for (_, _, key) in by_activity.into_iter().take(n) {
            self.end(&key, true);
            self.evicted += 1;
        }
    }

    /// End a flow; `remember`: keep what a later packet of its 4-tuple needs to continue
    /// its stream number.
    fn end(&mut self, key: &Key, remember: bool) {
        let Some(mut live) = self.table.remove(key) else {
            return;
        };
        let mut mismatches = [0u64; 2];
        let mut limited = [(0u64, 0u64); 2];
        for d in 0..2 {
            let Some(mut reassembler) = live.reassembly[d].take() else {
                continue;
            };
            if !live.flow.ignore_payload {
                reassembler.finish(live.flow.last_frame, live.flow.last_time_ns);
                if reassembler.ready() != 0 {
                    let chunks = reassembler.take();
                    self.emit(&mut live, d, chunks);
                }
            }
            mismatches[d] = reassembler.mismatches();
            limited[d] = (reassembler.limited(), reassembler.limited_bytes());
        }
        self.absorbers.remove(&live.id);
        // Events still held: the tracker decides on no bytes what it would on these.
        self.sniffing.remove(&live.id);
        let Live {
            id,
            mut flow,
            mut analysis,
            ..
        } = *live;
        let ends = analysis.end(flow.last_time_ns);
        let state = analysis.conn.conn_state(flow.client);
        let history = std::mem::take(&mut analysis.conn.history).to_string();
        if remember {
            let sequence = analysis.into_sequence();
            let sequence = match sequence.pack() {
                Some(packed) => Kept::Packed(Box::new(packed)),
                None => Kept::Full(Box::new(sequence)),
            };
            let role = self.role_code(&flow.role_from);
            self.remember(
                *key,
                Ended {
                    stream: flow.stream,
                    frame: flow.continues.unwrap_or(flow.first_frame),
                    role,
                    client: (flow.client & 1) as u8,
                    first_is_low: flow.endpoints[0].addr() == key.0,
                    sequence,
                },
            );
        }
        flow.notes.shrink_to_fit();
        self.out.push(Event::Ended(Box::new(EndedFlow {
            id,
            flow,
            state,
            history,
            ends,
            mismatches,
            limited,
        })));
    }
}

/// The flow's head when the consumer had not been handed it yet.
fn expose(live: &mut Live) -> Option<Box<FlowHead>> {
    if live.exposed {
        return None;
    }
    live.exposed = true;
    let flow = &live.flow;
    Some(Box::new(FlowHead {
        id: live.id,
        stream: flow.stream,
        endpoints: [flow.endpoints[0].addr(), flow.endpoints[1].addr()],
        client: flow.client,
        first_frame: flow.first_frame,
        first_time_ns: flow.first_time_ns,
        role_from: flow.role_from.clone(),
        continues: flow.continues,
        syn_time_ns: flow.syn_time_ns.get(),
        synack_time_ns: flow.synack_time_ns.get(),
        handshake_ack_time_ns: flow.handshake_ack_time_ns.get(),
    }))
}

/// A segment of a flow its consumer gave up (`ignore_payload`): only what the stream
/// numbering rests on is kept up to date (initial sequence numbers, last packet,
/// closing); counters, flags, notes, state and history stop where they were.
fn number_only(live: &mut Live, seg: &SegmentRef<'_>) {
    let flow = &mut live.flow;
    flow.last_frame = seg.frame;
    flow.last_time_ns = seg.time_ns;
    let d = flow.direction((seg.src, seg.sport));
    live.analysis.number_only(d, seg.seq, seg.ack, seg.flags);
    if seg.flags & (TH_FIN | TH_RST) != 0 {
        let sender = &mut live.flow.endpoints[d];
        if sender.rare().closed_frame.is_none() {
            sender.rare_mut().closed_frame = Some(seg.frame);
        }
        closing(live, d, seg.flags, seg.time_ns);
    }
}

/// A RST, or a FIN after the peer's FIN or RST, closes the flow: it lingers from now.
fn closing(live: &mut Live, d: usize, flags: u16, time_ns: i128) {
    let peer_closed = live.flow.endpoints[1 - d].rare().closed_frame.is_some();
    if flags & TH_RST != 0 || (flags & TH_FIN != 0 && peer_closed) {
        live.closed_at = MaybeTime::some(time_ns);
        for reassembler in live.reassembly.iter_mut().flatten() {
            reassembler.release();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pin the per-flow sizes (issue 19: memory per open flow). A field added to these
    /// structs should go in `EndpointRare` unless nearly every flow needs it.
    #[test]
    fn per_flow_sizes() {
        use std::mem::size_of;
        assert_eq!(size_of::<EndpointFacts>(), 176);
        assert_eq!(size_of::<FlowFacts>(), 576);
        assert_eq!(size_of::<Live>(), 1008);
        assert_eq!(size_of::<Note>(), 64);
        assert_eq!(size_of::<FlowAnalysis>(), 352);
        assert_eq!(size_of::<SequenceAnalysis>(), 224);
        assert_eq!(size_of::<StreamReassembler>(), 104);
        assert_eq!(size_of::<crate::tcp::sent::Sent>(), 96);
        // Per ended flow kept for its numbering (up to `max_ended`): its slot in the
        // ring (the index adds a u32 and a control byte), the packed sequence analysis apart.
        assert_eq!(size_of::<Option<(Key, Ended)>>(), 80);
        assert_eq!(size_of::<PackedSequence>(), 128);
    }

    /// The TTLs in place and in the tally give what one tally gave, in the same order.
    #[test]
    fn ttls_count_as_a_tally_does() {
        let mut next = crate::tcp::test_random(0x1234_5678_u64);
        for round in 0..300u64 {
            let (mut ttls, mut tally) = (Ttls::default(), Tally::<u8>::new());
            assert!(ttls.entries().is_empty());
            let kinds = 1 + round % 30;
            for _ in 0..(round % 100) {
                let ttl = if next(4) == 0 { 255 } else { next(kinds) as u8 };
                ttls.add(ttl);
                tally.add(ttl);
                assert_eq!(ttls.entries(), tally.entries, "round {round}");
            }
        }
        let mut one = Ttls::default();
        one.add(0);
        one.add(0);
        assert_eq!(one.entries(), vec![(0, 2)]);
        assert!(one.others.is_none());
    }

    /// Every i128 comes back, the extremes and values past 64 bits included.
    #[test]
    fn a_maybe_time_is_the_option_it_stands_for() {
        assert_eq!(MaybeTime::NONE.get(), None);
        assert_eq!(MaybeTime::default(), None);
        let mut values = vec![0, 1, -1, i128::MIN, i128::MAX];
        values.extend([i64::MIN, i64::MAX].map(i128::from));
        values.extend([63, 64, 65, 100, 126].map(|b| 1i128 << b));
        values.extend([64, 65, 100, 126].map(|b| -(1i128 << b) + 12345));
        values.push(18_446_744_073_709_551_615_999_999_999); // u64 seconds in ns
        for value in values {
            let time = MaybeTime::some(value);
            assert_eq!(time.get(), Some(value));
            assert_eq!(time, Some(value));
            assert_eq!(MaybeTime::from(Some(value)), time);
            assert_eq!(format!("{time:?}"), format!("{:?}", Some(value)));
        }
        assert_eq!(std::mem::size_of::<MaybeTime>(), 24);
    }

    #[test]
    fn rare_figures_are_made_on_first_use() {
        let mut e = EndpointFacts::default();
        assert!(e.rare.is_none());
        assert_eq!(e.rare().gaps, 0);
        assert!(e.rare().counts.entries.is_empty());
        e.rare_mut().gaps += 1;
        assert_eq!(e.rare().gaps, 1);
    }
}

//! The flow table (crate::tcp::table) on short conversations written packet by packet:
//! Wireshark's stream numbering (reused ports, ended flows continued, ICMP-only
//! conversations), lingering and idle flows, the cap, the events' order and what an
//! ended flow carries.

use _core::reassembly::GapReason;
use _core::tcp::table::{Absorber, Event, FlowTable, IcmpMatch, Ip, Limits, SegmentRef};
use _core::tcp::{TH_ACK, TH_FIN, TH_RST, TH_SYN};
use _core::tls_records::TlsRecordWalk;

const CLIENT: [u8; 4] = [10, 0, 0, 1];
const SERVER: [u8; 4] = [10, 0, 0, 2];
const SEC: i128 = 1_000_000_000;

/// A conversation between CLIENT:`port` and SERVER:25, one frame per packet.
struct Talk {
    table: FlowTable,
    frame: u64,
    time: i128,
    events: Vec<Event>,
}

impl Talk {
    fn new(limits: Limits) -> Self {
        Talk {
            table: FlowTable::new([25], limits),
            frame: 0,
            time: 0,
            events: Vec::new(),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn send(&mut self, from_client: bool, port: u16, seq: u32, ack: u32, flags: u16, data: &[u8]) {
        self.frame += 1;
        self.time += SEC / 1000;
        let (src, sport, dst, dport) = if from_client {
            (CLIENT, port, SERVER, 25)
        } else {
            (SERVER, 25, CLIENT, port)
        };
        self.table.segment(&SegmentRef {
            frame: self.frame,
            time_ns: self.time,
            version: 4,
            src: Ip::new(&src),
            dst: Ip::new(&dst),
            sport,
            dport,
            seq,
            ack,
            flags,
            window: 1000,
            options: &[2, 4, 5, 180],
            payload: data,
            length: data.len() as u64,
            ttl: 64,
            df: true,
            ip_id: self.frame as u16,
            ip_len: 40 + data.len() as u64,
            fragment_frames: &[],
        });
        self.events.extend(self.table.take());
    }

    fn handshake(&mut self, port: u16, isn: u32) {
        self.send(true, port, isn, 0, TH_SYN, b"");
        self.send(false, port, 5000, isn + 1, TH_SYN | TH_ACK, b"");
        self.send(true, port, isn + 1, 5001, TH_ACK, b"");
    }

    fn finish(&mut self) {
        self.table.finish();
        self.events.extend(self.table.take());
    }

    /// (id, stream) of each flow ended so far.
    fn ended(&self) -> Vec<(u64, u64)> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Event::Ended(e) => Some((e.id, e.flow.stream)),
                _ => None,
            })
            .collect()
    }
}

#[test]
fn a_reply_comes_after_the_command_it_answers_and_the_flow_ends_with_its_facts() {
    let mut talk = Talk::new(Limits::default());
    talk.handshake(40000, 1000);
    talk.send(false, 40000, 5001, 1001, TH_ACK, b"220 hi\r\n");
    talk.send(true, 40000, 1001, 5009, TH_ACK, b"QUIT\r\n");
    talk.send(false, 40000, 5009, 1007, TH_ACK, b"221 bye\r\n");
    talk.send(true, 40000, 1007, 5018, TH_FIN | TH_ACK, b"");
    talk.send(false, 40000, 5018, 1008, TH_FIN | TH_ACK, b"");
    talk.send(true, 40000, 1008, 5019, TH_ACK, b"");
    talk.finish();
    assert_eq!(
        talk.data(),
        vec![
            (1, b"220 hi\r\n".to_vec()),
            (0, b"QUIT\r\n".to_vec()),
            (1, b"221 bye\r\n".to_vec())
        ]
    );
    assert!(matches!(talk.events[0], Event::Opened(ref h) if h.stream == 0 && h.client == 0));
    let Some(Event::Ended(ended)) = talk.events.last() else {
        panic!("no end");
    };
    assert_eq!(ended.state, "SF");
    assert_eq!(ended.history, "ShAdDFf");
    let client = &ended.flow.endpoints[0];
    assert_eq!(
        (client.packets, client.bytes, client.stream_bytes),
        (5, 6, 6)
    );
    assert_eq!(client.handshake.and_then(|h| h.mss), Some(1460));
    assert_eq!(ended.flow.synack_time_ns, Some(2 * SEC / 1000));
    assert_eq!(ended.flow.handshake_ack_time_ns, Some(3 * SEC / 1000));
    // SYN, SYN/ACK and the two FINs are noted.
    assert_eq!(ended.flow.notes.len(), 4);
}

#[test]
fn a_syn_with_a_new_isn_starts_a_new_stream_and_the_same_isn_continues_it() {
    let mut talk = Talk::new(Limits::default());
    talk.handshake(40000, 1000);
    talk.send(true, 40000, 1001, 5001, TH_RST, b"");
    talk.send(true, 40000, 1000, 0, TH_SYN, b""); // same ISN: the same stream
    talk.send(true, 40000, 7000, 0, TH_SYN, b""); // a new ISN: reused ports
    talk.finish();
    let streams: Vec<u64> = talk.ended().iter().map(|e| e.1).collect();
    assert_eq!(streams, vec![0, 1]);
    assert_eq!(talk.table.streams, 2);
}

#[test]
fn a_closed_flow_lingers_then_a_late_packet_continues_its_stream() {
    let limits = Limits {
        linger_ns: SEC / 100,
        linger_frames: 2,
        sweep_every: 1000,
        ..Limits::default()
    };
    let mut talk = Talk::new(limits);
    talk.handshake(40000, 1000);
    talk.send(true, 40000, 1001, 5001, TH_RST, b"");
    for port in 41000..41020 {
        talk.send(true, port, 9, 0, TH_SYN, b"");
    }
    talk.send(true, 40000, 1001, 5001, TH_ACK, b"");
    talk.finish();
    let ended = talk.events.iter().filter_map(|e| match e {
        Event::Ended(e) if e.flow.endpoints[0].port == 40000 => Some(e),
        _ => None,
    });
    let found: Vec<(u64, Option<u64>)> = ended.map(|e| (e.flow.stream, e.flow.continues)).collect();
    assert_eq!(found, vec![(0, None), (0, Some(1))]);
}

#[test]
fn past_the_cap_the_least_recently_active_flows_end() {
    let limits = Limits {
        max_flows: 100,
        ..Limits::default()
    };
    let mut talk = Talk::new(limits);
    for port in 1000..1150 {
        talk.send(true, port, 1, 0, TH_SYN, b"");
    }
    assert!(talk.table.open() <= 100);
    assert_eq!(talk.table.evicted, 50);
    let first_ended: Vec<u64> = talk.ended().iter().map(|e| e.1).take(3).collect();
    assert_eq!(first_ended, vec![0, 1, 2]);
    talk.finish();
    assert_eq!(talk.ended().len(), 150);
}

#[test]
fn an_icmp_error_numbers_a_conversation_before_its_packets() {
    let mut talk = Talk::new(Limits::default());
    let client = (Ip::new(&CLIENT), 40000);
    let server = (Ip::new(&SERVER), 25);
    assert_eq!(
        talk.table.icmp(1, client, server, 8, None),
        IcmpMatch::Unmatched
    );
    assert_eq!(
        talk.table.icmp(2, client, server, 20, None),
        IcmpMatch::Numbered {
            stream: 0,
            started: true
        }
    );
    assert_eq!(
        talk.table.icmp(3, server, client, 20, None),
        IcmpMatch::Numbered {
            stream: 0,
            started: false
        }
    );
    talk.frame = 3;
    talk.handshake(40000, 1000);
    match talk.table.icmp(7, client, server, 20, Some(1400)) {
        IcmpMatch::Live(_, Some(head)) => assert_eq!((head.stream, head.continues), (0, Some(2))),
        other => panic!("{other:?}"),
    }
    talk.finish();
    let Some(Event::Ended(ended)) = talk.events.last() else {
        panic!("no end");
    };
    assert_eq!(ended.flow.endpoints[0].rare().too_big_mtu, Some(1400));
}

#[test]
fn a_flow_whose_payload_is_ignored_keeps_only_its_numbering() {
    let mut talk = Talk::new(Limits::default());
    talk.handshake(40000, 1000);
    let id = match talk.events.first() {
        None => talk
            .table
            .flow_id((Ip::new(&CLIENT), 40000), (Ip::new(&SERVER), 25)),
        Some(_) => panic!("no data yet, no event"),
    };
    let (id, head) = id.expect("live");
    assert!(head.is_some());
    talk.table.update(
        (Ip::new(&CLIENT), 40000),
        (Ip::new(&SERVER), 25),
        id,
        1,
        "smtp",
        true,
    );
    talk.send(false, 40000, 5001, 1001, TH_ACK, b"SSH-2.0\r\n");
    talk.finish();
    assert!(!talk.events.iter().any(|e| matches!(e, Event::Data { .. })));
    let Some(Event::Ended(ended)) = talk.events.last() else {
        panic!("no end");
    };
    assert_eq!(ended.flow.client, 1);
    assert_eq!(ended.flow.role_from.as_str(), "smtp");
    assert_eq!(ended.flow.endpoints[1].packets, 1, "counting stopped");
}

#[test]
fn a_hole_acknowledged_is_a_gap_before_the_data_behind_it() {
    let mut talk = Talk::new(Limits::default());
    talk.handshake(40000, 1000);
    talk.send(true, 40000, 1011, 5001, TH_ACK, b"RSET\r\n");
    talk.send(false, 40000, 5001, 1017, TH_ACK, b"");
    let kinds: Vec<(u64, Option<GapReason>)> = talk
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Gap { offset, reason, .. } => Some((*offset, Some(*reason))),
            Event::Data { offset, .. } => Some((*offset, None)),
            _ => None,
        })
        .collect();
    assert_eq!(kinds, vec![(0, Some(GapReason::NotCaptured)), (10, None)]);
}

/// A sink for the client's bytes that takes every chunk but one holding ".\r\n" (as a
/// DATA body's scan refuses the chunk that ends the message), keeping what it took.
#[derive(Debug, Default, Clone)]
struct Body {
    taken: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
}

impl Absorber for Body {
    fn absorb(&mut self, data: &[u8]) -> bool {
        if data.windows(3).any(|w| w == b".\r\n") {
            return false;
        }
        self.taken.lock().unwrap().extend_from_slice(data);
        true
    }
}

impl Talk {
    /// Attach `body` (or detach with None) to the flow of CLIENT:`port`.
    fn absorb(&mut self, port: u16, body: Option<&Body>) {
        let (client, server) = ((Ip::new(&CLIENT), port), (Ip::new(&SERVER), 25));
        let (id, _) = self.table.flow_id(client, server).expect("live");
        let sink = body.map(|b| Box::new(b.clone()) as Box<dyn Absorber>);
        self.table.absorb(client, server, id, sink);
    }

    /// A flow of CLIENT:40000 after its handshake, `body` attached.
    fn with_body(body: &Body) -> Self {
        let mut talk = Talk::new(Limits::default());
        talk.handshake(40000, 1000);
        talk.absorb(40000, Some(body));
        talk
    }

    /// (direction, offset, a gap) of the Data and Gap events so far.
    fn chunks(&self) -> Vec<(usize, u64, bool)> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Event::Gap {
                    direction, offset, ..
                } => Some((*direction, *offset, true)),
                Event::Data {
                    direction, offset, ..
                } => Some((*direction, *offset, false)),
                _ => None,
            })
            .collect()
    }

    /// (direction, bytes) of the Data events so far.
    fn data(&self) -> Vec<(usize, Vec<u8>)> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Event::Data {
                    direction, data, ..
                } => Some((*direction, data.clone())),
                _ => None,
            })
            .collect()
    }
}

#[test]
fn a_body_absorbed_makes_no_event_until_the_chunk_it_refuses() {
    let mut talk = Talk::new(Limits::default());
    talk.handshake(40000, 1000);
    talk.send(true, 40000, 1001, 5001, TH_ACK, b"DATA\r\n");
    talk.send(false, 40000, 5001, 1007, TH_ACK, b"354 go\r\n");
    let body = Body::default();
    talk.absorb(40000, Some(&body));
    talk.events.clear();
    talk.send(true, 40000, 1007, 5009, TH_ACK, b"Subject: hi\r\n\r\n");
    talk.send(true, 40000, 1022, 5009, TH_ACK, b"text\r\n");
    assert!(talk.events.is_empty(), "absorbed chunks make no event");
    talk.send(true, 40000, 1028, 5009, TH_ACK, b".\r\nQUIT\r\n");
    assert_eq!(talk.data(), vec![(0, b".\r\nQUIT\r\n".to_vec())]);
    assert_eq!(*body.taken.lock().unwrap(), b"Subject: hi\r\n\r\ntext\r\n");
    // The server's bytes are never offered.
    talk.send(false, 40000, 5009, 1037, TH_ACK, b"250 ok\r\n");
    assert_eq!(talk.data().len(), 2);
    assert_eq!(talk.table.absorbing(), 1);
    talk.finish();
    assert_eq!(talk.table.absorbing(), 0, "dropped with the flow");
    let Some(Event::Ended(ended)) = talk.events.last() else {
        panic!("no end");
    };
    assert_eq!(
        ended.flow.endpoints[0].stream_bytes, 36,
        "absorbed bytes count"
    );
}

#[test]
fn after_an_event_of_its_flow_not_yet_taken_a_chunk_is_not_offered() {
    let body = Body::default();
    let mut talk = Talk::with_body(&body);
    // The server's reply arrives behind a hole; the client's next segment acknowledges
    // past it: the gap and the reply go out first, then the client's chunk, as an event.
    talk.send(false, 40000, 5011, 1001, TH_ACK, b"421 bye\r\n");
    talk.send(true, 40000, 1001, 5020, TH_ACK, b"body\r\n");
    assert_eq!(
        talk.chunks(),
        vec![(1, 0, true), (1, 10, false), (0, 0, false)]
    );
    assert!(body.taken.lock().unwrap().is_empty());
    // The next packet is offered again.
    talk.send(true, 40000, 1007, 5020, TH_ACK, b"more\r\n");
    assert_eq!(talk.data().len(), 2);
    assert_eq!(*body.taken.lock().unwrap(), b"more\r\n");
}

#[test]
fn a_gap_in_the_body_is_an_event_and_so_is_the_data_behind_it() {
    let body = Body::default();
    let mut talk = Talk::with_body(&body);
    talk.send(true, 40000, 1001, 5001, TH_ACK, b"first\r\n");
    talk.send(true, 40000, 1018, 5001, TH_ACK, b"third\r\n");
    talk.send(false, 40000, 5001, 1025, TH_ACK, b"");
    assert_eq!(talk.chunks(), vec![(0, 7, true), (0, 17, false)]);
    assert_eq!(*body.taken.lock().unwrap(), b"first\r\n");
}

#[test]
fn a_detached_or_misnamed_sink_takes_nothing() {
    let body = Body::default();
    let mut talk = Talk::with_body(&body);
    talk.absorb(40000, None);
    let (client, server) = ((Ip::new(&CLIENT), 40000), (Ip::new(&SERVER), 25));
    let (id, _) = talk.table.flow_id(client, server).expect("live");
    talk.table
        .absorb(client, server, id + 1, Some(Box::new(body.clone())));
    assert_eq!(talk.table.absorbing(), 0, "another id: not this flow");
    talk.send(true, 40000, 1001, 5001, TH_ACK, b"EHLO x\r\n");
    assert_eq!(talk.data(), vec![(0, b"EHLO x\r\n".to_vec())]);
    assert!(body.taken.lock().unwrap().is_empty());
}

/// The TLS record walk (crate::tls_records) of the client's bytes or (`server`) the
/// server's, shared with the test, as python_table's `TlsSink` shares its `TlsRecords`
/// with the scanner.
#[derive(Debug, Default, Clone)]
struct Records {
    walk: std::sync::Arc<std::sync::Mutex<TlsRecordWalk>>,
    server: bool,
}

impl Absorber for Records {
    fn absorb(&mut self, data: &[u8]) -> bool {
        !self.server && self.walk.lock().unwrap().take(data)
    }

    fn absorb_server(&mut self, data: &[u8]) -> bool {
        self.server && self.walk.lock().unwrap().take(data)
    }
}

impl Records {
    /// A flow of CLIENT:40000 after its handshake, a walk of one side's records attached.
    fn attached(server: bool) -> (Self, Talk) {
        let records = Records {
            server,
            ..Default::default()
        };
        let mut talk = Talk::new(Limits::default());
        talk.handshake(40000, 1000);
        let (client, server) = ((Ip::new(&CLIENT), 40000), (Ip::new(&SERVER), 25));
        let (id, _) = talk.table.flow_id(client, server).expect("live");
        talk.table
            .absorb(client, server, id, Some(Box::new(records.clone())));
        (records, talk)
    }

    fn state(&self) -> TlsRecordWalk {
        self.walk.lock().unwrap().clone()
    }
}

#[test]
fn tls_application_data_is_walked_and_any_other_record_handed_on() {
    let (walk, mut talk) = Records::attached(false);
    // Two application_data records, the second's header split over two segments.
    let mut stream = vec![23, 3, 3, 0, 4, 1, 2, 3, 4, 23, 3];
    stream.extend([3, 0, 6, 9, 9]);
    talk.send(true, 40000, 1001, 5001, TH_ACK, &stream[..11]);
    talk.send(true, 40000, 1012, 5001, TH_ACK, &stream[11..]);
    assert!(talk.events.is_empty(), "walked, no event");
    {
        let state = walk.state();
        assert_eq!((state.records, state.application_bytes), (2, 10));
        assert_eq!((state.skip, state.head.len()), (4, 0));
    }
    // The rest of that record and an alert's header: handed on whole, nothing counted.
    let alert = [9, 9, 9, 9, 21, 3, 3, 0, 2, 1, 0];
    talk.send(true, 40000, 1017, 5001, TH_ACK, &alert);
    assert_eq!(talk.data(), vec![(0, alert.to_vec())]);
    assert_eq!(walk.state().skip, 4, "the refused chunk changed nothing");
    talk.finish();
    let Some(Event::Ended(ended)) = talk.events.last() else {
        panic!("no end");
    };
    assert_eq!(
        ended.flow.endpoints[0].stream_bytes, 27,
        "walked bytes count"
    );
    assert_eq!(talk.table.absorbing(), 0);
}

#[test]
fn a_sink_may_walk_the_servers_records_too() {
    let (walk, mut talk) = Records::attached(true);
    talk.send(false, 40000, 5001, 1001, TH_ACK, &[23, 3, 3, 0, 2, 7]);
    talk.send(false, 40000, 5007, 1001, TH_ACK, &[7, 23]);
    assert!(talk.events.is_empty(), "the server's records walked");
    talk.send(true, 40000, 1001, 5009, TH_ACK, &[23, 3, 3, 0, 1, 0]);
    assert_eq!(
        talk.data(),
        vec![(0, vec![23, 3, 3, 0, 1, 0])],
        "the client's not"
    );
    talk.send(false, 40000, 5009, 1007, TH_ACK, &[3, 3, 0, 0]);
    assert_eq!(talk.data().len(), 2, "an empty record is refused");
    let state = walk.state();
    assert_eq!((state.records, state.application_bytes), (1, 2));
    assert_eq!(state.head, vec![23]);
}

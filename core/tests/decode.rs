//! The decoder: link layers down to IP, IP headers, TCP, ICMP errors and fragment
//! reassembly, on packets built here field by field and on the lab's real captures.
//! (The Python tests check the same against tshark; these pin the Rust API.)

use std::borrow::Cow;
use std::fs;
use std::io::Cursor;
use std::path::PathBuf;

use _core::decode::{
    decode_ip, incomplete_warning, ip_start, Decoder, Ip, IpStart, Packet, TcpSegment,
};
use _core::fragments::{MAX_PENDING, TIMEOUT_NS};
use _core::input::{self, Limits};
use _core::reader::{Format, Frame, Reader};

const CLIENT: [u8; 4] = [192, 0, 2, 10];
const SERVER: [u8; 4] = [198, 51, 100, 25];
const CLIENT6: [u8; 16] = [
    0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
];
const SERVER6: [u8; 16] = [
    0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x25,
];
const SEQ: u32 = 0x7EC4_53B0;

fn tcp(payload: &[u8]) -> Vec<u8> {
    let mut t = Vec::new();
    t.extend(40000u16.to_be_bytes());
    t.extend(25u16.to_be_bytes());
    t.extend(SEQ.to_be_bytes());
    t.extend(7u32.to_be_bytes());
    t.extend([0x50, 0x18]); // 20-byte header, PSH ACK
    t.extend(512u16.to_be_bytes());
    t.extend([0, 0, 0, 0]);
    t.extend(payload);
    t
}

struct V4 {
    proto: u8,
    ident: u16,
    offset: usize,
    more: bool,
    df: bool,
    options: Vec<u8>,
    total_len: Option<u16>,
}

impl Default for V4 {
    fn default() -> Self {
        V4 {
            proto: 6,
            ident: 1,
            offset: 0,
            more: false,
            df: false,
            options: Vec::new(),
            total_len: None,
        }
    }
}

fn ipv4(body: &[u8], v: V4) -> Vec<u8> {
    let header_len = 20 + v.options.len();
    let total = v.total_len.unwrap_or((header_len + body.len()) as u16);
    let flags = (u16::from(v.df) << 14) | (u16::from(v.more) << 13) | (v.offset / 8) as u16;
    let mut p = vec![0x40 | (header_len / 4) as u8, 0];
    p.extend(total.to_be_bytes());
    p.extend(v.ident.to_be_bytes());
    p.extend(flags.to_be_bytes());
    p.extend([64, v.proto, 0, 0]);
    p.extend(CLIENT);
    p.extend(SERVER);
    p.extend(&v.options);
    p.extend(body);
    p
}

fn ipv6(body: &[u8], next: u8) -> Vec<u8> {
    let mut p = vec![0x60, 0, 0, 0];
    p.extend((body.len() as u16).to_be_bytes());
    p.extend([next, 64]);
    p.extend(CLIENT6);
    p.extend(SERVER6);
    p.extend(body);
    p
}

fn extension(next: u8) -> Vec<u8> {
    vec![next, 0, 1, 4, 0, 0, 0, 0]
}

fn fragment_header(next: u8, offset: usize, more: bool, ident: u32) -> Vec<u8> {
    let mut h = vec![next, 0];
    h.extend(((offset as u16) | u16::from(more)).to_be_bytes());
    h.extend(ident.to_be_bytes());
    h
}

fn ethernet(ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2];
    f.extend(ethertype.to_be_bytes());
    f.extend(payload);
    f
}

fn frame(number: u64, linktype: i64, data: Vec<u8>) -> Frame {
    Frame {
        number,
        time_ns: 1_700_000_000_000_000_000 + i128::from(number),
        linktype,
        wire_len: data.len() as u32,
        data,
        interface: 0,
    }
}

fn segment(f: &Frame) -> TcpSegment<'_> {
    match Decoder::new().decode(f) {
        Some(Packet::Tcp(s)) => s,
        other => panic!("no segment in frame: {other:?}"),
    }
}

#[test]
fn ethernet_ipv4_tcp_fields() {
    let data = ethernet(
        0x0800,
        &ipv4(
            &tcp(b"EHLO x\r\n"),
            V4 {
                df: true,
                ..V4::default()
            },
        ),
    );
    let f = frame(3, 1, data);
    let s = segment(&f);
    assert_eq!((s.frame, s.version, s.sport, s.dport), (3, 4, 40000, 25));
    assert_eq!((s.seq, s.ack, s.flags, s.window), (SEQ, 7, 0x018, 512));
    assert_eq!((&*s.src, &*s.dst), (&CLIENT[..], &SERVER[..]));
    assert_eq!(
        (&*s.payload, s.length, s.ip_len),
        (&b"EHLO x\r\n"[..], 8, 48)
    );
    assert!(s.df && s.options.is_empty() && s.fragment_frames.is_empty());
}

#[test]
fn tags_pppoe_mpls_and_loopback_reach_the_ip_header() {
    let packet = ipv4(&tcp(b""), V4::default());
    let mut tagged = vec![0, 100, 0x88, 0xA8, 0, 7, 0x81, 0x00, 0, 5, 0x89, 0x09];
    tagged.extend([1, 1, 0, 1, 0, 17, 0x08, 0x00]); // Cisco MetaData, then IPv4
    tagged.extend(&packet);
    let mut pppoe = vec![0x11, 0, 0, 0x2A, 0, 0, 0x00, 0x21];
    pppoe.extend(&packet);
    let mut mpls = vec![0, 1, 0, 64, 0, 1, 1, 64];
    mpls.extend(&packet);
    let cases: Vec<(i64, Vec<u8>, IpStart)> = vec![
        (1, ethernet(0x8100, &tagged), IpStart::At(34)),
        (1, ethernet(0x8864, &pppoe), IpStart::At(22)),
        (1, ethernet(0x8847, &mpls), IpStart::At(22)),
        (1, ethernet(0x0806, &[0; 28]), IpStart::None),
        (
            0,
            [&2u32.to_le_bytes()[..], &packet].concat(),
            IpStart::At(4),
        ),
        (
            0,
            [&2u32.to_be_bytes()[..], &packet].concat(),
            IpStart::At(4),
        ),
        (
            108,
            [&30u32.to_be_bytes()[..], &packet].concat(),
            IpStart::At(4),
        ),
        (
            108,
            [&7u32.to_be_bytes()[..], &packet].concat(),
            IpStart::None,
        ),
        (101, packet.clone(), IpStart::At(0)),
        (-1, packet.clone(), IpStart::None),
        (147, packet.clone(), IpStart::Unsupported),
    ];
    for (linktype, data, expected) in cases {
        assert_eq!(ip_start(linktype, &data), expected, "link type {linktype}");
        if let IpStart::At(_) = expected {
            assert_eq!(segment(&frame(1, linktype, data)).seq, SEQ);
        }
    }
}

#[test]
fn offload_lengths_and_snap_length_cuts() {
    let whole = ipv4(
        &tcp(b"DATA\r\n"),
        V4 {
            total_len: Some(0),
            ..V4::default()
        },
    );
    let f = frame(1, 101, whole);
    let s = segment(&f);
    assert_eq!((s.length, s.ip_len), (6, 46));
    let cut = ipv4(&tcp(&[b'x'; 100]), V4::default());
    let f = frame(1, 101, cut[..50].to_vec());
    let s = segment(&f);
    assert_eq!((s.payload.len(), s.length), (10, 100));
}

#[test]
fn ipv6_extension_headers_and_atomic_fragments() {
    let mut body = extension(60);
    body.extend(extension(44));
    body.extend(fragment_header(6, 0, false, 77));
    body.extend(tcp(b"QUIT\r\n"));
    let f = frame(1, 229, ipv6(&body, 0));
    let s = segment(&f);
    assert_eq!((s.version, s.ip_id, s.length, s.ttl), (6, 77, 6, 64));
    assert_eq!(&*s.payload, b"QUIT\r\n");
}

#[test]
fn reasons_for_what_cannot_be_read() {
    let mut short = ipv4(&tcp(b""), V4::default());
    short[0] = 0x44;
    let mut decoder = Decoder::new();
    let frames = [
        frame(1, 101, ipv4(&tcp(b""), V4::default())[..30].to_vec()),
        frame(2, 101, short),
        frame(3, 101, vec![0x45; 10]),
        frame(4, 147, vec![0x45; 40]),
        frame(5, 229, ipv6(&[0, 9], 0)),
        frame(6, 101, vec![]),
        frame(7, 1, ethernet(0x0800, &[])),
        frame(8, 147, vec![]),
    ];
    for f in &frames {
        assert!(decoder.decode(f).is_none());
    }
    let reasons: Vec<(&str, u64)> = decoder
        .undecoded
        .iter()
        .map(|(r, n)| (r.as_str(), *n))
        .collect();
    assert_eq!(
        reasons,
        [
            ("truncated TCP header", 1),
            ("malformed IP header", 2),
            ("truncated IP header", 1),
            ("unsupported link type (link type 147)", 2),
            ("truncated IPv6 extension header", 1),
        ]
    );
    assert_eq!(decoder.ip_frames, 1); // the cut TCP header: its IP header was read
    assert_eq!(decode_ip(1, &ethernet(0x0800, &[]), 1, 0), Ip::None);
}

#[test]
fn icmp_errors_quote_the_packet_they_return() {
    let big = ipv4(
        &tcp(&[b'x'; 1400]),
        V4 {
            df: true,
            ..V4::default()
        },
    );
    let mut icmp = vec![3, 4, 0, 0, 0, 0];
    icmp.extend(1400u16.to_be_bytes());
    icmp.extend(&big[..28]);
    let f = frame(
        9,
        101,
        ipv4(
            &icmp,
            V4 {
                proto: 1,
                ..V4::default()
            },
        ),
    );
    let Some(Packet::Icmp(e)) = Decoder::new().decode(&f) else {
        panic!("no ICMP error");
    };
    assert_eq!((e.kind, e.code, e.mtu), (3, 4, Some(1400)));
    let q = e.quoted.expect("a quoted packet");
    assert_eq!((q.proto, q.total_len, q.df), (6, 1440, true));
    assert_eq!(
        (q.sport, q.dport, q.seq, q.transport_bytes),
        (Some(40000), Some(25), Some(SEQ), 8)
    );
    let echo = frame(
        1,
        101,
        ipv4(
            &[8, 0, 0, 0, 0, 1, 0, 1],
            V4 {
                proto: 1,
                ..V4::default()
            },
        ),
    );
    assert!(Decoder::new().decode(&echo).is_none());
    let mut too_big = vec![2, 0, 0, 0];
    too_big.extend(1280u32.to_be_bytes());
    too_big.extend(&ipv6(&tcp(&[b'y'; 100]), 6)[..60]);
    let f = frame(2, 229, ipv6(&too_big, 58));
    let Some(Packet::Icmp(e)) = Decoder::new().decode(&f) else {
        panic!("no ICMPv6 error");
    };
    assert_eq!((e.version, e.kind, e.mtu), (6, 2, Some(1280)));
    assert_eq!(e.quoted.and_then(|q| q.seq), Some(SEQ));
}

fn udp(sport: u16, dport: u16, payload: &[u8], length: Option<u16>) -> Vec<u8> {
    let mut u = Vec::new();
    u.extend(sport.to_be_bytes());
    u.extend(dport.to_be_bytes());
    u.extend(length.unwrap_or(8 + payload.len() as u16).to_be_bytes());
    u.extend([0, 0]);
    u.extend(payload);
    u
}

/// A DNS query for example.org MX (RFC 1035 4.1), id 0x1234.
const MX_QUERY: &[u8] =
    b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x07example\x03org\x00\x00\x0f\x00\x01";

#[test]
fn udp_port_53_either_side_is_a_dns_datagram() {
    let udp4 = |body: Vec<u8>| {
        ipv4(
            &body,
            V4 {
                proto: 17,
                ..V4::default()
            },
        )
    };
    let f = frame(3, 101, udp4(udp(40001, 53, MX_QUERY, None)));
    let Some(Packet::Dns(d)) = Decoder::new().decode(&f) else {
        panic!("no DNS datagram");
    };
    assert_eq!((d.frame, d.version, d.sport, d.dport), (3, 4, 40001, 53));
    assert_eq!((&d.src[..], &d.dst[..]), (&CLIENT[..], &SERVER[..]));
    assert_eq!((&d.payload[..], d.length), (MX_QUERY, MX_QUERY.len()));
    let answer = frame(4, 229, ipv6(&udp(53, 40001, MX_QUERY, None), 17));
    let Some(Packet::Dns(d)) = Decoder::new().decode(&answer) else {
        panic!("no DNS datagram over IPv6");
    };
    assert_eq!((d.version, d.sport, &d.payload[..]), (6, 53, MX_QUERY));
    // Cut by a snap length: the header's length stays, the payload is what was captured.
    let mut cut = udp4(udp(53, 40001, MX_QUERY, None));
    cut.truncate(cut.len() - 10);
    let cut = frame(5, 101, cut);
    let Some(Packet::Dns(d)) = Decoder::new().decode(&cut) else {
        panic!("no DNS datagram when cut");
    };
    assert_eq!(
        (d.payload.len(), d.length),
        (MX_QUERY.len() - 10, MX_QUERY.len())
    );
    // Ethernet padding after a short datagram is not DNS: the UDP length bounds the payload.
    let mut padded = udp4(udp(53, 40001, &MX_QUERY[..12], None));
    padded.extend([0; 6]);
    let padded = frame(6, 101, padded);
    let Some(Packet::Dns(d)) = Decoder::new().decode(&padded) else {
        panic!("no DNS datagram with padding");
    };
    assert_eq!(&d.payload[..], &MX_QUERY[..12]);
    // Other UDP, and a UDP header cut short, are nothing.
    assert!(Decoder::new()
        .decode(&frame(7, 101, udp4(udp(5353, 5353, MX_QUERY, None))))
        .is_none());
    assert!(Decoder::new()
        .decode(&frame(8, 101, udp4(vec![0, 53, 0, 53])))
        .is_none());
}

/// A 3,000-byte segment in three IPv4 fragments with the given IP ID.
fn fragments(ident: u16) -> (Vec<u8>, Vec<Vec<u8>>) {
    let payload: Vec<u8> = (0..3000u32).map(|i| (i * 7 % 251) as u8).collect();
    let whole = tcp(&payload);
    let pieces = [(0, 1480), (1480, 2960), (2960, whole.len())]
        .iter()
        .map(|&(a, b)| {
            let v = V4 {
                ident,
                offset: a,
                more: b < whole.len(),
                ..V4::default()
            };
            ipv4(&whole[a..b], v)
        })
        .collect();
    (payload, pieces)
}

fn run(decoder: &mut Decoder, packets: &[Vec<u8>], times: &[i128]) -> Vec<(u64, Vec<u64>, usize)> {
    let mut out = Vec::new();
    for (i, p) in packets.iter().enumerate() {
        let mut f = frame(i as u64 + 1, 101, p.clone());
        f.time_ns = times.get(i).copied().unwrap_or(i as i128);
        if let Some(Packet::Tcp(s)) = decoder.decode(&f) {
            out.push((s.frame, s.fragment_frames.clone(), s.payload.len()));
        }
    }
    out
}

#[test]
fn fragments_in_any_order_complete_at_the_last_one() {
    let (payload, p) = fragments(1);
    let orders: [[usize; 3]; 3] = [[0, 1, 2], [2, 1, 0], [1, 0, 2]];
    for order in orders {
        let sent: Vec<Vec<u8>> = order.iter().map(|&i| p[i].clone()).collect();
        let mut decoder = Decoder::new();
        assert_eq!(
            run(&mut decoder, &sent, &[]),
            [(3, vec![1, 2, 3], payload.len())]
        );
        assert_eq!((decoder.reassembled, decoder.ip_frames), (1, 3));
        assert!(decoder.finish().is_empty());
    }
}

#[test]
fn copies_after_completion_are_dropped_and_the_first_copy_wins() {
    let (_, p) = fragments(1);
    let mut decoder = Decoder::new();
    let sent = [
        p[0].clone(),
        p[0].clone(),
        p[1].clone(),
        p[2].clone(),
        p[0].clone(),
    ];
    assert_eq!(run(&mut decoder, &sent, &[]), [(4, vec![1, 2, 3, 4], 3000)]);
    assert!(decoder.finish().is_empty());

    let whole = tcp(&[b'a'; 60]);
    let first = ipv4(
        &whole[..48],
        V4 {
            more: true,
            ..V4::default()
        },
    );
    let garbled = ipv4(
        &[b'X'; 16],
        V4 {
            offset: 32,
            more: true,
            ..V4::default()
        },
    );
    let last = ipv4(
        &whole[48..],
        V4 {
            offset: 48,
            ..V4::default()
        },
    );
    let f: Vec<Frame> = [first, garbled, last]
        .into_iter()
        .enumerate()
        .map(|(i, d)| frame(i as u64 + 1, 101, d))
        .collect();
    let mut decoder = Decoder::new();
    let found: Vec<Packet<'_>> = f.iter().filter_map(|f| decoder.decode(f)).collect();
    let [Packet::Tcp(s)] = &found[..] else {
        panic!("one datagram: {found:?}");
    };
    assert_eq!(s.payload, Cow::Borrowed(&[b'a'; 60][..]));
}

#[test]
fn fragment_sets_that_never_complete_are_reported() {
    let (_, p) = fragments(1);
    let mut decoder = Decoder::new();
    let second = 1_000_000_000;
    let times = [0, 61 * second, 61 * second + 1];
    assert!(run(&mut decoder, &p, &times).is_empty());
    let lost = decoder.finish();
    assert_eq!(lost, [vec![1], vec![2, 3]]);
    assert_eq!(
        incomplete_warning(&lost).as_deref(),
        Some("2 IP datagram(s) never got all their fragments (frames 1, 2, 3); their content is missing")
    );
    assert!(TIMEOUT_NS == 60 * second);

    let mut decoder = Decoder::new();
    let firsts: Vec<Vec<u8>> = (0..=MAX_PENDING as u16)
        .map(|i| fragments(i).1[0].clone())
        .collect();
    run(&mut decoder, &firsts, &[]);
    let lost = decoder.finish();
    assert_eq!(lost.len(), MAX_PENDING + 1);
    assert_eq!(lost[0], [1]); // the oldest, given up when the table was full
    let warning = incomplete_warning(&lost).unwrap_or_default();
    assert!(warning.starts_with("4097 IP datagram(s) never got all their fragments (frames 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 ...)"));
}

fn lab_captures() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../captures");
    let mut found: Vec<PathBuf> = fs::read_dir(&dir)
        .expect("captures/ next to core/")
        .map(|e| e.expect("an entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "pcap"))
        .collect();
    found.sort();
    found
}

#[test]
fn lab_captures_decode_without_a_reason() {
    let captures = lab_captures();
    assert!(captures.len() > 20);
    for path in captures {
        let data = fs::read(&path).expect("readable");
        let opened = input::open(Box::new(Cursor::new(data)), Limits::default()).expect("opens");
        let format = Format::sniff(&opened.head).expect("a capture");
        let mut reader = Reader::new(opened.stream, format, opened.compression, 0);
        let mut decoder = Decoder::new();
        let (mut frames, mut segments) = (0, 0);
        while let Some(f) = reader.next_frame() {
            frames += 1;
            if let Some(Packet::Tcp(s)) = decoder.decode(&f) {
                assert_eq!(s.frame, f.number);
                segments += 1;
            }
        }
        // ARP and the like aside, every frame is IP.
        assert!(decoder.ip_frames <= frames && decoder.ip_frames + 10 >= frames);
        assert!(
            segments > 0 && decoder.undecoded.is_empty(),
            "{}",
            path.display()
        );
    }
}

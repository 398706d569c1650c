//! Frames -> IP packets -> TCP segments, ICMP errors and DNS datagrams (UDP port 53).
//!
//! Our own header parsing rather than a crate's (etherparse reads the same headers): the
//! decoding must be Wireshark's on the packets real capture points write, which a strict
//! parser rejects or reads differently: an IPv4 total length of 0 or an IPv6 payload
//! length of 0 left by segmentation offload (the captured bytes are the packet), frames
//! cut by a snap length (the headers are read, the payload is what was captured),
//! Cisco MetaData and QinQ tags, BSD loopback words written on a host of the other byte
//! order; and a frame that cannot be read must say why in the words of our warnings
//! ("truncated TCP header", "malformed IPv6 extension headers", ...). Every read is
//! bounds-checked (`get`, `sl`): no input can make this module panic.

use std::borrow::Cow;

use crate::fragments::Reassembler;
use crate::reader::{Frame, FrameView, LINKTYPE_SYSTEMD_JOURNAL};

pub const LINKTYPE_NULL: i64 = 0;
pub const LINKTYPE_ETHERNET: i64 = 1;
pub const LINKTYPE_LOOP: i64 = 108;

pub const ETH_TYPE_IP: u16 = 0x0800;
pub const ETH_TYPE_IP6: u16 = 0x86DD;
/// 802.1Q, 802.1ad, the old QinQ tag.
const VLAN_TAGS: [u16; 3] = [0x8100, 0x88A8, 0x9100];
/// Cisco TrustSec inline SGT tag: version, length, options, SGT, then the next EtherType.
/// Switches insert it on trunk and SPAN links, so captures taken there carry it.
const ETH_TYPE_CISCO_METADATA: u16 = 0x8909;
const ETH_TYPE_PPPOE_SESSION: u16 = 0x8864;
const ETH_TYPE_MPLS: u16 = 0x8847;
const PPP_IP: u16 = 0x0021;
const PPP_IP6: u16 = 0x0057;

/// BSD loopback address families (DLT_NULL is host byte order, DLT_LOOP network order).
const AF_INET: u32 = 2;
const AF_INET6: [u32; 4] = [10, 24, 28, 30];

pub const IPPROTO_ICMP: u8 = 1;
pub const IPPROTO_TCP: u8 = 6;
pub const IPPROTO_UDP: u8 = 17;
pub const IPPROTO_ICMP6: u8 = 58;
const IPV6_FRAGMENT: u8 = 44;
const IPV6_AH: u8 = 51;
/// Extension headers walked to reach the upper layer (hop-by-hop, routing, destination
/// options, mobility, HIP, shim6, AH); the fragment header is handled apart.
const IPV6_CHAIN: [u8; 7] = [0, 43, 60, 135, 139, 140, IPV6_AH];

/// DNS's UDP port (RFC 1035 4.2.1), on either side of a datagram.
pub const DNS_PORT: u16 = 53;
const UDP_HEADER: usize = 8;

const ICMP_UNREACH: u8 = 3;
const ICMP_FRAG_NEEDED: u8 = 4;
/// Unreachable, source quench, time exceeded, parameter problem.
const ICMP4_ERRORS: [u8; 4] = [3, 4, 11, 12];
/// Unreachable, packet too big, time exceeded, parameter problem.
const ICMP6_ERRORS: [u8; 4] = [1, 2, 3, 4];
const ICMP6_PACKET_TOO_BIG: u8 = 2;

/// Where a link layer puts the IP header (or the tags before it), and its EtherType
/// (None: the frame is raw IP). Link types whose header has a fixed size; BSD loopback
/// needs a look at the frame.
pub fn link_layout(linktype: i64) -> Option<(usize, Option<usize>)> {
    match linktype {
        1 => Some((14, Some(12))),                    // Ethernet
        113 => Some((16, Some(14))),                  // Linux cooked (SLL)
        276 => Some((20, Some(0))),                   // Linux cooked v2 (SLL2)
        12 | 14 | 101 | 228 | 229 => Some((0, None)), // raw IP, IPv4, IPv6
        _ => None,
    }
}

/// ``data[a:b]`` as Python slices it: clipped to the data, empty when reversed.
pub fn sl(data: &[u8], a: usize, b: usize) -> &[u8] {
    let b = b.min(data.len());
    if a >= b {
        &[]
    } else {
        &data[a..b]
    }
}

fn u16_at(data: &[u8], at: usize) -> Option<u16> {
    let b = data.get(at..at.checked_add(2)?)?;
    Some(u16::from_be_bytes([b[0], b[1]]))
}

fn u32_at(data: &[u8], at: usize) -> Option<u32> {
    let b = data.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

fn byte(data: &[u8], at: usize) -> Option<u8> {
    data.get(at).copied()
}

/// Where the IP header of a frame starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IpStart {
    At(usize),
    /// The frame carries no IP (ARP, a journal entry, a loopback frame of another family).
    None,
    /// A link type we do not read.
    Unsupported,
}

pub fn ip_start(linktype: i64, data: &[u8]) -> IpStart {
    if let Some((start, type_at)) = link_layout(linktype) {
        return match type_at {
            None => IpStart::At(start),
            Some(at) => ethertype_payload(data, at, start),
        };
    }
    if linktype == LINKTYPE_NULL || linktype == LINKTYPE_LOOP {
        let Some(word) = data.get(..4) else {
            return IpStart::None;
        };
        let word = [word[0], word[1], word[2], word[3]];
        let (first, other) = if linktype == LINKTYPE_LOOP {
            (u32::from_be_bytes(word), u32::from_le_bytes(word))
        } else {
            (u32::from_le_bytes(word), u32::from_be_bytes(word))
        };
        // A family beyond 16 bits: a capture written on a host of the other byte order.
        let family = if first > 0xFFFF { other } else { first };
        return if family == AF_INET || AF_INET6.contains(&family) {
            IpStart::At(4)
        } else {
            IpStart::None
        };
    }
    if linktype == LINKTYPE_SYSTEMD_JOURNAL {
        return IpStart::None; // a log entry, not a packet
    }
    IpStart::Unsupported
}

/// Follows VLAN and SGT tags, PPPoE and MPLS from the EtherType at `type_at`.
fn ethertype_payload(data: &[u8], type_at: usize, header_len: usize) -> IpStart {
    let Some(mut ethertype) = u16_at(data, type_at) else {
        return IpStart::None;
    };
    let mut offset = header_len;
    while VLAN_TAGS.contains(&ethertype) || ethertype == ETH_TYPE_CISCO_METADATA {
        let size = if VLAN_TAGS.contains(&ethertype) { 4 } else { 8 };
        match u16_at(data, offset + size - 2) {
            Some(next) if data.len() >= offset + size => ethertype = next,
            _ => return IpStart::None,
        }
        offset += size;
    }
    if ethertype == ETH_TYPE_IP || ethertype == ETH_TYPE_IP6 {
        return IpStart::At(offset);
    }
    if ethertype == ETH_TYPE_PPPOE_SESSION && data.len() >= offset + 8 {
        return match u16_at(data, offset + 6) {
            Some(PPP_IP) | Some(PPP_IP6) => IpStart::At(offset + 8),
            _ => IpStart::None,
        };
    }
    if ethertype == ETH_TYPE_MPLS {
        while data.len() >= offset + 4 {
            let bottom = byte(data, offset + 2).unwrap_or(0) & 1;
            offset += 4;
            if bottom != 0 {
                return match byte(data, offset) {
                    Some(first) if first >> 4 == 4 || first >> 4 == 6 => IpStart::At(offset),
                    _ => IpStart::None,
                };
            }
        }
    }
    IpStart::None
}

/// An IPv4 or IPv6 packet (or a datagram reassembled from fragments); the fields of
/// capture/model.py's IPPacket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IpPacket<'a> {
    pub frame: u64,
    pub time_ns: i128,
    pub version: u8,
    pub src: Cow<'a, [u8]>,
    pub dst: Cow<'a, [u8]>,
    pub proto: u8,
    pub ttl: u8,
    pub df: bool,
    pub ident: u32,
    /// Length of the whole IP packet according to its header.
    pub total_len: usize,
    /// Captured upper-layer bytes (shorter than payload_len under a snap length).
    pub payload: Cow<'a, [u8]>,
    pub payload_len: usize,
    pub frag_offset: usize,
    pub more_fragments: bool,
    pub fragment_frames: Vec<u64>,
}

impl IpPacket<'_> {
    pub fn is_fragment(&self) -> bool {
        self.more_fragments || self.frag_offset > 0
    }

    pub fn into_owned(self) -> IpPacket<'static> {
        IpPacket {
            src: Cow::Owned(self.src.into_owned()),
            dst: Cow::Owned(self.dst.into_owned()),
            payload: Cow::Owned(self.payload.into_owned()),
            frame: self.frame,
            time_ns: self.time_ns,
            version: self.version,
            proto: self.proto,
            ttl: self.ttl,
            df: self.df,
            ident: self.ident,
            total_len: self.total_len,
            payload_len: self.payload_len,
            frag_offset: self.frag_offset,
            more_fragments: self.more_fragments,
            fragment_frames: self.fragment_frames,
        }
    }
}

/// What a frame holds at the IP layer.
#[derive(Debug, PartialEq, Eq)]
pub enum Ip<'a> {
    Packet(IpPacket<'a>),
    /// No IP in this frame.
    None,
    /// Why the IP packet cannot be read (CaptureInfo.undecoded's reasons).
    Reason(&'static str),
}

/// The IP packet in a frame; None when it carries none; a reason when malformed.
pub fn decode_ip(linktype: i64, data: &[u8], number: u64, time_ns: i128) -> Ip<'_> {
    let start = match ip_start(linktype, data) {
        IpStart::At(start) => start,
        IpStart::None => return Ip::None,
        IpStart::Unsupported => return Ip::Reason("unsupported link type"),
    };
    if data.len() <= start {
        return if linktype == LINKTYPE_ETHERNET {
            Ip::None
        } else {
            Ip::Reason("malformed IP header")
        };
    }
    match parse_ip(data, start, number, time_ns) {
        Ok(packet) => Ip::Packet(packet),
        Err(reason) => Ip::Reason(reason),
    }
}

/// The IPv4 or IPv6 packet at `data[start..]`, or why it cannot be read.
pub fn parse_ip(
    data: &[u8],
    start: usize,
    number: u64,
    time_ns: i128,
) -> Result<IpPacket<'_>, &'static str> {
    match byte(data, start).map(|b| b >> 4) {
        Some(4) => ipv4(number, time_ns, data, start),
        Some(6) => ipv6(number, time_ns, data, start),
        _ => Err("malformed IP header"),
    }
}

fn ipv4(
    number: u64,
    time_ns: i128,
    data: &[u8],
    start: usize,
) -> Result<IpPacket<'_>, &'static str> {
    let Some(header) = data.get(start..start + 20) else {
        return Err("truncated IP header");
    };
    let header_len = usize::from(header[0] & 0x0F) * 4;
    let mut total_len = usize::from(u16::from_be_bytes([header[2], header[3]]));
    let ident = u32::from(u16::from_be_bytes([header[4], header[5]]));
    let frag = u16::from_be_bytes([header[6], header[7]]);
    let (ttl, proto) = (header[8], header[9]);
    if header_len < 20 || data.len() < start + header_len {
        return Err("malformed IP header");
    }
    let captured = data.len() - start;
    if total_len == 0 {
        total_len = captured; // TCP segmentation offload: the length field is left at 0
    } else if total_len < header_len {
        return Err("malformed IP header");
    }
    let end = start + total_len.min(captured);
    Ok(IpPacket {
        frame: number,
        time_ns,
        version: 4,
        src: Cow::Borrowed(&header[12..16]),
        dst: Cow::Borrowed(&header[16..20]),
        proto,
        ttl,
        df: frag & 0x4000 != 0,
        ident,
        total_len,
        payload: Cow::Borrowed(sl(data, start + header_len, end)),
        payload_len: total_len - header_len,
        frag_offset: usize::from(frag & 0x1FFF) * 8,
        more_fragments: frag & 0x2000 != 0,
        fragment_frames: Vec::new(),
    })
}

fn ipv6(
    number: u64,
    time_ns: i128,
    data: &[u8],
    start: usize,
) -> Result<IpPacket<'_>, &'static str> {
    let Some(header) = data.get(start..start + 40) else {
        return Err("truncated IP header");
    };
    let mut payload_len = usize::from(u16::from_be_bytes([header[4], header[5]]));
    let mut next_header = header[6];
    let hop_limit = header[7];
    let captured = data.len() - start - 40;
    if payload_len == 0 {
        payload_len = captured; // jumbogram or offload
    }
    let mut offset = start + 40;
    let (mut frag_offset, mut more, mut ident) = (0, false, 0);
    loop {
        (offset, next_header) = extension_chain(data, offset, next_header)?;
        if next_header != IPV6_FRAGMENT {
            break;
        }
        let Some(fragment) = data.get(offset..offset + 8) else {
            return Err("truncated IPv6 extension header");
        };
        let off_flags = u16::from_be_bytes([fragment[2], fragment[3]]);
        ident = u32::from_be_bytes([fragment[4], fragment[5], fragment[6], fragment[7]]);
        frag_offset = usize::from(off_flags & 0xFFF8);
        more = off_flags & 1 != 0;
        next_header = fragment[0];
        offset += 8;
        if frag_offset != 0 || more {
            // Headers after the fragment header belong to the fragmentable part (RFC 8200,
            // 4.5): a later fragment holds only data. They are read after reassembly.
            break;
        }
    }
    let header_len = offset - start;
    if header_len - 40 > payload_len {
        return Err("malformed IPv6 extension headers");
    }
    let total_len = 40 + payload_len;
    let end = start + total_len.min(data.len() - start);
    Ok(IpPacket {
        frame: number,
        time_ns,
        version: 6,
        src: Cow::Borrowed(&header[8..24]),
        dst: Cow::Borrowed(&header[24..40]),
        proto: next_header,
        ttl: hop_limit,
        df: true,
        ident,
        total_len,
        payload: Cow::Borrowed(sl(data, offset, end)),
        payload_len: total_len - header_len,
        frag_offset,
        more_fragments: more,
        fragment_frames: Vec::new(),
    })
}

/// Skips IPv6 extension headers other than the fragment header from `data[offset]`:
/// (offset of what follows, its protocol).
fn extension_chain(
    data: &[u8],
    mut offset: usize,
    mut next_header: u8,
) -> Result<(usize, u8), &'static str> {
    while IPV6_CHAIN.contains(&next_header) {
        let Some(ext) = data.get(offset..offset + 8) else {
            return Err("truncated IPv6 extension header");
        };
        let (nh, ext_len) = (ext[0], usize::from(ext[1]));
        offset += if next_header == IPV6_AH {
            (ext_len + 2) * 4
        } else {
            (ext_len + 1) * 8
        };
        next_header = nh;
    }
    Ok((offset, next_header))
}

/// A reassembled IPv6 datagram past the extension headers of its fragmentable part.
pub fn ipv6_upper_layer(ip: IpPacket<'_>) -> Result<IpPacket<'_>, &'static str> {
    if ip.version != 6 || !IPV6_CHAIN.contains(&ip.proto) {
        return Ok(ip);
    }
    let (skip, proto) = extension_chain(&ip.payload, 0, ip.proto)?;
    if skip > ip.payload_len {
        return Err("malformed IPv6 extension headers");
    }
    let payload = sl(&ip.payload, skip, usize::MAX).to_vec();
    Ok(IpPacket {
        proto,
        payload: Cow::Owned(payload),
        payload_len: ip.payload_len - skip,
        ..ip
    })
}

/// A TCP segment with the IP facts the analysis needs: capture/model.py's TcpSegment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TcpSegment<'a> {
    pub frame: u64,
    pub time_ns: i128,
    pub version: u8,
    pub src: Cow<'a, [u8]>,
    pub dst: Cow<'a, [u8]>,
    pub sport: u16,
    pub dport: u16,
    pub seq: u32,
    pub ack: u32,
    pub flags: u16,
    pub window: u16,
    pub options: Cow<'a, [u8]>,
    pub payload: Cow<'a, [u8]>,
    /// Payload length on the wire (Wireshark's tcp.len).
    pub length: usize,
    pub ttl: u8,
    pub df: bool,
    pub ip_id: u32,
    pub ip_len: usize,
    pub fragment_frames: Vec<u64>,
}

impl TcpSegment<'_> {
    /// The segment with its bytes copied: one that outlives the frame it was read from
    /// (a batch kept for the flow table, core/src/python_decode.rs `SegmentBatch`).
    pub fn into_owned(self) -> TcpSegment<'static> {
        TcpSegment {
            src: Cow::Owned(self.src.into_owned()),
            dst: Cow::Owned(self.dst.into_owned()),
            options: Cow::Owned(self.options.into_owned()),
            payload: Cow::Owned(self.payload.into_owned()),
            frame: self.frame,
            time_ns: self.time_ns,
            version: self.version,
            sport: self.sport,
            dport: self.dport,
            seq: self.seq,
            ack: self.ack,
            flags: self.flags,
            window: self.window,
            length: self.length,
            ttl: self.ttl,
            df: self.df,
            ip_id: self.ip_id,
            ip_len: self.ip_len,
            fragment_frames: self.fragment_frames,
        }
    }
}

fn sub<'a>(bytes: &Cow<'a, [u8]>, a: usize, b: usize) -> Cow<'a, [u8]> {
    match bytes {
        Cow::Borrowed(all) => Cow::Borrowed(sl(all, a, b)),
        Cow::Owned(all) => Cow::Owned(sl(all, a, b).to_vec()),
    }
}

/// The TCP segment in an (unfragmented or reassembled) IP packet.
pub fn decode_tcp(ip: IpPacket<'_>) -> Result<TcpSegment<'_>, &'static str> {
    let Some(header) = ip.payload.get(..20) else {
        return Err("truncated TCP header");
    };
    let off_flags = u16::from_be_bytes([header[12], header[13]]);
    let header_len = usize::from(off_flags >> 12) * 4;
    if header_len < 20 || header_len > ip.payload_len {
        return Err("malformed TCP header");
    }
    Ok(TcpSegment {
        frame: ip.frame,
        time_ns: ip.time_ns,
        version: ip.version,
        sport: u16::from_be_bytes([header[0], header[1]]),
        dport: u16::from_be_bytes([header[2], header[3]]),
        seq: u32::from_be_bytes([header[4], header[5], header[6], header[7]]),
        ack: u32::from_be_bytes([header[8], header[9], header[10], header[11]]),
        flags: off_flags & 0x0FFF,
        window: u16::from_be_bytes([header[14], header[15]]),
        options: sub(&ip.payload, 20, header_len),
        payload: sub(&ip.payload, header_len, usize::MAX),
        length: ip.payload_len - header_len,
        ttl: ip.ttl,
        df: ip.df,
        ip_id: ip.ident,
        ip_len: ip.total_len,
        src: ip.src,
        dst: ip.dst,
        fragment_frames: ip.fragment_frames,
    })
}

/// The head of the packet an ICMP error quotes back: capture/model.py's QuotedPacket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuotedPacket<'a> {
    pub src: Cow<'a, [u8]>,
    pub dst: Cow<'a, [u8]>,
    pub proto: u8,
    pub total_len: usize,
    pub df: bool,
    pub sport: Option<u16>,
    pub dport: Option<u16>,
    pub seq: Option<u32>,
    pub transport_bytes: usize,
}

/// An ICMP or ICMPv6 error message: capture/model.py's IcmpError.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IcmpError<'a> {
    pub frame: u64,
    pub time_ns: i128,
    pub version: u8,
    pub src: Cow<'a, [u8]>,
    pub dst: Cow<'a, [u8]>,
    pub kind: u8,
    pub code: u8,
    pub mtu: Option<u32>,
    pub quoted: Option<QuotedPacket<'a>>,
}

/// An ICMP(v6) error with the head of the packet it quotes; None for other ICMP.
pub fn decode_icmp_error<'a>(ip: &IpPacket<'a>) -> Option<IcmpError<'a>> {
    let body: &[u8] = &ip.payload;
    if body.len() < 8 {
        return None;
    }
    let (kind, code) = (body[0], body[1]);
    let mut mtu = None;
    if ip.version == 4 {
        if !ICMP4_ERRORS.contains(&kind) {
            return None;
        }
        if kind == ICMP_UNREACH && code == ICMP_FRAG_NEEDED {
            mtu = u16_at(body, 6).map(u32::from);
        }
    } else {
        if !ICMP6_ERRORS.contains(&kind) {
            return None;
        }
        if kind == ICMP6_PACKET_TOO_BIG {
            mtu = u32_at(body, 4);
        }
    }
    let quoted = match &ip.payload {
        Cow::Borrowed(all) => quoted(sl(all, 8, usize::MAX)),
        Cow::Owned(all) => quoted(sl(all, 8, usize::MAX)).map(QuotedPacket::into_owned),
    };
    Some(IcmpError {
        frame: ip.frame,
        time_ns: ip.time_ns,
        version: ip.version,
        src: ip.src.clone(),
        dst: ip.dst.clone(),
        kind,
        code,
        mtu,
        quoted,
    })
}

impl IcmpError<'_> {
    /// The error with its bytes copied: one that outlives the frame it was read from.
    pub fn into_owned(self) -> IcmpError<'static> {
        IcmpError {
            src: Cow::Owned(self.src.into_owned()),
            dst: Cow::Owned(self.dst.into_owned()),
            quoted: self.quoted.map(QuotedPacket::into_owned),
            ..self
        }
    }
}

impl QuotedPacket<'_> {
    fn into_owned<'b>(self) -> QuotedPacket<'b> {
        QuotedPacket {
            src: Cow::Owned(self.src.into_owned()),
            dst: Cow::Owned(self.dst.into_owned()),
            ..self
        }
    }
}

/// The quoted original header; RFC 792 promises its first 8 payload bytes: ports and seq.
fn quoted(data: &[u8]) -> Option<QuotedPacket<'_>> {
    if data.is_empty() {
        return None;
    }
    let packet = parse_ip(data, 0, 0, 0).ok()?;
    let payload: &[u8] = &packet.payload;
    let transport = packet.proto == IPPROTO_TCP || packet.proto == IPPROTO_UDP;
    let (mut sport, mut dport, mut seq) = (None, None, None);
    if payload.len() >= 4 && transport {
        sport = u16_at(payload, 0);
        dport = u16_at(payload, 2);
    }
    if payload.len() >= 8 && packet.proto == IPPROTO_TCP {
        seq = u32_at(payload, 4);
    }
    Some(QuotedPacket {
        transport_bytes: if transport { payload.len() } else { 0 },
        src: packet.src,
        dst: packet.dst,
        proto: packet.proto,
        total_len: packet.total_len,
        df: packet.df,
        sport,
        dport,
        seq,
    })
}

/// A UDP datagram to or from port 53: capture/model.py's DnsDatagram. The DNS message
/// itself is read in Python (dpkt.dns): only its bytes travel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DnsDatagram<'a> {
    pub frame: u64,
    pub time_ns: i128,
    pub version: u8,
    pub src: Cow<'a, [u8]>,
    pub dst: Cow<'a, [u8]>,
    pub sport: u16,
    pub dport: u16,
    /// The captured UDP payload (shorter than `length` under a snap length).
    pub payload: Cow<'a, [u8]>,
    /// The UDP payload length on the wire, from the UDP header.
    pub length: usize,
    pub fragment_frames: Vec<u64>,
}

impl DnsDatagram<'_> {
    /// The datagram with its bytes copied: one that outlives the frame it was read from.
    pub fn into_owned(self) -> DnsDatagram<'static> {
        DnsDatagram {
            src: Cow::Owned(self.src.into_owned()),
            dst: Cow::Owned(self.dst.into_owned()),
            payload: Cow::Owned(self.payload.into_owned()),
            fragment_frames: self.fragment_frames,
            ..self
        }
    }
}

/// The DNS datagram in an (unfragmented or reassembled) IP packet carrying UDP; None when
/// neither port is 53 or the UDP header is not all there (nothing asked for that UDP).
pub fn decode_dns(ip: IpPacket<'_>) -> Option<DnsDatagram<'_>> {
    let header = ip.payload.get(..UDP_HEADER)?;
    let sport = u16::from_be_bytes([header[0], header[1]]);
    let dport = u16::from_be_bytes([header[2], header[3]]);
    if sport != DNS_PORT && dport != DNS_PORT {
        return None;
    }
    // A UDP length of 0 (jumbograms) or beyond the IP payload: the IP payload is the datagram.
    let udp_len = usize::from(u16::from_be_bytes([header[4], header[5]]));
    let udp_len = if udp_len < UDP_HEADER || udp_len > ip.payload_len {
        ip.payload_len
    } else {
        udp_len
    };
    Some(DnsDatagram {
        frame: ip.frame,
        time_ns: ip.time_ns,
        version: ip.version,
        sport,
        dport,
        payload: sub(&ip.payload, UDP_HEADER, udp_len),
        length: udp_len - UDP_HEADER,
        src: ip.src,
        dst: ip.dst,
        fragment_frames: ip.fragment_frames,
    })
}

/// What the capture layer hands upward.
#[derive(Debug, PartialEq, Eq)]
pub enum Packet<'a> {
    Tcp(TcpSegment<'a>),
    Icmp(IcmpError<'a>),
    Dns(DnsDatagram<'a>),
}

/// Frames in capture order -> TCP segments, ICMP errors and DNS datagrams, with CaptureInfo's counters:
/// IP frames, datagrams reassembled, frames not decoded by reason (in the order the
/// reasons were first met), and the fragment sets that never completed.
#[derive(Default)]
pub struct Decoder {
    pub ip_frames: u64,
    pub reassembled: u64,
    pub undecoded: Vec<(String, u64)>,
    reassembler: Reassembler,
}

impl Decoder {
    pub fn new() -> Self {
        Self::default()
    }

    fn count_undecoded(&mut self, reason: &str) {
        match self.undecoded.iter_mut().find(|(r, _)| r == reason) {
            Some((_, count)) => *count += 1,
            None => self.undecoded.push((reason.to_string(), 1)),
        }
    }

    /// The IP packet of a frame (a datagram when the frame completes one), counted.
    pub fn ip_packet<'a>(&mut self, frame: FrameView<'a>) -> Option<IpPacket<'a>> {
        let ip = match decode_ip(frame.linktype, frame.data, frame.number, frame.time_ns) {
            Ip::Packet(ip) => ip,
            Ip::None => return None,
            Ip::Reason(reason) => {
                if reason.starts_with("unsupported") {
                    self.count_undecoded(&format!("{reason} (link type {})", frame.linktype));
                } else {
                    self.count_undecoded(reason);
                }
                return None;
            }
        };
        self.ip_frames += 1;
        if !ip.is_fragment() {
            return Some(ip);
        }
        let datagram = self.reassembler.add(ip)?;
        self.reassembled += 1;
        match ipv6_upper_layer(datagram) {
            Ok(ip) => Some(ip),
            Err(reason) => {
                self.count_undecoded(reason);
                None
            }
        }
    }

    /// The TCP segment, ICMP error or DNS datagram a frame carries, if any.
    pub fn decode<'a>(&mut self, frame: &'a Frame) -> Option<Packet<'a>> {
        self.decode_view(frame.view())
    }

    /// `decode` of a frame's facts and bytes, wherever they are (a batch's buffer).
    pub fn decode_view<'a>(&mut self, frame: FrameView<'a>) -> Option<Packet<'a>> {
        let ip = self.ip_packet(frame)?;
        match ip.proto {
            IPPROTO_TCP => match decode_tcp(ip) {
                Ok(segment) => Some(Packet::Tcp(segment)),
                Err(reason) => {
                    self.count_undecoded(reason);
                    None
                }
            },
            IPPROTO_ICMP | IPPROTO_ICMP6 => decode_icmp_error(&ip).map(Packet::Icmp),
            IPPROTO_UDP => decode_dns(ip).map(Packet::Dns),
            _ => None,
        }
    }

    /// Frames of every fragment set that never completed (evicted, expired or left at the
    /// end), once the capture has been read.
    pub fn finish(&mut self) -> Vec<Vec<u64>> {
        self.reassembler.finish()
    }
}

/// The warning about fragment sets that never completed, as CaptureInfo.warnings has it.
pub fn incomplete_warning(incomplete: &[Vec<u64>]) -> Option<String> {
    if incomplete.is_empty() {
        return None;
    }
    let mut frames: Vec<u64> = incomplete.iter().flatten().copied().collect();
    frames.sort_unstable();
    let shown: Vec<String> = frames.iter().take(10).map(u64::to_string).collect();
    let more = if frames.len() > 10 { " ..." } else { "" };
    Some(format!(
        "{} IP datagram(s) never got all their fragments (frames {}{more}); \
         their content is missing",
        incomplete.len(),
        shown.join(", ")
    ))
}

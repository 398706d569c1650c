#!/usr/bin/env python3
"""Deterministic benchmark captures: thousands of interleaved SMTP sessions, and other traffic.

    python3 scripts/bench/gencapture.py --size 1G -o /tmp/smtp-1g.pcap
    python3 scripts/bench/gencapture.py --size 1G --mix mixed --link sll -o /tmp/mixed-1g.pcap
    python3 scripts/bench/gencapture.py --size 1G --format pcapng -o /tmp/smtp-1g.pcapng

The same seed and options always give the same bytes. What is in it, as a busy mail host
captured with ``tcpdump -s 0`` would show it:

- SMTP sessions on port 25 (some on 587), inbound (captured at the receiving server) and
  outbound (captured at the sending client), over IPv4 and some IPv6: greeting, EHLO,
  MAIL, one to five RCPT (some rejected 550 5.1.1, some greylisted 451 4.7.1), DATA with a
  MIME message from a few KB to several MB (base64 attachments), QUIT, FIN both ways;
- STARTTLS sessions: after the 220, a TLS 1.3 handshake (ClientHello with SNI,
  ServerHello) and application-data records of the sizes the clear dialogue would have;
- connections refused (SYN, RST/ACK) and sessions reset in the middle of the message;
- segment loss, before the capture point (the segment is missing, duplicate ACKs follow,
  then the retransmission) and after it (the segment is seen twice);
- with ``--mix mixed``: mostly other traffic, as ``tcpdump -i any`` on a busy host gives:
  HTTPS downloads on 443, HTTP on 80, DNS over UDP, ARP; SMTP is a small share.

Only the Python standard library is used, so any machine can make the same file.
"""

from __future__ import annotations

import argparse
import base64
import heapq
import random
import struct
import sys
from collections.abc import Iterator

MSS4 = 1448  # 1500 - 20 (IP) - 20 (TCP) - 12 (timestamp option)
MSS6 = 1428
LINKTYPE_ETHERNET = 1
LINKTYPE_LINUX_SLL = 113
TH_FIN, TH_SYN, TH_RST, TH_PSH, TH_ACK = 0x01, 0x02, 0x04, 0x08, 0x10
MS = 1_000_000
T0 = 1_717_200_000 * 1_000_000_000  # 2024-06-01 00:00:00 UTC

# Loss rates per data segment: a busy Internet MX sees about 1 % loss.
LOSS_BEFORE_CAPTURE = 0.006
LOSS_AFTER_CAPTURE = 0.004
FLIGHT = 10
"""Segments sent before waiting for ACKs (the initial congestion window, RFC 6928)."""

SIZE_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}


def parse_size(text: str) -> int:
    text = text.strip().upper().removesuffix("B")
    unit = text[-1] if text and text[-1] in SIZE_UNITS else ""
    return int(float(text[: len(text) - len(unit)]) * SIZE_UNITS[unit])


# --- files ------------------------------------------------------------------------------


class PcapWriter:
    """Classic pcap, microsecond timestamps, little-endian (what tcpdump writes on x86)."""

    def __init__(self, out, linktype: int) -> None:
        self.out = out
        self.written = 24
        out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, linktype))

    def write(self, time_ns: int, frame: bytes) -> None:
        us = time_ns // 1000
        self.out.write(
            struct.pack("<IIII", us // 1_000_000, us % 1_000_000, len(frame), len(frame))
        )
        self.out.write(frame)
        self.written += 16 + len(frame)


class PcapngWriter:
    """pcapng as dumpcap writes it: one section, one interface (µs), Enhanced Packet Blocks."""

    def __init__(self, out, linktype: int) -> None:
        self.out = out
        shb = struct.pack("<IIIHHq", 0x0A0D0D0A, 28, 0x1A2B3C4D, 1, 0, -1) + struct.pack("<I", 28)
        idb = struct.pack("<IIHHII", 1, 20, linktype, 0, 262144, 20)
        out.write(shb + idb)
        self.written = len(shb) + len(idb)

    def write(self, time_ns: int, frame: bytes) -> None:
        us = time_ns // 1000
        pad = -len(frame) % 4
        length = 32 + len(frame) + pad
        head = struct.pack(
            "<IIIIIII", 6, length, 0, us >> 32, us & 0xFFFFFFFF, len(frame), len(frame)
        )
        self.out.write(head + frame + b"\0" * pad + struct.pack("<I", length))
        self.written += length


# --- packets ----------------------------------------------------------------------------


def _ip_checksum(header: bytes) -> int:
    total = sum(struct.unpack("!10H", header))
    total = (total & 0xFFFF) + (total >> 16)
    total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


class Link:
    """The link-layer header in front of every packet (Ethernet, or Linux cooked for -i any)."""

    def __init__(self, linktype: int) -> None:
        self.linktype = linktype

    def header(self, src_mac: bytes, dst_mac: bytes, v6: bool, outgoing: bool) -> bytes:
        ethertype = b"\x86\xdd" if v6 else b"\x08\x00"
        if self.linktype == LINKTYPE_ETHERNET:
            return dst_mac + src_mac + ethertype
        # SLL: packet type (0 to us, 4 sent by us), ARPHRD_ETHER, address length, address.
        return struct.pack("!HHH", 4 if outgoing else 0, 1, 6) + src_mac + b"\0\0" + ethertype


class Conn:
    """One TCP connection: addresses, sequence numbers, timestamps; builds its frames."""

    def __init__(self, rng: random.Random, link: Link, v6: bool, client, server, local: int):
        self.link, self.v6 = link, v6
        self.ends = (client, server)  # (ip bytes, port, mac)
        self.local = local
        """Which side is the capturing host (0 client, 1 server): its frames are outgoing."""
        self.seq = [rng.getrandbits(32), rng.getrandbits(32)]
        self.acked = [0, 0]
        """What each side last acknowledged of the other's stream (absolute sequence)."""
        self.ident = [rng.getrandbits(16), rng.getrandbits(16)]
        self.ts = [rng.getrandbits(32), rng.getrandbits(32)]
        self.ttl = (64, rng.choice((47, 50, 52, 56, 58, 116, 118, 243)))
        if local == 1:
            self.ttl = self.ttl[::-1]
        self.mss = MSS6 if v6 else MSS4

    def frame(self, d: int, t: int, flags: int, payload: bytes = b"", seq: int | None = None):
        """The frame side ``d`` sends at time ``t``; advances its sequence unless ``seq``."""
        src, dst = self.ends[d], self.ends[1 - d]
        if seq is None:
            seq = self.seq[d]
            self.seq[d] = (seq + len(payload) + (1 if flags & (TH_SYN | TH_FIN) else 0)) & (
                0xFFFFFFFF
            )
        ack = self.acked[d] if flags & TH_ACK else 0
        tsval = (self.ts[d] + t // MS) & 0xFFFFFFFF
        tsecr = (self.ts[1 - d] + t // MS - 1) & 0xFFFFFFFF
        if flags & TH_SYN:
            # MSS, SACK permitted, timestamps, NOP, window scale 7 (what Linux sends).
            tsecr = tsecr if flags & TH_ACK else 0
            mss = self.mss + 12
            opts = struct.pack("!BBHBBBBIIBBBB", 2, 4, mss, 4, 2, 8, 10, tsval, tsecr, 1, 3, 3, 7)
            window = 64240 if d == 0 else 65160
        else:
            opts = struct.pack("!BBBBII", 1, 1, 8, 10, tsval, tsecr)
            window = 502 if flags & TH_RST == 0 else 0
        tcp = struct.pack(
            "!HHIIBBHHH", src[1], dst[1], seq, ack, (20 + len(opts)) << 2, flags, window, 0, 0
        )
        tcp += opts
        length = len(tcp) + len(payload)
        if self.v6:
            ip = struct.pack("!IHBB", 0x60000000, length, 6, self.ttl[d]) + src[0] + dst[0]
        else:
            self.ident[d] = (self.ident[d] + 1) & 0xFFFF
            ip = struct.pack(
                "!BBHHHBBH", 0x45, 0, 20 + length, self.ident[d], 0x4000, self.ttl[d], 6, 0
            )
            ip += src[0] + dst[0]
            ip = ip[:10] + struct.pack("!H", _ip_checksum(ip)) + ip[12:]
        head = self.link.header(src[2], dst[2], self.v6, outgoing=d == self.local)
        return t, head + ip + tcp + payload

    def ack_of(self, d: int) -> None:
        """Side ``d`` has everything the other side sent so far."""
        self.acked[d] = self.seq[1 - d]


# --- TCP behaviour ----------------------------------------------------------------------


class Timeline:
    """The frames of one session in time order; ``t`` is the session's own clock."""

    def __init__(self, t: int) -> None:
        self.t = t
        self.frames: list[tuple[int, bytes]] = []

    def add(self, item: tuple[int, bytes]) -> None:
        self.frames.append(item)

    def flush(self) -> list[tuple[int, bytes]]:
        frames, self.frames = sorted(self.frames, key=lambda f: f[0]), []
        return frames


def handshake(tl: Timeline, c: Conn, rtt: int) -> None:
    """SYN, SYN/ACK, ACK, as seen from the capturing host."""
    synack_t = tl.t + (rtt if c.local == 0 else 20_000)
    ack_t = synack_t + (20_000 if c.local == 0 else rtt)
    tl.add(c.frame(0, tl.t, TH_SYN))
    c.ack_of(1)
    tl.add(c.frame(1, synack_t, TH_SYN | TH_ACK))
    c.ack_of(0)
    tl.add(c.frame(0, ack_t, TH_ACK))
    tl.t = ack_t


def send(tl: Timeline, c: Conn, d: int, data: bytes, rtt: int, rng: random.Random, gap: int):
    """Side ``d`` sends ``data`` (MSS segments, flights of FLIGHT); the other side ACKs.

    The capturing host is side ``c.local``. Frames the capturing host sends show at once and
    the peer's answer a round trip later; frames it receives show when they arrive. A segment
    lost before the capture point is missing, the receiver repeats its ACK (duplicate ACKs)
    and the retransmission comes later; one lost after it is seen twice.
    """
    mss = c.mss
    local_sender = d == c.local
    tl.t += 20_000 if local_sender else rtt
    pos = 0
    while pos < len(data):
        flight = []
        while pos < len(data) and len(flight) < FLIGHT:
            flight.append(data[pos : pos + mss])
            pos += mss
        t = tl.t
        lost = None
        if len(flight) > 3 and rng.random() < (LOSS_BEFORE_CAPTURE + LOSS_AFTER_CAPTURE) * len(
            flight
        ):
            lost = rng.randrange(len(flight) - 3)
        seqs = []
        for i, chunk in enumerate(flight):
            seq = c.seq[d]
            seqs.append(seq)
            flags = TH_ACK | (TH_PSH if i == len(flight) - 1 else 0)
            frame = c.frame(d, t, flags, chunk)
            hidden = lost == i and not local_sender  # lost on the way in: never seen
            if not hidden:
                tl.add(frame)
            t += gap
        # The receiver's ACKs: when the capturing host receives, right after the data;
        # when it sends, a round trip after.
        delay = 30_000 if not local_sender else rtt
        ack_t = tl.t + delay
        if lost is None:
            for i in range(1, len(flight), 2):
                c.acked[1 - d] = (seqs[i] + len(flight[i])) & 0xFFFFFFFF
                tl.add(c.frame(1 - d, ack_t + i * gap + 10_000, TH_ACK))
            if len(flight) % 2:  # an odd segment at the end is acknowledged too
                c.ack_of(1 - d)
                tl.add(c.frame(1 - d, ack_t + len(flight) * gap + 10_000, TH_ACK))
            tl.t = ack_t + len(flight) * gap + (rtt if not local_sender else 20_000)
            continue
        # Up to the lost one: normal ACKs; after it: duplicate ACKs (no SACK blocks, as a
        # middlebox stripping options leaves them).
        for i in range(len(flight)):
            if i < lost and i % 2 == 0:
                continue
            c.acked[1 - d] = (seqs[i] + len(flight[i])) & 0xFFFFFFFF if i < lost else seqs[lost]
            tl.add(c.frame(1 - d, ack_t + i * gap + 10_000, TH_ACK))
        # Fast retransmission after three duplicates, from the sender's side of the path.
        rt = ack_t + len(flight) * gap + (rtt if not local_sender else 200_000)
        tl.add(c.frame(d, rt, TH_ACK | TH_PSH, flight[lost], seq=seqs[lost]))
        c.ack_of(1 - d)
        tl.add(c.frame(1 - d, rt + (30_000 if not local_sender else rtt), TH_ACK))
        tl.t = rt + rtt + 50_000


def say(tl: Timeline, c: Conn, d: int, line: bytes, rtt: int, think: int) -> None:
    """A short message answering the other side's last one, sent after ``think`` ns; its
    ACK rides on the answer. The capturing host sees a remote answer a round trip late."""
    tl.t += think + (0 if d == c.local else rtt)
    c.ack_of(d)
    tl.add(c.frame(d, tl.t, TH_ACK | TH_PSH, line))


def close(tl: Timeline, c: Conn, first: int, rtt: int) -> None:
    c.ack_of(first)
    tl.add(c.frame(first, tl.t, TH_FIN | TH_ACK))
    tl.t += rtt
    c.ack_of(1 - first)
    tl.add(c.frame(1 - first, tl.t, TH_FIN | TH_ACK))
    tl.t += rtt
    c.ack_of(first)
    tl.add(c.frame(first, tl.t, TH_ACK))


# --- content ----------------------------------------------------------------------------


class Content:
    """Shared, seeded material for message bodies: one pool of base64 lines, sliced."""

    def __init__(self, rng: random.Random, pool: int = 12 << 20) -> None:
        raw = rng.randbytes(pool * 3 // 4)
        text = base64.encodebytes(raw).replace(b"\n", b"\r\n")  # 76-character lines
        self.base64 = text
        self.line = 78
        words = (
            b"the delivery report shipment invoice attached meeting please find below "
            b"regards quarterly figures schedule update contract review thanks "
            b"question answer tomorrow office project draft final version"
        ).split()
        self.words = words

    def attachment(self, rng: random.Random, size: int) -> bytes:
        lines = max(1, size // self.line)
        start = rng.randrange(len(self.base64) // self.line - lines) * self.line
        return self.base64[start : start + lines * self.line]

    def text(self, rng: random.Random, size: int) -> bytes:
        out, n = [], 0
        while n < size:
            line = b" ".join(rng.choice(self.words) for _ in range(rng.randint(6, 12)))
            out.append(line.capitalize() + b".\r\n")
            n += len(out[-1])
        return b"".join(out)


def message_size(rng: random.Random) -> int:
    """Sizes as a mail server sees them: mostly small, some large, a few very large."""
    r = rng.random()
    if r < 0.60:
        return rng.randint(2_000, 30_000)
    if r < 0.88:
        return rng.randint(30_000, 300_000)
    if r < 0.98:
        return rng.randint(300_000, 2_000_000)
    return rng.randint(2_000_000, 8_000_000)


def make_message(rng: random.Random, content: Content, n: int, sender: bytes, rcpts, size: int):
    boundary = b"=_part_%08x" % rng.getrandbits(32)
    subject = b" ".join(rng.choice(content.words) for _ in range(rng.randint(2, 6)))
    headers = (
        b"Received: from client%d.example.org (client%d.example.org [192.0.2.%d])\r\n"
        b"\tby mx.example.net with ESMTPS id %08X\r\n"
        % (n % 250, n % 250, n % 250 + 1, rng.getrandbits(32))
        + b"From: <" + sender + b">\r\nTo: " + b", ".join(b"<" + r + b">" for r in rcpts)
        + b"\r\nSubject: " + subject.capitalize()
        + b"\r\nDate: Sat, 01 Jun 2024 00:00:00 +0000\r\nMessage-ID: <%d.%08x@example.org>\r\n"
        % (n, rng.getrandbits(32))
        + b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"" + boundary
        + b"\"\r\n\r\n"
    )  # fmt: skip
    text = content.text(rng, min(size, rng.randint(300, 3000)))
    body = [b"--", boundary, b"\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n", text]
    left = size - len(headers) - len(text)
    if left > 500:
        body += [
            b"--",
            boundary,
            b'\r\nContent-Type: application/pdf; name="report-%d.pdf"\r\n'
            b"Content-Transfer-Encoding: base64\r\n"
            b'Content-Disposition: attachment; filename="report-%d.pdf"\r\n\r\n' % (n, n),
            content.attachment(rng, left),
        ]
    body += [b"--", boundary, b"--\r\n"]
    return headers + b"".join(body)


def client_hello(rng: random.Random, sni: bytes) -> bytes:
    name = b"\x00" + struct.pack("!H", len(sni)) + sni
    server_name = struct.pack("!HHH", 0, len(name) + 2, len(name)) + name
    versions = struct.pack("!HHB", 43, 5, 4) + b"\x03\x04\x03\x03"
    groups = struct.pack("!HHH", 10, 4, 2) + b"\x00\x1d"
    key_share = struct.pack("!HHHHH", 51, 38, 36, 0x1D, 32) + rng.randbytes(32)
    algorithms = struct.pack("!HHH", 13, 8, 6) + b"\x04\x03\x08\x04\x04\x01"
    extensions = server_name + versions + groups + key_share + algorithms
    suites = b"\x13\x02\x13\x03\x13\x01\xc0\x2c\xc0\x30\xc0\x2b\xc0\x2f"
    body = (
        b"\x03\x03" + rng.randbytes(32) + b"\x20" + rng.randbytes(32)
        + struct.pack("!H", len(suites)) + suites + b"\x01\x00"
        + struct.pack("!H", len(extensions)) + extensions
    )  # fmt: skip
    message = b"\x01" + struct.pack("!I", len(body))[1:] + body
    return b"\x16\x03\x01" + struct.pack("!H", len(message)) + message


def server_hello(rng: random.Random) -> bytes:
    extensions = struct.pack("!HHH", 43, 2, 0x0304)
    extensions += struct.pack("!HHHH", 51, 36, 0x1D, 32) + rng.randbytes(32)
    body = (
        b"\x03\x03" + rng.randbytes(32) + b"\x20" + rng.randbytes(32) + b"\x13\x02\x00"
        + struct.pack("!H", len(extensions)) + extensions
    )  # fmt: skip
    message = b"\x02" + struct.pack("!I", len(body))[1:] + body
    hello = b"\x16\x03\x03" + struct.pack("!H", len(message)) + message
    ccs = b"\x14\x03\x03\x00\x01\x01"
    return hello + ccs + app_data(rng, rng.randint(2500, 4500))


def app_data(rng: random.Random, size: int) -> bytes:
    """TLS application-data records for ``size`` clear bytes (16 KB records, 22 bytes of
    overhead each: inner content type and AEAD tag)."""
    out = []
    while size > 0:
        n = min(size, 16384)
        out.append(b"\x17\x03\x03" + struct.pack("!H", n + 17) + rng.randbytes(n + 17))
        size -= n
    return b"".join(out)


# --- sessions ---------------------------------------------------------------------------


class Hosts:
    """Address pools: the local host (the capture's), and many remote peers."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.local4 = bytes([198, 51, 100, 25])
        self.local6 = bytes.fromhex("20010db8000000010000000000000025")
        self.local_mac = bytes.fromhex("525400a1b2c3")
        self.router_mac = bytes.fromhex("00005e000101")
        self.next_port = 32768

    def remote(self, v6: bool) -> bytes:
        if v6:
            return bytes.fromhex("20010db8") + self.rng.randbytes(12)
        return bytes([203, 0, 113 + self.rng.randrange(3), self.rng.randrange(1, 255)])

    def port(self) -> int:
        self.next_port = 32768 + (self.next_port - 32768 + 1 + self.rng.randrange(7)) % 28000
        return self.next_port


class Generator:
    def __init__(self, seed: int, mix: str, linktype: int, concurrency: int) -> None:
        self.rng = random.Random(seed)
        self.mix = mix
        self.link = Link(linktype)
        self.hosts = Hosts(self.rng)
        self.content = Content(random.Random(seed + 1))
        self.concurrency = concurrency
        self.sessions = 0

    def connection(self, rng: random.Random, port: int, inbound: bool) -> Conn:
        v6 = rng.random() < 0.12
        h = self.hosts
        local = ((h.local6 if v6 else h.local4), port if inbound else h.port(), h.local_mac)
        remote_port = h.port() if inbound else port
        remote = (h.remote(v6), remote_port, h.router_mac)
        if inbound:
            return Conn(rng, self.link, v6, remote, local, local=1)
        return Conn(rng, self.link, v6, local, remote, local=0)

    def smtp(self, rng: random.Random, t: int) -> Iterator[list[tuple[int, bytes]]]:
        n = self.sessions
        inbound = rng.random() < 0.7
        port = 587 if not inbound and rng.random() < 0.1 else 25
        c = self.connection(rng, port, inbound)
        rtt = rng.randint(2, 180) * MS
        gap = rng.choice((12_000, 30_000, 120_000))
        tl = Timeline(t)
        if rng.random() < 0.02:  # nobody listens: SYN, RST/ACK
            tl.add(c.frame(0, tl.t, TH_SYN))
            c.ack_of(1)
            tl.add(c.frame(1, tl.t + rtt, TH_RST | TH_ACK))
            yield tl.flush()
            return
        handshake(tl, c, rtt)
        yield tl.flush()
        say(
            tl,
            c,
            1,
            b"220 mx%d.example.net ESMTP Postfix\r\n" % (n % 7),
            rtt,
            rng.randint(1, 300) * MS,
        )
        tls = rng.random() < 0.35
        ehlo = b"EHLO client%d.example.org\r\n" % (n % 250)
        caps = (
            b"250-mx.example.net\r\n250-PIPELINING\r\n250-SIZE 52428800\r\n"
            + (b"250-STARTTLS\r\n" if tls else b"")
            + b"250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n"
        )
        say(tl, c, 0, ehlo, rtt, 2 * MS)
        say(tl, c, 1, caps, rtt, MS)
        yield tl.flush()
        if tls:
            say(tl, c, 0, b"STARTTLS\r\n", rtt, MS)
            say(tl, c, 1, b"220 2.0.0 Ready to start TLS\r\n", rtt, MS)
            send(tl, c, 0, client_hello(rng, b"mx%d.example.net" % (n % 7)), rtt, rng, gap)
            send(tl, c, 1, server_hello(rng), rtt, rng, gap)
            say(tl, c, 0, b"\x14\x03\x03\x00\x01\x01" + app_data(rng, 53), rtt, MS)
            yield tl.flush()
            clear = self._transaction_bytes(rng, n)
            for d, size in clear:
                send(tl, c, d, app_data(rng, size), rtt, rng, gap)
                yield tl.flush()
            tl.add(c.frame(0, tl.t, TH_ACK | TH_PSH, b"\x15\x03\x03\x00\x13" + rng.randbytes(19)))
            close(tl, c, 0, rtt)
            yield tl.flush()
            return
        yield from self._clear_transaction(rng, tl, c, n, rtt, gap)

    def _transaction_bytes(self, rng: random.Random, n: int) -> list[tuple[int, int]]:
        rcpts = rng.randint(1, 3)
        size = message_size(rng)
        steps = [(0, 40), (1, 14)] + [(0, 35), (1, 14)] * rcpts + [(0, 6), (1, 37)]
        return [*steps, (0, size), (1, 40), (0, 6), (1, 15)]

    def _clear_transaction(self, rng, tl, c, n, rtt, gap):
        sender = b"news%d@example.org" % (n % 100)
        rcpts = [b"user%d@example.net" % rng.randrange(5000) for _ in range(rng.randint(1, 5))]
        size = message_size(rng)
        say(tl, c, 0, b"MAIL FROM:<%s> SIZE=%d\r\n" % (sender, size), rtt, MS)
        say(tl, c, 1, b"250 2.1.0 Ok\r\n", rtt, MS)
        accepted = []
        for rcpt in rcpts:
            say(tl, c, 0, b"RCPT TO:<%s>\r\n" % rcpt, rtt, MS)
            r = rng.random()
            if r < 0.06:
                reply = b"550 5.1.1 <%s>: Recipient address rejected: User unknown\r\n" % rcpt
            elif r < 0.09:
                reply = b"451 4.7.1 <%s>: Recipient address rejected: Greylisted\r\n" % rcpt
            else:
                reply = b"250 2.1.5 Ok\r\n"
                accepted.append(rcpt)
            say(tl, c, 1, reply, rtt, rng.randint(1, 40) * MS)
        yield tl.flush()
        if accepted:
            say(tl, c, 0, b"DATA\r\n", rtt, MS)
            say(tl, c, 1, b"354 End data with <CR><LF>.<CR><LF>\r\n", rtt, MS)
            message = make_message(rng, self.content, n, sender, accepted, size)
            if rng.random() < 0.03:  # reset in the middle of the message
                send(
                    tl,
                    c,
                    0,
                    message[: rng.randrange(len(message) // 4, len(message))],
                    rtt,
                    rng,
                    gap,
                )
                tl.add(c.frame(1 if rng.random() < 0.5 else 0, tl.t + 10 * MS, TH_RST | TH_ACK))
                yield tl.flush()
                return
            send(tl, c, 0, message + b".\r\n", rtt, rng, gap)
            yield tl.flush()
            queue_id = b"%010X" % rng.getrandbits(40)
            say(
                tl,
                c,
                1,
                b"250 2.0.0 Ok: queued as %s\r\n" % queue_id,
                rtt,
                rng.randint(20, 900) * MS,
            )
        say(tl, c, 0, b"QUIT\r\n", rtt, MS)
        say(tl, c, 1, b"221 2.0.0 Bye\r\n", rtt, MS)
        close(tl, c, 1, rtt)
        yield tl.flush()

    # -- other traffic ---------------------------------------------------------------------

    def https(self, rng: random.Random, t: int) -> Iterator[list[tuple[int, bytes]]]:
        c = self.connection(rng, 443, inbound=False)
        rtt, gap = rng.randint(1, 60) * MS, rng.choice((12_000, 30_000))
        tl = Timeline(t)
        handshake(tl, c, rtt)
        send(tl, c, 0, client_hello(rng, b"cdn%d.example.com" % rng.randrange(50)), rtt, rng, gap)
        send(tl, c, 1, server_hello(rng), rtt, rng, gap)
        yield tl.flush()
        for _ in range(rng.randint(1, 4)):
            send(tl, c, 0, app_data(rng, rng.randint(200, 900)), rtt, rng, gap)
            r = rng.random()
            size = rng.randint(500, 20_000) if r < 0.6 else rng.randint(20_000, 4_000_000)
            send(tl, c, 1, app_data(rng, size), rtt, rng, gap)
            yield tl.flush()
        close(tl, c, 0, rtt)
        yield tl.flush()

    def http(self, rng: random.Random, t: int) -> Iterator[list[tuple[int, bytes]]]:
        c = self.connection(rng, 80, inbound=False)
        rtt, gap = rng.randint(1, 60) * MS, rng.choice((12_000, 30_000))
        tl = Timeline(t)
        handshake(tl, c, rtt)
        size = rng.randint(300, 2_000_000)
        send(
            tl,
            c,
            0,
            b"GET /pkg/%d HTTP/1.1\r\nHost: mirror.example.com\r\n\r\n" % size,
            rtt,
            rng,
            gap,
        )
        head = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size
        send(tl, c, 1, head + rng.randbytes(size), rtt, rng, gap)
        close(tl, c, 1, rtt)
        yield tl.flush()

    def background(self, rng: random.Random, t: int) -> Iterator[list[tuple[int, bytes]]]:
        """DNS over UDP and ARP, for as long as the capture runs."""
        h = self.hosts
        resolver = bytes([198, 51, 100, 53])
        while True:
            t += rng.randint(1, 40) * MS
            if rng.random() < 0.05:
                arp = struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) + h.local_mac + h.local4
                arp += b"\0" * 6 + bytes([198, 51, 100, rng.randrange(1, 255)])
                yield [(t, self._l2(b"\xff" * 6, h.local_mac, 0x0806, arp, outgoing=True))]
                continue
            name = b"\x03www\x07example" + bytes([3]) + rng.choice((b"com", b"net", b"org")) + b"\0"
            qid, sport = rng.getrandbits(16), h.port()
            query = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0) + name + b"\x00\x01\x00\x01"
            answer = struct.pack("!HHHHHH", qid, 0x8180, 1, 1, 0, 0) + name + b"\x00\x01\x00\x01"
            answer += b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x01\x2c\x00\x04" + rng.randbytes(4)
            yield [
                (t, self._udp(h.local4, resolver, sport, 53, query, outgoing=True)),
                (t + 300_000, self._udp(resolver, h.local4, 53, sport, answer, outgoing=False)),
            ]

    def _udp(self, src: bytes, dst: bytes, sport: int, dport: int, payload: bytes, outgoing: bool):
        udp = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
        ip = struct.pack("!BBHHHBBH", 0x45, 0, 20 + len(udp), 0, 0x4000, 64, 17, 0) + src + dst
        ip = ip[:10] + struct.pack("!H", _ip_checksum(ip)) + ip[12:]
        h = self.hosts
        return self._l2(h.router_mac, h.local_mac, 0x0800, ip + udp, outgoing)

    def _l2(self, dst_mac: bytes, src_mac: bytes, ethertype: int, body: bytes, outgoing: bool):
        if self.link.linktype == LINKTYPE_ETHERNET:
            return dst_mac + src_mac + struct.pack("!H", ethertype) + body
        sll = struct.pack("!HHH", 4 if outgoing else 0, 1, 6) + src_mac + b"\0\0"
        return sll + struct.pack("!H", ethertype) + body

    # -- the whole capture -----------------------------------------------------------------

    def new_session(self, t: int) -> Iterator[list[tuple[int, bytes]]]:
        rng = random.Random(self.rng.getrandbits(64))
        self.sessions += 1
        if self.mix == "mixed":
            r = rng.random()
            if r < 0.55:
                return self.https(rng, t)
            if r < 0.75:
                return self.http(rng, t)
        elif rng.random() < 0.04:
            return self.https(rng, t)
        return self.smtp(rng, t)

    def frames(self) -> Iterator[tuple[int, bytes]]:
        """Every frame of the capture in time order, forever: the caller stops."""
        heap: list = []
        order = 0
        pending: dict[int, tuple[Iterator, list]] = {}

        def start(slot_source: Iterator) -> None:
            nonlocal order
            batch = next(slot_source, None)
            if batch is None:
                return
            order += 1
            pending[order] = (slot_source, batch)
            heapq.heappush(heap, (batch[0][0], order, 0))

        for _ in range(self.concurrency):
            t = T0 + self.rng.randrange(3000) * MS
            start(self.new_session(t))
        start(self.background(random.Random(self.rng.getrandbits(64)), T0))
        while heap:
            _, key, index = heapq.heappop(heap)
            source, batch = pending[key]
            t, frame = batch[index]
            yield t, frame
            if index + 1 < len(batch):
                heapq.heappush(heap, (batch[index + 1][0], key, index + 1))
                continue
            del pending[key]
            following = next(source, None)
            if following is not None:
                order += 1
                pending[order] = (source, following)
                # A session's next exchange never starts before its previous frame.
                heapq.heappush(heap, (max(following[0][0], t), order, 0))
            else:  # the session ended: another takes its place
                start(self.new_session(t + self.rng.randrange(200) * MS))


def generate(out, size: int, seed: int = 1, mix: str = "smtp", linktype: int = LINKTYPE_ETHERNET,
             fmt: str = "pcap", concurrency: int = 1000) -> tuple[int, int]:  # fmt: skip
    """Write a capture of about ``size`` bytes; returns (bytes, frames) written."""
    writer = (PcapngWriter if fmt == "pcapng" else PcapWriter)(out, linktype)
    generator = Generator(seed, mix, linktype, concurrency)
    frames = 0
    last = 0
    for t, frame in generator.frames():
        if writer.written + len(frame) + 32 > size:
            break
        t = max(t, last)  # a capture's clock never runs backwards
        writer.write(t, frame)
        last = t
        frames += 1
    return writer.written, frames


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="100M", help="target file size, e.g. 200M, 1G")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--mix", choices=("smtp", "mixed"), default="smtp")
    parser.add_argument("--link", choices=("ethernet", "sll"), default="ethernet")
    parser.add_argument("--format", choices=("pcap", "pcapng"), default="pcap")
    parser.add_argument("--concurrency", type=int, default=1000, help="sessions open at once")
    parser.add_argument("-o", "--output", required=True, help="file to write ('-' for stdout)")
    args = parser.parse_args(argv)
    linktype = LINKTYPE_LINUX_SLL if args.link == "sll" else LINKTYPE_ETHERNET
    out = sys.stdout.buffer if args.output == "-" else open(args.output, "wb")  # noqa: SIM115
    with out:
        written, frames = generate(
            out, parse_size(args.size), args.seed, args.mix, linktype, args.format,
            args.concurrency,
        )  # fmt: skip
    print(f"{args.output}: {written} bytes, {frames} frames", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

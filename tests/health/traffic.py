"""Generated captures for the capture-wide rules: many TCP connections from one client to one
server, each a handshake and a scripted SMTP exchange, or a SYN nobody answers, or a SYN
answered with a reset. Deterministic: fixed addresses (RFC 5737), ports and times.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import dpkt

CLIENT = bytes([192, 0, 2, 10])
SERVER = bytes([198, 51, 100, 25])
T0 = 1_795_000_000 * 1_000_000_000
"""2026-11-18 11:06:40 UTC."""
MS = 1_000_000


def delivery(queue_id: str = "4ABCDEF123") -> list[tuple[str, bytes]]:
    """A whole delivery; the server's reply to the end of data names ``queue_id``."""
    return [
        ("s", b"220 mx.example.net ESMTP\r\n"),
        ("c", b"EHLO relay.example.org\r\n"),
        ("s", b"250-mx.example.net\r\n250 PIPELINING\r\n"),
        ("c", b"MAIL FROM:<a@example.org>\r\n"),
        ("s", b"250 2.1.0 Ok\r\n"),
        ("c", b"RCPT TO:<b@example.net>\r\n"),
        ("s", b"250 2.1.5 Ok\r\n"),
        ("c", b"DATA\r\n"),
        ("s", b"354 End data with <CR><LF>.<CR><LF>\r\n"),
        ("c", b"Subject: hello\r\n\r\nhello\r\n.\r\n"),
        ("s", b"250 2.0.0 Ok: queued as " + queue_id.encode() + b"\r\n"),
        ("c", b"QUIT\r\n"),
        ("s", b"221 2.0.0 Bye\r\n"),
    ]


DELIVERY = delivery()


def greeted(line: bytes) -> list[tuple[str, bytes]]:
    """A server that answers the connection with ``line`` (a 421 or 554) and closes."""
    return [("s", line + b"\r\n")]


@dataclass
class Conversation:
    """One connection: ``script`` of (side, bytes), or 'unanswered' / 'refused'."""

    start_ns: int
    sport: int
    script: list[tuple[str, bytes]] | str
    server: bytes = SERVER
    dport: int = 25


def _packet(src, dst, sport, dport, seq, ack, flags, payload=b"") -> bytes:
    segment = dpkt.tcp.TCP(
        sport=sport, dport=dport, seq=seq & 0xFFFFFFFF, ack=ack & 0xFFFFFFFF, flags=flags
    )
    segment.win = 64240
    segment.data = payload
    ip = dpkt.ip.IP(src=src, dst=dst, p=6, ttl=64, data=segment)
    ip.len = 20 + len(bytes(segment))
    ether = dpkt.ethernet.Ethernet(
        src=b"\x02\x00\x00\x00\x00\x01", dst=b"\x02\x00\x00\x00\x00\x02", type=0x0800, data=ip
    )
    return bytes(ether)


def _frames(conv: Conversation) -> list[tuple[int, bytes]]:
    c, s, cp, sp = CLIENT, conv.server, conv.sport, conv.dport
    t = conv.start_ns
    cseq, sseq = 1000, 5000
    syn, ack, rst, fin, psh = dpkt.tcp.TH_SYN, dpkt.tcp.TH_ACK, dpkt.tcp.TH_RST, 1, 8
    if conv.script == "unanswered":  # SYN retransmitted at 1, 3 and 7 s, then given up
        return [(t + d * 1000 * MS, _packet(c, s, cp, sp, cseq, 0, syn)) for d in (0, 1, 3, 7)]
    out = [(t, _packet(c, s, cp, sp, cseq, 0, syn))]
    if conv.script == "refused":
        return [*out, (t + MS, _packet(s, c, sp, cp, 0, cseq + 1, rst | ack))]
    out.append((t + MS, _packet(s, c, sp, cp, sseq, cseq + 1, syn | ack)))
    out.append((t + 2 * MS, _packet(c, s, cp, sp, cseq + 1, sseq + 1, ack)))
    cseq, sseq, t = cseq + 1, sseq + 1, t + 3 * MS
    for side, data in conv.script:
        if side == "c":
            out.append((t, _packet(c, s, cp, sp, cseq, sseq, psh | ack, data)))
            cseq += len(data)
        else:
            out.append((t, _packet(s, c, sp, cp, sseq, cseq, psh | ack, data)))
            sseq += len(data)
        t += 2 * MS
    out.append((t, _packet(s, c, sp, cp, sseq, cseq, fin | ack)))
    out.append((t + MS, _packet(c, s, cp, sp, cseq, sseq + 1, fin | ack)))
    out.append((t + 2 * MS, _packet(s, c, sp, cp, sseq + 1, cseq + 1, ack)))
    return out


def write_capture(path: Path, conversations: list[Conversation]) -> Path:
    frames = sorted(
        (frame for conv in conversations for frame in _frames(conv)), key=lambda f: f[0]
    )
    with path.open("wb") as out:
        writer = dpkt.pcap.Writer(out, nano=True)
        for time_ns, data in frames:
            writer.writepkt(data, ts=time_ns / 1e9)
    return path


def attempts(count: int, every_s: float, script, first_port: int = 40000) -> list[Conversation]:
    return [Conversation(T0 + int(i * every_s * 1e9), first_port + i, script) for i in range(count)]

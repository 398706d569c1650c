#!/usr/bin/env python3
"""A hostile capture: one SMTP connection whose message arrives out of order, with holes
that never fill.

    python3 scripts/bench/holes.py --segments 25000 -o /tmp/holes-25k.pcap
    python3 scripts/bench/holes.py --segments 100000 -o /tmp/holes-100k.pcap

What a port scan, a lossy capture of a big transfer or a crafted flow gives the TCP
reassembly: handshake, greeting, EHLO, MAIL, RCPT, DATA and 354 in order, then
``--segments`` data segments of ``--size`` bytes, each behind a hole of ``--hole`` bytes
that no segment ever fills, sent in a random order. The server acknowledges only what it
has in order (the byte before the first hole), so every ACK is the same and nothing
declares the holes: they wait in the reassembly buffer until it reaches its bound, or the
connection ends (a RST from the client at the end). Ethernet, IPv4, pcap; seeded, the
same bytes on every machine; standard library only (and gencapture.py beside it).
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from gencapture import (  # noqa: E402
    LINKTYPE_ETHERNET,
    T0,
    TH_ACK,
    TH_PSH,
    TH_RST,
    Conn,
    Link,
    PcapWriter,
    Timeline,
    handshake,
    say,
)

MS = 1_000_000
DIALOGUE = [
    (1, b"220 mx.example.net ESMTP\r\n"),
    (0, b"EHLO client.example.org\r\n"),
    (1, b"250-mx.example.net\r\n250 PIPELINING\r\n"),
    (0, b"MAIL FROM:<a@example.org>\r\n"),
    (1, b"250 2.1.0 Ok\r\n"),
    (0, b"RCPT TO:<b@example.net>\r\n"),
    (1, b"250 2.1.5 Ok\r\n"),
    (0, b"DATA\r\n"),
    (1, b"354 End data with <CR><LF>.<CR><LF>\r\n"),
]


def generate(out, segments: int, size: int, hole: int, seed: int = 1) -> int:
    """Write the capture to ``out`` (binary); returns the number of frames."""
    rng = random.Random(seed)
    client = (bytes([203, 0, 113, 7]), 40000, bytes.fromhex("020000000007"))
    server = (bytes([198, 51, 100, 25]), 25, bytes.fromhex("525400a1b2c3"))
    conn = Conn(rng, Link(LINKTYPE_ETHERNET), False, client, server, local=1)
    tl = Timeline(T0)
    handshake(tl, conn, 2 * MS)
    for side, line in DIALOGUE:
        say(tl, conn, side, line, 2 * MS, MS)
    conn.ack_of(0)
    first = conn.seq[0]
    stride = hole + size
    order = list(range(segments))
    rng.shuffle(order)
    t = tl.t + MS
    line = (b"X" * (size - 2) + b"\r\n")[:size]
    for n, i in enumerate(order):
        seq = (first + hole + i * stride) & 0xFFFFFFFF
        tl.add(conn.frame(0, t, TH_ACK | TH_PSH, line, seq=seq))
        if n % 2:  # the server's duplicate ACKs: it has nothing new in order
            tl.add(conn.frame(1, t + 10_000, TH_ACK))
        t += 20_000
    conn.seq[0] = (first + segments * stride) & 0xFFFFFFFF
    tl.add(conn.frame(0, t, TH_RST | TH_ACK))
    writer = PcapWriter(out, LINKTYPE_ETHERNET)
    frames = tl.flush()
    for time_ns, frame in frames:
        writer.write(time_ns, frame)
    return len(frames)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--segments", type=int, default=25_000)
    parser.add_argument("--size", type=int, default=100, help="payload bytes per segment")
    parser.add_argument("--hole", type=int, default=1, help="bytes missing before each")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("-o", "--output", type=Path, required=True)
    args = parser.parse_args(argv)
    with args.output.open("wb") as out:
        frames = generate(out, args.segments, args.size, args.hole, args.seed)
    print(f"{args.output}: {frames} frames", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

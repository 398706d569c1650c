#!/usr/bin/env python3
"""Hostile captures, made on the fly, and what reading them costs.

    python3 scripts/bench/hostile.py                       # every case, default sizes
    python3 scripts/bench/hostile.py rcpts flows --keep /tmp/hostile
    python3 scripts/bench/hostile.py --scale 0.01          # small versions (what tests use)

Each case is written as a capture (streamed: nothing the size of the capture is held),
then ``python3 -m pcapsmtp analyze --format json`` reads it in a child process; the table
gives the seconds, the child's peak resident memory (ru_maxrss) and the warnings it
printed. The cases, at scale 1:

- holes:   one flow of 100,000 out-of-order segments whose holes never fill;
- flows:   200,000 concurrent connections, none of them closed;
- line:    a 100 MB command line without CRLF;
- rcpts:   a session of a million RCPT commands, all answered 250;
- message: a 500 MB message;
- mime:    a message of 10,000 nested MIME parts;
- gzip:    a gzip bomb: a .pcap.gz of a few MB that inflates to 10 GB.

Only the standard library is used to write them.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import resource
import struct
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

T0 = 1_717_200_000 * 1_000_000_000
MSS = 1448
CHUNK = 64 * 1024
SYN, ACK, PSH, FIN = 0x02, 0x10, 0x08, 0x01
CLIENT, SERVER = bytes([192, 0, 2, 1]), bytes([198, 51, 100, 25])


class Pcap:
    """A raw-IP (LINKTYPE_RAW) pcap written record by record."""

    def __init__(self, out) -> None:
        self.out = out
        self.time_ns = T0
        out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 101))

    def packet(self, src, dst, sport, dport, seq, ack, flags, payload=b"") -> None:
        self.time_ns += 10_000
        tcp = struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF,
                          5 << 4, flags, 65535, 0, 0)  # fmt: skip
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 40 + len(payload), 0, 0x4000, 64, 6, 0,
                         src, dst)  # fmt: skip
        frame = ip + tcp + payload
        seconds, nanos = divmod(self.time_ns, 1_000_000_000)
        self.out.write(struct.pack("<IIII", seconds, nanos // 1000, len(frame), len(frame)))
        self.out.write(frame)


class Connection:
    """One TCP connection's sequence numbers; ``say`` sends bytes in MSS segments."""

    def __init__(self, pcap: Pcap, sport: int = 40000, client=CLIENT, server=SERVER) -> None:
        self.pcap, self.sport = pcap, sport
        self.ends = {"C": (client, server, sport, 25), "S": (server, client, 25, sport)}
        self.seq = {"C": 1000, "S": 5000}

    def handshake(self) -> None:
        self._send("C", SYN)
        self.seq["C"] += 1
        self._send("S", SYN | ACK)
        self.seq["S"] += 1
        self._send("C", ACK)

    def _send(self, side: str, flags: int, payload: bytes = b"", seq: int | None = None) -> None:
        src, dst, sport, dport = self.ends[side]
        other = "S" if side == "C" else "C"
        here = self.seq[side] if seq is None else seq
        self.pcap.packet(src, dst, sport, dport, here, self.seq[other], flags, payload)

    def say(self, side: str, data: bytes) -> None:
        for at in range(0, len(data), MSS):
            piece = data[at : at + MSS]
            self._send(side, ACK | PSH, piece)
            self.seq[side] += len(piece)

    def stream(self, side: str, chunks: Iterator[bytes]) -> None:
        for chunk in chunks:
            self.say(side, chunk)

    def close(self) -> None:
        for side in ("C", "S"):
            self._send(side, FIN | ACK)
            self.seq[side] += 1
        self._send("C", ACK)


def _greeting(c: Connection) -> None:
    c.handshake()
    c.say("S", b"220 mx.example ESMTP\r\n")
    c.say("C", b"EHLO client.example\r\n")
    c.say("S", b"250-mx.example\r\n250 PIPELINING\r\n")
    c.say("C", b"MAIL FROM:<a@client.example>\r\n")
    c.say("S", b"250 2.1.0 Ok\r\n")


def holes(out, scale: float) -> None:
    """Segments sent out of order, each after a hole that never fills (every other one lost)."""
    pcap = Pcap(out)
    c = Connection(pcap)
    _greeting(c)
    c.say("C", b"RCPT TO:<b@mx.example>\r\n")
    c.say("S", b"250 Ok\r\nDATA\r\n"[:8])
    base = c.seq["C"]
    count = int(100_000 * scale)
    for i in reversed(range(count)):
        c._send("C", ACK | PSH, b"x" * 100, seq=base + i * 200 + 100)
    c.seq["C"] = base + count * 200
    c.close()


def flows(out, scale: float) -> None:
    """Concurrent connections: a handshake and a greeting each, none ever closed."""
    pcap = Pcap(out)
    for i in range(int(200_000 * scale)):
        client = bytes([10, (i >> 16) & 0xFF, (i >> 8) & 0xFF, i & 0xFF])
        c = Connection(pcap, 1024 + i % 60000, client=client)
        c.handshake()
        c.say("S", b"220 mx.example ESMTP\r\n")


def line(out, scale: float) -> None:
    pcap = Pcap(out)
    c = Connection(pcap)
    _greeting(c)
    size = int(100 * 2**20 * scale)
    c.say("C", b"RCPT TO:<")
    c.stream("C", _repeat(b"A" * CHUNK, size))
    c.close()


def _repeat(block: bytes, size: int) -> Iterator[bytes]:
    sent = 0
    while sent < size:
        piece = block[: size - sent]
        sent += len(piece)
        yield piece


def rcpts(out, scale: float) -> None:
    pcap = Pcap(out)
    c = Connection(pcap)
    _greeting(c)
    count = int(1_000_000 * scale)
    batch = 200
    for start in range(0, count, batch):
        n = min(batch, count - start)
        c.say("C", b"".join(b"RCPT TO:<u%d@mx.example>\r\n" % (start + k) for k in range(n)))
        c.say("S", b"250 2.1.5 Ok\r\n" * n)
    c.say("C", b"QUIT\r\n")
    c.say("S", b"221 Bye\r\n")
    c.close()


def _message(c: Connection, body: Iterator[bytes], headers: bytes = b"") -> None:
    c.say("C", b"RCPT TO:<b@mx.example>\r\n")
    c.say("S", b"250 2.1.5 Ok\r\n")
    c.say("C", b"DATA\r\n")
    c.say("S", b"354 go ahead\r\n")
    c.say("C", b"From: a@client.example\r\nTo: b@mx.example\r\nSubject: big\r\n" + headers)
    c.stream("C", body)
    c.say("C", b"\r\n.\r\n")
    c.say("S", b"250 2.0.0 Ok: queued as 4ABC\r\n")
    c.say("C", b"QUIT\r\n")
    c.say("S", b"221 Bye\r\n")
    c.close()


def message(out, scale: float) -> None:
    pcap = Pcap(out)
    c = Connection(pcap)
    _greeting(c)
    line_ = b"x" * 76 + b"\r\n"
    _message(c, _repeat(b"\r\n" + line_ * (CHUNK // len(line_)), int(500 * 2**20 * scale)))


def mime(out, scale: float) -> None:
    pcap = Pcap(out)
    c = Connection(pcap)
    _greeting(c)
    depth = max(int(10_000 * scale), 2)
    opening = b"".join(
        b'Content-Type: multipart/mixed; boundary="b%05d"\r\n\r\n--b%05d\r\n' % (i, i)
        for i in range(depth)
    )
    closing = b"".join(b"\r\n--b%05d--\r\n" % i for i in reversed(range(depth)))
    _message(c, iter([b"MIME-Version: 1.0\r\n", opening, b"Content-Type: text/plain\r\n\r\nhi",
                      closing]))  # fmt: skip


def gzip_bomb(out, scale: float) -> None:
    """A pcap header and one session, then zeros: 10 GB inflated from a few MB."""
    inner = _Gzip(out)
    pcap = Pcap(inner)
    c = Connection(pcap)
    _greeting(c)
    zeros = b"\0" * (4 * 2**20)
    for _ in range(int(10 * 2**30 * scale) // len(zeros)):
        inner.write(zeros)
    inner.close()


class _Gzip:
    def __init__(self, out) -> None:
        self.file = gzip.GzipFile(fileobj=out, mode="wb", compresslevel=9, mtime=0)

    def write(self, data: bytes) -> None:
        self.file.write(data)

    def close(self) -> None:
        self.file.close()


CASES = {
    "holes": (holes, ".pcap"),
    "flows": (flows, ".pcap"),
    "line": (line, ".pcap"),
    "rcpts": (rcpts, ".pcap"),
    "message": (message, ".pcap"),
    "mime": (mime, ".pcap"),
    "gzip": (gzip_bomb, ".pcap.gz"),
}


def write_case(name: str, folder: Path, scale: float = 1.0) -> Path:
    """Write one hostile capture into ``folder``; returns its path."""
    make, suffix = CASES[name]
    path = folder / f"hostile-{name}{suffix}"
    with open(path, "wb") as out:
        make(out, scale)
    return path


def measure(path: Path) -> tuple[float, float, int, int, list[str]]:
    """Wall seconds, CPU seconds (user + system: what a busy machine does not inflate),
    peak RSS (bytes), exit status and warnings of one analyze run."""
    start = time.monotonic()
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    before, cpu_before = usage.ru_maxrss, usage.ru_utime + usage.ru_stime
    done = subprocess.run(
        [sys.executable, "-P", "-m", "pcapsmtp", "analyze", "-q", "--format", "json", str(path)],
        capture_output=True, text=True, check=False,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )  # fmt: skip
    seconds = time.monotonic() - start
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    peak, cpu = usage.ru_maxrss, usage.ru_utime + usage.ru_stime - cpu_before
    if peak <= before:
        peak = before  # ru_maxrss of children is the largest so far: run one case per process
    warnings = [line for line in done.stderr.splitlines() if line.strip()]
    try:
        document = json.loads(done.stdout)
    except ValueError:
        document = {}
    for capture in document.get("captures", []):
        warnings += capture.get("warnings", [])
    for session in document.get("sessions", []):
        warnings += [f"session {session.get('id')}: {w}" for w in session.get("limits", [])]
        codes = Counter(_anomaly_codes(session))
        warnings += [f"session {session.get('id')}: anomaly {c} x{n}" for c, n in codes.items()]
    return seconds, cpu, peak * 1024, done.returncode, warnings


def _anomaly_codes(value) -> list[str]:
    """The anomaly codes anywhere in a session's JSON (the session's own, and its messages'):
    how a bound on one line or one message shows in the output."""
    codes = []
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "anomalies" and isinstance(item, list):
                codes += [a.get("code") if isinstance(a, dict) else str(a) for a in item]
            else:
                codes += _anomaly_codes(item)
    elif isinstance(value, list):
        for item in value:
            codes += _anomaly_codes(item)
    return codes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("cases", nargs="*", choices=[[], *CASES], default=[])
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--keep", type=Path, help="write the captures here and keep them")
    args = parser.parse_args()
    names = args.cases or list(CASES)
    if len(names) > 1:  # ru_maxrss of children is a running maximum: one process per case
        for name in names:
            extra = ["--keep", str(args.keep)] if args.keep else []
            subprocess.run([sys.executable, __file__, name, "--scale", str(args.scale), *extra],
                           check=True)  # fmt: skip
        return
    with tempfile.TemporaryDirectory() as scratch:
        folder = args.keep or Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        path = write_case(names[0], folder, args.scale)
        size = path.stat().st_size
        seconds, cpu, peak, status, warnings = measure(path)
        print(f"{names[0]:8} {size:>14,} B  {seconds:7.1f} s wall  {cpu:7.1f} s CPU  "
              f"{peak / 2**20:7.0f} MiB peak ({peak / 1e6:.0f} MB)  exit {status}",
              flush=True)  # fmt: skip
        for warning in warnings:
            print(f"    {warning[:200]}", flush=True)


if __name__ == "__main__":
    main()

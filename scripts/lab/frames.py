"""What a capture holds, read with tshark: to check that a scenario did what it meant to.

Used for capture-side facts only (which packets a lossy or late capture lacks compared with
the complete capture taken beside it); the SMTP truth always comes from the client.
"""

from __future__ import annotations

import subprocess
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from labnet import CLIENT_IP, CLIENT_IP6

FIELDS = ("frame.number", "ip.src", "ipv6.src", "ip.id", "ip.ttl", "tcp.seq_raw",
          "tcp.ack_raw", "tcp.len", "tcp.flags.str", "tcp.payload")  # fmt: skip


@dataclass(frozen=True)
class Frame:
    number: int
    src: str
    ip_id: str
    ttl: int | None
    seq: int | None
    ack: int | None
    tcp_len: int
    flags: str
    payload: bytes

    @property
    def side(self) -> str:
        return "client" if self.src in (CLIENT_IP, CLIENT_IP6) else "server"

    @property
    def key(self) -> tuple:
        """The same packet in two captures of one interface (not the frame number)."""
        return (self.src, self.ip_id, self.seq, self.ack, self.tcp_len, self.flags)

    def first_line(self, limit: int = 60) -> str | None:
        if not self.payload:
            return None
        line = self.payload.split(b"\r\n", 1)[0][:limit]
        return line.decode("ascii", "replace")


def tcp_frames(pcap: Path) -> list[Frame]:
    """The TCP frames of ``pcap`` in order (tshark -T fields; ARP and others left out)."""
    argv = ["tshark", "-n", "-r", str(pcap), "-Y", "tcp", "-T", "fields", "-E", "occurrence=f"]
    for name in FIELDS:
        argv += ["-e", name]
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    frames = []
    for line in out.splitlines():
        num, src4, src6, ip_id, ttl, seq, ack, tlen, flags, payload = (
            line.split("\t") + [""] * 10
        )[:10]
        frames.append(
            Frame(
                number=int(num),
                src=src4 or src6,
                ip_id=ip_id,
                ttl=int(ttl) if ttl else None,
                seq=int(seq) if seq else None,
                ack=int(ack) if ack else None,
                tcp_len=int(tlen or 0),
                flags=flags.replace("\u00b7", "."),
                payload=bytes.fromhex(payload.replace(":", "")),
            )
        )
    return frames


def missing(reference: list[Frame], capture: list[Frame]) -> list[Frame]:
    """Frames of ``reference`` that ``capture`` lacks (a multiset difference, in order)."""
    have = Counter(f.key for f in capture)
    out = []
    for frame in reference:
        if have[frame.key]:
            have[frame.key] -= 1
        else:
            out.append(frame)
    return out


def describe(frame: Frame) -> dict:
    """A missing frame as a truth entry."""
    entry = {"reference_frame": frame.number, "from": frame.side, "tcp_len": frame.tcp_len,
             "flags": "".join(c for c in frame.flags if c.isalpha())}  # fmt: skip
    if frame.payload:
        entry["text"] = frame.first_line()
    return entry

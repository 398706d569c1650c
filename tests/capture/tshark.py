"""The same capture facts from tshark (the reference) and from our reader, side by side.

One tshark run per file, ``-T fields``: frame number, epoch time (nanoseconds), the
protocol stack, the fragment count tshark shows in the frame where it completed an IP
reassembly, and the TCP ports, sequence number and length.

tshark runs through tests/tshark.py, which answers this question together with the other
modules' about the same file in one tshark pass, and keeps the answers (see there); our side
is always computed afresh.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pcapsmtp.capture import IPPacket, TcpSegment, open_capture, packets
from pcapsmtp.capture.decode import decode_ip
from tests.tshark import TSHARK as TSHARK
from tests.tshark import answer, ask

FIELDS = ("frame.number", "frame.time_epoch", "frame.protocols", "ip.fragment.count",
          "ipv6.fragment.count", "tcp.srcport", "tcp.dstport", "tcp.seq_raw",
          "tcp.len")  # fmt: skip
ROOT_NOTICE = 'Running as user "root" and group "root". This could be dangerous.'
PREFERENCES = ("-o", "ip.defragment:TRUE", "-o", "ipv6.defragment:TRUE")
"""Pinned, so that a personal Wireshark profile cannot change the reference."""
ask(FIELDS, None, PREFERENCES)


@dataclass(frozen=True, slots=True)
class Facts:
    """What both tshark and the reader can say about a capture file."""

    frames: int
    times: tuple[int | None, ...]
    """Every frame's time in ns since the epoch; None where the record has none."""
    ip_frames: tuple[int, ...]
    """Numbers of the frames carrying IPv4 or IPv6."""
    reassembled: int
    """IP datagrams reassembled from fragments."""
    segments: tuple[tuple[int, int, int, int, int], ...]
    """(frame, source port, destination port, raw sequence number, payload length) of every
    TCP segment, not counting the headers quoted in ICMP errors."""


@dataclass(frozen=True, slots=True)
class TsharkRun:
    facts: Facts
    error: str
    """What tshark printed on stderr (a damaged file), without its root notice."""


def epoch_ns(text: str) -> int | None:
    """``frame.time_epoch`` ("1254722767.492060000") as integer nanoseconds."""
    if not text:
        return None
    sign = -1 if text.startswith("-") else 1
    seconds, _, fraction = text.lstrip("-").partition(".")
    # tshark prints the nanoseconds as "%09d" without carrying: a µs field of 1,500,000
    # in a damaged pcap shows as ".1500000000", meaning 1.5 s.
    nanoseconds = int(fraction.ljust(9, "0")) if fraction else 0
    return sign * (int(seconds) * 1_000_000_000 + nanoseconds)


def tshark_facts(path: Path | str) -> TsharkRun:
    """tshark's facts about ``path``: what it read before any error, and the error."""
    found = answer(path, FIELDS, None, PREFERENCES)
    rows = found.rows
    facts = Facts(
        frames=len(rows),
        times=tuple(epoch_ns(row[1]) for row in rows),
        ip_frames=tuple(int(row[0]) for row in rows if {"ip", "ipv6"} & set(row[2].split(":"))),
        reassembled=sum(len(count.split(",")) for row in rows for count in row[3:5] if count),
        segments=tuple(
            (int(row[0]), *(int(value.split(",")[0]) for value in row[5:9]))
            for row in rows
            if row[5] and not {"icmp", "icmpv6"} & set(row[2].split(":"))
        ),
    )
    error = "\n".join(line for line in found.stderr.splitlines() if line != ROOT_NOTICE)
    return TsharkRun(facts, error.strip())


def tshark_fields(path: Path | str, fields: list[str], display_filter: str = "") -> list[dict]:
    """One dict per frame (matching ``display_filter``): field -> list of its occurrences."""
    found = answer(path, fields, display_filter or None, ("-E", "occurrence=a", *PREFERENCES))
    assert found.status == 0, found.stderr
    return [
        {f: value.split(",") if value else [] for f, value in zip(fields, row, strict=True)}
        for row in found.rows
    ]


def reader_facts(path: Path | str):
    """Our facts about ``path`` and the CaptureInfo of a full pass through ``packets()``.

    The IP frames come from ``decode_ip`` on every frame; ``CaptureInfo`` from a
    separate full pass, so its counters are checked as the rest of the tool sees them.
    """
    times, ip_frames = [], []
    with open_capture(str(path)) as capture:
        for frame in capture.frames():
            times.append(frame.time_ns)
            if isinstance(decode_ip(frame), IPPacket):
                ip_frames.append(frame.number)
    with open_capture(str(path)) as capture:
        segments = tuple(
            (p.frame, p.sport, p.dport, p.seq, p.length)
            for p in packets(capture)
            if isinstance(p, TcpSegment)
        )
        info = capture.info
    assert info.frames == len(times)
    assert info.ip_frames == len(ip_frames)
    facts = Facts(info.frames, tuple(times), tuple(ip_frames), info.reassembled, segments)
    return facts, info

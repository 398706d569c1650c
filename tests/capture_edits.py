"""Real captures edited the way real captures go wrong: one direction only, started late,
bytes the capture point dropped. Each reads an Ethernet pcap (the lab's) and writes another
with dpkt, keeping the records' timestamps."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import dpkt


def _records(path: Path) -> list[tuple[float, bytes]]:
    with open(path, "rb") as handle:
        return list(dpkt.pcap.Reader(handle))


def _write(path: Path, records: list[tuple[float, bytes]]) -> Path:
    with open(path, "wb") as handle:
        writer = dpkt.pcap.Writer(handle, linktype=dpkt.pcap.DLT_EN10MB, snaplen=65535)
        for ts, buf in records:
            writer.writepkt(buf, ts)
    return path


def _tcp(buf: bytes):
    eth = dpkt.ethernet.Ethernet(buf)
    ip = eth.data
    if isinstance(ip, (dpkt.ip.IP, dpkt.ip6.IP6)) and isinstance(ip.data, dpkt.tcp.TCP):
        return eth, ip, ip.data
    return eth, ip, None


def keep(source: Path, target: Path, wanted: Callable[[int, bytes], bool]) -> Path:
    """Only the records (1-based frame number, bytes) ``wanted`` says yes to."""
    records = _records(source)
    return _write(target, [r for n, r in enumerate(records, 1) if wanted(n, r[1])])


def one_direction(source: Path, target: Path, port: int, sent_from_port: bool) -> Path:
    """Only the TCP packets sent from (or, with ``sent_from_port`` False, to) ``port``: what
    ``tcpdump -Q out`` on one host or a one-way SPAN sees."""

    def wanted(_frame: int, buf: bytes) -> bool:
        _eth, _ip, tcp = _tcp(buf)
        if tcp is None:
            return False
        return (tcp.sport == port) == sent_from_port

    return keep(source, target, wanted)


def drop_frames(source: Path, target: Path, frames: set[int]) -> Path:
    """Without these frames (a capture that started late, or dropped them)."""
    return keep(source, target, lambda n, _buf: n not in frames)


def cut_payload(source: Path, target: Path, frame: int, start: int, length: int) -> Path:
    """The frame's TCP payload without ``length`` bytes from ``start``: a hole of exactly
    that many bytes in its direction's stream. The bytes before the hole stay in this frame;
    the bytes after it follow in a copy of the frame whose sequence number skips the hole
    (as if the capture lost the part between two segments)."""
    records = _records(source)
    ts, buf = records[frame - 1]
    eth, _ip, tcp = _tcp(buf)
    payload = bytes(tcp.data)
    before, after = payload[:start], payload[start + length :]
    pieces = []
    if before:
        pieces.append((tcp.seq, before))
    if after:
        pieces.append((tcp.seq + start + length, after))
    rebuilt = []
    for seq, data in pieces:
        copy = dpkt.ethernet.Ethernet(bytes(eth))
        inner = copy.data
        segment = inner.data
        segment.seq, segment.data, segment.sum = seq, data, 0
        if isinstance(inner, dpkt.ip.IP):
            inner.len = inner.__hdr_len__ + len(inner.opts) + len(segment)
            inner.sum = 0
        else:
            inner.plen = len(segment)
        inner.data = segment
        rebuilt.append((ts, bytes(copy)))
    return _write(target, records[: frame - 1] + rebuilt + records[frame:])


def payloads(source: Path) -> list[tuple[int, int, int, bytes]]:
    """(frame, source port, destination port, TCP payload) of every TCP packet with data."""
    found = []
    for number, (_ts, buf) in enumerate(_records(source), 1):
        _eth, _ip, tcp = _tcp(buf)
        if tcp is not None and tcp.data:
            found.append((number, tcp.sport, tcp.dport, bytes(tcp.data)))
    return found

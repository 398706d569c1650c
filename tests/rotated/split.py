"""Cut a real capture into the files a rotating capture would have written, and compare."""

from __future__ import annotations

import itertools
import json
import struct
from pathlib import Path

from pcapsmtp.analysis import Analysis
from pcapsmtp.report.jsondoc import analysis_document

PCAP_LE = (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1")


def pcap_records(path: Path) -> tuple[bytes, list[bytes]]:
    """The file header and the records (header and data) of a pcap file."""
    data = path.read_bytes()
    order = "<" if data[:4] in PCAP_LE else ">"
    records, pos = [], 24
    while pos + 16 <= len(data):
        (caplen,) = struct.unpack(order + "I", data[pos + 8 : pos + 12])
        records.append(data[pos : pos + 16 + caplen])
        pos += 16 + caplen
    return data[:24], records


def split_pcap(path: Path, cuts: list[int], folder: Path, prefix: str = "gw1-") -> list[Path]:
    """``path`` cut before each record index of ``cuts`` into files named like
    ``tcpdump -G`` names them."""
    header, records = pcap_records(path)
    bounds = [0, *sorted(set(cuts)), len(records)]
    paths = []
    for n, (start, end) in enumerate(itertools.pairwise(bounds)):
        piece = folder / f"{prefix}2026112301{n:04d}.pcap"
        piece.write_bytes(header + b"".join(records[start:end]))
        paths.append(piece)
    return paths


def comparable(analysis: Analysis, label: str) -> dict:
    """The JSON document with the capture's name (a file or a set) replaced, and the
    warnings left out (a set names its files in them)."""
    text = json.dumps(analysis_document(analysis)).replace(json.dumps(label)[1:-1], "CAPTURE")
    doc = json.loads(text)
    for capture in doc["captures"]:
        for key in ("files", "warnings", "compression"):
            capture.pop(key, None)
    return doc


def port_reuse_capture(path: Path, out: Path, later_s: int = 5) -> Path:
    """``path`` (Ethernet, IPv4, one connection) followed by itself ``later_s`` seconds later
    with other initial sequence numbers: the same 4-tuple used again by a new connection,
    as a busy client's port allocator does."""
    header, records = pcap_records(path)
    order = "<" if header[:4] in PCAP_LE else ">"
    client_port = None
    again = []
    for record in records:
        sec, frac, caplen, wire = struct.unpack(order + "IIII", record[:16])
        frame = bytearray(record[16:])
        ip = 14
        tcp = ip + (frame[ip] & 0x0F) * 4
        sport, _dport, seq, ack = struct.unpack(">HHII", frame[tcp : tcp + 12])
        flags = frame[tcp + 13]
        if client_port is None:
            client_port = sport
        shift, peer_shift = (10**6, 7 * 10**6) if sport == client_port else (7 * 10**6, 10**6)
        seq = (seq + shift) % 2**32
        ack = (ack + peer_shift) % 2**32 if flags & 0x10 else ack
        frame[tcp + 4 : tcp + 12] = struct.pack(">II", seq, ack)
        again.append(struct.pack(order + "IIII", sec + later_s, frac, caplen, wire) + bytes(frame))
    out.write_bytes(header + b"".join(records + again))
    return out

#!/usr/bin/env python3
"""Make a large capture for benchmarks by repeating the sessions of small ones.

    scripts/repeat-sessions.py -n 200 -o big.pcap captures/starttls-25.pcap ...

Each copy of each input gets its own client port (so every copy is a connection of its own,
as tshark and pcapsmtp number them) and is shifted in time, copies interleaving like the
sessions of a busy server; the key logs beside the inputs (<name>.keylog) are concatenated
into <output>.keylog. Inputs: pcap files of Ethernet/IPv4 frames, as the lab writes them;
other frames are copied unchanged.
"""

from __future__ import annotations

import argparse
import heapq
import struct
from pathlib import Path

SERVER_PORTS = (25, 465, 587, 2525)


def read_pcap(path: Path) -> tuple[bytes, list[tuple[int, bytes, bytes]]]:
    """(file header, [(time in ns, length on the wire, frame)])."""
    raw = path.read_bytes()
    magic = struct.unpack_from("<I", raw)[0]
    scale = 1 if magic == 0xA1B23C4D else 1000
    if magic not in (0xA1B2C3D4, 0xA1B23C4D):
        raise SystemExit(f"{path}: not a little-endian pcap file")
    records, pos = [], 24
    while pos + 16 <= len(raw):
        sec, frac, caplen, wire = struct.unpack_from("<IIII", raw, pos)
        records.append((sec * 10**9 + frac * scale, wire, raw[pos + 16 : pos + 16 + caplen]))
        pos += 16 + caplen
    return struct.pack("<IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, 262144, 1), records


def shift_port(frame: bytes, offset: int) -> bytes:
    """The client port of an Ethernet/IPv4/TCP frame moved by ``offset``."""
    if len(frame) < 34 or frame[12:14] != b"\x08\x00" or frame[23] != 6:
        return frame
    tcp = 14 + (frame[14] & 0x0F) * 4
    sport, dport = struct.unpack_from(">HH", frame, tcp)
    if dport in SERVER_PORTS:
        sport = (sport - 1024 + offset) % 64000 + 1024
    elif sport in SERVER_PORTS:
        dport = (dport - 1024 + offset) % 64000 + 1024
    # The TCP checksum is left stale: neither tshark nor pcapsmtp verifies it.
    return frame[:tcp] + struct.pack(">HH", sport, dport) + frame[tcp + 4 :]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("inputs", nargs="+", type=Path)
    parser.add_argument("-n", "--copies", type=int, default=100)
    parser.add_argument("-o", "--output", type=Path, required=True)
    parser.add_argument(
        "--gap-ms", type=float, default=50.0, help="time between the starts of two copies"
    )
    args = parser.parse_args()
    header, streams, keylog = None, [], []
    for index, path in enumerate(args.inputs):
        header, records = read_pcap(path)
        start = records[0][0]
        for copy in range(args.copies):
            base = int((copy * len(args.inputs) + index) * args.gap_ms * 1e6)
            offset = copy * len(args.inputs) + index + 1
            streams.append(
                [(base + t - start, wire, shift_port(f, offset)) for t, wire, f in records]
            )
        key = path.with_suffix(".keylog")
        if key.is_file():
            keylog.append(key.read_text())
    t0 = 1_800_000_000 * 10**9
    with args.output.open("wb") as out:
        out.write(header)
        for t, wire, frame in heapq.merge(*streams, key=lambda r: r[0]):
            sec, ns = divmod(t0 + t, 10**9)
            out.write(struct.pack("<IIII", sec, ns, len(frame), wire) + frame)
    if keylog:
        args.output.with_suffix(".keylog").write_text("".join(keylog))


if __name__ == "__main__":
    main()

"""Long captures composed from real ones, for the stream-numbering oracle tests.

The sessions of lab and public captures are re-timed, given another client port or other
initial sequence numbers, repeated, and interleaved; ICMP errors are taken out of the
capture holding the connection they quote. Every frame stays a real frame: only ports,
sequence and acknowledgement numbers and times change (checksums are left stale: neither
tshark nor pcapsmtp verifies them). Frames must be Ethernet carrying IPv4 or IPv6, as the
lab and the public captures used here are.
"""

from __future__ import annotations

import struct
from dataclasses import replace
from pathlib import Path

from tests.capture.writers import LINKTYPE_ETHERNET, PcapFile, Record, read_pcap
from tests.captures import LAB

SERVER_PORTS = (25, 465, 587)
SECOND = 1_000_000_000


def frames(path: Path) -> list[Record]:
    """The frames of an Ethernet pcap file."""
    capture = read_pcap(path.read_bytes())
    assert capture.linktype == LINKTYPE_ETHERNET, path
    return capture.records


def write(path: Path, records: list[Record]) -> Path:
    """A nanosecond pcap of ``records`` in time order (stable for equal times)."""
    ordered = sorted(records, key=lambda r: r.time_ns)
    path.write_bytes(PcapFile(LINKTYPE_ETHERNET, ordered, nanoseconds=True).to_bytes())
    return path


def _layers(data: bytes) -> tuple[int, int] | None:
    """(offset of the transport header, IP protocol) of an Ethernet frame, or None."""
    if len(data) < 14:
        return None
    ethertype = struct.unpack_from(">H", data, 12)[0]
    if ethertype == 0x0800 and len(data) >= 34:
        return 14 + (data[14] & 0x0F) * 4, data[23]
    if ethertype == 0x86DD and len(data) >= 54:
        return 54, data[20]
    return None


def is_tcp(record: Record) -> bool:
    layers = _layers(record.data)
    return layers is not None and layers[1] == 6


def is_icmp_error(record: Record) -> bool:
    layers = _layers(record.data)
    if layers is None or layers[1] not in (1, 58):
        return False
    icmp_type = record.data[layers[0]]
    return icmp_type in ((3, 4, 5, 11, 12) if layers[1] == 1 else (1, 2, 3, 4))


def retimed(records: list[Record], start_ns: int) -> list[Record]:
    """The records moved in time so that the first is at ``start_ns``."""
    shift = start_ns - records[0].time_ns
    return [replace(r, time_ns=r.time_ns + shift) for r in records]


def _rewrite_tcp(record: Record, offset: int, port: int | None, deltas: tuple[int, int]):
    data = bytearray(record.data)
    sport, dport, seq, ack = struct.unpack_from(">HHII", data, offset)
    from_client = dport in SERVER_PORTS
    if port is not None:
        if from_client:
            sport = port
        else:
            dport = port
    mine, peers = deltas if from_client else deltas[::-1]
    flags = data[offset + 13]
    seq = (seq + mine) & 0xFFFFFFFF
    if flags & 0x10:
        ack = (ack + peers) & 0xFFFFFFFF
    struct.pack_into(">HHII", data, offset, sport, dport, seq, ack)
    return replace(record, data=bytes(data))


def moved(
    records: list[Record], port: int | None = None, client_isn: int = 0, server_isn: int = 0
) -> list[Record]:
    """The TCP frames of a session given client port ``port`` and initial sequence numbers
    moved by ``client_isn`` and ``server_isn`` (the client sends to a port of
    SERVER_PORTS); other frames unchanged."""
    out = []
    for record in records:
        layers = _layers(record.data)
        if layers is not None and layers[1] == 6:
            record = _rewrite_tcp(record, layers[0], port, (client_isn, server_isn))
        out.append(record)
    return out


def _sessions(name: str) -> list[Record]:
    return [r for r in frames(LAB / name) if is_tcp(r)]


def _filler(count: int, start_ns: int, span_ns: int, first_port: int) -> list[Record]:
    """``count`` copies of the lab's clean delivery, each with a client port of its own,
    their starts spread evenly over ``span_ns``."""
    session = _sessions("clean-delivery.pcap")
    out = []
    for i in range(count):
        out += retimed(moved(session, first_port + i), start_ns + i * span_ns // count)
    return out


def port_reuse(path: Path) -> Path:
    """4-tuples used again long after they closed, each time beyond the flow table's
    linger (10 s and 2,000 frames) and once beyond its idle limit (15 minutes; frames
    only when the test lowers that limit):

    - a session reset in the middle of its DATA (rst-in-data), then the same session
      again (same initial sequence numbers: Wireshark's same stream, every segment a
      retransmission), then with other initial sequence numbers (a new stream, reused
      ports), then that one once more;
    - refused connection attempts (connect-refused: SYN, RST) probed again the same way;
    - a clean delivery cut after its first ten frames, the rest 20 minutes later;
    between them copies of a clean delivery on other ports."""
    reset = _sessions("rst-in-data.pcap")
    probes = _sessions("connect-refused.pcap")
    quiet = moved(_sessions("clean-delivery.pcap"), 61000)
    records = retimed(reset, 0) + retimed(probes, SECOND // 2) + retimed(quiet[:10], SECOND)
    port = 30000
    starts = [70, 140, 210, 280]
    variants = [(0, 0), (1000, 2000), (1000, 2000), (0, 0)]
    previous = 2
    for start, (client, server) in zip(starts, variants, strict=True):
        records += _filler(110, previous * SECOND, (start - previous - 2) * SECOND, port)
        port += 110
        records += retimed(moved(reset, None, client, server), start * SECOND)
        records += retimed(moved(probes, None, client, server), (start + 1) * SECOND)
        previous = start + 5
    records += retimed(quiet[10:], 1500 * SECOND)
    return write(path, records)


def icmp_errors(path: Path, public: Path | None) -> Path:
    """ICMP errors quoting connections the capture has no packet of, among sessions:

    - the fragmentation-needed errors of the lab's PMTUD session, first without their
      session (before any TCP packet), and the session itself a minute later (its errors
      with it), then its errors again two minutes after it closed;
    - the same errors cut to 8 and to 15 bytes of quoted TCP (too short for Wireshark to
      give them a stream);
    - when the public zeek-smtp.pcap is there, its four fragmentation-needed errors
      without their session;
    between them copies of a clean delivery."""
    pmtud = frames(LAB / "pmtud-working.pcap")
    errors = [r for r in pmtud if is_icmp_error(r)]
    session = [r for r in pmtud if is_tcp(r) or is_icmp_error(r)]
    records = retimed(errors, 0)
    records += _filler(30, SECOND, 20 * SECOND, 30000)
    cut = [replace(errors[0], data=errors[0].data[:cut]) for cut in (70, 77)]
    records += retimed(cut, 25 * SECOND)
    if public is not None and public.is_file():
        records += retimed([r for r in frames(public) if is_icmp_error(r)], 30 * SECOND)
    records += _filler(30, 35 * SECOND, 20 * SECOND, 30100)
    records += retimed(session, 60 * SECOND)
    records += _filler(120, 65 * SECOND, 50 * SECOND, 30200)
    records += retimed(errors, 180 * SECOND)
    return write(path, records)

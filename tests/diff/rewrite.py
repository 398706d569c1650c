"""A real lab capture rewritten the way a box on the path rewrites traffic.

The lab has two-sided captures of a path-MTU black hole, a forged RST and IP fragmentation,
but none through NAT, sequence number randomisation, MSS clamping or an SMTP inspection.
These functions make that other side from a real capture: every byte stays as recorded
except what such a box changes (addresses, ports, sequence numbers, the MSS option, the
banner and EHLO keywords masked to the same length, as Cisco's ``inspect esmtp`` does).
Checksums are recomputed by dpkt.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import dpkt

MASK = 0xFFFFFFFF


@dataclass(slots=True)
class Box:
    """What the box changes; everything is optional."""

    client_ip: bytes | None = None
    """The client's address after source NAT."""
    client_port: int | None = None
    seq_shift: dict[str, int] = field(default_factory=dict)
    """'client' / 'server' -> added to that side's sequence numbers (and the peer's ACKs)."""
    mss: int | None = None
    """Clamp the MSS option of the client's SYN to this."""
    mask_smtp: bool = False
    """Mask the banner with asterisks and EHLO keywords with X's (same lengths)."""
    payloads: dict[bytes, bytes] = field(default_factory=dict)
    """Byte strings replaced in server payloads (same length)."""
    server_port: int = 25


def rewrite(source: Path, target: Path, box: Box) -> Path:
    """``source`` as seen on the other side of ``box``."""
    with source.open("rb") as f:
        reader = dpkt.pcap.Reader(f)
        records = [(ts, buf) for ts, buf in reader]
        linktype = reader.datalink()
    with target.open("wb") as out:
        writer = dpkt.pcap.Writer(out, linktype=linktype, nano=False)
        for ts, buf in records:
            eth = dpkt.ethernet.Ethernet(buf)
            ip = eth.data
            if isinstance(ip, dpkt.ip.IP) and isinstance(ip.data, dpkt.tcp.TCP):
                tcp = ip.data
                from_client = tcp.dport == box.server_port
                _rewrite_tcp(ip, tcp, from_client, box)
                ip.sum = 0
                tcp.sum = 0
                eth.data = ip
            writer.writepkt(bytes(eth), ts=ts)
    return target


def _rewrite_tcp(ip, tcp, from_client: bool, box: Box) -> None:
    sender, peer = ("client", "server") if from_client else ("server", "client")
    tcp.seq = (tcp.seq + box.seq_shift.get(sender, 0)) & MASK
    if tcp.flags & dpkt.tcp.TH_ACK:
        tcp.ack = (tcp.ack + box.seq_shift.get(peer, 0)) & MASK
    if box.client_ip is not None:
        if from_client:
            ip.src = box.client_ip
        else:
            ip.dst = box.client_ip
    if box.client_port is not None:
        if from_client:
            tcp.sport = box.client_port
        else:
            tcp.dport = box.client_port
    if box.mss is not None and from_client and tcp.flags & dpkt.tcp.TH_SYN:
        tcp.opts = _clamp(tcp.opts, box.mss)
    if not from_client and tcp.data:
        tcp.data = _server_payload(bytes(tcp.data), box)


def _clamp(options: bytes, mss: int) -> bytes:
    i = options.find(b"\x02\x04")
    if i < 0:
        return options
    return options[: i + 2] + mss.to_bytes(2, "big") + options[i + 4 :]


_KEYWORDS = (b"STARTTLS", b"CHUNKING", b"VRFY", b"ETRN", b"SMTPUTF8")


def _server_payload(data: bytes, box: Box) -> bytes:
    for old, new in box.payloads.items():
        data = data.replace(old, new)
    if not box.mask_smtp:
        return data
    if data.startswith(b"220 ") and b"ESMTP" in data:
        end = data.index(b"\r\n")
        data = b"220 " + b"*" * (end - 4) + data[end:]
    for n, keyword in enumerate(_KEYWORDS):
        masked = b"X" * (len(keyword) - 1) + bytes([ord("A") + n])
        data = re.sub(rb"(?m)^(250[ -])" + keyword + rb"\b", rb"\g<1>" + masked, data)
    return data

"""A capture with a short snap length (tcpdump -s 68) holds every packet, cut: the greeting
it cut to "22" was captured, so the session did not start before the capture did."""

from __future__ import annotations

import struct
from pathlib import Path

from pcapsmtp.analysis import analyze
from tests.diagnose.helpers import lab


def snapped(source: str, target: Path, snaplen: int) -> Path:
    """The classic pcap ``source`` as tcpdump -s ``snaplen`` would have written it: each
    record cut to ``snaplen`` bytes, its original length kept (dpkt's writer cannot)."""
    data = Path(source).read_bytes()
    order = "<" if data[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    header = bytearray(data[:24])
    struct.pack_into(order + "I", header, 16, snaplen)
    out, at = [bytes(header)], 24
    while at + 16 <= len(data):
        sec, frac, caplen, origlen = struct.unpack_from(order + "IIII", data, at)
        kept = data[at + 16 : at + 16 + min(caplen, snaplen)]
        out.append(struct.pack(order + "IIII", sec, frac, len(kept), origlen) + kept)
        at += 16 + caplen
    target.write_bytes(b"".join(out))
    return target


def test_a_greeting_cut_by_the_snap_length_was_captured(tmp_path):
    path = snapped(lab("clean-delivery"), tmp_path / "snap68.pcap", 68)
    result = analyze([str(path)])
    [session] = list(result.sessions)
    assert session.flow.syn_time_ns is not None
    assert session.not_captured == []
    codes = {f.code for f in result.findings}
    assert "capture-truncated" in codes
    assert "capture-started-late" not in codes

"""Lab captures whose Wireshark stream numbers are not simply one per connection seen.

icmp-quoted-streams: TCP connections seen only quoted inside ICMP errors get a tcp.stream;
scan-port-reuse: a scanner reusing a 4-tuple with the same ISN after a RST stays in the same
tcp.stream. tshark 4.0 is the oracle; no pcapsmtp code is involved (tests/capture compares
ours with tshark's).
"""

from __future__ import annotations

import subprocess

import pytest

from tests.captures import LAB

from .tsharkframes import count, truth_or_skip


def streams(name: str) -> list[tuple[int, int, int, str]]:
    """(tcp.stream, source port, destination port, flags) of every TCP frame, in order."""
    out = subprocess.run(
        ["tshark", "-n", "-r", str(LAB / name), "-Y", "tcp", "-T", "fields",
         "-e", "tcp.stream", "-e", "tcp.srcport", "-e", "tcp.dstport", "-e", "tcp.flags"],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout  # fmt: skip
    rows = []
    for line in out.splitlines():
        stream, sport, dport, flags = line.split("\t")
        rows.append((int(stream), int(sport), int(dport), flags))
    return rows


def port(endpoint: str) -> int:
    return int(endpoint.rsplit(":", 1)[1])


@pytest.mark.oracle
def test_icmp_quoted_connections_take_wireshark_stream_numbers():
    """The delivery after two ICMP errors quoting unseen connections is tcp.stream 3, not 1."""
    name = "icmp-quoted-streams"
    t = truth_or_skip(name)
    quoted = {port(c["client"]) for c in t["other_connections"]}
    assert count(f"{name}.pcap", "tcp.dstport==2525 && !icmp") == 0
    assert count(f"{name}.pcap", "icmp.type==3 && icmp.code==3 && tcp.dstport==2525") == len(quoted)
    stream_of: dict[int, int] = {}
    for stream, sport, dport, _ in streams(f"{name}.pcap"):
        stream_of.setdefault(max(sport, dport), stream)
    smtp = [port(s["client"]) for s in t["sessions"]]
    assert [stream_of[p] for p in smtp] == [0, 1 + len(quoted)]
    assert sorted(stream_of[p] for p in quoted) == list(range(1, 1 + len(quoted)))


@pytest.mark.oracle
def test_scanner_reusing_a_tuple_with_the_same_isn_stays_in_its_stream():
    """Round 2 of the scan reuses round 1's 4-tuples with the same ISNs, more than 10 s and 2000
    frames after they were reset: Wireshark keeps each in its first stream, so the deliveries
    are the streams right after round 1's."""
    name = "scan-port-reuse"
    t = truth_or_skip(name)
    first, second = (r["ports"] for r in t["scanner"]["rounds"])
    assert second == first[: len(second)]
    out = subprocess.run(
        ["tshark", "-n", "-r", str(LAB / f"{name}.pcap"), "-Y", "tcp.srcport==61000 && "
         "tcp.flags.syn==1", "-T", "fields", "-e", "frame.number", "-e", "frame.time_relative",
         "-e", "tcp.stream", "-e", "tcp.dstport", "-e", "tcp.seq_raw"],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout  # fmt: skip
    syns = [line.split("\t") for line in out.splitlines()]
    assert [int(r[3]) for r in syns] == first + second
    before = {int(r[3]): r for r in syns[: len(first)]}
    for frame, time, stream, dport, seq in syns[len(first) :]:
        old = before[int(dport)]
        assert (stream, seq) == (old[2], old[4]), dport
        assert float(time) - float(old[1]) > 10 and int(frame) - int(old[0]) > 2000
    smtp = {port(s["client"]) for s in t["sessions"]}
    rows = streams(f"{name}.pcap")
    smtp_streams = sorted({s for s, sp, dp, _ in rows if sp in smtp or dp in smtp})
    assert smtp_streams == [len(first), len(first) + 1]

"""A capture point that sees every packet twice (a SPAN port mirroring both ports of a path,
a capture on a bridge and its member): an INFO capture-duplicates finding says so, the TCP
counts stay Wireshark's (each copy a retransmission) and the verdict is the original
capture's. Read twice, every segment looked like a retransmission: a clean delivery got a
'retransmissions' warning ('packet loss on the path') and a path-MTU black hole seen at the
receiver lost its error. A packet repeated later than a copy would be is still a
retransmission.

The variants are built at run time from the lab's captures (tests/capture_edits.py)."""

from __future__ import annotations

from pathlib import Path

import dpkt
import pytest

from pcapsmtp.analysis import analyze
from tests.capture_edits import _records, _write, payloads
from tests.diagnose.helpers import lab


def _verdict(path: Path):
    result = analyze([str(path)])
    sessions = [s.outcome for s in result.sessions]
    findings = sorted((f.code, f.severity, f.session) for f in result.findings)
    return sessions, findings


def _doubled(source: str, target: Path, delay: float) -> Path:
    """Every TCP frame followed by its copy ``delay`` seconds later (other frames once)."""
    records = []
    for ts, buf in _records(Path(source)):
        records.append((ts, buf))
        if isinstance(getattr(dpkt.ethernet.Ethernet(buf).data, "data", None), dpkt.tcp.TCP):
            records.append((ts + delay, buf))
    return _write(target, records)


@pytest.mark.parametrize("case", ["clean-delivery", "mtu-blackhole.server", "pipelining"])
def test_every_packet_twice_gives_the_originals_verdict(case, tmp_path):
    original = _verdict(Path(lab(case)))
    sessions, findings = _verdict(_doubled(lab(case), tmp_path / "twice.pcap", 20e-6))
    copies = [f for f in findings if f[0] == "capture-duplicates"]
    assert copies == [("capture-duplicates", "info", None)]
    assert (sessions, [f for f in findings if f not in copies]) == original


def test_a_packet_repeated_after_the_copy_window_is_a_retransmission(tmp_path):
    source = lab("clean-delivery")
    frame = next(n for n, sport, _dport, _data in payloads(Path(source)) if sport != 25)
    records = _records(Path(source))
    ts, buf = records[frame - 1]
    edited = _write(tmp_path / "resent.pcap", [*records[:frame], (ts + 0.2, buf), *records[frame:]])
    result = analyze([str(edited)])
    assert "capture-duplicates" not in {f.code for f in result.findings}
    assert sum(s.flow.endpoints[0].counts["retransmission"] for s in result.sessions) == 1

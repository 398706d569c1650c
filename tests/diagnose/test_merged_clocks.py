"""Two captures merged by time (mergecap: the client's host and the server's) whose clocks
differ by more than the connection's round trip: the server's SYN/ACK comes before the SYN,
replies before their commands, the data after the ACKs that acknowledge it (Wireshark flags
it spurious retransmissions). That is the clocks' doing, not packet loss: the session is
explained by capture-merged-clocks, and retransmissions says nothing of it."""

from __future__ import annotations

from pathlib import Path

import dpkt
import pytest

from pcapsmtp.analysis import analyze
from pcapsmtp.diagnose import WARNING
from pcapsmtp.diagnose.coverage import unexplained
from tests.capture_edits import _records, _write
from tests.diagnose.helpers import lab


def _merged(source: Path, target: Path, server_port: int, offset: float) -> Path:
    records = []
    for ts, buf in _records(source):
        tcp = dpkt.ethernet.Ethernet(buf).data.data
        from_server = isinstance(tcp, dpkt.tcp.TCP) and tcp.sport == server_port
        records.append((ts + offset if from_server else ts, buf))
    return _write(target, sorted(records, key=lambda r: r[0]))


def test_a_server_clock_300_ms_behind(tmp_path):
    path = _merged(Path(lab("clean-delivery")), tmp_path / "merged.pcap", 25, -0.3)
    result = analyze([str(path)])
    codes = {f.code: f.severity for f in result.findings}
    assert codes.get("capture-merged-clocks") == WARNING
    assert "retransmissions" not in codes
    assert unexplained(list(result.sessions), result.findings) == []


def test_clocks_in_step_say_nothing(tmp_path):
    path = _merged(Path(lab("clean-delivery")), tmp_path / "merged.pcap", 25, 0.0)
    codes = {f.code for f in analyze([str(path)]).findings}
    assert "capture-merged-clocks" not in codes


RCPT_553 = Path("/work/shared/captures/public/arkime-smtp-rcpt-553.pcap")


@pytest.mark.skipif(not RCPT_553.exists(), reason="public captures absent")
def test_no_black_hole_from_the_clocks_order(tmp_path):
    """arkime-smtp-rcpt-553 merged with the server side 300 ms early: the client's data
    comes after the server's ACKs of it, which read as large segments never acknowledged
    (mtu-blackhole ERROR) and replies before their commands (capture-loss)."""
    path = _merged(RCPT_553, tmp_path / "merged.pcap", 587, -0.3)
    codes = {f.code for f in analyze([str(path)]).findings}
    assert "capture-merged-clocks" in codes
    assert not codes & {"mtu-blackhole", "capture-loss"}

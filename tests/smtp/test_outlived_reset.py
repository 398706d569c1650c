"""A RST the connection outlived ended nothing: a box on the path forges a RST in the
server's name (TTL 250, its own IP ID) in the middle of a STARTTLS session, and the hosts go
on talking (the client's later data is acknowledged by the server). The session is still
'encrypted', not 'reset', and middlebox-reset says the RST was ignored (WARNING, not the
ERROR of a reset that cut a session). The lab's forged-rst-volley, whose RSTs did end the
connection, stays an ERROR (tests/e2e/test_truth.py)."""

from __future__ import annotations

from pathlib import Path

import dpkt

from pcapsmtp.analysis import analyze
from pcapsmtp.diagnose import WARNING
from pcapsmtp.smtp.model import Outcome
from tests.capture_edits import _records, _write, payloads
from tests.diagnose.helpers import lab


def _forged_rst_after(source: Path, target: Path, frame: int) -> Path:
    """A RST from the receiver of ``frame``'s segment, at the sequence number it expects
    next, inserted right after that frame."""
    records = _records(source)
    ts, buf = records[frame - 1]
    eth = dpkt.ethernet.Ethernet(buf)
    ip, tcp = eth.data, eth.data.data
    rst = dpkt.tcp.TCP(
        sport=tcp.dport, dport=tcp.sport, seq=tcp.ack, ack=0, flags=dpkt.tcp.TH_RST, win=0
    )
    forged_ip = dpkt.ip.IP(src=ip.dst, dst=ip.src, ttl=250, id=0x7198, p=6, data=rst)
    forged_ip.len = len(bytes(forged_ip))
    forged = dpkt.ethernet.Ethernet(src=eth.dst, dst=eth.src, type=eth.type, data=forged_ip)
    return _write(target, [*records[:frame], (ts + 1e-4, bytes(forged)), *records[frame:]])


def test_a_forged_rst_the_hosts_ignored_ends_nothing(tmp_path):
    source = Path(lab("starttls-25"))
    client_data = [n for n, sport, _dport, _data in payloads(source) if sport != 25]
    edited = _forged_rst_after(source, tmp_path / "ignored-rst.pcap", client_data[-3])
    result = analyze([str(edited)])
    [session] = list(result.sessions)
    assert session.outcome == Outcome.ENCRYPTED
    [forged] = [f for f in result.findings if f.code == "middlebox-reset"]
    assert forged.severity == WARNING
    assert "ignored" in forged.detail


def test_an_ignored_forged_rst_does_not_hide_the_servers_own(tmp_path):
    """server-killed-in-data: the server dies in DATA (FIN, then RSTs to the client's
    segments). A forged RST earlier, which the hosts outlived, is not 'the first RST'."""
    source = Path(lab("server-killed-in-data"))
    client_data = [n for n, sport, _dport, _data in payloads(source) if sport != 25]
    edited = _forged_rst_after(source, tmp_path / "early-rst.pcap", client_data[3])
    result = analyze([str(edited)])
    [session] = list(result.sessions)
    assert session.outcome == Outcome.RESET
    assert "reset" in {f.code for f in result.findings}

"""A forged RST far out of the window, which the hosts ignore (RFC 5961 3.2), moves
Wireshark's next expected sequence number of its sender up to the RST's, so that side's next
segments are flagged retransmissions though they carry new data (tshark flags frames 14, 16,
18 and 21 of this edit of clean-delivery). Our flags stay Wireshark's; the diagnosis must not
call them packet loss: middlebox-reset already says a box tried to cut the connection. A
segment really sent twice after such a RST is still a retransmission."""

from __future__ import annotations

from pathlib import Path

import dpkt
import pytest

from pcapsmtp.analysis import analyze
from pcapsmtp.diagnose.outlived import moved_by_reset
from pcapsmtp.smtp.model import Outcome
from pcapsmtp.tcp.model import Flag
from tests.capture_edits import _records, _write, payloads
from tests.diagnose.helpers import lab

SERVER_PORT = 25


def _forged_rst_ahead(source: Path, target: Path, frame: int, ahead: int) -> Path:
    """A RST from the receiver of ``frame``'s segment, ``ahead`` beyond the sequence number
    it sends next, right after that frame (TTL 250, its own IP ID)."""
    records = _records(source)
    ts, buf = records[frame - 1]
    eth = dpkt.ethernet.Ethernet(buf)
    ip, tcp = eth.data, eth.data.data
    rst = dpkt.tcp.TCP(
        sport=tcp.dport,
        dport=tcp.sport,
        seq=(tcp.ack + ahead) % 2**32,
        ack=0,
        flags=dpkt.tcp.TH_RST,
        win=0,
    )
    forged_ip = dpkt.ip.IP(src=ip.dst, dst=ip.src, ttl=250, id=0x3989, p=6, data=rst)
    forged_ip.len = len(bytes(forged_ip))
    forged = dpkt.ethernet.Ethernet(src=eth.dst, dst=eth.src, type=eth.type, data=forged_ip)
    return _write(target, [*records[:frame], (ts + 1e-4, bytes(forged)), *records[frame:]])


def _rst_out(tmp_path: Path) -> Path:
    source = Path(lab("clean-delivery"))
    server_data = [n for n, sport, _dport, _data in payloads(source) if sport == SERVER_PORT]
    # After the server's reply to MAIL: the forged RST comes "from the client".
    return _forged_rst_ahead(source, tmp_path / "rst-out.pcap", server_data[2], 10_000_000)


def test_new_data_below_an_ignored_rst_is_no_packet_loss(tmp_path):
    edited = _rst_out(tmp_path)
    result = analyze([str(edited)])
    [session] = list(result.sessions)
    client = session.flow.endpoints[session.flow.client]
    assert client.counts["retransmission"] >= 3  # Wireshark's flags, kept
    codes = {f.code: f.severity for f in result.findings}
    assert codes.get("middlebox-reset") == "warning"
    assert "retransmissions" not in codes


def test_a_segment_sent_twice_after_the_rst_stays_a_retransmission(tmp_path):
    edited = _rst_out(tmp_path)
    records = _records(edited)
    [session] = list(analyze([str(edited)]).sessions)
    flow = session.flow
    [reset] = [n for n in flow.notes if n.tcp_flags & dpkt.tcp.TH_RST]
    after = [
        n
        for n in flow.notes
        if n.frame > reset.frame and n.direction == reset.direction and n.length
    ]
    assert {n.frame for n in after} <= moved_by_reset(flow)
    # The first client data segment after the RST, sent again (a copy right after it).
    first = after[0].frame
    again = _write(
        tmp_path / "again.pcap",
        [*records[:first], (records[first][0], records[first - 1][1]), *records[first:]],
    )
    [session] = list(analyze([str(again)]).sessions)
    [repeat] = [n for n in session.flow.notes if n.frame == first + 1]
    assert repeat.analysis & Flag.ANY_RETRANSMISSION
    moved = moved_by_reset(session.flow)
    assert first in moved
    assert first + 1 not in moved


def _ethernet(source: Path, target: Path) -> Path:
    """A BSD loopback (DLT_NULL) capture re-wrapped in Ethernet, as the edits read it."""
    records = []
    with open(source, "rb") as handle:
        for ts, buf in dpkt.pcap.Reader(handle):
            ip = dpkt.ip.IP(bytes(buf[4:]))
            records.append((ts, bytes(dpkt.ethernet.Ethernet(type=0x0800, data=ip))))
    return _write(target, records)


PIPELINED = Path(
    "/work/shared/captures/public/suricata-smtp-pipelined-rset-data-replies_input.pcap"
)


@pytest.mark.skipif(not PIPELINED.exists(), reason="public captures absent")
def test_a_rst_in_the_name_of_a_side_that_went_on_sending_was_outlived(tmp_path):
    """The client's pipelined commands, then a forged RST 'from the server' far out of its
    window; the client sends nothing more but acknowledges the server's next replies: the
    connection outlived the RST (the mail is delivered), so the server's replies below it
    are not packet loss and the box only tried to cut."""
    source = _ethernet(PIPELINED, tmp_path / "pipelined.pcap")
    client_data = [n for n, sport, _dport, _data in payloads(source) if sport != SERVER_PORT]
    edited = _forged_rst_ahead(source, tmp_path / "rst.pcap", client_data[-1], 10_000_000)
    result = analyze([str(edited)])
    [session] = list(result.sessions)
    assert session.outcome == Outcome.DELIVERED
    codes = {f.code: f.severity for f in result.findings}
    assert codes.get("middlebox-reset") == "warning"
    assert "retransmissions" not in codes

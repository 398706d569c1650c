"""The two cases where `reset` now stays silent because another finding tells the story,
and proof that it still speaks otherwise."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import dpkt
import pytest

from pcapsmtp.analysis import analyze
from pcapsmtp.diagnose.evidence import closed_early
from pcapsmtp.diagnose.resets import counts_ip_ids, reset
from tests.captures import LAB
from tests.diagnose.helpers import findings, lab, session_of

SOCKS = "arkime-socks5-smtp-503.pcap"


def test_client_rst_right_after_a_refusal_is_not_a_reset(public_capture):
    """Exim answers AUTH with 503, the client hangs up with a RST (frame 20)."""
    path = public_capture(SOCKS)
    session = session_of(path, 1)
    assert session.last_reply.code == 503 and session.outcome == "rejected"
    assert list(reset(session, None)) == []
    assert findings(path, "auth-failed")


def test_the_same_rst_without_the_refusal_is_a_reset(public_capture):
    session = session_of(public_capture(SOCKS), 1)
    accepted = replace(session.last_reply, code=250, lines=["OK"])
    [finding] = reset(replace(session, last_reply=accepted, outcome="reset"), None)
    assert finding.code == "reset"
    assert "the client 10.0.0.2 reset the connection" in finding.summary
    assert finding.frames == [20]


def test_rst_after_a_failed_tls_handshake_is_not_a_reset(public_capture):
    session = session_of(public_capture("suricata-smtp-tls-protodetect_input.pcap"), 1)
    assert session.outcome == "tls-failed"
    assert list(reset(session, None)) == []
    [finding] = reset(replace(session, outcome="reset"), None)
    assert "during the TLS handshake" in finding.summary


def _with_volley(source: Path, target: Path, ttl: int | None = None, ip_ids=()) -> Path:
    """``source`` with its forged RST repeated after the server's last packets, as a box
    that drops a transfer sends one reset per segment it stops; ``ttl`` and ``ip_ids``
    rewrite the forged resets' TTL and IP IDs (checksums recomputed by dpkt)."""
    with source.open("rb") as f:
        reader = dpkt.pcap.Reader(f)
        records = list(reader)
        linktype = reader.datalink()
    resets = [i for i, (_ts, buf) in enumerate(records) if _is_rst(buf)]
    assert len(resets) == 1, "the lab capture holds one forged RST"
    _ts, forged = records[resets[0]]
    records.append((records[-1][0] + 0.0001, forged))
    with target.open("wb") as out:
        writer = dpkt.pcap.Writer(out, linktype=linktype)
        count = 0
        for stamp, buf in records:
            if _is_rst(buf):
                eth = dpkt.ethernet.Ethernet(buf)
                if ttl is not None:
                    eth.data.ttl = ttl
                if ip_ids:
                    eth.data.id = ip_ids[count]
                eth.data.sum = 0
                buf = bytes(eth)
                count += 1
            writer.writepkt(buf, ts=stamp)
    return target


def _is_rst(buf: bytes) -> bool:
    eth = dpkt.ethernet.Ethernet(buf)
    return isinstance(eth.data, dpkt.ip.IP) and bool(eth.data.data.flags & dpkt.tcp.TH_RST)


def test_two_forged_rsts_with_the_same_ttl_are_both_forged(tmp_path):
    """rst-in-data.pcap with the firewall's RST sent twice (TTL 64 both times, where the
    server's packets arrive with 62): before, each vouched for the other's TTL."""
    path = _with_volley(Path(lab("rst-in-data")), tmp_path / "volley.pcap")
    result = analyze([str(path)])
    forged = [f for f in result.findings if f.code == "middlebox-reset"]
    assert [f.severity for f in forged] == ["error"]
    assert forged[0].frames == [33, 37]
    assert "2 RSTs (frames 33 and 37)" in forged[0].summary
    assert "TTL 64 where its other packets have 62" in forged[0].summary
    assert not [f for f in result.findings if f.code == "reset"]


def test_forged_rsts_with_the_servers_ttl_betrayed_by_their_ip_id(tmp_path):
    """The same volley from a box that copies the server's TTL (62) but not its IP ID
    counter: the server's packets count up to 0x6021 before them, the resets carry others."""
    path = _with_volley(
        Path(lab("rst-in-data")), tmp_path / "ttl.pcap", ttl=62, ip_ids=(0x1D2C, 0x1D2C)
    )
    result = analyze([str(path)])
    session = result.sessions[0]
    server = session.flow.endpoints[session.flow.server]
    # Linux numbers a connection's packets with a counter (its SYN/ACK carries 0)
    assert counts_ip_ids(server) and server.ip_id_steps == server.ip_id_pairs - 1
    [forged] = [f for f in result.findings if f.code == "middlebox-reset"]
    assert forged.frames == [33, 37]
    assert "carry IP ID 0x1d2c, 0x1d2c where its packets count up from 0x6021" in forged.summary
    assert "TTL" not in forged.summary


def test_a_reset_with_ip_id_zero_is_not_called_forged(tmp_path):
    """Linux sends IP ID 0 on the RSTs for a socket that no longer exists: with the
    server's TTL and ID 0, nothing says the resets were forged, so they are the server's."""
    path = _with_volley(Path(lab("rst-in-data")), tmp_path / "own.pcap", ttl=62, ip_ids=(0, 0))
    result = analyze([str(path)])
    assert not [f for f in result.findings if f.code == "middlebox-reset"]
    [finding] = [f for f in result.findings if f.code == "reset"]
    assert finding.frames == [33] and finding.severity == "error"


def test_a_host_resetting_after_its_own_fin_is_not_forged(public_capture):
    """arkime-smtp-originating.pcap: the client (TTL 52, IP IDs counting 0x7fac, 0x7fad,
    ... 0x7fb1 on its FIN) answers the server's late segment with a RST numbered 0xe443 from
    another counter, as a kernel does for a socket that is gone; it sends nothing after."""
    path = public_capture("arkime-smtp-originating.pcap")
    session = session_of(path, 1)
    client = session.flow.endpoints[session.flow.client]
    [rst] = [n for n in session.flow.notes if n.tcp_flags & dpkt.tcp.TH_RST]
    assert counts_ip_ids(client) and (rst.frame, rst.ip_id, rst.prev_ip_id) == (24, 0xE443, 0x7FB1)
    assert findings(path, "middlebox-reset") == [] and findings(path, "reset") == []


KILLED = "server-killed-in-data"


@pytest.mark.parametrize(
    ("name", "frames"),
    [(f"{KILLED}.pcap", [45, 52, 60]), (f"{KILLED}.server.pcap", [50, 52, 55])],
)
def test_a_server_killed_in_data_closed_before_accepting_the_message(name, frames):
    """The lab kills Postfix's smtpd during DATA: its kernel sends a FIN (frame 52), the
    client goes on sending and each segment draws a RST with the server's own TTL. Seen at
    the client and at the server; the frames are the last data the server acknowledged, its
    FIN and the first RST."""
    path = lab(name)
    truth = json.loads((LAB / f"{KILLED}.truth.json").read_text())
    session = session_of(path, 1)
    assert session.outcome == truth["sessions"][0]["outcome"] == "reset"
    [finding] = findings(path, "reset")
    assert finding.severity == truth["expected_severity"]["reset"] == "error"
    assert finding.frames == frames
    assert "the server 10.77.2.2 closed the connection during the message transfer" in (
        finding.summary
    )
    assert "reset the 6 segment(s) the client sent after it" in finding.summary
    assert "closed before accepting the message" in finding.summary
    assert findings(path, "middlebox-reset") == []
    assert findings(path, "incomplete-session") == []


def test_a_server_that_closes_after_a_refusal_did_not_close_early(public_capture):
    """Closing after a 4xx/5xx or 221 is how a session ends, not a crash."""
    for name in ("suricata-smtp-quit_input.pcap", "arkime-smtp-data-521.pcap"):
        session = session_of(public_capture(name), 1)
        assert closed_early(session, session.flow.server) is None


def test_forged_reset_says_where_the_box_sits_in_routers():
    """TTL 64 against the server's 62: the lab's router made it (truth: iptables REJECT on
    the router), no router between it and the client-side capture."""
    [finding] = findings(lab("rst-in-data"), "middlebox-reset")
    step = finding.next_steps[-1]
    assert "crossed 2 routers to reach the capture point (TTL 62)" in step
    assert "no router between it and the capture point" in step
    assert "hop(s)" not in step

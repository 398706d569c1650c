"""The issue-17 fault captures hold the fault their truth names, as tshark 4.0 reads them.

server-killed-in-data (smtpd killed during DATA), forged-rst-volley (a firewall forging one
RST per dropped segment), zero-window-brief (a receive window closed for a moment). Facts
about the packets only; no pcapsmtp code is involved.
"""

from __future__ import annotations

import pytest

from tests.captures import LAB

from .tsharkframes import count, tcp_frames, truth_or_skip


@pytest.mark.oracle
def test_server_killed_in_data_fin_then_genuine_resets():
    name = "server-killed-in-data"
    t = truth_or_skip(name)
    frames = tcp_frames(f"{name}.pcap")
    server = [f for f in frames if f.side == "server"]
    fin = next(f for f in server if f.fin)
    resets = [f for f in server if f.rst]
    assert len(resets) >= 2, "one RST per segment that reached the dead socket"
    assert all(r.number > fin.number for r in resets)
    # the client was still sending the message after the server's FIN
    assert any(f.side == "client" and f.tcp_len and f.number > fin.number for f in frames)
    # genuine: the RSTs carry the TTL of every other packet of the server
    assert {r.ttl for r in resets} == {f.ttl for f in server if not f.rst}
    # the server capture shows the same FIN and RSTs leaving the server itself
    at_server = [f for f in tcp_frames(t["other_files"]["server"]) if f.side == "server"]
    assert sum(f.rst for f in at_server) == len(resets)
    session = t["sessions"][0]
    assert session["outcome"] == "reset" and session["reset_by"] == "server"
    tx = session["transactions"][0]
    assert tx["code"] is None and tx["size"] < tx["message_size"]
    assert [s["command"] for s in session["dialogue"]][-1] == "DATA"
    assert "killed by signal 9" in (LAB / t["maillog"]).read_text()
    assert t["expected_severity"] == {"reset": "error"}


@pytest.mark.oracle
def test_forged_rst_volley_shares_one_ttl_unlike_the_server():
    name = "forged-rst-volley"
    t = truth_or_skip(name)
    server = [f for f in tcp_frames(f"{name}.pcap") if f.side == "server"]
    forged = [f for f in server if f.rst]
    assert len(forged) >= 2
    assert len({f.ttl for f in forged}) == 1, "the volley has one TTL"
    genuine = {f.ttl for f in server if not f.rst}
    assert forged[0].ttl not in genuine
    # the server itself never sent a RST
    at_server = tcp_frames(t["other_files"]["server"])
    assert not any(f.rst for f in at_server if f.side == "server")
    assert t["sessions"][0]["reset_by"] == "middlebox"
    # "reset" is left open: the client's own RST (answering the server's late ACK) is real
    assert "middlebox-reset" in t["expected_findings"]


@pytest.mark.oracle
def test_zero_window_brief_is_brief_and_harmless():
    name = "zero-window-brief"
    t = truth_or_skip(name)
    frames = tcp_frames(f"{name}.pcap")
    assert count(f"{name}.pcap", "tcp.analysis.zero_window") >= 1
    assert count(f"{name}.pcap", "tcp.analysis.zero_window_probe") == 0
    assert count(f"{name}.pcap", "tcp.analysis.retransmission") == 0
    closed = [f for f in frames if f.side == "server" and f.window == 0 and not f.syn]
    reopened = next(f for f in frames if f.side == "server" and f.number > closed[-1].number
                    and f.window > 0)  # fmt: skip
    assert reopened.time - closed[0].time < 0.2, "shorter than the client's persist timer"
    assert t["sessions"][0]["outcome"] == "delivered"
    assert t["expected_severity"] == {"zero-window": "info"}

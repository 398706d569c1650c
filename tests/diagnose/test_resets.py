"""The two cases where `reset` now stays silent because another finding tells the story,
and proof that it still speaks otherwise."""

from __future__ import annotations

from dataclasses import replace

from pcapsmtp.diagnose.resets import reset
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


def test_forged_reset_says_where_the_box_sits_in_routers():
    """TTL 64 against the server's 62: the lab's router made it (truth: iptables REJECT on
    the router), no router between it and the client-side capture."""
    [finding] = findings(lab("rst-in-data"), "middlebox-reset")
    step = finding.next_steps[-1]
    assert "crossed 2 routers to reach the capture point (TTL 62)" in step
    assert "no router between it and the capture point" in step
    assert "hop(s)" not in step

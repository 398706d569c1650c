"""tls-handshake-failed: who sent which alert, what was offered, plain SMTP where TLS was
expected; and no reset finding for the close that follows."""

from __future__ import annotations

from pcapsmtp.diagnose import ERROR
from tests.diagnose.helpers import findings, lab, session_of, truth


def test_protocol_version_alert_from_the_server():
    path = lab("tls-version-mismatch")
    [finding] = findings(path, "tls-handshake-failed")
    facts = session_of(path, 1).tls.facts
    [alert] = facts.alerts
    assert "PROTOCOL_VERSION" in truth("tls-version-mismatch")["sessions"][0]["tls_error"]
    assert finding.severity == ERROR
    assert "the server 10.77.2.2 sent a fatal protocol_version alert" in finding.summary
    assert "the client offered only TLSv1.3" in finding.summary
    assert f"In frame {alert.frame} the server" in finding.detail
    assert "it supports none of the TLS versions offered" in finding.detail
    assert "No ServerHello came back" in finding.detail
    assert {facts.client_hello_frame, alert.frame} <= set(finding.frames)
    assert any("-tls1_2" in step and "-starttls smtp" in step for step in finding.next_steps)


def test_tls_failure_is_not_also_a_reset_or_a_timeout():
    path = lab("tls-version-mismatch")
    for code in ("reset", "client-timeout", "server-timeout", "smtp-inspection"):
        assert not findings(path, code), code


def test_clienthello_on_465_answered_by_plain_smtp(public_capture):
    """The client starts TLS at once; Exim on 465 speaks plain SMTP and greets in clear."""
    [finding] = findings(public_capture("ndpi-smtps.pcapng"), "tls-handshake-failed")
    assert "started TLS at once on port 465" in finding.summary
    assert "'220 gator4223.hostgator.com ESMTP Exim 4.93" in finding.summary
    assert "RFC 8314" in finding.detail
    assert "tls_on_connect_ports" in finding.next_steps[0]
    assert finding.frames == [3, 4]


def test_rst_after_a_failed_handshake_is_not_a_reset_finding(public_capture):
    path = public_capture("suricata-smtp-tls-protodetect_input.pcap")
    [finding] = findings(path, "tls-handshake-failed")
    assert "'220 poczta.home-whs.pl ESMTP'" in finding.summary
    assert not findings(path, "reset")


def test_successful_tls_is_no_finding():
    for name in ("starttls-25", "starttls-auth-587", "smtps-465"):
        assert not findings(lab(name), "tls-handshake-failed"), name

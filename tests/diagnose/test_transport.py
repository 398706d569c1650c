"""connect-refused says what the server did: a reset to the SYN, or a connection accepted
(SYN/ACK) and closed before any greeting, which is another fault with other causes."""

from __future__ import annotations

from tests.diagnose.helpers import findings, lab


def test_reset_to_the_syn_is_a_refusal():
    refused = findings(lab("connect-refused"), "connect-refused")
    assert len(refused) == 3
    for finding in refused:
        assert "refused the connection to port 25 (RST to the SYN)" in finding.summary
        assert "answered with a reset" in finding.detail


def test_synack_then_fin_is_not_called_a_reset_to_the_syn(public_capture):
    """The server answers SYN/ACK (frame 2), closes with a FIN (frame 4) before any 220."""
    [finding] = findings(public_capture("suricata-smtp-quit_input.pcap"), "connect-refused")
    assert "RST to the SYN" not in finding.summary
    assert "accepted the TCP connection to port 25" in finding.summary
    assert "(a FIN) without a greeting" in finding.summary
    assert "SYN/ACK in frame 2" in finding.detail and "FIN in frame 4" in finding.detail
    assert finding.frames == [1, 2, 4]
    assert not any("ss -ltn" in step for step in finding.next_steps)


def test_counts_agree_with_their_nouns():
    [finding] = findings(lab("connect-timeout"), "connect-failed")
    assert "8 SYNs over" in finding.summary and "(s)" not in finding.summary
    assert "8 connection requests between" in finding.detail

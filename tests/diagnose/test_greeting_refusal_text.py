"""The connect-refused detail of a server that closed before its greeting reads as a
sentence: 'FIN in frame 4, 103 ms later, before sending any 220 greeting' (it had ',,')."""

from __future__ import annotations

from tests.diagnose.helpers import findings


def test_closed_without_greeting_detail_has_no_doubled_comma(public_capture):
    [finding] = findings(public_capture("suricata-smtp-quit_input.pcap"), "connect-refused")
    assert ",," not in finding.detail
    assert "FIN in frame 4, 103 ms later, before sending any 220 greeting" in finding.detail

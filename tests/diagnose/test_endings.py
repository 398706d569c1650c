"""How sessions end when no reply, reset or timeout says why, and zero windows by what they
did: each on the real capture that shows it."""

from __future__ import annotations

from tests.diagnose.helpers import findings, lab, session_of

ERRORS = "suricata-smtp-errors_smtperr.pcap"


def test_a_server_that_closes_after_the_message_without_a_reply(public_capture):
    """Yahoo sends '4.7.0 [IPTS04] ... deferred' without its reply code, and a FIN in the
    same segment (frame 122), while the client waits for the reply to its message."""
    path = public_capture(ERRORS)
    [finding] = findings(path, "server-closed")
    assert finding.session == 2 and finding.severity == "error"
    assert finding.frames == [122]
    assert "closed before accepting the message" in finding.summary
    assert "4.7.0 [IPTS04]" in finding.detail
    assert "the mail from <Ina32@4447.com> was not accepted" in finding.detail


def test_a_client_that_leaves_in_the_middle_of_auth(public_capture):
    """The client answers the 334 for the username, gets the password prompt and leaves
    with a FIN 8 s later: no mail was under way, so info."""
    path = public_capture("suricata-smtp-long-command_input.pcap")
    [finding] = findings(path, "client-closed")
    assert finding.severity == "info"
    assert finding.frames[-1] == 23
    assert "without QUIT (a FIN, frame 23): no mail attempted" in finding.summary
    assert "334 UGFzc3dvcmQ6" in finding.detail


def test_a_client_that_leaves_after_rset(public_capture):
    path = public_capture("suricata-smtp-no-helo-rset_input.pcap")
    [finding] = findings(path, "client-closed")
    assert finding.severity == "info" and "during RSET" in finding.summary


def test_a_clean_quit_needs_no_explanation(public_capture):
    """MAIL accepted, then QUIT answered 221: the client chose not to send; no finding."""
    path = public_capture(
        "suricata-ruletype-firewall-131-smtp-quit-after-mail-from_smtp-quit-after-mail.pcap"
    )
    assert findings(path) == []


def test_starttls_without_keys_says_what_cannot_be_known():
    path = lab("starttls-25")
    [finding] = findings(path, "encrypted-dialogue")
    assert finding.severity == "info"
    assert "after STARTTLS (frame 11)" in finding.summary
    assert "TLSv1.2" in finding.detail


def test_out_of_sequence_commands_do_not_decide_the_outcome(public_capture):
    """RCPT and DATA before MAIL are answered 503; the real transaction after them delivers."""
    path = public_capture(
        "suricata-ruletype-firewall-133-smtp-out-of-order-commands_smtp-out-of-order.pcap"
    )
    assert session_of(path, 1).outcome == "delivered"


def test_zero_window_severity_follows_the_stall():
    """15 s closed is a stall (warning); 14 ms closed cost nothing (info)."""
    [stall] = findings(lab("zero-window"), "zero-window")
    [blip] = findings(lab("zero-window-brief"), "zero-window")
    assert stall.severity == "warning" and "closed for 14.9 s at most" in stall.summary
    assert blip.severity == "info" and "closed for 14 ms" in blip.summary
    assert session_of(lab("zero-window-brief"), 1).flow.endpoints[1].longest_zero_window_ns < 1e9

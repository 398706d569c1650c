"""hard-bounce and soft-bounce on real refusals: which command was refused, the codes, what
they mean; and no finding twice for one refusal."""

from __future__ import annotations

from pcapsmtp.diagnose import ERROR, WARNING
from tests.diagnose.helpers import findings, lab, session_of, truth

DATA_REJECTED = "suricata-smtp-data-rejected_10.7.29.101_49898-178.63.41.150_25.pcap"


def test_unknown_recipient_is_a_hard_bounce_naming_address_code_and_meaning():
    path = lab("unknown-user")
    [finding] = findings(path, "hard-bounce")
    rcpt = next(c for c in session_of(path, 1).commands if c.verb == "RCPT")
    expected = truth("unknown-user")["sessions"][0]["dialogue"][3]
    assert expected["command"] == "RCPT" and expected["reply"] == 550
    assert finding.severity == ERROR and finding.session == 1
    assert "refused the recipient <nobody@server.lab.test>: 550 5.1.1" in finding.summary
    assert "the recipient address does not exist on this server" in finding.summary
    assert "enhanced status code is 5.1.1" in finding.detail
    assert finding.frames == [rcpt.frame, rcpt.reply.frame]
    assert "X.1.x" in finding.next_steps[0]


def test_unknown_user_is_not_also_a_soft_bounce_or_a_size_problem():
    path = lab("unknown-user")
    assert not findings(path, "soft-bounce") and not findings(path, "size-exceeded")


def test_rcpt_553_not_logged_in(public_capture):
    """AOL's submission server refuses a sender that did not authenticate, at RCPT time."""
    [finding] = findings(public_capture("arkime-smtp-rcpt-553.pcap"), "hard-bounce")
    assert "refused the recipient <123456@example>: 553 5.7.1" in finding.summary
    assert "authenticate (AUTH)" in finding.summary
    assert finding.frames == [12, 13]
    assert "X.7.x" in finding.next_steps[0]


def test_message_refused_after_the_end_of_data(public_capture):
    [finding] = findings(public_capture("arkime-smtp-data-521.pcap"), "hard-bounce")
    assert "refused the message (2954 bytes, subject 'Urgent Trip.') after receiving it" in (
        finding.summary
    )
    assert "521 5.2.1 MUST COMPLETE IMAGE PUZZLE" in finding.summary
    assert "CAPTCHA" in finding.summary
    assert finding.frames == [31, 33]


def test_refused_sender_then_virus_two_bounces_and_no_echo_of_the_pipelined_503s(
    public_capture,
):
    """MAIL refused (553 5.1.8), RCPT and DATA pipelined behind it answered 503 (which only
    repeat the refusal), RSET, a new transaction, its message refused as a virus (554)."""
    refused_sender, virus = findings(public_capture(DATA_REJECTED), "hard-bounce")
    assert "refused the sender <splotchiestzg0@gezydb01.apis.dhl.com>: 553 5.1.8" in (
        refused_sender.summary
    )
    assert "sender's domain does not resolve" in refused_sender.summary
    assert refused_sender.frames == [8, 10]
    assert "refused the message (114252 bytes" in virus.summary
    assert "554 5.7.1 Message contains virus" in virus.summary
    assert "content scanner" in virus.summary
    assert virus.frames == [146, 195]
    assert "503" not in refused_sender.summary + virus.summary


def test_partial_recipient_refusal_is_a_warning_when_the_others_got_the_mail():
    """Built from the unknown-user session: the same refusal, plus an accepted recipient."""
    from dataclasses import replace

    from pcapsmtp.diagnose.replies import hard_bounce

    session = session_of(lab("unknown-user"), 1)
    transaction = session.transactions[0]
    accepted = replace(transaction.rcpt_to[0], address="bob@server.lab.test", code=250)
    partial = replace(transaction, rcpt_to=[accepted, transaction.rcpt_to[0]])
    partial.outcome = "delivered"
    [finding] = hard_bounce(replace(session, transactions=[partial]), None)
    assert finding.severity == WARNING
    assert "refused 1 of 2 recipients (<nobody@server.lab.test>): 550 5.1.1" in finding.summary
    assert "the message went to the other recipients" in finding.detail


def test_greylisting_is_a_soft_bounce_with_the_delay_and_the_retry():
    path = lab("greylisting")
    [finding] = findings(path, "soft-bounce")
    assert truth("greylisting")["sessions"][0]["transactions"][0]["code"] == 451
    assert finding.severity == WARNING and finding.session == 1
    assert "deferred the recipient <bob@server.lab.test>: 451 4.7.1" in finding.summary
    assert "(greylisting)" in finding.summary
    assert "retry in 5 seconds" in finding.detail
    assert "the retry in session 2 was delivered" in finding.summary
    retry = session_of(path, 2)
    assert f"in session 2 (frame {retry.transactions[0].first_frame})" in finding.detail
    assert not findings(path, "hard-bounce")


def test_retry_storm_421_greetings_are_soft_bounces_one_per_session():
    path = lab("retry-storm")
    deferred = findings(path, "soft-bounce")
    sessions = truth("retry-storm")["sessions"]
    assert len(deferred) == len(sessions) == 240
    first = min(deferred, key=lambda f: f.session)
    assert "deferred the connection in its greeting: 421 4.3.2" in first.summary
    assert "not accepting messages now" in first.detail
    assert all(f.frames and 0 not in f.frames for f in deferred)


def test_a_client_host_rejected_421_is_a_policy_refusal_not_nothing_to_do():
    """'Client host rejected' is an access restriction of the server: the sender's retries
    meet it again, so "nothing to do, the sender retries" is wrong advice (issue 18)."""
    path = lab("retry-storm")
    deferred = findings(path, "soft-bounce")
    assert all("Client host rejected" in f.summary for f in deferred)
    first = min(deferred, key=lambda f: f.session)
    assert "policy refusal of this client: retrying will not help" in first.summary
    steps = " ".join(first.next_steps)
    assert "Nothing to do" not in steps and "the sender retries" not in steps
    assert "reverse DNS" in steps and "host 10.77.1.2" in steps
    [storm] = findings(path, "retry-storm")
    assert any("refuses 10.77.1.2 by policy" in s for s in storm.next_steps)


def test_greylisting_and_other_deferrals_are_no_policy_refusal(public_capture):
    [grey] = findings(lab("greylisting"), "soft-bounce")
    assert "greylisting" in grey.summary and "policy" not in grey.summary
    [domain] = findings(public_capture("suricata-bug-5867-fp-drop-01_input.pcap"), "soft-bounce")
    assert "policy" not in domain.summary


def test_a_450_to_rcpt_about_the_sender_domain(public_capture):
    [finding] = findings(public_capture("suricata-bug-5867-fp-drop-01_input.pcap"), "soft-bounce")
    assert "450 4.1.8" in finding.summary
    assert "sender's domain does not resolve" in finding.summary
    assert "No retry of this envelope appears later in the capture" in finding.detail


def test_idle_timeout_421_is_not_a_soft_bounce(public_capture):
    """The 421 4.4.2 after the server's idle timer is server-timeout's, not a deferral."""
    path = public_capture("arkime-smtp-data-250.pcap")
    assert not findings(path, "soft-bounce")
    assert findings(path, "server-timeout")


def test_hard_bounce_frames_are_the_command_and_its_reply_in_the_dialogue():
    session = session_of(lab("unknown-user"), 1)
    [finding] = findings(lab("unknown-user"), "hard-bounce")
    dialogue = {entry.frame for entry in session.dialogue}
    assert set(finding.frames) <= dialogue
    assert finding.filter == f"frame.number in {{{', '.join(map(str, sorted(finding.frames)))}}}"


def test_yahoo_session_of_suricata_bug_1045_is_a_plain_delivery(public_capture):
    """Pipelined MAIL/RCPT/DATA to Yahoo, all accepted ("250 ok dirdel"): no 4xx in it, so
    neither bounce, whatever its name suggests."""
    path = public_capture("suricata-bug-1045_smtpsuricataflowbitsFN.pcap")
    assert session_of(path, 1).outcome == "delivered"
    assert not findings(path, "soft-bounce") and not findings(path, "hard-bounce")


NESTED_MAIL = "suricata-ruletype-firewall-132-smtp-nested-mail-from_smtp-nested-mail.pcap"


def test_a_5_5_x_reply_is_a_protocol_error_not_a_hard_bounce(public_capture):
    """503 5.5.1 "nested MAIL command": RFC 3463 X.5.x is a protocol status, a fault of the
    client's dialogue, not a refused sender or mailbox (issue 18)."""
    path = public_capture(NESTED_MAIL)
    assert not findings(path, "hard-bounce")
    [finding] = findings(path, "protocol-error")
    assert "503 5.5.1 Error: nested MAIL command" in finding.summary
    assert "protocol error of the client, not a refusal of the mail" in finding.summary
    assert finding.severity == ERROR
    assert "not a bounce about an address" in finding.detail


def test_bdat_syntax_errors_and_bare_503s_are_protocol_errors(public_capture):
    bdat = findings(public_capture("zeek-smtp-bdat-cmd-invalid.pcapng"), "protocol-error")
    assert len(bdat) == 3 and all("521 5.5.4" in f.summary for f in bdat)
    bare = public_capture("zeek-smtp-mail-transactions-invalid.pcap")
    assert not findings(bare, "hard-bounce")
    assert {f.summary.split(":")[1].strip()[:3] for f in findings(bare, "protocol-error")} == {
        "503"
    }


def test_address_refusals_stay_hard_bounces():
    [finding] = findings(lab("unknown-user"), "hard-bounce")
    assert "550 5.1.1" in finding.summary
    assert not findings(lab("unknown-user"), "protocol-error")

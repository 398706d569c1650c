"""Branches no capture shows, each built from a real lab session with one fact changed
(dataclasses.replace): the rule's decision must follow that fact alone."""

from __future__ import annotations

from dataclasses import replace

from pcapsmtp.diagnose import ERROR, INFO, WARNING
from pcapsmtp.diagnose.auth import auth_failed
from pcapsmtp.diagnose.replies import soft_bounce
from pcapsmtp.diagnose.size import size_exceeded
from pcapsmtp.diagnose.timing import client_timeout, slow_server
from pcapsmtp.smtp.model import AuthAttempt
from tests.diagnose.helpers import lab, session_of


def test_auth_failure_followed_by_a_successful_auth_is_info():
    session = session_of(lab("auth-plain-clear"), 3)
    later = AuthAttempt("LOGIN", session.auth[0].frame + 1, code=235)
    [finding] = auth_failed(replace(session, auth=[*session.auth, later]), None)
    assert finding.severity == INFO
    assert "A later AUTH in the same session succeeded" in finding.detail


def test_rate_limiting_is_named():
    session = session_of(lab("greylisting"), 1)
    transaction = session.transactions[0]
    recipient = transaction.rcpt_to[0]
    throttled = replace(
        recipient.reply, code=421, lines=["4.7.0 Too many connections from your IP, slow down"]
    )
    changed = replace(
        transaction,
        rcpt_to=[replace(recipient, code=421, reply=throttled)],
        final=throttled,
    )
    [finding] = soft_bounce([replace(session, transactions=[changed])], None)
    assert finding.severity == WARNING
    assert "(rate limiting)" in finding.summary
    assert "throttles this sender" in finding.detail


def test_message_over_the_announced_limit_that_ends_in_a_reset_is_size_exceeded():
    """No size reply, but the declared SIZE was over the EHLO limit and the session died."""
    session = session_of(lab("clean-delivery"), 1)
    limit = session.extensions["size"]
    transaction = session.transactions[0]
    too_big = replace(
        transaction,
        mail_params={"SIZE": str(limit + 1)},
        final=None,
        outcome="reset",
    )
    [finding] = size_exceeded(replace(session, transactions=[too_big]), None)
    assert finding.severity == ERROR
    assert f"above the {limit}-byte limit it announced in EHLO" in finding.summary
    assert "the session ended without a reply (reset)" in finding.summary
    # the same message within the limit: nothing to say
    fits = replace(too_big, mail_params={"SIZE": str(limit)}, size=100)
    assert list(size_exceeded(replace(session, transactions=[fits]), None)) == []


def test_a_slow_reply_to_a_command_besides_a_fast_greeting():
    """RCPT answered 6 s after it was sent (a recipient verification that hangs)."""
    session = session_of(lab("clean-delivery"), 1)
    rcpt = next(c for c in session.commands if c.verb == "RCPT")
    late = replace(rcpt, reply=replace(rcpt.reply, time_ns=rcpt.time_ns + 6_000_000_000))
    commands = [late if c is rcpt else c for c in session.commands]
    [finding] = slow_server(replace(session, commands=commands), None)
    assert "took 6.0 s to answer RCPT" in finding.summary
    assert "tarpitting" not in finding.summary
    assert "5 min (RFC 5321 4.5.3.2.3)" in finding.detail


def test_no_client_timeout_when_the_client_closed_at_once():
    """The end of data unanswered, but the client left 1 s after sending it: no wait ran out."""
    session = session_of(lab("no-eod-reply"), 1)
    pending = next(c for c in session.commands if c.reply is None)
    closed = next(n for n in session.flow.notes if n.frame == session.client.closed_frame)
    hasty = replace(pending, time_ns=closed.time_ns - 1_000_000_000)
    commands = [hasty if c is pending else c for c in session.commands]
    assert list(client_timeout(replace(session, commands=commands), None)) == []


def test_client_gives_up_on_a_greeting_that_never_comes():
    session = session_of(lab("no-eod-reply"), 1)
    [finding] = client_timeout(replace(session, greeting=None, commands=[]), None)
    assert "the client gave up waiting for 10.77.2.2 to send its greeting" in finding.summary
    assert "RFC 5321 allows 5 min" in finding.summary
    assert "4.5.3.2.1" in finding.detail


def test_a_reply_that_comes_after_the_client_left_still_counts_as_a_timeout():
    session = session_of(lab("no-eod-reply"), 1)
    pending = next(c for c in session.commands if c.reply is None)
    closed = next(n for n in session.flow.notes if n.frame == session.client.closed_frame)
    data = next(c for c in session.commands if c.verb == "DATA")
    late = replace(
        data.reply, code=250, lines=["2.0.0 Ok: queued"], time_ns=closed.time_ns + 2 * 10**9
    )
    answered = replace(pending, reply=late)
    commands = [answered if c is pending else c for c in session.commands]
    [finding] = client_timeout(replace(session, commands=commands), None)
    assert "The reply (250 2.0.0 Ok: queued) came 2.0 s after the client had left" in (
        finding.detail
    )

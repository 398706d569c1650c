"""size-exceeded: the announced limit, the declared and actual sizes, base64's growth; and a
size refusal is not also a hard bounce."""

from __future__ import annotations

from pcapsmtp.diagnose import ERROR
from tests.diagnose.helpers import findings, lab, number, session_of, truth


def test_declared_size_refused_at_mail_from():
    path = lab("size-exceeded")
    [finding] = findings(path, "size-exceeded", session=1)
    session = session_of(path, 1)
    mail = next(c for c in session.commands if c.verb == "MAIL")
    assert truth("size-exceeded")["sessions"][0]["transactions"][0]["code"] == 552
    assert finding.severity == ERROR
    assert number(r"SIZE=(\d+) declared", finding.summary) == 50000
    assert number(r"above the (\d+)-byte limit it announced in EHLO", finding.summary) == 20000
    assert "552 5.3.4" in finding.summary
    assert "No byte of the message was sent" in finding.detail
    assert {session.ehlo.frame, mail.frame, mail.reply.frame} <= set(finding.frames)


def test_message_refused_after_data_with_base64_growth():
    path = lab("size-exceeded")
    [finding] = findings(path, "size-exceeded", session=2)
    sent = truth("size-exceeded")["sessions"][1]["transactions"][0]["size"]
    attachment = session_of(path, 2).transactions[0].message.attachments[0]
    assert number(r"for its size: (\d+) bytes", finding.summary) == sent == 41734
    assert number(r"against the (\d+)-byte limit", finding.summary) == 20000
    assert "552 5.3.4 Error: message file too big" in finding.summary
    assert f"hold {attachment.size} bytes" in finding.detail
    assert f"into {attachment.encoded_size} on the wire" in finding.detail
    assert (attachment.size, attachment.encoded_size) == (30000, 41054)
    assert "x1.37" in finding.detail
    # what would fit: the room left by the rest of the message, shrunk by base64's growth
    fits = number(r"could hold about (\d+) bytes", finding.detail)
    assert 13000 < fits < 15000


def test_size_refusals_are_not_hard_bounces():
    assert not findings(lab("size-exceeded"), "hard-bounce")
    assert not findings(lab("size-exceeded"), "soft-bounce")


def test_no_size_finding_where_mail_fits():
    for name in ("clean-delivery", "mtu-healthy", "loss"):
        assert not findings(lab(name), "size-exceeded"), name

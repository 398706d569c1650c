"""``diff GOOD BAD`` on the lab's working / failing pairs: which sessions are picked, where
the failing one departs, which findings only it has, which parameters differ."""

from __future__ import annotations

import pytest

from pcapsmtp.diff import DiffError, compare_captures
from pcapsmtp.diff.model import AlignedStep, Diff
from tests.captures import LAB


def lab(name: str) -> str:
    path = LAB / f"{name}.pcap"
    if not path.is_file():
        pytest.skip(f"lab capture {name} absent")
    return str(path)


def param(diff: Diff, name: str):
    return next(p for p in diff.parameters if p.name == name)


def keys(step: AlignedStep) -> tuple[str | None, str | None]:
    return (step.a.key if step.a else None, step.b.key if step.b else None)


def test_mtu_blackhole_against_its_working_twin():
    diff = compare_captures(lab("mtu-healthy"), lab("mtu-blackhole"))
    # The failing session is the one with the error finding; its twin carries the big mail.
    assert diff.b.session.id == 2 and diff.a.session.id == 2
    assert "mtu-blackhole" in [f.code for f in diff.only_in_b]
    acked = param(diff, "max_acked_segment")
    assert acked.differs
    assert acked.a["client"] == 1448 and acked.b["client"] < 1448
    first = diff.first_divergence
    assert first is not None and keys(first) == ("message", "message")
    assert first.divergence.major and first.divergence.kind == "incomplete"
    assert first.b.tcp.get("retransmissions", 0) > 0
    assert "the message transfer" in diff.verdict and "mtu-blackhole" in diff.verdict


def test_steps_cover_both_dialogues_in_order():
    diff = compare_captures(lab("mtu-healthy"), lab("mtu-blackhole"))
    assert keys(diff.steps[0]) == ("greeting", "greeting")
    assert keys(diff.steps[-1]) == ("end", "end")
    for side in ("a", "b"):
        frames = [getattr(s, side).frame for s in diff.steps if getattr(s, side)]
        assert frames == sorted(frames)
    # The missing QUIT is tolerated; the reply nobody asked for (421 on timeout) is not.
    quit_step = next(s for s in diff.steps if keys(s) == ("QUIT", None))
    assert not quit_step.divergence.major
    unsolicited = next(s for s in diff.steps if keys(s) == (None, "unsolicited"))
    assert unsolicited.divergence.major and unsolicited.b.reply.code == 421


def test_greylisting_two_sessions_of_one_capture():
    """The same file twice: the deferred session against the delivered one."""
    diff = compare_captures(lab("greylisting"), lab("greylisting"))
    assert (diff.a.session.id, diff.b.session.id) == (2, 1)
    first = diff.first_divergence
    assert keys(first) == ("RCPT", "RCPT")
    assert first.a.reply.code == 250 and first.b.reply.code == 451
    assert first.divergence.kind == "reply" and first.divergence.major


def test_unknown_user_departs_at_rcpt():
    diff = compare_captures(lab("clean-delivery"), lab("unknown-user"))
    first = diff.first_divergence
    assert keys(first) == ("RCPT", "RCPT")
    assert "550 5.1.1" in first.divergence.detail
    # The recipients differ, yet the RCPT steps pair: same verb, other argument.
    assert first.a.argument != first.b.argument


def test_smtp_inspection_masks_banner_and_keywords():
    diff = compare_captures(lab("clean-delivery"), lab("smtp-inspection"))
    kinds = {s.divergence.kind for s in diff.steps if s.divergence}
    assert {"banner", "extensions"} <= kinds
    ehlo = next(s for s in diff.steps if keys(s) == ("EHLO", "EHLO"))
    assert "STARTTLS" in ehlo.divergence.detail and "XXXXXXXA" in ehlo.divergence.detail
    extensions = param(diff, "extensions")
    assert extensions.differs and "STARTTLS" in extensions.a and "STARTTLS" not in extensions.b
    assert not any(s.divergence and s.divergence.major for s in diff.steps)


def test_extra_starttls_is_tolerated_and_encrypted_steps_are_not_missing():
    diff = compare_captures(lab("clean-delivery"), lab("starttls-25"))
    extra = [s for s in diff.steps if keys(s) in ((None, "STARTTLS"), (None, "tls"))]
    assert len(extra) == 2 and not any(s.divergence.major for s in extra)
    hidden = [s for s in diff.steps if s.divergence and s.divergence.kind == "encrypted"]
    assert {keys(s)[0] for s in hidden} >= {"MAIL", "DATA", "message"}
    assert not any(s.divergence and s.divergence.major for s in diff.steps)
    assert param(diff, "tls_version").b == "TLSv1.2"


def test_tls_failure_departs_at_the_handshake():
    diff = compare_captures(lab("starttls-25"), lab("tls-version-mismatch"))
    assert keys(diff.first_divergence) == ("tls", "tls")
    assert diff.first_divergence.divergence.major


def test_tarpit_is_slower_at_the_greeting():
    diff = compare_captures(lab("clean-delivery"), lab("tarpit"))
    first = diff.first_divergence
    assert keys(first) == ("greeting", "greeting") and first.divergence.kind == "slower"


def test_connection_refused():
    diff = compare_captures(lab("clean-delivery"), lab("connect-refused"))
    assert "connect-refused" in [f.code for f in diff.only_in_b]
    assert keys(diff.first_divergence) == ("greeting", "greeting")
    assert diff.first_divergence.divergence.kind == "no-reply"


def test_client_side_against_server_side_capture():
    """Captures taken at different points: the diff says so and still compares by role."""
    diff = compare_captures(lab("clean-delivery"), lab("ip-fragmentation"))
    assert (diff.a.capture_point, diff.b.capture_point) == ("client", "server")
    assert any("different points" in note for note in diff.notes)
    assert "ip-fragmentation" in [f.code for f in diff.only_in_b]
    assert param(diff, "hops").b == {"client": 2, "server": 0}


def test_chosen_sessions_and_usage_errors():
    diff = compare_captures(lab("greylisting"), lab("greylisting"), good_session=1, bad_session=2)
    assert (diff.a.session.id, diff.b.session.id) == (1, 2)
    with pytest.raises(DiffError, match="no SMTP session 9"):
        compare_captures(lab("clean-delivery"), lab("unknown-user"), bad_session=9)
    with pytest.raises(DiffError, match="no other SMTP session"):
        compare_captures(lab("clean-delivery"), lab("clean-delivery"))


def test_bdat_chunks_against_data():
    """The last BDAT chunk is the message; DATA against BDAT is a related command, not a
    refusal, though one is answered 354 and the other 250."""
    diff = compare_captures(lab("clean-delivery"), lab("bdat-chunking"))
    first_chunk = next(s for s in diff.steps if keys(s) == ("DATA", "BDAT"))
    assert first_chunk.divergence.kind == "command" and not first_chunk.divergence.major
    message = next(s for s in diff.steps if keys(s) == ("message", "message"))
    assert message.b.label.startswith("BDAT ") and "LAST" in message.b.label
    assert message.divergence is None


def test_implicit_tls_greeting_is_not_missing():
    diff = compare_captures(lab("clean-delivery"), lab("smtps-465"))
    greeting = diff.steps[0]
    assert greeting.b.hidden and greeting.divergence.kind == "not-visible"
    assert not any(s.divergence and s.divergence.major for s in diff.steps)

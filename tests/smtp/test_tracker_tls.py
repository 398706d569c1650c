"""SmtpTracker's TLS seam, without tshark: a session that went into TLS waits for its
plaintext when asked to, reads it as the dialogue restarted inside TLS, and AUTH inside is
redacted by the same parser as in clear text.

The plaintext fed here is what OpenSSL encrypted (tests/tlsconv.py), record by record with
the frame that carried each write's last byte: what pcapsmtp.analysis.tlsdecrypt gets from tshark.
"""

from __future__ import annotations

import ssl

import pytest

from pcapsmtp.capture import open_capture, packets
from pcapsmtp.smtp.events import AUTH_RESPONSE, END_OF_DATA, REDACTED
from pcapsmtp.smtp.tracker import SMTP_PORTS, SmtpTracker
from pcapsmtp.tcp import FlowTracker
from tests.tlsconv import CLIENT, SERVER, Conversation, make_pki


def _conversation(tmp_path, implicit: bool) -> Conversation:
    c = Conversation(
        make_pki(tmp_path), tmp_path / "keys.log", ssl.TLSVersion.TLSv1_3, implicit=implicit
    )
    if implicit:
        c.send(SERVER, b"220 mx.example.jp ESMTP\r\n")
    else:
        c.clear(SERVER, b"220 mx.example.jp ESMTP\r\n")
        c.clear(CLIENT, b"EHLO client.example\r\n")
        c.clear(SERVER, b"250-mx.example.jp\r\n250 STARTTLS\r\n")
        c.clear(CLIENT, b"STARTTLS\r\n")
        c.clear(SERVER, b"220 2.0.0 Ready to start TLS\r\n")
        c.start_tls()
    for sender, data in (
        (CLIENT, b"EHLO client.example\r\n"),
        (SERVER, b"250-mx.example.jp\r\n250 AUTH LOGIN\r\n"),
        (CLIENT, b"AUTH LOGIN YWxpY2U=\r\n"),
        (SERVER, b"334 UGFzc3dvcmQ6\r\n"),
        (CLIENT, b"c2VjcmV0\r\n"),
        (SERVER, b"235 2.7.0 ok\r\n"),
        (CLIENT, b"MAIL FROM:<a@client.example>\r\nRCPT TO:<b@example.jp>\r\nDATA\r\n"),
        (SERVER, b"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 go ahead\r\n"),
        (CLIENT, b"Subject: hi\r\n\r\nHello.\r\n.\r\n"),
        (SERVER, b"250 2.0.0 Ok: queued as 1A2B3C\r\n"),
        (CLIENT, b"QUIT\r\n"),
        (SERVER, b"221 2.0.0 Bye\r\n"),
    ):
        c.send(sender, data)
    c.close()
    c.write(tmp_path / "tls.pcap")
    return c


def _track(path, hold: bool) -> tuple[SmtpTracker, list]:
    tracker = SmtpTracker(str(path), hold_tls=lambda: hold)
    ended = []
    with open_capture(str(path)) as capture:
        for event in FlowTracker(SMTP_PORTS).events(packets(capture)):
            session = tracker.add(event)
            if session is not None:
                ended.append(session)
    return tracker, ended


def _feed(tracker: SmtpTracker, conversation: Conversation, stream: int) -> None:
    writes = [(frame, CLIENT, data) for frame, data in conversation.plain[CLIENT]]
    writes += [(frame, SERVER, data) for frame, data in conversation.plain[SERVER]]
    for frame, sender, data in sorted(writes, key=lambda w: w[0]):
        tracker.decrypted(stream, sender, data, frame, frame * 1_000_000)


@pytest.mark.parametrize("implicit", [False, True], ids=["starttls", "implicit"])
def test_held_session_reads_its_plaintext(tmp_path, implicit):
    conversation = _conversation(tmp_path, implicit)
    tracker, ended = _track(tmp_path / "tls.pcap", hold=True)
    assert ended == []
    [(held, scanner)] = tracker.held()
    assert scanner.facts.version == "TLSv1.3"
    assert scanner.facts.client_random is not None
    _feed(tracker, conversation, held.flow.stream)
    [session] = tracker.finish_held()
    assert tracker.held() == []
    verbs = [c.verb for c in session.commands]
    inside = ["EHLO", "AUTH", AUTH_RESPONSE, "MAIL", "RCPT", "DATA", END_OF_DATA, "QUIT"]
    assert verbs == ([] if implicit else ["EHLO", "STARTTLS"]) + inside
    assert session.greeting.code == 220
    auth = next(c for c in session.commands if c.verb == "AUTH")
    assert auth.argument == f"LOGIN {REDACTED}" and auth.secret
    assert [a.code for a in session.auth] == [235]
    assert [t.queue_id for t in session.transactions] == ["1A2B3C"]
    assert session.outcome == "delivered"
    assert session.tls.decrypted
    assert all(e.decrypted == (e.frame > session.tls.frame) for e in session.dialogue)
    assert "YWxpY2U" not in repr(session.dialogue) and "c2VjcmV0" not in repr(session.dialogue)


def test_not_held_without_keys(tmp_path):
    """Nothing to decrypt with: the session ends with its connection, "encrypted"."""
    _conversation(tmp_path, implicit=False)
    tracker, [session] = _track(tmp_path / "tls.pcap", hold=False)
    assert tracker.held() == []
    assert session.outcome == "encrypted" and session.encrypted


def test_held_but_not_decrypted_stays_encrypted(tmp_path):
    """Held for a key log that then had nothing for it: the same session as never held."""
    _conversation(tmp_path, implicit=True)
    tracker, _ = _track(tmp_path / "tls.pcap", hold=True)
    [session] = tracker.finish_held()
    assert session.outcome == "encrypted"
    assert not session.tls.decrypted
    assert not any(e.decrypted for e in session.dialogue)

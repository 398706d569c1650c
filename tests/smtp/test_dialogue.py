"""Playbooks for the dialogue parser: bytes of each side in, typed events out.

Each test states one behaviour; the byte sequences are what real clients and servers send
(the captures under tests/e2e cover the same on the wire).
"""

from __future__ import annotations

import base64

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pcapsmtp.smtp.dialogue import Dialogue
from pcapsmtp.smtp.events import (
    AUTH_RESPONSE,
    CLIENT,
    END_OF_DATA,
    GREETING,
    REDACTED,
    SERVER,
    Anomaly,
    Command,
    Gap,
    MessageEnd,
    Reply,
    TlsStarted,
)


class Playbook:
    """Feeds a dialogue in order, numbering frames, and collects its events."""

    def __init__(self, greeting_expected: bool = True) -> None:
        self.dialogue = Dialogue(greeting_expected=greeting_expected)
        self.offsets = {CLIENT: 0, SERVER: 0}
        self.frame = 0
        self.events = []

    def send(self, sender: str, data: bytes) -> Playbook:
        self.frame += 1
        self.dialogue.feed(sender, data, self.offsets[sender], self.frame, self.frame * 1000)
        self.offsets[sender] += len(data)
        self.events += self.dialogue.take()
        return self

    def client(self, data: bytes) -> Playbook:
        return self.send(CLIENT, data)

    def server(self, data: bytes) -> Playbook:
        return self.send(SERVER, data)

    def gap(self, sender: str, length: int, reason: str = "not captured") -> Playbook:
        self.frame += 1
        self.dialogue.gap(sender, length, self.frame, self.frame * 1000, reason)
        self.offsets[sender] += length
        self.events += self.dialogue.take()
        return self

    def end(self) -> Playbook:
        self.dialogue.finish(self.frame, self.frame * 1000)
        self.events += self.dialogue.take()
        return self

    def of(self, kind):
        return [e for e in self.events if isinstance(e, kind)]

    def pairs(self) -> list[tuple[str, int | None]]:
        return [(c.verb, c.reply.code if c.reply else None) for c in self.of(Command)]


def test_pipelined_commands_pair_with_replies_in_order():
    """RFC 2920: MAIL, RCPT, RCPT, DATA in one segment; the replies answer them in order."""
    play = Playbook().server(b"220 mx ESMTP\r\n").client(b"EHLO c\r\n")
    play.server(b"250-mx\r\n250 PIPELINING\r\n")
    play.client(b"MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nRCPT TO:<c@y>\r\nDATA\r\n")
    play.server(b"250 ok\r\n550 5.1.1 no such user\r\n250 ok\r\n354 go\r\n")
    play.client(b"Subject: hi\r\n\r\nbody\r\n.\r\nQUIT\r\n").server(b"250 queued\r\n221 bye\r\n")
    assert play.pairs() == [
        ("EHLO", 250),
        ("MAIL", 250),
        ("RCPT", 550),
        ("RCPT", 250),
        ("DATA", 354),
        (END_OF_DATA, 250),
        ("QUIT", 221),
    ]
    assert [c.pipelined for c in play.of(Command) if c.verb == "RCPT"] == [True, True]
    assert play.of(Reply)[0].command.verb == GREETING


def test_message_ends_at_crlf_dot_crlf_even_split_across_segments():
    """The final dot may be split anywhere; dot-stuffed lines are not the end."""
    play = Playbook().server(b"220 mx\r\n").client(b"DATA\r\n").server(b"354 go\r\n")
    play.client(b"line\r\n..not the end\r\n\r")
    play.client(b"\n.").client(b"\r\n")
    play.server(b"250 ok\r\n")
    (message,) = play.of(MessageEnd)
    assert message.size == len(b"line\r\n.not the end\r\n\r\n")
    assert play.pairs()[-1] == (END_OF_DATA, 250)


def test_data_rejected_keeps_reading_commands():
    """A 554 to DATA means no message follows: the next line is a command, not a body."""
    play = Playbook().server(b"220 mx\r\n").client(b"DATA\r\n").server(b"554 no recipients\r\n")
    play.client(b"QUIT\r\n").server(b"221 bye\r\n")
    assert play.pairs() == [("DATA", 554), ("QUIT", 221)]
    assert not play.of(MessageEnd)


def test_bdat_chunks_are_binary_and_last_ends_the_message():
    """RFC 3030: 'BDAT n' is followed by exactly n bytes, CRLF or dots included, no reply wait."""
    chunk = b"a\r\n.\r\nb"
    play = Playbook().server(b"220 mx\r\n")
    play.client(b"BDAT %d\r\n" % len(chunk) + chunk + b"BDAT 0 LAST\r\n")
    play.server(b"250 ok\r\n250 queued\r\n")
    assert play.pairs() == [("BDAT", 250), ("BDAT", 250)]
    (message,) = play.of(MessageEnd)
    assert message.size == len(chunk)
    assert play.of(Command)[-1].message is message


def test_auth_initial_response_is_redacted():
    """AUTH PLAIN with an initial response: the credential never reaches an event."""
    secret = base64.b64encode(b"\0alice\0s3cret").decode()
    play = Playbook().server(b"220 mx\r\n").client(f"AUTH PLAIN {secret}\r\n".encode())
    play.server(b"235 ok\r\n")
    (command,) = play.of(Command)
    assert command.argument == f"PLAIN {REDACTED}" and command.secret
    assert secret not in repr(play.events)


@pytest.mark.parametrize(
    "line",
    [
        "AUTH\tPLAIN {}",
        "AUTH PLAIN\t{}",
        "AUTH  PLAIN\t {}",
        "auth\tplain\x0b{}",
        "  AUTH PLAIN {}",
    ],
)
def test_auth_initial_response_after_any_blank_is_redacted(line):
    """Servers split the AUTH line on any blank (Postfix's smtpd_token, Exim), so a tab
    between the words still logs in: its initial response is a credential all the same."""
    secret = base64.b64encode(b"\0alice\0s3cret").decode()
    play = Playbook().server(b"220 mx\r\n").client((line.format(secret) + "\r\n").encode())
    play.server(b"235 ok\r\n")
    (command,) = play.of(Command)
    assert (command.verb, command.argument.upper(), command.secret) == (
        "AUTH",
        f"PLAIN {REDACTED}".upper(),
        True,
    )
    assert secret not in repr(play.events)


def test_lines_answering_334_are_credentials():
    """AUTH LOGIN: each line after a 334 is a credential, whatever it looks like."""
    play = (
        Playbook().server(b"220 mx\r\n").client(b"AUTH LOGIN\r\n").server(b"334 VXNlcm5hbWU6\r\n")
    )
    play.client(b"QUIT\r\n").server(b"334 UGFzc3dvcmQ6\r\n").client(b"c2VjcmV0\r\n")
    play.server(b"535 5.7.8 bad\r\n")
    verbs = [c.verb for c in play.of(Command)]
    assert verbs == ["AUTH", AUTH_RESPONSE, AUTH_RESPONSE]
    assert "c2VjcmV0" not in repr(play.events) and "QUIT" not in repr(play.of(Command))


def test_credentials_sent_after_a_refused_auth_are_still_redacted():
    """A client that does not wait for 334 sends its user name and password after the
    server's 503 (AUTH not enabled before STARTTLS): they are credentials all the same,
    until its next command."""
    play = Playbook().server(b"220 mx\r\n").client(b"AUTH LOGIN\r\n")
    play.server(b"503 5.5.1 Error: authentication not enabled\r\n")
    play.client(b"YWxpY2U=\r\n").server(b"502 5.5.2 Error: command not recognized\r\n")
    play.client(b"c2VjcmV0\r\n").server(b"502 5.5.2 Error: command not recognized\r\n")
    play.client(b"MAIL FROM:<a@x>\r\n").server(b"250 ok\r\n").client(b"Zm9v\r\n")
    verbs = [c.verb for c in play.of(Command)]
    assert verbs == ["AUTH", AUTH_RESPONSE, AUTH_RESPONSE, "MAIL", "ZM9V"]
    assert "YWxpY2U=" not in repr(play.events) and "c2VjcmV0" not in repr(play.events)


def test_credentials_are_redacted_when_the_334_is_not_captured():
    """One-sided capture: base64 lines after AUTH are still credentials; MAIL ends the exchange."""
    play = Playbook().server(b"220 mx\r\n").client(b"AUTH LOGIN\r\nYWxpY2U=\r\nc2VjcmV0\r\n")
    play.client(b"MAIL FROM:<a@x>\r\n")
    assert [c.verb for c in play.of(Command)] == ["AUTH", AUTH_RESPONSE, AUTH_RESPONSE, "MAIL"]
    assert "YWxpY2U=" not in repr(play.events)


def test_starttls_switches_both_sides_to_tls_when_tls_follows():
    """After 220 to STARTTLS, a TLS record from the client starts TLS."""
    play = Playbook().server(b"220 mx\r\n").client(b"STARTTLS\r\n").server(b"220 go ahead\r\n")
    play.client(b"\x16\x03\x01\x00\x05hello")
    (started,) = play.of(TlsStarted)
    assert started.sender == CLIENT and not started.implicit


def test_starttls_answered_but_stream_stays_clear_is_an_anomaly():
    """FIELD-NOTES: an inspection box answers 220 to STARTTLS and keeps the stream clear."""
    play = Playbook().server(b"220 mx\r\n").client(b"STARTTLS\r\n").server(b"220 go ahead\r\n")
    play.client(b"EHLO c\r\n").server(b"250 mx\r\n")
    assert "starttls_not_started" in [a.code for a in play.of(Anomaly)]
    assert play.pairs()[-1] == ("EHLO", 250)


def test_implicit_tls_from_the_first_byte():
    """Port 465: the client's first bytes are a ClientHello; no greeting is expected."""
    play = Playbook().client(b"\x16\x03\x01\x00\x05hello")
    assert play.of(TlsStarted)[0].implicit


def test_a_gap_in_the_client_stream_resynchronises_on_the_next_command():
    """Missing bytes: the partial line after the gap is skipped, the next command is read."""
    play = Playbook().server(b"220 mx\r\n").client(b"MAIL FROM:<a@x>\r\n").server(b"250 ok\r\n")
    play.gap(CLIENT, 40).client(b"t-of-a-lost-line\r\nQUIT\r\n").server(b"221 bye\r\n")
    assert [c.verb for c in play.of(Command)] == ["MAIL", "QUIT"]
    assert play.of(Gap)[0].length == 40


def test_a_gap_inside_a_message_is_counted_in_its_size():
    """The server's 250 ends a message whose final dot was lost."""
    play = Playbook().server(b"220 mx\r\n").client(b"DATA\r\n").server(b"354 go\r\n")
    play.client(b"abc").gap(CLIENT, 100).server(b"250 queued\r\n")
    (message,) = play.of(MessageEnd)
    assert not message.complete and message.size >= 103
    assert play.pairs()[-1] == (END_OF_DATA, 250)


def test_a_421_during_the_message_does_not_end_it():
    """A server timing out mid-message (421) is not an answer to the message."""
    play = Playbook().server(b"220 mx\r\n").client(b"DATA\r\n").server(b"354 go\r\n")
    play.client(b"part of a message\r\n").server(b"421 4.4.2 timeout\r\n")
    assert play.of(Reply)[-1].command is None
    assert not play.of(MessageEnd)


def test_snap_length_cut_lines_still_give_verbs_and_codes():
    """A segment cut by the snap length ends the line it holds: code and verb are kept."""
    play = Playbook().server(b"220 mx.exa").gap(SERVER, 30, "snaplen")
    play.client(b"EHLO clie").gap(CLIENT, 9, "snaplen")
    play.server(b"250-mx\r\n250-PIPE").gap(SERVER, 60, "snaplen")
    assert play.pairs() == [("EHLO", 250)]
    assert play.of(Reply)[-1].truncated


def test_reply_codes_outside_the_usual_list_are_accepted():
    """Any three-digit code is a reply (Suricata PR #11193: 400, 472 broke parsers)."""
    play = Playbook().server(b"220 mx\r\n").client(b"NOOP\r\n").server(b"472 odd\r\n")
    assert play.pairs() == [("NOOP", 472)]


def test_mail_from_without_space_or_brackets():
    """Arkime #442: 'MAIL FROM:addr' is a MAIL command with its argument intact."""
    play = Playbook().server(b"220 mx\r\n").client(b"mail from:a@x\r\n")
    (command,) = play.of(Command)
    assert command.verb == "MAIL" and command.argument == "from:a@x"


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from([CLIENT, SERVER, "gap"]), st.binary(max_size=200)), max_size=30
    )
)
def test_any_bytes_in_any_order_never_raise(steps):
    """Fuzz: whatever the peers send, in whatever pieces, the parser records and goes on."""
    play = Playbook()
    for sender, data in steps:
        if sender == "gap":
            play.gap(CLIENT if len(data) % 2 else SERVER, len(data) + 1)
        else:
            play.send(sender, data)
    play.end()

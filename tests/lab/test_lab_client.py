"""The lab's own transcript helpers (scripts/lab/client.py), which the truth files rest on."""

from __future__ import annotations

import sys
from email import message_from_bytes
from email.header import decode_header, make_header
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts" / "lab"))

from client import AUTH_RESPONSE, QUEUED_AS, make_message, parse_swaks

SWAKS = """\
=== Trying 10.77.2.2:587...
=== Connected to 10.77.2.2.
<-  220 server.lab.test ESMTP Postfix (lab)
 -> EHLO client.lab.test
<-  250-server.lab.test
<-  250 AUTH PLAIN LOGIN
 -> AUTH LOGIN
<-  334 VXNlcm5hbWU6
 -> YWxpY2U=
<-  334 UGFzc3dvcmQ6
 -> c2VjcmV0
<-  235 2.7.0 Authentication successful
 -> MAIL FROM:<alice@client.lab.test>
<-  250 2.1.0 Ok
 -> RCPT TO:<nobody@server.lab.test>
<** 550 5.1.1 <nobody@server.lab.test>: Recipient address rejected
 -> RCPT TO:<bob@server.lab.test>
<-  250 2.1.5 Ok
 -> DATA
<-  354 End data with <CR><LF>.<CR><LF>
 -> Subject: hi
 -> <EMPTY>
 -> body
 -> .
<-  250 2.0.0 Ok: queued as 4ABC123
 -> QUIT
<-  221 2.0.0 Bye
=== Connection closed with remote host.
""".replace("<EMPTY>", "")  # swaks shows an empty line as " -> "


def test_parse_swaks_pairs_every_line_with_its_reply():
    steps, body = parse_swaks(SWAKS)
    assert [(s["command"], s["reply"]) for s in steps] == [
        (None, 220), ("EHLO", 250), ("AUTH", 334), (AUTH_RESPONSE, 334), (AUTH_RESPONSE, 235),
        ("MAIL", 250), ("RCPT", 550), ("RCPT", 250), ("DATA", 354), (".", 250), ("QUIT", 221),
    ]  # fmt: skip
    assert steps[1]["reply_text"] == "server.lab.test\nAUTH PLAIN LOGIN"
    assert body == [b"Subject: hi", b"", b"body"]


def test_parse_swaks_leaves_unanswered_commands_without_reply():
    steps, _ = parse_swaks("<-  220 hi\n -> EHLO x\n*** Remote host closed connection\n")
    assert steps[-1] == {"command": "EHLO", "reply": None}


def test_queue_ids_from_postfix_and_exim():
    assert QUEUED_AS.search("2.0.0 Ok: queued as 4ABC123").group(1) == "4ABC123"
    assert QUEUED_AS.search("OK id=1xVNZr-00080C-08").group(1) == "1xVNZr-00080C-08"


def test_messages_have_crlf_lines_no_leading_dot_and_decodable_subjects():
    subject = "ラボの試験メール 2"
    msg = make_message(subject, "a@x", ["b@y"], attachment=5000, subject_charset="iso-2022-jp")
    assert b"\r\n." not in msg and b"\n" not in msg.replace(b"\r\n", b"")
    assert msg.endswith(b"\r\n")
    parsed = message_from_bytes(msg)
    assert "=?iso-2022-jp?b?" in parsed["Subject"]
    assert str(make_header(decode_header(parsed["Subject"]))) == subject

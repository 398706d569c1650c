"""A capture written by an attacker: a server whose replies, and a message whose headers,
carry HTML, script tags, Markdown, terminal escape sequences and bidi overrides."""

from __future__ import annotations

from pathlib import Path

from tests.conversation import Conversation

SCRIPT = "<script>alert('banner')</script>"
IMG = "<img src=x onerror=alert(1)>"
IFRAME = "<iframe src=javascript:alert(2)></iframe>"
SUBJECT_SCRIPT = '<script>alert("subject")</script>'
ESCAPES = ("\x1b[31m", "\x1b]0;pwned\x07", "\x1b[2J", "\x9b")
MARKDOWN = ("```", "](javascript:alert(3))", "| cell |", "<!--")
RLO = "\u202e"

GREETING = (
    f"220 mx.evil.example ESMTP {SCRIPT} \x1b[31mRED\x1b[0m \x1b]0;pwned\x07 ```\r\n".encode()
)
EHLO_REPLY = f"250-mx.evil.example {IMG}\r\n250 SIZE 100000\r\n".encode()
SUBJECT = (
    f"{SUBJECT_SCRIPT} \x1b[2J\x1b[H ``` ](javascript:alert(3)) | cell | {RLO}gpj.exe <!-- "
    "\u009b31m"  # CSI as a C1 control, valid UTF-8
).encode()
MESSAGE = (
    b'From: "<svg onload=alert(4)>" <attacker@evil.example>\r\n'
    b"To: victim@corp.example\r\n"
    b"Subject: " + SUBJECT + b"\r\n"
    b"Message-ID: <" + IMG.encode() + b"@evil.example>\r\n"
    b"\r\n"
    b"<script>alert('body')</script>\r\n"
    b".\r\n"
)
FINAL_REPLY = (
    f"554 5.7.1 {IFRAME} \x1b[5mrejected\x1b[0m </td></tr></table><script>x</script>".encode()
    + b" \x9b2J\r\n"  # CSI as a raw byte: not UTF-8
)


def hostile_capture(folder: Path) -> Path:
    """The session is rejected, so every report shows it in detail."""
    conversation = Conversation()
    conversation.handshake()
    conversation.say(
        ("S", GREETING),
        ("C", b"EHLO client.example\r\n"),
        ("S", EHLO_REPLY),
        ("C", b"MAIL FROM:<attacker@evil.example>\r\n"),
        ("S", b"250 2.1.0 <b>Ok</b>\r\n"),
        ("C", b"RCPT TO:<victim@corp.example>\r\n"),
        ("S", b"250 2.1.5 Ok\r\n"),
        ("C", b"DATA\r\n"),
        ("S", b"354 <marquee>go ahead</marquee>\r\n"),
        ("C", MESSAGE),
        ("S", FINAL_REPLY),
        ("C", b"QUIT\r\n"),
        ("S", b"221 2.0.0 \x1b[?1049h bye\r\n"),
    )
    conversation.close()
    return conversation.write(folder / f"hostile {IMG}.pcap")

"""The message scanner reads a header block with the email package in its cheap form (the
header block only, compat32, Content-Type's parameters parsed once, plain ASCII values
taken as they are): what it shows must be what the email package's full parse of the same
block gives, on the hostile header cases the other tests use (encoded words, broken
encodings, folded lines, 8-bit bytes, duplicate fields, missing separators).

Compared where the email package's answer is what is shown: the media type, the boundary,
multipart/digest, the transfer encoding, whether the part is an attachment, an ASCII
file name, the raw field values (Subject as on the wire, Zeek's trace fields), the Received
count, Message-ID and Date, and From/To/Cc/Subject when they hold only ASCII text and
well-formed UTF-8 or ASCII encoded words (elsewhere the charset fallbacks of
pcapsmtp.smtp.message decide on purpose: tests/smtp/test_message.py).
"""

from __future__ import annotations

import email
import re
from email import policy
from email.header import decode_header
from email.utils import collapse_rfc2231_value

import pytest

from pcapsmtp.smtp.message import MessageScanner
from tests.smtp.test_message import _PART_LINES

_FOLD = re.compile(r"\r?\n(?=[ \t])")

PART_LINES = [*_PART_LINES[:-1], b"Content-Disposition: attachment; filename*=x''%FF\r\n"]
"""The lines of tests/smtp/test_message.py's part-block and fuzz cases."""

BLOCKS = {
    "plain text part": b"Content-Type: text/plain; charset=utf-8\r\n",
    "multipart, quoted boundary": b'Content-Type: multipart/mixed; boundary="b1"\r\n',
    "multipart, empty boundary": b"Content-Type: multipart/digest; boundary=\r\n",
    "multipart, no boundary": b"Content-Type: multipart/mixed\r\n",
    "multipart, boundary folded": (
        b'Content-Type: multipart/alternative;\r\n\tboundary="=_x y "; name=a.txt\r\n'
    ),
    "multipart, folded inside the boundary": (
        b'Content-Type: multipart/mixed; boundary="=_a\r\n b"\r\n'
    ),
    "type folded": b"Content-Type: multipart/\r\n mixed; boundary=q\r\n",
    "multipart, boundary twice, case": (
        b"Content-Type: Multipart/Mixed; BOUNDARY=first; boundary=second\r\n"
    ),
    "multipart, RFC 2231 boundary": (
        b"Content-Type: multipart/mixed; boundary*0=ab; boundary*1=cd\r\n"
    ),
    "multipart, name and boundary": (
        b'Content-Type: multipart/mixed; name="n.txt"; boundary="=_b"\r\n'
    ),
    "digest part": b"Content-Type: message/rfc822\r\n",
    "invalid type": b"Content-Type: text\r\n",
    "two slashes": b"Content-Type: a/b/c; name=x\r\n",
    "no type at all": b"X-Other: y\r\n",
    "transfer encoding": b"Content-Transfer-Encoding: BASE64 \r\n",
    "transfer encoding empty": b"Content-Transfer-Encoding:\r\n",
    "two content types": (
        b"Content-Type: text/html\r\nContent-Type: multipart/mixed; boundary=z\r\n"
    ),
    "encoded-word filename": (
        b'Content-Disposition: attachment; filename="=?utf-8?b?w6k=?=.pdf"\r\n'
    ),
    "RFC 2231 filename": b"Content-Disposition: attachment; filename*=utf-8''%E2%82%AC.txt\r\n",
    "RFC 2231 filename, unknown charset": (
        b"Content-Disposition: attachment; filename*=x''%FF\r\n"
    ),
    "RFC 2231 continuations": (
        b'Content-Disposition: attachment; filename*0="a"; filename*1="b.txt"\r\n'
    ),
    "empty filename, name": (
        b'Content-Type: text/plain; name="n.txt"\r\n'
        b'Content-Disposition: attachment; filename=""\r\n'
    ),
    "inline with name": (
        b'Content-Type: image/png; name="a.png"\r\nContent-Transfer-Encoding: base64\r\n'
        b"Content-Disposition: inline\r\n"
    ),
    "ASCII attachment": (
        b'Content-Type: application/pdf; name="report-9.pdf"\r\n'
        b"Content-Transfer-Encoding: base64\r\n"
        b'Content-Disposition: attachment; filename="report-9.pdf"\r\n'
    ),
    "8-bit name": b'Content-Type: application/pdf; name="\xe9t\xe9.pdf"\r\n',
    "folded line first": b" folded; x=1\r\nContent-Type: text/html\r\n",
    "broken header line": b"Content-Type: text/html\r\nbroken header\r\nX: y\r\n",
    "nameless field": b":nameless\r\nContent-Type: text/html\r\n",
    "envelope line": b"From someone Sat Jan  1 00:00:00 2000\r\nContent-Type: text/html\r\n",
    "bare CR in a field": b"Subject: a\rb: c\r\nContent-Type: text/html\r\n",
    "top: plain": (
        b"Received: from client150.example.org (client150.example.org [192.0.2.151])\r\n"
        b"\tby mx.example.net with ESMTPS id 54AA727D\r\n"
        b"From: <news0@example.org>\r\nTo: <user2659@example.net>\r\n"
        b"Subject: Shipment invoice thanks\r\nDate: Sat, 01 Jun 2024 00:00:00 +0000\r\n"
        b"Message-ID: <900.f490ce24@example.org>\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="=_part_2269c841"\r\n'
    ),
    "top: encoded words": (
        b"From: =?utf-8?q?Caf=C3=A9?= <a@example.org>\r\n"
        b"Subject: Re: =?utf-8?q?caf=C3=A9?= and =?utf-8?b?5pel?=x\r\n"
        b"To: a@example.org\r\nTo: =?us-ascii?q?b?= <b@example.org>\r\nCc: c@example.org\r\n"
    ),
    "top: folded subject": (b"Subject: a long\r\n subject\r\n\tfolded\r\nMessage-Id:  <1@x>  \r\n"),
    "top: broken base64 word": b"Subject: =?utf-8?B?dGVzd?= \xff\xfe\r\n",
    "top: 8-bit and words": b"Subject: caf\xc3\xa9 =?utf-8?q?x?=\r\nFrom: \x93q\x94 <a@b>\r\n",
    "top: ISO-2022-JP split word": (
        b"Subject: =?ISO-2022-JP?B?GyRCJUYlOSVI?=\r\n =?ISO-2022-JP?B?RnxLXDhsGyhC?=\r\n"
    ),
    "top: raw ISO-2022-JP": b"Subject: \x1b$B$3$s\x1b(B\r\n",
    "top: unknown charset": b"Subject: =?x-unknown?B?dGVzdA==?=\r\n",
    "top: duplicates": (
        b"Subject: first\r\nSubject: second\r\nMessage-ID: <a@x>\r\nMessage-ID: <b@x>\r\n"
        b"Date: one\r\nDate: two\r\nFrom: f1@x\r\nFrom: f2@x\r\nCc: c1@x\r\ncc: c2@x\r\n"
    ),
    "top: trace fields": (
        b"Received: from a (b [192.0.2.1])\r\n\tby c with ESMTP\r\n"
        b"Received: from [2001:db8::1] by x\r\nReceived: from x ( 10.0.0.1 ) by y\r\n"
        b"Reply-To: r@x\r\nIn-Reply-To: <p@q>\r\nUser-Agent: m/1\r\nX-Mailer: \xe9x\r\n"
        b"X-Originating-IP: [203.0.113.9]\r\nX-Originating-IP: none\r\n"
    ),
    "top: 8-bit content type": (
        b'Content-Type: multipart/mixed; boundary="\xe9\xe9"; name="\xe9.txt"\r\n'
    ),
    "top: missing separator": b"Subject: s\r\nhello world\r\nmore\r\n",
    "all part lines": b"".join(PART_LINES),
    "all part lines, reversed": b"".join(reversed(PART_LINES)),
}


def _ascii_field(msg: email.message.Message, name: str) -> bool:
    values = msg.get_all(name) or []
    return all(isinstance(v, str) and v.isascii() and "\x1b" not in v for v in values)


def _full_parse(block: bytes, parent_digest: bool) -> email.message.Message:
    """The email package's full parse of the block as a message of its own."""
    msg = email.message_from_bytes(block + b"\r\n", policy=policy.compat32)
    if parent_digest:
        msg.set_default_type("message/rfc822")
    return msg


def _unfolded(msg: email.message.Message) -> email.message.Message:
    """The Content-* fields with folding removed, as the scanner reads them (RFC 5322
    2.2.3: unfolding is removing the CRLF before the white space)."""
    out = email.message.Message()
    out.set_default_type(msg.get_default_type())
    for name, value in msg.raw_items():
        if name.lower().startswith("content-"):
            out[name] = _FOLD.sub("", value)
    return out


def _decoded(value: str) -> str | None:
    """email.header.decode_header's pieces of a field whose words are ASCII or UTF-8, each
    decoded and joined as they stand (make_header would put a space between a word and
    the text after it), else None."""
    text = _FOLD.sub("", value).strip()
    if "=?" not in text:
        return text
    pieces = decode_header(text)
    if any(charset not in (None, "utf-8", "us-ascii") for _, charset in pieces):
        return None
    return "".join(
        data.decode(charset or "ascii") if isinstance(data, bytes) else data
        for data, charset in pieces
    )


@pytest.mark.parametrize("nested", [False, True])
@pytest.mark.parametrize("parent_digest", [False, True])
@pytest.mark.parametrize("top", [True, False])
@pytest.mark.parametrize("name", list(BLOCKS))
def test_block_reads_as_the_full_parse(name, top, parent_digest, nested):
    block = BLOCKS[name]
    scanner = MessageScanner()
    boundary, digest, leaf, anomalies = scanner._describe_block(block, top, nested, parent_digest)
    msg = _full_parse(block, parent_digest)
    if "header_parse_error" in anomalies:
        pytest.fail(f"{name}: the email package read it, the scanner did not: {anomalies}")

    if _ascii_field(msg, "content-type"):
        params = _unfolded(msg)
        content_type = params.get_content_type()
        expected_boundary = None
        if params.get_content_maintype() == "multipart":
            text = params.get_boundary()
            expected_boundary = text.encode("ascii") if text else None
            assert ("multipart_without_boundary" in anomalies) == (not text)
        assert boundary == expected_boundary
        assert digest == (params.get_content_subtype() == "digest")
        if leaf is not None:
            assert leaf[0] == content_type
        else:
            assert expected_boundary is not None
        if top:
            assert scanner._facts.content_type == content_type
        if _ascii_field(msg, "content-disposition") and leaf is not None:
            # email's get_filename order, an empty value passed over as the scanner does
            filename = None
            for header, param in (("content-disposition", "filename"), ("content-type", "name")):
                value = params.get_param(param, header=header)
                if value:
                    filename = collapse_rfc2231_value(value).strip()
                    break
            if not isinstance(value, tuple) and "=?" not in (filename or ""):
                assert leaf[2] == (filename or None)
            attached = params.get_content_disposition() == "attachment" or leaf[2] is not None
            if content_type == "message/rfc822" and nested:
                attached = True
            assert leaf[3] == attached
    if leaf is not None and _ascii_field(msg, "content-transfer-encoding"):
        encoding = msg.get("content-transfer-encoding")
        assert leaf[1] == (str(encoding).strip().lower() if encoding else "7bit")

    if not top:
        assert scanner._facts.subject is None and scanner._facts.received == 0
        return
    facts = scanner._facts
    assert facts.received == len(msg.get_all("received") or [])
    assert ("raw_8bit_header" in anomalies) == (not block.isascii())
    raw_items = [(n.lower(), v) for n, v in msg.raw_items()]
    first = {}
    for key, value in raw_items:
        first.setdefault(key, value)
    if "subject" in first:
        wire = first["subject"].encode("utf-8", "surrogateescape")
        assert facts.subject_raw == wire.decode("utf-8", "backslashreplace")
    else:
        assert facts.subject_raw is None and facts.subject is None
    for key, attr in (("message-id", "message_id"), ("date", "date")):
        value = first.get(key)
        if value is None:
            assert getattr(facts, attr) is None
        elif value.isascii() and "=?" not in value and "\x1b" not in value:
            assert getattr(facts, attr) == _FOLD.sub("", value).strip()
    for key, attr, joined in (
        ("from", "from_", False),
        ("to", "to", True),
        ("cc", "cc", True),
        ("subject", "subject", False),
    ):
        values = [v for k, v in raw_items if k == key][: None if joined else 1]
        if not values:
            assert getattr(facts, attr) is None
            continue
        if not all(v.isascii() and "\x1b" not in v for v in values):
            continue
        decoded = [_decoded(v) for v in values]
        if None not in decoded:
            assert getattr(facts, attr) == ", ".join(decoded)
    kept = {"reply-to": "reply_to", "in-reply-to": "in_reply_to"}
    for key, attr in kept.items():
        values = [v for k, v in raw_items if k == key]
        wire = values[-1].encode("utf-8", "surrogateescape") if values else None
        assert getattr(facts, attr) == (wire.decode("utf-8", "backslashreplace") if wire else None)
    received = [v for k, v in raw_items if k == "received"]
    if received:
        assert facts.first_received == received[-1].encode("utf-8", "surrogateescape").decode(
            "utf-8", "backslashreplace"
        )

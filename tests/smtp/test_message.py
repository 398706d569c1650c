"""MessageScanner: real messages from public captures checked against the email package,
Arkime's expected subjects and tshark; a Japanese message in random splits; a 50 MB message
in bounded memory; edge cases as tables; fuzzing.

Deliberate differences from the email package (each test says which it meets):
- Undeclared 8-bit header bytes: email replaces them with U+FFFD; we try UTF-8, then
  EUC-JP / Shift_JIS when the result looks Japanese, then Windows-1252 (Arkime agrees).
- Charset labels are read as their supersets (Shift_JIS as CP932, ISO-2022-JP with the NEC
  row 13 that Windows puts there, GB2312 as GB18030), as the WHATWG Encoding Standard does.
- Adjacent encoded words of one charset are joined before decoding, so a character split
  across them (ISO-2022-JP mailers do this) comes out whole; email decodes word by word.
- Attachments inside an attached message/rfc822 are not listed: the attached message is.
- Base64 sizes count alphabet characters; binascii stops early on malformed padding.
"""

from __future__ import annotations

import base64
import email
import random
import re
import tracemalloc
from email import policy
from email.header import Header
from email.mime.application import MIMEApplication
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import formataddr
from pathlib import Path
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pcapsmtp.capture import open_capture, packets
from pcapsmtp.smtp.message import MessageScanner
from pcapsmtp.smtp.message_facts import HEADER_LIMIT, MessageFacts
from pcapsmtp.tcp import StreamData, StreamGap, track_flows
from tests.captures import PUBLIC, in_folder
from tests.tshark import fields, needs_tshark

PORTS = (25, 465, 587, 2525, 1224, 225, 8240)


# -- helpers ------------------------------------------------------------------


def scan(data: bytes, dot_stuffed: bool = True, splits: list[int] | None = None) -> MessageFacts:
    scanner = MessageScanner(dot_stuffed=dot_stuffed)
    for chunk in split(data, splits or []):
        scanner.feed(chunk)
    return scanner.finish()


def split(data: bytes, sizes: list[int]) -> list[bytes]:
    chunks, pos = [], 0
    for size in sizes:
        chunks.append(data[pos : pos + size])
        pos += size
    return [*chunks, data[pos:]]


def stuff(message: bytes) -> bytes:
    """DATA as the client sends it, without the final "\\r\\n.\\r\\n" (RFC 5321 4.5.2)."""
    stuffed = message.replace(b"\r\n.", b"\r\n..")
    if stuffed.startswith(b"."):
        stuffed = b"." + stuffed
    return stuffed[:-2] if stuffed.endswith(b"\r\n") else stuffed


def unstuff(data: bytes) -> bytes:
    whole = data.replace(b"\r\n.", b"\r\n")
    return whole[1:] if whole.startswith(b".") else whole


COMMAND = re.compile(rb"(?im)^(DATA|BDAT)(?: ([^\r\n]*))?\r?\n")


def transfers(client: bytes) -> list[tuple[bytes, bool, bool]]:
    """(message as fed, dot_stuffed, complete) for each DATA or BDAT message in a client
    stream; a rough command reader that is enough for these captures."""
    found: list[tuple[bytes, bool, bool]] = []
    pos = 0
    while match := COMMAND.search(client, pos):
        if match.group(1).upper() == b"DATA":
            end = client.find(b"\r\n.\r\n", match.end() - 2)
            if end < 0:
                found.append((client[match.end() :], True, False))
                break
            found.append((client[match.end() : end], True, True))
            pos = end + 5
            continue
        words = (match.group(2) or b"").split()
        size = int(words[0]) if words and words[0].isdigit() else -1
        if size < 0:
            pos = match.end()
            continue
        chunk = client[match.end() : match.end() + size]
        last = len(words) > 1 and words[1].upper() == b"LAST"
        if found and not found[-1][1] and not found[-1][2]:
            found[-1] = (found[-1][0] + chunk, False, last)
        else:
            found.append((chunk, False, last))
        pos = match.end() + size
    return found


def client_streams(path: Path) -> list[tuple[bytes, bool]]:
    """Each TCP flow's client bytes in order, and whether bytes are missing."""
    flows: dict[int, tuple[bytearray, list[bool]]] = {}
    with open_capture(str(path)) as capture:
        for event in track_flows(packets(capture), PORTS):
            if isinstance(event, StreamData | StreamGap) and event.direction == event.flow.client:
                data, gap = flows.setdefault(event.flow.stream, (bytearray(), [False]))
                if isinstance(event, StreamGap):
                    gap[0] = True
                else:
                    data += event.data
    return [(bytes(data), gap[0]) for data, gap in flows.values()]


def public_captures() -> list[Path]:
    return in_folder(PUBLIC, (".pcap", ".pcapng"))


def capture_messages(path: Path) -> list[tuple[str, bytes, bool]]:
    """(case, body, dot-stuffed) of every complete message of the capture; the case is
    ``name#i``, i counting the transfers of one flow."""
    cases = []
    for data, gap in client_streams(path):
        for i, (body, stuffed, complete) in enumerate(transfers(data)):
            if complete and not gap:
                cases.append((f"{path.name}#{i}", body, stuffed))
    return cases


def leaves(part: email.message.Message):
    """Leaf parts as we see them: an attached message is one leaf."""
    if part.get_content_maintype() == "multipart" and part.is_multipart():
        for child in part.get_payload():
            yield from leaves(child)
    else:
        yield part


def entities(part: email.message.Message):
    """Every MIME entity in order, multiparts included (Zeek's depth count): an attached
    message is one, as for us."""
    yield part
    if part.get_content_maintype() == "multipart" and part.is_multipart():
        for child in part.get_payload():
            yield from entities(child)


def leaf_entities(message: email.message.Message) -> list[email.message.Message]:
    return [part for part in entities(message) if part.get_content_maintype() != "multipart"]


def email_attachments(message: email.message.Message) -> list[tuple]:
    found = []
    for part in leaves(message):
        name = part.get_filename()
        rfc822 = part.get_content_type() == "message/rfc822" and part is not message
        if name or part.get_content_disposition() == "attachment" or rfc822:
            size = None
            if part.get("content-transfer-encoding", "").strip().lower() == "base64":
                decoded = part.get_payload(decode=True)  # None for an attached message
                size = len(decoded) if isinstance(decoded, bytes) else None
            found.append((name, part.get_content_type(), size))
    return found


def our_attachments(facts: MessageFacts) -> list[tuple]:
    return [
        (a.filename, a.content_type, a.size if _decodes(a) else None) for a in facts.attachments
    ]


def _decodes(attachment) -> bool:
    return attachment.transfer_encoding == "base64" and attachment.content_type != "message/rfc822"


# -- real messages --------------------------------------------------------------

DIFFERENT = {
    "arkime-smtp-subject-windows.pcap#0": "undeclared 8-bit subject: Windows-1252 guessed",
    "suricata-bug-6207-1_input.pcap#0": "malformed base64 padding ('NA=\\r\\n=Mg')",
    "suricata-bug-6207-2_input.pcap#0": "malformed base64 padding ('NA=\\r\\n=Mg')",
    "suricata-smtp-errors_smtperr.pcap#0": "'--b---' is no close delimiter (RFC 2046 "
    "5.1.1), so the boundary text ends in the base64 body, where binascii stops earlier",
}


@pytest.mark.skipif(not PUBLIC.is_dir(), reason="public captures absent")
@pytest.mark.parametrize("path", public_captures(), ids=lambda p: p.name)
def test_capture_message_matches_email_package(path):
    """Every complete message in the public captures, fed in 1460-byte segments, gives the
    subject, attachments (name, type, decoded size), leaf count and size that the email
    package finds in the whole unstuffed message."""
    cases = capture_messages(path)
    if not cases:
        pytest.skip("no complete message in this capture")
    for case, body, dot_stuffed in cases:
        facts = scan(body, dot_stuffed, [1460] * (len(body) // 1460))
        whole = unstuff(body) if dot_stuffed else body
        if dot_stuffed and whole and not whole.endswith(b"\n"):
            whole += b"\r\n"  # the CRLF before the final dot ends the last line
        assert facts.size == len(whole), case
        if case in DIFFERENT:  # deliberate difference: checked up to here
            continue
        message = email.message_from_bytes(whole, policy=policy.default)
        if not facts.headers_truncated:
            subject = message["subject"]
            assert facts.subject == (None if subject is None else str(subject)), case
        assert our_attachments(facts) == email_attachments(message), case
        assert facts.parts == len(list(leaves(message))), case
        assert facts.received == len(message.get_all("received", [])), case
        assert [(leaf.entity, leaf.content_type) for leaf in facts.leaves] == [
            (number, part.get_content_type())
            for number, part in enumerate(entities(message), start=1)
            if part.get_content_maintype() != "multipart"  # never a leaf, parts or none
        ], case
        assert facts.entities == len(list(entities(message))), case
        for leaf, part in zip(facts.leaves, leaf_entities(message), strict=True):
            if part.get("content-transfer-encoding", "").strip().lower() == "quoted-printable":
                # Zeek's decoding ends the last line with a CRLF, which the email package
                # leaves to the boundary after it
                line_end = 2 if part is not message else 0
                assert leaf.size == len(part.get_payload(decode=True)) + line_end, case
        assert [(a.filename, a.content_type) for a in facts.attachments] == [
            (leaf.filename, leaf.content_type) for leaf in facts.leaves if leaf.attachment
        ], case


# Arkime's expected outputs, tests/pcap/smtp-subject-*.test (arkime/arkime), email.subject.
ARKIME_SUBJECTS = {
    "arkime-smtp-subject-8859-b.pcap": "test å é î ø ü",
    "arkime-smtp-subject-8859-multi.pcap": "4spaces    å é î ø ü     5spaces",
    "arkime-smtp-subject-8859-q.pcap": "é î ø ü" + " " * 185 + "test",
    "arkime-smtp-subject-encoded-empty.pcap": (
        "Can this 10 Second Trick Help Prevent YOUR Heart Attack?"
    ),
    "arkime-smtp-subject-gb2312-b.pcap": "test 测试",
    "arkime-smtp-subject-utf8-mixed.pcap": (
        "这是用空格测试" + " " * 114 + "å é î ø ü" + " " * 78 + "test"
    ),
    "arkime-smtp-subject-utf8-q.pcap": (
        "xxxxxx xxxxxx xx xxxxxxxxx xx-xxxxxxx（ANA）GGL_xxxxxxxxxxxxx_xxxxxx.zip"
    ),
    "arkime-smtp-subject-windows.pcap": "Awesome windows: See What’s Next in charset decoding!",
    # Arkime keeps the folding white space between two encoded words; RFC 2047 6.2 says
    # it is to be ignored, and the email package ignores it too, as we do.
    "arkime-smtp-subject-multi-nospace.pcap": (
        "xxxxxxxxxxxxx: xxxxêxx xxéxxxxxxxxx xxx xxx xxxxxxxxxxx xx xxxxxxxxxxxxxxx - xxxx"
    ),
}


@pytest.mark.skipif(not PUBLIC.is_dir(), reason="public captures absent")
@pytest.mark.parametrize("name", sorted(ARKIME_SUBJECTS))
def test_subject_matches_arkime(name):
    """Decoded subjects from Arkime's charset test captures, fed segment by segment."""
    path = PUBLIC / name
    if not path.exists():
        pytest.skip(f"{name} absent")
    bodies = [b for data, _ in client_streams(path) for b, _, _ in transfers(data)]
    assert len(bodies) == 1
    assert scan(bodies[0], splits=[97] * (len(bodies[0]) // 97)).subject == ARKIME_SUBJECTS[name]


@needs_tshark
@pytest.mark.oracle
@pytest.mark.skipif(not PUBLIC.is_dir(), reason="public captures absent")
@pytest.mark.parametrize("name", sorted(ARKIME_SUBJECTS))
def test_raw_subject_and_message_id_match_tshark(name):
    """subject_raw is the field as on the wire: tshark's imf.subject (which shows folding
    as the two characters \\r\\n). tshark does not decode encoded words."""
    path = PUBLIC / name
    if not path.exists():
        pytest.skip(f"{name} absent")
    rows = fields(path, ["imf.subject", "imf.message_id"], "imf")
    if not rows:
        pytest.skip("tshark dissects no IMF here (the DATA end is not a proper CRLF.CRLF)")
    bodies = [b for data, _ in client_streams(path) for b, _, _ in transfers(data)]
    facts = scan(bodies[0])
    if facts.subject_raw.isascii():  # tshark shows 8-bit bytes its own way
        assert facts.subject_raw.replace("\r\n", "\\r\\n") == rows[0][0]
    if len(rows[0]) > 1 and rows[0][1]:
        assert facts.message_id == rows[0][1].strip()


@pytest.mark.skipif(not PUBLIC.is_dir(), reason="public captures absent")
def test_rfc2231_and_long_filenames_from_captures():
    """Attachment names that need RFC 2231 continuations, as suricata-verify's tests name
    them, next to what the email package says."""
    cases = {
        "suricata-smtp-rfc2231_input.pcap": "smtptest-2021-02-25T13-54-22Z-"
        "aefb2fc1308d62f4b6c74769f69b13ddf80e995fd98ae442f3be499ea928c67f..zip",
        "suricata-smtp-attachment-md5_input.pcap": None,
    }
    for name, expected in cases.items():
        path = PUBLIC / name
        if not path.exists():
            continue
        body = next(b for data, _ in client_streams(path) for b, _, _ in transfers(data))
        facts = scan(body)
        message = email.message_from_bytes(unstuff(body), policy=policy.default)
        names = [n for n, _, _ in email_attachments(message)]
        assert [a.filename for a in facts.attachments] == names
        if expected:
            assert names == [expected]


# -- a Japanese message ---------------------------------------------------------

SUBJECT_JA = "【重要】第２回 会議資料の送付について：ご確認をお願いいたします（株式会社サンプル）"
PDF = bytes(range(256)) * 40


def japanese_message() -> bytes:
    """As Japanese mailers write it: ISO-2022-JP subject in several folded encoded words,
    ISO-2022-JP body with a line starting with a dot, a Shift_JIS RFC 2231 file name, and
    one whose name holds NEC row 13 characters (①), written as CP932 bytes."""
    msg = MIMEMultipart()
    msg["Subject"] = Header(SUBJECT_JA, "iso-2022-jp")
    msg["From"] = formataddr((str(Header("山田 太郎", "iso-2022-jp")), "taro@example.jp"))
    msg["To"] = "hanako@example.jp"
    msg["Message-ID"] = "<20240401.1@example.jp>"
    msg.attach(MIMEText("本文です。\n.から始まる行\n..二つの点\n", "plain", "iso-2022-jp"))
    for name, data in (("会議資料.pdf", PDF), ("見積書①.pdf", PDF[:1001])):
        part = MIMEApplication(data, "pdf")
        encoded = quote(name.encode("cp932"), safe="")
        part["Content-Disposition"] = f"attachment; filename*=shift_jis'ja'{encoded}"
        msg.attach(part)
    return msg.as_bytes(policy=policy.compat32.clone(linesep="\r\n"))


JAPANESE = japanese_message()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.integers(min_value=1, max_value=300), max_size=40))
def test_japanese_message_in_random_splits(sizes):
    """Subject, sender, file names and sizes equal what the email package finds in the
    whole message, however the dot-stuffed DATA is split. The ①-named file is the one
    deliberate difference: email decodes Shift_JIS strictly and loses the ①."""
    facts = scan(stuff(JAPANESE), splits=sizes)
    message = email.message_from_bytes(JAPANESE, policy=policy.default)
    assert facts.subject == SUBJECT_JA == str(message["subject"])
    assert facts.from_ == "山田 太郎 <taro@example.jp>"
    assert facts.message_id == "<20240401.1@example.jp>"
    assert facts.size == len(JAPANESE)
    assert facts.parts == 3
    assert facts.anomalies == []
    parts = [p for p in message.walk() if p.get_filename()]
    assert [a.filename for a in facts.attachments] == ["会議資料.pdf", "見積書①.pdf"]
    assert parts[0].get_filename() == "会議資料.pdf"
    assert "\ufffd" in parts[1].get_filename()
    for ours, theirs in zip(facts.attachments, parts, strict=True):
        assert ours.content_type == "application/pdf"
        assert ours.size == len(theirs.get_payload(decode=True))
        assert ours.encoded_size == len(theirs.get_payload())


# -- size and memory ------------------------------------------------------------


def big_message(blocks: int):
    """A ~50 MB message in ~64 KB pieces, generated on the fly: a dot-stuffed text part and
    a base64 attachment."""
    raw = random.Random(7).randbytes(57 * 840)
    encoded = base64.encodebytes(raw).replace(b"\n", b"\r\n")  # 840 lines of 76
    yield (
        b"From: a@example.com\r\nTo: b@example.com\r\nSubject: big\r\n"
        b'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="=_b"\r\n\r\n'
        b"--=_b\r\nContent-Type: text/plain\r\n\r\n"
        b"hello\r\n..stuffed\r\n"
        b"--=_b\r\nContent-Type: application/octet-stream\r\n"
        b'Content-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename="b.bin"'
        b"\r\n\r\n"
    )
    for _ in range(blocks):
        yield encoded
    yield b"--=_b--"


def test_fifty_megabytes_in_bounded_memory():
    """A 50 MB message fed in 64 KB chunks: the facts are right, and the scanner's memory
    stays small (nothing of the body is kept)."""
    blocks = 800
    raw_block, encoded_block = 57 * 840, 78 * 840
    tracemalloc.start()
    try:
        scanner = MessageScanner()
        total = 0
        for chunk in big_message(blocks):
            total += len(chunk)
            scanner.feed(chunk)
        facts = scanner.finish()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert total > 50_000_000
    assert peak < 5_000_000
    assert facts.size == total - 1 + 2  # one stuffed dot removed, last line's CRLF added
    assert facts.subject == "big"
    assert facts.parts == 2
    [attachment] = facts.attachments
    assert attachment.filename == "b.bin"
    assert attachment.size == blocks * raw_block
    assert attachment.encoded_size == blocks * encoded_block - 2
    assert facts.anomalies == []


# -- edge cases -------------------------------------------------------------------


def test_dot_unstuffing_at_every_split():
    """RFC 5321 4.5.2: the first dot of a line is removed, also at the message start and
    when the CRLF and the dots arrive in different chunks."""
    message = b".start\r\n..two\r\nx\r\n...three\r\n"
    wire = stuff(message)
    for at in range(len(wire) + 1):
        for at2 in range(at, len(wire) + 1, 3):
            facts = scan(wire, splits=[at, at2 - at])
            assert facts.size == len(message)
            assert facts.anomalies == ["missing_header_separator"]


def test_single_leading_dot_is_removed_and_noted():
    facts = scan(b"Subject: x\r\n\r\n.oops\r\nend")
    assert facts.size == len(b"Subject: x\r\n\r\noops\r\nend\r\n")
    assert "unstuffed_leading_dot" in facts.anomalies


def test_final_crlf_fed_or_not_gives_the_same_size():
    message = b"Subject: x\r\n\r\nbody\r\n"
    assert scan(message[:-2]).size == scan(message).size == len(message)
    assert scan(b"").size == 0


def test_bdat_is_not_unstuffed():
    message = b"Subject: x\r\n\r\n..body\r\n"
    assert scan(message, dot_stuffed=False).size == len(message)


@pytest.mark.parametrize(
    ("chunks", "bare"),
    [
        ([b"a\r\nb\r\n"], 0),
        ([b"a\r", b"\nb"], 0),
        ([b"a\n", b"\nb\r\n"], 2),
        ([b"a\r\r\n"], 0),
    ],
)
def test_bare_lf_counted_across_chunks(chunks, bare):
    """RFC 5321 2.3.8 forbids a bare LF; a CR and its LF may come in different chunks."""
    scanner = MessageScanner()
    for chunk in chunks:
        scanner.feed(chunk)
    facts = scanner.finish()
    assert facts.bare_lf == bare
    assert ("bare_lf" in facts.anomalies) == bool(bare)


NESTED = (
    b"Subject: nested\r\nContent-Type: multipart/mixed; boundary=outer\r\n\r\n"
    b"preamble --outer not at line start\r\n"
    b'--outer\r\nContent-Type: multipart/alternative; boundary="inner"\r\n\r\n'
    b"--inner\r\nContent-Type: text/plain\r\n\r\nplain\r\n"
    b"--inner\r\nContent-Type: text/html\r\n\r\n<p>html</p>\r\n"
    b"--inner--\r\nepilogue of inner\r\n"
    b'--outer\r\nContent-Type: image/png; name="a.png"\r\nContent-Transfer-Encoding: base64'
    b"\r\nContent-Disposition: inline\r\n\r\niVBORw0KGgo=\r\n"
    b"--outer\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\n\r\nhi\r\n"
    b"--outerX not a delimiter\r\n"
    b"--outer--   \r\nepilogue\r\n"
)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=40), max_size=30))
def test_nested_multipart_in_random_splits(sizes):
    """Boundaries found across any split; an inline image with a name counts, inline text
    does not, an attached message does (RFC 2046 5.1, 5.2.1)."""
    facts = scan(stuff(NESTED), splits=sizes)
    message = email.message_from_bytes(NESTED, policy=policy.default)
    assert our_attachments(facts) == email_attachments(message)
    assert [(a.filename, a.content_type, a.size) for a in facts.attachments] == [
        ("a.png", "image/png", 8),
        (None, "message/rfc822", len(b"Subject: inner\r\n\r\nhi\r\n--outerX not a delimiter")),
    ]
    assert facts.parts == 4
    assert facts.anomalies == []


def test_outer_boundary_ends_an_unterminated_inner_multipart():
    message = (
        b"Content-Type: multipart/mixed; boundary=o\r\n\r\n--o\r\n"
        b"Content-Type: multipart/mixed; boundary=i\r\n\r\n--i\r\n"
        b"Content-Disposition: attachment; filename=x.txt\r\n\r\nxyz\r\n"
        b"--o\r\nContent-Disposition: attachment; filename=y.txt\r\n\r\nabcd\r\n--o--\r\n"
    )
    facts = scan(message)
    assert [(a.filename, a.size) for a in facts.attachments] == [("x.txt", 3), ("y.txt", 4)]
    assert facts.anomalies == ["unterminated_multipart"]


def test_missing_close_delimiter():
    facts = scan(b"Content-Type: multipart/mixed; boundary=o\r\n\r\n--o\r\n\r\ntext")
    assert facts.parts == 1
    assert facts.anomalies == ["unterminated_multipart"]


def test_digest_parts_default_to_message_rfc822():
    """RFC 2046 5.1.5: in multipart/digest a part without Content-Type is a message."""
    facts = scan(
        b"Content-Type: multipart/digest; boundary=d\r\n\r\n--d\r\n\r\nSubject: a\r\n\r\nx\r\n"
        b"--d--\r\n"
    )
    assert [a.content_type for a in facts.attachments] == ["message/rfc822"]


def test_oversized_header_block_is_cut_but_the_body_still_found():
    filler = b"X-Filler: " + b"y" * 990 + b"\r\n"
    header = b"Subject: early\r\n" + filler * (HEADER_LIMIT // len(filler) + 50)
    message = (
        header + b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
        b"Content-Disposition: attachment; filename=z.txt\r\n\r\nzz\r\n--b--\r\n"
    )
    facts = scan(message, splits=[1000] * (len(message) // 1000))
    assert facts.headers_truncated
    assert facts.subject == "early"
    assert facts.size == len(message)
    assert "header_too_long" in facts.anomalies
    # Fields that do not fit are left out whole; the Content-Type after them still counts.
    assert facts.content_type == "multipart/mixed"
    assert [a.filename for a in facts.attachments] == ["z.txt"]


def test_overlong_single_header_line():
    message = b"Subject: s\r\nX-Long: " + b"a" * (HEADER_LIMIT + 10) + b"\r\nTo: t\r\n\r\nbody"
    facts = scan(message, splits=[4096] * (len(message) // 4096))
    assert (facts.subject, facts.to, facts.headers_truncated) == ("s", "t", True)


def test_body_without_blank_line_after_headers():
    """email.feedparser ends the header block at the first line that is no header."""
    facts = scan(b"Subject: s\r\nhello world\r\nmore")
    assert facts.subject == "s"
    assert facts.anomalies == ["missing_header_separator"]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        # A character split across encoded words: the two halves are one ISO-2022-JP run.
        (b"=?ISO-2022-JP?B?GyRCJUYlOSVI?=\r\n =?ISO-2022-JP?B?RnxLXDhsGyhC?=", "テスト日本語"),
        # NEC row 13 in ISO-2022-JP, as Windows (CP50220) writes it.
        (b"=?ISO-2022-JP?B?GyRCLSEbKEI=?= =?ISO-2022-JP?B?GyRCLWobKEI=?=", "①㈱"),
        ("件名 raw UTF-8".encode(), "件名 raw UTF-8"),
        ("件名 raw Shift_JIS".encode("cp932"), "件名 raw Shift_JIS"),
        ("件名 raw EUC-JP".encode("euc_jp"), "件名 raw EUC-JP"),
        ("件名 raw JIS".encode("iso2022_jp"), "件名 raw JIS"),
        (b"=?utf-8*ja?B?5pel5pys6Kqe?=", "日本語"),  # RFC 2231 language suffix
        (b"=?x-unknown?B?dGVzdA==?=", "test"),
        (b"=?shift_jis?B?h0CHQQ==?=", "①②"),  # CP932 characters under a Shift_JIS label
        (b"Re: =?utf-8?q?caf=C3=A9?= and =?utf-8?b?5pel?=x", "Re: café and 日x"),
        (b"", ""),
    ],
)
def test_subject_decoding(raw, expected):
    facts = scan(b"Subject: " + raw + b"\r\n\r\n")
    assert facts.subject == expected
    assert not any(a.startswith("undecodable") for a in facts.anomalies)


def test_undecodable_subject_is_flagged_not_raised():
    facts = scan(b"Subject: =?utf-8?B?dGVzd?= \xff\xfe\r\n\r\n")
    assert facts.subject is not None
    assert "raw_8bit_header" in facts.anomalies


@pytest.mark.parametrize(
    ("disposition", "expected"),
    [
        (b'attachment; filename="=?ISO-2022-JP?B?GyRCO3FOQRsoQi5wZGY=?="', "資料.pdf"),
        ('attachment; filename="資料.pdf"'.encode(), "資料.pdf"),
        (
            b"attachment; filename*0*=shift_jis''%8E%91%97%BF;\r\n filename*1*=%87%40.pdf",
            "資料①.pdf",
        ),
        (b"attachment; filename*=UTF-8''%E6%97%A5%E6%9C%AC.txt", "日本.txt"),
        (b'attachment; filename*0="a"; filename*1="b.txt"', "ab.txt"),
        (b"attachment; filename=", None),
        (b"attachment", None),
    ],
)
def test_filename_decoding(disposition, expected):
    """RFC 2231 (with continuations and charsets), and the RFC 2047 words in a quoted
    string that RFC 2047 5 forbids but Japanese mailers send."""
    facts = scan(
        b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Disposition: "
        + disposition
        + b"\r\n\r\ndata\r\n--b--\r\n"
    )
    assert [a.filename for a in facts.attachments] == [expected]


# -- fuzzing ----------------------------------------------------------------------

TOKENS = [
    b"\r\n",
    b"\n",
    b".",
    b"..",
    b"--b",
    b"--b--",
    b"--c",
    b"Content-Type: multipart/mixed; boundary=b\r\n",
    b"Content-Type: multipart/digest; boundary=c\r\n",
    b"Content-Type: message/rfc822\r\n",
    b"Content-Transfer-Encoding: base64\r\n",
    b"Content-Disposition: attachment; filename*=x''%FF\r\n",
    b"Subject: =?iso-2022-jp?b?GyRC?=\r\n",
    b"Subject: \xff\x1b$B\r\n",
    b"QUJD=",
    b" ",
    b"\x00",
]


@settings(max_examples=150, deadline=None)
@given(
    st.one_of(st.binary(max_size=600), st.lists(st.sampled_from(TOKENS)).map(b"".join)),
    st.lists(st.integers(min_value=1, max_value=64), max_size=20),
    st.booleans(),
)
def test_fuzz_never_raises(data, sizes, dot_stuffed):
    facts = scan(data, dot_stuffed, sizes)
    assert facts.size >= 0
    assert facts.parts >= 0


# --- A body part's header block is read once (message._part_description) -----------------------

_PART_LINES = [
    b"Content-Type: text/plain; charset=utf-8\r\n",
    b'Content-Type: multipart/mixed; boundary="b1"\r\n',
    b"Content-Type: multipart/digest; boundary=\r\n",
    b"Content-Type: message/rfc822\r\n",
    b"Content-Transfer-Encoding: BASE64 \r\n",
    b'Content-Disposition: attachment; filename="=?utf-8?b?w6k=?=.pdf"\r\n',
    b"Content-Disposition: attachment; filename*=utf-8''%E2%82%AC.txt\r\n",
    b'Content-Type: application/pdf; name="\xe9t\xe9.pdf"\r\n',
    b" folded; x=1\r\n",
    b"X-Other: y\r\n",
    b"broken header\r\n",
    b"\r\n",
]


@given(
    st.lists(st.sampled_from(_PART_LINES) | st.binary(max_size=12), max_size=6).map(b"".join),
    st.booleans(),
    st.booleans(),
)
def test_part_block_read_once_is_read_as_each_time(block, nested, parent_digest):
    from pcapsmtp.smtp import message

    expected = message._block_description(block, nested, parent_digest, None)
    for _ in range(2):  # the second answer from the cache
        got = MessageScanner()._describe_block(block, False, nested, parent_digest)
        assert got == expected
        got[3].append("changed by the caller")  # a fresh list: the cache is not touched


@pytest.mark.parametrize(
    "field",
    [
        b"Subject: =?utf-7?q?+2AA-x?=",
        b"Subject: =?utf-7?b?KzJBQS0=?= =?utf-8?q?y?=",
        b"From: =?UTF-7?Q?+2AA-?= <a@b.example>",
    ],
)
def test_a_charset_decoding_to_a_lone_surrogate_gives_replacement_characters(field):
    """UTF-7 decodes '+2AA-' to a lone surrogate, which is no character and cannot be
    written as UTF-8: it reached the core and the analysis stopped with a traceback."""
    attachment = (
        b'Content-Type: application/octet-stream; name="=?utf-7?q?+2AA-e.exe?="\r\n'
        b'Content-Disposition: attachment; filename="=?utf-7?q?+2AA-e.exe?="\r\n\r\nAAAA\r\n'
    )
    facts = scan(
        field + b"\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n"
        b"--B\r\nContent-Type: text/plain\r\n\r\nhi\r\n--B\r\n" + attachment + b"--B--\r\n"
    )
    shown = repr(facts.subject) + repr(facts.from_) + repr(facts.attachments)
    assert "\ufffd" in shown
    assert not re.search("[\ud800-\udfff]", shown)
    (facts.subject or facts.from_ or "").encode("utf-8")

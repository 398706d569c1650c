"""pcapsmtp.analysis.tlsdecrypt: tshark's plaintext is exactly what each side wrote inside TLS,
record by record, whatever the TCP segmentation; what cannot be decrypted becomes a warning.

The captures here are made by tests/tlsconv.py: OpenSSL's own TLS 1.2 and 1.3 records and key
log, in TCP segments placed on purpose (several records in one segment, a record over many
segments, a command line cut between two records). The lab's captures are in
tests/e2e/test_decrypt.py.
"""

from __future__ import annotations

import ssl
import stat
import struct
from pathlib import Path

import pytest

from pcapsmtp.analysis import Options, analyze, tlsdecrypt
from pcapsmtp.analysis.keylog import KeyLog, read_key_log
from pcapsmtp.analysis.tshark_command import stream_filter, tshark_command
from pcapsmtp.analysis.tshark_export import (
    LINKTYPE_WIRESHARK_UPPER_PDU,
    export_plaintext,
    parse_exported,
)
from pcapsmtp.capture import Frame
from pcapsmtp.smtp.events import AUTH_RESPONSE, END_OF_DATA
from tests.tlsconv import CLIENT, SERVER, Conversation, make_pki
from tests.tshark import needs_tshark

BODY = b"".join(
    b"Line %05d of a long message that needs many TLS records.\r\n" % i for i in range(600)
)
"""About 36 KB: three TLS records, each over many TCP segments."""


def converse(folder: Path, name: str, version, implicit: bool, port: int | None = None):
    """An SMTP session over TLS with the awkward placements real clients produce; returns
    the conversation (capture and key log written)."""
    pki = (folder / "server.pem", folder / "server.key")
    if not pki[0].exists():
        make_pki(folder)
    c = Conversation(
        pki, folder / f"{name}.keylog", version=version, implicit=implicit, server_port=port
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
    c.send(CLIENT, b"EHLO client.", b"example\r\n")  # one line cut between two records
    c.send(SERVER, b"250-mx.example.jp\r\n", b"250-PIPELINING\r\n", b"250 AUTH LOGIN\r\n")
    c.send(CLIENT, b"AUTH LOGIN\r\n")
    c.send(SERVER, b"334 VXNlcm5hbWU6\r\n")
    c.send(CLIENT, b"YWxpY2U=\r\n")
    c.send(SERVER, b"334 UGFzc3dvcmQ6\r\n")
    c.send(CLIENT, b"c2VjcmV0\r\n")
    c.send(SERVER, b"235 2.7.0 Authentication successful\r\n")
    c.send(CLIENT, b"MAIL FROM:<a@client.example>\r\nRCPT TO:<b@example.jp>\r\nDATA\r\n")
    c.send(SERVER, b"250 2.1.0 Ok\r\n", b"250 2.1.5 Ok\r\n", b"354 go ahead\r\n")
    c.send(CLIENT, b"Subject: big\r\n\r\n" + BODY + b".\r\n")
    c.send(SERVER, b"250 2.0.0 Ok: queued as ABC123\r\n")
    # Three records in segments of 7, 60 and 3 bytes, then the rest: every record boundary
    # falls inside a segment.
    c.send(
        CLIENT,
        b"MAIL FROM:<a@client.example>\r\n",
        b"RCPT TO:<b@example.jp>\r\n",
        b"BDAT 5000 LAST\r\n",
        b"x" * 5000,
        sizes=[7, 60, 3],
    )
    c.send(SERVER, b"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.0.0 Ok: queued as DEF456\r\n")
    c.send(CLIENT, b"QUIT\r\n")
    c.send(SERVER, b"221 2.0.0 Bye\r\n")
    c.close()
    c.write(folder / f"{name}.pcap")
    return c


CASES = {
    "starttls-1.2": (ssl.TLSVersion.TLSv1_2, False),
    "starttls-1.3": (ssl.TLSVersion.TLSv1_3, False),
    "implicit-1.2": (ssl.TLSVersion.TLSv1_2, True),
    "implicit-1.3": (ssl.TLSVersion.TLSv1_3, True),
}


@pytest.fixture(scope="module")
def conversations(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tls")
    return {
        name: converse(folder, name, version, implicit)
        for name, (version, implicit) in CASES.items()
    }


def _path(conversation: Conversation) -> str:
    return str(conversation.keylog.with_suffix(".pcap"))


# -- the bytes ---------------------------------------------------------------------------


@needs_tshark
@pytest.mark.parametrize("name", CASES)
def test_plaintext_is_what_each_side_wrote(conversations, name):
    """Per direction, the records' plaintext joined is the stream each side wrote, and each
    write is complete in the frame that carried its last byte."""
    conversation = conversations[name]
    path = _path(conversation)
    [session] = analyze([path]).sessions
    command = tshark_command(
        tlsdecrypt.find_tshark(), path, [session], str(conversation.keylog), (4, 0)
    )
    got = {CLIENT: b"", SERVER: b""}
    ends = {CLIENT: {}, SERVER: {}}
    for record in export_plaintext(command, timeout=120):
        sender = CLIENT if record.sport == conversation.client_port else SERVER
        got[sender] += record.data
        ends[sender][len(got[sender])] = record.frame
    for sender in (CLIENT, SERVER):
        assert got[sender] == conversation.stream(sender)
        total = 0
        for frame, data in conversation.plain[sender]:
            total += len(data)
            assert ends[sender][total] == frame


@needs_tshark
@pytest.mark.parametrize("name", CASES)
def test_decrypted_session_is_analysed_like_a_clear_one(conversations, name):
    """Commands, replies, frames, AUTH redaction, transactions and outcome from the
    decrypted bytes; entries from inside TLS are marked."""
    conversation = conversations[name]
    analysis = analyze([_path(conversation)], Options(keylog=str(conversation.keylog)))
    [session] = analysis.sessions
    assert analysis.captures[0].warnings == []
    inside = [
        "EHLO",
        "AUTH",
        AUTH_RESPONSE,
        AUTH_RESPONSE,
        "MAIL",
        "RCPT",
        "DATA",
        END_OF_DATA,
        "MAIL",
        "RCPT",
        "BDAT",
        "QUIT",
    ]
    codes = [250, 334, 334, 235, 250, 250, 354, 250, 250, 250, 250, 221]
    steps = [(c.verb, c.reply.code if c.reply else None) for c in session.commands]
    clear = [] if CASES[name][1] else [("EHLO", 250), ("STARTTLS", 220)]
    assert steps == clear + list(zip(inside, codes, strict=True))
    assert session.greeting.code == 220
    assert [(t.mail_from, t.queue_id, t.outcome) for t in session.transactions] == [
        ("a@client.example", "ABC123", "delivered"),
        ("a@client.example", "DEF456", "delivered"),
    ]
    assert session.transactions[0].size == len(b"Subject: big\r\n\r\n" + BODY)
    assert session.transactions[0].message.subject == "big"
    assert session.transactions[1].size == 5000
    assert session.outcome == "delivered"
    assert session.tls.decrypted and not session.encrypted
    assert [a.code for a in session.auth] == [235]
    written = [frame for frame, _ in conversation.plain[CLIENT]]
    assert [c.frame for c in session.commands if c.verb == "QUIT"] == written[-1:]
    after = [e for e in session.dialogue if e.frame > session.tls.frame]
    before = [e for e in session.dialogue if e.frame < session.tls.frame]
    assert after and all(e.decrypted for e in after)
    assert not any(e.decrypted for e in before)
    texts = " ".join(e.text for e in session.dialogue)
    assert "YWxpY2U" not in texts and "c2VjcmV0" not in texts


@needs_tshark
def test_implicit_tls_on_another_port(tmp_path):
    """Port 10465 is no TLS port to tshark: it is told (decode as TLS, SMTP inside)."""
    conversation = converse(tmp_path, "odd", ssl.TLSVersion.TLSv1_3, True, port=10465)
    analysis = analyze(
        [_path(conversation)], Options(extra_ports=(10465,), keylog=str(conversation.keylog))
    )
    [session] = analysis.sessions
    assert session.outcome == "delivered", analysis.captures[0].warnings
    assert session.tls.mode == "implicit" and session.tls.decrypted


@needs_tshark
def test_starttls_on_port_2525_with_keys_from_a_comment(public_capture, tmp_path):
    """A public STARTTLS capture on port 2525 (SMTP found by content, no --port); its key
    is in the capture comment, copied into a key log here."""
    path = public_capture("wireshark-notes-smtp2525-ssl.pcapng")
    keylog = tmp_path / "2525.keylog"
    keylog.write_text(
        "CLIENT_RANDOM 80C495213696521745F61A51AF8F605F84FE0AF7459A216790B9BA1C8C75240E "
        "CD9352257C8F67CE838300427A5637B1DB749AC7C4691C8A1ED513D85B7C456580072DD19FF159CFA"
        "C1577F3D43BC501\n"
    )
    [session] = analyze([str(path)], Options(keylog=str(keylog))).sessions
    verbs = [c.verb for c in session.commands]
    assert verbs == ["EHLO", "STARTTLS", "EHLO", "MAIL", "HELP"]
    assert session.tls.decrypted


# -- what goes wrong ---------------------------------------------------------------------


@needs_tshark
def test_timeout_keeps_what_came_and_warns(conversations, monkeypatch):
    monkeypatch.setattr(tlsdecrypt, "TIMEOUT_S", 0.0)
    monkeypatch.setattr(tlsdecrypt, "TIMEOUT_PER_MB_S", 0.0)
    conversation = conversations["starttls-1.3"]
    analysis = analyze([_path(conversation)], Options(keylog=str(conversation.keylog)))
    warnings = analysis.captures[0].warnings
    assert any("did not finish decrypting within 0 s" in w for w in warnings), warnings


def _fake_tshark(folder: Path, script: str) -> Path:
    """A program named tshark that answers -v like tshark and does ``script`` otherwise."""
    folder.mkdir(exist_ok=True)
    path = folder / "tshark"
    path.write_text(
        "#!/bin/sh\n"
        'if [ "$1" = "-v" ]; then echo "TShark (Wireshark) 4.0.17."; exit 0; fi\n' + script
    )
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_tshark_failing_is_a_warning(conversations, tmp_path, monkeypatch):
    fake = _fake_tshark(tmp_path / "bin", 'echo "tshark: the sky fell" >&2\nexit 2\n')
    monkeypatch.chdir(tmp_path)  # pyshark also looks for a config.ini in the current folder
    monkeypatch.setenv("PATH", str(fake.parent))
    conversation = conversations["implicit-1.2"]
    analysis = analyze([_path(conversation)], Options(keylog=str(conversation.keylog)))
    [session] = analysis.sessions
    assert session.outcome == "encrypted"
    assert (
        "TLS decryption: tshark failed (exit status 2): tshark: the sky fell"
        in analysis.captures[0].warnings
    )


def test_tshark_writing_garbage_is_a_warning(conversations, tmp_path, monkeypatch):
    fake = _fake_tshark(tmp_path / "bin", "printf '\\n\\r\\r\\nnot pcapng at all'\nexit 0\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PATH", str(fake.parent))
    conversation = conversations["implicit-1.2"]
    analysis = analyze([_path(conversation)], Options(keylog=str(conversation.keylog)))
    assert analysis.sessions[0].outcome == "encrypted"
    assert any("output could not be read" in w for w in analysis.captures[0].warnings)


# -- pieces ------------------------------------------------------------------------------


def test_stream_filter():
    """Wireshark 4 separates set elements with commas and knows ranges; 3 wants spaces."""
    assert stream_filter([7, 1, 2, 3, 9, 10], (4, 0)) == "tcp.stream in {1..3,7,9..10}"
    assert stream_filter([0], (4, 2)) == "tcp.stream in {0}"
    assert stream_filter([3, 1, 2], (3, 6)) == "tcp.stream in {1 2 3}"


def test_stream_filter_stays_short():
    """Every other stream of 40000: ranges take in the streams between them."""
    streams = range(0, 40000, 2)
    text = stream_filter(streams, (4, 0), limit=1000)
    assert len(text) <= 1000
    inside = set()
    for part in text.removeprefix("tcp.stream in {").removesuffix("}").split(","):
        first, _, last = part.partition("..")
        inside.update(range(int(first), int(last or first) + 1))
    assert set(streams) <= inside
    assert stream_filter(streams, (3, 6), limit=1000) == "tcp.stream >= 0 && tcp.stream <= 39998"


def test_parse_exported_ipv6_and_unknown_tags():
    def tag(number: int, value: bytes) -> bytes:
        return struct.pack(">HH", number, len(value)) + value

    src, dst = bytes(15) + b"\x01", bytes(15) + b"\x02"
    data = (
        tag(12, b"smtp")
        + tag(22, src)
        + tag(23, dst)
        + tag(24, struct.pack(">I", 2))
        + tag(25, struct.pack(">I", 40000))
        + tag(26, struct.pack(">I", 25))
        + tag(34, b"future tag, ignored")
        + tag(30, struct.pack(">I", 17))
        + tag(0, b"")
        + b"EHLO x\r\n"
    )
    frame = Frame(3, 123, LINKTYPE_WIRESHARK_UPPER_PDU, data, len(data))
    record = parse_exported(frame)
    assert (record.frame, record.time_ns, record.src, record.sport) == (17, 123, src, 40000)
    assert (record.dst, record.dport, record.data) == (dst, 25, b"EHLO x\r\n")
    assert parse_exported(Frame(1, 0, 1, data, len(data))) is None
    assert parse_exported(Frame(1, 0, LINKTYPE_WIRESHARK_UPPER_PDU, data[:20], 20)) is None


def test_read_key_log_counts_and_matches():
    random = bytes(range(32))
    keys = KeyLog()
    lines = [
        b"# TLS secrets log file\n",
        b"\n",
        b"CLIENT_RANDOM " + random.hex().encode() + b" " + b"ab" * 48 + b"\n",
        b"CLIENT_TRAFFIC_SECRET_0 " + b"cd" * 32 + b" " + b"ef" * 48 + b"\n",
        b"CLIENT_RANDOM 12345 garbage\n",
        b"\x00\xff\xfe binary junk\n",
    ]
    read_key_log(lines, {random}, keys)
    assert (keys.lines, keys.damaged, keys.randoms) == (4, 2, {random})


def test_no_key_log_no_tshark(conversations, monkeypatch):
    """Without keys nothing runs: tshark is not even looked for."""
    monkeypatch.setattr(tlsdecrypt, "find_tshark", lambda: pytest.fail("tshark looked for"))
    [session] = analyze([_path(conversations["starttls-1.2"])]).sessions
    assert session.outcome == "encrypted"


@needs_tshark
def test_failures_inside_tls_become_findings(tmp_path):
    """What the key log is for: AUTH refused with 535 and a message refused for its size
    with 552, both inside TLS, are findings with the key log and unknown without it."""
    (tmp_path / "pki").mkdir()
    c = Conversation(make_pki(tmp_path / "pki"), tmp_path / "fail.keylog")
    c.clear(SERVER, b"220 mx.example.jp ESMTP\r\n")
    c.clear(CLIENT, b"EHLO client.example\r\n")
    c.clear(SERVER, b"250-mx.example.jp\r\n250-SIZE 20000\r\n250 STARTTLS\r\n")
    c.clear(CLIENT, b"STARTTLS\r\n")
    c.clear(SERVER, b"220 2.0.0 Ready to start TLS\r\n")
    c.start_tls()
    for sender, data in (
        (CLIENT, b"EHLO client.example\r\n"),
        (SERVER, b"250-mx.example.jp\r\n250-SIZE 20000\r\n250 AUTH PLAIN\r\n"),
        (CLIENT, b"AUTH PLAIN AGFsaWNlAHdyb25n\r\n"),
        (SERVER, b"535 5.7.8 Error: authentication failed\r\n"),
        (CLIENT, b"MAIL FROM:<a@client.example> SIZE=50000\r\n"),
        (SERVER, b"552 5.3.4 Message size exceeds fixed limit\r\n"),
        (CLIENT, b"QUIT\r\n"),
        (SERVER, b"221 2.0.0 Bye\r\n"),
    ):
        c.send(sender, data)
    c.close()
    path = str(c.write(tmp_path / "fail.pcap"))
    with_keys = analyze([path], Options(keylog=str(c.keylog)))
    assert {"auth-failed", "size-exceeded"} <= {f.code for f in with_keys.findings}
    assert with_keys.sessions[0].outcome == "rejected"
    without = analyze([path])
    assert not {"auth-failed", "size-exceeded"} & {f.code for f in without.findings}
    assert without.sessions[0].outcome == "encrypted"
    shown = " ".join(f.summary + f.detail for f in with_keys.findings)
    assert "AGFsaWNlAHdyb25n" not in shown

"""A peer repeating the AUTH credentials after the exchange sent them: the server's echo in
a reply (535 with the blob, a 334 quoting the user name, a reply naming the password), a
client typing its password into a later line. Each repeat is redacted in the text and told
by a ``Redacted`` event whose ranges are the repeated bytes on the wire."""

from __future__ import annotations

import base64

import pytest

from pcapsmtp.smtp.auth_secrets import MIN_LENGTH, AuthSecrets, wire_offset
from pcapsmtp.smtp.events import (
    AUTH_RESPONSE,
    CLIENT,
    REDACTED,
    SERVER,
    Anomaly,
    Command,
    Redacted,
    Reply,
)
from tests.smtp.test_dialogue import Playbook

USER, PASSWORD = "alice@example.org", "s3cret-Pass"
BLOB = base64.b64encode(f"\0{USER}\0{PASSWORD}".encode()).decode()


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def secrets(mechanism: str, *responses: str) -> AuthSecrets:
    found = AuthSecrets()
    found.start(mechanism)
    for response in responses:
        found.add(response)
    return found


@pytest.mark.parametrize(
    ("mechanism", "responses", "hidden", "names"),
    [
        ("PLAIN", [BLOB], [BLOB, PASSWORD], [USER]),
        ("LOGIN", [b64(USER), b64(PASSWORD)], [b64(USER), b64(PASSWORD), PASSWORD], [USER]),
        ("LOGIN", [USER, PASSWORD], [USER, PASSWORD], []),  # clear text after 334
        (
            "XOAUTH2",
            [b64(f"user={USER}\x01auth=Bearer ya29.tok-en\x01\x01")],
            ["Bearer ya29.tok-en", "ya29.tok-en"],
            [USER],
        ),
        (
            "OAUTHBEARER",
            [b64(f"n,a={USER},\x01host=mx\x01port=587\x01auth=Bearer ya29.tok-en\x01\x01")],
            ["ya29.tok-en"],
            [USER],
        ),
        (
            "SCRAM-SHA-256",
            [b64(f"n,,n={USER},r=nonce123"), b64("c=biws,r=nonce123abc,p=cHJvb2YtYnl0ZXM=")],
            ["cHJvb2YtYnl0ZXM="],
            [USER],
        ),
        (
            "CRAM-MD5",
            [b64(f"{USER} b913a602c7eda7a495b4e6e7334d3890")],
            ["b913a602c7eda7a495b4e6e7334d3890"],
            [USER],
        ),
        ("NTLM", [b64("NTLMSSP\0\3\0\0\0" + PASSWORD)], [b64("NTLMSSP\0\3\0\0\0" + PASSWORD)], []),
    ],
)
def test_what_each_mechanism_keeps(mechanism, responses, hidden, names):
    found = secrets(mechanism, *responses)
    for value in hidden + names:
        assert found.scrub(f"535 no: {value}.")[0] == f"535 no: {REDACTED}."
    found.end_exchange()
    for value in hidden:
        assert found.scrub(f"550 {value}")[0] == f"550 {REDACTED}", "secrets stay searched"
    for value in names:
        assert found.scrub(f"550 not owned by user {value}")[1] == [], "names only in the exchange"


def test_values_under_the_minimum_length_are_not_searched():
    """A 1-3 character value turns up in ordinary replies (codes, "Ok", "for")."""
    short = "x" * (MIN_LENGTH - 1)
    found = secrets("PLAIN", base64.b64encode(f"\0ab\0{short}".encode()).decode())
    assert found.scrub(f"250 {short} ab ok")[1] == []
    found = secrets("LOGIN", b64("ab"), b64("y" * MIN_LENGTH))
    assert found.scrub(f"535 bad {'y' * MIN_LENGTH}")[0] == f"535 bad {REDACTED}"


def test_only_whole_tokens_are_redacted():
    """A password that begins an address (a public capture: '1234567' and
    MAIL FROM:<1234567899@aol.com>) leaves the address alone."""
    found = secrets("PLAIN", base64.b64encode(b"\x00123456789@aol.com\x001234567").decode())
    found.end_exchange()
    assert found.scrub("FROM:<1234567899@aol.com>")[1] == []
    assert found.scrub("pw=1234567;")[0] == f"pw={REDACTED};"
    assert found.scrub("\\xff1234567\\xfe")[0] == f"\\xff{REDACTED}\\xfe", (
        "after a byte shown \\xNN"
    )


def test_a_cancel_keeps_nothing():
    found = secrets("LOGIN", "*")
    assert found.scrub("501 * cancelled") == ("501 * cancelled", [])


def test_wire_offsets_count_bytes_not_characters():
    text = "é \\xff x"
    assert wire_offset(text, text.rindex("x")) == len("é ".encode()) + 1 + 1


def _echoed(play: Playbook, sent: bytes) -> list[bytes]:
    """The wire bytes each Redacted event of ``play`` points at, ``sent`` being what the
    server sent (its stream from offset 0)."""
    return [
        sent[start:end]
        for event in play.of(Redacted)
        if event.sender == SERVER
        for start, end in event.ranges
    ]


def test_a_server_echoing_the_blob_in_its_535_is_redacted():
    greeting = b"220 mx\r\n"
    echo = f"535 5.7.8 \xe9 bad credentials {BLOB} for {USER}\r\n".encode()
    play = Playbook().server(greeting).client(f"AUTH PLAIN {BLOB}\r\n".encode()).server(echo)
    [reply] = [r for r in play.of(Reply) if r.code == 535]
    assert reply.lines == [f"5.7.8 \xe9 bad credentials {REDACTED} for {REDACTED}"]
    assert _echoed(play, greeting + echo) == [BLOB.encode(), USER.encode()]
    assert BLOB not in repr(play.events) and USER not in repr(play.events)


def test_a_334_quoting_the_user_name_and_a_multiline_reply_naming_the_password():
    sent = b"220 mx\r\n"
    play = Playbook().server(sent).client(b"AUTH LOGIN\r\n")
    for line in (b"334 VXNlcm5hbWU6\r\n", f"334 {b64(USER)} {USER}\r\n".encode()):
        play.server(line)
        sent += line
        play.client(f"{b64(USER) if line.startswith(b'334 V') else b64(PASSWORD)}\r\n".encode())
    last = f"535-5.7.8 user {USER}\r\n535 5.7.8 password '{PASSWORD}'\r\n".encode()
    play.server(last)
    assert [r.lines for r in play.of(Reply)][-2:] == [
        [f"{REDACTED} {REDACTED}"],
        [f"5.7.8 user {REDACTED}", f"5.7.8 password '{REDACTED}'"],
    ]
    assert _echoed(play, sent + last) == [
        b64(USER).encode(),
        USER.encode(),
        USER.encode(),
        PASSWORD.encode(),
    ]


def test_after_the_exchange_the_password_stays_secret_and_the_user_name_does_not():
    play = Playbook().server(b"220 mx\r\n").client(f"AUTH PLAIN {BLOB}\r\n".encode())
    play.server(b"235 2.7.0 ok\r\n").client(f"MAIL FROM:<{USER}> {PASSWORD}\r\n".encode())
    play.server(f"553 5.7.1 <{USER}>: not owned by user {USER} ({PASSWORD})\r\n".encode())
    mail = play.of(Command)[-1]
    assert mail.argument == f"FROM:<{USER}> {REDACTED}"
    assert play.of(Reply)[-1].lines == [f"5.7.1 <{USER}>: not owned by user {USER} ({REDACTED})"]
    [client] = [e for e in play.of(Redacted) if e.sender == CLIENT]
    start = len(f"AUTH PLAIN {BLOB}\r\nMAIL FROM:<{USER}> ")
    assert client.ranges == ((start, start + len(PASSWORD)),)


def test_lines_that_are_no_reply_and_a_last_reply_without_line_end():
    play = Playbook().server(b"220 mx\r\n").client(f"AUTH PLAIN {BLOB}\r\n".encode())
    play.server(f"235 ok\r\nlast login {PASSWORD}\r\n".encode())
    play.client(b"QUIT\r\n").server(f"221 bye {PASSWORD}".encode())
    play.dialogue.finish(99, 99_000)
    play.events += play.dialogue.take()
    details = [a.detail for a in play.of(Anomaly)]
    assert f"last login {REDACTED}" in details and f"221 bye {REDACTED}" in details
    assert PASSWORD not in repr(play.events)


def test_an_echo_cut_by_the_snap_length_is_redacted_from_the_start_it_shows():
    play = Playbook().server(b"220 mx\r\n").client(f"AUTH PLAIN {BLOB}\r\n".encode())
    play.server(f"535 5.7.8 bad {BLOB[:12]}".encode()).gap(SERVER, 30, "snaplen")
    [reply] = [r for r in play.of(Reply) if r.code == 535]
    assert reply.lines == [f"5.7.8 bad {REDACTED}"] and reply.truncated
    start = len(b"220 mx\r\n535 5.7.8 bad ")
    assert [e.ranges for e in play.of(Redacted)] == [((start, start + 12),)]


@pytest.mark.parametrize(
    ("before", "after"),
    [
        (f"AUTH PLAIN {BLOB[:10]}", BLOB[20:]),
        ("AUTH PL", f"AIN {BLOB}"),
        ("AUTH", f" PLAIN {BLOB}"),
    ],
)
def test_an_auth_line_cut_by_a_gap_hides_both_its_ends(before, after):
    """Bytes the capture lacks inside an AUTH line: what was read before them is a
    (truncated) AUTH line, what follows them an answer, both secret, not a skipped line
    whose text an anomaly would quote."""
    play = Playbook().server(b"220 mx\r\n").client(before.encode()).gap(CLIENT, 10)
    play.client(f"{after}\r\n".encode()).server(b"235 2.7.0 ok\r\n").client(b"QUIT\r\n")
    assert BLOB[20:] not in repr(play.events) and BLOB[:10] not in repr(play.events)
    auth, rest = play.of(Command)[:2]
    assert auth.verb == "AUTH" and auth.truncated and rest.verb == AUTH_RESPONSE and rest.secret
    assert play.of(Command)[-1].verb == "QUIT"


def test_an_answer_to_334_cut_by_a_gap_hides_both_its_ends():
    play = Playbook().server(b"220 mx\r\n").client(b"AUTH LOGIN\r\n")
    play.server(b"334 VXNlcm5hbWU6\r\n").client(b"YWxpY2U").gap(CLIENT, 10).client(b"ZQ==\r\n")
    commands = play.of(Command)
    assert [(c.verb, c.secret) for c in commands] == [
        ("AUTH", False),
        (AUTH_RESPONSE, True),
        (AUTH_RESPONSE, True),
    ]
    assert (commands[1].offset, commands[1].truncated) == (len(b"AUTH LOGIN\r\n"), True)

"""Captures whose AUTH credentials a server (or the client itself) repeats after the
exchange sent them, one per mechanism and wire shape, and every form those credentials can
take in an output: what ``test_credentials.py`` searches every output for.

Each capture is a real pcap (``tests.conversation.Conversation``: checksums, sequence and
acknowledgement numbers right), built at test time: no lab server echoes credentials.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable
from pathlib import Path

import dpkt

from tests.conversation import Conversation

USER = "alice.pw-user@example.org"
PASSWORD = "Sup3r-Secret-Passw0rd"
TOKEN = "ya29.A0ARrdaM-token-Zx81Qq"
CRAM_DIGEST = hmac.new(PASSWORD.encode(), b"<1896.697170952@mx.example>", hashlib.md5).hexdigest()
SCRAM_PROOF = base64.b64encode(hashlib.sha256(PASSWORD.encode()).digest()).decode()
NTLM_BLOB = b"NTLMSSP\x00\x03\x00\x00\x00" + "alice".encode("utf-16-le") + PASSWORD.encode()
SENDER, RECIPIENT = "bob@example.net", "carol@example.com"
"""The envelope is not the AUTH user: the user name may be searched for everywhere."""


def b64(data: str | bytes) -> str:
    return base64.b64encode(data.encode() if isinstance(data, str) else data).decode()


PLAIN = b64(f"\0{USER}\0{PASSWORD}")
XOAUTH2 = b64(f"user={USER}\x01auth=Bearer {TOKEN}\x01\x01")
OAUTHBEARER = b64(f"n,a={USER},\x01host=mx.example\x01port=587\x01auth=Bearer {TOKEN}\x01\x01")
SCRAM_FIRST = b64(f"n,,n={USER},r=fyko+d2lbbFgONRv9qkxdawL")
SCRAM_FINAL = b64(f"c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p={SCRAM_PROOF}")
CRAM = b64(f"{USER} {CRAM_DIGEST}")
XOAUTH2_ERROR = b64('{"status":"401","schemes":"bearer"}')
NTLM = b64(NTLM_BLOB)
GSSAPI = b64(b"\x60\x82\x02\x00" + TOKEN.encode() * 2)


def secret_forms() -> list[bytes]:
    """Every form of the credentials an output could show: in clear, their base64 (each
    SASL line as sent), hex (lower and upper case, and spaced as a hex dump) and ``\\xNN``
    escaped."""
    clear = [USER, PASSWORD, TOKEN, CRAM_DIGEST, SCRAM_PROOF]
    lines = [PLAIN, XOAUTH2, OAUTHBEARER, SCRAM_FINAL, CRAM, NTLM, GSSAPI, b64(USER)]
    lines.append(b64(PASSWORD))
    forms = [value.encode() for value in clear + lines]
    forms += [GAP_LINE[len("AUTH PLAIN ") : GAP[0]], GAP_LINE[GAP[1] : -2]]
    for value in (PASSWORD, TOKEN, PLAIN):
        raw = value.encode()
        forms += [raw.hex().encode(), raw.hex().upper().encode(), raw.hex(" ").encode()]
        forms.append("".join(f"\\x{b:02x}" for b in raw).encode())
    return forms


def _opening(c: Conversation) -> None:
    c.handshake()
    c.say(
        ("S", b"220 mx.example ESMTP\r\n"),
        ("C", b"EHLO client.example\r\n"),
        ("S", b"250-mx.example\r\n250-PIPELINING\r\n250-CHUNKING\r\n250 AUTH PLAIN LOGIN\r\n"),
    )


def _mail(c: Conversation, bdat: bool = False) -> None:
    c.say(
        ("C", f"MAIL FROM:<{SENDER}>\r\n".encode()),
        ("S", b"250 2.1.0 Ok\r\n"),
        ("C", f"RCPT TO:<{RECIPIENT}>\r\n".encode()),
        ("S", b"250 2.1.5 Ok\r\n"),
    )
    body = b"Subject: hello\r\n\r\nhi\r\n"
    if bdat:
        c.say(
            ("C", b"BDAT %d LAST\r\n" % len(body) + body),
            ("S", b"250 2.0.0 Ok: queued as 4Xz9\r\n"),
        )
    else:
        c.say(
            ("C", b"DATA\r\n"),
            ("S", b"354 End data with <CR><LF>.<CR><LF>\r\n"),
            ("C", body + b".\r\n"),
            ("S", b"250 2.0.0 Ok: queued as 4Xz9\r\n"),
        )


def _end(c: Conversation) -> None:
    c.say(("C", b"QUIT\r\n"), ("S", b"221 2.0.0 Bye\r\n"))
    c.close()


EXCHANGES: dict[str, list[str]] = {
    "plain-inline": [
        f"AUTH PLAIN {PLAIN}",
        f"535 5.7.8 Error: authentication failed: bad credentials {PLAIN}",
        f"auth\tplain\t{PLAIN}",
        f"235 2.7.0 Authentication successful for {USER}",
    ],
    "plain-after-334": [
        "AUTH PLAIN",
        "334 ",
        PLAIN,
        f"535-5.7.8 user {USER}\r\n535 5.7.8 password '{PASSWORD}' rejected",
    ],
    "login": [
        "AUTH LOGIN",
        "334 VXNlcm5hbWU6",
        b64(USER),
        f"334 {b64(USER)} UGFzc3dvcmQ6",
        b64(PASSWORD),
        f"535 5.7.8 {USER}: password {PASSWORD} is wrong",
    ],
    "login-initial-lowercase-tabs": [
        f"auth\tlogin\t{b64(USER)}",
        "334 UGFzc3dvcmQ6",
        b64(PASSWORD),
        f"235 2.7.0 welcome {USER} ({b64(PASSWORD)})",
    ],
    "cram-md5": [
        "AUTH CRAM-MD5",
        f"334 {b64('<1896.697170952@mx.example>')}",
        CRAM,
        f"535 5.7.8 no: {CRAM} / {CRAM_DIGEST} for {USER}",
    ],
    "xoauth2": [
        f"AUTH XOAUTH2 {XOAUTH2}",
        f"334 {XOAUTH2_ERROR}",
        "",
        f"535 5.7.8 token {TOKEN} of {USER} expired",
    ],
    "oauthbearer": [
        f"AUTH OAUTHBEARER {OAUTHBEARER}",
        f"235 2.7.0 Bearer {TOKEN} accepted for {USER}",
    ],
    "scram": [
        f"AUTH SCRAM-SHA-256 {SCRAM_FIRST}",
        f"334 {b64('r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096')}",
        SCRAM_FINAL,
        f"535 5.7.8 proof p={SCRAM_PROOF} of {USER} is invalid",
    ],
    "ntlm": [
        f"AUTH NTLM {b64(b'NTLMSSP' + bytes(9))}",
        f"334 {b64(b'NTLMSSP' + bytes([0, 2]) + bytes(20))}",
        NTLM,
        f"535 5.7.8 could not verify {NTLM}",
    ],
    "gssapi": ["AUTH GSSAPI", "334 ", GSSAPI, f"535 5.7.8 bad ticket {GSSAPI}"],
    "cancelled-then-echo": [
        "AUTH LOGIN",
        "334 VXNlcm5hbWU6",
        "*",
        "501 5.7.0 Authentication aborted",
        f"AUTH PLAIN {PLAIN}",
        f"535 5.7.8 {PASSWORD}",
    ],
}
"""The AUTH exchanges said in turn (client first), each line then CR LF; a message follows
(sent with BDAT after the one whose name says "tabs")."""


def _split_segments(c: Conversation) -> None:
    line = f"AUTH PLAIN {PLAIN}\r\n".encode()
    echo = f"535 5.7.8 bad credentials {PLAIN} for {USER}\r\n".encode()
    for part in (line[:14], line[14:30], line[30:]):
        c.send("C", part)
    c.send("S", echo[:40])
    c.send("S", echo[40:])
    _mail(c)


def _retransmission_differs(c: Conversation) -> None:
    """The client's AUTH segment sent twice, the second copy different; the server's echo
    too: every copy of the bytes is overwritten in the export."""
    line = f"AUTH PLAIN {PLAIN}\r\n".encode()
    other = f"AUTH PLAIN {PLAIN[::-1]}\r\n".encode()
    echo = f"535 5.7.8 bad credentials {PLAIN}\r\n".encode()
    first = c.send("C", line)
    again = dpkt.ip.IP(bytes(first))
    again.data.data = other
    again.data.sum = 0
    again.sum = 0
    again = dpkt.ip.IP(bytes(again))
    c.add(again)
    reply = c.send("S", echo)
    c.add(dpkt.ip.IP(bytes(reply)))
    _mail(c)


def _pipelined(c: Conversation) -> None:
    c.say(
        (
            "C",
            f"AUTH PLAIN {PLAIN}\r\nMAIL FROM:<{SENDER}>\r\nRCPT TO:<{RECIPIENT}>\r\n".encode(),
        ),
        (
            "S",
            f"535 5.7.8 {PLAIN} refused\r\n503 5.5.1 auth first ({PASSWORD})\r\n"
            f"503 5.5.1 auth first\r\n".encode(),
        ),
    )
    _end(c)


def _echo_later(c: Conversation) -> None:
    """The exchange succeeded; a later reply and a later client line repeat the password,
    a line that is no reply at all repeats the blob, and the last reply has no line end."""
    c.say(
        ("C", f"AUTH PLAIN {PLAIN}\r\n".encode()),
        ("S", b"235 2.7.0 Authentication successful\r\n"),
        ("C", f"MAIL FROM:<{SENDER}> {PASSWORD}\r\n".encode()),
        ("S", f"555 5.5.4 unknown parameter {PASSWORD}\r\n".encode()),
        ("C", f"{PASSWORD}\r\n".encode()),
        ("S", f"500 5.5.2 unknown command {PASSWORD}\r\nlast login {PLAIN}\r\n".encode()),
        ("C", b"NOOP\r\n"),
        ("S", f"250 \xff\xfe ok {PASSWORD} \xe9t\xe9\r\n".encode("latin-1")),
        ("C", b"QUIT\r\n"),
        ("S", f"221 2.0.0 Bye {PASSWORD}".encode()),
    )
    c.close()


GAP_LINE = f"AUTH PLAIN {PLAIN}\r\n".encode()
GAP = (20, 28)
"""Bytes of the AUTH line the capture of scenario gap-in-auth-line lacks."""


def _gap_in_auth_line(c: Conversation) -> None:
    """Bytes the capture lacks inside the AUTH line: its two ends are credentials too."""
    c.send("C", GAP_LINE[: GAP[0]])
    c._seq["C"] += GAP[1] - GAP[0]
    c.send("C", GAP_LINE[GAP[1] :])
    c.say(("S", b"535 5.7.8 Error: authentication failed\r\n"))
    _mail(c)


SCENARIOS: dict[str, Callable[[Conversation], None]] = {
    "gap-in-auth-line": _gap_in_auth_line,
    "split-segments": _split_segments,
    "retransmission-differs": _retransmission_differs,
    "pipelined": _pipelined,
    "echo-later": _echo_later,
}
"""The scenarios that are more than an exchange of lines (``EXCHANGES``)."""
NAMES = sorted([*EXCHANGES, *SCENARIOS])


def write_scenario(name: str, folder: Path) -> Path:
    """The capture of scenario ``name`` (the server echoes what it was sent), in ``folder``."""
    c = Conversation(dport=587)
    _opening(c)
    if name in SCENARIOS:
        SCENARIOS[name](c)
    else:
        lines = EXCHANGES[name]
        c.say(*(("CS"[i % 2], f"{line}\r\n".encode()) for i, line in enumerate(lines)))
        _mail(c, bdat="tabs" in name)
    if name not in ("pipelined", "echo-later"):
        _end(c)
    return c.write(folder / f"{name}.pcap")

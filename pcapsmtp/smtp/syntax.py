"""What SMTP's lines look like on the wire: the command verbs, a SASL response, a BDAT
argument, a TLS record's first bytes, and wire bytes made text once. (A reply line's code,
separator and text are split in the core: ``pcapsmtp._core.LineFramer.replies``.)"""

from __future__ import annotations

import re

KNOWN_VERBS = frozenset(
    [
        "HELO",
        "EHLO",
        "LHLO",
        "MAIL",
        "RCPT",
        "DATA",
        "BDAT",
        "RSET",
        "VRFY",
        "EXPN",
        "HELP",
        "NOOP",
        "QUIT",
        "STARTTLS",
        "AUTH",
        "ETRN",
        "TURN",
        "ATRN",
        "XCLIENT",
        "XFORWARD",
        "SEND",
        "SOML",
        "SAML",
    ]
)
BARE_VERBS = frozenset(["DATA", "RSET", "QUIT", "NOOP", "STARTTLS", "HELP", "TURN"])
"""Commands that take no argument: a credential line can never be mistaken for one of these
unless it is exactly the verb (and then a 334 before it would have told us)."""
CREDENTIAL = re.compile(r"[A-Za-z0-9+/=._~-]+|\*")
"""What a SASL response line looks like (base64, RFC 4954 4), or '*' to cancel."""
BDAT_ARGUMENT = re.compile(r"(\d{1,18})(?:\s+(LAST))?\s*", re.IGNORECASE)
TLS_RECORD_TYPES = (0x14, 0x15, 0x16, 0x17)


def looks_like_tls(data: bytes) -> bool:
    """A TLS record header: content type 20-23, protocol major version 3 (RFC 8446 5.1)."""
    return len(data) >= 2 and data[0] in TLS_RECORD_TYPES and data[1] == 3


def _decode(raw: bytes) -> str:
    """Wire bytes become text here, once: bytes that are not UTF-8 become the four characters
    ``\\xNN`` (as report.safe shows control bytes), so no lone surrogate reaches an encoder
    (JSON, files, terminals) and every output can write what it gets."""
    return raw.decode("utf-8", "backslashreplace")


def quoted(text: str) -> str:
    """Wire text in quotes for a sentence, quoted as ``repr`` quotes it ('...', or "..." when
    it holds a ' and no ") but not escaped: every output escapes a finding's words once
    (report.safe), as it does the reply in its summary. ``repr``'s own escapes were escaped
    again there: the byte shown ``\\xff`` in a summary became ``\\\\xff`` in the detail."""
    mark = '"' if "'" in text and '"' not in text else "'"
    return f"{mark}{text}{mark}"

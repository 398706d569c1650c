"""The credentials of one connection's AUTH exchange, kept only to redact a peer repeating them.

The client's SASL responses are redacted where they are read (``client_side.py``). A server
may still repeat them: ``535 5.7.8 bad credentials <the base64 blob>``, a reply quoting the
decoded user name or password, a 334 that echoes what it was sent; and a client may type its
password into a later line. So the dialogue keeps, while the connection lasts, what it
redacted (``AuthSecrets``) and replaces any occurrence of it in the text it reads afterwards.

What is kept, for each response line (the AUTH line's initial response, each line answering
a 334, a line sent blind after a refused AUTH):

- the line as sent (its base64, or its clear text when a client sends that);
- the parts of its base64-decoded bytes: split on NUL and ^A (PLAIN, XOAUTH2), on ``,`` where
  the mechanism uses attribute lists (SCRAM, OAUTHBEARER, DIGEST-MD5), ``key=value`` read for
  the keys known to hold a name or a secret, "Bearer <token>" and the token alone.

Identities (PLAIN's authzid and authcid, LOGIN's first response, XOAUTH2 ``user=``,
OAUTHBEARER ``a=``, SCRAM ``n=``, CRAM-MD5's user name) are redacted only until the exchange
ends (its final reply, which is redacted too): a server naming its authenticated user later
("sender not owned by user alice@example.com") states the sender's identity, as MAIL FROM
does, and is left as it is. Everything else (the lines as sent, passwords, tokens, proofs,
digests) is redacted in every later line of the connection; it is dropped with the dialogue.

Values shorter than ``MIN_LENGTH`` characters are not searched: a 1-3 character value turns
up by chance in ordinary replies (codes, "Ok", "for", "5.7.8") and redacting it would corrupt
text other outputs and findings read (reply codes, queue ids); such a password falls to
anyone who tries the 857,375 strings of up to three printable ASCII characters anyway. The
search is exact (case-sensitive: an echo repeats what it was sent) and for whole tokens: a
value is not searched inside a longer run of letters and digits, so a password that happens
to begin an address ("1234567" in ``MAIL FROM:<1234567899@aol.com>``, as in a public capture)
leaves it alone, and no partial redaction hints at the password by what it cut.
"""

from __future__ import annotations

import base64
import binascii
import re

from pcapsmtp.smtp.events import REDACTED

MIN_LENGTH = 4
"""Shortest value searched for (see the module's docstring for why)."""

_IDENTITY_KEYS = frozenset(["user", "a", "n", "username", "authzid", "authcid"])
_SECRET_KEYS = frozenset(["auth", "p", "response", "password", "pass", "token"])
_LIST_MECHANISMS = ("SCRAM-", "OAUTHBEARER", "DIGEST-MD5", "GS2-")
"""Mechanisms whose messages are comma-separated attribute lists."""
_TOKEN_START = r"(?:(?<![A-Za-z0-9])|(?<=\\x[89a-f][0-9a-f]))"
"""A value starts a token: no letter or digit before it, unless that is the end of a byte
shown ``\\xNN`` (``syntax._decode``)."""
_STARTS_TOKEN = re.compile(_TOKEN_START)
_BINARY_MECHANISMS = frozenset(["NTLM", "GSSAPI", "GSS-SPNEGO", "KERBEROS_V4"])
"""Mechanisms whose messages are binary structures: only the lines as sent are kept."""
_INVALID_BYTE = re.compile(r"\\x[89a-f][0-9a-f]")
"""How ``syntax._decode`` shows a byte that is not UTF-8 (always 0x80 or more): four
characters for one byte on the wire."""


class AuthSecrets:
    """What one connection's AUTH exchanges redacted, to redact it again wherever it recurs."""

    __slots__ = ("_identities", "_patterns", "_secrets", "mechanism", "step")

    def __init__(self) -> None:
        self.mechanism = ""
        self.step = 0
        """Responses read in the exchange so far (LOGIN: the first is the user name)."""
        self._secrets: set[str] = set()
        self._identities: set[str] = set()
        self._patterns: dict[bool, re.Pattern | None] = {}
        """The values searched for, with identities (True) and without, made when needed."""

    def start(self, mechanism: str) -> None:
        """An AUTH command: its responses are read as ``mechanism``'s."""
        self.mechanism = mechanism.upper()
        self.step = 0

    def add(self, response: str) -> None:
        """A response line the dialogue redacted (its text as read, line end stripped)."""
        response = response.strip()
        if response == "*":
            return
        secrets, identities = _values(self.mechanism, self.step, response)
        self.step += 1
        self._secrets.update(v for v in secrets if len(v) >= MIN_LENGTH)
        self._identities.update(v for v in identities if len(v) >= MIN_LENGTH)
        self._patterns = {}

    def end_exchange(self) -> None:
        """The exchange's final reply was read: identities are no longer searched for."""
        if self._identities:
            self._identities = set()
            self._patterns = {}

    def scrub(
        self, text: str, identities: bool = True, cut: bool = False
    ) -> tuple[str, list[tuple[int, int]]]:
        """``text`` with every value (user names too unless ``identities`` is False) replaced
        by ``[redacted]``, and the spans [start, end) of ``text`` replaced (none when nothing
        matched: ``text`` itself is returned). ``cut``: the line was cut short (a snap
        length), so a token ending it that begins a value (``MIN_LENGTH`` characters or
        more of it) is that value's start, redacted too."""
        pattern = self._patterns.get(identities)
        if pattern is None:
            values = self._secrets | self._identities if identities else self._secrets
            if not values:
                return text, []
            alternatives = sorted(values, key=len, reverse=True)
            values_pattern = "|".join(map(re.escape, alternatives))
            pattern = re.compile(f"{_TOKEN_START}(?:{values_pattern})(?![A-Za-z0-9])")
            self._patterns[identities] = pattern
        spans: list[tuple[int, int]] = []
        for match in pattern.finditer(text):
            start, end = match.span()
            if spans and start <= spans[-1][1]:
                spans[-1] = (spans[-1][0], max(end, spans[-1][1]))
            else:
                spans.append((start, end))
        if cut:
            values = self._secrets | self._identities if identities else self._secrets
            tail = _cut_value(text, values)
            if tail is not None and not (spans and spans[-1][1] > tail):
                spans.append((tail, len(text)))
        if not spans:
            return text, spans
        parts, at = [], 0
        for start, end in spans:
            parts += [text[at:start], REDACTED]
            at = end
        parts.append(text[at:])
        return "".join(parts), spans


def _cut_value(text: str, values: set[str]) -> int | None:
    """Where the start of one of ``values`` ends ``text`` as a token, if one does."""
    best = None
    for value in values:
        for length in range(len(value) - 1, MIN_LENGTH - 1, -1):
            at = len(text) - length
            if (best is None or at < best) and text.endswith(value[:length]):
                if _STARTS_TOKEN.match(text, at):
                    best = at
                break
    return best


def wire_offset(text: str, index: int) -> int:
    """Bytes on the wire before ``text[index]``, ``text`` being wire bytes decoded as
    ``syntax._decode`` does (UTF-8, other bytes as ``\\xNN``)."""
    head = text[:index]
    return len(head.encode("utf-8")) - 3 * len(_INVALID_BYTE.findall(head))


def _values(mechanism: str, step: int, response: str) -> tuple[list[str], list[str]]:
    """(secrets, identities) of one response line."""
    secrets, identities = [response], []
    try:
        raw = base64.b64decode(response, validate=True)
    except (binascii.Error, ValueError):
        return secrets, identities  # clear text (some LOGIN clients): the line is the value
    decoded = raw.decode("utf-8", "backslashreplace")
    if mechanism == "LOGIN":
        (identities if step == 0 else secrets).append(decoded)
        return secrets, identities
    if mechanism == "CRAM-MD5":
        user, _, digest = decoded.rpartition(" ")
        identities.append(user)
        secrets.append(digest)
        return secrets, identities
    parts = re.split("[\x00\x01]", decoded)
    if mechanism == "PLAIN" and len(parts) == 3:
        identities += parts[:2]
        secrets.append(parts[2])
        return secrets, identities
    if mechanism.startswith(_LIST_MECHANISMS):
        parts = [p for part in parts for p in part.split(",")]
    for part in parts:
        key, equals, value = part.partition("=")
        if not equals:
            if part.isprintable() and mechanism not in _BINARY_MECHANISMS:
                secrets.append(part)
            continue
        key, value = key.strip().lower(), value.strip().strip('"')
        if key in _IDENTITY_KEYS:
            identities.append(value)
        elif key in _SECRET_KEYS:
            secrets.append(value)
            scheme, _, token = value.partition(" ")
            if scheme.lower() == "bearer":
                secrets.append(token.strip())
    return secrets, identities

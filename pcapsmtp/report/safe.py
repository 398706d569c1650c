"""Text from the wire is untrusted: make it inert before it reaches a terminal or a document.

Capture files, SMTP replies and mail headers can hold terminal escape sequences, other
control characters and markup. Terminals get them as visible escapes (``\\x1b``); Markdown
gets them escaped as well; HTML escaping is the template engine's (autoescape) job.
"""

from __future__ import annotations

import re

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()<>#+!|~])")


def _escape_char(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def wire(text: str) -> str:
    """Bytes that were not UTF-8 (kept as surrogates when decoded) shown as \\xNN."""
    if text.isascii():
        return text
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def terminal(text: str) -> str:
    """Control characters, bidi overrides and line breaks shown as escapes, never executed."""
    text = wire(text)
    return _CONTROL.sub(
        _escape_char, text.replace("\r", "\\r").replace("\n", "\\n").replace("\t", " ")
    )


def markdown(text: str) -> str:
    """Inline Markdown: control characters escaped, markup and HTML characters neutralised."""
    text = _MARKDOWN_SPECIAL.sub(r"\\\1", terminal(text))
    return text.replace("&", "&amp;")

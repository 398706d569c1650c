"""Text from the wire is untrusted: make it inert before it reaches a terminal or a document.

Capture files, SMTP replies and mail headers can hold terminal escape sequences, other
control characters and markup. One function per output format, applied where wire text
enters that format:

- ``terminal``: C0 and C1 controls (CSI U+009B included), bidi overrides and isolates,
  line and paragraph separators shown as escapes (``\\x1b``, ``\\u202e``);
- ``markdown`` (inline) and ``markdown_code`` / ``markdown_block`` (code spans and fenced
  blocks no backtick run from the wire can close), rendered by CommonMark with raw HTML on;
- ``html``: escaped for an element or attribute (the report's templates autoescape too);
- ``csv_cell``: a cell a spreadsheet shows and never evaluates (OWASP "CSV Injection":
  a leading ``= + - @``, tab or CR gets a ``'``);
- ``json_text``: a JSON document with the characters ``json.dumps`` leaves raw escaped.

Bytes that are not UTF-8 were made ``\\xNN`` where they became text (smtp.dialogue);
``wire`` still turns any surrogate that comes from elsewhere into that form.
"""

from __future__ import annotations

import re

_CONTROL = re.compile(
    r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]"
)
_UNSAFE_IN_JSON = re.compile("[\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
"""Characters json.dumps leaves raw with ensure_ascii=False that a terminal or an editor
would act on (C1 controls such as CSI, bidi marks and overrides, line separators)."""
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
"""What makes a spreadsheet read a cell as a formula (OWASP CSV Injection)."""
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


def markdown_code(text: str) -> str:
    """An inline code span that no backtick in ``text`` can close."""
    text = terminal(text)
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def markdown_block(lines: list[str]) -> list[str]:
    """A fenced code block that no line of it can close: the fence is longer than any run
    of backticks in it."""
    body = [terminal(line) for line in lines]
    longest = max((len(run) for line in body for run in re.findall(r"`+", line)), default=0)
    fence = "`" * max(3, longest + 1)
    return [fence + "text", *body, fence]


def html(text: str) -> str:
    """Text for an HTML element or a quoted attribute: controls shown as escapes, markup
    characters as entities."""
    import html as html_module

    return html_module.escape(terminal(text), quote=True)


def csv_cell(value: object) -> object:
    """A CSV cell: text with controls escaped and, when a spreadsheet would take it for a
    formula, a leading ``'``; numbers and None as they are."""
    if not isinstance(value, str):
        return value
    text = terminal(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def json_text(document: str) -> str:
    """An encoded JSON document (``ensure_ascii=False``) with C1 controls, bidi marks and
    line separators as ``\\uXXXX``: the same data, inert in a terminal or an editor."""
    if document.isascii() and "\x7f" not in document:
        return document  # nothing to replace; isascii() is O(1) on a str, the scan is memchr's
    return _UNSAFE_IN_JSON.sub(lambda m: f"\\u{ord(m.group()):04x}", document)

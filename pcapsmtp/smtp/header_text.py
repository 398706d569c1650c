"""Header field text: a field value as the ``email`` package (compat32) gives it, with 8-bit
bytes kept as surrogates, to text. RFC 2047 encoded words and RFC 2231 parameter values are
decoded, with charset fallbacks for the mislabelled Japanese, Chinese and Western mail seen
in the wild (see ``_CHARSET_CHAINS``). Never raises on peer data: what had to be replaced
is flagged.
"""

from __future__ import annotations

import functools
import re
from email import policy
from email.header import decode_header

FOLD = re.compile(r"\r?\n(?=[ \t])")
"""A line break that folds a header field (the next line starts with white space)."""


def is_plain(value: str) -> bool:
    """A field value that ``field_text`` and unfolding leave as it is: ASCII (no 8-bit
    byte, which the parser keeps as a surrogate), no ESC (raw ISO-2022-JP), one line."""
    return value.isascii() and "\x1b" not in value and "\n" not in value


def decode_field(value: str) -> tuple[str, bool]:
    """A header field value (as compat32 gives it) to text: 8-bit bytes and RFC 2047 encoded
    words decoded, folding removed. The flag is False when something had to be replaced."""
    if is_plain(value) and "\r" not in value and "=?" not in value:
        return value.strip(), True  # all the steps below leave of such a value
    text, _ = field_text(value)
    ok = "\ufffd" not in text
    text = FOLD.sub("", text).replace("\r", "").replace("\n", "").strip()
    if "=?" not in text:
        return text, ok
    if not text.isascii():  # raw 8-bit text and encoded words in one field
        text = _decode_leniently(text)
        return text, ok and "\ufffd" not in text
    try:
        pieces = decode_header(text)
    except Exception:  # HeaderParseError on bad base64: decode each word on its own
        return _decode_leniently(text), False
    out = []
    for data, charset in pieces:
        if charset is None:
            out.append(data.decode("ascii", "replace") if isinstance(data, bytes) else data)
            continue
        # decode_header joined adjacent words of one charset before we decode: a character
        # split across encoded words (ISO-2022-JP mailers do this) comes out whole.
        piece, piece_ok = decode_bytes(data, charset)
        ok = ok and piece_ok
        out.append(piece)
    return "".join(out), ok


def _decode_leniently(text: str) -> str:
    """policy.default's header parser: never fails, decodes each encoded word on its own."""
    try:
        return str(policy.default.header_factory("subject", text))
    except Exception:
        return text


def field_text(value: str) -> tuple[str, str]:
    """A raw compat32 value (8-bit bytes as surrogates) to text, and the codec used."""
    codec = "ascii"
    if _SURROGATES.search(value):
        raw = raw_bytes(value)
        codec = _guess_codec(raw) or "utf-8"
        value = raw.decode(codec, "replace")
    if "\x1b" in value and value.isascii():
        # Raw ISO-2022-JP in a header, as old Japanese mailers send it (RFC 1468 style).
        value, _ = decode_bytes(value.encode("ascii"), "iso-2022-jp")
        codec = "iso2022_jp"
    return value, codec


def raw_bytes(value: str) -> bytes:
    """Undo the parser's surrogateescape: the field's bytes as they came."""
    return value.encode("utf-8", "surrogateescape") if isinstance(value, str) else b""


def latin1_bytes(text: str) -> bytes:
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:
        return text.encode("utf-8")


def _nec_iso2022jp(data: bytes) -> str:
    # Windows (CP50220/50221) writes NEC row 13 (①, ㈱, Ⅳ) inside JIS X 0208 sequences,
    # which iso2022_jp rejects; JIS X 0213 plane 1 is a superset holding them at the same
    # code points, so re-designate and decode as ISO-2022-JP-2004.
    return (
        data.replace(b"\x1b$B", b"\x1b$(Q").replace(b"\x1b$@", b"\x1b$(Q").decode("iso2022_jp_2004")
    )


_GUESS = ("utf-8", "euc_jp", "cp932", "cp1252")
"""Order for unlabelled 8-bit text: UTF-8 (RFC 6532) first; EUC-JP before Shift_JIS, since
EUC-JP kana also read as half-width Shift_JIS katakana but not the other way round; both
only when the result looks Japanese (see ``_looks_japanese``); then Windows-1252."""
_JAPANESE_GUESSES = ("euc_jp", "cp932")
_SURROGATES = re.compile("[\udc80-\udcff]")
_CHARSET_CHAINS: dict[str, tuple] = {
    # Labels decoded with a superset, as the WHATWG Encoding Standard does for the web.
    "iso-2022-jp": ("iso2022_jp", "iso2022_jp_ext", _nec_iso2022jp),
    "shift_jis": ("cp932", "shift_jis_2004"),
    "euc-jp": ("euc_jp", "euc_jis_2004"),
    "gb2312": ("gb18030",),
    "big5": ("big5hkscs", "cp950"),
    "euc-kr": ("cp949",),
    "iso-8859-1": ("cp1252", "latin-1"),
    "us-ascii": ("ascii", "utf-8", "cp1252"),
    "tis-620": ("cp874",),
}
_ALIASES = {
    "shift-jis": "shift_jis",
    "sjis": "shift_jis",
    "x-sjis": "shift_jis",
    "ms_kanji": "shift_jis",
    "windows-31j": "shift_jis",
    "cp932": "shift_jis",
    "ms932": "shift_jis",
    "x-euc-jp": "euc-jp",
    "eucjp": "euc-jp",
    "gbk": "gb2312",
    "x-gbk": "gb2312",
    "cp936": "gb2312",
    "euc-cn": "gb2312",
    "ks_c_5601-1987": "euc-kr",
    "latin1": "iso-8859-1",
    "ascii": "us-ascii",
}


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
"""What a codec may decode that is no character (UTF-7 "+2AA-"): it cannot be encoded as UTF-8,
so it must not reach the core or any output."""


def decode_bytes(data: bytes, charset: str | None) -> tuple[str, bool]:
    """Bytes in a declared charset (RFC 2231 language suffix allowed) to text; the flag is
    False when the charset was unknown and no guess fitted, or bytes had to be replaced."""
    name = (charset or "").strip().strip('"').lower().partition("*")[0]
    name = _ALIASES.get(name, name)
    chain = _CHARSET_CHAINS.get(name, (name,) if name else ())
    for codec in chain:
        try:
            text = codec(data) if callable(codec) else data.decode(codec)
        except (UnicodeDecodeError, LookupError):
            continue
        if _LONE_SURROGATE.search(text):  # UTF-7 decodes "+2AA-" to one: no text, no UTF-8
            return _LONE_SURROGATE.sub("\ufffd", text), False
        return text, True
    codec = _guess_codec(data)
    if codec:
        return data.decode(codec), True
    first = next((c for c in chain if isinstance(c, str) and _known(c)), "utf-8")
    return data.decode(first, "replace"), False


def _known(codec: str) -> bool:
    try:
        b"".decode(codec)
    except LookupError:
        return False
    return True


def _guess_codec(data: bytes) -> str:
    """The first of ``_GUESS`` that decodes ``data`` plausibly, or ""."""
    for codec in _GUESS:
        try:
            text = data.decode(codec)
        except UnicodeDecodeError:
            continue
        if codec not in _JAPANESE_GUESSES or _looks_japanese(text):
            return codec
    return ""


def _looks_japanese(text: str) -> bool:
    """Shift_JIS and EUC-JP decode many Western 8-bit strings too ("What\x92s" reads as
    "What痴"): accept them only when every non-ASCII character is Japanese and there is
    kana or more than one such character."""
    cjk, kana = _japanese_patterns()
    wide = [c for c in text if ord(c) > 127]
    if not all(cjk.match(c) for c in wide):
        return False
    return len(wide) > 1 or any(kana.match(c) for c in wide)


@functools.cache
def _japanese_patterns() -> tuple[re.Pattern[str], re.Pattern[str]]:
    """CJK characters and kana, compiled at the first unlabelled 8-bit text that decodes as
    Japanese (the CJK class alone costs 1.6 ms at start-up otherwise)."""
    return (
        re.compile("[\u2460-\u24ff\u3000-\u30ff\u3200-\u33ff\u4e00-\u9fff\uff00-\uffef]"),
        re.compile("[\u3040-\u30ff\uff66-\uff9f]"),
    )

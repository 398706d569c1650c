"""Facts from a mail message as it crosses DATA or BDAT: headers, MIME parts, attachments.

Sans-io and bounded: ``MessageScanner.feed`` takes the message in any split and never holds
the body. Only the top header block (``HEADER_LIMIT``), one part header block at a time
(``PART_HEADER_LIMIT``) and a few bytes of overlap for the boundary search are kept, so a
50 MB message costs the same memory as a 5 KB one. Bodies are never split into lines: the
boundaries of the open multiparts are looked for with ``bytes.find``.

Header fields are parsed by the ``email`` package (compat32, so raw values survive); RFC 2047
encoded words and RFC 2231 parameters are decoded by it too, with charset fallbacks for the
mislabelled Japanese, Chinese and Western mail seen in the wild (see ``_CHARSET_CHAINS``).
Peer data never makes this module raise: oddities become anomaly codes.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from email import policy
from email.header import decode_header
from email.message import Message
from email.parser import BytesHeaderParser

HEADER_LIMIT = 256 * 1024
"""Bytes of the message's own header block kept for parsing; the rest is counted, not kept."""
PART_HEADER_LIMIT = 64 * 1024
"""Bytes of one MIME part's header block kept for parsing."""
MAX_DEPTH = 20
"""Nested multiparts followed; a deeper one is treated as a single opaque part."""
MAX_BOUNDARY = 998
"""Longest boundary followed: a delimiter line must fit an SMTP line (RFC 5321 4.5.3.1.6).
RFC 2046 5.1.1 allows only 70 characters, but longer ones are seen and cost nothing."""
MAX_PADDING = 1000
"""Whitespace allowed after a boundary before its line ends (RFC 2046 5.1.1 transport padding)."""
BATCH = 64 * 1024
"""Small feeds (one TCP segment each) are gathered up to this size before scanning: the
per-call cost of the scan, not its per-byte cost, dominates at 1460-byte segments."""
MAX_ATTACHMENTS = 1000
"""Attachments recorded; further ones are only counted in ``parts``."""


@dataclass(slots=True)
class Attachment:
    """One attached file (or attached message) of a message."""

    filename: str | None
    """Decoded (RFC 2047 / RFC 2231); None when the part names no file."""
    content_type: str
    """Lower-case media type, e.g. ``application/pdf``."""
    size: int
    """Decoded size in bytes: computed from the encoded length for base64, equal to
    ``encoded_size`` for quoted-printable, 7bit, 8bit and binary."""
    encoded_size: int
    """Bytes of the part body on the wire (after dot-unstuffing), without the line break that
    belongs to the following boundary (RFC 2046 5.1.1)."""
    transfer_encoding: str = "7bit"
    """Content-Transfer-Encoding, lower case (RFC 2045 6.1: 7bit when absent)."""


@dataclass(slots=True)
class MessageFacts:
    """What a mail message says about itself, as far as the scanner could see."""

    size: int
    """Message size as the server stores it: after dot-unstuffing for DATA, including the
    CRLF that ends the last line (RFC 5321 4.1.1.4), i.e. what SIZE= (RFC 1870) estimates."""
    message_id: str | None
    date: str | None
    from_: str | None
    """Decoded header text (encoded words decoded, lines unfolded)."""
    to: str | None
    """Decoded; several To: fields are joined with ", "."""
    cc: str | None
    subject: str | None
    """RFC 2047 decoded to text; None when there is no Subject: field."""
    subject_raw: str | None
    """The field value as on the wire (folding kept); non-UTF-8 bytes shown as \\xNN."""
    received: int
    """Number of Received: fields, i.e. hops so far."""
    attachments: list[Attachment]
    parts: int
    """MIME leaf parts seen (1 for a message that is not multipart)."""
    headers_truncated: bool
    """The top header block exceeded ``HEADER_LIMIT`` and was cut."""
    anomalies: list[str]
    """Stable snake_case codes, each at most once, in the order first seen."""
    content_type: str = "text/plain"
    """Media type of the message itself (RFC 2045 5.2: text/plain when absent)."""
    bare_lf: int = 0
    """LF bytes not preceded by CR: forbidden by RFC 5321 2.3.8, rejected by some servers
    (Postfix smtpd_forbid_bare_newline) and the stuff of SMTP smuggling."""
    eight_bit: bool = False
    """The message holds bytes above 127: needs 8BITMIME (RFC 6152) or SMTPUTF8 (RFC 6531)."""


class _State(enum.Enum):
    HEADERS = enum.auto()
    """Reading a header block: the message's at the start, a part's after a delimiter line."""
    BODY = enum.auto()
    """In a body, preamble or epilogue: looking for a delimiter of an open multipart."""


@dataclass(slots=True)
class _Multipart:
    """An open multipart entity: what ends its parts."""

    needle: bytes
    """LF + "--" + boundary: a delimiter starts a line (RFC 2046 5.1.1)."""
    digest: bool
    """multipart/digest: parts without Content-Type are message/rfc822 (RFC 2046 5.1.5)."""
    opened: bool = False
    """A delimiter of this multipart was seen."""


@dataclass(slots=True)
class _Leaf:
    """The leaf part whose body is being read."""

    start: int
    """Stream offset of the first body byte."""
    content_type: str
    encoding: str
    filename: str | None
    attachment: bool
    base64_chars: int = 0
    """Base64 alphabet characters in the body so far (base64 only; padding not counted)."""


# A line that continues the header block, as email.feedparser.headerRE sees it (RFC 5322 2.2).
_HEADER_LINE = re.compile(rb"From |[\x21-\x39\x3b-\x7e]*:|[\t ]")
_WSP = re.compile(rb"[ \t]*")
_BASE64_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_NOT_BASE64 = bytes(b for b in range(256) if b not in _BASE64_ALPHABET)
_FOLD = re.compile(r"\r?\n(?=[ \t])")
_PARSER = BytesHeaderParser(policy=policy.compat32)
_DECODED_FIELDS = (
    # field, MessageFacts attribute, several fields joined (else the first one counts)
    ("from", "from_", False),
    ("to", "to", True),
    ("cc", "cc", True),
    ("subject", "subject", False),
)


class MessageScanner:
    """Message bytes in, ``MessageFacts`` out; see the module docstring."""

    def __init__(self, dot_stuffed: bool = True) -> None:
        self._dot_stuffed = dot_stuffed
        self._held = b"\r\n" if dot_stuffed else b""
        """Raw bytes that may begin a stuffed line; at first a virtual line end."""
        self._virtual = dot_stuffed
        self._prev_cr = False
        self._single_dots = 0
        self._size = 0
        self._last = b""
        self._state = _State.HEADERS
        self._buf = bytearray(b"\n")
        """Unconsumed stream; in HEADERS ``_buf[0]`` is the LF before the current line."""
        self._buf_pos = -1
        """Stream offset of ``_buf[0]`` (-1: the virtual LF before the first line)."""
        self._search = 1
        """Where to resume looking for the end of the current header line."""
        self._skip_line = False
        self._hdr = bytearray()
        self._hdr_cut = False
        self._dropping = False
        """The header field being read did not fit and is left out."""
        self._stack: list[_Multipart] = []
        self._leaf: _Leaf | None = None
        self._top_done = False
        self._result: MessageFacts | None = None
        self._batch: list[bytes] = []
        self._batched = 0
        self._facts = MessageFacts(
            size=0,
            message_id=None,
            date=None,
            from_=None,
            to=None,
            cc=None,
            subject=None,
            subject_raw=None,
            received=0,
            attachments=[],
            parts=0,
            headers_truncated=False,
            anomalies=[],
        )

    # -- input ----------------------------------------------------------------

    def feed(self, data: bytes) -> None:
        """Message bytes in stream order, any split: for DATA still dot-stuffed and without
        the final ".CRLF" (the CRLF before it ends the last line and may be fed or left
        out: ``finish`` supplies it when the message does not end with a line break);
        for BDAT the chunk bytes as they are."""
        if not data or self._result is not None:
            return
        self._batch.append(data)
        self._batched += len(data)
        if self._batched >= BATCH:
            self._scan_batch()

    def _scan_batch(self) -> None:
        if not self._batch:
            return
        data = self._batch[0] if len(self._batch) == 1 else b"".join(self._batch)
        self._batch = []
        self._batched = 0
        self._note_raw(data)
        if self._dot_stuffed:
            data = self._unstuff(data)
        self._parse(data, final=False)

    def finish(self) -> MessageFacts:
        """Facts about everything fed; later calls return the same record."""
        if self._result is None:
            self._result = self._finish()
        return self._result

    def _finish(self) -> MessageFacts:
        facts = self._facts
        self._scan_batch()
        if self._dot_stuffed:
            tail = self._unstuff_block(self._held)
            self._held = b""
            self._parse(tail[2:] if self._virtual else tail, final=False)
            if self._size and self._last != b"\n":
                # The caller left out the CRLF that ends the last line (it belongs to the
                # message, RFC 5321 4.1.1.4): count it and let the last line end.
                self._parse(b"\r\n", final=False)
        self._parse(b"", final=True)
        if self._leaf is not None:
            self._end_leaf(self._buf_pos + len(self._buf))
        self._close_levels(0)
        if self._single_dots:
            self._anomaly("unstuffed_leading_dot")
        if facts.bare_lf:
            self._anomaly("bare_lf")
        facts.size = self._size
        return facts

    def _note_raw(self, data: bytes) -> None:
        facts = self._facts
        bare = data.count(b"\n") - data.count(b"\r\n")
        if self._prev_cr and data[0] == 10:
            bare -= 1
        facts.bare_lf += bare
        self._prev_cr = data[-1] == 13
        if not facts.eight_bit and not data.isascii():
            facts.eight_bit = True

    # -- dot-stuffing (RFC 5321 4.5.2) ----------------------------------------

    def _unstuff(self, data: bytes) -> bytes:
        """Remove the dot that starts a line; hold back a possible "CRLF." across chunks."""
        buf = self._held + data
        hold = 0
        for prefix in (b"\r\n.", b"\r\n", b"\r"):
            if buf.endswith(prefix):
                hold = len(prefix)
                break
        self._held = buf[len(buf) - hold :]
        body = self._unstuff_block(buf[: len(buf) - hold])
        if self._virtual and body:
            body = body[2:]
            self._virtual = False
        return body

    def _unstuff_block(self, block: bytes) -> bytes:
        starts = block.count(b"\r\n.")
        if not starts:
            return block
        doubled = block.count(b"\r\n..")
        # A line with a single leading dot: RFC 5321 4.5.2 still deletes it, but a client that
        # stuffs would have doubled it, so the message loses a dot the sender meant to send.
        self._single_dots += starts - doubled - block.endswith(b"\r\n.")
        return block.replace(b"\r\n.", b"\r\n")

    # -- the MIME walk --------------------------------------------------------

    def _parse(self, data: bytes, final: bool) -> None:
        if data:
            self._size += len(data)
            self._last = data[-1:]
            self._buf += data
        while self._headers(final) if self._state is _State.HEADERS else self._body(final):
            pass

    def _headers(self, final: bool) -> bool:
        """Walk complete header lines; True once the block has ended (the state changed)."""
        buf = self._buf
        while True:
            nl = buf.find(b"\n", self._search)
            if nl < 0:
                if not final or len(buf) <= 1:
                    return self._wait_for_line(final)
                nl = len(buf)
            if self._skip_line:
                self._skip_line = False
            elif nl == 1 or (nl == 2 and buf[1] == 13):
                return self._end_headers(nl)
            elif not _HEADER_LINE.match(buf, 1):
                # email.feedparser ends the header block here too (MissingHeaderBodySeparator).
                self._anomaly("missing_header_separator")
                return self._end_headers(0)
            else:
                self._keep_header_line(buf, 1, nl + 1)
            if nl == len(buf):
                return self._end_headers(nl)
            del buf[:nl]
            self._buf_pos += nl
            self._search = 1

    def _wait_for_line(self, final: bool) -> bool:
        """No line end yet: keep the partial line, unless it is already over the limit."""
        buf = self._buf
        if final:
            return self._end_headers(len(buf))
        limit = HEADER_LIMIT if not self._top_done else PART_HEADER_LIMIT
        if not self._skip_line and len(buf) <= limit:
            self._search = len(buf)
            return False
        if not self._skip_line:
            if not _HEADER_LINE.match(buf, 1):
                self._anomaly("missing_header_separator")
                return self._end_headers(0)
            self._cut_headers()
            self._skip_line = True
            self._dropping = True
        # Forget the overlong line's bytes; the offset stays right for what follows.
        self._buf_pos += len(buf)
        del buf[:]
        self._search = 0
        return False

    def _keep_header_line(self, buf: bytearray, start: int, end: int) -> None:
        """Keep a header line if the block has room. Over the limit, a field is left out
        whole (with its continuation lines); a later one that fits is still kept, so a
        Content-Type after a huge Received chain still counts."""
        limit = HEADER_LIMIT if not self._top_done else PART_HEADER_LIMIT
        if buf[start] in b" \t" and self._dropping:
            return
        self._dropping = len(self._hdr) + end - start > limit
        if self._dropping:
            self._cut_headers()
        else:
            self._hdr += buf[start:end]

    def _cut_headers(self) -> None:
        if not self._hdr_cut:
            self._hdr_cut = True
            if self._top_done:
                self._anomaly("part_header_too_long")
            else:
                self._facts.headers_truncated = True
                self._anomaly("header_too_long")

    def _end_headers(self, body_at: int) -> bool:
        """The header block ended; the body's first byte follows ``_buf[body_at]``."""
        block = bytes(self._hdr)
        self._hdr = bytearray()
        self._hdr_cut = False
        self._dropping = False
        self._skip_line = False
        del self._buf[:body_at]
        self._buf_pos += body_at
        self._state = _State.BODY
        parent = self._stack[-1] if self._stack else None
        top = not self._top_done
        self._top_done = True
        try:
            entity = _PARSER.parsebytes(block)
            if parent is not None and parent.digest:
                entity.set_default_type("message/rfc822")
            info, anomalies = _describe(entity)
            if top:
                self._top_facts(entity, block)
        except Exception:  # the email package meeting input nobody foresaw: we never raise
            info, anomalies = _Entity("text/plain", "plain", None, "7bit", None, None), []
            self._anomaly("header_parse_error")
        for code in anomalies:
            self._anomaly(code)
        if top:
            self._facts.content_type = info.content_type
        self._open_entity(info, parent)
        return True

    def _open_entity(self, info: _Entity, parent: _Multipart | None) -> None:
        """A header block is known: open a multipart or start a leaf part."""
        if info.boundary is not None:
            if len(self._stack) < MAX_DEPTH:
                self._stack.append(_Multipart(b"\n--" + info.boundary, info.subtype == "digest"))
                return
            self._anomaly("multipart_too_deep")
        attachment = info.disposition == "attachment" or info.filename is not None
        if info.content_type == "message/rfc822" and parent is not None:
            attachment = True
        self._leaf = _Leaf(
            self._buf_pos + 1, info.content_type, info.encoding, info.filename, attachment
        )
        self._facts.parts += 1

    def _body(self, final: bool) -> bool:
        """Consume body bytes up to the next delimiter; True when one was found."""
        buf = self._buf
        if not self._stack:
            self._consume(len(buf))
            return False
        hit = self._next_delimiter(final)
        if hit is None:
            keep = 0 if final else max(len(m.needle) for m in self._stack)
            self._consume(max(0, len(buf) - keep))
            return False
        at, level, eol, close = hit
        if eol < 0:
            self._consume(max(0, at - 1))
            return False
        end = at - 1 if at > 0 and buf[at - 1] == 13 else at
        self._consume(end)
        if self._leaf is not None:
            self._end_leaf(self._buf_pos)
        self._close_levels(level + 1)
        self._stack[level].opened = True
        if close:
            del self._stack[level:]
        cut = eol - end
        del buf[:cut]
        self._buf_pos += cut
        if not close:
            self._state = _State.HEADERS
            self._search = 1
        return True

    def _close_levels(self, level: int) -> None:
        """Multiparts from ``level`` inward end without their close delimiter."""
        for multipart in self._stack[level:]:
            if multipart.opened:
                self._anomaly("unterminated_multipart")
            else:
                # No delimiter at all: like the email package, take the body as one part.
                self._anomaly("boundary_not_found")
                self._facts.parts += 1
        del self._stack[level:]

    def _next_delimiter(self, final: bool) -> tuple[int, int, int, bool] | None:
        """(position, stack level, line end or -1 when more bytes are needed, close)."""
        buf = self._buf
        start = 0
        while True:
            best = -1
            level = 0
            for i, multipart in enumerate(self._stack):
                at = buf.find(multipart.needle, start)
                if at >= 0 and (best < 0 or at < best):
                    best, level = at, i
            if best < 0:
                return None
            verdict = _delimiter_end(buf, best + len(self._stack[level].needle), final)
            if verdict is not None:
                return best, level, verdict[0], verdict[1]
            start = best + 1

    def _consume(self, n: int) -> None:
        """Hand ``_buf[:n]`` to the current leaf (if any) and forget it."""
        if n <= 0:
            return
        leaf = self._leaf
        if leaf is not None and leaf.encoding == "base64":
            buf = self._buf
            s = max(0, leaf.start - self._buf_pos)
            if s < n:
                # What a lenient decoder (binascii.a2b_base64) keeps: the alphabet only.
                leaf.base64_chars += len(buf[s:n].translate(None, _NOT_BASE64))
        del self._buf[:n]
        self._buf_pos += n

    def _end_leaf(self, end: int) -> None:
        leaf = self._leaf
        self._leaf = None
        if leaf is None or not leaf.attachment:
            return
        facts = self._facts
        if len(facts.attachments) >= MAX_ATTACHMENTS:
            self._anomaly("too_many_attachments")
            return
        encoded = max(0, end - leaf.start)
        size = encoded
        if leaf.encoding == "base64":
            size = leaf.base64_chars * 6 // 8  # RFC 4648 4: 6 bits a character
        facts.attachments.append(
            Attachment(leaf.filename, leaf.content_type, size, encoded, leaf.encoding)
        )

    # -- header facts ---------------------------------------------------------

    def _top_facts(self, entity: Message, block: bytes) -> None:
        facts = self._facts
        fields: dict[str, list[str]] = {}
        for name, value in entity.raw_items():
            fields.setdefault(name.strip().lower(), []).append(value)
        facts.received = len(fields.get("received", ()))
        if not block.isascii():
            self._anomaly("raw_8bit_header")
        if "message-id" in fields:
            facts.message_id = decode_field(fields["message-id"][0])[0]
        if "date" in fields:
            facts.date = decode_field(fields["date"][0])[0]
        for name, attr, joined in _DECODED_FIELDS:
            values = fields.get(name, [])[: None if joined else 1]
            if not values:
                continue
            decoded = [decode_field(v) for v in values]
            setattr(facts, attr, ", ".join(text for text, _ in decoded))
            if not all(ok for _, ok in decoded):
                self._anomaly(f"undecodable_{name}")
        if "subject" in fields:
            facts.subject_raw = _raw_bytes(fields["subject"][0]).decode("utf-8", "backslashreplace")

    def _anomaly(self, code: str) -> None:
        if code not in self._facts.anomalies:
            self._facts.anomalies.append(code)


def _delimiter_end(buf: bytearray, k: int, final: bool) -> tuple[int, bool] | None:
    """After "--boundary" at ``k``: (index of the LF ending the line or -1 when more bytes
    are needed, close delimiter), or None when this is no delimiter line (RFC 2046 5.1.1:
    only "--" and linear white space may follow the boundary)."""
    n = len(buf)
    start = k
    close = buf.startswith(b"--", k)
    if close:
        k += 2
    elif n - k < 2 and b"--".startswith(bytes(buf[k:])) and not final:
        return -1, False
    k = _WSP.match(buf, k).end()
    if k == n:
        if final:
            return n, close
        return (-1, close) if k - start < MAX_PADDING else None
    if buf[k] == 10:
        return k, close
    if buf[k] == 13:
        if k + 1 == n:
            return (n, close) if final else (-1, close)
        if buf[k + 1] == 10:
            return k + 1, close
    return None


@dataclass(slots=True)
class _Entity:
    """What a MIME entity's header block says about its body."""

    content_type: str
    subtype: str
    disposition: str | None
    encoding: str
    boundary: bytes | None
    filename: str | None


def _describe(entity: Message) -> tuple[_Entity, list[str]]:
    anomalies: list[str] = []
    fields = _ParamFields(entity)
    params = fields.message
    encoding = params.get("content-transfer-encoding")
    boundary = None
    if params.get_content_maintype() == "multipart":
        text = params.get_boundary()
        if not text or len(text) > MAX_BOUNDARY:
            anomalies.append("multipart_without_boundary")
        else:
            boundary = text.encode(fields.codec, "replace")
    info = _Entity(
        content_type=params.get_content_type(),
        subtype=params.get_content_subtype(),
        disposition=params.get_content_disposition(),
        encoding=str(encoding).strip().lower() if encoding else "7bit",
        boundary=boundary,
        filename=_filename(params, anomalies),
    )
    return info, anomalies


def _filename(params: Message, anomalies: list[str]) -> str | None:
    """Content-Disposition filename, else Content-Type name (email's get_filename order)."""
    for header, name in (("content-disposition", "filename"), ("content-type", "name")):
        value = params.get_param(name, header=header)
        if not value:
            continue
        if isinstance(value, tuple):  # RFC 2231: charset'language'value, %-decoded
            charset, _, text = value
            text, ok = _decode_bytes(_latin1_bytes(text), charset)
        else:  # often RFC 2047 inside the quoted string: not allowed (RFC 2047 5), but common
            text, ok = decode_field(value)
        if not ok:
            anomalies.append("undecodable_filename")
        text = text.strip()
        if text:
            return text
    return None


class _ParamFields:
    """Content-Type and Content-Disposition as text, for the email package's parameter
    parsing: 8-bit bytes are decoded first, so raw UTF-8 or Shift_JIS names survive."""

    __slots__ = ("codec", "message")

    def __init__(self, entity: Message) -> None:
        self.message = Message()
        self.codec = "ascii"
        self.message.set_default_type(entity.get_default_type())
        for name, value in entity.raw_items():
            key = name.strip().lower()
            if key in ("content-type", "content-disposition", "content-transfer-encoding"):
                text, codec = _field_text(value)
                if key == "content-type":
                    self.codec = codec
                self.message[key] = _FOLD.sub("", text)


# -- header text decoding -----------------------------------------------------


def decode_field(value: str) -> tuple[str, bool]:
    """A header field value (as compat32 gives it) to text: 8-bit bytes and RFC 2047 encoded
    words decoded, folding removed. The flag is False when something had to be replaced."""
    text, _ = _field_text(value)
    ok = "\ufffd" not in text
    text = _FOLD.sub("", text).replace("\r", "").replace("\n", "").strip()
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
        piece, piece_ok = _decode_bytes(data, charset)
        ok = ok and piece_ok
        out.append(piece)
    return "".join(out), ok


def _decode_leniently(text: str) -> str:
    """policy.default's header parser: never fails, decodes each encoded word on its own."""
    try:
        return str(policy.default.header_factory("subject", text))
    except Exception:
        return text


def _field_text(value: str) -> tuple[str, str]:
    """A raw compat32 value (8-bit bytes as surrogates) to text, and the codec used."""
    codec = "ascii"
    if _SURROGATES.search(value):
        raw = _raw_bytes(value)
        codec = _guess_codec(raw) or "utf-8"
        value = raw.decode(codec, "replace")
    if "\x1b" in value and value.isascii():
        # Raw ISO-2022-JP in a header, as old Japanese mailers send it (RFC 1468 style).
        value, _ = _decode_bytes(value.encode("ascii"), "iso-2022-jp")
        codec = "iso2022_jp"
    return value, codec


def _raw_bytes(value: str) -> bytes:
    """Undo the parser's surrogateescape: the field's bytes as they came."""
    return value.encode("utf-8", "surrogateescape") if isinstance(value, str) else b""


def _latin1_bytes(text: str) -> bytes:
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
_CJK = re.compile("[\u2460-\u24ff\u3000-\u30ff\u3200-\u33ff\u4e00-\u9fff\uff00-\uffef]")
_KANA = re.compile("[\u3040-\u30ff\uff66-\uff9f]")
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


def _decode_bytes(data: bytes, charset: str | None) -> tuple[str, bool]:
    """Bytes in a declared charset (RFC 2231 language suffix allowed) to text; the flag is
    False when the charset was unknown and no guess fitted, or bytes had to be replaced."""
    name = (charset or "").strip().strip('"').lower().partition("*")[0]
    name = _ALIASES.get(name, name)
    chain = _CHARSET_CHAINS.get(name, (name,) if name else ())
    for codec in chain:
        try:
            return (codec(data) if callable(codec) else data.decode(codec)), True
        except (UnicodeDecodeError, LookupError):
            continue
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
    wide = [c for c in text if ord(c) > 127]
    if not all(_CJK.match(c) for c in wide):
        return False
    return len(wide) > 1 or any(_KANA.match(c) for c in wide)

"""Facts from a mail message as it crosses DATA or BDAT: headers, MIME parts, attachments.

Sans-io and bounded: ``MessageScanner.feed`` takes the message in any split and never holds
the body. The scans that look at every byte (the end of DATA, dot-unstuffing, size, bare LFs
and 8-bit bytes, where header blocks end and which header lines are kept, the delimiter lines
of the open multiparts, base64 sizes) run in the compiled core (``core/src/message_scan.rs``,
``pcapsmtp._core.MessageScan``). Only the top header block (``HEADER_LIMIT``), one part
header block at a time (``PART_HEADER_LIMIT``) and a few bytes of overlap for the boundary
search are kept, so a 50 MB message costs the same memory as a 5 KB one.

Header fields are parsed by the ``email`` package (compat32, so raw values survive); RFC 2047
encoded words and RFC 2231 parameters are decoded by it too, with charset fallbacks for the
mislabelled Japanese, Chinese and Western mail seen in the wild (see ``_CHARSET_CHAINS``).
Peer data never makes this module raise: oddities become anomaly codes.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from email import policy
from email.header import decode_header
from email.message import Message
from email.parser import BytesHeaderParser
from email.utils import collapse_rfc2231_value

from pcapsmtp import _core
from pcapsmtp._core import MessageScan
from pcapsmtp.smtp.header_addresses import ip_addresses, received_address

HEADER_LIMIT = _core.HEADER_LIMIT
"""Bytes of the message's own header block kept for parsing; the rest is counted, not kept."""
PART_HEADER_LIMIT = _core.PART_HEADER_LIMIT
"""Bytes of one MIME part's header block kept for parsing."""
MAX_DEPTH = _core.MAX_DEPTH
"""Nested multiparts followed; a deeper one is treated as a single opaque part."""
MAX_BOUNDARY = 998
"""Longest boundary followed: a delimiter line must fit an SMTP line (RFC 5321 4.5.3.1.6).
RFC 2046 5.1.1 allows only 70 characters, but longer ones are seen and cost nothing."""
MAX_ATTACHMENTS = _core.MAX_ATTACHMENTS
"""Attachments recorded; further ones are only counted in ``parts``."""
MAX_OTHER_PARTS = _core.MAX_OTHER_PARTS
"""Leaf parts that are no attachment recorded in ``leaves``; further ones are only counted
in ``parts``."""
MAX_HOPS = 100
"""Received fields whose address is kept in ``received_path``: a relay takes a mail with
more for a loop (RFC 5321 6.3)."""


def bounds_reached(anomalies: list[str]) -> list[str]:
    """The message bounds of docs/limits.md ("One message") its reading reached, one line
    each, for the session's limits: without them a bound reached showed in no output."""
    notes = {
        "header_too_long": f"the header block is longer than {HEADER_LIMIT // 1024} KiB: "
        "read up to that bound",
        "part_header_too_long": f"a MIME part's header block is longer than "
        f"{PART_HEADER_LIMIT // 1024} KiB: read up to that bound",
        "multipart_too_deep": f"MIME parts nested deeper than {MAX_DEPTH} levels: each deeper "
        "multipart read as one part",
        "too_many_attachments": f"more than {MAX_ATTACHMENTS:,} attachments: the later ones "
        "not listed",
    }
    return [notes[code] for code in anomalies if code in notes]


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
class Leaf:
    """A leaf MIME part of a message, an attachment or not (a text body, an alternative):
    Zeek's files.log has a file for each."""

    entity: int
    """Which MIME entity of the message it is: 1 for the message's own header block, then
    each header block in order, multiparts included (Zeek's count)."""
    content_type: str
    filename: str | None
    size: int
    """What Zeek's MIME analyzer delivers of it: ``Attachment.size``, except that a
    quoted-printable body is counted decoded as Zeek decodes it (a CRLF after each line
    that is no soft break, the last line's included)."""
    attachment: bool


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
    # The trace and reply fields Zeek's smtp.log keeps, as Zeek keeps them: the field value
    # as on the wire (folding kept, encoded words not decoded, non-UTF-8 bytes as \xNN,
    # like ``subject_raw``), the last field of a name counting.
    reply_to: str | None = None
    in_reply_to: str | None = None
    user_agent: str | None = None
    """The last User-Agent, X-Mailer or X-User-Agent field."""
    user_agent_field: str | None = None
    """Which of the three it was (lower case), e.g. ``x-mailer``."""
    x_originating_ip: str | None = None
    """The first address in the last X-Originating-IP field that names one."""
    first_received: str | None = None
    """The last Received field, i.e. the first hop."""
    second_received: str | None = None
    """The Received field before it."""
    received_path: tuple[str, ...] = ()
    """The address each Received field names (pcapsmtp.smtp.header_addresses), top field
    first, an address repeating the one before left out; at most MAX_HOPS."""
    leaves: tuple[Leaf, ...] = ()
    """The leaf parts in message order (attachments too), at most MAX_ATTACHMENTS
    attachments and MAX_OTHER_PARTS others."""
    entities: int = 0
    """Header blocks read: the MIME entities the message began."""


_FOLD = re.compile(r"\r?\n(?=[ \t])")
_PARSER = BytesHeaderParser(policy=policy.compat32)
_DECODED_FIELDS = (
    # field, MessageFacts attribute, several fields joined (else the first one counts)
    ("from", "from_", False),
    ("to", "to", True),
    ("cc", "cc", True),
    ("subject", "subject", False),
)
_READ_FIELDS = frozenset(("received", "message-id", "date", *(f[0] for f in _DECODED_FIELDS)))
"""The fields MessageScanner._top_facts reads (lower case)."""


class MessageScanner:
    """Message bytes in, ``MessageFacts`` out; see the module docstring.

    The byte scans run in the compiled core (``_core.MessageScan``); each header block it
    finds comes back here to be read by the email package (``_describe_block``).
    """

    __slots__ = ("_core", "_facts", "_result")

    def __init__(self, dot_stuffed: bool = True) -> None:
        self._core = MessageScan(dot_stuffed)
        self._result: MessageFacts | None = None
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
        if data and self._result is None:
            self._core.feed(data, self._describe_block)

    def feed_data(self, data: bytes, pos: int) -> int:
        """DATA bytes from ``data[pos]`` on as the client sent them: the message's part is
        fed; returns the index in ``data`` where the end-of-data marker (CRLF.CRLF, RFC
        5321 4.1.1.4) ends, also when it came split across calls, or -1."""
        return self._core.data_end(data, pos, self._describe_block)

    def feed_bdat(self, data: bytes, pos: int, remaining: int) -> int:
        """A BDAT chunk's bytes from ``data[pos]`` on, ``remaining`` of them still to come:
        what the chunk holds is fed; returns how many bytes that was."""
        return self._core.bdat(data, pos, remaining, self._describe_block)

    @property
    def bdat_left(self) -> int:
        """BDAT: bytes of the chunk being read still to come (kept in the core, which
        lowers it as the flow table feeds the chunk: ``sink``)."""
        return self._core.bdat_left

    @bdat_left.setter
    def bdat_left(self, left: int) -> None:
        self._core.bdat_left = left

    def sink(self) -> tuple[MessageScan, object]:
        """What the flow table feeds a DATA body's or a BDAT chunk's bytes to while the
        dialogue reads one (``TcpFlow.absorb``): the scan and the describer, so the bytes
        take the path ``feed_data`` or ``feed_bdat`` takes, with no call into Python but
        for a header block."""
        return self._core, self._describe_block

    def lost(self) -> None:
        """DATA bytes the capture lacks: an end-of-data marker cannot span them."""
        self._core.gap(self._describe_block)

    def finish(self) -> MessageFacts:
        """Facts about everything fed; later calls return the same record."""
        if self._result is None:
            facts = self._facts
            (
                facts.size,
                facts.parts,
                leaves,
                facts.headers_truncated,
                anomalies,
                facts.bare_lf,
                facts.eight_bit,
                facts.entities,
            ) = self._core.finish(self._describe_block)
            facts.attachments = [
                Attachment(filename, content_type, size, encoded, encoding)
                for content_type, encoding, filename, size, encoded, attached, _, _ in leaves
                if attached
            ]
            facts.leaves = tuple(
                Leaf(entity, content_type, filename, delivered, attached)
                for content_type, _, filename, _, _, attached, entity, delivered in leaves
            )
            facts.anomalies = anomalies
            self._result = facts
        return self._result

    # -- header blocks ----------------------------------------------------------

    def _describe_block(
        self, block: bytes, top: bool, nested: bool, parent_digest: bool
    ) -> tuple[bytes | None, bool, tuple[str, str, str | None, bool] | None, list[str]]:
        """A header block the core found, read by the email package: (multipart boundary,
        multipart/digest, (content type, transfer encoding, filename, attachment) when the
        part is an attachment or another leaf, anomaly codes in the order found). Never
        raises on peer data."""
        if top:
            return _block_description(block, nested, parent_digest, self)
        if len(block) > _CACHED_PART_BLOCK:
            return _block_description(block, nested, parent_digest, None)
        boundary, digest, leaf, found = _part_description(block, nested, parent_digest)
        return boundary, digest, leaf, list(found)

    # -- header facts ---------------------------------------------------------

    def _top_facts(self, entity: Message, block: bytes, found: list[str]) -> None:
        facts = self._facts
        fields: dict[str, list[str]] = {}  # the fields read here, by lower-case name
        trace: list[tuple[str, str]] = []  # the ones _trace_facts reads, in order
        for name, value in entity.raw_items():
            key = name.strip().lower()
            if key in _READ_FIELDS:
                fields.setdefault(key, []).append(value)
            if key in _TRACE_FIELDS:
                trace.append((key, value))
        facts.received = len(fields.get("received", ()))
        if not block.isascii():
            found.append("raw_8bit_header")
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
                found.append(f"undecodable_{name}")
        if "subject" in fields:
            facts.subject_raw = _wire_text(fields["subject"][0])
        _trace_facts(facts, trace)


_CACHED_PART_BLOCK = 1024
"""A body part's header block up to this size is read once for all the messages that repeat
it (most parts' "Content-Type: text/plain; charset=utf-8"): the email package's parse was
the larger half of the message scan's time."""


@functools.lru_cache(maxsize=256)
def _part_description(
    block: bytes, nested: bool, parent_digest: bool
) -> tuple[bytes | None, bool, tuple[str, str, str | None, bool] | None, tuple[str, ...]]:
    """_block_description of a body part's block (not the message's own: that one also
    fills the message's facts), its anomaly codes as a tuple: a cached answer is shared."""
    boundary, digest, leaf, found = _block_description(block, nested, parent_digest, None)
    return boundary, digest, leaf, tuple(found)


def _block_description(
    block: bytes, nested: bool, parent_digest: bool, top: MessageScanner | None
) -> tuple[bytes | None, bool, tuple[str, str, str | None, bool] | None, list[str]]:
    """MessageScanner._describe_block of a block; ``top``: the scanner whose message this
    block heads (its facts are filled), None for a body part's block."""
    found: list[str] = []
    try:
        entity = _PARSER.parsebytes(block)
        if parent_digest:
            entity.set_default_type("message/rfc822")
        info, anomalies = _describe(entity)
        if top is not None:
            top._top_facts(entity, block, found)
        found += anomalies
    except Exception:  # the email package meeting input nobody foresaw: we never raise
        info = _Entity("text/plain", "plain", None, "7bit", None, None)
        found.append("header_parse_error")
    if top is not None:
        top._facts.content_type = info.content_type
    attachment = info.disposition == "attachment" or info.filename is not None
    if info.content_type == "message/rfc822" and nested:
        attachment = True
    leaf = None
    if attachment or info.boundary is None:
        leaf = (info.content_type, info.encoding, info.filename, attachment)
    return info.boundary, info.subtype == "digest", leaf, found


def _wire_text(value: str) -> str:
    if value.isascii():
        return value  # no 8-bit byte kept as a surrogate: the bytes are the text
    return _raw_bytes(value).decode("utf-8", "backslashreplace")


_KEPT_AS_ON_THE_WIRE = {"reply-to": "reply_to", "in-reply-to": "in_reply_to"}
_USER_AGENTS = ("user-agent", "x-mailer", "x-user-agent")


_TRACE_FIELDS = frozenset((*_KEPT_AS_ON_THE_WIRE, *_USER_AGENTS, "x-originating-ip", "received"))


def _trace_facts(facts: MessageFacts, trace: list[tuple[str, str]]) -> None:
    """The fields Zeek's smtp.log keeps beyond the ones above, in field order: ``trace``
    holds those of the block's fields (lower-case name, raw value)."""
    received: list[str] = []
    hops = 0
    for key, value in trace:
        if key in _KEPT_AS_ON_THE_WIRE:
            setattr(facts, _KEPT_AS_ON_THE_WIRE[key], _wire_text(value))
        elif key in _USER_AGENTS:
            facts.user_agent, facts.user_agent_field = _wire_text(value), key
        elif key == "x-originating-ip":
            found = ip_addresses(_FOLD.sub("", _wire_text(value)), limit=1)
            if found:
                facts.x_originating_ip = found[0]
        elif key == "received":
            facts.second_received = facts.first_received
            facts.first_received = _wire_text(value)
            hops += 1
            if hops > MAX_HOPS:
                continue
            address = received_address(_FOLD.sub("", facts.first_received))
            if address and (not received or received[-1] != address):
                received.append(address)
    if received:
        facts.received_path = tuple(received)


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
    params, codec = _param_fields(entity)
    content_type = params.get_content_type()  # always one "/" (RFC 2045 5.2 fallback)
    maintype, _, subtype = content_type.partition("/")
    encoding = params.get("content-transfer-encoding")
    type_params = _TypeParams(params)
    boundary = None
    if maintype == "multipart":
        text = type_params.boundary()
        if not text or len(text) > MAX_BOUNDARY:
            anomalies.append("multipart_without_boundary")
        else:
            boundary = text.encode(codec, "replace")
    info = _Entity(
        content_type=content_type,
        subtype=subtype,
        disposition=params.get_content_disposition(),
        encoding=str(encoding).strip().lower() if encoding else "7bit",
        boundary=boundary,
        filename=_filename(params, type_params, anomalies),
    )
    return info, anomalies


class _TypeParams:
    """Content-Type's parameters, parsed by the email package (``Message.get_params``) at
    most once for the boundary and the name: ``get_boundary`` and ``get_param`` each parse
    the field again. Parsed only when one is asked for, as those calls would."""

    __slots__ = ("_message", "_params")

    def __init__(self, message: Message) -> None:
        self._message = message
        self._params: list | None = None

    def get(self, name: str) -> str | tuple | None:
        """``Message.get_param(name)``: the first parameter of that name, unquoted."""
        if self._params is None:
            self._params = self._message.get_params(header="content-type") or []
        for key, value in self._params:
            if key.lower() == name:
                return value
        return None

    def boundary(self) -> str | None:
        """``Message.get_boundary()``."""
        if "content-type" not in self._message:
            return None
        if self._params is None:
            self._params = self._message.get_params(header="content-type") or []
        for key, value in self._params:
            if key.lower() == "boundary":
                return collapse_rfc2231_value(value).rstrip()
        return None


def _filename(params: Message, type_params: _TypeParams, anomalies: list[str]) -> str | None:
    """Content-Disposition filename, else Content-Type name (email's get_filename order)."""
    for header in ("content-disposition", "content-type"):
        if header == "content-disposition":
            value = params.get_param("filename", header=header)
        else:
            value = type_params.get("name")
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


_PARAM_FIELDS = frozenset(("content-type", "content-disposition", "content-transfer-encoding"))


def _param_fields(entity: Message) -> tuple[Message, str]:
    """Content-Type, Content-Disposition and Content-Transfer-Encoding as text, for the email
    package's parameter parsing, and the codec the (last) Content-Type was read with: 8-bit
    bytes are decoded first, so raw UTF-8 or Shift_JIS names survive, and folding is
    removed. When the three are plain ASCII on one line (nearly always) that changes
    nothing, and the parsed block itself is read."""
    picked = [
        (name.strip().lower(), value)
        for name, value in entity.raw_items()
        if name.strip().lower() in _PARAM_FIELDS
    ]
    if all(_plain(value) for _, value in picked):
        return entity, "ascii"
    message = Message()
    codec = "ascii"
    message.set_default_type(entity.get_default_type())
    for key, value in picked:
        text, field_codec = _field_text(value)
        if key == "content-type":
            codec = field_codec
        message[key] = _FOLD.sub("", text)
    return message, codec


def _plain(value: str) -> bool:
    """A field value that ``_field_text`` and unfolding leave as it is: ASCII (no 8-bit
    byte, which the parser keeps as a surrogate), no ESC (raw ISO-2022-JP), one line."""
    return value.isascii() and "\x1b" not in value and "\n" not in value


# -- header text decoding -----------------------------------------------------


def decode_field(value: str) -> tuple[str, bool]:
    """A header field value (as compat32 gives it) to text: 8-bit bytes and RFC 2047 encoded
    words decoded, folding removed. The flag is False when something had to be replaced."""
    if _plain(value) and "\r" not in value and "=?" not in value:
        return value.strip(), True  # all the steps below leave of such a value
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


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
"""What a codec may decode that is no character (UTF-7 "+2AA-"): it cannot be encoded as UTF-8,
so it must not reach the core or any output."""


def _decode_bytes(data: bytes, charset: str | None) -> tuple[str, bool]:
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
    wide = [c for c in text if ord(c) > 127]
    if not all(_CJK.match(c) for c in wide):
        return False
    return len(wide) > 1 or any(_KANA.match(c) for c in wide)

"""Facts from a mail message as it crosses DATA or BDAT: headers, MIME parts, attachments.

Sans-io and bounded: ``MessageScanner.feed`` takes the message in any split and never holds
the body. The scans that look at every byte (the end of DATA, dot-unstuffing, size, bare LFs
and 8-bit bytes, where header blocks end and which header lines are kept, the delimiter lines
of the open multiparts, base64 sizes) run in the compiled core (``core/src/message_scan.rs``,
``pcapsmtp._core.MessageScan``). Only the top header block (``HEADER_LIMIT``), one part
header block at a time (``PART_HEADER_LIMIT``; both in pcapsmtp.smtp.message_facts, with the
``MessageFacts`` this module fills) and a few bytes of overlap for the boundary
search are kept, so a 50 MB message costs the same memory as a 5 KB one.

Header fields are parsed by the ``email`` package (compat32, so raw values survive); RFC 2047
encoded words and RFC 2231 parameters are decoded by it too, with charset fallbacks for the
mislabelled Japanese, Chinese and Western mail seen in the wild (pcapsmtp.smtp.header_text).
What a MIME part's header block says of its body is read in pcapsmtp.smtp.mime_entities.
Peer data never makes this module raise: oddities become anomaly codes.
"""

from __future__ import annotations

import functools
from email import policy
from email.message import Message
from email.parser import BytesHeaderParser

from pcapsmtp._core import MessageScan
from pcapsmtp.smtp.header_addresses import ip_addresses, received_address
from pcapsmtp.smtp.header_text import FOLD, decode_field, raw_bytes
from pcapsmtp.smtp.message_facts import MAX_HOPS, Attachment, Leaf, MessageFacts
from pcapsmtp.smtp.mime_entities import Entity, describe

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
        info, anomalies = describe(entity)
        if top is not None:
            top._top_facts(entity, block, found)
        found += anomalies
    except Exception:  # the email package meeting input nobody foresaw: we never raise
        info = Entity("text/plain", "plain", None, "7bit", None, None)
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
    return raw_bytes(value).decode("utf-8", "backslashreplace")


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
            found = ip_addresses(FOLD.sub("", _wire_text(value)), limit=1)
            if found:
                facts.x_originating_ip = found[0]
        elif key == "received":
            facts.second_received = facts.first_received
            facts.first_received = _wire_text(value)
            hops += 1
            if hops > MAX_HOPS:
                continue
            address = received_address(FOLD.sub("", facts.first_received))
            if address and (not received or received[-1] != address):
                received.append(address)
    if received:
        facts.received_path = tuple(received)

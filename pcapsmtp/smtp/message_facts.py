"""What a mail message says about itself (``MessageFacts``, its attachments and leaf parts)
and the bounds its reading keeps, whatever a peer sends (docs/limits.md, "One message").

The records are filled by pcapsmtp.smtp.message's ``MessageScanner``; the bounds are the
core's (``core/src/message_scan.rs``) where the core applies them.
"""

from __future__ import annotations

from dataclasses import dataclass

from pcapsmtp import _core

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

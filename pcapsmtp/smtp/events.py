"""Typed events the dialogue parser emits: commands, replies, message ends, TLS, gaps, oddities."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from pcapsmtp.smtp.message_facts import MessageFacts

MAX_SHARED_TEXTS = 4_096
SHARED_TEXT_LENGTH = 120
"""Longer texts are not shared: the table stays under a megabyte."""
_SHARED_TEXTS: dict[str, str] = {}


def shared_text(text: str) -> str:
    """One string for every reply line and reply entry of the same text (a server says
    "250 2.1.0 Ok" in every session, and 100,000 open connections of a flood hold one
    greeting each); a bounded table, started over when full. Strings never change, so
    sharing one changes nothing else."""
    if len(text) > SHARED_TEXT_LENGTH:
        return text
    found = _SHARED_TEXTS.get(text)
    if found is None:
        if len(_SHARED_TEXTS) >= MAX_SHARED_TEXTS:
            _SHARED_TEXTS.clear()
        found = _SHARED_TEXTS[text] = text
    return found


class Side(StrEnum):
    """Which end of the connection sent something: the client (who opened it) or the server.

    An enum rather than a bool: both ends are named wherever they appear (``sender``,
    ``one_sided``), and as a StrEnum it is the plain "client" / "server" the JSON and the
    text outputs carry. (The TCP layer numbers the two directions 0 and 1 instead:
    ``TcpFlow.client`` says which one is the client's.)
    """

    CLIENT = "client"
    SERVER = "server"

    @property
    def peer(self) -> Side:
        return Side.SERVER if self is Side.CLIENT else Side.CLIENT


CLIENT = Side.CLIENT
SERVER = Side.SERVER

GREETING = "<greeting>"
"""Virtual command the server's greeting answers (Zeek's CONN_ESTABLISHMENT)."""
END_OF_DATA = "."
"""Virtual command the reply to a message answers (Zeek's END_OF_DATA)."""
AUTH_RESPONSE = "<auth-response>"
"""A client line answering a 334 challenge: always a credential, never kept."""

REDACTED = "[redacted]"


@dataclass(slots=True)
class Command:
    """A client command line (or a virtual command), with where it was on the wire."""

    verb: str
    """Upper-case verb, or one of GREETING, END_OF_DATA, AUTH_RESPONSE."""
    argument: str
    """The rest of the line as UTF-8, other bytes as ``\\xNN``; REDACTED where it held a secret."""
    frame: int
    """Frame that completed the line."""
    time_ns: int
    first_frame: int = 0
    offset: int = 0
    """Stream offset of the line in the client direction."""
    length: int = 0
    """Bytes of the line, CRLF included."""
    secret: bool = False
    """The argument was a credential and has been redacted."""
    bdat_size: int | None = None
    bdat_last: bool = False
    pipelined: bool = False
    """Sent before the reply to the previous command arrived."""
    truncated: bool = False
    """The snap length cut the line: its argument is incomplete."""
    reply: Reply | None = None
    """Filled in when the server's reply arrives."""
    message: MessageEnd | None = None
    """For the command that ended a message (the final dot, BDAT ... LAST): that message."""

    @property
    def text(self) -> str:
        if self.verb == AUTH_RESPONSE:
            return REDACTED
        return f"{self.verb} {self.argument}".rstrip() if self.argument else self.verb


@dataclass(slots=True)
class Reply:
    """A complete (possibly multi-line) server reply."""

    code: int
    lines: list[str]
    """Text of each line after the code and separator."""
    frame: int
    time_ns: int
    first_frame: int = 0
    offset: int = 0
    command: Command | None = None
    """The command this reply answers; None for an unsolicited reply."""
    line_frames: tuple[int, ...] = ()
    """The distinct frames that completed its lines, in order (evidence for a long reply)."""
    truncated: bool = False
    """The snap length cut it: its text is incomplete."""
    uncertain: bool = False
    """Paired by its code and the order of the dialogue after bytes the capture lacks (a gap,
    a capture started mid-session): it may answer another command than ``command``."""

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


@dataclass(slots=True)
class MessageEnd:
    """A message fully transferred by DATA (at the final dot) or by the BDAT LAST chunk."""

    frame: int
    time_ns: int
    size: int
    """Bytes of the message as the server receives it."""
    facts: MessageFacts | None
    """When the message scanner could read it."""
    complete: bool = True
    """False when bytes of the message were missing from the capture."""


@dataclass(slots=True)
class Unanswered:
    """A command whose reply the capture does not hold: it was in bytes the capture lacks
    (``reason`` 'not captured'), or none came before the capture ended ('end')."""

    command: Command
    reason: str


@dataclass(slots=True)
class TlsStarted:
    """From this frame on, the sender's bytes are TLS records."""

    sender: Side
    frame: int
    time_ns: int
    implicit: bool
    """True on a connection that is TLS from its first byte (port 465), False after STARTTLS."""


@dataclass(slots=True)
class Gap:
    """Bytes of one direction the capture does not hold."""

    sender: Side
    frame: int
    time_ns: int
    length: int
    reason: str


@dataclass(slots=True, frozen=True)
class Anomaly:
    """Odd input, tolerated and recorded (a stable snake_case code, as Zeek's weirds)."""

    code: str
    frame: int
    sender: Side
    detail: str = ""


@dataclass(slots=True, frozen=True)
class Redacted:
    """Credentials a line repeated after the AUTH exchange sent them (a server echoing them
    in a reply, a client typing its password into a later line), already replaced by
    ``[redacted]`` in that line's text: where their bytes are on the wire, for the export
    to overwrite them (``auth_secrets.py``)."""

    sender: Side
    frame: int
    """Frame that completed the line."""
    ranges: tuple[tuple[int, int], ...]
    """Stream offsets [start, end) in ``sender``'s direction."""


Event = Command | Reply | MessageEnd | Unanswered | TlsStarted | Gap | Anomaly | Redacted


@dataclass(slots=True)
class Limits:
    """Bounds on everything a peer controls."""

    max_line: int = 4096
    """Longer command or reply lines are cut (RFC 5321 allows 512 and 512+)."""
    max_reply_lines: int = 200
    max_held: int = 16384
    """Client bytes held while the reply to DATA is awaited."""
    max_pending: int = 1000
    """Commands awaiting replies (pipelining depth)."""
    extra: dict = field(default_factory=dict)

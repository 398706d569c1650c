"""What the mail-log parsers hand upward: one ``LogLine`` per line of a known MTA, with the
facts linking needs (queue id, peer address, status) already picked out."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

# What a line records (``LogLine.event``).
CONNECT = "connect"
"""A client connected to this MTA (Postfix 'connect from', Exim 'SMTP connection from')."""
DISCONNECT = "disconnect"
"""The inbound connection ended (Postfix 'disconnect from', 'lost connection', 'timeout')."""
RECEIVED = "received"
"""This MTA took a message from a client (Postfix 'client=', Exim '<=', Sendmail 'from=')."""
REJECTED = "rejected"
"""This MTA refused a client's command (Postfix 'reject:', Exim 'rejected', Sendmail 'reject=')."""
DELIVERY = "delivery"
"""An attempt to pass a message on, with its status (sent, deferred, bounced, expired)."""
CONNECT_FAILED = "connect-failed"
"""This MTA could not connect to the next hop (refused, timed out, unreachable)."""
MESSAGE = "message"
"""About a queued message, not a connection (cleanup, qmgr 'from=', 'removed', Exim 'Completed')."""
OTHER = "other"
"""A line of a known MTA that says nothing linking uses (warnings, statistics, TLS)."""

INBOUND = "in"
"""The line is about a client talking to this MTA: the session's server kept the log."""
OUTBOUND = "out"
"""The line is about this MTA talking to a server: the session's client kept the log."""


@dataclass(slots=True)
class LogLine:
    """One line of a mail log, as far as it was understood."""

    source: str
    """The log file's name, as given."""
    number: int
    """1-based line number in that file."""
    time_ns: int | None
    """UTC; None when the line had no readable time."""
    precise: bool
    """The time has sub-second digits (ISO / RFC 5424 stamps); syslog's has whole seconds."""
    mta: str
    """'postfix', 'exim', 'sendmail' or 'qmail'."""
    program: str
    """'postfix/smtpd', 'exim', 'sm-mta', 'qmail-send', ..."""
    pid: int | None
    text: str
    """The line as read (cut at the line limit), for showing."""
    event: str = OTHER
    direction: str | None = None
    """INBOUND, OUTBOUND or None (about the message only)."""
    queue_id: str | None = None
    """This MTA's id for the message the line is about."""
    aliases: tuple[str, ...] = ()
    """Other ids this MTA hands out for the same message (qmail's 'qp' number)."""
    remote_id: str | None = None
    """The id the next hop gave in its reply ('queued as X')."""
    peer: str | None = None
    """The other MTA's IP address, as text (the client inbound, the server outbound)."""
    peer_port: int | None = None
    peer_name: str | None = None
    status: str | None = None
    """sent | deferred | bounced | expired | rejected (delivery and reject lines)."""
    dsn: str | None = None
    """Enhanced status code (dsn=2.0.0), when logged."""
    code: int | None = None
    """The SMTP reply code the line quotes (a reject, 'host said: 450 ...')."""
    recipient: str | None = None
    sender: str | None = None
    delivery: str | None = None
    """qmail's delivery number, which its later status line refers to."""
    detail: str | None = None
    """The reason in brackets of a status, the reply text of a reject."""
    queued: bool = False
    """The line says the message is now safely in this MTA's queue (Postfix qmgr 'from=',
    Exim '<=', Sendmail 'from=', qmail 'info msg'): what a 250 after the data promises."""


@dataclass(slots=True)
class FileStats:
    """How reading one log file went."""

    source: str
    lines: int = 0
    used: int = 0
    """Lines of a known MTA kept for linking."""
    other_programs: Counter[str] = field(default_factory=Counter)
    """Lines of programs that are no MTA (dovecot, kernel, ...), by program."""
    not_understood: int = 0
    """Lines without a recognisable time stamp and program."""
    cut: int = 0
    """Lines longer than the limit, cut to it."""
    outside: int = 0
    """MTA lines outside the captures' time (with the linking window), not kept."""
    dropped: int = 0
    """Lines not kept because the kept-lines limit was reached."""
    formats: Counter[str] = field(default_factory=Counter)
    """Time-stamp formats seen: rfc3164, iso, rfc5424, exim, tai64n."""
    mtas: Counter[str] = field(default_factory=Counter)
    first_ns: int | None = None
    last_ns: int | None = None
    warnings: list[str] = field(default_factory=list)

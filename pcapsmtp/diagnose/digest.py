"""What the rules over the whole capture and the per-peer summary read of a session, kept
small: a ``Digest`` of a few hundred bytes per session, made when the session ends.

A capture of 200,000 sessions cannot hold every ``Session`` until the output is written
(about 4.5 KB each); the sessions are then spooled to a temporary file
(pcapsmtp.analysis.spool) and read back one at a time. The capture-wide rules
(diagnose/storms.py, the retries of diagnose/replies.py) and ``health.summarize`` work from
the digests, and load a session from the spool only when they write a finding about it.
A plain list of sessions works too: its digests are made when asked.
"""

from __future__ import annotations

from collections.abc import Sequence

from pcapsmtp.capture.addresses import address
from pcapsmtp.smtp import codes
from pcapsmtp.smtp.model import Outcome, Session

RETRY_OUTCOMES = (Outcome.DELIVERED, Outcome.DEFERRED, Outcome.REJECTED)
"""Transactions a deferral's retry can be (diagnose/replies.py)."""
MAX_SHARED = 4096
"""Distinct values ``_shared`` keeps."""
_SHARED: dict = {}


def _shared(value):
    """One object for equal values a flood repeats in every digest (the server's address,
    the reply codes ``(220,)``, the acknowledged sizes ``(0, 0)``): about 140 bytes less per
    digest there. Immutable values only."""
    kept = _SHARED.get(value)
    if kept is not None:
        return kept
    if len(_SHARED) < MAX_SHARED:
        _SHARED[value] = value
    return value


class Digest:
    """One session as the capture-wide rules see it (fields named after what they hold)."""

    __slots__ = (
        "acked",
        "capture",
        "client",
        "delivered",
        "envelopes",
        "first_frame",
        "first_time_ns",
        "id",
        "ips",
        "last_time_ns",
        "limits",
        "messages",
        "negatives",
        "outcome",
        "replies",
        "server_port",
        "soft_bounce",
        "throttled",
    )

    def __init__(self, session: Session, soft_bounce: bool, throttled: bool) -> None:
        flow = session.flow
        first, second = flow.endpoints
        self.capture = session.capture
        self.id = session.id
        self.client = flow.client
        """Index of the client in ``ips``."""
        self.ips = (_shared(first.ip), _shared(second.ip))
        """The endpoints' addresses in the flow's order."""
        self.acked = _shared((first.max_acked_ip_len, second.max_acked_ip_len))
        self.server_port = flow.endpoints[flow.server].port
        self.first_frame = flow.first_frame
        self.first_time_ns = flow.first_time_ns
        self.last_time_ns = flow.last_time_ns
        self.outcome = session.outcome
        self.messages = tuple(t.outcome for t in session.transactions) or ()
        self.delivered = Outcome.DELIVERED in self.messages
        replies = _server_replies(session)
        self.replies = _shared(tuple(reply.code for reply in replies)) or ()
        self.negatives = (
            tuple(
                (
                    reply.code,
                    codes.parse_enhanced(reply.lines[0]) if reply.lines else None,
                    " ".join(reply.text.split()),
                    reply.frame,
                )
                for reply in replies
                if codes.is_transient(reply.code) or codes.is_permanent(reply.code)
            )
            or ()
        )
        """(code, enhanced code, text with its whitespace made single spaces, frame) of each
        4xx and 5xx reply, in order."""
        self.envelopes = (
            tuple(
                (number, t.mail_from, tuple(r.address for r in t.rcpt_to), t.first_frame)
                for number, t in enumerate(session.transactions)
                if t.outcome in RETRY_OUTCOMES
            )
            or ()
        )
        """(transaction index, sender, recipients, first frame) of each transaction a
        deferral's retry can be."""
        self.soft_bounce = soft_bounce
        """The soft-bounce rule has something to say about this session."""
        self.throttled = throttled
        """The server said it rate-limits (diagnose/storms.py ``rate-limited``)."""
        self.limits = tuple(session.limits()) or ()

    @property
    def key(self) -> tuple[str, int]:
        return (self.capture, self.id)

    @property
    def client_ip(self) -> bytes:
        return self.ips[self.client]

    @property
    def server_ip(self) -> bytes:
        return self.ips[1 - self.client]

    @property
    def destination(self) -> str:
        return address(self.server_ip, self.server_port)

    @property
    def client_name(self) -> str:
        return address(self.client_ip)


def _server_replies(session: Session):
    from pcapsmtp.diagnose.health import server_replies

    return server_replies(session)


def make_digest(session: Session) -> Digest:
    """The digest of a finished session (its id is set when the capture's sessions are
    numbered)."""
    from pcapsmtp.diagnose.replies import has_soft_bounce
    from pcapsmtp.diagnose.storms import throttled

    return Digest(session, has_soft_bounce(session), throttled(session))


def digests(sessions: Sequence[Session]) -> Sequence[Digest]:
    """The digests of ``sessions``: the spool's own, or made now for a list."""
    kept = getattr(sessions, "digests", None)
    if kept is not None:
        return kept
    return [make_digest(session) for session in sessions]

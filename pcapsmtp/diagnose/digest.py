"""What the rules over the whole capture and the per-peer summary read of a session, kept
small: a ``Digest`` of a few hundred bytes per session, made when the session ends.

A capture of 200,000 sessions cannot hold every ``Session`` until the output is written
(about 4.5 KB each); the sessions are then spooled to a temporary file
(pcapsmtp.analysis.spool) and read back one at a time. The capture-wide rules
(diagnose/storms.py, the retries of diagnose/replies.py) and ``health.summarize`` work from
the digests, and load a session from the spool only when they write a finding about it.
A plain list of sessions works too: its digests are made when asked.

A spool keeps its digests packed (``DigestTable``): each one a ``marshal`` record in one
buffer, the values sessions repeat (reply codes, outcomes, acknowledged sizes) written once,
and a ``Digest`` object made each time one is read (about 3 µs). About 0.26 KB a session
where the objects took 0.73 KB (traced, the sessions of the generated 200 MB capture), so
a capture ten times as long holds far less than ten times the memory for them
(docs/performance-log.md, "Flat with the capture's length").
"""

from __future__ import annotations

import marshal
from array import array
from collections.abc import Callable, Hashable, Iterator, Sequence
from itertools import pairwise

from pcapsmtp.capture.addresses import address
from pcapsmtp.smtp import codes
from pcapsmtp.smtp.events import Reply
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

    def __init__(
        self,
        session: Session,
        soft_bounce: bool,
        throttled: bool,
        replies: Sequence[Reply] | None = None,
    ) -> None:
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
        if replies is None:
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


_SHARED_FIELDS = ("acked", "capture", "messages", "outcome", "replies")
"""Fields whose values repeat from one session to the next: written once in a table's
values, each record naming its value by its index there."""
_FIELDS = Digest.__slots__
_SHARED_AT = tuple(_FIELDS.index(name) for name in _SHARED_FIELDS)
_OUTCOME_AT = _FIELDS.index("outcome")
_MESSAGES_AT = _FIELDS.index("messages")
_ID_AT = _FIELDS.index("id")


class DigestTable(Sequence):
    """Digests packed in one buffer, in the order they were added (``reorder`` and
    ``number`` as the spool sorts and numbers its sessions); reading one makes its
    ``Digest`` (a new object each time: setting a field of it changes nothing here)."""

    def __init__(self, data: bytearray | None = None) -> None:
        self._data = bytearray() if data is None else data
        """The records one after another: ``+=``, ``len`` and slices are all it is asked
        for (a spool's keeps most of them in a file: pcapsmtp.analysis.spool.SpilledBytes)."""
        self._ends = array("q")
        """Where each record ends in ``_data``."""
        self.first_frames = array("q")
        """Each digest's ``first_frame``, what the spool sorts by."""
        self._values: list = []
        """The shared values (``_SHARED_FIELDS``), at most MAX_SHARED; then a record holds
        its value itself."""
        self._index: dict = {}
        self._numbered = False
        """Ids are positions + 1 (``number``)."""
        self._where: array | None = None
        """The record at each position, once ``reorder`` has changed the order."""

    def append(self, digest: Digest) -> None:
        record = [getattr(digest, name) for name in _FIELDS]
        for at in _SHARED_AT:
            record[at] = self._value(record[at], at)
        self._data += marshal.dumps(tuple(record))
        if self._where is not None:
            self._where.append(len(self._ends))
        self._ends.append(len(self._data))
        self.first_frames.append(digest.first_frame)

    def _value(self, value, at: int):
        """The index of ``value`` in the shared values, or what the record holds instead
        (outcomes as their text; never an int, which names a shared value)."""
        key = (at, value)
        index = self._index.get(key)
        if index is None:
            if len(self._values) >= MAX_SHARED:
                if at == _OUTCOME_AT:
                    return _text(value)
                if at == _MESSAGES_AT:
                    return tuple(map(_text, value))
                return value
            index = self._index[key] = len(self._values)
            self._values.append(value)
        return index

    def _digest(self, record: tuple, position: int) -> Digest:
        record = list(record)
        values = self._values
        for at in _SHARED_AT:
            value = record[at]
            if type(value) is int:
                record[at] = values[value]
            elif at == _OUTCOME_AT:
                record[at] = _outcome(value)
            elif at == _MESSAGES_AT:
                record[at] = tuple(map(_outcome, value))
        if self._numbered:
            record[_ID_AT] = position + 1
        digest = Digest.__new__(Digest)
        _fill(digest, record)
        return digest

    def reorder(self, order: Sequence[int]) -> None:
        """The digests at positions ``order`` become positions 0, 1, ... (the records stay
        where they are: an array of where each position's record is, not a second copy of
        the buffer while the first is still held)."""
        where = self._where
        self._where = array("q", (where[n] for n in order) if where is not None else order)
        self.first_frames = array("q", (self.first_frames[n] for n in order))

    def number(self) -> None:
        """Ids 1, 2, ... in the present order."""
        self._numbered = True

    def _record(self, position: int) -> bytearray:
        if self._where is not None:
            position = self._where[position]
        start = self._ends[position - 1] if position else 0
        return self._data[start : self._ends[position]]

    def __len__(self) -> int:
        return len(self._ends)

    def __getitem__(self, position):
        if isinstance(position, slice):
            return [self[n] for n in range(*position.indices(len(self)))]
        if position < 0:
            position += len(self)
        if not 0 <= position < len(self):
            raise IndexError("digest index out of range")
        return self._digest(marshal.loads(self._record(position)), position)

    def __iter__(self) -> Iterator[Digest]:
        if self._where is not None:
            for position in range(len(self)):
                yield self._digest(marshal.loads(self._record(position)), position)
            return
        data, start = self._data, 0
        for position, end in enumerate(self._ends):
            yield self._digest(marshal.loads(data[start:end]), position)
            start = end


def _fill(digest: Digest, record: list) -> None:
    """Every field of ``digest`` from ``record``, in ``_FIELDS``' order (``__slots__``; the
    read-back test of tests/diagnose/test_digest_table.py fails otherwise), by one unpacking:
    a ``setattr`` call per field was half the time of reading a digest (2.7 -> 1.5 us;
    the capture-wide rules and the per-peer summary read each digest about ten times)."""
    (
        digest.acked,
        digest.capture,
        digest.client,
        digest.delivered,
        digest.envelopes,
        digest.first_frame,
        digest.first_time_ns,
        digest.id,
        digest.ips,
        digest.last_time_ns,
        digest.limits,
        digest.messages,
        digest.negatives,
        digest.outcome,
        digest.replies,
        digest.server_port,
        digest.soft_bounce,
        digest.throttled,
    ) = record


def _text(outcome: Outcome | None) -> str | None:
    return None if outcome is None else outcome.value


def _outcome(text: str | None) -> Outcome | None:
    return None if text is None else Outcome(text)


def _server_replies(session: Session):
    from pcapsmtp.diagnose.health import server_replies

    return server_replies(session)


def make_digest(session: Session) -> Digest:
    """The digest of a finished session (its id is set when the capture's sessions are
    numbered)."""
    from pcapsmtp.diagnose.replies import has_soft_bounce
    from pcapsmtp.diagnose.storms import throttled

    replies = _server_replies(session)
    return Digest(session, has_soft_bounce(session), throttled(session, replies), replies)


def in_time_groups(
    kept: Sequence[Digest], *keys: Callable[[Digest], Hashable], by_id: bool = False
) -> list[list[tuple[Hashable, array]]]:
    """For each of ``keys``, the positions of the digests grouped by that key: the groups
    in order of their first digest in time, each group's positions in time order (by
    ``first_time_ns``, then by ``id`` when ``by_id``, then by position), as
    ``sorted(kept, key=...)`` would meet them. Reads each digest once and keeps a few
    machine integers per digest, never the digests themselves (issue 21: the capture-wide
    rules of a long capture would otherwise hold every session's ``Digest`` at once)."""
    times: list[int] = []
    """A list, not a machine array: a capture's times can lie beyond 2^63 ns (pcapng)."""
    ids = array("q")
    found: list[dict[Hashable, array]] = [{} for _key in keys]
    for position, digest in enumerate(kept):
        times.append(digest.first_time_ns)
        if by_id:
            ids.append(digest.id)
        for key, groups in zip(keys, found, strict=True):
            name = key(digest)
            group = groups.get(name)
            if group is None:
                groups[name] = array("q", (position,))
            else:
                group.append(position)

    def order(position: int) -> tuple[int, ...]:
        if by_id:
            return (times[position], ids[position], position)
        return (times[position], position)

    result = []
    for groups in found:
        for name, group in groups.items():
            if not all(order(a) < order(b) for a, b in pairwise(group)):
                groups[name] = array("q", sorted(group, key=order))
        result.append(sorted(groups.items(), key=lambda item: order(item[1][0])))
    return result


class Chained(Sequence):
    """Several sequences one after another, each part's items read when they are reached:
    the digests of several captures (``Chain.digests``), or their sessions
    (pcapsmtp.analysis.spool ``Chain``)."""

    noun = "digest"

    def __init__(self, parts: list[Sequence]) -> None:
        self.parts = parts

    def __len__(self) -> int:
        return sum(map(len, self.parts))

    def __getitem__(self, position):
        if isinstance(position, slice):
            return [self[n] for n in range(*position.indices(len(self)))]
        if position < 0:
            position += len(self)
        if position >= 0:
            for part in self.parts:
                if position < len(part):
                    return part[position]
                position -= len(part)
        raise IndexError(f"{self.noun} index out of range")

    def __iter__(self) -> Iterator:
        for part in self.parts:
            yield from part


def digests(sessions: Sequence[Session]) -> Sequence[Digest]:
    """The digests of ``sessions``: the spool's own, or made now for a list."""
    kept = getattr(sessions, "digests", None)
    if kept is not None:
        return kept
    return [make_digest(session) for session in sessions]

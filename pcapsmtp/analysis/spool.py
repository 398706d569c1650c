"""Finished sessions kept in a temporary file instead of memory, read back one at a time.

A capture of 200,000 SMTP connections ends 200,000 sessions of about 4.5 KB each; holding
them until the output is written was most of the memory of such a run (docs/limits.md).
A ``SessionSpool`` pickles each session when it ends into an anonymous temporary file
(``tempfile.TemporaryFile``: unlinked at once, so the system removes it when the file is
closed or the process ends, also on an error, Ctrl-C or a kill) and keeps in memory only
where each one is and its ``Digest`` (pcapsmtp.diagnose.digest), which is what the rules
over the whole capture read. It is a ``Sequence`` of sessions in first-frame order, like
the list it replaces: iterating it reads each session back (a new object each time; the
file is read through the page cache), and a pickled spool (a worker process's result)
travels as the list of its sessions.

A session is written with ``pickle`` and a table of reducers (``REDUCERS``) for the slotted
dataclasses it is made of: each is written as its class and the tuple of its fields and read
back by calling the class with them, where ``pickle`` would write and read a dict of field
names for each (``__slotnames__``), or call ``dataclasses``' own ``__setstate__`` (written
in Python) for a frozen one. The same objects come back, shared ones and cycles included;
at half the CPU and less than half the bytes for a session of a connection flood
(docs/performance-log.md, "Hostile captures").
"""

from __future__ import annotations

import dataclasses
import io
import operator
import pickle
import tempfile
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from types import ModuleType

from pcapsmtp.diagnose.digest import Chained, Digest, DigestTable, make_digest
from pcapsmtp.smtp import events, message, model, software
from pcapsmtp.smtp.model import Session
from pcapsmtp.smtp.tls import facts as tls_facts
from pcapsmtp.tcp import model as tcp_model

KEEP_IN_MEMORY = 1000
"""Sessions held in memory before the spool starts writing (about 5 to 15 MB of them): a
capture of a few sessions, however large, pays no pickling (a session of a million RCPTs
holds tens of thousands of commands, and pickling them needs as much again while it runs)."""
KEEP_WHILE_READING = 100
"""Of those, the most held while the capture is still being read (``SessionSpool.reading``),
and after that once the spool has begun writing. A session that ends while the capture is
read is held on top of the connections still open, which is when memory peaks: on the
generated 1 GB capture 3,000 closed connections linger 10 s each while the first sessions
end. A capture that had to spool then is a large one, and its other sessions are spooled
too (about 0.3 ms each, written and read back twice: 0.3 s more on the 1 GB capture, 4 MiB
less at its peak). A capture whose sessions all end with it (the capture's end closes
every connection still open; the 200 MB generated capture) holds KEEP_IN_MEMORY, as before."""

DIGESTS_IN_MEMORY = 1 << 20
"""Bytes of packed digests (pcapsmtp.diagnose.digest.DigestTable) a spool holds in memory
(about 6,500 sessions at the generated captures' 160 bytes a digest); past them the digests
go to a temporary file too (``SpilledBytes``): they grew with the capture's length, about
4.6 MiB for the 29,976 sessions of the generator's 10 GB streamed."""
SPILL_EVERY = 1 << 16
"""Once spilling, digest bytes gathered in memory before they are written."""
READ_BLOCK = 1 << 13
"""Bytes read from the file at a time, around the digest asked for (the rules read the
digests mostly in order: about 50 of them each read)."""


class SpilledBytes:
    """The growing byte buffer of a spool's ``DigestTable``: in memory up to
    DIGESTS_IN_MEMORY bytes, then in an anonymous temporary file (as the spool's sessions)
    with only the last SPILL_EVERY bytes and one READ_BLOCK in memory. It is asked for
    ``+=`` (whole records, so no record is ever split between the file and memory), ``len``
    and slices, which come back as the same bytes a ``bytearray`` would give."""

    def __init__(self, limit: int | None = None) -> None:
        self._limit = DIGESTS_IN_MEMORY if limit is None else limit
        self._tail = bytearray()
        """What is not in the file yet."""
        self._written = 0
        """Bytes in the file (the tail follows them)."""
        self._file = None
        self._block = b""
        self._block_at = 0
        """The last READ_BLOCK read, and where it starts."""

    def __len__(self) -> int:
        return self._written + len(self._tail)

    def __iadd__(self, data: bytes) -> SpilledBytes:
        tail = self._tail
        tail += data
        if len(tail) >= (SPILL_EVERY if self._file is not None else self._limit):
            if self._file is None:
                self._file = tempfile.TemporaryFile(prefix="pcapsmtp-digests-", buffering=0)  # noqa: SIM115
            self._file.seek(self._written)
            self._file.write(tail)
            self._written += len(tail)
            self._tail = bytearray()
        return self

    def __getitem__(self, where: slice) -> bytes | bytearray:
        start, end = where.start, where.stop
        written = self._written
        if start >= written:
            return self._tail[start - written : end - written]
        if end > written:  # not a record: they are never split
            return self[start:written] + self._tail[: end - written]
        block, at = self._block, self._block_at
        if not (at <= start and end <= at + len(block)):
            at = start - start % READ_BLOCK
            self._file.seek(at)
            block = self._block = self._read(min(written, max(end, at + READ_BLOCK)) - at)
            self._block_at = at
        return block[start - at : end - at]

    def _read(self, size: int) -> bytes:
        parts = []
        while size > 0:
            part = self._file.read(size)
            if not part:
                raise OSError("the spooled digests' temporary file ended early")
            parts.append(part)
            size -= len(part)
        return b"".join(parts)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


BACK_REFERENCES = {events.Reply: ("command",)}
"""Fields that can point back to an object that points to theirs (a reply and the command it
answers): set after the object is made (pickle's state), so the cycle is written once."""


def _reducer(cls: type) -> Callable | None:
    """``obj -> (cls, its fields)`` for a slotted dataclass whose ``__init__`` takes every
    field and does nothing else; None for any other class (pickled as ``pickle`` would)."""
    if not dataclasses.is_dataclass(cls) or "__dataclass_fields__" not in cls.__dict__:
        return None
    fields = dataclasses.fields(cls)
    if (
        "__slots__" not in cls.__dict__
        or cls.__dictoffset__
        or hasattr(cls, "__post_init__")
        or len(fields) != len(cls.__dataclass_fields__)  # an InitVar or a ClassVar
        or not all(f.init for f in fields)
        or cls.__reduce_ex__ is not object.__reduce_ex__
        or cls.__reduce__ is not object.__reduce__
        or not _state_by_slots(cls)
    ):
        return None
    names = [f.name for f in fields]
    later = [names.index(name) for name in BACK_REFERENCES.get(cls, ())]
    if later:
        get = operator.attrgetter(*names)

        def reduce_with_state(obj):
            values = list(get(obj))
            state = {names[i]: values[i] for i in later if values[i] is not None}
            for i in later:
                values[i] = None
            return (cls, tuple(values), (None, state)) if state else (cls, tuple(values))

        return reduce_with_state
    if len(names) == 1:
        name = names[0]
        return lambda obj: (cls, (getattr(obj, name),))
    get = operator.attrgetter(*names)
    return lambda obj: (cls, get(obj))


def _state_by_slots(cls: type) -> bool:
    """No ``__getstate__`` or ``__setstate__`` but object's or those ``dataclasses`` adds to
    a frozen slotted class (which read and set the fields, as the reducer does)."""
    for name in ("__getstate__", "__setstate__"):
        method = getattr(cls, name, None)
        if method is None or method is getattr(object, name, None):
            continue
        if getattr(method, "__module__", None) != "dataclasses":
            return False
    return True


def _reducers(*modules: ModuleType) -> dict[type, Callable]:
    table = {}
    for module in modules:
        for cls in vars(module).values():
            if isinstance(cls, type) and cls.__module__ == module.__name__:
                reduce = _reducer(cls)
                if reduce is not None:
                    table[cls] = reduce
    return table


REDUCERS = _reducers(model, events, message, tls_facts, software, tcp_model)
"""Class -> reducer, for ``pickle.Pickler.dispatch_table``: the classes a session is made of."""


def dump_session(session: Session, file: io.IOBase, let_go: bool = False) -> None:
    """Pickle ``session`` into ``file`` with ``REDUCERS`` (``pickle.load`` reads it back).

    ``let_go``: nothing else holds ``session`` or reads it again (a pass's finished session,
    handed over): once written, its cycles are broken (the BACK_REFERENCES of every object
    written set to None: a reply no longer names its command), so reference counting frees
    it when it is dropped. Left to the cyclic collector, the sessions that reached its
    oldest generation waited for a full collection, which a long pass whose young
    collections promote little seldom makes (docs/performance-log.md, "The cyclic
    collector during a pass")."""
    start = file.tell()
    pickler = pickle.Pickler(file, protocol=pickle.HIGHEST_PROTOCOL)
    written: list = []
    pickler.dispatch_table = _recording(written) if let_go else REDUCERS
    try:
        pickler.dump(session)
    except RecursionError:
        # A cycle BACK_REFERENCES does not name (a field added since): the plain pickle,
        # over what the failed dump wrote of its frames.
        file.seek(start)
        file.truncate()
        pickle.dump(session, file, protocol=pickle.HIGHEST_PROTOCOL)
        return
    for obj in written:
        for name in BACK_REFERENCES[type(obj)]:
            setattr(obj, name, None)


def _recording(written: list) -> dict[type, Callable]:
    """REDUCERS whose reducers of the BACK_REFERENCES classes also note each object in
    ``written``."""
    table = dict(REDUCERS)
    for cls in BACK_REFERENCES:
        reduce = REDUCERS[cls]

        def record(obj, reduce=reduce):
            written.append(obj)
            return reduce(obj)

        table[cls] = record
    return table


class SessionSpool(Sequence):
    """Sessions on disk (after the first ``keep``), their digests in memory;
    ``sort_by_first_frame`` orders them."""

    def __init__(
        self, sessions: Iterable[Session] = (), keep: int | None = None, let_go: bool = False
    ) -> None:
        self._keep = KEEP_IN_MEMORY if keep is None else keep
        self._let_go = let_go
        """Whoever appends keeps nothing of a session: one written is let go of
        (``dump_session``'s ``let_go``)."""
        self.reading = False
        """The capture is still being read: hold at most KEEP_WHILE_READING (pcapsmtp.analysis.
        one_pass sets it)."""
        self._held: dict[int, Session] = {}
        """Entry -> a session kept in memory (the first ``keep``)."""
        self._file = None
        """Made when the first session is spooled."""
        self._end = 0
        self._offsets = array("q")
        """Where each pickled session starts (-1: held). Written and read as a stream: a
        session with the thousands of commands the caps allow is never a second time in
        memory as bytes."""
        self._order: array | None = None
        """Position -> entry, once sorted (entries are in the order they ended)."""
        self._ids = False
        """Sessions read back get their position + 1 as id (set by ``number``)."""
        self._digest_bytes = SpilledBytes()
        self.digests = DigestTable(self._digest_bytes)
        """In the sessions' order."""
        self.extend(sessions)

    def append(self, session: Session) -> None:
        keep = self._keep
        if self.reading or self._file is not None:
            keep = min(keep, KEEP_WHILE_READING)
        digest = make_digest(session)  # before a written session is let go of
        if len(self._held) < keep:
            self._held[len(self._offsets)] = session
            self._offsets.append(-1)
        else:
            if self._file is None:
                self._file = tempfile.TemporaryFile(prefix="pcapsmtp-sessions-")  # noqa: SIM115
            self._file.seek(self._end)
            dump_session(session, self._file, let_go=self._let_go)
            self._offsets.append(self._end)
            self._end = self._file.tell()
        self.digests.append(digest)
        if self._order is not None:
            self._order.append(len(self._offsets) - 1)

    def extend(self, sessions: Iterable[Session]) -> None:
        for session in sessions:
            self.append(session)

    def __iadd__(self, sessions: Iterable[Session]) -> SessionSpool:
        self.extend(sessions)
        return self

    def sort_by_first_frame(self) -> None:
        """First-frame order, as ``list.sort(key=lambda s: s.flow.first_frame)`` (stable)."""
        entries = self._entries()
        order = sorted(range(len(entries)), key=self.digests.first_frames.__getitem__)
        self._order = array("q", (entries[n] for n in order))
        self.digests.reorder(order)

    def number(self) -> None:
        """Ids 1, 2, ... in the present order (pcapsmtp.analysis.run)."""
        self._ids = True
        self.digests.number()

    def _entries(self) -> Sequence[int]:
        return self._order if self._order is not None else range(len(self._offsets))

    def _load(self, position: int) -> Session:
        entry = self._entries()[position]
        session = self._held.get(entry)
        if session is None:
            self._file.seek(self._offsets[entry])
            session = pickle.load(self._file)
        if self._ids:
            session.id = position + 1
        return session

    def __len__(self) -> int:
        return len(self._offsets)

    def __getitem__(self, position):
        if isinstance(position, slice):
            return [self._load(n) for n in range(*position.indices(len(self)))]
        if position < 0:
            position += len(self)
        if not 0 <= position < len(self):
            raise IndexError("session spool index out of range")
        return self._load(position)

    def __iter__(self) -> Iterator[Session]:
        for position in range(len(self)):
            yield self._load(position)

    def __bool__(self) -> bool:
        return bool(self._offsets)

    def __reduce__(self):
        return (list, (list(self),))

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
        self._digest_bytes.close()


class Chain(Chained):
    """The sessions of several captures one after another (``Analysis.sessions``), without
    reading back a spooled one until it is reached."""

    noun = "session"

    @property
    def digests(self) -> Sequence[Digest]:
        from pcapsmtp.diagnose.digest import digests

        return Chained([digests(part) for part in self.parts])

    def __add__(self, other):
        return [*self, *other]

    def __radd__(self, other):
        return [*other, *self]


class SessionList(list):
    """A capture's sessions held in memory, with their digests made once (as a spool
    keeps them) for the rules over the whole capture and the per-peer summary."""

    def __init__(self, sessions: Iterable[Session], digests: list[Digest] | None = None) -> None:
        super().__init__(sessions)
        self.digests = [make_digest(s) for s in self] if digests is None else digests

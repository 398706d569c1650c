"""The capture-wide view a mail admin builds by hand: per destination server and per client,
how many connection attempts, what became of them, when, and which replies came back.

A destination is a server address and port (``10.0.0.25:25``): the same host on 25 and 587
plays two roles. A client is an address (its ports are ephemeral). Sessions from every capture
of the analysis are counted together, as the usual several captures are one rotation
(``tcpdump -C``); the same connection captured at two points counts twice.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from pcapsmtp.capture.addresses import address, endpoint_name
from pcapsmtp.diagnose.digest import Digest, digests, in_time_groups
from pcapsmtp.smtp import codes
from pcapsmtp.smtp.events import Reply
from pcapsmtp.smtp.model import Outcome, Session

CONNECT_FAILURES = (Outcome.REFUSED, Outcome.UNREACHABLE)
FAILED_OUTCOMES = (
    Outcome.REJECTED,
    Outcome.DEFERRED,
    Outcome.RESET,
    Outcome.TIMEOUT,
    Outcome.TLS_FAILED,
    *CONNECT_FAILURES,
)
"""Session outcomes that mean the attempt got no mail through (``incomplete``, ``encrypted`` and
``no-smtp`` say too little to count either way)."""


@dataclass(slots=True)
class NegativeReply:
    """One kind of 4xx/5xx reply: code and enhanced code, how often, the first text seen."""

    code: int
    enhanced: str | None
    count: int
    text: str
    """The first reply of this kind, lines joined by a space (wire text: escape on output)."""
    frame: int
    capture: str

    @property
    def meaning(self) -> str:
        return codes.meaning(self.code, self.enhanced, self.text)

    @property
    def label(self) -> str:
        return f"{self.code} {self.enhanced}" if self.enhanced else str(self.code)


@dataclass(slots=True)
class PeerHealth:
    """What one destination server, or one client, saw across the captures."""

    role: str
    """'destination' (a server address and port) or 'client' (an address)."""
    name: str
    """'10.0.0.25:25' for a destination, '10.0.0.5' for a client."""
    sessions: list[tuple[str, int]] = field(default_factory=list)
    """Keys (capture, id) of the sessions (connection attempts), in order."""
    peers: set[str] = field(default_factory=set)
    """The clients of a destination, or the destinations of a client."""
    outcomes: Counter[str] = field(default_factory=Counter)
    """Session outcomes (DESIGN.md's vocabulary)."""
    messages: Counter[str] = field(default_factory=Counter)
    """Transaction outcomes: one per mail, a session may carry several."""
    replies: Counter[int] = field(default_factory=Counter)
    """Every reply code the server sent, greeting included."""
    negative: dict[tuple[int, str | None], NegativeReply] = field(default_factory=dict)
    first_ns: int | None = None
    last_ns: int | None = None

    @property
    def attempts(self) -> int:
        return len(self.sessions)

    @property
    def connect_failures(self) -> int:
        return sum(self.outcomes[o] for o in CONNECT_FAILURES)

    @property
    def other(self) -> int:
        named = (Outcome.DELIVERED, Outcome.DEFERRED, Outcome.REJECTED, Outcome.TIMEOUT)
        named += CONNECT_FAILURES
        return self.attempts - sum(self.outcomes[o] for o in named)

    def negative_replies(self) -> list[NegativeReply]:
        return sorted(self.negative.values(), key=lambda n: (-n.count, n.code, n.enhanced or ""))


@dataclass(slots=True)
class Health:
    destinations: Sequence[PeerHealth]
    clients: Sequence[PeerHealth]


def server_replies(session: Session) -> list[Reply]:
    """Every reply the server sent, in order: greeting, answers to commands, unsolicited."""
    seen: dict[int, Reply] = {}
    for reply in [session.greeting, *(c.reply for c in session.commands), *session.unsolicited]:
        if reply is not None:
            seen.setdefault(id(reply), reply)
    return sorted(seen.values(), key=lambda r: r.frame)


def destination_name(session: Session) -> str:
    return endpoint_name(session.server)


def client_name(session: Session) -> str:
    return address(session.client.ip)


def _add(peer: PeerHealth, digest: Digest, other: str) -> None:
    peer.sessions.append(digest.key)
    peer.peers.add(other)
    peer.outcomes[digest.outcome] += 1
    peer.messages.update(digest.messages)
    if peer.first_ns is None or digest.first_time_ns < peer.first_ns:
        peer.first_ns = digest.first_time_ns
    if peer.last_ns is None or digest.last_time_ns > peer.last_ns:
        peer.last_ns = digest.last_time_ns
    peer.replies.update(digest.replies)
    for code, enhanced, text, frame in digest.negatives:
        key = (code, enhanced)
        if key in peer.negative:
            peer.negative[key].count += 1
        else:
            peer.negative[key] = NegativeReply(code, enhanced, 1, text, frame, digest.capture)


class _Peers(Sequence):
    """Destinations or clients in order of their first attempt, each ``PeerHealth`` made
    from the digests of its sessions when it is reached: a flood from 200,000 addresses
    never holds 200,000 of them, and a long capture never holds every session's digest
    (each group keeps its digests' positions; a digest is read when its peer is made)."""

    def __init__(self, role: str, kept: Sequence[Digest], groups: list, others) -> None:
        self.role, self.kept, self.others = role, kept, others
        self.names = [name for name, _positions in groups]
        self.groups = dict(groups)

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self._peer(name) for name in self.names[index]]
        return self._peer(self.names[index])

    def _peer(self, name: str) -> PeerHealth:
        peer = PeerHealth(self.role, name)
        kept = self.kept
        for position in self.groups[name]:
            digest = kept[position]
            _add(peer, digest, self.others(digest))
        return peer


def summarize(sessions: Sequence[Session]) -> Health:
    """Per destination and per client, in order of their first attempt; from the sessions'
    digests (pcapsmtp.diagnose.digest)."""
    kept = digests(sessions)
    destinations, clients = in_time_groups(kept, _destination, _client_name, by_id=True)
    return Health(
        _Peers("destination", kept, destinations, _client_name),
        _Peers("client", kept, clients, _destination),
    )


def _destination(digest: Digest) -> str:
    return digest.destination


def _client_name(digest: Digest) -> str:
    return digest.client_name


def id_ranges(ids: Iterable[int], limit: int = 12) -> str:
    """'1-240' or '3, 5, 7-12' (at most ``limit`` pieces, then '…')."""
    ordered = sorted(set(ids))
    pieces: list[str] = []
    start = previous = None
    for number in [*ordered, None]:
        if start is not None and number == previous + 1:
            previous = number
            continue
        if start is not None:
            pieces.append(str(start) if start == previous else f"{start}-{previous}")
        start = previous = number
    shown = ", ".join(pieces[:limit])
    return shown + (", …" if len(pieces) > limit else "")

"""Each SMTP session linked to the log lines about it, and what is left over on either side.

In this order, each step only over what the earlier ones left:

1. queue id: the id in the reply to the end of data. The receiving MTA logs it as its own
   (Postfix ``6CB8D20E323: client=``, Exim ``1xVNsJ-00036b-3A <=``); a sending MTA logs it as
   the next hop's (``status=sent (250 2.0.0 Ok: queued as 6CB8D20E323)``, Exim ``C="..."``).
2. client address and port, where the log has the port (Exim, tcpserver, postscreen).
3. peer address and time: the client's address in the server's log, the server's in the
   client's, first within ``TIGHT`` of the session once the clocks are aligned, then within
   ``window`` (default 120 s). Sessions and units are paired in time order, per address,
   so a burst of connections from one client pairs one to one.

The clocks are aligned with what step 1 shows: the median difference between a session's
first packet and its ``connect from`` line (logs stamped in whole seconds are up to a second
early). Without queue ids they are taken to agree.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

from pcapsmtp.capture.addresses import address
from pcapsmtp.capture.timestamps import NS
from pcapsmtp.maillog.model import FileStats, LogLine
from pcapsmtp.maillog.units import CLIENT_SIDE, SERVER_SIDE, LogUnit, build_units, histories
from pcapsmtp.smtp.model import Session

WINDOW_NS = 120 * NS
TIGHT_NS = 2 * NS
QUEUE_ID = "queue id"
ADDRESS_PORT = "client address and port"
ADDRESS_TIME = "address and time"


@dataclass(slots=True)
class Link:
    """The log lines of one session, from one side's log."""

    side: str
    """'server' (the session's server wrote these lines) or 'client'."""
    method: str
    """QUEUE_ID, ADDRESS_PORT or ADDRESS_TIME."""
    why: str
    """In words: 'queue id 6CB8D20E323 (the 250 reply to the end of data)'."""
    unit: LogUnit | None
    messages: dict[str, list[LogLine]] = field(default_factory=dict)
    """The history of every message the unit names, by queue id."""
    notes: list = field(default_factory=list)
    """pcapsmtp.maillog.compare.Note: what the log says against what the wire shows."""

    @property
    def lines(self) -> list[LogLine]:
        """Every line, each once, in time order."""
        seen: dict[int, LogLine] = {}
        for line in self.unit.lines if self.unit else []:
            seen.setdefault(id(line), line)
        for history in self.messages.values():
            for line in history:
                seen.setdefault(id(line), line)
        return sorted(seen.values(), key=lambda x: (x.time_ns or 0, x.source, x.number))


@dataclass(slots=True)
class MaillogLinks:
    """Everything the mail logs added to the analysis."""

    files: list[FileStats]
    links: dict[tuple[str, int], list[Link]] = field(default_factory=dict)
    """Session id -> its links (one per side whose log was given and had lines)."""
    unlinked: list[tuple[str, int]] = field(default_factory=list)
    """Sessions no log line was found for."""
    orphans: list[LogUnit] = field(default_factory=list)
    """Log connections and delivery attempts, within the captures' time, with no session."""
    offset_ns: int = 0
    """Log clock minus capture clock, as the queue-id links show it (0 when none)."""
    offset_basis: int = 0
    """How many sessions the offset was measured on."""
    window_ns: int = WINDOW_NS
    warnings: list[str] = field(default_factory=list)

    def methods(self) -> dict[str, int]:
        """Linked sessions per method (a session's best link)."""
        order = (QUEUE_ID, ADDRESS_PORT, ADDRESS_TIME)
        counts = dict.fromkeys(order, 0)
        for links in self.links.values():
            counts[min((link.method for link in links), key=order.index)] += 1
        return counts


def _wire_ids(session: Session) -> set[str]:
    return {t.queue_id for t in session.transactions if t.queue_id}


def _cut_ids(session: Session) -> set[str]:
    """Queue ids read from a reply the snap length cut: maybe only their beginning."""
    return {
        t.queue_id for t in session.transactions if t.queue_id and t.final and t.final.truncated
    }


def _find(table: dict[str, LogUnit], qid: str, cut: bool) -> LogUnit | None:
    if qid in table or not cut:
        return table.get(qid)
    found = {unit for key, unit in table.items() if key.startswith(qid)}
    return found.pop() if len(found) == 1 else None


def _client_ip(session: Session) -> str:
    return address(session.client.ip)


def _server_ip(session: Session) -> str:
    return address(session.server.ip)


class Linker:
    def __init__(self, lines: list[LogLine], window_ns: int = WINDOW_NS) -> None:
        self.units = build_units(lines)
        self.histories = histories(lines)
        self.window = window_ns
        self.links: dict[tuple[str, int], list[Link]] = {}
        self.offset = 0

    def _add(self, session: Session, unit: LogUnit | None, method: str, why: str) -> None:
        ids = unit.queue_ids if unit else set()
        if unit is not None:
            unit.session = session.key
        messages: dict[str, list[LogLine]] = {}
        for qid in sorted(ids):
            history = self.histories.get(qid)
            if history and all(history[0] is not h[0] for h in messages.values()):
                messages[qid] = history  # qmail: the message number and its qp, once
        side = unit.side if unit else SERVER_SIDE
        self.links.setdefault(session.key, []).append(Link(side, method, why, unit, messages))

    def _sides(self, session: Session) -> set[str]:
        """The sides whose connection lines are linked already (a message's history alone,
        qmail's, leaves the connection to be found by address)."""
        return {link.side for link in self.links.get(session.key, []) if link.unit is not None}

    # -- 1. queue ids -----------------------------------------------------------------

    def by_queue_id(self, sessions: list[Session]) -> None:
        own: dict[str, LogUnit] = {}
        remote: dict[str, LogUnit] = {}
        for unit in self.units:
            table = own if unit.side == SERVER_SIDE else remote
            for qid in unit.queue_ids if unit.side == SERVER_SIDE else unit.remote_ids:
                table.setdefault(qid, unit)
        for session in sessions:
            for qid in sorted(_wire_ids(session)):
                cut = qid in _cut_ids(session)
                self._queue_id_link(session, qid, _find(own, qid, cut), SERVER_SIDE)
                self._queue_id_link(session, qid, _find(remote, qid, cut), CLIENT_SIDE)
            if SERVER_SIDE not in self._sides(session):
                self._history_only(session)

    def _queue_id_link(self, session, qid: str, unit: LogUnit | None, side: str) -> None:
        if unit is None or unit.session is not None:
            return  # no such id, or a second message of a connection already linked
        whose = "its own queue id" if side == SERVER_SIDE else "the id the next hop gave"
        ids = unit.queue_ids if side == SERVER_SIDE else unit.remote_ids
        full = qid if qid in ids else min(i for i in ids if i.startswith(qid))
        cut = f" ({qid} on the wire: the snap length cut the reply)" if full != qid else ""
        self._add(
            session,
            unit,
            QUEUE_ID,
            f"queue id {full}{cut} from the reply to the end of data ({whose} in this log)",
        )

    def _history_only(self, session: Session) -> None:
        """qmail's 'qp' number names a message whose log lines carry no address."""
        for qid in sorted(_wire_ids(session)):
            history = self.histories.get(qid)
            if not history or any(line.peer for line in history):
                continue
            own = history[0].queue_id or qid  # qmail: the qp names message N
            why = f"queue id {qid} from the reply to the end of data" + (
                f" (message {own} in this log)" if own != qid else ""
            )
            link = Link(SERVER_SIDE, QUEUE_ID, why, None, {own: self.histories.get(own, history)})
            self.links.setdefault(session.key, []).append(link)

    def measure_offset(self, sessions: list[Session]) -> int:
        """Log clock minus capture clock from the server-side queue-id links: the unit's first
        line against the session's first packet ('connect from' where the log has it)."""
        by_id = {s.key: s for s in sessions}
        opened, others = [], []
        for session_id, links in self.links.items():
            for link in links:
                if link.unit is None or link.side != SERVER_SIDE or session_id not in by_id:
                    continue
                if "handshake" in by_id[session_id].not_captured:
                    continue  # the connection opened before the capture: no first packet
                first = link.unit.lines[0]
                if first.time_ns is None:
                    continue
                delta = first.time_ns - by_id[session_id].flow.first_time_ns
                delta += 0 if first.precise else NS // 2  # whole seconds: up to 1 s early
                (opened if link.unit.opened else others).append(delta)
        deltas = opened or others
        if not deltas:
            return 0
        median = int(statistics.median(deltas))
        self.offset = median if abs(median) > TIGHT_NS else 0
        return len(deltas)

    # -- 2. address and port ---------------------------------------------------------------

    def by_address_port(self, sessions: list[Session]) -> None:
        ported: dict[tuple[str, int], list[LogUnit]] = {}
        for unit in self.units:
            if unit.side == SERVER_SIDE and unit.peer_port and unit.session is None:
                ported.setdefault((unit.peer, unit.peer_port), []).append(unit)
        for session in sessions:
            if SERVER_SIDE in self._sides(session):
                continue
            key = (_client_ip(session), session.client.port)
            for unit in ported.get(key, []):
                if unit.session is None and self._distance(session, unit) <= self.window:
                    self._add(
                        session,
                        unit,
                        ADDRESS_PORT,
                        f"client address and port {key[0]} port {key[1]}",
                    )
                    break

    # -- 3. address and time -----------------------------------------------------------

    def _distance(self, session: Session, unit: LogUnit) -> int:
        """How far the unit's time lies outside the session's, clocks aligned."""
        flow = session.flow
        start, end = unit.start_ns - self.offset, unit.end_ns - self.offset
        return max(0, start - flow.last_time_ns, flow.first_time_ns - end)

    def by_address_time(self, sessions: list[Session], tolerance: int) -> None:
        for side, peer_of in ((SERVER_SIDE, _client_ip), (CLIENT_SIDE, _server_ip)):
            waiting: dict[str, list[Session]] = {}
            for session in sessions:
                if side not in self._sides(session):
                    waiting.setdefault(peer_of(session), []).append(session)
            free: dict[str, list[LogUnit]] = {}
            for unit in self.units:
                if unit.side == side and unit.session is None and unit.peer in waiting:
                    free.setdefault(unit.peer, []).append(unit)
            for peer, units in free.items():
                self._pair(waiting[peer], units, tolerance)

    def _pair(self, sessions: list[Session], units: list[LogUnit], tolerance: int) -> None:
        """Both in time order; each session takes the first unit near enough, skipping the
        units that lie wholly before it (a log line with no session)."""
        sessions = sorted(sessions, key=lambda s: s.flow.first_time_ns)
        units = sorted(units, key=lambda u: u.start_ns)
        j = 0
        for session in sessions:
            while j < len(units) and units[j].end_ns - self.offset < (
                session.flow.first_time_ns - tolerance
            ):
                j += 1
            if j < len(units) and self._distance(session, units[j]) <= tolerance:
                seconds = tolerance / NS
                self._add(
                    session,
                    units[j],
                    ADDRESS_TIME,
                    f"{units[j].peer} and time (within {seconds:g} s)",
                )
                j += 1

    def orphans(self, spans: list[tuple[int, int]]) -> list[LogUnit]:
        """Unlinked units that began while a capture was running (give or take TIGHT_NS)."""
        return [
            unit
            for unit in self.units
            if unit.session is None
            and unit.peer
            and any(a - TIGHT_NS <= unit.start_ns - self.offset <= b + TIGHT_NS for a, b in spans)
        ]


def _twins(sessions: list[Session]) -> dict[tuple[str, int], Session]:
    """Session id -> the first session of the same connection captured at another point (same
    addresses and ports, starting before the other ended, give or take TIGHT_NS: a capture
    that began mid-connection starts later than its twin): one connection, one set of log
    lines."""
    first: dict[tuple, list[Session]] = {}
    twins: dict[tuple[str, int], Session] = {}
    for session in sorted(sessions, key=lambda s: s.flow.first_time_ns):
        flow = session.flow
        key = (session.client.ip, session.client.port, session.server.ip, session.server.port)
        for earlier in first.get(key, []):
            if flow.first_time_ns - earlier.flow.last_time_ns <= TIGHT_NS:
                twins[session.key] = earlier
                break
        else:
            first.setdefault(key, []).append(session)
    return twins


def link_sessions(
    sessions: list[Session],
    lines: list[LogLine],
    files: list[FileStats],
    spans: list[tuple[int, int]],
    window_ns: int = WINDOW_NS,
) -> MaillogLinks:
    """Link ``sessions`` to the kept ``lines`` (pcapsmtp.maillog.files) and say what is left."""
    from pcapsmtp.maillog.compare import compare

    twins = _twins(sessions)
    distinct = [s for s in sessions if s.key not in twins]
    linker = Linker(lines, window_ns)
    linker.by_queue_id(distinct)
    basis = linker.measure_offset(distinct)
    linker.by_address_port(distinct)
    linker.by_address_time(distinct, TIGHT_NS)
    linker.by_address_time(distinct, window_ns)
    for twin, original in twins.items():
        for link in linker.links.get(original.key, []):
            why = (
                f"{link.why}, as session {original.id} of {original.capture} (the same connection)"
            )
            copy = Link(link.side, link.method, why, link.unit, link.messages)
            linker.links.setdefault(twin, []).append(copy)
    by_id = {s.key: s for s in sessions}
    for session_id, links in linker.links.items():
        for link in links:
            link.notes = compare(by_id[session_id], link)
    result = MaillogLinks(files, linker.links, window_ns=window_ns)
    result.unlinked = [s.key for s in sessions if s.key not in linker.links]
    result.orphans = linker.orphans(spans)
    result.offset_ns, result.offset_basis = linker.offset, basis
    return result

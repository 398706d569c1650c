"""Log lines grouped the way a capture groups packets: one ``LogUnit`` per connection (or per
delivery attempt) as one MTA logged it, and one history per queued message.

Inbound (this MTA was the server): Postfix's smtpd lines from ``connect from`` to ``disconnect
from`` share a pid; Exim's share the client's address and port; Sendmail's share a queue id;
tcpserver's (qmail) a pid. Outbound (this MTA was the client): a Postfix smtp process's lines
about one next hop, a new unit at each failed connect and at each new message unless Postfix
says it reused the connection (``conn_use=``); Exim's, Sendmail's and qmail's per message and
next hop.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pcapsmtp.maillog.model import CONNECT, CONNECT_FAILED, INBOUND, OUTBOUND, LogLine

SERVER_SIDE = "server"
"""The unit is in the log of the session's server (inbound lines)."""
CLIENT_SIDE = "client"
"""The unit is in the log of the session's client (outbound lines)."""
ATTEMPT_GAP_NS = 60 * 1_000_000_000
"""Outbound lines further apart than this are separate attempts."""
CONNECTION_GAP_NS = 3600 * 1_000_000_000
"""An inbound unit with no line for this long is over (pids are reused)."""


@dataclass(slots=True, eq=False)
class LogUnit:
    """Log lines about one connection (or one delivery attempt) as one MTA saw it."""

    side: str
    peer: str | None
    peer_port: int | None
    lines: list[LogLine] = field(default_factory=list)
    closed: bool = False
    session: tuple[str, int] | None = None
    """The id of the session it was linked to."""

    @property
    def start_ns(self) -> int:
        return next((line.time_ns for line in self.lines if line.time_ns is not None), 0)

    @property
    def end_ns(self) -> int:
        times = [line.time_ns for line in self.lines if line.time_ns is not None]
        last = max(times, default=0)
        return last if all(line.precise for line in self.lines) else last + 1_000_000_000

    @property
    def queue_ids(self) -> set[str]:
        return {i for line in self.lines for i in (line.queue_id, *line.aliases) if i}

    @property
    def remote_ids(self) -> set[str]:
        return {line.remote_id for line in self.lines if line.remote_id}

    @property
    def opened(self) -> bool:
        """Its first line is the connection's start (not a line from the middle)."""
        return bool(self.lines) and self.lines[0].event == CONNECT


def _inbound_key(line: LogLine) -> tuple | None:
    if line.mta == "postfix" or (line.mta == "qmail" and line.program == "tcpserver"):
        return (line.source, line.program, line.pid) if line.pid is not None else None
    if line.mta == "qmail":
        return (line.source, "tcpserver", line.pid) if line.pid is not None else None
    if line.mta == "exim":
        return (line.source, "exim", line.peer, line.peer_port) if line.peer else None
    return (line.source, "sendmail", line.queue_id) if line.queue_id else None


def _closes(line: LogLine) -> bool:
    return (line.mta == "postfix" and "disconnect from" in line.text) or (
        line.mta in ("exim", "qmail") and line.event == "disconnect"
    )


class UnitBuilder:
    """Feed lines in time order; ``units`` holds every unit made."""

    def __init__(self) -> None:
        self.units: list[LogUnit] = []
        self.inbound: dict[tuple, LogUnit] = {}
        self.outbound: dict[tuple, LogUnit] = {}

    def add(self, line: LogLine) -> None:
        if line.direction == OUTBOUND and line.peer:
            self._outbound(line)
        elif line.direction == INBOUND or line.mta == "postfix":
            self._inbound(line)

    def _inbound(self, line: LogLine) -> None:
        key = _inbound_key(line)
        if key is None:
            return
        unit = self.inbound.get(key)
        stale = unit is not None and (line.time_ns or 0) - unit.end_ns > CONNECTION_GAP_NS
        other_peer = unit is not None and line.peer and unit.peer and line.peer != unit.peer
        if line.direction == INBOUND and (
            unit is None or line.event == CONNECT or stale or other_peer
        ):
            unit = LogUnit(SERVER_SIDE, line.peer, line.peer_port)
            self.units.append(unit)
            self.inbound[key] = unit
        if unit is None:
            return  # a line of a daemon between connections (statistics, warnings)
        unit.lines.append(line)
        unit.peer = unit.peer or line.peer
        unit.peer_port = unit.peer_port or line.peer_port
        if _closes(line):
            unit.closed = True
            del self.inbound[key]

    def _outbound(self, line: LogLine) -> None:
        pid = line.pid if line.mta == "postfix" else None
        qid = None if line.mta == "postfix" else line.queue_id
        key = (line.source, line.mta, line.program, pid, qid, line.peer)
        unit = self.outbound.get(key)
        if unit is None or not self._continues(unit, line):
            unit = LogUnit(CLIENT_SIDE, line.peer, line.peer_port)
            self.units.append(unit)
            self.outbound[key] = unit
        unit.lines.append(line)

    @staticmethod
    def _continues(unit: LogUnit, line: LogLine) -> bool:
        if line.event == CONNECT_FAILED or line.mta == "qmail":
            return False
        if (line.time_ns or 0) - unit.end_ns > ATTEMPT_GAP_NS:
            return False
        known = unit.queue_ids
        new_message = line.queue_id is not None and bool(known) and line.queue_id not in known
        return not new_message or "conn_use=" in line.text


def build_units(lines: list[LogLine]) -> list[LogUnit]:
    builder = UnitBuilder()
    for line in lines:
        builder.add(line)
    return builder.units


def histories(lines: list[LogLine]) -> dict[str, list[LogLine]]:
    """Queue id (and qmail's qp alias) -> every kept line about that message, in order."""
    found: dict[str, list[LogLine]] = {}
    for line in lines:
        for qid in {line.queue_id, *line.aliases}:
            if qid:
                found.setdefault(qid, []).append(line)
    return found

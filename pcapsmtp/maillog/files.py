"""Reading mail logs (plain or gzip) as untrusted input: every line bounded, every line that fits
no known form counted and skipped, nothing raised after the file is open.

Only what linking can use is kept: the lines of the captures' time (with the linking window),
and the lines of the messages seen then, before and after it. A message that ended before
the captures began is forgotten as soon as its last line ('removed', 'Completed', 'end msg')
goes by, so a day's log costs the memory of the messages in flight, not of the day.
"""

from __future__ import annotations

import gzip
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field

from pcapsmtp.errors import CaptureError
from pcapsmtp.maillog import exim, postfix, sendmail
from pcapsmtp.maillog.model import FileStats, LogLine
from pcapsmtp.maillog.qmail import PROGRAMS as QMAIL_PROGRAMS
from pcapsmtp.maillog.qmail import QmailParser
from pcapsmtp.maillog.stamps import Clock, Envelope

MAX_LINE = 16 * 1024
"""Bytes of a line kept; the rest is skipped (and the line counted as cut)."""
MAX_KEPT = 500_000
"""Lines kept for linking, over all files."""
MAX_PENDING = 100_000
"""Lines of messages in flight before the captures' time, waiting to be needed."""
POSTFIX_DAEMONS = frozenset(
    {
        *("smtpd", "smtp", "lmtp", "qmgr", "oqmgr", "cleanup", "pickup", "bounce", "local"),
        *("virtual", "pipe", "error", "discard", "postscreen", "anvil", "master", "scache"),
        *("tlsmgr", "tlsproxy", "dnsblog", "postlogd", "postdrop", "sendmail", "postsuper"),
        *("trivial-rewrite", "verify", "proxymap", "flush", "showq", "spawn"),
    }
)
"""Daemon names that make 'name/daemon' a Postfix line when syslog_name is not 'postfix'."""


@dataclass(slots=True)
class Window:
    """What to keep: lines between ``start_ns`` and ``end_ns``, and the lines of the messages
    those lines (or the captures, ``ids``) name."""

    start_ns: int | None = None
    end_ns: int | None = None
    ids: set[str] = field(default_factory=set)

    def inside(self, time_ns: int | None) -> bool:
        if self.start_ns is None or self.end_ns is None:
            return True
        return time_ns is not None and self.start_ns <= time_ns <= self.end_ns


def mta_of(envelope: Envelope) -> str | None:
    program = envelope.program.lower()
    head, _slash, daemon = program.rpartition("/")
    if program.startswith("postfix") or (head and daemon in POSTFIX_DAEMONS):
        return "postfix"
    if program.startswith("exim"):
        return "exim"
    if program in sendmail.PROGRAMS:
        return "sendmail"
    if program in QMAIL_PROGRAMS or envelope.form == "tai64n":
        return "qmail"
    return None


class LineParser:
    """Text lines in, ``LogLine``s out (None for a line of no known MTA), in two steps so a
    line outside the captures' time costs only its envelope: ``envelope`` (counted in the
    file's stats) and ``build``."""

    def __init__(self, source: str, clock: Clock, stats: FileStats) -> None:
        self.source, self.clock, self.stats = source, clock, stats
        self.qmail = QmailParser()

    def envelope(self, text: str) -> tuple[Envelope, str] | None:
        envelope = self.clock.envelope(text)
        if envelope is None:
            self.stats.not_understood += 1
            return None
        mta = mta_of(envelope)
        if mta is None:
            self.stats.other_programs[envelope.program or "-"] += 1
            return None
        self.stats.formats[envelope.form] += 1
        self.stats.mtas[mta] += 1
        _span(self.stats, envelope.time_ns)
        return envelope, mta

    def build(self, number: int, text: str, envelope: Envelope, mta: str) -> LogLine:
        line = LogLine(
            self.source,
            number,
            envelope.time_ns,
            envelope.precise,
            mta,
            envelope.program,
            envelope.pid,
            text,
        )
        if mta == "postfix":
            postfix.parse(line, envelope.message)
        elif mta == "exim":
            exim.parse(line, envelope.message)
        elif mta == "sendmail":
            sendmail.parse(line, envelope.message)
        else:
            self.qmail.parse(line, envelope.message)
        return line

    def parse(self, number: int, text: str) -> LogLine | None:
        found = self.envelope(text)
        return None if found is None else self.build(number, text, *found)


QUEUE_ID_OF = {
    "postfix": postfix.queue_id_of,
    "exim": exim.queue_id_of,
    "sendmail": sendmail.queue_id_of,
}
_TOKEN = re.compile(r"[0-9A-Za-z][\w.@-]*")
_ID_HINTS = ("queued as", "250", "stat=Sent")
"""Texts a line quoting the next hop's id carries (the id itself is looked for only then)."""


def _open(source: str):
    try:
        raw = open(source, "rb")  # noqa: SIM115  (closed by the caller's with)
    except OSError as error:
        raise CaptureError(source, error.strerror or str(error)) from None
    if raw.peek(2)[:2] == b"\x1f\x8b":
        return gzip.GzipFile(fileobj=raw, mode="rb")
    return raw


def bounded_lines(stream, stats: FileStats) -> Iterator[tuple[int, str]]:
    """(1-based number, text) of each line, cut at MAX_LINE bytes; a read error ends it."""
    number = 0
    try:
        while True:
            chunk = stream.readline(MAX_LINE + 1)
            if not chunk:
                return
            number += 1
            if len(chunk) > MAX_LINE and not chunk.endswith(b"\n"):
                stats.cut += 1
                chunk = chunk[:MAX_LINE]
                while True:  # skip the rest of the long line without holding it
                    rest = stream.readline(MAX_LINE)
                    if not rest or rest.endswith(b"\n"):
                        break
            yield number, chunk.rstrip(b"\r\n").decode("utf-8", "backslashreplace")
    except (OSError, EOFError, zlib.error) as error:
        stats.warnings.append(f"reading stopped at line {number + 1}: {error}")


@dataclass(slots=True)
class _Held:
    """A line before the captures' time, parsed only if its message turns out to matter."""

    parser: LineParser
    number: int
    text: str
    envelope: Envelope
    mta: str

    def build(self) -> LogLine:
        return self.parser.build(self.number, self.text, self.envelope, self.mta)


class Keeper:
    """Which lines to keep (see the module docstring), over several files."""

    def __init__(self, window: Window) -> None:
        self.window = window
        self.kept: list[LogLine] = []
        self.wanted: set[str] = set(window.ids)
        self.pending: dict[str, list[_Held]] = {}
        self.pending_lines = 0

    def offer(self, parser: LineParser, number: int, text: str, envelope, mta: str) -> None:
        """A line of a known MTA: parsed and kept, held, or only counted."""
        if self.window.inside(envelope.time_ns) or mta == "qmail":  # qmail's parser has state
            self.add(parser.build(number, text, envelope, mta), parser.stats)
            return
        qid = QUEUE_ID_OF[mta](envelope.message)
        if (qid and qid in self.wanted) or self._names_a_capture_id(text):
            self.add(parser.build(number, text, envelope, mta), parser.stats)
            return
        before = self.window.start_ns is not None and (envelope.time_ns or 0) < self.window.start_ns
        if before and qid:
            self._hold(qid, _Held(parser, number, text, envelope, mta))

    def _names_a_capture_id(self, text: str) -> bool:
        ids = self.window.ids
        if not ids or not any(hint in text for hint in _ID_HINTS):
            return False
        return not ids.isdisjoint(_TOKEN.findall(text))

    def add(self, line: LogLine, stats: FileStats) -> None:
        ids = [i for i in (line.queue_id, *line.aliases) if i]
        named = any(i in self.wanted for i in ids) or (line.remote_id in self.window.ids)
        if not (self.window.inside(line.time_ns) or named):
            return
        self._keep(line, stats)
        for qid in ids:
            self.wanted.add(qid)
            for earlier in self.pending.pop(qid, []):
                self.pending_lines -= 1
                self._keep(earlier.build(), earlier.parser.stats)

    def _keep(self, line: LogLine, stats: FileStats) -> None:
        if len(self.kept) >= MAX_KEPT:
            stats.dropped += 1
            return
        self.kept.append(line)
        stats.used += 1

    def _hold(self, qid: str, held: _Held) -> None:
        if _finished(held.envelope.message):
            self.pending_lines -= len(self.pending.pop(qid, []))
            return
        self.pending.setdefault(qid, []).append(held)
        self.pending_lines += 1
        while self.pending_lines > MAX_PENDING and self.pending:
            oldest = next(iter(self.pending))
            self.pending_lines -= len(self.pending.pop(oldest))


def _finished(message: str) -> bool:
    """The message's last line: Postfix 'removed', Exim 'Completed'."""
    return message.endswith((": removed", " Completed"))


def read_maillogs(
    sources: list[str], clock: Clock, window: Window
) -> tuple[list[LogLine], list[FileStats]]:
    """The kept lines of every file, in time order, and how reading each went. Raises
    CaptureError only for a file that cannot be opened."""
    keeper = Keeper(window)
    all_stats = []
    for source in sources:
        stats = FileStats(source)
        all_stats.append(stats)
        with _open(source) as stream:
            parser = LineParser(source, clock, stats)
            for number, text in bounded_lines(stream, stats):
                stats.lines += 1
                found = parser.envelope(text)
                if found is not None:
                    keeper.offer(parser, number, text, *found)
    for stats in all_stats:
        stats.outside = sum(stats.mtas.values()) - stats.used - stats.dropped
        if stats.dropped:
            stats.warnings.append(f"{stats.dropped} lines not used: over {MAX_KEPT} lines kept")
    lines = sorted(keeper.kept, key=lambda x: (x.time_ns or 0, x.source, x.number))
    return lines, all_stats


def _span(stats: FileStats, time_ns: int | None) -> None:
    if time_ns is None:
        return
    if stats.first_ns is None or time_ns < stats.first_ns:
        stats.first_ns = time_ns
    if stats.last_ns is None or time_ns > stats.last_ns:
        stats.last_ns = time_ns

"""The live mode: ``tcpdump -U -w - ... | pcapsmtp analyze - --follow``.

The capture is read by the one pass (pcapsmtp.analysis.one_pass) as it arrives, and what is
learnt is handed to a sink as events while it happens:

- ``SessionShown`` when a session ends: its outcome and the findings about it alone
  (the session-scope rules of pcapsmtp.diagnose, run over that session);
- ``FindingFound`` for a finding that needs several sessions (soft bounces grouped, retry
  storms, rate limits), once the sessions shown so far make it known; checked at most once
  a second while sessions end, and whenever the input goes quiet;
- ``WarningFound`` for what the reader or the flow table had to give up, at the end.

At the end of the input, or on Ctrl-C, the connections still open are ended as at the end
of a capture, and the analysis is concluded exactly as ``analyze`` concludes it
(``run.conclude``): the summary is the normal analysis of the bytes that were read.

When a session "ends": the flow table keeps a closed connection for late packets (10 s of
capture time and 2,000 frames, pcapsmtp.tcp.limits), which on a quiet link can be the rest
of the capture. So the packets of each open connection are also kept here, and once both
sides have sent a FIN, or one a RST, they are replayed through a pass of their own that
ends at once: the session as it will be, shown without waiting. A connection is analysed
the same on its own as among others (pcapsmtp.tcp.limits says why), so this preview is the
session; packets that still come for it (a last ACK, a retransmitted FIN) can change it,
and when they do, the session is shown again, marked revised, when the flow table ends it.
A connection attempt nobody answers is shown once it has been silent for SILENT_S; another
connection that never closes (a hung server) is shown when the flow table ends it: after
15 minutes of silence, or at the end of the input.

Session numbers: ``analyze`` numbers sessions by their first frame, which is known only once
every session has ended. Live events number sessions in the order they were shown (the
``id`` a live finding's text names); ``tcp_stream`` (Wireshark's) is the same everywhere.
The summary numbers them as ``analyze`` does.
"""

from __future__ import annotations

import os
import select
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

from pcapsmtp.analysis.model import (
    Analysis,
    CaptureResult,
    FindingFound,
    LiveEvent,
    Options,
    SessionShown,
    WarningFound,
)
from pcapsmtp.analysis.one_pass import OnePass
from pcapsmtp.analysis.run import conclude
from pcapsmtp.analysis.tlsdecrypt import decrypt_held, keys_at_hand
from pcapsmtp.capture import CaptureInfo, IcmpError, TcpSegment, open_capture, packets
from pcapsmtp.capture.files import STDIN, open_file
from pcapsmtp.diagnose import CaptureContext, Finding, diagnose
from pcapsmtp.dns import read_dns
from pcapsmtp.smtp.model import Session
from pcapsmtp.tcp import TcpFlow
from pcapsmtp.tcp.flowkey import FlowKey, flow_key
from pcapsmtp.tcp.model import TH_ACK, TH_FIN, TH_RST, TH_SYN

QUIET_S = 0.2
"""Waiting this long for input with nothing arriving counts as quiet: findings that need
several sessions are checked then."""
CHECK_EVERY_S = 1.0
CHECK_SHARE = 5
"""While sessions end, findings that need several sessions are checked at most once a
second, and at most a fifth of the time: each check runs the rules over every session so
far, which on a long capture takes a while (when the input is quiet, they are checked
anyway)."""
GRACE_S = 2.0
"""After Ctrl-C, what the writer still flushes (tcpdump writes its buffer when it gets the
same SIGINT) is read for up to this long, as long as it keeps coming."""
SILENT_S = 30.0
"""A connection attempt (SYNs, no answer) silent this long, by the clock, is shown as it
stands: a server that never answers is a failure worth seeing before the flow table gives
the connection up (15 minutes)."""
MAX_KEPT_BYTES = 64 << 20
"""Payload bytes of one open connection kept for its preview. A larger one (a big message)
is shown when the flow table ends it instead."""


class Interrupt:
    """Ctrl-C (SIGINT) while following: the first ends the input (what the writer still
    flushes is read, GRACE_S at most), the second stops at once (KeyboardInterrupt)."""

    def __init__(self) -> None:
        self.requested = False
        self._previous = None

    def __enter__(self) -> Interrupt:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)

    def _handle(self, _signum, _frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True


class LiveInput:
    """A file descriptor read as data arrives: ``read1`` returns what the pipe holds as soon
    as it holds something (never waits to fill a buffer), calls ``quiet`` while nothing
    comes, and after Ctrl-C ends the input once the writer's last bytes are read."""

    def __init__(
        self, fd: int, interrupt: Interrupt, quiet: Callable[[], None], owned: BinaryIO | None
    ) -> None:
        self._fd = fd
        self._interrupt = interrupt
        self._quiet = quiet
        self._owned = owned
        self._grace_until: float | None = None
        self.failure: BaseException | None = None
        """What ``quiet`` raised (output that cannot be written): it ends the input, and is
        raised again once the pass is over, not taken for damage to the capture."""

    def read1(self, size: int = -1) -> bytes:
        size = size if size > 0 else 1 << 20
        while not self._interrupt.requested and self.failure is None:
            if select.select([self._fd], [], [], QUIET_S)[0]:
                return os.read(self._fd, size)
            try:
                self._quiet()
            except Exception as error:
                self.failure = error
        if self.failure is not None:
            return b""
        return self._flushed(size)

    read = read1

    def _flushed(self, size: int) -> bytes:
        now = time.monotonic()
        if self._grace_until is None:
            self._grace_until = now + GRACE_S
        wait = min(QUIET_S, self._grace_until - now)
        if wait > 0 and select.select([self._fd], [], [], wait)[0]:
            return os.read(self._fd, size)
        return b""

    def fileno(self) -> int:
        return self._fd

    def close(self) -> None:
        if self._owned is not None:
            self._owned.close()


def _open_input(source: str, interrupt: Interrupt, quiet: Callable[[], None]) -> LiveInput:
    if source == STDIN:
        return LiveInput(0, interrupt, quiet, None)
    raw = open_file(source, buffering=0)
    return LiveInput(raw.fileno(), interrupt, quiet, raw)


@dataclass(slots=True)
class _Watch:
    """The packets of one open connection, kept to show its session once it closes."""

    start_frame: int
    packets: list[TcpSegment | IcmpError] = field(default_factory=list)
    kept: int = 0
    fins: set[tuple[bytes, int]] = field(default_factory=set)
    closed: bool = False
    too_big: bool = False
    attempt: bool = True
    """Nothing but SYNs so far: a connection attempt nobody answered (yet)."""
    heard_at: float = 0.0
    """When its last packet was read (time.monotonic)."""
    silent_shown: bool = False


class Follower:
    """The live loop over one capture: the one pass, with previews and events."""

    def __init__(self, source: str, options: Options, sink: Callable[[LiveEvent], None]) -> None:
        self.source = source
        self.options = options
        self.sink = sink
        self.interrupt = Interrupt()
        self.info: CaptureInfo | None = None
        self.one: OnePass | None = None
        self._watches: dict[FlowKey, _Watch] = {}
        self._ids: dict[tuple[int, int], int] = {}
        """(tcp.stream, first frame) -> the live number of each session shown."""
        self._latest: dict[tuple[int, int], Session] = {}
        """The last view of each session shown (preview, then the real one)."""
        self._outcomes: dict[tuple[int, int], str] = {}
        self._said: set[tuple] = set()
        """Keys of the findings shown (``_key``)."""
        self._unchecked = False
        self._next_check = 0.0
        self._next_silent = 0.0
        self._last_time_ns: int | None = None

    def run(self) -> tuple[Analysis, bool]:
        with self.interrupt:
            input_ = _open_input(self.source, self.interrupt, self._quiet)
            with open_capture(self.source, stream=input_) as capture:
                info = self.info = capture.info
                self.one = OnePass(self.source, self.options.extra_ports, self._hold(info))
                datagrams: list = []
                self.one.run(self._watched(packets(capture, datagrams)), self._ended)
                if input_.failure is not None:
                    raise input_.failure
                one = self.one
                result = CaptureResult(
                    info, one.sessions, one.flows.unmatched_icmp, one.other_connections
                )
                one.warn(info)
                result.dns = read_dns(datagrams, info)
                held = decrypt_held(one.smtp, self.source, info, None)
                for session in held:
                    self._show(session.flow, session)
                result.sessions += held
                result.sessions.sort(key=lambda s: s.flow.first_frame)
        if self.interrupt.requested:
            info.warnings.append(
                f"reading stopped by Ctrl-C (SIGINT) after frame {info.frames}: the "
                "connections still open were ended there, as at the end of a capture"
            )
        analysis = Analysis(results=[result])
        conclude(analysis, self.options)
        for warning in info.warnings + analysis.warnings:
            self.sink(WarningFound(warning))
        return analysis, self.interrupt.requested

    @staticmethod
    def _hold(info: CaptureInfo) -> Callable[[], bool]:
        """TLS sessions are held for decryption as ``analyze`` holds them (keys embedded in
        a pcapng); they are shown at the end, after tshark's pass."""
        return lambda: keys_at_hand(info, None)

    # -- the packets, watched for connections that close ---------------------------------

    def _watched(self, found: Iterable[TcpSegment | IcmpError]) -> Iterator:
        for packet in found:
            self._last_time_ns = packet.time_ns
            if type(packet) is TcpSegment:
                closing = self._watch(packet)
                yield packet
                if closing is not None:
                    self._preview(closing, packet)
                if time.monotonic() >= self._next_silent:
                    self._silent()
            else:
                self._watch_icmp(packet)
                yield packet

    def _watch(self, seg: TcpSegment) -> _Watch | None:
        """Keep the segment with its connection's packets; the watch when this segment
        closes the connection (the second side's FIN, or a RST)."""
        key = flow_key(seg.src, seg.sport, seg.dst, seg.dport)
        watch = self._watches.get(key)
        if watch is None or (watch.closed and seg.flags & (TH_SYN | TH_ACK) == TH_SYN):
            watch = self._watches[key] = _Watch(seg.frame)
        if watch.closed:
            return None
        watch.heard_at = time.monotonic()
        if seg.flags & (TH_SYN | TH_ACK) != TH_SYN:
            watch.attempt = False
        if not watch.too_big:
            watch.packets.append(seg)
            watch.kept += len(seg.payload)
            if watch.kept > MAX_KEPT_BYTES:
                watch.too_big, watch.packets = True, []
        if seg.flags & TH_FIN:
            watch.fins.add((seg.src, seg.sport))
        if seg.flags & TH_RST or len(watch.fins) == 2:
            watch.closed = True
            return watch
        return None

    def _watch_icmp(self, error: IcmpError) -> None:
        quoted = error.quoted
        if quoted is None or quoted.sport is None or quoted.dport is None:
            return
        watch = self._watches.get(flow_key(quoted.src, quoted.sport, quoted.dst, quoted.dport))
        if watch is not None and not watch.closed and not watch.too_big:
            watch.packets.append(error)

    def _silent(self) -> None:
        """Connection attempts silent for SILENT_S: shown as they stand; the watch goes on,
        so an answer that comes after all revises them."""
        now = time.monotonic()
        self._next_silent = now + 1.0
        for watch in list(self._watches.values()):
            silent = now - watch.heard_at >= SILENT_S
            if watch.attempt and watch.packets and not watch.silent_shown and silent:
                watch.silent_shown = True
                self._preview(watch, watch.packets[-1], keep=True)

    def _preview(self, watch: _Watch, seg: TcpSegment, keep: bool = False) -> None:
        """The connection's session, from its own packets replayed through a pass that ends
        at once; shown under the stream number the main flow table gave it (again, revised,
        when it was shown before and has changed). ``keep``: the connection is still open,
        its packets stay for a later view."""
        kept = list(watch.packets) if keep else watch.packets
        if not keep:
            watch.packets = []
        flow = self.one.flows.flow_of(seg)
        if watch.too_big or flow is None:
            return
        replay = OnePass(self.source, self.options.extra_ports)
        replay.run(kept)
        if not replay.sessions:
            return
        session = max(replay.sessions, key=lambda s: s.flow.first_frame)
        session.flow.stream = flow.stream
        self._show(flow, session)

    # -- sessions and findings -------------------------------------------------------------

    def _ended(self, flow: TcpFlow, session: Session | None) -> None:
        """The flow table ended a flow: its session, shown or revised."""
        first, second = flow.endpoints
        key = flow_key(first.ip, first.port, second.ip, second.port)
        watch = self._watches.get(key)
        if watch is not None and watch.start_frame <= flow.last_frame:
            del self._watches[key]
        if session is not None:
            self._show(flow, session)

    def _show(self, flow: TcpFlow, session: Session) -> None:
        identity = (flow.stream, flow.first_frame)
        revised = identity in self._ids
        session.id = self._ids.setdefault(identity, len(self._ids) + 1)
        self._latest[identity] = session
        context = CaptureContext(self.info, [])
        findings = [f for f in diagnose([session], context) if self._new(f)]
        outcome_changed = revised and self._outcomes[identity] != session.outcome
        self._outcomes[identity] = session.outcome
        if not revised or outcome_changed or findings:
            self.sink(SessionShown(session, findings, revised))
        self._unchecked = True
        if time.monotonic() >= self._next_check:
            self._check()

    def _quiet(self) -> None:
        self._silent()
        if self._unchecked:
            self._check()

    def _check(self) -> None:
        """Every rule over the sessions shown so far: what several sessions make known."""
        self._unchecked, started = False, time.monotonic()
        if self.info is None or len(self._latest) < 2:
            return
        sessions = sorted(self._latest.values(), key=lambda s: s.flow.first_frame)
        stray = self.one.flows.unmatched_icmp if self.one is not None else []
        for finding in diagnose(sessions, CaptureContext(self.info, list(stray))):
            if self._new(finding):
                self.sink(FindingFound(finding, self._last_time_ns))
        took = time.monotonic() - started
        self._next_check = started + max(CHECK_EVERY_S, CHECK_SHARE * took)

    def _new(self, finding: Finding) -> bool:
        """Not shown before: a session's finding by its code and session, a capture-wide
        one by its code and first evidence frame (a storm grows; it is shown once)."""
        key = _key(finding)
        if key in self._said:
            return False
        self._said.add(key)
        return True


def _key(finding: Finding) -> tuple:
    if finding.session is not None:
        return (finding.code, finding.session)
    return (finding.code, finding.frames[0] if finding.frames else None)


def follow(
    source: str, options: Options, sink: Callable[[LiveEvent], None]
) -> tuple[Analysis, bool]:
    """Read one capture (``-``: standard input) as it arrives, telling ``sink`` of each
    session as it ends and each finding as it becomes known. At the end of the input or on
    Ctrl-C (SIGINT): the concluded analysis, and whether Ctrl-C ended it."""
    return Follower(source, options, sink).run()

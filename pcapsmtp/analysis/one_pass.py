"""The one pass: capture -> tcp -> smtp, wired here and nowhere else.

Every reading of a capture goes through this module: a single file (``analyze_capture``,
then tshark's pass for TLS when keys are at hand), a rotated set chained into one stream or
one task's piece of it (pcapsmtp.analysis.rotated), and the second pass that replays chosen
streams for export and the report's graphs (``collect_streams``). So the flow table always
knows the same server ports, and stream numbers (Wireshark's ``tcp.stream``) are the same in
every pass. Diagnosis is not part of the pass: it runs over the finished sessions
(pcapsmtp.analysis.run).
"""

from __future__ import annotations

import ctypes
import gc
from array import array
from collections.abc import Callable, Iterable, Iterator

from pcapsmtp.analysis.model import CaptureResult, Options
from pcapsmtp.analysis.progress import Progress
from pcapsmtp.analysis.spool import SessionSpool
from pcapsmtp.analysis.tlsdecrypt import decrypt_held, keys_at_hand
from pcapsmtp.analysis.tshark_command import readable_source
from pcapsmtp.capture import (
    Capture,
    CaptureInfo,
    IcmpError,
    SegmentBatch,
    TcpSegment,
    open_capture,
    packets,
    segment_batches,
)
from pcapsmtp.capture.sets import CaptureSet, ChainedCapture
from pcapsmtp.dns import read_dns
from pcapsmtp.smtp.model import Session
from pcapsmtp.smtp.tracker import SMTP_PORTS, SNIFF_HOLD, SNIFF_LIMIT, SmtpTracker
from pcapsmtp.tcp import FlowEnded, FlowEvent, FlowTracker, TcpFlow
from pcapsmtp.tcp.limits import evicted_warning
from pcapsmtp.tcp.streams import StreamFrames, follow_streams


def flow_tracker(extra_ports: Iterable[int]) -> FlowTracker:
    """The flow table of a pass: SMTP's ports and the user's decide which side is the server
    of a flow whose handshake is missing, never the numbering."""
    return FlowTracker(SMTP_PORTS + tuple(extra_ports))


COLLECT_EVERY = 20_000
"""Flows ended between two full collections of the cyclic collector during a pass. The
cycles a finished session makes are broken as it is spooled and the young collections are
rarer (pcapsmtp.cli.common.YOUNG_THRESHOLD): CPython's own rule then seldom makes a full
collection during a long pass, and any cycle still left behind by a flow would wait for one.
This bounds that wait by the flows, not the capture's length; each walks what is alive then,
the open connections (4-21 ms on the hostile flows capture at scale 0.2, 40,000 flows;
docs/performance-log.md, "The cyclic collector during a pass")."""


class OnePass:
    """The flow table and the SMTP tracker of one pass, fed a stream of packets."""

    def __init__(
        self,
        label: str,
        extra_ports: tuple[int, ...],
        hold_tls: Callable[[], bool] | None = None,
        flow_starts: bool = False,
        spool: bool = False,
    ) -> None:
        self.flows = flow_tracker(extra_ports)
        # The tracker's sniffer on other ports, in the core for flows it would give up.
        self.flows.sniff(SNIFF_LIMIT, SNIFF_HOLD)
        self.smtp = SmtpTracker(label, extra_ports, hold_tls=hold_tls)
        self.sessions: list[Session] | SessionSpool = SessionSpool(let_go=True) if spool else []
        """The finished sessions; with ``spool``, in a temporary file (pcapsmtp.analysis.spool),
        which lets go of each one it writes (the pass keeps nothing of it)."""
        self.other_connections = 0
        """TCP connections that are not SMTP."""
        self.flow_starts: array | None = array("q") if flow_starts else None
        """When asked: the first frame of every flow that continues no earlier one (a rotated
        set's pieces number their streams from these)."""

    def run(
        self,
        found: Iterable[TcpSegment | IcmpError],
        on_end: Callable[[TcpFlow, Session | None], None] | None = None,
    ) -> None:
        """Feed the packets through; ``on_end`` is told of every flow as it ends, with its
        session (None for a connection that is not SMTP, or one held for TLS): the live
        mode (pcapsmtp.analysis.follow) shows sessions as they end."""
        self._take(self.flows.events(self._reading(found)), on_end)

    def run_batches(
        self,
        batches: Iterable[SegmentBatch],
        tick: Callable[[], None] | None = None,
        every: int = 0,
    ) -> None:
        """``run`` on the decoder's batches (pcapsmtp.capture.segment_batches), the flow
        table's fast path; ``tick`` before every ``every``-th packet."""
        self._take(self.flows.batch_events(self._reading(batches), tick, every), None)

    def _reading(self, packets: Iterable) -> Iterator:
        """``packets`` as they are; the spool knows the capture is being read until they
        end (the flows still open then end with it: SessionSpool.reading)."""
        sessions = self.sessions
        if not isinstance(sessions, SessionSpool):
            yield from packets
            return
        sessions.reading = True
        try:
            yield from packets
        finally:
            sessions.reading = False

    def _take(
        self,
        events: Iterable[FlowEvent],
        on_end: Callable[[TcpFlow, Session | None], None] | None,
    ) -> None:
        smtp, sessions, starts = self.smtp, self.sessions, self.flow_starts
        ended = 0
        for event in events:
            session = smtp.add(event)
            if session is not None:
                sessions.append(session)
            if isinstance(event, FlowEnded):
                ended += 1
                if ended % COLLECT_EVERY == 0:
                    gc.collect()
                if starts is not None and event.flow.continues is None:
                    starts.append(event.flow.first_frame)
                if session is None:
                    self.other_connections += 1
                if on_end is not None:
                    on_end(event.flow, session)

    def warn(self, info: CaptureInfo) -> None:
        """What the flow table had to give up, into the capture's warnings."""
        info.warnings += self.flows.warnings
        if self.flows.evicted:
            info.warnings.append(evicted_warning(self.flows.evicted))


def analyze_capture(source: str, options: Options, spool: bool = False) -> CaptureResult:
    """Read one capture in a single streaming pass (then one tshark pass to decrypt TLS
    sessions, when keys are at hand: pcapsmtp.analysis.tlsdecrypt). ``spool``: the finished
    sessions go to a temporary file as they end (pcapsmtp.analysis.spool)."""
    with readable_source(source, options.keylog) as path, open_capture(path) as capture:
        capture.info.file = source
        result = run_pass(
            capture, source, options, lambda: keys_at_hand(capture.info, options.keylog), spool
        )
        release_freed_memory()
        result.sessions += decrypt_held(result.smtp, path, capture.info, options.keylog)
        result.smtp = None
        sort_sessions(result.sessions)
        return result


def release_freed_memory() -> None:
    """Hand the memory the pass freed back to the system (glibc's ``malloc_trim``; nothing
    elsewhere). The core's flow table frees its flows into the C heap, which keeps the pages;
    a flood's 100,000 open flows leave about 200 MB there that the diagnosis after the pass
    (Python's own allocator) would not reuse (docs/performance-log.md, "Hostile captures")."""
    global _trim
    if _trim is None:
        try:
            _trim = ctypes.CDLL("libc.so.6").malloc_trim
        except (OSError, AttributeError):
            _trim = False
    if _trim:
        _trim(0)


_trim = None
"""glibc's malloc_trim once looked up; False where there is none."""


def sort_sessions(sessions: list[Session] | SessionSpool) -> None:
    """In order of their first frame (the order of their ids)."""
    if isinstance(sessions, SessionSpool):
        sessions.sort_by_first_frame()
    else:
        sessions.sort(key=lambda s: s.flow.first_frame)


def run_pass(
    capture: Capture,
    label: str,
    options: Options,
    hold_tls: Callable[[], bool] | None,
    spool: bool = False,
) -> CaptureResult:
    """The one streaming pass over a capture (or a chained rotated set): capture -> tcp ->
    smtp, with the DNS datagrams read as lookups at the end. The SMTP tracker stays in
    ``result.smtp`` for the sessions it holds for TLS."""
    one = OnePass(label, options.extra_ports, hold_tls, spool=spool)
    datagrams: list = []
    batches = segment_batches(capture, datagrams)
    if options.progress is None:
        one.run_batches(batches)
    else:
        tick = _reporter(capture, options.progress, one)
        one.run_batches(_done_after(batches, options.progress), tick, PROGRESS_EVERY)
    result = CaptureResult(
        capture.info, one.sessions, one.flows.unmatched_icmp, one.other_connections
    )
    one.warn(capture.info)
    result.dns = read_dns(datagrams, capture.info)
    sort_sessions(result.sessions)
    result.smtp = one.smtp
    return result


PROGRESS_EVERY = 4096
"""Packets between two progress reports (the report itself is throttled in time)."""


def _reporter(capture: Capture, progress: Progress, one: OnePass) -> Callable[[], None]:
    """What tells ``progress`` how far the reading got (every PROGRESS_EVERY packets)."""
    size = capture.size()
    flows, smtp = one.flows, one.smtp

    def tick() -> None:
        position, frames = capture.position(), capture.info.frames
        progress.update(capture.source, position, size, frames, flows.streams, smtp.seen)

    return tick


def _done_after(batches: Iterator, progress: Progress) -> Iterator:
    """The batches as they are; ``progress`` is done once they are read (or given up)."""
    try:
        yield from batches
    finally:
        progress.done()


def collect_streams(
    source: str | list[str],
    streams: Iterable[int],
    ports: Iterable[int] = (),
    segments: bool = True,
) -> dict[int, StreamFrames]:
    """A second pass for the given ``tcp.stream`` numbers of a capture, or of a rotated set
    (its files in capture order, ``CaptureInfo.files``): their frames and, when asked, their
    segments (pcapsmtp.tcp.streams).

    ``ports`` must be the extra SMTP ports the analysis used: they decide which side is the
    client of a flow whose handshake is missing.
    """
    if isinstance(source, list):
        opened = ChainedCapture(CaptureSet("", source))
    else:
        opened = open_capture(source)
    with opened as capture:
        return follow_streams(packets(capture), flow_tracker(ports), streams, segments)

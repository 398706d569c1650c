"""Captures on N processes forked from the command, each a share of the connections
(``--jobs N`` without ``--scheduler``, on a rotated set or on a single file).

``--jobs N`` splits the work by connection (Dask's tasks, pcapsmtp.analysis.rotated, split
it by file), in ``analyze_sharded``: N processes forked from the command each read the whole
set, as ``--jobs 1`` does, through the decoder and the flow table (which number every
connection, Wireshark's ``tcp.stream``, from the packets of all of them), and each tracks
the SMTP of the connections whose stream number is its own modulo N; the flow table drops
the payload of the others from their first event on (``ignore_payload``, as for a
connection that is not SMTP) and makes no Python flow of them (``FlowTracker.only``).
Decoding and numbering are a small part of a pass (0.22 and 1.1 s of a 2.8 s pass over
500 MB of SMTP), so each of two processes does about 56 % of the pass. The result is
``--jobs 1``'s, IP fragments across files and DNS lookups included. The sessions travel
back as the spool's records (``spool.dump_session``, in a file per process) with their
packed digests, so the command reads each session back only where ``--jobs 1`` reads a
spooled one: in the diagnosis and the writing.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from array import array
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from operator import itemgetter

from pcapsmtp.analysis.chained import analyze_merged
from pcapsmtp.analysis.model import CaptureResult, Options, ParallelError
from pcapsmtp.analysis.one_pass import PROGRESS_EVERY, OnePass, analyze_capture, sort_sessions
from pcapsmtp.analysis.spool import SessionSpool, dump_session
from pcapsmtp.capture import CaptureInfo, IcmpError, open_capture, segment_batches
from pcapsmtp.capture.sets import CaptureSet, ChainedCapture, first_time, order_by_time
from pcapsmtp.diagnose.digest import DigestTable, make_digest
from pcapsmtp.dns import read_dns
from pcapsmtp.errors import CaptureError
from pcapsmtp.smtp.model import Session
from pcapsmtp.tcp.limits import evicted_warning


@dataclass(slots=True)
class Shard:
    """What one process of ``analyze_sharded`` gave: its sessions' records and counts."""

    info: CaptureInfo
    path: str
    """The file of its sessions' spool records (``spool.dump_session``)."""
    offsets: array
    """Where each session's record starts in it."""
    digests: DigestTable
    other_connections: int = 0
    stray_icmp: list[IcmpError] = field(default_factory=list)
    dns: list = field(default_factory=list)
    """The DNS lookups (the first shard's; every shard reads the same)."""
    flow_warnings: list[tuple[int, str]] = field(default_factory=list)
    """The flow table's warnings about this shard's flows, with where each came in the
    capture (``FlowTracker.warned_at``); not in ``info.warnings``."""
    flow_warnings_at: int = 0
    """Where in ``info.warnings`` one pass puts the flow table's (``OnePass.warn``)."""
    evicted: int = 0


class _SessionFile:
    """Where a shard's sessions go as they end: their spool records into a file, their
    digests packed, nothing held (``OnePass.sessions`` takes any ``append``)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.file = open(path, "wb")  # noqa: SIM115 (closed by close())
        self.offsets = array("q")
        self.digests = DigestTable()

    def append(self, session: Session) -> None:
        digest = make_digest(session)  # before the session is let go of
        self.offsets.append(self.file.tell())
        dump_session(session, self.file, let_go=True)
        self.digests.append(digest)

    def close(self) -> None:
        self.file.close()


class _ShardPass(OnePass):
    def run_shard(
        self, batches: Iterator, shard: int, shards: int, tick: Callable[[], None] | None
    ) -> None:
        """``run_batches``, the SMTP tracker fed only the events of this shard's streams
        (the flow table makes nothing of the others', ``FlowTracker.only``)."""
        self.flows.only = (shard, shards)
        self._take(self.flows.batch_events(self._reading(batches), tick, PROGRESS_EVERY), None)


_board = None
"""In a worker of ``analyze_local`` with a progress line: the shared array each shard writes
how far it read into (``BOARD_FIELDS`` numbers per shard)."""
BOARD_FIELDS = 4
"""Position in the input, packets, TCP connections, SMTP connections met."""


def _share_board(board) -> None:
    """A worker's initializer: the progress board it inherited from the command."""
    global _board
    _board = board


def _board_tick(board, shard: int, capture, one: OnePass) -> Callable[[], None]:
    at = shard * BOARD_FIELDS
    flows, smtp = one.flows, one.smtp

    def tick() -> None:
        board[at : at + BOARD_FIELDS] = [
            capture.position() or 0,
            capture.info.frames,
            flows.streams,
            smtp.seen,
        ]

    return tick


def analyze_shard(
    files: list[str] | str,
    label: str,
    extra_ports: tuple[int, ...],
    shard: int,
    shards: int,
    out: str,
) -> Shard:
    """A task of ``analyze_sharded``: the whole set (``files``, chained as ``--jobs 1``
    chains them) or file read, the SMTP of one shard of its connections tracked, the
    sessions written to ``out``."""
    if isinstance(files, str):
        capture = open_capture(files)
        capture.info.file = label
    else:
        capture = ChainedCapture(CaptureSet(label, files))
    with capture:
        one = _ShardPass(label, extra_ports)
        sessions = one.sessions = _SessionFile(out)
        datagrams: list = []
        tick = _board_tick(_board, shard, capture, one) if _board is not None else None
        try:
            one.run_shard(segment_batches(capture, datagrams), shard, shards, tick)
        finally:
            sessions.close()
        warnings_at = len(capture.info.warnings)
        dns = read_dns(datagrams, capture.info) if shard == 0 else []
        flows = one.flows
        return Shard(
            capture.info,
            out,
            sessions.offsets,
            sessions.digests,
            one.other_connections,
            flows.unmatched_icmp if shard == 0 else [],
            dns,
            list(zip(flows.warned_at, flows.warnings, strict=True)),
            warnings_at,
            flows.evicted,
        )


def analyze_sharded(
    capture_set: CaptureSet,
    options: Options,
    pool,
    jobs: int,
    board=None,
) -> CaptureResult:
    """A set (or a file) on ``jobs`` processes of ``pool``, one shard of its connections
    each: ``--jobs 1``'s result (``analyze_chained``). With ``board`` (the workers' shared
    progress array), ``options.progress`` shows how far the slowest has read."""
    label = capture_set.label
    errors: list[CaptureError] = []
    files: list[str] | str
    if len(capture_set.files) == 1:
        files = capture_set.files[0]
    else:
        times = {}
        for path in capture_set.files:
            try:
                times[path] = first_time(path)
            except CaptureError as error:
                errors.append(error)
        if not times:
            raise errors[0]
        files = order_by_time(list(times), times)
    with tempfile.TemporaryDirectory(prefix="pcapsmtp-") as folder:
        futures = [
            pool.submit(analyze_shard, files, label, options.extra_ports, shard, jobs,
                        os.path.join(folder, f"shard{shard}"))
            for shard in range(jobs)
        ]  # fmt: skip
        if board is not None and options.progress is not None:
            _show_progress(futures, board, label, files, options.progress)
        result = _combine_shards([future.result() for future in futures])
    result.info.warnings[:0] = [f"{error}: left out of the set" for error in errors]
    return result


def _show_progress(futures: list, board, label: str, files: list[str] | str, progress) -> None:
    """Until the shards are done: the progress line of the slowest, the SMTP connections of
    all."""
    from concurrent.futures import FIRST_EXCEPTION, wait

    size = sum(os.path.getsize(path) for path in ([files] if isinstance(files, str) else files))
    board[:] = [0] * len(board)
    pending = set(futures)
    while pending:
        done, pending = wait(pending, timeout=0.25, return_when=FIRST_EXCEPTION)
        if any(future.exception() is not None for future in done):
            return
        rows = [board[at : at + BOARD_FIELDS] for at in range(0, len(board), BOARD_FIELDS)]
        position, packets, connections, _ = min(rows)
        progress.update(label, position, size, packets, connections, sum(r[3] for r in rows))


def _combine_shards(shards: list[Shard]) -> CaptureResult:
    """One CaptureResult from the shards: the first shard's reading (every shard read the
    same packets), the flow table's warnings of all in one pass's order, and the sessions
    in one spool (their records copied, not read)."""
    first = shards[0]
    info = first.info
    merged = sorted((w for shard in shards for w in shard.flow_warnings), key=itemgetter(0))
    flow_warnings = list(dict.fromkeys(text for _, text in merged))  # the table's own: in all
    if first.evicted:
        flow_warnings.append(evicted_warning(first.evicted))
    at = first.flow_warnings_at
    info.warnings[at:at] = flow_warnings
    known = set(info.warnings)
    for shard in shards[1:]:
        for warning in shard.info.warnings:
            if warning not in known:
                known.add(warning)
                info.warnings.append(warning)
    spool = _spool_of(shards)
    result = CaptureResult(info, spool, first.stray_icmp, sum(s.other_connections for s in shards))
    result.dns = first.dns
    sort_sessions(result.sessions)
    return result


def _spool_of(shards: list[Shard]) -> SessionSpool:
    """A SessionSpool of the shards' session records and digests, as if its ``append`` had
    written them (the records are the same bytes ``append`` writes)."""
    spool = SessionSpool()
    out = tempfile.TemporaryFile(prefix="pcapsmtp-sessions-")  # noqa: SIM115 (the spool closes it)
    for shard in shards:
        base = out.tell()
        with open(shard.path, "rb") as records:
            shutil.copyfileobj(records, out, 1 << 20)
        spool._offsets.extend(base + offset for offset in shard.offsets)
        for digest in shard.digests:
            spool.digests.append(digest)
    spool._file = out
    spool._end = out.tell()
    return spool


def analyze_local(
    sets: list[CaptureSet],
    options: Options,
    jobs: int,
) -> list[tuple[CaptureResult | None, list[CaptureError]]]:
    """Every set on ``jobs`` processes forked from this one (``analyze_sharded``):
    (CaptureResult or None, errors) per set."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    outcomes: list[tuple[CaptureResult | None, list[CaptureError]]] = []
    # fork: the workers start with this process's modules imported (a new interpreter
    # importing pcapsmtp costs 0.3 s of CPU); the command runs no thread of its own here.
    context = multiprocessing.get_context("fork")
    board = None
    if options.progress is not None:
        board = context.Array("q", jobs * BOARD_FIELDS, lock=False)
    with ProcessPoolExecutor(
        jobs, mp_context=context, initializer=_share_board, initargs=(board,)
    ) as pool:
        for capture_set in sets:
            try:
                if "-" in capture_set.files:
                    outcomes.append((analyze_capture("-", options), []))
                elif options.keylog:
                    outcomes.append((_with_keys(capture_set, options), []))
                else:
                    result = analyze_sharded(capture_set, options, pool, jobs, board)
                    if result.info.secrets:
                        # Keys in the files: read as --jobs 2 on Dask reads them.
                        result.sessions.close()
                        result = _with_keys(capture_set, options)
                    outcomes.append((result, []))
            except CaptureError as error:
                outcomes.append((None, [error]))
            except BrokenProcessPool as error:
                raise ParallelError("--jobs", f"a worker process was lost ({error})") from None
    return outcomes


def _with_keys(capture_set: CaptureSet, options: Options) -> CaptureResult:
    """A set or file whose TLS is decrypted: by tshark's pass over it, in this process."""
    if len(capture_set.files) == 1:
        return analyze_capture(capture_set.files[0], options, spool=True)
    return analyze_merged(capture_set, options)

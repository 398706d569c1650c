"""Rotated capture sets analysed as one capture: chained in one process, in N forked processes
(each a share of the connections), or one task per file on a Dask cluster.

``--jobs 1`` (or a set of one file) reads the files one after another as one stream
(pcapsmtp.capture.sets.ChainedCapture): one pass, exactly as over the merged capture.

On a Dask cluster (``--scheduler``) every file is a task, in two rounds:

1. ``scan_file``: the file's frame count (so frame numbers run on from file to file) and a
   stable hash of every TCP 4-tuple in it (those that ICMP errors quote included), each
   with the last frame it appears in.
2. ``analyze_piece``: every 4-tuple belongs to the first file it appears in. A file's task
   analyses the file, minus the 4-tuples of earlier files, and then follows its own
   4-tuples into the later files they appear in, reading those only as far as their last
   frame there and only their packets.

So every packet of a 4-tuple goes through one flow tracker and one SMTP tracker, in frame
order: a session that crossed a file boundary (into the next file or twenty files on) is
tracked exactly as one pass would track it, because the flow tracker decides everything
about a flow from that flow's own packets (pcapsmtp.tcp.flows). The ``tcp.stream``
numbers are then given in the order of every flow's first frame, as one pass numbers them.
Nothing but finished sessions and counts travels back; a task holds what one pass over
its file would hold, plus the connections it follows.

What a file boundary still changes on Dask: an IP datagram whose fragments fall in two
files is not reassembled (each file warns of it); ``--jobs 1`` reassembles it.

These tasks run on the Dask cluster a ``--scheduler`` address names (whose workers need
pcapsmtp installed and the files at the same paths). A task is a pure function of its file,
so a task lost with its worker is run again elsewhere and the result is the same.

Without ``--scheduler``, ``--jobs N`` splits the work by connection instead of by file
(``analyze_sharded``): N processes forked from the command each read the whole set, as
``--jobs 1`` does, through the decoder and the flow table (which number every connection,
Wireshark's ``tcp.stream``, from the packets of all of them), and each tracks the SMTP of the
connections whose stream number is its own modulo N; the flow table drops the payload of
the others from their first event on (``ignore_payload``, as for a connection that is not
SMTP) and makes no Python flow of them (``FlowTracker.only``). Decoding
and numbering are a small part of a pass (0.22 and 1.1 s of a 2.8 s pass over 500 MB of SMTP),
so each of two processes does about 56 % of the pass. The result is ``--jobs 1``'s, IP
fragments across files and DNS lookups included. The sessions travel back as the spool's
records (``spool.dump_session``, in a file per process) with their packed digests, so the
command reads each session back only where ``--jobs 1`` reads a spooled one: in the
diagnosis and the writing.
"""

from __future__ import annotations

import bisect
import hashlib
import os
import shutil
import subprocess
import tempfile
from array import array
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from operator import itemgetter

from pcapsmtp.analysis.extras import CLUSTER, needs
from pcapsmtp.analysis.model import CaptureResult, Options
from pcapsmtp.analysis.one_pass import (
    PROGRESS_EVERY,
    OnePass,
    analyze_capture,
    run_pass,
    sort_sessions,
)
from pcapsmtp.analysis.spool import SessionSpool, dump_session
from pcapsmtp.capture import (
    CaptureInfo,
    IcmpError,
    TcpSegment,
    open_capture,
    packets,
    segment_batches,
)
from pcapsmtp.capture.sets import (
    CaptureSet,
    ChainedCapture,
    first_time,
    merge_info,
    order_by_time,
)
from pcapsmtp.diagnose.digest import DigestTable, make_digest
from pcapsmtp.dns import read_dns
from pcapsmtp.errors import CaptureError, PcapsmtpError
from pcapsmtp.smtp.model import Session
from pcapsmtp.tcp.flows import evicted_warning


class ParallelError(PcapsmtpError):
    """The tasks could not be run (no scheduler at that address, workers lost for good)."""

    def __init__(self, where: str, reason: str) -> None:
        super().__init__(f"{where}: {reason}")
        self.where = where
        self.reason = reason


def key_hash(src: bytes, sport: int, dst: bytes, dport: int) -> int:
    """A hash of a 4-tuple, either way round, that is the same in every process (Python's
    ``hash`` of bytes is not). A collision only gives two connections the same task."""
    a, b = src + sport.to_bytes(2, "big"), dst + dport.to_bytes(2, "big")
    packed = a + b"|" + b if a <= b else b + b"|" + a
    return int.from_bytes(hashlib.blake2b(packed, digest_size=8).digest(), "big")


def _packet_key(packet: TcpSegment | IcmpError) -> tuple | None:
    if type(packet) is TcpSegment:
        return (packet.src, packet.sport, packet.dst, packet.dport)
    quoted = packet.quoted
    if quoted is None or quoted.sport is None:
        return None
    return (quoted.src, quoted.sport, quoted.dst, quoted.dport)


class _Hashes:
    """``key_hash`` of each packet's 4-tuple, computed once per 4-tuple."""

    def __init__(self) -> None:
        self._known: dict[tuple, int] = {}

    def of(self, packet: TcpSegment | IcmpError) -> int | None:
        key = _packet_key(packet)
        if key is None:
            return None
        found = self._known.get(key)
        if found is None:
            found = self._known[key] = key_hash(*key)
        return found


# -- round 1: what each file holds -----------------------------------------------------


@dataclass(slots=True)
class FileScan:
    path: str
    frames: int = 0
    first_time_ns: int | None = None
    keys: dict[int, int] = field(default_factory=dict)
    """4-tuple hash -> the last frame (of this file) it appears in."""
    secrets: bool = False
    error: CaptureError | None = None


def scan_file(path: str) -> FileScan:
    """Frame count, first timestamp and 4-tuple hashes of one file (a task)."""
    scan = FileScan(path)
    hashes = _Hashes()
    try:
        with open_capture(path) as capture:
            keys = scan.keys
            for packet in packets(capture):
                found = hashes.of(packet)
                if found is not None:
                    keys[found] = packet.frame
            scan.frames = capture.info.frames
            scan.first_time_ns = capture.info.first_time_ns
            scan.secrets = bool(capture.info.secrets)
    except CaptureError as error:
        scan.error = error
    return scan


# -- round 2: each file with its own 4-tuples, followed into later files --------------------------


@dataclass(slots=True)
class Piece:
    """What one file's task gave: finished sessions and counts."""

    info: CaptureInfo
    sessions: list[Session] = field(default_factory=list)
    flow_starts: array = field(default_factory=lambda: array("q"))
    """Frame at which every tcp.stream tracked here began (the first frame of a flow that
    continues no earlier one, or an ICMP error quoting a 4-tuple before its packets): for
    the tcp.stream numbers."""
    other_connections: int = 0
    stray_icmp: list[IcmpError] = field(default_factory=list)


@dataclass(slots=True, frozen=True)
class Follow:
    """Where a task follows its 4-tuples: a later file, up to a frame."""

    path: str
    frame_offset: int
    keys: frozenset[int]
    until: int
    """The last frame (of that file) any of them appears in."""


def analyze_piece(
    path: str,
    frame_offset: int,
    others: frozenset[int],
    follow: list[Follow],
    label: str,
    extra_ports: tuple[int, ...],
) -> Piece:
    """One file of a set, with its frame numbers in the set, minus ``others`` (4-tuples of
    earlier files), then its own 4-tuples in ``follow`` (a task)."""
    with open_capture(path, frame_offset) as capture:
        found = packets(capture)
        if others:
            found = _without(found, others)
        one = OnePass(label, extra_ports, flow_starts=True)
        one.run(_followed(found, follow))
        piece = Piece(capture.info, one.sessions, one.flow_starts, one.other_connections)
        piece.stray_icmp = one.flows.unmatched_icmp
        piece.flow_starts.extend(one.flows.icmp_starts)
        one.warn(piece.info)
        return piece


def _without(found: Iterator, others: frozenset[int]) -> Iterator:
    hashes = _Hashes()
    for packet in found:
        if hashes.of(packet) not in others:
            yield packet


def _followed(own: Iterator, follow: list[Follow]) -> Iterator:
    """The packets of ``own``, then those of the followed 4-tuples in the later files."""
    yield from own
    for later in follow:
        hashes = _Hashes()
        with open_capture(later.path, later.frame_offset) as capture:
            last = later.frame_offset + later.until
            for packet in packets(capture):
                if packet.frame > last:
                    break
                if hashes.of(packet) in later.keys:
                    yield packet


def combine(label: str, pieces: list[Piece]) -> CaptureResult:
    """The CaptureResult of a set from its pieces, in file order."""
    info = merge_info(label, [piece.info for piece in pieces])
    result = CaptureResult(info)
    starts = array("q")
    for piece in pieces:
        result.sessions += piece.sessions
        result.stray_icmp += piece.stray_icmp
        result.other_connections += piece.other_connections
        starts.extend(piece.flow_starts)
    ordered = sorted(starts)
    for session in result.sessions:
        flow = session.flow
        began = flow.first_frame if flow.continues is None else flow.continues
        flow.stream = bisect.bisect_left(ordered, began)
    result.sessions.sort(key=lambda s: s.flow.first_frame)
    result.stray_icmp.sort(key=lambda e: e.frame)
    return result


# -- running it ------------------------------------------------------------------------


def analyze_chained(capture_set: CaptureSet, options: Options) -> CaptureResult:
    """One pass over the files of a set, one after another (``--jobs 1``)."""
    times = {}
    readable = []
    errors = []
    for path in capture_set.files:
        try:
            times[path] = first_time(path)
            readable.append(path)
        except CaptureError as error:
            errors.append(error)
    if not readable:
        raise errors[0]
    ordered = CaptureSet(capture_set.label, order_by_time(readable, times))
    capture = ChainedCapture(ordered)
    for error in errors:
        capture.info.warnings.append(f"{error}: left out of the set")
    # Spooled as a single file's sessions are: a set of many files ends as many sessions as
    # one capture of its size, and holding them all grew the memory with the set's length.
    result = run_pass(capture, capture_set.label, options, hold_tls=None, spool=True)
    if any(info_secret for info_secret in capture.info.secrets):
        capture.info.warnings.append(
            "TLS keys embedded in files of a rotated set are not used; give them with --keylog"
        )
    return result


def analyze_merged(capture_set: CaptureSet, options: Options) -> CaptureResult:
    """A set with TLS keys: merged with ``mergecap -a`` into one file, which tshark then
    decrypts as it would a single capture."""
    mergecap = shutil.which("mergecap")
    if mergecap is None:
        result = analyze_chained(capture_set, options)
        result.info.warnings.append(
            "TLS decryption of a rotated set needs mergecap (Debian package wireshark-common); "
            "the set was read without it"
        )
        return result
    times = {path: first_time(path) for path in capture_set.files}
    ordered = order_by_time(capture_set.files, times)
    with tempfile.TemporaryDirectory(prefix="pcapsmtp-") as folder:
        merged = os.path.join(folder, "merged.pcapng")
        subprocess.run([mergecap, "-a", "-w", merged, *ordered], check=True, capture_output=True)
        result = analyze_capture(merged, options)
    result.info.file = capture_set.label
    result.info.files = list(ordered)
    for session in result.sessions:
        session.capture = capture_set.label
    return result


# -- in parallel on this machine: one share of the connections per process ---------------


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
        self.offsets.append(self.file.tell())
        dump_session(session, self.file)
        self.digests.append(make_digest(session))

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


@dataclass(slots=True)
class Plan:
    """A set's files in capture order with their frame offsets and shared 4-tuples."""

    capture_set: CaptureSet
    files: list[str]
    offsets: list[int]
    others: list[frozenset[int]]
    """Per file: its 4-tuples that an earlier file's task tracks."""
    follow: list[list[Follow]]
    """Per file: where its task follows its own 4-tuples."""
    errors: list[CaptureError]


def plan(capture_set: CaptureSet, scans: dict[str, FileScan]) -> Plan:
    readable = [p for p in capture_set.files if scans[p].error is None]
    errors = [scans[p].error for p in capture_set.files if scans[p].error is not None]
    times = {p: scans[p].first_time_ns for p in readable}
    files = order_by_time(readable, times)
    offsets, total = [], 0
    for path in files:
        offsets.append(total)
        total += scans[path].frames
    owner: dict[int, int] = {}
    others: list[frozenset[int]] = []
    follow: list[list[Follow]] = [[] for _ in files]
    for n, path in enumerate(files):
        keys = scans[path].keys
        mine = [k for k in keys if k not in owner]
        owner.update((k, n) for k in mine)
        theirs = [k for k in keys if owner[k] != n]
        others.append(frozenset(theirs))
        by_owner: dict[int, list[int]] = {}
        for k in theirs:
            by_owner.setdefault(owner[k], []).append(k)
        for first, followed in by_owner.items():
            until = max(keys[k] for k in followed)
            follow[first].append(Follow(path, offsets[n], frozenset(followed), until))
    return Plan(capture_set, files, offsets, others, follow, errors)


def analyze_parallel(
    sets: list[CaptureSet],
    options: Options,
    jobs: int,
    scheduler: str | None,
    on_done: Callable[[str, int, int], None] | None = None,
) -> list[tuple[CaptureResult | None, list[CaptureError]]]:
    """Every set in parallel: on ``jobs`` processes of this machine (``analyze_local``), or
    one task per file on the Dask cluster at ``scheduler``: (CaptureResult or None, errors)
    per set."""
    if scheduler is None:
        return analyze_local(sets, options, jobs)
    try:
        from dask.distributed import as_completed
    except ImportError:
        raise ParallelError("--scheduler", needs("it", CLUSTER)) from None

    all_files = sorted({path for s in sets for path in s.files if path != "-"})
    scans: dict[str, FileScan] = {}
    try:
        client = _client(scheduler)
    except (OSError, TimeoutError) as error:
        raise ParallelError(scheduler, f"cannot start or reach it ({error})") from None
    try:
        futures = client.map(scan_file, all_files, pure=False, retries=2)
        for future in as_completed(futures):
            scan = future.result()
            scans[scan.path] = scan
            if on_done:
                on_done("scan", len(scans), len(all_files))
        outcomes = []
        for capture_set in sets:
            outcomes.append(_run_set(client, capture_set, scans, options, on_done))
        return outcomes
    except _lost_worker_errors() as error:
        raise ParallelError(
            scheduler, f"the tasks failed: {type(error).__name__}: {error}"
        ) from None
    finally:
        client.close()


def _run_set(client, capture_set: CaptureSet, scans: dict[str, FileScan], options, on_done):
    from dask.distributed import as_completed

    if "-" in capture_set.files:
        try:
            return analyze_capture("-", options), []
        except CaptureError as error:
            return None, [error]
    if options.keylog or any(scans[p].secrets for p in capture_set.files):
        if len(capture_set.files) == 1:
            try:
                return analyze_capture(capture_set.files[0], options), []
            except CaptureError as error:
                return None, [error]
        return analyze_merged(capture_set, options), []
    chosen = plan(capture_set, scans)
    if not chosen.files:
        return None, chosen.errors
    label = capture_set.label
    ports = options.extra_ports
    futures = [
        client.submit(analyze_piece, path, offset, others, follow, label, ports, pure=False,
                      retries=2)
        for path, offset, others, follow in zip(
            chosen.files, chosen.offsets, chosen.others, chosen.follow, strict=True
        )
    ]  # fmt: skip
    index = {future.key: n for n, future in enumerate(futures)}
    pieces: list[Piece | None] = [None] * len(futures)
    for future in as_completed(futures):
        pieces[index[future.key]] = future.result()
        future.release()
        if on_done:
            on_done(label, sum(p is not None for p in pieces), len(pieces))
    result = combine(label, pieces)
    for error in chosen.errors:
        result.info.warnings.append(f"{error}: left out of the set")
    return result, []


def _lost_worker_errors() -> tuple[type[BaseException], ...]:
    """What Dask raises when a task kept losing its workers, or the scheduler went away."""
    from distributed.client import FutureCancelledError
    from distributed.scheduler import KilledWorker

    return (KilledWorker, FutureCancelledError, OSError, TimeoutError)


def _client(scheduler: str):
    """A Dask client of the cluster at ``scheduler``."""
    from dask.distributed import Client

    return Client(scheduler, timeout="20s")

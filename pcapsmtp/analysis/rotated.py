"""Rotated capture sets in parallel (``analyze_parallel``): on N processes forked from this
one, each a share of the connections (pcapsmtp.analysis.shards), or one task per file on a
Dask cluster (below). A set read in this process is pcapsmtp.analysis.chained's.

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
about a flow from that flow's own packets (pcapsmtp.tcp.limits). The ``tcp.stream``
numbers are then given in the order of every flow's first frame, as one pass numbers them.
Nothing but finished sessions and counts travels back; a task holds what one pass over
its file would hold, plus the connections it follows.

What a file boundary still changes on Dask: an IP datagram whose fragments fall in two
files is not reassembled (each file warns of it); ``--jobs 1`` reassembles it.

These tasks run on the Dask cluster a ``--scheduler`` address names (whose workers need
pcapsmtp installed and the files at the same paths). A task is a pure function of its file,
so a task lost with its worker is run again elsewhere and the result is the same.
"""

from __future__ import annotations

import bisect
import hashlib
from array import array
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from pcapsmtp.analysis.chained import analyze_merged
from pcapsmtp.analysis.extras import CLUSTER, needs
from pcapsmtp.analysis.model import CaptureResult, Options, ParallelError
from pcapsmtp.analysis.one_pass import OnePass, analyze_capture
from pcapsmtp.analysis.shards import analyze_local
from pcapsmtp.capture import CaptureInfo, IcmpError, TcpSegment, open_capture, packets
from pcapsmtp.capture.sets import CaptureSet, merge_info, order_by_time
from pcapsmtp.errors import CaptureError
from pcapsmtp.smtp.model import Session


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

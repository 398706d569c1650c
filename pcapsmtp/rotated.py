"""Rotated capture sets analysed as one capture: chained in one process, or one task per file.

``--jobs 1`` (or a set of one file) reads the files one after another as one stream
(pcapsmtp.capture.sets.ChainedCapture): one pass, exactly as over the merged capture.

In parallel every file is a task, in two rounds:

1. ``scan_file``: the file's frame count (so frame numbers run on from file to file) and a
   stable hash of every TCP 4-tuple in it (those that ICMP errors quote included).
2. ``analyze_piece``: the file analysed on its own with its frame offset, except for the
   4-tuples found in more than one file of the set: their packets are sent back as they are.
   What the file holds alone (most connections) comes back finished, as sessions.

The stitch replays the sent-back packets of all files, in order, through one flow tracker
and one SMTP tracker (one stitch task per worker, each for its share of the 4-tuples by
hash): a session that crossed a file boundary (in two files or twenty) is tracked exactly
as one pass would, because the flow tracker decides everything about a flow from that
flow's own packets (pcapsmtp.tcp.flows). Finally the ``tcp.stream`` numbers
are given in the order of every flow's first frame, as one pass numbers them.

What a file boundary still changes in parallel: an IP datagram whose fragments fall in two
files is not reassembled (each file warns of it); ``--jobs 1`` reassembles it.

Tasks run on Dask: a local cluster of ``jobs`` worker processes, or the cluster a
``--scheduler`` address names (whose workers need pcapsmtp installed and the files at the
same paths). A task is a pure function of its file, so a task lost with its worker is run
again elsewhere and the result is the same.
"""

from __future__ import annotations

import bisect
import hashlib
import os
import shutil
import subprocess
import tempfile
from array import array
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace

from pcapsmtp.capture import CaptureInfo, IcmpError, TcpSegment, open_capture, packets
from pcapsmtp.capture.sets import CaptureSet, ChainedCapture, merge_info, order_by_time
from pcapsmtp.errors import CaptureError
from pcapsmtp.smtp.model import Session
from pcapsmtp.smtp.tracker import SMTP_PORTS, SmtpTracker
from pcapsmtp.tcp import FlowEnded, FlowTracker


class ParallelError(Exception):
    """The tasks could not be run (no scheduler at that address, workers lost for good)."""

    def __init__(self, where: str, reason: str) -> None:
        super().__init__(f"{where}: {reason}")
        self.where = where
        self.reason = reason


def key_hash(src: bytes, sport: int, dst: bytes, dport: int) -> int:
    """A hash of a 4-tuple, either way round, that is the same in every process (Python's
    ``hash`` of bytes is not). A collision only sends a few more packets to the stitch."""
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
    keys: set[int] = field(default_factory=set)
    secrets: bool = False
    error: CaptureError | None = None


def scan_file(path: str) -> FileScan:
    """Frame count, first timestamp and 4-tuple hashes of one file (a task)."""
    scan = FileScan(path)
    hashes = _Hashes()
    try:
        with open_capture(path) as capture:
            for packet in packets(capture):
                found = hashes.of(packet)
                if found is not None:
                    scan.keys.add(found)
            scan.frames = capture.info.frames
            scan.first_time_ns = capture.info.first_time_ns
            scan.secrets = bool(capture.info.secrets)
    except CaptureError as error:
        scan.error = error
    return scan


def shared_keys(scans: Iterable[FileScan]) -> set[int]:
    """The 4-tuples seen in more than one file: the connections that may cross a boundary."""
    seen = Counter(key for scan in scans for key in scan.keys)
    return {key for key, files in seen.items() if files > 1}


# -- round 2: each file on its own, the shared 4-tuples sent back --------------------------


@dataclass(slots=True)
class Piece:
    """What one file gave: finished sessions, and the packets of shared 4-tuples."""

    info: CaptureInfo
    sessions: list[Session] = field(default_factory=list)
    shipped: list[list[TcpSegment | IcmpError]] = field(default_factory=lambda: [[]])
    """The packets of shared 4-tuples, in frame order, in buckets by 4-tuple hash: each
    bucket is stitched by its own task."""
    flow_starts: array = field(default_factory=lambda: array("q"))
    """First frame of every flow tracked here (SMTP or not): for the tcp.stream numbers."""
    other_connections: int = 0
    stray_icmp: list[IcmpError] = field(default_factory=list)


def analyze_piece(
    path: str,
    frame_offset: int,
    shared: set[int],
    label: str,
    extra_ports: tuple[int, ...],
    buckets: int = 1,
) -> Piece:
    """One file of a set analysed with its frame numbers in the set (a task)."""
    with open_capture(path, frame_offset) as capture:
        piece = Piece(capture.info, shipped=[[] for _ in range(buckets)])
        hashes = _Hashes()

        def own(found: Iterator) -> Iterator:
            shipped = piece.shipped
            for packet in found:
                key = hashes.of(packet) if shared else None
                if key is not None and key in shared:
                    shipped[key % buckets].append(packet)
                else:
                    yield packet

        flows = FlowTracker(SMTP_PORTS + extra_ports)
        _Tracking(label, extra_ports, piece).events(flows.events(own(packets(capture))))
        piece.stray_icmp = flows.unmatched_icmp
        return piece


class _Tracking:
    """Stream events -> sessions, counting every flow and its first frame into a Piece."""

    def __init__(self, label: str, extra_ports: tuple[int, ...], piece: Piece) -> None:
        self.smtp = SmtpTracker(label, extra_ports)
        self.piece = piece

    def events(self, events: Iterable) -> None:
        piece, smtp = self.piece, self.smtp
        for event in events:
            session = smtp.add(event)
            if session is not None:
                piece.sessions.append(session)
            if isinstance(event, FlowEnded):
                piece.flow_starts.append(event.flow.first_frame)
                if session is None:
                    piece.other_connections += 1


class Stitch:
    """The shipped packets of every file, in order, through one tracker."""

    def __init__(self, label: str, extra_ports: tuple[int, ...]) -> None:
        self.piece = Piece(CaptureInfo(file=label))
        self.flows = FlowTracker(SMTP_PORTS + extra_ports)
        self._tracking = _Tracking(label, extra_ports, self.piece)

    def add(self, shipped: list[TcpSegment | IcmpError]) -> None:
        flows, tracking = self.flows, self._tracking
        for packet in shipped:
            if flows.add(packet):
                tracking.events(flows.take())

    def finish(self) -> Piece:
        self.flows.finish()
        self._tracking.events(self.flows.take())
        self.piece.stray_icmp = self.flows.unmatched_icmp
        return self.piece


def stitch_bucket(
    label: str, extra_ports: tuple[int, ...], *shipped: list[TcpSegment | IcmpError]
) -> Piece:
    """One bucket of shared 4-tuples, from every file in order, tracked as one pass (a task)."""
    stitch = Stitch(label, extra_ports)
    for packets_of_file in shipped:
        stitch.add(packets_of_file)
    return stitch.finish()


def _bucket(piece: Piece, k: int) -> list:
    return piece.shipped[k]


def _without_shipped(piece: Piece) -> Piece:
    """The piece for the client, without the packets (the bucket tasks read them still)."""
    return replace(piece, shipped=[])


def combine(label: str, pieces: list[Piece], *stitched: Piece):
    """The CaptureResult of a set from its pieces (in file order) and the stitch."""
    from pcapsmtp.analysis import CaptureResult

    info = merge_info(label, [piece.info for piece in pieces])
    result = CaptureResult(info)
    starts = array("q")
    for piece in [*pieces, *stitched]:
        result.sessions += piece.sessions
        result.stray_icmp += piece.stray_icmp
        result.other_connections += piece.other_connections
        starts.extend(piece.flow_starts)
    ordered = sorted(starts)
    for session in result.sessions:
        session.flow.stream = bisect.bisect_left(ordered, session.flow.first_frame)
    result.sessions.sort(key=lambda s: s.flow.first_frame)
    result.stray_icmp.sort(key=lambda e: e.frame)
    return result


# -- running it ------------------------------------------------------------------------


def analyze_chained(capture_set: CaptureSet, options) -> object:
    """One pass over the files of a set, one after another (``--jobs 1``)."""
    from pcapsmtp.analysis import run_pass

    times = {}
    readable = []
    errors = []
    for path in capture_set.files:
        try:
            times[path] = _first_time(path)
            readable.append(path)
        except CaptureError as error:
            errors.append(error)
    if not readable:
        raise errors[0]
    ordered = CaptureSet(capture_set.label, order_by_time(readable, times))
    capture = ChainedCapture(ordered)
    for error in errors:
        capture.info.warnings.append(f"{error}: left out of the set")
    result = run_pass(capture, capture_set.label, options, hold_tls=None)
    if any(info_secret for info_secret in capture.info.secrets):
        capture.info.warnings.append(
            "TLS keys embedded in files of a rotated set are not used; give them with --keylog"
        )
    return result


def _first_time(path: str) -> int | None:
    from pcapsmtp.capture.sets import first_time

    return first_time(path)


def analyze_merged(capture_set: CaptureSet, options) -> object:
    """A set with TLS keys: merged with ``mergecap -a`` into one file, which tshark then
    decrypts as it would a single capture."""
    from pcapsmtp.analysis import analyze_capture

    mergecap = shutil.which("mergecap")
    if mergecap is None:
        result = analyze_chained(capture_set, options)
        result.info.warnings.append(
            "TLS decryption of a rotated set needs mergecap (Debian package wireshark-common); "
            "the set was read without it"
        )
        return result
    times = {path: _first_time(path) for path in capture_set.files}
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


@dataclass(slots=True)
class Plan:
    """A set's files in capture order with their frame offsets and shared 4-tuples."""

    capture_set: CaptureSet
    files: list[str]
    offsets: list[int]
    shared: list[set[int]]
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
    everywhere = shared_keys(scans[p] for p in files)
    shared = [scans[p].keys & everywhere for p in files]
    return Plan(capture_set, files, offsets, shared, errors)


def analyze_parallel(
    sets: list[CaptureSet],
    options,
    jobs: int,
    scheduler: str | None,
    on_done: Callable[[str, int, int], None] | None = None,
) -> list[tuple[object | None, list[CaptureError]]]:
    """Every set, one task per file on Dask: (CaptureResult or None, errors) per set."""
    try:
        from dask.distributed import as_completed
    except ImportError:
        raise ParallelError(
            "--jobs", "Dask is not installed (pip install 'dask[distributed]')"
        ) from None
    where = scheduler or "local Dask cluster"
    try:
        client, cluster = _client(jobs, scheduler)
    except (OSError, TimeoutError) as error:
        raise ParallelError(where, f"cannot start or reach it ({error})") from None
    try:
        all_files = sorted({path for s in sets for path in s.files if path != "-"})
        scans = {}
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
        raise ParallelError(where, f"the tasks failed: {type(error).__name__}: {error}") from None
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _run_set(client, capture_set: CaptureSet, scans: dict[str, FileScan], options, on_done):
    from dask.distributed import as_completed

    if "-" in capture_set.files:
        from pcapsmtp.analysis import analyze_capture

        try:
            return analyze_capture("-", options), []
        except CaptureError as error:
            return None, [error]
    if options.keylog or any(scans[p].secrets for p in capture_set.files):
        if len(capture_set.files) == 1:
            from pcapsmtp.analysis import analyze_capture

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
    buckets = buckets_for(client) if any(chosen.shared) else 1
    futures = [
        client.submit(analyze_piece, path, offset, shared, label, ports, buckets, pure=False,
                      retries=2)
        for path, offset, shared in zip(chosen.files, chosen.offsets, chosen.shared, strict=True)
    ]  # fmt: skip
    stitches = [
        client.submit(
            stitch_bucket,
            label,
            ports,
            *[client.submit(_bucket, f, k, pure=False) for f in futures],
            pure=False,
            retries=2,
        )
        for k in range(buckets)
    ]
    finished = [client.submit(_without_shipped, f, pure=False) for f in futures]
    del futures
    index = {future.key: n for n, future in enumerate(finished)}
    pieces: list[Piece | None] = [None] * len(finished)
    for future in as_completed(finished):
        pieces[index[future.key]] = future.result()
        if on_done:
            on_done(label, sum(p is not None for p in pieces), len(pieces))
    result = combine(label, pieces, *client.gather(stitches))
    for error in chosen.errors:
        result.info.warnings.append(f"{error}: left out of the set")
    return result, []


def buckets_for(client) -> int:
    """Stitch tasks per set: one per worker, so that the stitch runs in parallel too."""
    try:
        return max(1, len(client.scheduler_info()["workers"]))
    except (KeyError, TypeError):
        return 1


def _lost_worker_errors() -> tuple[type[BaseException], ...]:
    """What Dask raises when a task kept losing its workers, or the scheduler went away."""
    from distributed.client import FutureCancelledError
    from distributed.scheduler import KilledWorker

    return (KilledWorker, FutureCancelledError, OSError, TimeoutError)


def _client(jobs: int, scheduler: str | None):
    """A Dask client: of the cluster at ``scheduler``, or of a new local cluster."""
    import logging

    from dask.distributed import Client, LocalCluster

    if scheduler:
        return Client(scheduler, timeout="20s"), None
    cluster = LocalCluster(
        n_workers=jobs,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        silence_logs=logging.ERROR,
    )
    return Client(cluster), cluster

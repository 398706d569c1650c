#!/usr/bin/env python3
"""A rotated capture set, read with --jobs 1 and --jobs N: throughput, speed-up, peak memory.

    python3 scripts/bench/rotated.py --generate 2G --files 16           # /tmp/bench-rotated-2G/
    python3 scripts/bench/rotated.py --folder DIR --jobs 1 2 --repeat 2  # an existing set

``--generate`` writes the benchmark's deterministic capture (gencapture.py: thousands of
interleaved SMTP sessions) of that size and cuts it, as it streams, into ``--files`` pcap
files named as ``tcpdump -G`` names them; sessions open at a cut cross into the next file.

Each run is ``python3 -m pcapsmtp analyze FOLDER --jobs J --format json -q`` (this
checkout's pcapsmtp) with its output thrown away, the runs of the different J alternating;
CPU time is the command's and its workers' (``wait4``), and of it the command's own (its
``getrusage`` at exit). While a run goes, the peak resident memory (VmHWM) of the command
and of every process below it (the worker processes ``--jobs`` forks) is read from /proc
every 0.2 s; the table gives the command's own peak and the largest worker's. Only the
standard library is needed.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path.insert(0, str(HERE))

from gencapture import generate, parse_size  # noqa: E402


class _Splitter:
    """A file-like sink that cuts a pcap stream at record boundaries into several files."""

    def __init__(self, folder: Path, per_file: int) -> None:
        self.folder = folder
        self.per_file = per_file
        self.header = b""
        self.pending = b""
        self.out = None
        self.count = 0
        self.written_here = 0

    def write(self, data: bytes) -> int:
        self.pending += data
        if not self.header:
            if len(self.pending) < 24:
                return len(data)
            self.header, self.pending = self.pending[:24], self.pending[24:]
        while len(self.pending) >= 16:
            caplen = int.from_bytes(self.pending[8:12], "little")
            if len(self.pending) < 16 + caplen:
                break
            record, self.pending = self.pending[: 16 + caplen], self.pending[16 + caplen :]
            if self.out is None or self.written_here >= self.per_file:
                self._next_file()
            self.out.write(record)
            self.written_here += len(record)
        return len(data)

    def _next_file(self) -> None:
        if self.out is not None:
            self.out.close()
        self.out = open(self.folder / f"gw1-2026112301{self.count:04d}.pcap", "wb")  # noqa: SIM115
        self.out.write(self.header)
        self.count += 1
        self.written_here = 0

    def close(self) -> None:
        if self.out is not None:
            self.out.close()


def make_set(size: int, files: int, folder: Path, concurrency: int = 1000) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("gw1-*.pcap"):
        old.unlink()
    splitter = _Splitter(folder, size // files + 1)
    written, frames = generate(splitter, size, concurrency=concurrency)
    splitter.close()
    print(f"{folder}: {written:,} bytes, {frames:,} frames in {splitter.count} files", flush=True)


def _descendants(pid: int) -> list[int]:
    children = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                children += [int(c) for c in f.read().split()]
    except OSError:
        return []
    return children + [d for c in children for d in _descendants(c)]


def _peak_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


CPU_SPLIT = """
import atexit, resource, runpy, sys
def _cpu():
    own = resource.getrusage(resource.RUSAGE_SELF)
    workers = resource.getrusage(resource.RUSAGE_CHILDREN)
    sys.stderr.write(f"bench-cpu {own.ru_utime + own.ru_stime} "
                     f"{workers.ru_utime + workers.ru_stime}\\n")
atexit.register(_cpu)
sys.argv[0] = "pcapsmtp"
runpy.run_module("pcapsmtp", run_name="__main__", alter_sys=True)
"""
"""``python3 -m pcapsmtp``, telling at its exit the CPU of the command itself and of the
worker processes it waited for (``getrusage``), on standard error."""


def run(folder: Path, jobs: int) -> dict:
    """One run; CPU is the command's and every process below it that it waited for (the
    worker processes), from ``wait4``, and the command's own part of it."""
    command = [sys.executable, "-c", CPU_SPLIT, "analyze", str(folder), "--jobs", str(jobs),
               "--format", "json", "-q"]  # fmt: skip
    # This checkout's pcapsmtp, not whichever is installed.
    env = dict(os.environ, PYTHONPATH=str(REPO))
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    errors = tempfile.TemporaryFile()  # noqa: SIM115 (closed below)
    start = time.monotonic()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=errors, env=env,
                               cwd=REPO)  # fmt: skip
    peaks: dict[int, int] = {}
    while True:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            break
        for pid in [process.pid, *_descendants(process.pid)]:
            peaks[pid] = max(peaks.get(pid, 0), _peak_kib(pid))
        time.sleep(0.2)
    seconds = time.monotonic() - start
    errors.seek(0)
    told = errors.read().decode(errors="replace")
    errors.close()
    if os.waitstatus_to_exitcode(status):
        sys.exit(f"{' '.join(command)} failed with {os.waitstatus_to_exitcode(status)}: {told}")
    own = next(
        (float(line.split()[1]) for line in told.splitlines() if line.startswith("bench-cpu ")), 0.0
    )
    main = max(peaks.pop(process.pid, 0), usage.ru_maxrss)
    return {
        "seconds": seconds,
        "cpu": usage.ru_utime + usage.ru_stime,
        "command_cpu": own,
        "main_mib": main / 1024,
        "worker_mib": max(peaks.values(), default=0) / 1024,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--generate", metavar="SIZE", help="make a set of this size, e.g. 2G")
    parser.add_argument("--files", type=int, default=16)
    parser.add_argument(
        "--concurrency",
        type=int,
        default=1000,
        help="sessions open at once in the generated traffic: with 1000, nearly every "
        "session crosses a file boundary; a gateway's hourly files see a small share do",
    )
    parser.add_argument("--folder", type=Path)
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args(argv)
    folder = args.folder or Path(f"/tmp/bench-rotated-{args.generate}-c{args.concurrency}")
    if args.generate:
        make_set(parse_size(args.generate), args.files, folder, args.concurrency)
    total = sum(p.stat().st_size for p in folder.glob("gw1-*.pcap"))
    results: dict[int, list[dict]] = {j: [] for j in args.jobs}
    for _ in range(args.repeat):
        for jobs in args.jobs:
            results[jobs].append(run(folder, jobs))
            print(f"jobs {jobs}: {results[jobs][-1]}", file=sys.stderr, flush=True)
    print(f"\n{platform.node()}: {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"set: {folder}, {len(list(folder.glob('gw1-*.pcap')))} files, {total / 1e6:,.0f} MB\n")
    print(
        "| --jobs | wall s (median) | CPU s (median) | of it the command's | MB/s | speed-up, "
        f"wall | CPU / --jobs {args.jobs[0]}'s | peak MiB, command | peak MiB, largest worker |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    base = statistics.median(r["seconds"] for r in results[args.jobs[0]])
    base_cpu = statistics.median(r["cpu"] for r in results[args.jobs[0]])
    for jobs, runs in results.items():
        seconds = statistics.median(r["seconds"] for r in runs)
        cpu = statistics.median(r["cpu"] for r in runs)
        own = statistics.median(r["command_cpu"] for r in runs)
        main_mib = max(r["main_mib"] for r in runs)
        worker = max(r["worker_mib"] for r in runs)
        print(
            f"| {jobs} | {seconds:.1f} | {cpu:.1f} | {own:.1f} | {total / 1e6 / seconds:.1f} | "
            f"{base / seconds:.2f}x | {cpu / base_cpu:.2f}x | {main_mib:.0f} | "
            + (f"{worker:.0f} |" if worker else "- (in-process) |")
        )
    print(
        "\nWall time on a shared machine is only as good as its load: the CPU column (the "
        "process tree's user + system) is what to compare; --jobs 2 can be faster on two "
        "cores only while its CPU stays under twice --jobs 1's. On an idle machine the wall "
        "time of --jobs N is about the command's CPU plus the workers' / N."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

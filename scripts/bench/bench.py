#!/usr/bin/env python3
"""pcapsmtp against tshark on the same capture, whole process against whole process.

    python3 scripts/bench/bench.py --generate 1G                 # makes /tmp/bench-smtp-1G.pcap
    python3 scripts/bench/bench.py --generate 1G --mix mixed --link sll
    python3 scripts/bench/bench.py --generate 1G --format pcapng
    python3 scripts/bench/bench.py captures/*.pcap big.pcap      # existing captures
    python3 scripts/bench/bench.py --startup captures/clean-delivery.pcap
    python3 scripts/bench/bench.py --stream 100M 1G 10G          # generator piped into stdin
    python3 scripts/bench/bench.py --rotated 2G --files 16       # --jobs 1 against --jobs 2

For each capture, in turn (A B A B ..., so that a machine slowing down hurts both alike):

- ``pcapsmtp analyze --format json FILE``;
- tshark extracting the same facts in one pass: the SMTP commands and replies with their
  frame, time, stream and endpoints (``-Y smtp -T fields``), the message IDs and subjects
  (IMF), and the per-connection totals (``-z conv,tcp``, printed after the fields).

Each run's wall time, CPU time and peak memory (the child's own ``ru_maxrss`` from
``wait4``) is taken; the medians are printed as a Markdown table with MB/s, packets/s and
the ratio tshark / pcapsmtp, plus the machine and versions. Only the Python standard
library and tshark are needed.

pcapsmtp runs as an installed package does: from compiled bytecode (``pip install`` writes
the ``.pyc`` files; the script compiles the checkout once with ``compileall`` and clears
``PYTHONDONTWRITEBYTECODE`` for the runs, so an environment that sets it does not make every
run compile some 100 modules, about 0.1 s of CPU).

``--startup`` measures instead the time from starting ``pcapsmtp analyze FILE`` to the first
byte of its output (and tshark's ``-r FILE`` for comparison).

``--stream SIZE ...`` pipes the generator (gencapture.py ``-o -``) into ``pcapsmtp analyze
--format json -`` for each size, so a capture larger than the disk can spare is measured
(10G): the analyzer's own CPU time and peak RSS (``wait4`` on it alone, not the generator),
and its resident memory sampled from /proc as it reads, printed at every tenth of the input
(the bytes it has read, /proc/PID/io ``rchar``), which shows whether memory grows with the
capture's length or stays flat.

``--rotated SIZE`` (or ``--rotated-folder DIR``) reads a rotated set with ``--jobs 1`` and
``--jobs 2`` in turn (scripts/bench/rotated.py makes the set and runs it): wall and CPU time
of the whole process tree and peak memory of the command and its largest worker.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path.insert(0, str(HERE))

from gencapture import LINKTYPE_ETHERNET, LINKTYPE_LINUX_SLL, generate, parse_size  # noqa: E402

TSHARK_FIELDS = [
    "frame.number",
    "frame.time_epoch",
    "tcp.stream",
    "ip.src",
    "ipv6.src",
    "tcp.srcport",
    "ip.dst",
    "ipv6.dst",
    "tcp.dstport",
    "smtp.req.command",
    "smtp.req.parameter",
    "smtp.response.code",
    "smtp.rsp.parameter",
    "imf.message_id",
    "imf.subject",
]


def pcapsmtp_command(path: str, fmt: str = "json") -> list[str]:
    return [sys.executable, "-m", "pcapsmtp", "analyze", "--format", fmt, path]


def tshark_command(path: str) -> list[str]:
    fields = [arg for name in TSHARK_FIELDS for arg in ("-e", name)]
    return ["tshark", "-n", "-r", path, "-Y", "smtp", "-T", "fields", *fields, "-z", "conv,tcp"]


def _env() -> dict[str, str]:
    """This checkout first on the path, bytecode on (as an installed package runs)."""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def compile_checkout() -> None:
    """The checkout's modules compiled once, as ``pip install`` does for an installed copy."""
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", str(REPO / "pcapsmtp")],
        check=False, stdout=subprocess.DEVNULL, env=_env(),
    )  # fmt: skip


def _start(command: list[str]) -> subprocess.Popen:
    """The command, run from the repository with this checkout's pcapsmtp first on the path
    (``python -m`` puts the working directory first: a stray ``pcapsmtp`` folder elsewhere
    must not be measured instead)."""
    env = _env()
    return subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, cwd=REPO
    )


def run(command: list[str]) -> dict:
    """One whole-process run: wall and CPU seconds, peak RSS in MB, bytes printed."""
    start = time.perf_counter()
    proc = _start(command)
    printed = 0
    while chunk := proc.stdout.read(1 << 16):
        printed += len(chunk)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    return {
        "wall": wall,
        "cpu": usage.ru_utime + usage.ru_stime,
        "rss": usage.ru_maxrss / 1024,
        "printed": printed,
        "status": proc.returncode,
    }


def first_output(command: list[str]) -> float:
    """Seconds from starting ``command`` to the first byte on its standard output."""
    start = time.perf_counter()
    proc = _start(command)
    proc.stdout.read(1)
    elapsed = time.perf_counter() - start
    proc.stdout.read()
    proc.wait()
    return elapsed


def _proc_fields(pid: int) -> tuple[int, int]:
    """(resident KiB, bytes read) of a running process, from /proc; zeros once it is gone."""
    rss = read = 0
    try:
        with open(f"/proc/{pid}/status") as f:
            rss = next((int(line.split()[1]) for line in f if line.startswith("VmRSS:")), 0)
        with open(f"/proc/{pid}/io") as f:
            read = next((int(line.split()[1]) for line in f if line.startswith("rchar:")), 0)
    except (OSError, StopIteration):
        pass
    return rss, read


def stream(size: str, seed: int, interval: float = 0.25) -> dict:
    """The generator's capture of ``size`` piped into ``pcapsmtp analyze --format json -``:
    the analyzer's wall, CPU and peak RSS, and its RSS sampled against the bytes it read."""
    generator = subprocess.Popen(
        [sys.executable, str(HERE / "gencapture.py"), "--size", size, "--seed", str(seed),
         "-o", "-"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    env = _env()
    start = time.perf_counter()
    analyzer = subprocess.Popen(
        pcapsmtp_command("-"),
        stdin=generator.stdout, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        env=env, cwd=REPO,
    )  # fmt: skip
    generator.stdout.close()
    printed = [0]

    def drain() -> None:
        while chunk := analyzer.stdout.read(1 << 16):
            printed[0] += len(chunk)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    samples: list[tuple[int, int]] = []
    while True:
        pid, status, usage = os.wait4(analyzer.pid, os.WNOHANG)
        if pid:
            break
        rss, read = _proc_fields(analyzer.pid)
        if rss:
            samples.append((read, rss))
        time.sleep(interval)
    wall = time.perf_counter() - start
    analyzer.returncode = os.waitstatus_to_exitcode(status)
    reader.join()
    generator.wait()
    return {
        "size": size,
        "wall": wall,
        "cpu": usage.ru_utime + usage.ru_stime,
        "rss": usage.ru_maxrss / 1024,
        "printed": printed[0],
        "status": analyzer.returncode,
        "samples": samples,
    }


def rss_curve(samples: list[tuple[int, int]], total: int, steps: int = 10) -> list[str]:
    """RSS (MiB) when the analyzer had read each tenth of ``total`` bytes: the largest
    sample up to that point, so a peak between two marks is not missed."""
    marks = []
    peak = 0
    it = iter(samples)
    for step in range(1, steps + 1):
        limit = total * step // steps
        for read, rss in it:
            peak = max(peak, rss)
            if read >= limit:
                break
        marks.append(f"{peak / 1024:.0f}")
    return marks


def frames_in(path: str) -> int:
    """Frames in a capture, by our own reader (the figure both tools are divided by)."""
    sys.path.insert(0, str(REPO))
    from pcapsmtp.capture import open_capture

    with open_capture(path) as capture:
        return sum(1 for _ in capture.frames())


def machine() -> str:
    cpu = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kb = next(
        int(line.split()[1])
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal")
    )
    tshark = subprocess.run(["tshark", "-v"], capture_output=True, text=True).stdout
    tshark_version = tshark.splitlines()[0] if tshark else "tshark absent"
    sys.path.insert(0, str(REPO))
    from pcapsmtp import __version__

    return (
        f"{os.cpu_count()} CPUs ({cpu}), {mem_kb / 1024 / 1024:.1f} GiB RAM, "
        f"{platform.system()} {platform.release()}; Python {platform.python_version()}, "
        f"pcapsmtp {__version__}, {tshark_version}"
    )


def bench(path: str, runs: int, tshark: bool) -> list[str]:
    size_mb = os.path.getsize(path) / 1e6
    frames = frames_in(path)
    ours, theirs = [], []
    run(pcapsmtp_command(path))  # warm the page cache
    for _ in range(runs):
        ours.append(run(pcapsmtp_command(path)))
        if tshark:
            theirs.append(run(tshark_command(path)))
    rows = []
    for name, results in (("pcapsmtp analyze --format json", ours), ("tshark", theirs)):
        if not results:
            continue
        wall = statistics.median(r["wall"] for r in results)
        cpu = statistics.median(r["cpu"] for r in results)
        rss = max(r["rss"] for r in results)
        rows.append(
            f"| {Path(path).name} | {size_mb:.0f} MB | {frames} | {name} | {wall:.2f} | "
            f"{cpu:.2f} | {size_mb / wall:.1f} | {frames / wall:,.0f} | {rss:.0f} |"
        )
    if theirs:
        ratios = [t["wall"] / o["wall"] for o, t in zip(ours, theirs, strict=True)]
        cpu_ratios = [t["cpu"] / o["cpu"] for o, t in zip(ours, theirs, strict=True)]
        rows.append(
            f"| | | | **ratio tshark / pcapsmtp** | {statistics.median(ratios):.2f}x | "
            f"{statistics.median(cpu_ratios):.2f}x | | | |"
        )
    return rows


def startup(path: str, runs: int) -> list[str]:
    rows = []
    for name, command in (
        ("pcapsmtp analyze", pcapsmtp_command(path, "text")),
        ("tshark -r", ["tshark", "-n", "-r", path]),
    ):
        first_output(command)
        times = [first_output(command) for _ in range(runs)]
        rows.append(f"| {Path(path).name} | {name} | {statistics.median(times) * 1000:.0f} ms |")
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("captures", nargs="*", help="existing captures to measure")
    parser.add_argument("--generate", metavar="SIZE", help="make a capture of SIZE (e.g. 1G)")
    parser.add_argument("--mix", choices=("smtp", "mixed"), default="smtp")
    parser.add_argument("--link", choices=("ethernet", "sll"), default="ethernet")
    parser.add_argument("--format", choices=("pcap", "pcapng"), default="pcap")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workdir", default="/tmp", help="where generated captures go")
    parser.add_argument("--runs", type=int, default=3, help="runs of each command")
    parser.add_argument("--no-tshark", action="store_true", help="measure pcapsmtp only")
    parser.add_argument("--startup", action="store_true", help="time to first output instead")
    parser.add_argument(
        "--stream", metavar="SIZE", nargs="+", help="generator piped into analyze -, per size"
    )
    parser.add_argument("--rotated", metavar="SIZE", help="a generated rotated set of SIZE")
    parser.add_argument("--rotated-folder", metavar="DIR", help="an existing rotated set")
    parser.add_argument("--files", type=int, default=16, help="files of a generated set")
    parser.add_argument(
        "--concurrency", type=int, default=1000, help="sessions open at once in a generated set"
    )
    args = parser.parse_args(argv)
    compile_checkout()

    if args.stream:
        print(f"Machine: {machine()}\n")
        print(
            "pcapsmtp: `gencapture.py --size SIZE -o - | "
            f"{' '.join(pcapsmtp_command('-'))} > /dev/null`; the analyzer's own figures\n\n"
            "| size | wall s | CPU s | peak RSS MiB | JSON bytes | RSS MiB at 10 %, 20 %, ... "
            "100 % of the input |\n| --- | --- | --- | --- | --- | --- |"
        )
        for size in args.stream:
            got = stream(size, args.seed)
            if got["status"]:
                print(f"| {size} | analyze exited with {got['status']} | | | | |")
                continue
            curve = ", ".join(rss_curve(got["samples"], parse_size(size)))
            print(
                f"| {size} | {got['wall']:.1f} | {got['cpu']:.1f} | {got['rss']:.0f} | "
                f"{got['printed']:,} | {curve} |",
                flush=True,
            )
        return 0
    if args.rotated or args.rotated_folder:
        import rotated

        print(f"Machine: {machine()}\n")
        given = ["--folder", args.rotated_folder] if args.rotated_folder else []
        if args.rotated:
            given = ["--generate", args.rotated, "--files", str(args.files)]
            given += ["--concurrency", str(args.concurrency)]
        return rotated.main([*given, "--repeat", str(args.runs)])

    captures = [os.path.abspath(path) for path in args.captures]
    if args.generate:
        name = f"bench-{args.mix}-{args.link}-{args.generate}-seed{args.seed}.{args.format}"
        path = Path(args.workdir).resolve() / name
        if not path.exists():
            linktype = LINKTYPE_LINUX_SLL if args.link == "sll" else LINKTYPE_ETHERNET
            with open(path, "wb") as out:
                generate(out, parse_size(args.generate), args.seed, args.mix, linktype, args.format)
        captures.append(str(path))
    if not captures:
        parser.error("give captures or --generate SIZE")
    use_tshark = not args.no_tshark and shutil.which("tshark") is not None

    print(f"Machine: {machine()}\n")
    if args.startup:
        print("| capture | command | time to first output (median) |\n| --- | --- | --- |")
        for path in captures:
            print("\n".join(startup(path, args.runs)))
        return 0
    print(f"pcapsmtp: `{' '.join(pcapsmtp_command('FILE'))}`")
    if use_tshark:
        print(f"tshark: `{' '.join(tshark_command('FILE'))}`")
    print(
        f"\nMedians of {args.runs} runs.\n\n"
        "| capture | size | frames | command | wall s | CPU s | MB/s | packets/s | peak RSS MiB |\n"
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"
    )
    for path in captures:
        print("\n".join(bench(path, args.runs, use_tshark)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

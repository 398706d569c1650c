#!/usr/bin/env python3
"""Frames per second of the capture reader alone: ``open_capture(FILE).frames()`` to the
end, nothing decoded; with ``--decode``, reading and decoding: ``packets(capture)`` (TCP
segments and ICMP errors, fragments reassembled) consumed by Python. Compare two checkouts
by running it with each on PYTHONPATH:

    PYTHONPATH=. python3 scripts/bench/read.py /tmp/bench-smtp-200M.pcap
    PYTHONPATH=/path/to/other/checkout python3 scripts/bench/read.py --decode /tmp/dec200.pcap

Prints, per file, the run of ``--runs`` that took the least CPU: frames (and packets),
seconds (wall and CPU), frames/s and MB/s of CPU time, and the load average when it began.
"""

from __future__ import annotations

import argparse
import os
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--decode", action="store_true", help="time packets(), not frames()")
    args = parser.parse_args()
    from pcapsmtp.capture import open_capture, packets

    for path in args.files:
        best = None
        load = os.getloadavg()[0]
        for _ in range(args.runs):
            wall, cpu = time.perf_counter(), time.process_time()
            with open_capture(path) as capture:
                found = sum(1 for _ in (packets(capture) if args.decode else capture.frames()))
                frames = capture.info.frames
            took = (time.perf_counter() - wall, time.process_time() - cpu)
            best = took if best is None or took[1] < best[1] else best
        size = os.path.getsize(path) / 1e6
        decoded = f" -> {found} packets" if args.decode else ""
        print(
            f"{path}: {frames} frames{decoded}, {best[0]:.2f} s wall, {best[1]:.2f} s CPU, "
            f"{frames / best[1]:,.0f} frames/s, {size / best[1]:.0f} MB/s (CPU), "
            f"load average {load:.1f}"
        )


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Frames per second of the capture reader alone: ``open_capture(FILE).frames()`` to the
end, nothing decoded. Compare two checkouts by running it with each on PYTHONPATH:

    PYTHONPATH=. python3 scripts/bench/read.py /tmp/bench-smtp-200M.pcap
    PYTHONPATH=/path/to/other/checkout python3 scripts/bench/read.py /tmp/bench-smtp-200M.pcap

Prints, per file, the best of ``--runs`` runs: frames, seconds (wall and CPU), frames/s, MB/s.
"""

from __future__ import annotations

import argparse
import os
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    from pcapsmtp.capture import open_capture

    for path in args.files:
        best = None
        for _ in range(args.runs):
            wall, cpu = time.perf_counter(), time.process_time()
            with open_capture(path) as capture:
                frames = sum(1 for _ in capture.frames())
            took = (time.perf_counter() - wall, time.process_time() - cpu)
            best = took if best is None or took[0] < best[0] else best
        size = os.path.getsize(path) / 1e6
        print(
            f"{path}: {frames} frames, {best[0]:.2f} s wall, {best[1]:.2f} s CPU, "
            f"{frames / best[0]:,.0f} frames/s, {size / best[0]:.0f} MB/s"
        )


if __name__ == "__main__":
    main()

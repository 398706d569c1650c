#!/usr/bin/env python3
"""What CPython's cyclic collector costs in one pcapsmtp command: runs the CLI in this
process with a ``gc.callbacks`` hook and prints, on stderr at exit, the collections of each
generation, their CPU seconds (``time.process_time``) and the objects they freed.

    PYTHONPATH=$PWD python3 scripts/bench/gc_collections.py analyze -o /tmp/x.json CAPTURE
    GC_VERBOSE=1 ...   # also a line for each full collection (when, how long, how many freed)
"""

from __future__ import annotations

import atexit
import gc
import os
import runpy
import sys
import time

VERBOSE = bool(os.environ.get("GC_VERBOSE"))
stats = {generation: [0, 0.0, 0] for generation in (0, 1, 2)}
started = [0.0]


def on_collection(phase: str, info: dict) -> None:
    now = time.process_time()
    if phase == "start":
        started[0] = now
        return
    generation, took = info["generation"], now - started[0]
    counts = stats[generation]
    counts[0] += 1
    counts[1] += took
    counts[2] += info["collected"]
    if generation == 2 and VERBOSE:
        print(
            f"  full at {now:.2f} s took {took:.3f} s, freed {info['collected']}", file=sys.stderr
        )


def report() -> None:
    for generation, (count, seconds, collected) in stats.items():
        print(f"gen{generation}: {count} collections {seconds:.3f} s cpu, {collected} collected",
              file=sys.stderr)  # fmt: skip


if __name__ == "__main__":
    gc.callbacks.append(on_collection)
    atexit.register(report)
    sys.argv = ["pcapsmtp", *sys.argv[1:]]
    runpy.run_module("pcapsmtp", run_name="__main__")

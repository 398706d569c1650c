#!/usr/bin/env python3
"""CPU seconds of the TCP layer alone: the capture's packets read and decoded first (not
timed), then ``FlowTracker.events`` over them to the end (timed with
``time.process_time``), the events only counted. Compare two checkouts by running it with
each on PYTHONPATH:

    PYTHONPATH=. python3 scripts/bench/tcp.py /tmp/bench-smtp-50M.pcap

Prints, per file: packets, events, CPU seconds of the flow table, best of ``--runs``.

With ``--decoding`` the decoding is timed too, the capture read anew each run: ``packets``
into ``FlowTracker.events`` (``--path old``, any checkout) or the decoder's batches into
``FlowTracker.batch_events`` (``--path fast``, the fast path ``run_pass`` takes).
"""

from __future__ import annotations

import argparse
import time

from pcapsmtp.capture import open_capture, packets
from pcapsmtp.smtp.ports import SMTP_PORTS
from pcapsmtp.tcp import FlowTracker


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("files", nargs="+")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--decoding", action="store_true", help="time the decoding too")
    parser.add_argument("--path", choices=("old", "fast"), default="old")
    args = parser.parse_args()
    for path in args.files:
        if args.decoding:
            decoding(path, args.runs, args.path)
            continue
        with open_capture(path) as capture:
            read = list(packets(capture))
        times = []
        for _ in range(args.runs):
            start = time.process_time()
            events = sum(1 for _ in FlowTracker(SMTP_PORTS).events(read))
            times.append(time.process_time() - start)
        runs = " / ".join(f"{t:.2f}" for t in times)
        print(f"{path}: {len(read):,} packets, {events:,} events, TCP layer {runs} s CPU")


def decoding(path: str, runs: int, way: str) -> None:
    """Decoding and the flow table together, ``runs`` times."""
    times = []
    for _ in range(runs):
        start = time.process_time()
        with open_capture(path) as capture:
            tracker = FlowTracker(SMTP_PORTS)
            if way == "fast":
                from pcapsmtp.capture import segment_batches

                found = tracker.batch_events(segment_batches(capture))
            else:
                found = tracker.events(packets(capture))
            events = sum(1 for _ in found)
        times.append(time.process_time() - start)
    spent = " / ".join(f"{t:.2f}" for t in times)
    print(f"{path}: {events:,} events, decoding and TCP layer ({way}) {spent} s CPU")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""CPU seconds of the TCP layer alone: the capture's packets read and decoded first (not
timed), then ``FlowTracker.events`` over them to the end (timed with
``time.process_time``), the events only counted. Compare two checkouts by running it with
each on PYTHONPATH:

    PYTHONPATH=. python3 scripts/bench/tcp.py /tmp/bench-smtp-50M.pcap

Prints, per file: packets, events, CPU seconds of the flow table, best of ``--runs``.
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
    args = parser.parse_args()
    for path in args.files:
        with open_capture(path) as capture:
            read = list(packets(capture))
        times = []
        for _ in range(args.runs):
            start = time.process_time()
            events = sum(1 for _ in FlowTracker(SMTP_PORTS).events(read))
            times.append(time.process_time() - start)
        runs = " / ".join(f"{t:.2f}" for t in times)
        print(f"{path}: {len(read):,} packets, {events:,} events, TCP layer {runs} s CPU")


if __name__ == "__main__":
    main()

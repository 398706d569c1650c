#!/usr/bin/env python3
"""CPU of what follows the pass: the diagnosis and each output's rendering, on one capture
analysed once. Compare two checkouts by running it with each on PYTHONPATH:

    PYTHONPATH=. python3 scripts/bench/after_pass.py /tmp/smtp200.pcap
    PYTHONPATH=/path/to/other/checkout python3 scripts/bench/after_pass.py /tmp/smtp200.pcap

Each stage runs ``--runs`` times in the same process (the first run also pays imports and
fills caches); prints every run's CPU seconds and the lowest, and the load average when it
began. The JSON goes to /dev/null through ``jsondoc.write_json`` as ``analyze --format json``
writes it; text, md and csv through the renderers of ``analyze --format``.
"""

from __future__ import annotations

import argparse
import os
import time
from datetime import UTC

from pcapsmtp.analysis import analyze
from pcapsmtp.diagnose import CaptureContext, diagnose
from pcapsmtp.report.formats import ANALYSIS, renderer
from pcapsmtp.report.jsondoc import write_json

STAGES = ("diagnose", "json", "text", "md", "csv")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("capture")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--stages", default=",".join(STAGES), help="of " + ", ".join(STAGES))
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.1f}")
    started = time.process_time()
    analysis = analyze([args.capture])
    print(f"analyze (the pass and the diagnosis) {time.process_time() - started:.3f} s")
    with open(os.devnull, "w") as sink:
        for stage in args.stages.split(","):
            runs = []
            for _ in range(args.runs):
                started = time.process_time()
                _run(stage, analysis, sink)
                runs.append(time.process_time() - started)
            shown = " ".join(f"{seconds:.3f}" for seconds in runs)
            print(f"{stage}: {shown}; lowest {min(runs):.3f} s")


def _run(stage: str, analysis, sink) -> None:
    if stage == "diagnose":
        for result in analysis.results:
            context = CaptureContext(result.info, result.stray_icmp, dns=result.dns)
            diagnose(result.sessions, context)
    elif stage == "json":
        write_json(analysis, sink)
    else:
        sink.write(renderer(ANALYSIS, stage)(analysis, UTC))


if __name__ == "__main__":
    main()

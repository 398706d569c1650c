"""Regenerate the lab captures: ``scripts/lab/run [SCENARIO...]`` (root; see captures/README.md)."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
import traceback
from pathlib import Path

import scenarios_capture  # noqa: F401  (registers the partial-capture scenarios)
import scenarios_dns  # noqa: F401  (registers the DNS scenarios)
from harness import Run
from readme import write_readme
from scenarios import SCENARIOS

REPO = Path(__file__).resolve().parents[2]
WORK = Path("/tmp/pcapsmtp-lab")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/lab/run", description=__doc__)
    parser.add_argument("scenarios", nargs="*", help="names to run (default: all)")
    parser.add_argument("--list", action="store_true", help="list the scenarios and exit")
    parser.add_argument("--out", type=Path, default=REPO / "captures", help="output folder")
    args = parser.parse_args(argv)
    if args.list:
        for name, fn in SCENARIOS.items():
            print(f"{name:24} {(fn.__doc__ or '').strip().splitlines()[0]}")
        return 0
    unknown = [n for n in args.scenarios if n not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario(s): {', '.join(unknown)} (see --list)")
    if os.geteuid() != 0:
        parser.error("needs root (network namespaces, tcpdump, Postfix)")
    args.out.mkdir(parents=True, exist_ok=True)
    failed = []
    for name in args.scenarios or list(SCENARIOS):
        work = WORK / name
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        run = Run(name, args.out, work)
        started = time.monotonic()
        print(f"== {name}", flush=True)
        try:
            SCENARIOS[name](run)
        except Exception:
            traceback.print_exc()
            failed.append(name)
        finally:
            run.close()
        print(
            f"   {name}: {'FAILED' if name in failed else 'ok'} in "
            f"{time.monotonic() - started:.0f} s",
            flush=True,
        )
    write_readme(args.out)
    if failed:
        print(f"failed: {' '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The fuzz target: one capture through every command and every format, in this process.

A run fails when a command ends in anything but a normal exit (0, 1 for an unreadable
input, 2 for a usage error): an exception escaping the CLI is the crash we look for.
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass
from pathlib import Path

from click.testing import CliRunner

from pcapsmtp.analysis import Options, analyze
from pcapsmtp.cli import main

ANALYZE_FORMATS = ("text", "json", "md", "csv")
REPORT_SUFFIXES = (".md", ".html", ".json")
DIFF_FORMATS = ("text", "md", "json")


@dataclass(frozen=True)
class Crash:
    """A command that ended in an exception."""

    args: tuple[str, ...]
    error: str
    """The exception's type and message, the line that identifies the crash class."""
    trace: str

    @property
    def kind(self) -> str:
        """Where it was raised (file:function) and the exception type: one crash class."""
        last = self.trace.strip().splitlines()
        frames = [line for line in last if line.strip().startswith('File "')]
        where = frames[-1].strip().split('"')[1].rsplit("/", 1)[-1] if frames else "?"
        function = frames[-1].rsplit(" in ", 1)[-1] if frames else "?"
        return f"{where}:{function}: {self.error.split(':', 1)[0]}"


def _run(args: list[str]) -> Crash | None:
    result = CliRunner().invoke(main, args, catch_exceptions=True)
    ended = result.exception is None or isinstance(result.exception, SystemExit)
    if ended and result.exit_code in (0, 1, 2):
        return None
    error = result.exception or RuntimeError(f"exit status {result.exit_code}")
    trace = "".join(traceback.format_exception(error)) if result.exc_info else str(error)
    return Crash(tuple(args), f"{type(error).__name__}: {error}"[:300], trace)


def _session_ids(capture: Path) -> list[int]:
    try:
        analysis = analyze([str(capture)], Options())
        return [session.id for session in analysis.sessions][:2]
    except Exception:
        return []


def commands(capture: Path, reference: Path, scratch: Path) -> list[list[str]]:
    """Every command and format the fuzzer drives for one capture."""
    path, good = str(capture), str(reference)
    runs = [["analyze", "-q", "--format", fmt, path] for fmt in ANALYZE_FORMATS]
    runs += [["report", "-q", path, "-o", str(scratch / f"r{sfx}")] for sfx in REPORT_SUFFIXES]
    runs.append(["report", "-q", path, "--baseline", good, "-o", str(scratch / "b.md")])
    runs += [["diff", "-q", "--format", fmt, good, path] for fmt in DIFF_FORMATS]
    runs.append(["diff", "-q", "--format", "text", "--same-session", path, path])
    for session in _session_ids(capture):
        runs.append(["show", "-q", "--session", str(session), path])
        runs.append(["show", "-q", "--format", "json", "--session", str(session), path])
        for suffix in (".pcap", ".pcapng"):
            out = str(scratch / f"e{suffix}")
            runs.append(["export", "-q", "--redact", "--session", str(session), path, "-o", out])
    runs.append(["export", "-q", "--annotate", path, "-o", str(scratch / "a.pcapng")])
    return runs


def run_all(capture: Path, reference: Path, scratch: Path) -> list[Crash]:
    """The crashes of one capture, one per command that raised."""
    crashes = []
    for args in commands(capture, reference, scratch):
        crash = _run(args)
        if crash is not None:
            crashes.append(crash)
    return crashes

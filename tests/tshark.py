"""tshark as the reference oracle: one invocation per file, fields parsed into rows.

tshark spends ~0.4 s of CPU starting up, and the oracle tests ask it about every capture
several times over. Its rows depend only on the file's bytes, the tshark version and the
command line, so they are kept in pytest's cache under a digest of all three, as
tests/capture/tshark.py does (``pytest --cache-clear`` or ``-p no:cacheprovider`` to do
without); our side is always computed afresh."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.captures import LAB, PUBLIC, all_captures, capture_id

TSHARK = shutil.which("tshark")
TAPS = Path(__file__).with_name("e2e") / "filter_taps.lua"
__all__ = ["LAB", "PUBLIC", "TSHARK", "all_captures", "capture_id", "fields", "needs_tshark"]

needs_tshark = pytest.mark.skipif(TSHARK is None, reason="tshark is not installed")
CACHE = None
"""pytest's cache (``config.cache``), set by tests/conftest.py; None: always run tshark."""


def fields(
    path: Path, names: list[str], display_filter: str | None = None, options: tuple[str, ...] = ()
) -> list[list[str]]:
    """tshark -T fields rows, empty fields as ''; tshark's complaints about damage are ignored.

    Each question is put to tshark once per test process (the same file, unchanged since,
    with the same fields, filter and options); every caller gets rows of its own."""
    stat = Path(path).stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns, tuple(names), display_filter, tuple(options))
    return [list(row) for row in _fields(*key)]


@functools.cache
def _fields(
    path: str,
    _size: int,
    _mtime_ns: int,
    names: tuple[str, ...],
    display_filter: str | None,
    options: tuple[str, ...],
) -> tuple[tuple[str, ...], ...]:
    cmd = [
        TSHARK,
        "-n",
        "-r",
        path,
        "-T",
        "fields",
        "-E",
        "separator=\t",
        "-E",
        "occurrence=f",
        *options,
    ]
    if display_filter:
        cmd += ["-Y", display_filter]
    for name in names:
        cmd += ["-e", name]
    key = None
    if CACHE is not None:
        digest = hashlib.sha256(Path(path).read_bytes())
        digest.update(json.dumps([_version(), *cmd[4:]]).encode())
        key = f"pcapsmtp/tshark-fields/{digest.hexdigest()}"
        known = CACHE.get(key, None)
        if known is not None:
            return tuple(tuple(row) for row in known)
    out = subprocess.run(cmd, capture_output=True, text=True, errors="replace", timeout=300).stdout
    rows = tuple(tuple(line.split("\t")) for line in out.splitlines() if line)
    if key is not None:
        CACHE.set(key, rows)
    return rows


@functools.cache
def _version() -> str:
    return subprocess.run([TSHARK, "-v"], capture_output=True, text=True, check=True).stdout


def shown_by_tshark(capture: Path, filters: list[str], tmp_path: Path) -> list[set[int] | str]:
    """For each filter, the frames tshark shows, or tshark's complaint (one tshark pass for
    all of them: a tap per filter, tests/e2e/filter_taps.lua)."""
    return tap_filters(capture, filters, tmp_path)[0]


def tap_filters(
    capture: Path, filters: list[str], tmp_path: Path
) -> tuple[list[set[int] | str], subprocess.CompletedProcess]:
    """shown_by_tshark's answers, and tshark's run (its exit status, its stderr)."""
    listing = tmp_path / "filters.txt"
    listing.write_text("".join(f"{f}\n" for f in filters), encoding="utf-8")
    result = subprocess.run(
        [TSHARK, "-n", "-q", "-r", str(capture), "-X", f"lua_script:{TAPS}"],
        capture_output=True,
        text=True,
        timeout=600,
        env=os.environ | {"PCAPSMTP_FILTERS": str(listing)},
    )
    answers: dict[int, set[int] | str] = {}
    for line in result.stdout.splitlines():
        number, _, frames = line.partition("\t")
        if frames.startswith("ERROR"):
            answers[int(number)] = frames
        else:
            answers[int(number)] = {int(f) for f in frames.split(",") if f}
    shown = [
        answers.get(n, f"no answer: {result.stderr.strip()}") for n in range(1, len(filters) + 1)
    ]
    return shown, result

"""tshark as the reference oracle: one invocation per file, fields parsed into rows."""

from __future__ import annotations

import functools
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.captures import LAB, PUBLIC, all_captures, capture_id

TSHARK = shutil.which("tshark")
__all__ = ["LAB", "PUBLIC", "TSHARK", "all_captures", "capture_id", "fields", "needs_tshark"]

needs_tshark = pytest.mark.skipif(TSHARK is None, reason="tshark is not installed")


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
    out = subprocess.run(cmd, capture_output=True, text=True, errors="replace", timeout=300).stdout
    return tuple(tuple(line.split("\t")) for line in out.splitlines() if line)

"""tshark as the reference oracle: one invocation per file, fields parsed into rows."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

TSHARK = shutil.which("tshark")
REPO = Path(__file__).resolve().parent.parent
PUBLIC = Path(
    os.environ.get("PCAPSMTP_PUBLIC_CAPTURES", REPO.parent / "shared" / "captures" / "public")
)
LAB = REPO / "captures"
CAPTURE_SUFFIXES = (".pcap", ".pcapng", ".pcap.gz")

needs_tshark = pytest.mark.skipif(TSHARK is None, reason="tshark is not installed")


def all_captures() -> list[Path]:
    """Every capture in captures/ and in the public folder (when present), sorted."""
    found = []
    for folder in (LAB, PUBLIC):
        if folder.is_dir():
            found += [p for p in folder.iterdir() if p.name.endswith(CAPTURE_SUFFIXES)]
    return sorted(found)


def capture_id(path: Path) -> str:
    return f"{path.parent.name}/{path.name}"


def fields(
    path: Path, names: list[str], display_filter: str | None = None, options: tuple[str, ...] = ()
) -> list[list[str]]:
    """tshark -T fields rows, empty fields as ''; tshark's complaints about damage are ignored."""
    cmd = [
        TSHARK,
        "-n",
        "-r",
        str(path),
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
    return [line.split("\t") for line in out.splitlines() if line]

"""Where the test captures live, which ones there are, and each one analysed once.

The one place that names the lab's captures folder and the public one: test modules
parametrize over file names from here (cheap: no analysis at import time), and read the
analysis of a capture through :func:`analysed`, cached per test process, so a capture
shared by many tests is analysed once per worker, not once per test.

Cached analyses are shared between tests: a test must not change what it gets back.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

from pcapsmtp.analysis import Analysis, Options, analyze

REPO_ROOT = Path(__file__).resolve().parent.parent
PUBLIC = Path(
    os.environ.get("PCAPSMTP_PUBLIC_CAPTURES", REPO_ROOT.parent / "shared" / "captures" / "public")
)
"""Real captures from public projects (DESIGN.md); read in place, never copied here."""
LAB = REPO_ROOT / "captures"
"""Captures made by the project's own lab (scripts/lab)."""
CAPTURE_SUFFIXES = (".pcap", ".pcapng", ".pcap.gz")

TRUTHS = sorted(LAB.glob("*.truth.json"))
"""The lab's truth files (what the lab did, for each capture it made)."""


def in_folder(folder: Path, suffixes: tuple[str, ...] = CAPTURE_SUFFIXES) -> list[Path]:
    """The captures of a folder (none when it is absent), sorted."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.name.endswith(suffixes))


def all_captures() -> list[Path]:
    """Every capture in captures/ and in the public folder (when present), sorted."""
    return sorted(in_folder(LAB) + in_folder(PUBLIC))


def capture_id(path: Path) -> str:
    return f"{path.parent.name}/{path.name}"


@cache
def _analysed(paths: tuple[str, ...], options: tuple[tuple[str, object], ...]) -> Analysis:
    return analyze(list(paths), Options(**dict(options)))


def analysed(*paths: str | Path, **options) -> Analysis:
    """``analyze(paths, Options(**options))``, computed once per test process for the same
    paths and options (option values must be hashable: tuples, not lists)."""
    return _analysed(tuple(str(p) for p in paths), tuple(sorted(options.items())))

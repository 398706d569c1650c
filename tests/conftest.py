"""Where the test captures live, and skipping when a capture or a tool is absent."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
PUBLIC_CAPTURES = Path(
    os.environ.get("PCAPSMTP_PUBLIC_CAPTURES", REPO_ROOT.parent / "shared" / "captures" / "public")
)
"""Real captures from public projects (DESIGN.md); read in place, never copied here."""
LAB_CAPTURES = REPO_ROOT / "captures"
"""Captures made by the project's own lab (scripts/lab)."""


@pytest.fixture
def public_capture():
    """``public_capture(name)``: the path of a public capture; skips the test when absent."""

    def find(name: str) -> Path:
        path = PUBLIC_CAPTURES / name
        if not path.is_file():
            pytest.skip(f"public capture {name} not present in {PUBLIC_CAPTURES}")
        return path

    return find


@pytest.fixture
def tool():
    """``tool(name)``: the path of an installed program; skips the test when absent."""

    def find(name: str) -> str:
        path = shutil.which(name)
        if path is None:
            pytest.skip(f"{name} is not installed")
        return path

    return find

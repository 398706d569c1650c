"""The fuzz target in CI: the corpus of past crashes replayed, then a short campaign of
mutated real captures through analyze, show, report, diff and export in every format.

Longer campaigns: ``scripts/fuzz --seconds 3600`` (new crash inputs go to the corpus), or
here with PCAPSMTP_FUZZ_SECONDS / PCAPSMTP_FUZZ_INPUTS / PCAPSMTP_FUZZ_SEED.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.fuzz.campaign import CORPUS, REFERENCE, run_campaign
from tests.fuzz.target import run_all

CORPUS_FILES = sorted(p for p in CORPUS.iterdir() if p.is_file())


@pytest.mark.parametrize("capture", CORPUS_FILES, ids=lambda p: p.name)
def test_past_crashes_stay_fixed(tmp_path: Path, capture: Path):
    crashes = run_all(capture, REFERENCE, tmp_path)
    assert [(c.args, c.error) for c in crashes] == []


def test_mutated_real_captures_crash_nothing(tmp_path: Path):
    seconds = float(os.environ.get("PCAPSMTP_FUZZ_SECONDS", "12"))
    inputs = int(os.environ.get("PCAPSMTP_FUZZ_INPUTS", "12"))
    seed = int(os.environ.get("PCAPSMTP_FUZZ_SEED", "19"))
    outcome = run_campaign(seconds, inputs, seed)
    saved = []
    for kind, (crash, data, mutations) in outcome.crashes.items():
        path = tmp_path / f"crash-{len(saved)}.pcap"
        path.write_bytes(data)
        saved.append(f"{kind} ({', '.join(mutations)}; {' '.join(crash.args)}) -> {path}")
    assert outcome.inputs > 0
    assert saved == [], "\n".join(saved)

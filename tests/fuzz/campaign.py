"""A fuzzing campaign: mutated real captures through the fuzz target, for a time or a
number of inputs, each new crash class kept once."""

from __future__ import annotations

import random
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tests.captures import LAB, PUBLIC
from tests.fuzz.mutate import mutate
from tests.fuzz.target import Crash, run_all

CORPUS = Path(__file__).resolve().parent / "corpus"
"""Inputs that once crashed a command: small files, replayed by every test run."""
REFERENCE = LAB / "clean-delivery.pcap"
LAB_SEEDS = ["clean-delivery.pcap", "auth-plain-clear.pcap", "pipelining.pcap",
             "greylisting.pcap", "bdat-chunking.pcap", "ipv6.pcap", "starttls-25.pcap"]  # fmt: skip
PUBLIC_SEEDS = ["ndpi-smtps.pcapng", "arkime-smtp-html.pcap", "zeek-rfc3030-bdat-nonascii.pcap",
                "zeek-smtp-attachment-msg.pcap"]  # fmt: skip


def seed_captures() -> list[Path]:
    """Small real captures: the lab's (always here) and public ones when present."""
    found = [LAB / name for name in LAB_SEEDS]
    found += [PUBLIC / name for name in PUBLIC_SEEDS]
    return [path for path in found if path.is_file()]


@dataclass
class Outcome:
    inputs: int = 0
    crashes: dict[str, tuple[Crash, bytes, list[str]]] = field(default_factory=dict)
    """First crash of each class, with the input and the mutations that made it."""


def run_campaign(
    seconds: float,
    max_inputs: int,
    seed: int = 0,
    on_crash: Callable[[Crash, bytes, list[str]], None] | None = None,
) -> Outcome:
    rng = random.Random(seed)
    seeds = [path.read_bytes() for path in seed_captures()]
    outcome = Outcome()
    deadline = time.monotonic() + seconds
    with tempfile.TemporaryDirectory() as folder:
        scratch = Path(folder)
        while outcome.inputs < max_inputs and time.monotonic() < deadline:
            data, mutations = mutate(rng, rng.choice(seeds), rng.choice(seeds))
            path = scratch / f"input-{outcome.inputs}"
            path.write_bytes(data)
            outcome.inputs += 1
            for crash in run_all(path, REFERENCE, scratch):
                if crash.kind not in outcome.crashes:
                    outcome.crashes[crash.kind] = (crash, data, mutations)
                    if on_crash is not None:
                        on_crash(crash, data, mutations)
            path.unlink()
    return outcome

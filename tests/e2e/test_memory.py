"""Memory is bounded by the live connections, not by the length of the capture.

One streaming pass (DESIGN.md, "Data flow"): no whole-file load, flows released when they
end, message bodies never held. The same traffic (a seeded benchmark capture, a few
sessions at a time) read at two lengths must peak at about the same traced memory. The
finished sessions are dropped here as they come: what ``analyze`` keeps of each session
for its report grows with the number of sessions by design, and is not what this checks.
"""

from __future__ import annotations

import sys
import tracemalloc
from pathlib import Path

import pytest

from pcapsmtp.capture import open_capture, packets
from pcapsmtp.smtp.tracker import SMTP_PORTS, SmtpTracker
from pcapsmtp.tcp import FlowTracker

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts" / "bench"))

from gencapture import generate

MB = 1 << 20


def streaming_peak(path: Path) -> tuple[int, int]:
    """(peak traced bytes, sessions seen) of reading ``path`` through the SMTP layer."""
    sessions = 0
    tracemalloc.start()
    try:
        with open_capture(str(path)) as capture:
            smtp = SmtpTracker(str(path))
            for event in FlowTracker(SMTP_PORTS).events(packets(capture)):
                if smtp.add(event) is not None:
                    sessions += 1
        return tracemalloc.get_traced_memory()[1], sessions
    finally:
        tracemalloc.stop()


@pytest.mark.slow
def test_peak_memory_does_not_grow_with_the_capture(tmp_path) -> None:
    peaks = {}
    for size in (3 * MB, 12 * MB):
        path = tmp_path / f"{size}.pcap"
        with open(path, "wb") as out:
            generate(out, size, seed=3, concurrency=6)
        peaks[size] = streaming_peak(path)
    (short, short_sessions), (long, long_sessions) = peaks[3 * MB], peaks[12 * MB]
    assert long_sessions > 2 * short_sessions  # much more traffic, truly
    assert long < 1.5 * short, f"{short / MB:.1f} MB at 3 MB, {long / MB:.1f} MB at 12 MB"

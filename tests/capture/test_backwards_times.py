"""A capture whose times go back (two interfaces or hosts merged with clocks apart, a clock
stepped back, neighbours' times swapped by a writer) makes every duration measured across
the step meaningless: no-eod-reply's client waited 20 s for the reply to its message, but
with two neighbours' times swapped its FIN reads 5 s after the data. Frames stay in file
order (Wireshark's numbers) and capture-time-backwards (INFO) says so; jitter under a second
does not."""

from __future__ import annotations

from pathlib import Path

from pcapsmtp.analysis import analyze
from tests.capture_edits import _records, _write
from tests.diagnose.helpers import lab


def _warnings(path: Path) -> list[str]:
    result = analyze([str(path)])
    return [f.summary for f in result.findings if f.code == "capture-time-backwards"]


def test_times_swapped_between_neighbours_warn(tmp_path):
    records = _records(Path(lab("no-eod-reply")))
    assert _warnings(Path(lab("no-eod-reply"))) == []
    times = [ts for ts, _ in records]
    times[19], times[20] = times[20], times[19]  # frames 20 and 21: 15 s apart
    path = _write(
        tmp_path / "swapped.pcap", [(t, buf) for t, (_, buf) in zip(times, records, strict=True)]
    )
    [warning] = _warnings(path)
    assert "1 frame carries" in warning and "first: frame 21" in warning
    assert "15.0 s back" in warning


def test_jitter_under_a_second_does_not_warn(tmp_path):
    records = _records(Path(lab("clean-delivery")))
    ts, buf = records[5]
    shaken = [*records[:5], (ts - 0.002, buf), *records[6:]]
    path = _write(tmp_path / "jitter.pcap", shaken)
    assert _warnings(path) == []

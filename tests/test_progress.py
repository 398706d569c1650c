"""The progress line: its text, its throttling, and silence wherever stderr is no terminal."""

from __future__ import annotations

import io

from click.testing import CliRunner

from pcapsmtp.analysis import Options, analyze
from pcapsmtp.analysis import one_pass as analysis
from pcapsmtp.analysis.progress import DELAY, INTERVAL, Progress, format_progress
from pcapsmtp.cli import main
from tests.captures import LAB

CAPTURE = str(LAB / "mtu-healthy.pcap")


def test_line_says_how_far_and_how_fast() -> None:
    line = format_progress("/data/big.pcap", 300_000_000, 1_200_000_000, 401_234, 5_012, 1_201, 6)
    assert line == (
        "pcapsmtp: reading big.pcap, 300 of 1,200 MB (25%), 50 MB/s, 401,234 packets, "
        "5,012 TCP connections, 1,201 SMTP sessions"
    )


def test_standard_input_has_no_size() -> None:
    line = format_progress("-", None, None, 10, 1, 0, 2)
    assert line == "pcapsmtp: reading standard input, 10 packets, 1 TCP connection, " + (
        "0 SMTP sessions"
    )
    assert format_progress("-", None, None, 10, 2, 1, 2).endswith(
        "2 TCP connections, 1 SMTP session"
    )


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_silent_during_the_first_second_then_at_most_four_lines_a_second() -> None:
    clock, stream = Clock(), io.StringIO()
    progress = Progress(stream, clock)
    progress.update("a.pcap", 1, 10, 1, 1, 0)
    assert stream.getvalue() == ""
    clock.now += DELAY
    for _ in range(10):
        progress.update("a.pcap", 2, 10, 2, 1, 0)
        clock.now += INTERVAL / 10
    assert stream.getvalue().count("\r") == 1
    clock.now += INTERVAL
    progress.update("a.pcap", 3, 10, 3, 1, 0)
    assert stream.getvalue().count("\r") == 2
    progress.done()
    assert stream.getvalue().endswith("\r\x1b[K")


def test_done_writes_nothing_when_nothing_was_shown() -> None:
    stream = io.StringIO()
    Progress(stream, Clock()).done()
    assert stream.getvalue() == ""


def test_the_analysis_reports_while_reading(monkeypatch) -> None:
    monkeypatch.setattr(analysis, "PROGRESS_EVERY", 10)
    seen = []

    class Recorder:
        def update(self, source, position, size, packets, connections, sessions) -> None:
            seen.append((source, position, size, packets, connections, sessions))

        def done(self) -> None:
            seen.append("done")

    analyze([CAPTURE], Options(progress=Recorder()))
    assert seen[-1] == "done" and len(seen) > 2
    positions = [entry[1] for entry in seen[:-1]]
    assert positions == sorted(positions) and all(entry[2] > 0 for entry in seen[:-1])


def test_the_session_count_grows_while_reading(monkeypatch) -> None:
    """Sessions are handed out only when their connection ends, long after the line shows:
    the line counts the SMTP connections met so far, so it is not stuck at 0 (issue 18)."""
    monkeypatch.setattr(analysis, "PROGRESS_EVERY", 400)
    counts = []

    class Recorder:
        def update(self, source, position, size, packets, connections, sessions) -> None:
            counts.append(sessions)

        def done(self) -> None:
            pass

    storm = str(LAB / "retry-storm.pcap")
    result = analyze([storm], Options(progress=Recorder()))
    assert counts and counts[0] > 0 and counts == sorted(counts)
    assert counts[-1] <= len(result.sessions) == 240


def test_no_progress_in_a_pipe_and_quiet_is_accepted() -> None:
    for args in (["analyze", CAPTURE], ["analyze", "--quiet", CAPTURE], ["analyze", "-q", CAPTURE]):
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 0
        assert "reading" not in result.stderr
    result = CliRunner().invoke(main, ["show", "-q", "--session", "1", CAPTURE])
    assert result.exit_code == 0

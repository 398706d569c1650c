"""Logs are untrusted input: any text, any bytes, overlong lines, broken gzip — read what can
be read, count the rest, never raise."""

from __future__ import annotations

import gzip
import io
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pcapsmtp.analysis import Options, analyze
from pcapsmtp.maillog.files import MAX_LINE, LineParser, Window, bounded_lines, read_maillogs
from pcapsmtp.maillog.model import FileStats
from pcapsmtp.maillog.stamps import Clock
from tests.captures import LAB
from tests.maillog.test_parsers import EXIM, POSTFIX, QMAIL, SENDMAIL

NEAR = int(datetime(2026, 11, 23, 6, 44, tzinfo=UTC).timestamp() * 1e9)
REAL = [text for text, _facts in POSTFIX + EXIM + SENDMAIL + QMAIL]


@st.composite
def mangled(draw) -> str:
    """A real line with a slice replaced by arbitrary text."""
    line = draw(st.sampled_from(REAL))
    start = draw(st.integers(0, len(line)))
    end = draw(st.integers(start, len(line)))
    return line[:start] + draw(st.text(max_size=40)) + line[end:]


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.text(max_size=300), mangled()))
def test_any_line_parses_or_is_counted(text):
    stats = FileStats("x")
    line = LineParser("x", Clock(UTC, NEAR), stats).parse(1, text)
    assert line is not None or stats.not_understood + sum(stats.other_programs.values()) == 1


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.one_of(mangled(), st.sampled_from(REAL)), max_size=30), st.binary(max_size=64))
def test_any_log_links_without_raising(tmp_path, lines, noise):
    log = tmp_path / "fuzz.log"
    log.write_bytes("\n".join(lines).encode("utf-8", "surrogatepass") + b"\n" + noise)
    analysis = analyze(
        [str(LAB / "greylisting.pcap")],
        Options(maillogs=(str(LAB / "greylisting.maillog"), str(log))),
    )
    assert analysis.maillog is not None and not analysis.errors


def test_overlong_lines_are_cut_and_counted():
    data = b"A" * (MAX_LINE * 6) + b"\nshort\n" + b"B" * (MAX_LINE + 1) + b"\n" + b"C" * MAX_LINE
    stats = FileStats("x")
    lines = list(bounded_lines(io.BytesIO(data), stats))
    assert [(n, len(t)) for n, t in lines] == [(1, MAX_LINE), (2, 5), (3, MAX_LINE), (4, MAX_LINE)]
    assert stats.cut == 2


def test_binary_empty_and_broken_gzip(tmp_path):
    binary = tmp_path / "binary.log"
    binary.write_bytes(bytes(range(256)) * 50)
    empty = tmp_path / "empty.log"
    empty.write_bytes(b"")
    broken = tmp_path / "broken.log.gz"
    whole = gzip.compress((LAB / "retry-storm.maillog").read_bytes())
    broken.write_bytes(whole[: len(whole) // 2])
    lines, stats = read_maillogs([str(binary), str(empty), str(broken)], Clock(), Window())
    assert stats[0].not_understood == stats[0].lines > 0 and stats[0].used == 0
    assert stats[1].lines == 0
    assert 0 < stats[2].used < 721 and stats[2].warnings[0].startswith("reading stopped")
    assert all(line.source == str(broken) for line in lines)


@pytest.mark.skipif(not (LAB / "greylisting.pcap").exists(), reason="no lab captures")
def test_unreadable_log_is_an_error_the_others_still_link(tmp_path):
    analysis = analyze(
        [str(LAB / "greylisting.pcap")],
        Options(
            maillogs=(
                str(tmp_path / "missing.log"),
                str(tmp_path),
                str(LAB / "greylisting.maillog"),
            )
        ),
    )
    assert [e.source for e in analysis.errors] == [str(tmp_path / "missing.log"), str(tmp_path)]
    assert len(analysis.maillog.links) == 2

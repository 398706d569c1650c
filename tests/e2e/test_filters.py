"""Every Wireshark display filter the tool prints compiles in tshark and shows exactly its
evidence frames, over every lab and public capture.

The filters are collected where users meet them: the analyze JSON (each finding, at the top
and under its session), the grouped lines of the analyze text, the report JSON (the same
finding dicts the Markdown and HTML reports print) and the diff JSON. tshark answers for all
filters of a capture in one pass: tests/tshark_taps.lua registers one tap per filter (a tap's
filter is compiled by the same engine as ``-Y``), and for each capture the filter with the
most frames is also given to the same tshark run as ``-Y`` (its frames printed with ``-T
fields -e frame.number``) to check that the two agree. The session
filters of the report (``tcp.stream eq N``) compile and show the session's frames from its
first to its last.

This is also the check of each finding's own filter (``Finding.filter``, the analyze JSON's
"filter"): tests/diagnose/test_filters.py, which ran a tshark of its own per lab capture for
at most eight of them and asked for a superset of the evidence, was folded in here.
"""

from __future__ import annotations

import re
import subprocess
from datetime import UTC
from pathlib import Path

import pytest

from pcapsmtp.analysis import Options
from pcapsmtp.report.findings import format_findings
from pcapsmtp.report.jsondoc import analysis_document
from pcapsmtp.ticket import ReportOptions, make_report
from tests.captures import LAB, all_captures, analysed, capture_id
from tests.tshark import needs_tshark, tap_filters

TEXT_FILTER = re.compile(r"Wireshark: (.+)$")
STREAM_FILTER = re.compile(r"`(tcp\.stream eq \d+)`")
FILE_DAMAGE = re.compile(
    r"Running as user|damaged or corrupt|cut short in the middle|^\((pcap|pcapng): "
)
"""tshark's words about the capture file, not about the filter (public captures include
damaged ones: it shows the frames before the damage and exits 2)."""

pytestmark = [needs_tshark, pytest.mark.slow]


def printed_filters(document, capture: str) -> list[tuple[str, str, list[int]]]:
    """(capture, filter, evidence frames) of every dict in a JSON document with a filter."""
    found = []
    if isinstance(document, dict):
        if "filter" in document:
            where = document.get("capture") or capture
            found.append((where, document["filter"], document.get("frames", [])))
        for value in document.values():
            found += printed_filters(value, capture)
    elif isinstance(document, list):
        for value in document:
            found += printed_filters(value, capture)
    return found


def grouped_text_filters(analysis, capture: str) -> list[tuple[str, str, list[int]]]:
    """The filters of the analyze text's finding lines; a line may stand for several alike
    findings (a retry storm's soft bounces), whose frames together are its evidence."""
    from pcapsmtp.report.findings import group_alike

    groups = [g for g in group_alike(analysis.findings) if any(f.frames for f in g[1])]
    lines = [
        m.group(1)
        for m in map(TEXT_FILTER.search, format_findings(analysis.findings).splitlines())
        if m
    ]
    assert len(lines) == len(groups)
    return [
        (capture, line, [frame for f in alike for frame in f.frames])
        for line, (_first, alike) in zip(lines, groups, strict=True)
    ]


def shown_by_display_filter(run: subprocess.CompletedProcess, display_filter: str) -> set[int]:
    """The frames ``-Y display_filter`` printed in ``run`` (tests.tshark.tap_filters)."""
    complaint = [line for line in run.stderr.splitlines() if not FILE_DAMAGE.search(line)]
    damaged = "damaged or corrupt" in run.stderr or "cut short" in run.stderr
    assert (run.returncode == 0 or damaged) and not complaint, (display_filter, run.stderr)
    return {int(line) for line in run.stdout.split()}


def session_filters(report: dict) -> list[tuple[str, int, int]]:
    """(filter, first frame, last frame) of each detailed session as the Markdown report
    prints it: ``tcp.stream eq N`` shows the session's frames, from its first to its last."""
    from pcapsmtp.report.markdown_report import render_report_markdown

    printed = set(STREAM_FILTER.findall(render_report_markdown(report)))
    spans = {f"tcp.stream eq {s['tcp_stream']}": s for s in report["sessions"]}
    assert printed == set(spans)
    return [(f, spans[f]["first_frame"], spans[f]["last_frame"]) for f in sorted(printed)]


def check(
    capture: Path,
    printed: list[tuple[str, str, list[int]]],
    tmp_path: Path,
    sessions: list[tuple[str, int, int]] = (),
) -> None:
    distinct = sorted({(f, tuple(sorted(set(frames)))) for _c, f, frames in printed})
    assert all(f for f, frames in distinct if frames), "a finding with evidence has no filter"
    distinct = [(f, frames) for f, frames in distinct if f]
    if not distinct and not sessions:
        return  # nothing to put to tshark (a tap run without taps would check nothing)
    widest, widest_frames = max(distinct, key=lambda d: len(d[1])) if distinct else (None, ())
    answers, run = tap_filters(
        capture, [f for f, _ in distinct] + [f for f, *_ in sessions], tmp_path, widest
    )
    wrong = [
        (f, answer if isinstance(answer, str) else sorted(answer), list(frames))
        for (f, frames), answer in zip(distinct, answers, strict=False)
        if answer != set(frames)
    ]
    assert not wrong, wrong[:5]
    for (f, first, last), answer in zip(sessions, answers[len(distinct) :], strict=True):
        assert not isinstance(answer, str) and answer, (f, answer)
        assert (min(answer), max(answer)) == (first, last), f
    if distinct:
        assert shown_by_display_filter(run, widest) == set(widest_frames)


@pytest.mark.parametrize("capture", all_captures(), ids=capture_id)
def test_every_printed_filter_shows_exactly_its_frames(capture, tmp_path):
    name = str(capture)
    analysis = analysed(name)
    printed = printed_filters(analysis_document(analysis), name)
    printed += grouped_text_filters(analysis, name)
    report, errors = make_report(name, Options(), ReportOptions(tz=UTC))
    assert not errors
    printed += printed_filters(report, name)
    assert {c for c, _f, _frames in printed} <= {name}
    check(capture, printed, tmp_path, session_filters(report))


DIFF_PAIRS = [
    ("mtu-healthy.pcap", "mtu-blackhole.pcap", False),
    ("clean-delivery.pcap", "rst-in-data.pcap", False),
    ("mtu-blackhole.pcap", "mtu-blackhole.server.pcap", True),
]


@pytest.mark.skipif(not (LAB / "mtu-blackhole.pcap").exists(), reason="no lab captures")
@pytest.mark.parametrize("good,bad,points", DIFF_PAIRS, ids=lambda v: str(v))
def test_diff_filters(good, bad, points, tmp_path):
    from pcapsmtp.diff import compare_captures, same_session
    from pcapsmtp.report.diffdoc import diff_document

    run = same_session if points else compare_captures
    diff = run(str(LAB / good), str(LAB / bad), Options())
    printed = printed_filters(diff_document(diff), "")
    for side in (good, bad):
        mine = [p for p in printed if Path(p[0]).name == side]
        check(LAB / side, mine, tmp_path)
    assert all(Path(c).name in (good, bad) for c, _f, _frames in printed)

"""Findings as plain structures and as text."""

from __future__ import annotations

import textwrap

from pcapsmtp.diagnose import ERROR, WARNING, Finding
from pcapsmtp.diagnose.model import frame_filter
from pcapsmtp.report.safe import markdown, terminal, wire


def finding_dict(finding: Finding) -> dict:
    return {
        "code": finding.code,
        "severity": finding.severity,
        "session": finding.session,
        "capture": finding.capture,
        "tcp_stream": finding.tcp_stream,
        "frames": list(finding.frames),
        "filter": finding.filter,
        "summary": wire(finding.summary),
        "detail": wire(finding.detail),
        "next_steps": [wire(step) for step in finding.next_steps],
    }


def troubled(findings: list[Finding]) -> bool:
    return any(f.severity in (ERROR, WARNING) for f in findings)


def group_alike(findings: list[Finding]) -> list[tuple[Finding, list[Finding]]]:
    """Findings that say the same thing about several sessions (a retry storm's 240 soft
    bounces), as (first, all of them), in order of first appearance."""
    groups: dict[tuple[str, str, str, str], list[Finding]] = {}
    for finding in findings:
        key = (finding.capture, finding.code, finding.severity, finding.summary)
        groups.setdefault(key, []).append(finding)
    return [(alike[0], alike) for alike in groups.values()]


def sessions_text(alike: list[Finding], several: bool = False) -> str:
    """'session 3', 'sessions 1–240, 240×', 'capture'; with the capture's name when the
    findings come from several captures (session ids each start at 1)."""
    of = f" of {alike[0].capture}" if several else ""
    ids = [f.session for f in alike if f.session]
    if not ids:
        return f"capture {alike[0].capture}" if several else "capture"
    if len(ids) == 1:
        return f"session {ids[0]}{of}"
    if ids == list(range(ids[0], ids[0] + len(ids))):
        return f"sessions {ids[0]}–{ids[-1]}{of}, {len(ids)}×"
    shown = ", ".join(map(str, ids[:6])) + (" …" if len(ids) > 6 else "")
    return f"sessions {shown}{of}, {len(ids)}×"


def _frames_text(frames: list[int], limit: int = 8) -> str:
    more = f" (+{len(frames) - limit})" if len(frames) > limit else ""
    return ", ".join(map(str, frames[:limit])) + more


def format_findings(findings: list[Finding], detail: bool = False) -> str:
    """The findings, most severe first, alike ones grouped; a plain sentence when there is
    no trouble."""
    lines = ["Findings"]
    if not troubled(findings):
        lines.append("  No trouble found: nothing failed and nothing is about to.")
    several = len({f.capture for f in findings}) > 1
    for finding, alike in group_alike(findings):
        where = terminal(sessions_text(alike, several))
        lines.append(
            f"  {finding.severity.upper():7} {finding.code} ({where}): {terminal(finding.summary)}"
        )
        indent = " " * 10
        if detail:
            lines += textwrap.wrap(
                terminal(finding.detail), 96, initial_indent=indent, subsequent_indent=indent
            )
        frames = [frame for f in alike for frame in f.frames]
        if frames:
            lines.append(
                f"{indent}frames {_frames_text(frames)}; Wireshark: {frame_filter(frames)}"
            )
        for step in finding.next_steps[: None if detail else 1]:
            lines += textwrap.wrap(
                f"→ {terminal(step)}", 96, initial_indent=indent, subsequent_indent=indent + "  "
            )
    return "\n".join(lines)


def findings_markdown(findings: list[Finding], level: int = 2) -> str:
    """The findings as ``format_findings`` lists them, in Markdown: alike ones grouped, the
    evidence frames with their display filter, the first next step."""
    from pcapsmtp.report.markdown_report import code

    lines = [f"{'#' * level} Findings", ""]
    if not troubled(findings):
        lines += ["No trouble found: nothing failed and nothing is about to.", ""]
    several = len({f.capture for f in findings}) > 1
    for finding, alike in group_alike(findings):
        where = markdown(sessions_text(alike, several))
        lines.append(
            f"- **{finding.severity.upper()}** {code(finding.code)} ({where}): "
            f"{markdown(finding.summary)}"
        )
        frames = [frame for f in alike for frame in f.frames]
        if frames:
            lines.append(
                f"  - frames {_frames_text(frames)}; Wireshark: {code(frame_filter(frames))}"
            )
        lines += [f"  - next step: {markdown(step)}" for step in finding.next_steps[:1]]
    return "\n".join(lines) + "\n"

"""Findings as plain structures and as text."""

from __future__ import annotations

import textwrap

from pcapsmtp.diagnose import ERROR, WARNING, Finding
from pcapsmtp.report.safe import terminal, wire


def finding_dict(finding: Finding) -> dict:
    return {
        "code": finding.code,
        "severity": finding.severity,
        "session": finding.session,
        "capture": finding.capture,
        "tcp_stream": finding.tcp_stream,
        "frames": list(finding.frames),
        **({"frames_left_out": finding.frames_left_out} if finding.frames_left_out else {}),
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


def sessions_text(alike: list[Finding]) -> str:
    ids = [f.session for f in alike if f.session]
    if not ids:
        return "capture"
    if len(ids) == 1:
        return f"session {ids[0]}"
    if ids == list(range(ids[0], ids[0] + len(ids))):
        return f"sessions {ids[0]}–{ids[-1]}, {len(ids)}×"
    shown = ", ".join(map(str, ids[:6])) + (" …" if len(ids) > 6 else "")
    return f"sessions {shown}, {len(ids)}×"


def format_findings(findings: list[Finding], detail: bool = False) -> str:
    """The findings, most severe first, alike ones grouped; a plain sentence when there is
    no trouble."""
    lines = ["Findings"]
    if not troubled(findings):
        lines.append("  No trouble found: nothing failed and nothing is about to.")
    for finding, alike in group_alike(findings):
        where = sessions_text(alike)
        lines.append(
            f"  {finding.severity.upper():7} {finding.code} ({where}): {terminal(finding.summary)}"
        )
        indent = " " * 10
        if detail:
            lines += textwrap.wrap(
                terminal(finding.detail), 96, initial_indent=indent, subsequent_indent=indent
            )
        frames = [frame for f in alike for frame in f.frames]
        streams = sorted({f.tcp_stream for f in alike if f.tcp_stream is not None})
        shown_filter = finding.filter
        if len(alike) > 1 and streams:
            shown_filter = f"tcp.stream in {{{' '.join(map(str, streams[:50]))}}}"
        if frames:
            shown = ", ".join(map(str, frames[:8]))
            more = f" (+{len(frames) - 8})" if len(frames) > 8 else ""
            lines.append(f"{indent}frames {shown}{more}; Wireshark: {shown_filter}")
        for step in finding.next_steps[: None if detail else 1]:
            lines += textwrap.wrap(
                f"→ {terminal(step)}", 96, initial_indent=indent, subsequent_indent=indent + "  "
            )
    return "\n".join(lines)

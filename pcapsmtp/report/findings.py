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
        "filter": finding.filter,
        "summary": wire(finding.summary),
        "detail": wire(finding.detail),
        "next_steps": [wire(step) for step in finding.next_steps],
    }


def troubled(findings: list[Finding]) -> bool:
    return any(f.severity in (ERROR, WARNING) for f in findings)


def format_findings(findings: list[Finding], detail: bool = False) -> str:
    """The findings, most severe first; a plain sentence when there is no trouble."""
    lines = ["Findings"]
    if not troubled(findings):
        lines.append("  No trouble found: nothing failed and nothing is about to.")
    for finding in findings:
        where = f"session {finding.session}" if finding.session else "capture"
        lines.append(
            f"  {finding.severity.upper():7} {finding.code} ({where}): {terminal(finding.summary)}"
        )
        indent = " " * 10
        if detail:
            lines += textwrap.wrap(
                terminal(finding.detail), 96, initial_indent=indent, subsequent_indent=indent
            )
        if finding.frames:
            shown = ", ".join(map(str, finding.frames[:8]))
            more = f" (+{len(finding.frames) - 8})" if len(finding.frames) > 8 else ""
            lines.append(f"{indent}frames {shown}{more}; Wireshark: {finding.filter}")
        for step in finding.next_steps[: None if detail else 1]:
            lines += textwrap.wrap(
                f"→ {terminal(step)}", 96, initial_indent=indent, subsequent_indent=indent + "  "
            )
    return "\n".join(lines)

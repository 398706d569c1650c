"""Findings as plain structures and as text."""

from __future__ import annotations

import textwrap
from collections import Counter

from pcapsmtp.diagnose.coverage import ended_well, unexplained
from pcapsmtp.diagnose.model import ERROR, WARNING, Finding, frame_filter
from pcapsmtp.report.model import FindingDoc
from pcapsmtp.report.safe import markdown, markdown_code, terminal, wire
from pcapsmtp.smtp.model import Session


def finding_dict(finding: Finding) -> FindingDoc:
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


def calm_line(findings: list[Finding], sessions: list[Session]) -> str | None:
    """The sentence to print when no finding is an error or a warning: 'No trouble found'
    only when every session ended well (delivered, or a clean QUIT); otherwise how many did
    not, and whether the findings below say why."""
    if troubled(findings):
        return None
    failed = [s for s in sessions if not ended_well(s)]
    if not failed:
        return "No trouble found: nothing failed and nothing is about to."
    outcomes = Counter(s.outcome for s in failed)
    what = ", ".join(f"{n} {outcome}" for outcome, n in sorted(outcomes.items()))
    if unexplained(failed, findings):
        return (
            f"{len(failed)} of {len(sessions)} sessions show no delivery ({what}) and no rule "
            "names a cause for all of them: read their dialogue."
        )
    return (
        f"{len(failed)} of {len(sessions)} sessions show no delivery ({what}): the findings "
        "below say why."
    )


def format_findings(
    findings: list[Finding], detail: bool = False, sessions: list[Session] | None = None
) -> str:
    """The findings, most severe first, alike ones grouped; a plain sentence when there is
    no error or warning, which says 'No trouble found' only when every session ended well."""
    lines = ["Findings"]
    calm = calm_line(findings, sessions or [])
    if calm is not None:
        lines.append(f"  {calm}")
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


def ranges(numbers: list[int]) -> str:
    """'1–240' for a run, '1, 2, 5–9' for runs of three or more among single numbers."""
    out: list[str] = []
    run: list[int] = []
    for n in [*sorted(set(numbers)), None]:
        if run and n == run[-1] + 1:
            run.append(n)
            continue
        if len(run) >= 3:
            out.append(f"{run[0]}–{run[-1]}")
        else:
            out += map(str, run)
        run = [n] if n is not None else []
    return ", ".join(out)


def finding_cards(findings: list[dict]) -> list[dict]:
    """Finding dicts that say the same thing about several sessions as one card: the first
    finding, how many, which sessions, every evidence frame, and a display filter showing
    exactly those frames. A lone finding is a card of one, its own filter kept."""
    groups: dict[tuple, list[dict]] = {}
    for finding in findings:
        key = (finding["capture"], finding["code"], finding["severity"], finding["summary"])
        groups.setdefault(key, []).append(finding)
    cards = []
    for alike in groups.values():
        first = alike[0]
        frames = sorted({frame for f in alike for frame in f["frames"]})
        sessions = [f["session"] for f in alike if f["session"]]
        shown = frame_filter(frames) if len(alike) > 1 else first["filter"]
        cards.append(
            {
                "finding": first,
                "count": len(alike),
                "alike": alike,
                "sessions": ranges(sessions),
                "frames": frames,
                "filter": shown,
            }
        )
    return cards


def findings_markdown(
    findings: list[Finding], level: int = 2, sessions: list[Session] | None = None
) -> str:
    """The findings as ``format_findings`` lists them, in Markdown: alike ones grouped, the
    evidence frames with their display filter, the first next step."""
    lines = [f"{'#' * level} Findings", ""]
    calm = calm_line(findings, sessions or [])
    if calm is not None:
        lines += [calm, ""]
    several = len({f.capture for f in findings}) > 1
    for finding, alike in group_alike(findings):
        where = markdown(sessions_text(alike, several))
        lines.append(
            f"- **{finding.severity.upper()}** {markdown_code(finding.code)} ({where}): "
            f"{markdown(finding.summary)}"
        )
        frames = [frame for f in alike for frame in f.frames]
        if frames:
            shown = markdown_code(frame_filter(frames))
            lines.append(f"  - frames {_frames_text(frames)}; Wireshark: {shown}")
        lines += [f"  - next step: {markdown(step)}" for step in finding.next_steps[:1]]
    return "\n".join(lines) + "\n"

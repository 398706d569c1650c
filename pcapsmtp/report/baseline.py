"""The report's baseline section: the good capture's facts and what ``pcapsmtp diff`` finds
between it and the capture the report is about.

The comparison is entirely the diff command's (``pcapsmtp.diff``), made once by the ticket
layer (``pcapsmtp.ticket``) from the analyses it already has; ``diff_section`` keeps its JSON
document as it is and adds a ``view`` for the Markdown and HTML renderers (the diff's own
Markdown, its steps and parameters as table rows). The JSON report leaves the view out.
"""

from __future__ import annotations

import re
from datetime import tzinfo

from pcapsmtp.analysis import Analysis
from pcapsmtp.diff.model import Diff
from pcapsmtp.diff.names import describe, step_name
from pcapsmtp.report.diffdoc import diff_document
from pcapsmtp.report.difftext import LEGEND, MARKS, cell, render_diff_markdown
from pcapsmtp.report.document import capture_section, finding_codes, timeline_row, verdict
from pcapsmtp.report.findings import finding_dict
from pcapsmtp.report.model import (
    BaselineSection,
    DiffSection,
    DiffStepRow,
    DiffView,
    FileFacts,
    ParameterRow,
)
from pcapsmtp.report.safe import wire

HEADING = re.compile(r"^(#+) ", re.MULTILINE)


def _latency(step) -> str:
    if step is None or step.latency_ns is None:
        return ""
    ns = step.latency_ns
    return f"{ns / 1e9:.2f} s" if ns >= 1e9 else f"{ns / 1e6:.1f} ms"


def _view(diff: Diff, document: dict, tz: tzinfo) -> DiffView:
    plain = lambda text: text  # noqa: E731  (each renderer escapes for its format)
    steps = []
    for aligned in diff.steps:
        found = aligned.divergence
        steps.append(
            DiffStepRow(
                index=aligned.index,
                mark=MARKS[None if found is None else found.major],
                good=wire(cell(aligned.a, plain)),
                good_latency=_latency(aligned.a),
                bad=wire(cell(aligned.b, plain)),
                bad_latency=_latency(aligned.b),
                detail=wire(
                    f"step {aligned.index} ({step_name(aligned.b or aligned.a)}): {found.detail}"
                )
                if found
                else None,
            )
        )
    parameters = [
        ParameterRow(label=p["label"], good=describe(p["good"]), bad=describe(p["bad"]),
                     differs=p["differs"])
        for p in document.get("parameters", {}).values()
        if isinstance(p, dict) and "label" in p
    ]  # fmt: skip
    markdown = HEADING.sub(lambda m: f"##{m.group(1)} ", render_diff_markdown(diff, tz))
    return DiffView(markdown=markdown, steps=steps, parameters=parameters, legend=LEGEND)


def diff_section(diff: Diff | None, error: str | None, tz: tzinfo) -> DiffSection:
    """``pcapsmtp diff BASELINE CAPTURE`` (the failing session of CAPTURE, or the one chosen
    with --session, against the one most like it in BASELINE): its JSON document, or why
    there is none (``error``, the diff's DiffError)."""
    if diff is None:
        return DiffSection(document=None, error=wire(error or ""))
    document = diff_document(diff)
    return DiffSection(document=document, error=None, view=_view(diff, document, tz))


def baseline_section(
    baseline: Analysis, facts: FileFacts, diff: Diff | None, error: str | None, tz: tzinfo
) -> BaselineSection:
    """The good capture (``facts``: its file's size and SHA-256) and the comparison."""
    result = baseline.results[0]
    findings = baseline.findings
    codes = finding_codes(findings)
    start = result.info.first_time_ns
    return BaselineSection(
        capture=capture_section(result, facts, tz),
        verdict=verdict(baseline),
        timeline=[timeline_row(s, start, tz, codes) for s in baseline.sessions],
        findings=[finding_dict(f) for f in findings],
        diff=diff_section(diff, error, tz),
    )

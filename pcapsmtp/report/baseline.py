"""The report's baseline section: the good capture's facts and what ``pcapsmtp diff`` finds
between it and the capture the report is about.

The comparison is entirely the diff command's (``pcapsmtp.diff``): the report calls it once,
in ``diff_section``, keeps its JSON document as it is, and adds a ``view`` for the Markdown
and HTML renderers (the diff's own Markdown, its steps and parameters as table rows). The
JSON report leaves the view out.
"""

from __future__ import annotations

import re
from datetime import tzinfo

from pcapsmtp.analysis import Analysis, Options
from pcapsmtp.diff.parameters import describe
from pcapsmtp.report.safe import wire

HEADING = re.compile(r"^(#+) ", re.MULTILINE)


def _latency(step) -> str:
    if step is None or step.latency_ns is None:
        return ""
    ns = step.latency_ns
    return f"{ns / 1e9:.2f} s" if ns >= 1e9 else f"{ns / 1e6:.1f} ms"


def _view(diff, document: dict, tz: tzinfo) -> dict:
    from pcapsmtp.diff.compare import step_name
    from pcapsmtp.report.difftext import LEGEND, MARKS, cell, render_diff_markdown

    plain = lambda text: text  # noqa: E731  (each renderer escapes for its format)
    steps = []
    for aligned in diff.steps:
        found = aligned.divergence
        steps.append(
            {
                "index": aligned.index,
                "mark": MARKS[None if found is None else found.major],
                "good": wire(cell(aligned.a, plain)),
                "good_latency": _latency(aligned.a),
                "bad": wire(cell(aligned.b, plain)),
                "bad_latency": _latency(aligned.b),
                "detail": wire(
                    f"step {aligned.index} ({step_name(aligned.b or aligned.a)}): {found.detail}"
                )
                if found
                else None,
            }
        )
    parameters = [
        {"label": p["label"], "good": describe(p["good"]), "bad": describe(p["bad"]),
         "differs": p["differs"]}
        for p in document.get("parameters", {}).values()
        if isinstance(p, dict) and "label" in p
    ]  # fmt: skip
    markdown = HEADING.sub(lambda m: f"##{m.group(1)} ", render_diff_markdown(diff, tz))
    return {"markdown": markdown, "steps": steps, "parameters": parameters, "legend": LEGEND}


def diff_section(
    baseline_path: str, path: str, options: Options, bad_session: int | None, tz: tzinfo
) -> dict:
    """``pcapsmtp diff BASELINE CAPTURE`` (the failing session of CAPTURE, or ``bad_session``,
    against the one most like it in BASELINE): its JSON document, or why there is none."""
    from pcapsmtp.diff import DiffError, compare_captures
    from pcapsmtp.report.diffdoc import diff_document

    try:
        diff = compare_captures(baseline_path, path, options, None, bad_session)
    except DiffError as error:
        return {"document": None, "error": wire(str(error))}
    document = diff_document(diff)
    return {"document": document, "error": None, "view": _view(diff, document, tz)}


def baseline_section(
    baseline_path: str,
    baseline: Analysis,
    path: str,
    options: Options,
    bad_session: int | None,
    tz: tzinfo,
) -> dict:
    from pcapsmtp.report.document import capture_section, file_facts, timeline_row, verdict
    from pcapsmtp.report.findings import finding_dict

    result = baseline.results[0]
    findings = baseline.findings
    start = result.info.first_time_ns
    return {
        "capture": capture_section(result, file_facts(baseline_path), tz),
        "verdict": verdict(baseline),
        "timeline": [timeline_row(s, start, tz, findings) for s in baseline.sessions],
        "findings": [finding_dict(f) for f in findings],
        "diff": diff_section(baseline_path, path, options, bad_session, tz),
    }

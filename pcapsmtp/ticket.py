"""The ticket report's work, done once: ``pcapsmtp report`` between the CLI and the renderers.

Every capture is analysed once: the capture the report is about and the baseline, whose
analyses also make the comparison (``pcapsmtp.diff.compare_results``) instead of the diff
reading both files again. The work beyond the analysis is here too: the SHA-256 of the
files, the second pass over the detailed sessions' streams for their graphs, the sessions
chosen with --session / --stream. ``pcapsmtp.report`` receives the finished models and only
renders them; it imports no pipeline module.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import replace

from pcapsmtp.analysis import Analysis, CaptureResult, Options, analyze
from pcapsmtp.analysis.one_pass import collect_streams
from pcapsmtp.diff import DiffError, compare_results
from pcapsmtp.errors import PcapsmtpError
from pcapsmtp.report.baseline import baseline_section
from pcapsmtp.report.document import ReportOptions, build_report, chosen_sessions
from pcapsmtp.report.model import FileFacts, Report
from pcapsmtp.report.pseudonyms import redact_addresses
from pcapsmtp.report.series import session_series
from pcapsmtp.selection import SelectionError, listing, select

__all__ = ["ReportOptions", "UnknownSession", "file_facts", "make_report"]


class UnknownSession(PcapsmtpError, ValueError):
    """--session named a session the capture does not hold (a usage error)."""

    usage = True


def file_facts(path: str, files: list[str] | None = None) -> FileFacts:
    """Size and SHA-256 of a capture file, so the recipient can check they have the same one;
    of each of ``files`` when ``path`` names a rotated set."""
    if files:
        each = [file_facts(f) for f in files]
        return FileFacts(
            name=os.path.basename(path),
            size=sum(f["size"] for f in each),
            sha256=", ".join(f"{f['name']}: {f['sha256']}" for f in each),
        )
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return FileFacts(
        name=os.path.basename(path), size=os.path.getsize(path), sha256=digest.hexdigest()
    )


def _resolve(options: ReportOptions, analysis: Analysis, path: str) -> ReportOptions:
    """The options with the selectors' sessions added to ``sessions`` (ids)."""
    ids = list(options.sessions)
    for selector in options.selectors:
        try:
            ids.append(select(analysis.sessions, selector, path).id)
        except SelectionError as error:
            raise UnknownSession(str(error)) from None
    known = {s.id for s in analysis.sessions}
    unknown = [n for n in ids if n not in known]
    if unknown:
        raise UnknownSession(
            f"{path} has no SMTP session {unknown[0]}; its sessions: {listing(analysis.sessions)}"
        )
    return replace(options, sessions=tuple(dict.fromkeys(ids)))


def _compare(
    baseline_path: str, baseline: CaptureResult, path: str, result: CaptureResult, bad: int | None
):
    """``pcapsmtp diff BASELINE CAPTURE`` from the analyses at hand: (diff, None), or
    (None, why there is no comparison)."""
    good = result if baseline_path == path else baseline
    try:
        return compare_results(baseline_path, good, path, result, None, bad), None
    except DiffError as error:
        return None, str(error)


def make_report(
    paths: str | list[str],
    analysis_options: Options,
    options: ReportOptions,
    baseline_path: str | None = None,
) -> tuple[Report | None, list]:
    """Analyse ``paths`` (one capture, or the files of one rotated set) and the baseline,
    collect the graph data of the detailed sessions, build the report and redact addresses
    when asked: (report, errors of unreadable inputs)."""
    paths = [paths] if isinstance(paths, str) else list(paths)
    analysis = analyze(paths, analysis_options)
    baseline = analyze([baseline_path], analysis_options) if baseline_path else None
    errors = analysis.errors + (baseline.errors if baseline else [])
    if errors:
        return None, errors
    if len(analysis.results) != 1:
        names = ", ".join(r.info.file for r in analysis.results) or "none"
        raise UnknownSession(
            f"a report covers one capture (or one rotated set); these inputs are "
            f"{len(analysis.results)}: {names}"
        )
    result = analysis.results[0]
    path = result.info.file
    options = _resolve(options, analysis, path)
    detailed, _ = chosen_sessions(analysis, options.sessions)
    streams = collect_streams(
        result.info.files or path, [s.flow.stream for s in detailed], analysis_options.extra_ports
    )
    series = {s.id: session_series(s, streams[s.flow.stream]) for s in detailed}
    base = None
    if baseline is not None and baseline_path:
        bad_session = options.sessions[0] if options.sessions else None
        diff, error = _compare(baseline_path, baseline.results[0], path, result, bad_session)
        base = baseline_section(baseline, file_facts(baseline_path), diff, error, options.tz)
    facts = file_facts(path, result.info.files)
    report = build_report(path, analysis, options, facts, series, base)
    if options.redact_addresses:
        report = redact_addresses(report)
    return report, []

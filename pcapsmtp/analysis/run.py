"""``analyze``: every input through the one pass (pcapsmtp.analysis.one_pass), then diagnosed.

Inputs are files, folders and standard input; the files of a rotated set are one capture
(pcapsmtp.capture.sets), chained in this process (pcapsmtp.analysis.chained) or read in
parallel (pcapsmtp.analysis.rotated). Each capture's sessions are then numbered, diagnosed,
and linked to the mail logs when some were given.
"""

from __future__ import annotations

import os
from datetime import UTC

from pcapsmtp.analysis.model import Analysis, CaptureResult, Options, ParallelError
from pcapsmtp.analysis.one_pass import analyze_capture
from pcapsmtp.analysis.spool import SessionList, SessionSpool
from pcapsmtp.capture.sets import CaptureSet, expand_inputs, group_files
from pcapsmtp.diagnose import CaptureContext, Diagnosis, diagnose
from pcapsmtp.errors import CaptureError
from pcapsmtp.smtp.model import Session

PARALLEL_MIN_BYTES = 64 * 1024 * 1024
"""Below this much capture, starting worker processes costs more than it saves."""
AUTO_PARALLEL_MIN_CORES = 2
"""Without --jobs, several files are read in parallel only on more cores than this."""


def analyze(sources: list[str], options: Options | None = None) -> Analysis:
    """Analyse captures: each file on its own, except that the files of a rotated set
    (pcapsmtp.capture.sets) are one capture, read in parallel when that pays."""
    options = options or Options()
    analysis = Analysis()
    inputs, analysis.warnings, analysis.errors = expand_inputs(sources)
    sets = group_files(inputs)
    if _parallel(sets, options):
        _analyze_parallel(analysis, sets, options)
    else:
        for capture_set in sets:
            try:
                analysis.results.append(_analyze_set(capture_set, options))
            except CaptureError as error:
                analysis.errors.append(error)
    conclude(analysis, options)
    return analysis


def conclude(analysis: Analysis, options: Options) -> None:
    """What follows the reading of every capture: sessions numbered by their first frame,
    diagnosed, linked to the mail logs. Also the end of the live mode
    (pcapsmtp.analysis.follow), so its summary is this analysis."""
    for result in analysis.results:
        result.sessions = _numbered(result.sessions)
        analysis.warnings += [
            f"session {digest.id}"
            + (f" of {result.info.file}" if len(analysis.results) > 1 else "")
            + f": {limit}: a per-session cap (docs/limits.md)"
            for digest in result.sessions.digests
            for limit in digest.limits
        ]
        context = CaptureContext(result.info, result.stray_icmp, dns=result.dns)
        if _rules_in_writer(analysis, options):
            result.diagnosis = Diagnosis(result.sessions, context)
            result.diagnosis.capture()
        else:
            result.findings = diagnose(result.sessions, context)
    if options.maillogs and analysis.results:
        _link_maillogs(analysis, options)


def _rules_in_writer(analysis: Analysis, options: Options) -> bool:
    """The session rules left to the writer (``Options.session_rules_in_writer``): for one
    capture (the findings of several are keyed by capture and merged) without mail logs."""
    return options.session_rules_in_writer and len(analysis.results) == 1 and not options.maillogs


def _numbered(sessions: list[Session] | SessionSpool) -> SessionList | SessionSpool:
    """Ids 1, 2, ... in first-frame order, and the digests the capture-wide rules read."""
    if isinstance(sessions, SessionSpool):
        sessions.number()
        return sessions
    for number, session in enumerate(sessions, start=1):
        session.id = number
    return SessionList(sessions)


def _analyze_set(capture_set: CaptureSet, options: Options) -> CaptureResult:
    if len(capture_set.files) == 1:
        return analyze_capture(capture_set.files[0], options, spool=True)
    from pcapsmtp.analysis.chained import analyze_chained, analyze_merged  # only for sets

    if options.keylog:
        return analyze_merged(capture_set, options)
    return analyze_chained(capture_set, options)


def _parallel(sets: list[CaptureSet], options: Options) -> bool:
    """Worth worker processes: a scheduler was named, --jobs N > 1 with a file to read (one
    file is sharded as a set is), or by default several files and more than one core."""
    if options.scheduler:
        return True
    files = [path for s in sets for path in s.files if path != "-"]
    if options.jobs is not None:
        # Standard input cannot be read twice: it stays in this process (analyze_local).
        return options.jobs > 1 and bool(files)
    jobs = os.cpu_count() or 1
    if jobs <= 1 or len(files) < 2:
        return False
    # On two cores --jobs 2 gains wall time only on an idle machine, for 1.2 times the CPU
    # (docs/performance-log.md, "Rotated sets"): parallel by default only above that.
    return jobs > AUTO_PARALLEL_MIN_CORES and sum(map(_size, files)) >= PARALLEL_MIN_BYTES


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def _analyze_parallel(analysis: Analysis, sets: list[CaptureSet], options: Options) -> None:
    from pcapsmtp.analysis.rotated import analyze_parallel

    jobs = options.jobs or os.cpu_count() or 1
    progress = options.progress
    on_done = progress.tasks if progress is not None else None
    try:
        outcomes = analyze_parallel(sets, options, jobs, options.scheduler, on_done)
    except ParallelError as error:
        analysis.errors.append(CaptureError(error.where, error.reason))
        return
    finally:
        if progress is not None:
            progress.done()
    for result, errors in outcomes:
        if result is not None:
            analysis.results.append(result)
        analysis.errors += errors


def _link_maillogs(analysis: Analysis, options: Options) -> None:
    from pcapsmtp.maillog import link_maillogs  # here: its parsers load only when logs are given

    links, errors = link_maillogs(
        analysis.sessions, analysis.captures, list(options.maillogs), options.log_zone or UTC
    )
    analysis.maillog = links
    analysis.errors += errors

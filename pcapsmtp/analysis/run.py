"""The one place that wires the stages together: capture -> tcp -> smtp -> diagnose."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, tzinfo

from pcapsmtp.analysis.extras import CLUSTER, available
from pcapsmtp.analysis.progress import Progress
from pcapsmtp.analysis.tlsdecrypt import decrypt_held, keys_at_hand, readable_source
from pcapsmtp.capture import Capture, CaptureInfo, IcmpError, open_capture, packets
from pcapsmtp.capture.sets import CaptureSet, expand_inputs, group_files
from pcapsmtp.diagnose import CaptureContext, Finding, diagnose
from pcapsmtp.errors import CaptureError
from pcapsmtp.smtp.model import Session
from pcapsmtp.smtp.tracker import SMTP_PORTS, SmtpTracker
from pcapsmtp.tcp import FlowEnded, FlowTracker
from pcapsmtp.tcp.flows import evicted_warning


@dataclass(slots=True)
class Options:
    """What the user asked for, as far as the analysis (not the output) is concerned."""

    extra_ports: tuple[int, ...] = ()
    keylog: str | None = None
    """TLS key log (SSLKEYLOGFILE format) to decrypt STARTTLS and port-465 sessions with."""
    maillogs: tuple[str, ...] = ()
    """Mail-server logs to link to the sessions (``--maillog``)."""
    log_zone: tzinfo | None = None
    """The zone of the logs' times that carry none (``--maillog-tz``); UTC when None."""
    progress: Progress | None = None
    """Told now and then how far the reading got (see pcapsmtp.progress); None: nobody."""
    jobs: int | None = None
    """Worker processes for rotated sets (pcapsmtp.rotated); None: one per core, used when
    the captures are large enough to repay starting them; 1: everything in this process."""
    scheduler: str | None = None
    """Address of a running Dask scheduler (``tcp://HOST:PORT``) to run the tasks on."""


@dataclass(slots=True)
class CaptureResult:
    """What one capture file holds."""

    info: CaptureInfo
    sessions: list[Session] = field(default_factory=list)
    stray_icmp: list[IcmpError] = field(default_factory=list)
    """ICMP errors about connections with no packet in the capture."""
    other_connections: int = 0
    """TCP connections that are not SMTP."""
    findings: list[Finding] = field(default_factory=list)
    smtp: SmtpTracker | None = None
    """While the pass is being finished only: the tracker holding TLS sessions."""


@dataclass(slots=True)
class Analysis:
    """Everything found in one or more captures."""

    results: list[CaptureResult] = field(default_factory=list)
    errors: list[CaptureError] = field(default_factory=list)
    """Inputs that could not be read at all; the others are analysed regardless."""
    maillog: object | None = None
    """pcapsmtp.maillog.MaillogLinks when mail logs were given."""
    warnings: list[str] = field(default_factory=list)
    """About the inputs as a whole (folder entries that are not captures, ...)."""

    @property
    def captures(self) -> list[CaptureInfo]:
        return [result.info for result in self.results]

    @property
    def sessions(self) -> list[Session]:
        return [session for result in self.results for session in result.sessions]

    @property
    def findings(self) -> list[Finding]:
        found = [finding for result in self.results for finding in result.findings]
        return sorted(found, key=lambda f: f.rank)

    @property
    def several(self) -> bool:
        """More than one capture: a session id alone does not name a session."""
        return len(self.results) > 1

    def findings_by_session(self) -> dict[tuple[str, int], list[Finding]]:
        """Session key (pcapsmtp.smtp.Session.key) -> its findings, most severe first."""
        found: dict[tuple[str, int], list[Finding]] = {}
        for finding in self.findings:
            if finding.session is not None:
                found.setdefault((finding.capture, finding.session), []).append(finding)
        return found


def analyze_capture(source: str, options: Options) -> CaptureResult:
    """Read one capture in a single streaming pass (then one tshark pass to decrypt TLS
    sessions, when keys are at hand: pcapsmtp.tlsdecrypt)."""
    with readable_source(source, options.keylog) as path, open_capture(path) as capture:
        capture.info.file = source
        result = run_pass(
            capture, source, options, lambda: keys_at_hand(capture.info, options.keylog)
        )
        result.sessions += decrypt_held(result.smtp, path, capture.info, options.keylog)
        result.smtp = None
        result.sessions.sort(key=lambda s: s.flow.first_frame)
        return result


def run_pass(capture, label: str, options: Options, hold_tls) -> CaptureResult:
    """The one streaming pass over a capture (or a chained rotated set): capture -> tcp ->
    smtp. The SMTP tracker stays in ``result.smtp`` for the sessions it holds for TLS."""
    result = CaptureResult(capture.info)
    flows = FlowTracker(SMTP_PORTS + options.extra_ports)
    smtp = SmtpTracker(label, options.extra_ports, hold_tls=hold_tls)
    found = packets(capture)
    if options.progress is not None:
        found = _reporting(found, capture, options.progress, flows, smtp)
    for event in flows.events(found):
        session = smtp.add(event)
        if session is not None:
            result.sessions.append(session)
        elif isinstance(event, FlowEnded):
            result.other_connections += 1
    result.stray_icmp = flows.unmatched_icmp
    capture.info.warnings += flows.warnings
    if flows.evicted:
        capture.info.warnings.append(evicted_warning(flows.evicted))
    result.sessions.sort(key=lambda s: s.flow.first_frame)
    result.smtp = smtp
    return result


PROGRESS_EVERY = 4096
"""Packets between two progress reports (the report itself is throttled in time)."""


def _reporting(
    found: Iterator, capture: Capture, progress: Progress, flows: FlowTracker, smtp: SmtpTracker
) -> Iterator:
    """The packets as they are, telling ``progress`` how far the reading got now and then."""
    size = capture.size()
    try:
        for n, packet in enumerate(found, 1):
            if not n % PROGRESS_EVERY:
                position, frames = capture.position(), capture.info.frames
                progress.update(capture.source, position, size, frames, flows.streams, smtp.seen)
            yield packet
    finally:
        progress.done()


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
    for result in analysis.results:
        for number, session in enumerate(result.sessions, start=1):
            session.id = number
            analysis.warnings += [
                f"session {number}"
                + (f" of {result.info.file}" if len(analysis.results) > 1 else "")
                + f": {limit}: a per-session cap (docs/limits.md)"
                for limit in session.limits()
            ]
        context = CaptureContext(result.info, result.stray_icmp)
        result.findings = diagnose(result.sessions, context)
    if options.maillogs and analysis.results:
        _link_maillogs(analysis, options)
    return analysis


def _analyze_set(capture_set: CaptureSet, options: Options) -> CaptureResult:
    if len(capture_set.files) == 1:
        return analyze_capture(capture_set.files[0], options)
    from pcapsmtp.analysis.rotated import analyze_chained, analyze_merged

    if options.keylog:
        return analyze_merged(capture_set, options)
    return analyze_chained(capture_set, options)


def _parallel(sets: list[CaptureSet], options: Options) -> bool:
    """Worth Dask: a scheduler was named, or several files and more than one job."""
    if options.scheduler:
        return True
    files = [path for s in sets for path in s.files if path != "-"]
    jobs = options.jobs if options.jobs is not None else (os.cpu_count() or 1)
    if jobs <= 1 or len(files) < 2:
        return False
    if options.jobs is not None:
        return True
    # On two cores the scan round and the coordinator eat the second core's gain
    # (docs/performance.md, "Rotated sets"): parallel by default only above that.
    # Without the cluster extra the files are read one after another, as with --jobs 1.
    return (
        jobs > AUTO_PARALLEL_MIN_CORES
        and sum(map(_size, files)) >= PARALLEL_MIN_BYTES
        and available(CLUSTER)
    )


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def _analyze_parallel(analysis: Analysis, sets: list[CaptureSet], options: Options) -> None:
    from pcapsmtp.analysis.rotated import ParallelError, analyze_parallel

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
    from pcapsmtp.maillog import link_maillogs

    links, errors = link_maillogs(
        analysis.sessions, analysis.captures, list(options.maillogs), options.log_zone or UTC
    )
    analysis.maillog = links
    analysis.errors += errors

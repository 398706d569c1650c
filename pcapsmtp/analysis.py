"""The one place that wires the stages together: capture -> tcp -> smtp -> diagnose."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, tzinfo

from pcapsmtp.capture import Capture, CaptureInfo, IcmpError, open_capture, packets
from pcapsmtp.diagnose import CaptureContext, Finding, diagnose
from pcapsmtp.errors import CaptureError
from pcapsmtp.progress import Progress
from pcapsmtp.smtp.model import Session
from pcapsmtp.smtp.tracker import SMTP_PORTS, SmtpTracker
from pcapsmtp.tcp import FlowEnded, FlowTracker
from pcapsmtp.tlsdecrypt import decrypt_held, keys_at_hand, readable_source


@dataclass(slots=True)
class Options:
    """What the user asked for, as far as the analysis (not the output) is concerned."""

    extra_ports: tuple[int, ...] = ()
    keylog: str | None = None
    """TLS key log (SSLKEYLOGFILE format) to decrypt STARTTLS and port-465 sessions with."""
    maillogs: tuple[str, ...] = ()
    """Mail-server logs to link to the sessions (``--maillog``)."""
    log_zone: tzinfo | None = None
    """The zone of the logs' times that carry none (``--tz``); UTC when None."""
    progress: Progress | None = None
    """Told now and then how far the reading got (see pcapsmtp.progress); None: nobody."""


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


@dataclass(slots=True)
class Analysis:
    """Everything found in one or more captures."""

    results: list[CaptureResult] = field(default_factory=list)
    errors: list[CaptureError] = field(default_factory=list)
    """Inputs that could not be read at all; the others are analysed regardless."""
    maillog: object | None = None
    """pcapsmtp.maillog.MaillogLinks when mail logs were given."""

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


def analyze_capture(source: str, options: Options) -> CaptureResult:
    """Read one capture in a single streaming pass (then one tshark pass to decrypt TLS
    sessions, when keys are at hand: pcapsmtp.tlsdecrypt)."""
    with readable_source(source, options.keylog) as path, open_capture(path) as capture:
        capture.info.file = source
        result = CaptureResult(capture.info)
        flows = FlowTracker(SMTP_PORTS + options.extra_ports)
        smtp = SmtpTracker(
            source, options.extra_ports, hold_tls=lambda: keys_at_hand(capture.info, options.keylog)
        )
        found = packets(capture)
        if options.progress is not None:
            found = _reporting(found, capture, options.progress, flows, result.sessions)
        for event in flows.events(found):
            session = smtp.add(event)
            if session is not None:
                result.sessions.append(session)
            elif isinstance(event, FlowEnded):
                result.other_connections += 1
        result.stray_icmp = flows.unmatched_icmp
        result.sessions += decrypt_held(smtp, path, capture.info, options.keylog)
        result.sessions.sort(key=lambda s: s.flow.first_frame)
        return result


PROGRESS_EVERY = 4096
"""Packets between two progress reports (the report itself is throttled in time)."""


def _reporting(
    found: Iterator, capture: Capture, progress: Progress, flows: FlowTracker, sessions: list
) -> Iterator:
    """The packets as they are, telling ``progress`` how far the reading got now and then."""
    size = capture.size()
    try:
        for n, packet in enumerate(found, 1):
            if not n % PROGRESS_EVERY:
                position, frames = capture.position(), capture.info.frames
                progress.update(
                    capture.source, position, size, frames, flows.streams, len(sessions)
                )
            yield packet
    finally:
        progress.done()


def analyze(sources: list[str], options: Options | None = None) -> Analysis:
    options = options or Options()
    analysis = Analysis()
    for source in sources:
        try:
            analysis.results.append(analyze_capture(source, options))
        except CaptureError as error:
            analysis.errors.append(error)
    for number, session in enumerate(analysis.sessions, start=1):
        session.id = number
    for result in analysis.results:
        context = CaptureContext(result.info, result.stray_icmp)
        result.findings = diagnose(result.sessions, context)
    if options.maillogs and analysis.results:
        _link_maillogs(analysis, options)
    return analysis


def _link_maillogs(analysis: Analysis, options: Options) -> None:
    from pcapsmtp.maillog import link_maillogs

    links, errors = link_maillogs(
        analysis.sessions, analysis.captures, list(options.maillogs), options.log_zone or UTC
    )
    analysis.maillog = links
    analysis.errors += errors

"""The one place that wires the stages together: capture -> tcp -> smtp -> diagnose."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, tzinfo

from pcapsmtp.capture import CaptureInfo, IcmpError, open_capture, packets
from pcapsmtp.diagnose import CaptureContext, Finding, diagnose
from pcapsmtp.errors import CaptureError
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
        for event in flows.events(packets(capture)):
            session = smtp.add(event)
            if session is not None:
                result.sessions.append(session)
            elif isinstance(event, FlowEnded):
                result.other_connections += 1
        result.stray_icmp = flows.unmatched_icmp
        result.sessions += decrypt_held(smtp, path, capture.info, options.keylog)
        result.sessions.sort(key=lambda s: s.flow.first_frame)
        return result


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

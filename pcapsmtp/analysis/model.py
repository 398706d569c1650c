"""What an analysis is asked (Options) and what it gives (Analysis, one CaptureResult a capture),
the error of its parallel runs (ParallelError: pcapsmtp.analysis.shards and .rotated raise it)
and that of TLS decryption (DecryptionError: pcapsmtp.analysis.tlsdecrypt and the modules of
tshark's pass raise it, and it becomes a warning).

Plain records: the pass (pcapsmtp.analysis.one_pass) fills them, diagnose adds findings, and
everything above (diff, the ticket, report, the command line) reads them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import tzinfo
from typing import TYPE_CHECKING

from pcapsmtp.analysis.progress import Progress
from pcapsmtp.capture import CaptureInfo, IcmpError
from pcapsmtp.diagnose import Finding
from pcapsmtp.dns.model import Lookup
from pcapsmtp.errors import CaptureError, PcapsmtpError
from pcapsmtp.smtp.model import Session
from pcapsmtp.smtp.tracker import SmtpTracker

if TYPE_CHECKING:  # the mail-log parsers load only when logs are given
    from pcapsmtp.diagnose import Diagnosis
    from pcapsmtp.maillog.link import MaillogLinks


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
    """Told now and then how far the reading got (see pcapsmtp.analysis.progress); None: nobody."""
    jobs: int | None = None
    """Worker processes for rotated sets (pcapsmtp.analysis.shards); None: one per core, used
    when the captures are large enough to repay starting them; 1: everything in this process."""
    scheduler: str | None = None
    """Address of a running Dask scheduler (``tcp://HOST:PORT``) to run the tasks on."""
    session_rules_in_writer: bool = False
    """The session rules left to the writer of the output, which reads every session anyway
    (``analyze --format json``: pcapsmtp.report.jsondoc); ``CaptureResult.diagnosis``."""


@dataclass(slots=True)
class CaptureResult:
    """What one capture file holds."""

    info: CaptureInfo
    sessions: list[Session] = field(default_factory=list)
    stray_icmp: list[IcmpError] = field(default_factory=list)
    """ICMP errors about connections with no packet in the capture."""
    other_connections: int = 0
    """TCP connections that are not SMTP."""
    dns: list[Lookup] = field(default_factory=list)
    """The DNS lookups the capture holds (UDP port 53; not read in a rotated set's per-file
    tasks on a Dask cluster)."""
    findings: list[Finding] = field(default_factory=list)
    diagnosis: Diagnosis | None = None
    """The session rules still to run, with ``Options.session_rules_in_writer``: the rules
    over the whole capture have run; the writer runs the session rules on each session as it
    writes it, then sets ``findings``."""
    smtp: SmtpTracker | None = None
    """While the pass is being finished only: the tracker holding TLS sessions."""


@dataclass(slots=True)
class Analysis:
    """Everything found in one or more captures."""

    results: list[CaptureResult] = field(default_factory=list)
    errors: list[CaptureError] = field(default_factory=list)
    """Inputs that could not be read at all; the others are analysed regardless."""
    maillog: MaillogLinks | None = None
    """When mail logs were given."""
    warnings: list[str] = field(default_factory=list)
    """About the inputs as a whole (folder entries that are not captures, ...)."""

    @property
    def captures(self) -> list[CaptureInfo]:
        return [result.info for result in self.results]

    @property
    def sessions(self) -> list[Session]:
        """Every capture's sessions; spooled ones (pcapsmtp.analysis.spool) are read back
        as they are reached, never all at once."""
        parts = [result.sessions for result in self.results]
        if all(isinstance(part, list) for part in parts):
            joined = [session for part in parts for session in part]
            if not all(hasattr(part, "digests") for part in parts):
                return joined
            from pcapsmtp.analysis.spool import SessionList

            return SessionList(joined, [d for part in parts for d in part.digests])
        if len(parts) == 1:
            return parts[0]
        from pcapsmtp.analysis.spool import Chain

        return Chain(parts)

    @property
    def findings(self) -> list[Finding]:
        found = [finding for result in self.results for finding in result.findings]
        return sorted(found, key=lambda f: f.rank)

    @property
    def several(self) -> bool:
        """More than one capture: a session id alone does not name a session."""
        return len(self.results) > 1

    def sessions_and_findings(self) -> Iterator[tuple[Session, list[Finding]]]:
        """Each session with its findings, most severe first (``findings_by_session``).
        Where the session rules were left to the writer (``CaptureResult.diagnosis``), they
        run on each session as it is reached, and the capture's findings are set once every
        session was: a spooled session is read back once for its rules and its output."""
        result = self.results[0] if len(self.results) == 1 else None
        if result is not None and result.diagnosis is not None:
            yield from result.diagnosis.by_session()
            result.findings = result.diagnosis.findings()
            result.diagnosis = None
            return
        by_session = self.findings_by_session()
        for session in self.sessions:
            yield session, by_session.get(session.key, [])

    def findings_by_session(self) -> dict[tuple[str, int], list[Finding]]:
        """Session key (pcapsmtp.smtp.Session.key) -> its findings, most severe first."""
        found: dict[tuple[str, int], list[Finding]] = {}
        for finding in self.findings:
            if finding.session is not None:
                found.setdefault((finding.capture, finding.session), []).append(finding)
        return found


@dataclass(slots=True)
class SessionShown:
    """A session that ended, with the findings about it alone not shown before."""

    session: Session
    findings: list[Finding]
    revised: bool = False
    """Shown before, when its connection closed; later packets changed its outcome or
    added findings, and this is how the flow table ended it."""


@dataclass(slots=True)
class FindingFound:
    """A finding that became known from several sessions (or a new one about a session
    shown before)."""

    finding: Finding
    time_ns: int | None
    """Capture time of the last packet read when it became known."""


@dataclass(slots=True)
class WarningFound:
    text: str


LiveEvent = SessionShown | FindingFound | WarningFound


class ParallelError(PcapsmtpError):
    """The tasks could not be run (no scheduler at that address, workers lost for good)."""

    def __init__(self, where: str, reason: str) -> None:
        super().__init__(f"{where}: {reason}")
        self.where = where
        self.reason = reason


class DecryptionError(PcapsmtpError):
    """Decryption could not be done; the message is the warning users read."""

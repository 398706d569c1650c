"""Diagnosis: small rules over sessions (and whole captures) that name the root cause.

``diagnose(sessions, context)`` runs every registered rule; a rule that fails on odd input
is reported as a warning finding of its own instead of stopping the others.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from pcapsmtp.capture import CaptureInfo, IcmpError
from pcapsmtp.diagnose import families  # noqa: F401  (registers the rules)
from pcapsmtp.diagnose.capture import NEEDS_BOTH_SIDES, NEEDS_ORDER, inverted_handshake
from pcapsmtp.diagnose.digest import digests
from pcapsmtp.diagnose.model import ERROR, INFO, WARNING, Finding, Severity, cap_frames
from pcapsmtp.diagnose.registry import RULES
from pcapsmtp.dns.model import Lookup
from pcapsmtp.smtp.model import Session

__all__ = [
    "ERROR",
    "INFO",
    "WARNING",
    "CaptureContext",
    "Diagnosis",
    "Finding",
    "Severity",
    "all_codes",
    "diagnose",
]


@dataclass(slots=True)
class CaptureContext:
    """What a rule may need beyond one session: the capture's facts."""

    info: CaptureInfo
    stray_icmp: list[IcmpError] = field(default_factory=list)
    path_acked: dict[tuple[bytes, bytes], Sequence[int]] = field(default_factory=dict)
    """(sender ip, receiver ip) -> the largest acknowledged packet of each connection."""
    dns: list[Lookup] = field(default_factory=list)
    """The capture's DNS lookups (pcapsmtp.dns), in the order of their first frame."""
    memo: dict[str, object] = field(default_factory=dict)
    """What a session rule works out once for the capture (an index of its DNS lookups), by
    the rule's code."""


def all_codes() -> list[str]:
    return sorted({code for rule in RULES for code in rule.codes})


def _path_acked(sessions: Sequence[Session]) -> dict[tuple[bytes, bytes], Sequence[int]]:
    """Kept as machine integers (8 bytes a connection and direction, not a 36-byte int
    object and its pointer: this grows with the capture's length)."""
    paths: dict[tuple[bytes, bytes], array] = {}
    for digest in digests(sessions):
        for direction, sender in enumerate(digest.ips):
            receiver = digest.ips[1 - direction]
            sizes = paths.get((sender, receiver))
            if sizes is None:
                sizes = paths[(sender, receiver)] = array("q")
            sizes.append(digest.acked[direction])
    return paths


def diagnose(sessions: Sequence[Session], context: CaptureContext) -> list[Finding]:
    """Every rule: the session rules all on one session, then on the next (a spooled
    session is read back once), then the rules over the whole capture. The findings are in
    the order of rank, then of the rules, as if each rule had run over every session in
    turn."""
    diagnosis = Diagnosis(sessions, context)
    for session in sessions:
        diagnosis.session(session)
    diagnosis.capture()
    return diagnosis.findings()


class Diagnosis:
    """The rules over one capture's sessions, run in two parts: the session rules on each
    session as a reader of the sessions reaches it (``session``), the rules over the whole
    capture (``capture``) before or after them; ``findings`` sorts what both found. So a
    writer that reads every session anyway (the JSON document, pcapsmtp.report.jsondoc)
    runs the session rules on it: a spooled session is read back once, not twice."""

    def __init__(self, sessions: Sequence[Session], context: CaptureContext) -> None:
        context.path_acked = _path_acked(sessions)
        self.sessions = sessions
        self.context = context
        self._session_rules = [
            (number, rule, rule.function, _needs_both_sides(rule.codes))
            for number, rule in enumerate(RULES)
            if rule.scope == "session"
        ]
        self._found: list[tuple[int, Finding]] = []
        """(the rule's place in RULES, a finding)."""
        self.capture_findings: list[tuple[int, Finding]] = []
        """What ``capture`` found."""

    def session(self, session: Session) -> list[tuple[int, Finding]]:
        """The session rules' findings on ``session`` (kept for ``findings``)."""
        context = self.context
        one_sided = session.one_sided is not None
        merged = inverted_handshake(session.flow) is not None
        found: list[tuple[int, Finding]] = []
        for number, rule, function, needs_both_sides in self._session_rules:
            if one_sided and needs_both_sides:
                continue
            if merged and set(rule.codes) <= NEEDS_ORDER:
                continue
            try:  # _produce written out: 46,644 runs on the 200 MB capture, few with findings
                produced = list(function(session, context))
            except Exception as error:
                produced = [_rule_failed(rule.name, error, session)]
            if produced:
                _finish(produced, session, context)
                found += ((number, f) for f in produced)
        self._found += found
        return found

    def capture(self) -> list[tuple[int, Finding]]:
        """The findings of the rules over the whole capture (kept for ``findings``)."""
        found = [
            (number, finding)
            for number, rule in enumerate(RULES)
            if rule.scope != "session"
            for finding in _produce(rule, self.sessions, self.context)
        ]
        self._found += found
        self.capture_findings = found
        return found

    def by_session(self) -> Iterator[tuple[Session, list[Finding]]]:
        """Each session with its findings, in the order ``Analysis.findings_by_session``
        gives them (by rank, then rule; those of the rules over the capture that name it
        among them), the session rules run on it as it is reached (after ``capture``)."""
        named: dict[tuple[str | None, int | None], list[tuple[int, Finding]]] = {}
        for number, finding in self.capture_findings:
            if finding.session is not None:
                named.setdefault((finding.capture, finding.session), []).append((number, finding))
        for session in self.sessions:
            key = session.key
            found = [item for item in self.session(session) if _key(item[1]) == key]
            found += named.get(key, ())
            found.sort(key=_by_rank_and_rule)
            yield session, [finding for _number, finding in found]

    def findings(self) -> list[Finding]:
        """Everything found so far, by rank, then by rule."""
        found = sorted(self._found, key=_by_rank_and_rule)
        return [finding for _number, finding in found]


def _by_rank_and_rule(item: tuple[int, Finding]) -> tuple:
    """The findings' order, for (the rule's place in RULES, a finding)."""
    return (item[1].rank, item[0])


def _key(finding: Finding) -> tuple[str | None, int | None]:
    return (finding.capture, finding.session)


def _produce(rule, target, context: CaptureContext) -> list[Finding]:
    """The rule's findings on a session or on the capture's sessions, each with where it
    was found; a rule that raises gives an analysis-error finding instead."""
    try:
        produced = list(rule.function(target, context))
    except Exception as error:
        produced = [_rule_failed(rule.name, error, target)]
    if produced:
        _finish(produced, target, context)
    return produced


def _finish(produced: list[Finding], target, context: CaptureContext) -> None:
    """Each finding with where it was found (its capture, and its session when ``target``
    is one) and its frames capped."""
    for finding in produced:
        cap_frames(finding)
        finding.capture = context.info.file
        if isinstance(target, Session):
            finding.session = target.id
            finding.tcp_stream = target.flow.stream


def _needs_both_sides(codes: tuple[str, ...]) -> bool:
    """A rule whose evidence is the other side's packets: it does not run on a one-sided
    session."""
    return bool(codes) and set(codes) <= NEEDS_BOTH_SIDES


def _rule_failed(name: str, error: Exception, target) -> Finding:
    return Finding(
        code="analysis-error",
        severity=WARNING,
        summary=f"the check {name} failed on this input ({type(error).__name__})",
        detail=f"{type(error).__name__}: {error}. Other checks ran normally; please report this "
        "with the capture if you can share it.",
    )

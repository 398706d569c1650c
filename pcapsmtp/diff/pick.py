"""Choosing the sessions to compare when the user did not name them."""

from __future__ import annotations

import math

from pcapsmtp.capture.addresses import endpoint_name
from pcapsmtp.diagnose import ERROR, Finding
from pcapsmtp.errors import PcapsmtpError
from pcapsmtp.selection import SelectionError, as_selector, select
from pcapsmtp.smtp.model import Outcome, Session


class DiffError(PcapsmtpError):
    """The captures hold no pair of sessions to compare: a usage error (exit status 2)."""

    usage = True


def session_findings(findings: list[Finding], session: Session) -> list[Finding]:
    """The session's own findings and those about its whole capture."""
    return [f for f in findings if f.session == session.id or f.session is None]


def by_id(sessions: list[Session], chosen, capture: str) -> Session:
    """The session ``chosen`` names (an id or a pcapsmtp.selection.Selector)."""
    try:
        return select(sessions, as_selector(chosen), capture)
    except SelectionError as error:
        raise DiffError(str(error)) from None


def _failing(findings: list[Finding]) -> set[int | None]:
    """The ids of the sessions with an error finding: found once, where asking every finding
    for each session in turn was quadratic on a long capture."""
    return {f.session for f in findings if f.severity == ERROR}


def pick_failing(sessions: list[Session], findings: list[Finding], capture: str) -> Session:
    """The first session with an error finding, else the first not delivered, else the first."""
    if not sessions:
        raise DiffError(f"{capture} holds no SMTP session")
    failing = _failing(findings)
    for session in sessions:
        if session.id in failing:
            return session
    for session in sessions:
        if session.outcome != Outcome.DELIVERED:
            return session
    return sessions[0]


def _recipients(session: Session) -> set[str]:
    return {r.address.lower() for t in session.transactions for r in t.rcpt_to}


def _senders(session: Session) -> set[str]:
    return {t.mail_from.lower() for t in session.transactions if t.mail_from is not None}


def _size(session: Session) -> int | None:
    sizes = [t.declared_size or t.size for t in session.transactions]
    sizes = [s for s in sizes if s]
    return max(sizes) if sizes else None


def _closeness(a: int | None, b: int | None) -> float:
    """0 for equal message sizes, more negative the further apart (by ratio)."""
    if a is None or b is None:
        return -100.0
    return -abs(math.log(a + 1) - math.log(b + 1))


def pick_comparable(
    sessions: list[Session], findings: list[Finding], failing: Session, capture: str
) -> Session:
    """The session most like ``failing``: to the same server or a shared recipient first,
    then one that went well, then the same sender, the nearest message size, the same
    position in its capture; the first on a tie."""
    candidates = [s for s in sessions if s is not failing]
    if not candidates:
        raise DiffError(f"{capture} holds no other SMTP session to compare with")
    server = endpoint_name(failing.server)
    recipients, senders, size = _recipients(failing), _senders(failing), _size(failing)
    troubled = _failing(findings)

    def score(item: tuple[int, Session]) -> tuple:
        position, session = item
        return (
            endpoint_name(session.server) == server or bool(_recipients(session) & recipients),
            session.id not in troubled and session.outcome == Outcome.DELIVERED,
            bool(_senders(session) & senders),
            _closeness(_size(session), size),
            position == failing.id - 1,
        )

    ranked = list(enumerate(sessions))
    ranked = [item for item in ranked if item[1] is not failing]
    return max(ranked, key=score)[1]

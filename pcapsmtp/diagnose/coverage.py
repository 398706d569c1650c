"""No false calm: which sessions need a finding to explain them, and which findings do.

A session that delivered its mail, or that said QUIT and had it accepted with no mail left
undecided, ended well. Every other session must be explained by a finding that names it: the
network, the server, the client or the capture. Only when every session ended well may a
report say that no trouble was found.
"""

from __future__ import annotations

from pcapsmtp.diagnose.model import ERROR, Finding
from pcapsmtp.smtp.model import Outcome, Session

SIDE_CONDITIONS = frozenset(
    {
        "slow-server",
        "retransmissions",
        "zero-window",
        "ip-fragmentation",
        "icmp-frag-needed",
        "analysis-error",
        "dns-lookup-failed",
        "dns-timeout",
        "dns-no-mx",
        "dns-mx-mismatch",
        "dns-slow-greeting",
        "capture-duplicates",
        "capture-time-backwards",
    }
)
"""Codes that describe a condition on the way, not why a session ended (unless an error)."""


def ended_well(session: Session) -> bool:
    """Delivered every message, or a clean QUIT (answered 2xx) with no message left waiting
    for its reply."""
    if session.outcome == Outcome.DELIVERED:
        return True
    if session.outcome != Outcome.INCOMPLETE or session.quit is None:
        return False
    reply = session.quit.reply
    if reply is None or not 200 <= reply.code < 300:
        return False
    return all(t.method is None or t.final is not None for t in session.transactions)


def explains(finding: Finding, session: Session) -> bool:
    """The finding names the session (or, for a capture-wide one, shows one of its frames)
    and says why it ended, not merely what happened on the way."""
    if finding.code in SIDE_CONDITIONS and finding.severity != ERROR:
        return False
    if finding.session is not None:
        return finding.session == session.id and finding.capture == session.capture
    flow = session.flow
    return finding.capture == session.capture and any(
        flow.first_frame <= frame <= flow.last_frame for frame in finding.frames
    )


def unexplained(sessions: list[Session], findings: list[Finding]) -> list[Session]:
    """Sessions that did not end well and that no finding explains."""
    return [s for s in sessions if not ended_well(s) and not any(explains(f, s) for f in findings)]

"""The DNS lookups an exported session's findings rest on.

A session's DNS findings (dns-mx-mismatch, dns-lookup-failed, dns-slow-greeting) are about
UDP packets that are not the session's: the MX lookup before the connection, the server's PTR
lookup before its greeting. An export of the session's TCP frames alone lost them, and the
export analysed again lost the findings. These are the lookups to keep with the session: the
ones the findings cite (a frame of theirs among the findings' evidence), every try and the
response of each, and the lookups of the names their answers point to (the MX hosts' and a
PTR name's addresses, CNAME targets) that the same client made before the session ended:
dns-mx-mismatch compares the session's server with those addresses.
"""

from __future__ import annotations

from collections.abc import Sequence

from pcapsmtp.diagnose.model import Finding
from pcapsmtp.dns.model import TYPE_CNAME, TYPE_MX, TYPE_PTR, Lookup
from pcapsmtp.smtp.model import Session

POINTERS = (TYPE_MX, TYPE_CNAME, TYPE_PTR)
"""Record types whose value names another host whose own lookup the rules read."""
MAX_FOLLOW = 8
"""Rounds of following names (a CNAME chain is at most this long for the rules too)."""


def session_dns_findings(session: Session, findings: Sequence[Finding]) -> list[Finding]:
    """The DNS findings tied to ``session``."""
    return [f for f in findings if f.session == session.id and f.code.startswith("dns-")]


def cited_lookups(
    session: Session, findings: Sequence[Finding], lookups: Sequence[Lookup]
) -> list[Lookup]:
    """The lookups the session's DNS findings rest on, in the capture's order."""
    cited = {frame for f in session_dns_findings(session, findings) for frame in f.frames}
    if not cited:
        return []
    chosen = {id(lookup): lookup for lookup in lookups if cited.intersection(lookup.frames)}
    end = session.flow.last_time_ns
    for _ in range(MAX_FOLLOW):
        wanted = {
            (lookup.client, record.value)
            for lookup in chosen.values()
            if lookup.response is not None
            for record in (*lookup.response.answers, *lookup.response.additional)
            if record.type in POINTERS and record.value
        }
        more = {
            id(lookup): lookup
            for lookup in lookups
            if id(lookup) not in chosen
            and (lookup.client, lookup.name) in wanted
            and lookup.time_ns <= end
        }
        if not more:
            break
        chosen |= more
    return [lookup for lookup in lookups if id(lookup) in chosen]


def lookup_frames(lookups: Sequence[Lookup]) -> set[int]:
    """Every frame of these lookups: each try and the response."""
    return {frame for lookup in lookups for frame in lookup.frames}

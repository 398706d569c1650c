"""``diff --same-session``: one session seen at two points, and what a box between them did.

The first capture is the client side, the second the server side (swapped, with a note,
when the TTLs say the user gave them the other way round). This module picks and pairs the
session and writes the verdict; ``middlebox`` says what happened between the two points.
"""

from __future__ import annotations

from pcapsmtp.analysis import CaptureResult
from pcapsmtp.diagnose.model import Severity
from pcapsmtp.smtp.model import Session

from .align import align
from .compare import aligned_steps, findings_only, first_divergence
from .middlebox import SIDES, count, transit_facts
from .model import SAME_SESSION, Diff, Side, TransitFact
from .names import PAIRING_NAMES, named_findings
from .pairing import pair_views
from .parameters import capture_point, parameters
from .pick import DiffError, session_findings
from .segments import read_views


def compare_points(
    path_a: str,
    result_a: CaptureResult,
    path_b: str,
    result_b: CaptureResult,
    session_a: int | None,
    session_b: int | None,
) -> Diff:
    views_a = read_views(path_a, [s.flow for s in result_a.sessions])
    views_b = read_views(path_b, [s.flow for s in result_b.sessions])
    sessions_a, sessions_b = result_a.sessions, result_b.sessions
    pairs = pair_views(views_a, views_b, lambda i, j: same_dialogue(sessions_a[i], sessions_b[j]))
    i, j, method = _choose(result_a, result_b, pairs, path_a, path_b, session_a, session_b)
    sa, sb = result_a.sessions[i], result_b.sessions[j]
    notes = []
    if capture_point(sa) == "server" and capture_point(sb) == "client":
        notes.append(
            f"The TTLs say {path_a} was taken at the server and {path_b} at the client: "
            "they are compared the other way round."
        )
        path_a, path_b, result_a, result_b, sa, sb = path_b, path_a, result_b, result_a, sb, sa
    va = read_views(path_a, [sa.flow], record=True)[0]
    vb = read_views(path_b, [sb.flow], record=True)[0]
    a = _side("client_side", path_a, result_a, sa)
    b = _side("server_side", path_b, result_b, sb)
    diff = Diff(SAME_SESSION, a, b, pairing=method, notes=notes)
    diff.steps = aligned_steps(a, b, SIDES)
    diff.parameters = parameters(sa, sb, (a.copies, b.copies))
    diff.first_divergence = first_divergence(diff.steps)
    diff.only_in_a = findings_only(a, b)
    diff.only_in_b = findings_only(b, a)
    transit_facts(diff, va, vb)
    diff.verdict = verdict(diff)
    return diff


def _side(role: str, path: str, result: CaptureResult, session: Session) -> Side:
    return Side(
        role,
        path,
        session,
        session_findings(result.findings, session),
        capture_point(session),
        len(result.sessions),
        result.info.copy_frames,
    )


def _choose(result_a, result_b, pairs, path_a, path_b, session_a, session_b):
    """(index in a, index in b, method) of the session to compare."""
    ids_a = [s.id for s in result_a.sessions]
    ids_b = [s.id for s in result_b.sessions]
    if not pairs:
        raise DiffError(f"no SMTP session of {path_a} is also in {path_b}")
    if session_a is not None:
        if session_a not in ids_a:
            raise DiffError(f"{path_a} has no SMTP session {session_a}")
        i = ids_a.index(session_a)
        if i not in pairs:
            raise DiffError(f"session {session_a} of {path_a} is not in {path_b}")
        return i, *pairs[i]
    if session_b is not None:
        if session_b not in ids_b:
            raise DiffError(f"{path_b} has no SMTP session {session_b}")
        j = ids_b.index(session_b)
        for i, (jj, method) in pairs.items():
            if jj == j:
                return i, j, method
        raise DiffError(f"session {session_b} of {path_b} is not in {path_a}")
    for i, (j, method) in pairs.items():
        if _troubled(result_a, result_a.sessions[i]) or _troubled(result_b, result_b.sessions[j]):
            return i, j, method
    i, (j, method) = next(iter(pairs.items()))
    return i, j, method


SAME_DIALOGUE = 0.8
"""Share of the client's commands two views must agree on to be paired without evidence."""


def same_dialogue(a: Session, b: Session) -> bool:
    """The client said (nearly) the same things in both: they may be one connection."""
    ta = [(c.verb, c.argument) for c in a.commands]
    tb = [(c.verb, c.argument) for c in b.commands]
    if not ta and not tb:
        return True
    equal = sum(1 for i, j in align(ta, tb) if i is not None and j is not None and ta[i] == tb[j])
    return equal >= SAME_DIALOGUE * max(len(ta), len(tb))


def _troubled(result: CaptureResult, session: Session) -> bool:
    return any(f.session == session.id and f.severity == Severity.ERROR for f in result.findings)


# -- verdict --------------------------------------------------------------------------------


def verdict(diff: Diff) -> str:
    a, b = diff.a, diff.b
    head = (
        f"Session {a.session.id} of {a.capture} (client side) and session {b.session.id} of "
        f"{b.capture} (server side) are the same connection, paired "
        f"{PAIRING_NAMES.get(diff.pairing, diff.pairing)}."
    )
    telling: list[TransitFact] = []
    for fact in diff.facts:
        if fact.code not in QUIET_FACTS and not _told(fact, telling):
            telling.append(fact)
    if not telling:
        hops = [t.hops for t in diff.transit if t.hops is not None]
        between = f" ({count(hops[0], 'router hop')} apart)" if hops else ""
        return (
            head + f" Nothing was lost or changed between the two points{between}: every "
            "segment seen leaving one side arrived at the other."
        )
    said = "; ".join(f.summary for f in telling[:3])
    more = f" (and {len(telling) - 3} more)" if len(telling) > 3 else ""
    named = named_findings(diff)
    names = f" In the catalogue: {', '.join(named)}." if named else ""
    return f"{head} Between the two points: {said}{more}.{names}"


def _told(fact: TransitFact, told: list[TransitFact]) -> bool:
    """Its evidence frames are all in a fact already told (a segment a forged RST answered)."""
    if not fact.frames_a and not fact.frames_b:
        return False
    return any(
        set(fact.frames_a) <= set(other.frames_a) and set(fact.frames_b) <= set(other.frames_b)
        for other in told
    )


QUIET_FACTS = frozenset({"nat", "isn-rewritten"})
"""Facts that are ordinary (NAT) and left out of the verdict, though listed."""

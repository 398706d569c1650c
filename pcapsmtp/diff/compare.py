"""Comparing two sessions: aligned steps with their divergences, findings on one side only,
the first point where the failing session departs from the working one, and the verdict."""

from __future__ import annotations

from pcapsmtp.diagnose import Finding
from pcapsmtp.smtp import codes
from pcapsmtp.smtp.model import Outcome
from pcapsmtp.smtp.software import is_masked_banner, masked_ehlo_keywords

from .align import TOLERATED_GAPS, align
from .model import COMPARE, AlignedStep, Diff, Divergence, Parameter, Side, Step, Value
from .names import describe, step_name
from .parameters import parameters
from .steps import session_steps

MAX_STEPS = 2000
"""Steps per side given to the alignment (quadratic): longer dialogues are cut."""
SLOWER_FACTOR = 5
SLOWER_MIN_NS = 1_000_000_000
"""A reply is 'slower' when it took five times as long and at least a second more."""


def steps_of(side: Side) -> list[Step]:
    steps = session_steps(side.session, side.copies)
    if len(steps) > MAX_STEPS:
        steps = steps[: MAX_STEPS - 1] + steps[-1:]
    return steps


def aligned_steps(a: Side, b: Side, names: tuple[str, str]) -> list[AlignedStep]:
    """Both dialogues aligned, each step marked with how it diverges."""
    sa, sb = steps_of(a), steps_of(b)
    pairs = align([(s.key, s.argument) for s in sa], [(s.key, s.argument) for s in sb])
    hidden = (_hidden_after_tls(a.session), _hidden_after_tls(b.session))
    inside_tls = [False, False]
    out = []
    for index, (i, j) in enumerate(pairs, start=1):
        step_a = sa[i] if i is not None else None
        step_b = sb[j] if j is not None else None
        found = divergence(step_a, step_b, names)
        absent = 0 if step_a is None else 1 if step_b is None else None
        if absent is not None and inside_tls[absent]:
            present = step_a or step_b
            found = Divergence(
                "encrypted",
                False,
                f"{present.label} not visible in the {names[absent]} session, "
                "which goes on inside TLS",
            )
        for side, step in enumerate((step_a, step_b)):
            if step is not None and step.key == "tls" and hidden[side]:
                inside_tls[side] = True
        out.append(AlignedStep(index, step_a, step_b, found))
    return out


def _hidden_after_tls(session) -> bool:
    """The dialogue goes on inside TLS and the capture cannot show it."""
    tls = session.tls
    if tls is None or tls.failed:
        return False
    return not any(command.frame > tls.frame for command in session.commands)


def divergence(a: Step | None, b: Step | None, names: tuple[str, str]) -> Divergence | None:
    """How step b departs from step a; ``names`` say what to call the sides ('working',
    'failing'). The kind is the first major difference, else the first difference."""
    if a is None or b is None:
        present = a or b
        side = names[0] if a is not None else names[1]
        kind = "only-in-a" if a is not None else "only-in-b"
        if present.key == "unsolicited":
            detail = (
                f"a reply nobody asked for, {_reply(present.reply)}, only in the {side} session"
            )
        else:
            detail = f"{present.label} only in the {side} session"
            if present.reply is not None:
                detail += f" (answered {_reply(present.reply)})"
        return Divergence(kind, present.key not in TOLERATED_GAPS, detail)
    if a.key == "end":
        found = _end_differences(a, b, names)
        prefix = ""
    else:
        found = _differences(a, b, names[0])
        prefix = f"{names[1]} session: "
    if not found:
        return None
    major = [d for d in found if d[1]]
    kind = (major or found)[0][0]
    return Divergence(kind, bool(major), prefix + "; ".join(d[2] for d in found))


def _differences(a: Step, b: Step, wa: str) -> list[tuple[str, bool, str]]:
    """(kind, major, phrase) for each way step b differs from step a."""
    if a.hidden or b.hidden:
        if a.hidden and b.hidden:
            return []
        where = b.note if b.hidden else f"{wa} session: {a.note}"
        return [("not-visible", False, f"not visible ({where})")]
    found = []
    if a.key != b.key:
        found.append(("command", False, f"{b.key} where the {wa} session used {a.key}"))
    ra, rb = a.reply, b.reply
    if b.incomplete and not a.incomplete:
        # Bytes the capture lost, with the reply in the same hole, are the capture's doing.
        major = not b.reply_lost if rb is None else not codes.is_positive(rb.code)
        found.append(("incomplete", major, b.note or "incomplete"))
    if ra is not None and rb is None and b.reply_lost:
        found.append(("not-captured", False, f"{b.reply_lost} ({wa}: {_reply(ra)})"))
    elif ra is not None and rb is None:
        found.append(("no-reply", True, f"no reply ({wa}: {_reply(ra)})"))
    elif ra is None and rb is not None:
        major = not codes.is_positive(rb.code)
        lost = f"no reply: {a.reply_lost}" if a.reply_lost else "no reply"
        found.append(("reply", major, f"{_reply(rb)} ({wa}: {lost})"))
    elif ra is not None and rb is not None:
        found += _reply_differences(ra, rb, wa, related=a.key != b.key)
    trouble = _trouble(a, b)
    if trouble:
        found.append(("tcp", False, f"{trouble} ({wa}: none)"))
    if a.key == "greeting" and ra and rb and ra.text != rb.text:
        masked = is_masked_banner(rb.text) and not is_masked_banner(ra.text)
        found.append(
            ("banner", False, "a banner masked with asterisks" if masked else "another banner")
        )
    if a.key in ("EHLO", "HELO") and ra and rb:
        found += _extension_differences(ra, rb)
    slower = _slower(a, b)
    if slower:
        found.append(("slower", False, f"the reply took {slower[1]} ({wa}: {slower[0]})"))
    return found


def _trouble(a: Step, b: Step) -> str:
    """TCP trouble during step b that step a did not have: '7 retransmissions, 1 resets'."""
    trouble = {k: v for k, v in b.tcp.items() if v and not a.tcp.get(k)}
    return ", ".join(f"{v} {TROUBLE_NAMES[k][v == 1]}" for k, v in trouble.items())


TROUBLE_NAMES = {
    "retransmissions": ("retransmissions", "retransmission"),
    "resets": ("resets", "reset"),
    "ignored_resets": ("RSTs the connection outlived", "RST the connection outlived"),
    "zero_windows": ("zero windows", "zero window"),
    "icmp": ("ICMP errors", "ICMP error"),
}


def _reply(reply) -> str:
    enhanced = codes.parse_enhanced(reply.lines[0]) if reply.lines else None
    return f"{reply.code} {enhanced}" if enhanced else str(reply.code)


def _reply_differences(ra, rb, wa: str, related: bool = False) -> list[tuple[str, bool, str]]:
    """Replies to the same command; for related commands (DATA and BDAT answer 354 and 250)
    only whether each was accepted counts."""
    if related:
        if (ra.code < 400) == (rb.code < 400):
            return []
        return [("reply", True, f"{_reply(rb)} ({wa}: {_reply(ra)})")]
    if ra.code != rb.code:
        major = codes.reply_class(ra.code) != codes.reply_class(rb.code)
        return [("reply", major, f"{_reply(rb)} ({wa}: {_reply(ra)})")]
    if _reply(ra) != _reply(rb):
        return [("enhanced", False, f"{_reply(rb)} ({wa}: {_reply(ra)})")]
    return []


def _extension_differences(ra, rb) -> list[tuple[str, bool, str]]:
    ka, kb = _keywords(ra.lines), _keywords(rb.lines)
    parts = []
    masked = set(masked_ehlo_keywords(rb.lines)) - ka
    if masked:
        parts.append(f"EHLO keywords masked to X's: {' '.join(sorted(masked))}")
    if kb - ka - masked:
        parts.append(f"EHLO keywords added: {' '.join(sorted(kb - ka - masked))}")
    if ka - kb:
        parts.append(f"EHLO keywords missing: {' '.join(sorted(ka - kb))}")
    return [("extensions", False, "; ".join(parts))] if parts else []


def _keywords(lines: list[str]) -> set[str]:
    return {line.split()[0].upper() for line in lines[1:] if line.split()}


def _slower(a: Step, b: Step) -> tuple[str, str] | None:
    la, lb = a.latency_ns, b.latency_ns
    if la is None or lb is None:
        return None
    if lb >= SLOWER_FACTOR * la and lb - la >= SLOWER_MIN_NS:
        return _seconds(la), _seconds(lb)
    return None


def _seconds(ns: int) -> str:
    return f"{ns / 1e9:.1f} s" if ns >= 1e9 else f"{ns / 1e6:.1f} ms"


def _end_differences(a: Step, b: Step, names) -> list[tuple[str, bool, str]]:
    wa, wb = names
    outcome_a, outcome_b = a.outcome, b.outcome
    # 'encrypted', or one side's packets only, says only that the capture cannot see how
    # the mail went.
    unknown = Outcome.ENCRYPTED in (outcome_a, outcome_b) or a.outcome_unknown or b.outcome_unknown
    if a.argument != b.argument or (outcome_a != outcome_b and not unknown):
        return [
            (
                "ending",
                True,
                f"the {wb} session was {b.label}, outcome {outcome_b}; "
                f"the {wa} one was {a.label}, outcome {outcome_a}",
            )
        ]
    trouble = _trouble(a, b)
    if trouble:
        return [("tcp", False, f"{trouble} at the end of the {wb} session ({wa}: none)")]
    return []


def first_divergence(steps: list[AlignedStep]) -> AlignedStep | None:
    """The first step with a major divergence, else the first with any."""
    diverging = [s for s in steps if s.divergence is not None]
    major = [s for s in diverging if s.divergence.major]
    return (major or diverging or [None])[0]


def findings_only(side: Side, other: Side) -> list[Finding]:
    """Findings of ``side`` whose code ``other`` does not have, one per code."""
    theirs = {f.code for f in other.findings}
    seen: set[str] = set()
    out = []
    for finding in side.findings:
        if finding.code not in theirs and finding.code not in seen:
            seen.add(finding.code)
            out.append(finding)
    return out


def compare(good: Side, bad: Side) -> Diff:
    names = ("working", "failing")
    diff = Diff(COMPARE, good, bad)
    diff.steps = aligned_steps(good, bad, names)
    diff.parameters = parameters(good.session, bad.session, (good.copies, bad.copies))
    diff.first_divergence = first_divergence(diff.steps)
    diff.only_in_a = findings_only(good, bad)
    diff.only_in_b = findings_only(bad, good)
    if good.capture_point != bad.capture_point:
        diff.notes.append(
            f"The captures were taken at different points (working: {good.capture_point}, "
            f"failing: {bad.capture_point}), judged from TTLs: latencies and TTLs are not "
            "directly comparable."
        )
    diff.verdict = verdict(diff)
    return diff


def _side_name(side: Side) -> str:
    session = side.session
    return f"session {session.id} of {side.capture}"


def verdict(diff: Diff) -> str:
    """One short paragraph: where the failing session departs, and its own findings."""
    good, bad = diff.a, diff.b
    first = diff.first_divergence
    if first is None:
        where = (
            f"The failing {_side_name(bad)} runs step for step like the working {_side_name(good)}."
        )
    else:
        step = first.b or first.a
        detail = first.divergence.detail.removeprefix("failing session: ")
        where = (
            f"The failing {_side_name(bad)} departs from the working {_side_name(good)} "
            f"at step {first.index}, {step_name(step)}: {detail}."
        )
    if diff.only_in_b:
        listed = "; ".join(f"{f.code} ({f.summary})" for f in diff.only_in_b)
        found = f" Findings only in the failing session: {listed}."
    else:
        found = " No finding is present only in the failing session."
    by_name = {p.name: p for p in diff.parameters}
    unseen = _unseen(good.session) | _unseen(bad.session)
    differing = [
        _parameter_phrase(p, _roles_to_name(p, by_name, unseen))
        for p in diff.parameters
        if p.name in KEY and _roles_to_name(p, by_name, unseen) != []
    ]
    params = f" Also different: {'; '.join(differing)}." if differing else ""
    return where + found + params


def _notable(a: Value, b: Value) -> bool:
    """Different enough to name: numbers half again as large, anything else unequal."""
    if isinstance(a, dict) and isinstance(b, dict):
        return any(_notable(a.get(k), b.get(k)) for k in a.keys() | b.keys())
    if isinstance(a, int) and isinstance(b, int) and not isinstance(a, bool):
        return max(a, b) >= 1.5 * min(a, b) and a != b
    return a != b


def _unseen(session) -> set[str]:
    """The side whose packets a one-sided capture lacks: its values are unknown, not
    different."""
    return {session.one_sided.peer} if session.one_sided is not None else set()


def _roles_to_name(parameter: Parameter, by_name: dict, unseen: set[str]) -> list[str] | None:
    """The roles whose values differ enough to name ([] for none), None for a value that
    has no roles. The largest acknowledged segment counts only where the failing side sent
    larger segments than were acknowledged: a session that never sent its message has
    nothing large to acknowledge. A role whose packets (or, for what was acknowledged, its
    peer's) a capture lacks is not named."""
    a, b = parameter.a, parameter.b
    if not (isinstance(a, dict) and isinstance(b, dict) and set(a) == {"client", "server"}):
        return None if _notable(a, b) else []
    roles = [role for role in ("client", "server") if _notable(a[role], b[role])]
    if parameter.name == "max_acked_segment":
        sent = by_name["max_segment"].b
        roles = [role for role in roles if (sent[role] or 0) > (b[role] or 0)]
        return [role for role in roles if OTHER[role] not in unseen]
    return [role for role in roles if role not in unseen]


OTHER = {"client": "server", "server": "client"}


def _parameter_phrase(parameter: Parameter, roles: list[str] | None) -> str:
    """'largest segment acknowledged from the client: 1448 working, 35 failing'."""
    name, a, b = KEY[parameter.name], parameter.a, parameter.b
    if roles is None:
        return f"{name}: {describe(a)} working, {describe(b)} failing"
    return "; ".join(
        f"{name} from the {role}: {describe(a[role])} working, {describe(b[role])} failing"
        for role in roles
    )


KEY = {
    "mss": "MSS",
    "wscale": "window scale",
    "sack": "SACK",
    "timestamps": "timestamps",
    "df": "Don't Fragment",
    "max_acked_segment": "largest segment acknowledged",
    "resets": "resets",
    "fragments": "IP fragments",
    "icmp": "ICMP errors",
    "tls_version": "TLS version",
}
"""Parameters the verdict names when they differ (addresses and sizes differ all the time)."""

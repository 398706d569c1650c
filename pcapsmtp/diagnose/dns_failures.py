"""The findings dns-lookup-failed and dns-timeout (pcapsmtp.diagnose.dns ``failed_lookups``):
what failed, what the answer means, what an MTA does about it, and what to check."""

from __future__ import annotations

from pcapsmtp.capture.addresses import address
from pcapsmtp.diagnose.dns_answers import TIMEOUT_NS, Answers, answered_later, is_late
from pcapsmtp.diagnose.dns_evidence import dig, resolver, tie, wireshark
from pcapsmtp.diagnose.dns_sessions import checked_sender, ptr_session_of, sessions_for_domain
from pcapsmtp.diagnose.evidence import seconds
from pcapsmtp.diagnose.model import ERROR, INFO, WARNING, Finding
from pcapsmtp.dns.model import (
    NOERROR,
    NXDOMAIN,
    REFUSED,
    SERVFAIL,
    TYPE_MX,
    TYPE_PTR,
    Lookup,
    rcode_name,
    type_name,
)
from pcapsmtp.smtp.model import Session


def _what_failed(lookup: Lookup) -> str:
    tries = len(lookup.queries)
    tried = f"{tries} {'try' if tries == 1 else 'tries'}"
    if lookup.response is None:
        return f"no answer ({tried})"
    if is_late(lookup):
        late = lookup.response.time_ns - lookup.queries[-1].time_ns
        answer = f"{rcode_name(lookup.rcode)} came {seconds(late)} after the last"
        return f"no answer within {seconds(TIMEOUT_NS)} ({tried}; {answer})"
    if lookup.rcode == NOERROR:
        return "no address (NOERROR, empty answer)"
    return rcode_name(lookup.rcode)


RCODE_MEANING = {
    NXDOMAIN: "the name does not exist",
    SERVFAIL: "the resolver could not get an answer (the domain's name servers unreachable, "
    "broken or DNSSEC validation failed)",
    REFUSED: "the resolver refused to answer this client (its access control)",
}


def failed_finding(group, same, answers, sessions, clients) -> Finding:
    first = group[0]
    later = answered_later(group[-1], same, answers)
    timed_out = all(g.response is None or is_late(g) for g in group)
    code = "dns-timeout" if timed_out else "dns-lookup-failed"
    results = sorted({_what_failed(g) for g in group})
    frames = [frame for g in group for frame in g.frames]
    ptr_session = ptr_session_of(first, clients)
    checked = checked_sender(first, sessions) if ptr_session is None else None
    types = list(dict.fromkeys(type_name(g.qtype) for g in group))
    question = f"{first.name or '.'} {', '.join(types)}"
    if ptr_session is not None:
        role = f"the reverse lookup of SMTP client {address(ptr_session.client.ip)}"
        severity = INFO if first.rcode == NXDOMAIN else WARNING
        session = ptr_session
    elif checked is not None:
        role = f"the sender domain of session {checked.id}, checked by its server"
        severity = WARNING if later is not None else ERROR
        session = checked
    else:
        role = _mail_role(first, answers)
        severity = WARNING if later is not None else ERROR
        affected = sessions_for_domain(sessions, first) if first.qtype == TYPE_MX else []
        session = affected[0] if affected else None
    if later is not None:
        frames.extend(later.frames)
    summary = f"DNS {question} ({role}) failed: {', '.join(results)}"
    if later is not None:
        summary += f"; answered {seconds(later.time_ns - first.time_ns)} later"
    meaning = RCODE_MEANING.get(first.rcode) if not timed_out else None
    detail = (
        f"{address(first.client)} asked resolver {resolver(first)} for {question} "
        f"{len(group)} time(s) (frames {', '.join(map(str, frames[:10]))}): "
        f"{', '.join(results)}"
        + (f": {meaning}" if meaning else "")
        + ". "
        + _consequence(first, ptr_session, later, checked is not None)
        + f" In Wireshark: {wireshark(first)}."
    )
    steps = [
        f"Ask the same resolver: {dig(first)}; then ask without it ({dig(first, False)} "
        "from another network) to tell a resolver fault from the domain's own",
    ]
    if first.qtype != TYPE_PTR:
        steps.append(
            f"Check the domain's delegation and its name servers: `dig +trace "
            f"{type_name(first.qtype)} {first.name}`"
        )
    else:
        steps.append(
            "Ask the owner of the client's address block to publish a PTR that matches an A "
            "record (forward-confirmed reverse DNS): many servers refuse or delay clients without"
        )
    return tie(Finding(code, severity, summary, detail, frames=frames, next_steps=steps), session)


def _mail_role(lookup: Lookup, answers: Answers) -> str:
    if lookup.qtype == TYPE_MX:
        return "the mail exchangers of the recipient domain"
    for domain, hosts in answers.mx.items():
        if lookup.name in {host for _, host in hosts}:
            return f"the address of {domain}'s MX host"
    return "the domain's own address, used when it has no MX"


def _consequence(
    lookup: Lookup, ptr_session: Session | None, later: Lookup | None, sender_check: bool
) -> str:
    if sender_check:
        return (
            "A server that checks senders refuses mail from a domain that does not resolve "
            "(Postfix reject_unknown_sender_domain: 'Sender address rejected: Domain not "
            "found', 5.1.8 for NXDOMAIN, 4.1.8 for a temporary failure)."
        )
    if ptr_session is not None:
        return (
            "Servers that require reverse DNS refuse such clients (Postfix "
            "reject_unknown_reverse_client_hostname: 450 4.7.25; a temporary failure gives "
            "450 4.7.1) or score them as spam."
        )
    if later is not None:
        return "A later lookup got the answer: the failure was transient, and delayed the mail."
    if lookup.rcode == NXDOMAIN:
        return (
            "An MTA bounces the mail for good (Postfix: 'Host or domain name not found', "
            "5.1.2 / 5.4.4)."
        )
    return (
        "An MTA keeps the mail and retries later (Postfix: 'Host or domain name not found. "
        "Name service error ... type=" + type_name(lookup.qtype) + "', 4.4.3)."
    )


def retried_finding(group: list[Lookup]) -> Finding:
    first = group[0]
    tries = max(len(g.queries) for g in group)
    took = max(g.duration_ns or 0 for g in group)
    frames = [frame for g in group for frame in g.frames]
    return Finding(
        "dns-timeout",
        WARNING,
        f"DNS {first.question} answered only after {tries} tries ({seconds(took)})",
        f"{address(first.client)} asked resolver {resolver(first)} for {first.question}; "
        f"the first {tries - 1} tr{'y' if tries == 2 else 'ies'} went unanswered and the "
        f"answer came {seconds(took)} after the first: every mail to this domain waits as "
        f"long. In Wireshark: {wireshark(first)}.",
        frames=frames,
        next_steps=[
            f"Time the resolver: {dig(first)} (a 'Query time' of seconds, or none, "
            "confirms it); check the path to it and its load",
        ],
    )

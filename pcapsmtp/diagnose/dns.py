"""DNS in the capture: what went wrong in the lookups an MTA made for its mail.

A capture taken with ``tcpdump -i any`` on a mail server holds its DNS. A sending MTA asks
for the recipient domain's MX, then the MX hosts' addresses (RFC 5321 5.1: with no MX, the
domain's own address; a "null MX", RFC 7505, says the domain takes no mail); a receiving
server asks for its client's PTR (and its blocklists) before it greets. Only these mail
lookups are judged: a capture also holds a desktop's or a resolver's other traffic, whose
NXDOMAINs (blocklist misses, search-list expansions) are normal.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterator, Sequence

from pcapsmtp.capture.addresses import address
from pcapsmtp.diagnose.dns_answers import (
    Answers,
    by_name,
    is_late,
    is_mail_lookup,
    mail_names_of,
    no_address,
    timed_out,
)
from pcapsmtp.diagnose.dns_failures import failed_finding, retried_finding
from pcapsmtp.diagnose.dns_greeting import (
    GreetingLookups,
    about_client,
    covered,
    slow_greeting_finding,
)
from pcapsmtp.diagnose.dns_mx import destinations, implicit_mx, mismatch, null_mx
from pcapsmtp.diagnose.dns_sessions import ClientSessions, ptr_session_of
from pcapsmtp.diagnose.model import Finding
from pcapsmtp.diagnose.registry import capture_rule, session_rule
from pcapsmtp.dns.model import NOERROR, NXDOMAIN, REFUSED, SERVFAIL, TYPE_MX, Lookup
from pcapsmtp.smtp.model import Session

SLOW_GREETING_NS = 10**9
"""Lookups between a client's SYN and the greeting that took this long (together) and at
least half the wait are named: normal servers greet within a second."""
FAILED_RCODES = (SERVFAIL, NXDOMAIN, REFUSED)


# -- dns-lookup-failed, dns-timeout -----------------------------------------------------------
@capture_rule("dns-lookup-failed", "dns-timeout")
def failed_lookups(sessions: list[Session], context) -> Iterator[Finding]:
    """A mail lookup (MX; A/AAAA of a mail domain or MX host) answered NXDOMAIN, SERVFAIL,
    REFUSED or with no address at all, or never answered; a PTR lookup a server made about
    one of its SMTP clients that failed. One finding per name (its MX, A and AAAA together)."""
    lookups = context.dns
    if not lookups:
        return
    answers = Answers(lookups)
    mail_names = mail_names_of(lookups, answers)
    clients = ClientSessions(sessions)
    end_ns = context.info.last_time_ns
    answering = {lookup.server for lookup in lookups if lookup.response is not None}
    failed: dict[tuple, list[Lookup]] = {}
    slow: dict[tuple, list[Lookup]] = {}
    for lookup in lookups:
        question = lookup.name
        mail = is_mail_lookup(lookup, mail_names)
        ptr_client = ptr_session_of(lookup, clients)
        if not mail and ptr_client is None:
            continue
        if lookup.response is None or is_late(lookup):
            # A capture that lacks the responses (one-sided) shows queries without answers
            # too: a client that retried, or a resolver that answered others, tells them apart.
            retried = len(lookup.queries) > 1
            if is_late(lookup) or (
                (timed_out(lookup, end_ns) or retried) and (retried or lookup.server in answering)
            ):
                failed.setdefault(question, []).append(lookup)
        elif lookup.rcode in FAILED_RCODES or no_address(lookup, answers):
            failed.setdefault(question, []).append(lookup)
        elif len(lookup.queries) > 1 and mail:
            slow.setdefault(question, []).append(lookup)
    names = by_name(lookups)
    for name, group in failed.items():
        yield failed_finding(group, names[name], answers, sessions, clients)
    for group in slow.values():
        yield retried_finding(group)


# -- dns-no-mx ----------------------------------------------------------------------------------
@capture_rule("dns-no-mx")
def no_mx(sessions: list[Session], context) -> Iterator[Finding]:
    """An MX lookup answered NOERROR without MX records (RFC 5321 5.1: the domain's own
    address is used, the "implicit MX"), or with a null MX (RFC 7505: no mail at all)."""
    lookups = context.dns
    if not lookups:
        return
    answers = Answers(lookups)
    seen: set[tuple[bytes, str]] = set()
    for lookup in lookups:
        if lookup.qtype != TYPE_MX or lookup.rcode != NOERROR or lookup.response.truncated:
            continue
        if (lookup.client, lookup.name) in seen:
            continue
        records = lookup.records(TYPE_MX)
        if len(records) == 1 and records[0].value == "" and records[0].preference == 0:
            seen.add((lookup.client, lookup.name))
            yield null_mx(lookup, sessions)
        elif not records:
            seen.add((lookup.client, lookup.name))
            yield implicit_mx(lookup, answers)


# -- dns-mx-mismatch ------------------------------------------------------------------------
@capture_rule("dns-mx-mismatch")
def mx_mismatch(sessions: list[Session], context) -> Iterator[Finding]:
    """A session to an address that is none of the recipient domain's MX hosts' addresses
    (or, with no MX, the domain's own) per the answers the same client got before."""
    lookups = context.dns
    if not lookups:
        return
    answers = Answers(lookups)
    mx = [lk for lk in lookups if lk.qtype == TYPE_MX and lk.rcode == NOERROR and not is_late(lk)]
    if not mx:
        return
    for session in sessions:
        server = address(session.server.ip)
        for lookup, wanted in destinations(session, mx, answers):
            if wanted and server not in wanted:
                yield mismatch(session, lookup, wanted, answers)
                break


# -- dns-slow-greeting ---------------------------------------------------------------------
@session_rule("dns-slow-greeting")
def slow_greeting_of(session: Session, context) -> Iterator[Finding]:
    """The server's own lookups (PTR of the client, blocklists, ...) between the client's SYN
    and the greeting took SLOW_GREETING_NS or more and half the wait: a slow resolver is why
    the greeting was late.

    A session rule over the capture's lookups indexed once (``GreetingLookups``): it sees
    each session as the diagnosis reads it. As a rule over the whole capture it read back
    every spooled session whose server made a lookup a second time (526 of 794 in the 200
    MB capture, 0.035 s of its 0.27 s diagnosis)."""
    if session.greeting is None:
        return
    found = context.memo.get("dns-slow-greeting")
    if found is None:
        found = context.memo["dns-slow-greeting"] = GreetingLookups(context.dns)
    if not found.lookups or not found.maybe_made_by(session.server.ip):
        return
    start = session.flow.syn_time_ns or session.flow.first_time_ns
    greeted = session.greeting.time_ns
    window = found.lookups[bisect_left(found.times, start) : bisect_right(found.times, greeted)]
    mine = about_client(session, window)
    spans = [
        (lk.time_ns, min(lk.response.time_ns if lk.response else greeted, greeted)) for lk in mine
    ]
    spent = covered(spans)
    wait = greeted - start
    if spent >= SLOW_GREETING_NS and spent * 2 >= wait:
        yield slow_greeting_finding(session, mine, spent, wait)


def slow_greeting(sessions: Sequence[Session], context) -> Iterator[Finding]:
    """``slow_greeting_of`` over a capture's sessions: what the diagnosis finds."""
    for session in sessions:
        yield from slow_greeting_of(session, context)

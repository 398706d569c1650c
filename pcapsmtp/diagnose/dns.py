"""DNS in the capture: what went wrong in the lookups an MTA made for its mail.

A capture taken with ``tcpdump -i any`` on a mail server holds its DNS. A sending MTA asks
for the recipient domain's MX, then the MX hosts' addresses (RFC 5321 5.1: with no MX, the
domain's own address; a "null MX", RFC 7505, says the domain takes no mail); a receiving
server asks for its client's PTR (and its blocklists) before it greets. Only these mail
lookups are judged: a capture also holds a desktop's or a resolver's other traffic, whose
NXDOMAINs (blocklist misses, search-list expansions) are normal.
"""

from __future__ import annotations

import ipaddress
from bisect import bisect_left, bisect_right
from collections.abc import Iterator, Sequence

from pcapsmtp.capture.addresses import address
from pcapsmtp.diagnose.coverage import ended_well
from pcapsmtp.diagnose.evidence import seconds
from pcapsmtp.diagnose.model import ERROR, INFO, WARNING, Finding
from pcapsmtp.diagnose.registry import capture_rule, session_rule
from pcapsmtp.dns.model import (
    ADDRESS_TYPES,
    NOERROR,
    NXDOMAIN,
    REFUSED,
    SERVFAIL,
    TYPE_CNAME,
    TYPE_MX,
    TYPE_PTR,
    Lookup,
    rcode_name,
    type_name,
)
from pcapsmtp.smtp.model import Session

TIMEOUT_NS = 5 * 10**9
"""A query unanswered this long has timed out: the resolver library's timeout per try
(resolv.conf(5) ``timeout:5``; Postfix and Exim use the system resolver's)."""
SLOW_GREETING_NS = 10**9
"""Lookups between a client's SYN and the greeting that took this long (together) and at
least half the wait are named: normal servers greet within a second."""
FAILED_RCODES = (SERVFAIL, NXDOMAIN, REFUSED)
MAX_CNAME_CHAIN = 8
RECENT_MX_NS = 60 * 10**9
"""Without a visible recipient, an MX lookup this shortly before a connection is taken as
the one it followed, when it is the only one."""


# -- what the capture's answers say ---------------------------------------------------------
class Answers:
    """Every name -> address and MX fact the capture's responses hold (answer and
    additional sections), CNAMEs followed."""

    def __init__(self, lookups: list[Lookup]) -> None:
        self.addresses: dict[str, set[str]] = {}
        self.cnames: dict[str, str] = {}
        self.mx: dict[str, list[tuple[int, str]]] = {}
        for lookup in lookups:
            if lookup.response is None or lookup.rcode != NOERROR:
                continue
            for record in (*lookup.response.answers, *lookup.response.additional):
                if record.type in ADDRESS_TYPES and record.value:
                    self.addresses.setdefault(record.name, set()).add(record.value)
                elif record.type == TYPE_CNAME and record.value:
                    self.cnames[record.name] = record.value
                elif record.type == TYPE_MX and record.name:
                    self.mx.setdefault(record.name, []).append(
                        (record.preference or 0, record.value)
                    )

    def canonical(self, name: str) -> str:
        for _ in range(MAX_CNAME_CHAIN):
            if name not in self.cnames:
                break
            name = self.cnames[name]
        return name

    def addresses_of(self, name: str) -> set[str]:
        return self.addresses.get(self.canonical(name), set())

    def mx_hosts(self, domain: str) -> list[str]:
        return [host for _, host in sorted(set(self.mx.get(self.canonical(domain), [])))]


def _mail_names(lookups: list[Lookup], answers: Answers) -> set[str]:
    """Names whose lookups carry mail: domains asked for MX, and the MX hosts named."""
    domains = {lookup.name for lookup in lookups if lookup.qtype == TYPE_MX}
    hosts = {host for domain in domains for host in answers.mx_hosts(domain) if host}
    return domains | hosts


def _is_mail_lookup(lookup: Lookup, mail_names: set[str]) -> bool:
    return lookup.qtype == TYPE_MX or (lookup.qtype in ADDRESS_TYPES and lookup.name in mail_names)


def _by_name(lookups: list[Lookup]) -> dict[str, list[Lookup]]:
    found: dict[str, list[Lookup]] = {}
    for lookup in lookups:
        found.setdefault(lookup.name, []).append(lookup)
    return found


def _answered_later(lookup: Lookup, same: list[Lookup], answers: Answers) -> Lookup | None:
    """A later lookup of the same question (``same``: all of the name's) that got an answer."""
    for other in same:
        if (
            other.qtype == lookup.qtype
            and other.time_ns > lookup.time_ns
            and other.rcode == NOERROR
            and not _late(other)
            and _has_data(other, answers)
        ):
            return other
    return None


LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))


def _is_local(ip: bytes) -> bool:
    """A loopback address: a host's stub resolver (systemd-resolved at 127.0.0.53, a local
    unbound) is asked from there, and ``tcpdump -i any`` shows those lookups as the host's."""
    try:
        found = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return any(found in net for net in LOOPBACK if net.version == found.version)


def _made_by(lookup: Lookup, host: bytes) -> bool:
    return lookup.client == host or _is_local(lookup.client)


def _has_data(lookup: Lookup, answers: Answers) -> bool:
    if lookup.qtype == TYPE_MX:
        return bool(lookup.records(TYPE_MX))
    if lookup.qtype in ADDRESS_TYPES:
        return bool(lookup.records(lookup.qtype))
    return bool(lookup.response and lookup.response.answers)


def _timed_out(lookup: Lookup, end_ns: int | None) -> bool:
    """Unanswered, and the capture went on long enough after the last try to know (a
    client's retry says the same of the tries before it)."""
    if lookup.response is not None or not lookup.queries or end_ns is None:
        return False
    return end_ns - lookup.queries[-1].time_ns >= TIMEOUT_NS


def _late(lookup: Lookup) -> bool:
    """Answered, but TIMEOUT_NS or more after the last try: the client had given up."""
    if lookup.response is None or not lookup.queries:
        return False
    return lookup.response.time_ns - lookup.queries[-1].time_ns >= TIMEOUT_NS


def _resolver(lookup: Lookup) -> str:
    return address(lookup.server)


def _wireshark(lookup: Lookup) -> str:
    """The display filter of the lookup's first query and its answers. The name is kept in
    lower case, the wire's may not be (resolvers randomise its case, DNS 0x20), and
    Wireshark compares strings case-sensitively: so ``lower(dns.qry.name)``."""
    first = lookup.first
    name = lookup.name.replace("\\", "\\\\").replace('"', '\\"')
    return f'dns.id == 0x{first.id:04x} && lower(dns.qry.name) == "{name}"'


def _dig(lookup: Lookup, at_resolver: bool = True) -> str:
    server = f"@{_resolver(lookup)} " if at_resolver else ""
    if lookup.qtype == TYPE_PTR:
        reverse = _reverse_address(lookup.name)
        if reverse is not None:
            return f"`dig {server}-x {reverse}`"
    return f"`dig {server}{type_name(lookup.qtype)} {lookup.name or '.'}`"


def _reverse_address(name: str) -> str | None:
    """10.77.1.2 from 2.1.77.10.in-addr.arpa (and the ip6.arpa form)."""
    try:
        if name.endswith(".in-addr.arpa"):
            return str(ipaddress.ip_address(".".join(reversed(name[:-13].split(".")))))
        if name.endswith(".ip6.arpa"):
            nibbles = "".join(reversed(name[:-9].split(".")))
            return str(ipaddress.ip_address(int(nibbles, 16).to_bytes(16, "big")))
    except ValueError:
        return None
    return None


def _sessions_for_domain(sessions: list[Session], lookup: Lookup) -> list[Session]:
    """Sessions of the same client, after the lookup, with a recipient in its domain."""
    domain = lookup.name
    return [
        s
        for s in sessions
        if _made_by(lookup, s.client.ip)
        and s.flow.first_time_ns >= lookup.time_ns
        and domain in _recipient_domains(s)
    ]


def _recipient_domains(session: Session) -> set[str]:
    return {_domain(r.address) for t in session.transactions for r in t.rcpt_to if "@" in r.address}


def _domain(mailbox: str) -> str:
    return mailbox.rpartition("@")[2].strip("<> ").rstrip(".").lower()


def _checked_sender(lookup: Lookup, sessions: list[Session]) -> Session | None:
    """The session whose server looked up its sender's domain during it (Postfix
    reject_unknown_sender_domain, Exim verify = sender): a receiving server's check."""
    for s in sessions:
        if (
            _made_by(lookup, s.server.ip)
            and s.flow.first_time_ns <= lookup.time_ns <= s.flow.last_time_ns
            and any(t.mail_from and _domain(t.mail_from) == lookup.name for t in s.transactions)
        ):
            return s
    return None


def _tie(finding: Finding, session: Session | None) -> Finding:
    if session is not None:
        finding.session = session.id
        finding.tcp_stream = session.flow.stream
    return finding


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
    mail_names = _mail_names(lookups, answers)
    clients = _ClientSessions(sessions)
    end_ns = context.info.last_time_ns
    answering = {lookup.server for lookup in lookups if lookup.response is not None}
    failed: dict[tuple, list[Lookup]] = {}
    slow: dict[tuple, list[Lookup]] = {}
    for lookup in lookups:
        question = lookup.name
        mail = _is_mail_lookup(lookup, mail_names)
        ptr_client = _ptr_session(lookup, clients)
        if not mail and ptr_client is None:
            continue
        if lookup.response is None or _late(lookup):
            # A capture that lacks the responses (one-sided) shows queries without answers
            # too: a client that retried, or a resolver that answered others, tells them apart.
            retried = len(lookup.queries) > 1
            if _late(lookup) or (
                (_timed_out(lookup, end_ns) or retried) and (retried or lookup.server in answering)
            ):
                failed.setdefault(question, []).append(lookup)
        elif lookup.rcode in FAILED_RCODES or _no_address(lookup, answers):
            failed.setdefault(question, []).append(lookup)
        elif len(lookup.queries) > 1 and mail:
            slow.setdefault(question, []).append(lookup)
    names = _by_name(lookups)
    for name, group in failed.items():
        yield _failed_finding(group, names[name], answers, sessions, clients)
    for group in slow.values():
        yield _retried_finding(group)


class _ClientSessions:
    """Client address -> (server address, first time, position) of its sessions, gathered on
    the first question (only a PTR lookup asks). For a spooled capture the index is read off
    the digests it keeps, and only the session a lookup names is read back from disk: holding
    every session here held them all (10 GB streamed: 272 -> 878 MiB peak). Kept as three
    integers a session in one list per client, each server address once (a tuple a session
    grew with the capture's length); a list, not a machine array, since a capture's times can
    lie beyond 2^63 ns (pcapng)."""

    def __init__(self, sessions: Sequence[Session]) -> None:
        self.sessions = sessions
        self._clients: dict[bytes, list[int]] | None = None
        self._servers: dict[bytes, int] = {}
        self._names: list[bytes] = []
        """The server addresses, by their number in ``_servers``."""

    def get(self, ip: bytes) -> list[tuple[bytes, int, int]]:
        if self._clients is None:
            self._clients = {}
            kept = getattr(self.sessions, "digests", None)
            if kept is not None:
                facts = ((d.client_ip, d.server_ip, d.first_time_ns) for d in kept)
            else:
                facts = ((s.client.ip, s.server.ip, s.flow.first_time_ns) for s in self.sessions)
            servers, names = self._servers, self._names
            for position, (client, server, first_ns) in enumerate(facts):
                entries = self._clients.get(client)
                if entries is None:
                    entries = self._clients[client] = []
                number = servers.get(server)
                if number is None:
                    number = servers[server] = len(names)
                    names.append(server)
                entries.extend((number, first_ns, position))
        entries = self._clients.get(ip)
        if not entries:
            return []
        names = self._names
        return [
            (names[entries[at]], entries[at + 1], entries[at + 2])
            for at in range(0, len(entries), 3)
        ]


def _ptr_session(lookup: Lookup, clients: _ClientSessions) -> Session | None:
    """The SMTP session whose client this PTR lookup asks about, made by its server: the
    last one from that client that had begun when the lookup was made (or the first)."""
    if lookup.qtype != TYPE_PTR:
        return None
    reverse = _reverse_address(lookup.name)
    if reverse is None:
        return None
    found = [
        (first_ns, position)
        for server, first_ns, position in clients.get(ipaddress.ip_address(reverse).packed)
        if _made_by(lookup, server)
    ]
    begun = [position for first_ns, position in found if first_ns <= lookup.time_ns]
    chosen = begun[-1] if begun else (found[0][1] if found else None)
    return None if chosen is None else clients.sessions[chosen]


def _no_address(lookup: Lookup, answers: Answers) -> bool:
    """NOERROR without an address, for a name that has none in the whole capture (an A
    query answered empty while AAAA has one is normal)."""
    return (
        lookup.qtype in ADDRESS_TYPES
        and lookup.rcode == NOERROR
        and not lookup.records(lookup.qtype)
        and not answers.addresses_of(lookup.name)
        and not answers.mx_hosts(lookup.name)
    )


def _what_failed(lookup: Lookup) -> str:
    tries = len(lookup.queries)
    tried = f"{tries} {'try' if tries == 1 else 'tries'}"
    if lookup.response is None:
        return f"no answer ({tried})"
    if _late(lookup):
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


def _failed_finding(group, same, answers, sessions, clients) -> Finding:
    first = group[0]
    later = _answered_later(group[-1], same, answers)
    timed_out = all(g.response is None or _late(g) for g in group)
    code = "dns-timeout" if timed_out else "dns-lookup-failed"
    results = sorted({_what_failed(g) for g in group})
    frames = [frame for g in group for frame in g.frames]
    ptr_session = _ptr_session(first, clients)
    checked = _checked_sender(first, sessions) if ptr_session is None else None
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
        affected = _sessions_for_domain(sessions, first) if first.qtype == TYPE_MX else []
        session = affected[0] if affected else None
    if later is not None:
        frames.extend(later.frames)
    summary = f"DNS {question} ({role}) failed: {', '.join(results)}"
    if later is not None:
        summary += f"; answered {seconds(later.time_ns - first.time_ns)} later"
    meaning = RCODE_MEANING.get(first.rcode) if not timed_out else None
    detail = (
        f"{address(first.client)} asked resolver {_resolver(first)} for {question} "
        f"{len(group)} time(s) (frames {', '.join(map(str, frames[:10]))}): "
        f"{', '.join(results)}"
        + (f": {meaning}" if meaning else "")
        + ". "
        + _consequence(first, ptr_session, later, checked is not None)
        + f" In Wireshark: {_wireshark(first)}."
    )
    steps = [
        f"Ask the same resolver: {_dig(first)}; then ask without it ({_dig(first, False)} "
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
    return _tie(Finding(code, severity, summary, detail, frames=frames, next_steps=steps), session)


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


def _retried_finding(group: list[Lookup]) -> Finding:
    first = group[0]
    tries = max(len(g.queries) for g in group)
    took = max(g.duration_ns or 0 for g in group)
    frames = [frame for g in group for frame in g.frames]
    return Finding(
        "dns-timeout",
        WARNING,
        f"DNS {first.question} answered only after {tries} tries ({seconds(took)})",
        f"{address(first.client)} asked resolver {_resolver(first)} for {first.question}; "
        f"the first {tries - 1} tr{'y' if tries == 2 else 'ies'} went unanswered and the "
        f"answer came {seconds(took)} after the first: every mail to this domain waits as "
        f"long. In Wireshark: {_wireshark(first)}.",
        frames=frames,
        next_steps=[
            f"Time the resolver: {_dig(first)} (a 'Query time' of seconds, or none, "
            "confirms it); check the path to it and its load",
        ],
    )


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
            yield _null_mx(lookup, sessions)
        elif not records:
            seen.add((lookup.client, lookup.name))
            yield _implicit_mx(lookup, answers)


def _null_mx(lookup: Lookup, sessions: list[Session]) -> Finding:
    affected = _sessions_for_domain(sessions, lookup)
    return _tie(
        Finding(
            "dns-no-mx",
            ERROR,
            f"{lookup.name} publishes a null MX (RFC 7505): it accepts no mail",
            f"The MX lookup for {lookup.name} from {address(lookup.client)} was answered with a "
            "single MX of preference 0 and host '.', which says the domain takes no mail "
            "(RFC 7505). MTAs bounce mail for it at once (Postfix: 'Domain does not accept "
            f"mail (nullMX)', 5.1.10 / 556). In Wireshark: {_wireshark(lookup)}.",
            frames=lookup.frames,
            next_steps=[
                f"Confirm: {_dig(lookup)}",
                "Check the recipient address for a typo; if the domain should take mail, its "
                "owner must replace the null MX with real MX records",
            ],
        ),
        affected[0] if affected else None,
    )


def _implicit_mx(lookup: Lookup, answers: Answers) -> Finding:
    found = sorted(answers.addresses_of(lookup.name))
    fallback = (
        f"its own address {', '.join(found)} was found in the capture"
        if found
        else "no address for the domain itself is in the capture"
    )
    return Finding(
        "dns-no-mx",
        INFO,
        f"{lookup.name} has no MX record: mail goes to the domain's own address "
        "(RFC 5321 5.1 implicit MX)",
        f"The MX lookup for {lookup.name} from {address(lookup.client)} was answered NOERROR "
        f"with no MX record, so an MTA delivers to the domain's own A/AAAA (RFC 5321 5.1); "
        f"{fallback}. Many domains that do take mail publish an MX; a domain whose web host "
        f"runs no SMTP server then fails. In Wireshark: {_wireshark(lookup)}.",
        frames=lookup.frames,
        next_steps=[
            f"Confirm: {_dig(lookup)} and `dig A {lookup.name}`",
            "If the domain takes mail, its owner should publish MX records; if it takes none, "
            "a null MX (RFC 7505)",
        ],
    )


# -- dns-mx-mismatch ------------------------------------------------------------------------
@capture_rule("dns-mx-mismatch")
def mx_mismatch(sessions: list[Session], context) -> Iterator[Finding]:
    """A session to an address that is none of the recipient domain's MX hosts' addresses
    (or, with no MX, the domain's own) per the answers the same client got before."""
    lookups = context.dns
    if not lookups:
        return
    answers = Answers(lookups)
    mx = [lk for lk in lookups if lk.qtype == TYPE_MX and lk.rcode == NOERROR and not _late(lk)]
    if not mx:
        return
    for session in sessions:
        server = address(session.server.ip)
        for lookup, wanted in _destinations(session, mx, answers):
            if wanted and server not in wanted:
                yield _mismatch(session, lookup, wanted, answers)
                break


def _destinations(session: Session, mx: list[Lookup], answers: Answers):
    """(the MX lookup, the addresses its answers lead to) for the session's recipient
    domains, from the answered MX lookups ``mx``; empty addresses when some MX host's
    address is not in the capture."""
    before = [
        lookup
        for lookup in mx
        if _made_by(lookup, session.client.ip)
        and lookup.response.time_ns <= session.flow.first_time_ns
    ]
    domains = _recipient_domains(session)
    if domains:
        chosen = [lookup for lookup in before if lookup.name in domains]
    else:
        start = session.flow.first_time_ns
        recent = {lk.name: lk for lk in before if start - lk.response.time_ns <= RECENT_MX_NS}
        chosen = list(recent.values()) if len(recent) == 1 else []
    latest = {lookup.name: lookup for lookup in chosen}
    for lookup in latest.values():
        hosts = answers.mx_hosts(lookup.name) or [lookup.name]
        if hosts == [""]:
            continue  # a null MX: dns-no-mx
        wanted: set[str] = set()
        for host in hosts:
            found = answers.addresses_of(host)
            if not found:
                wanted = set()
                break
            wanted |= found
        yield lookup, wanted


def _mismatch(session: Session, lookup: Lookup, wanted: set[str], answers: Answers) -> Finding:
    server = address(session.server.ip)
    hosts = answers.mx_hosts(lookup.name) or [lookup.name]
    failed = not ended_well(session)
    frames = [*lookup.frames, session.flow.first_frame]
    return _tie(
        Finding(
            "dns-mx-mismatch",
            ERROR if failed else WARNING,
            f"the client connected to {server}, which is not an MX address of {lookup.name} "
            f"({', '.join(sorted(wanted))})",
            f"{address(lookup.client)} looked up {lookup.name} MX (frame {lookup.first.frame}): "
            f"{', '.join(hosts)}, whose addresses in the capture are "
            f"{', '.join(sorted(wanted))}; then it connected to {server} (frame "
            f"{session.flow.first_frame}). Mail went elsewhere than DNS says: a configured relay "
            "or transport, an /etc/hosts entry, a stale cache, or a box redirecting port 25. "
            + ("The session did not deliver." if failed else "The session delivered all the same.")
            + f" In Wireshark: {_wireshark(lookup)}.",
            frames=frames,
            next_steps=[
                f"Compare {_dig(lookup, False)} and the A/AAAA of its hosts with where the MTA "
                f"connects (Postfix: `postconf relayhost transport_maps`, `grep {server} "
                "/etc/hosts`)",
                "If nothing local sends it there, look for NAT or a transparent proxy on port 25",
            ],
        ),
        session,
    )


# -- dns-slow-greeting ---------------------------------------------------------------------
@session_rule("dns-slow-greeting")
def slow_greeting_of(session: Session, context) -> Iterator[Finding]:
    """The server's own lookups (PTR of the client, blocklists, ...) between the client's SYN
    and the greeting took SLOW_GREETING_NS or more and half the wait: a slow resolver is why
    the greeting was late.

    A session rule over the capture's lookups indexed once (``_GreetingLookups``): it sees
    each session as the diagnosis reads it. As a rule over the whole capture it read back
    every spooled session whose server made a lookup a second time (526 of 794 in the 200
    MB capture, 0.035 s of its 0.27 s diagnosis)."""
    if session.greeting is None:
        return
    found = context.memo.get("dns-slow-greeting")
    if found is None:
        found = context.memo["dns-slow-greeting"] = _GreetingLookups(context.dns)
    if not found.lookups or not found.maybe_made_by(session.server.ip):
        return
    start = session.flow.syn_time_ns or session.flow.first_time_ns
    greeted = session.greeting.time_ns
    window = found.lookups[bisect_left(found.times, start) : bisect_right(found.times, greeted)]
    mine = _about_client(session, window)
    spans = [
        (lk.time_ns, min(lk.response.time_ns if lk.response else greeted, greeted)) for lk in mine
    ]
    spent = _covered(spans)
    wait = greeted - start
    if spent >= SLOW_GREETING_NS and spent * 2 >= wait:
        yield _slow_greeting(session, mine, spent, wait)


def slow_greeting(sessions: Sequence[Session], context) -> Iterator[Finding]:
    """``slow_greeting_of`` over a capture's sessions: what the diagnosis finds."""
    for session in sessions:
        yield from slow_greeting_of(session, context)


class _GreetingLookups:
    """The capture's lookups that asked something, with their times (for bisect), and the
    hosts that made them: _about_client finds none for a server that made none."""

    def __init__(self, dns: list[Lookup]) -> None:
        self.lookups = [lk for lk in dns if lk.queries]
        self.times = [lk.time_ns for lk in self.lookups]
        self.makers = {lookup.client for lookup in self.lookups}
        self.local = any(_is_local(client) for client in self.makers)
        """A loopback resolver asked for every host (_made_by)."""

    def maybe_made_by(self, server: bytes) -> bool:
        return self.local or server in self.makers


def _about_client(session: Session, window: list[Lookup]) -> list[Lookup]:
    """The lookups the session's server made about its client: the PTR of its address,
    blocklist queries (the address reversed under a list's zone), and the addresses of the
    names the PTR answered (Postfix checks that they lead back). A busy server's lookups for
    its other clients are not this session's."""
    server = session.server.ip
    reverse = _reverse_name(session.client.ip)
    prefix = reverse.removesuffix(".in-addr.arpa").removesuffix(".ip6.arpa") + "."
    mine = [
        lk
        for lk in window
        if _made_by(lk, server) and (lk.name == reverse or lk.name.startswith(prefix))
    ]
    names = {r.value for lk in mine for r in lk.records(TYPE_PTR)}
    chosen = {id(lk) for lk in mine}
    return [
        lk
        for lk in window
        if id(lk) in chosen
        or (lk.name in names and lk.qtype in ADDRESS_TYPES and _made_by(lk, server))
    ]


def _reverse_name(ip: bytes) -> str:
    return ipaddress.ip_address(ip).reverse_pointer


def _covered(spans: list[tuple[int, int]]) -> int:
    """Nanoseconds covered by the union of the spans."""
    total, reach = 0, None
    for begin, end in sorted(spans):
        if reach is None or begin > reach:
            total += end - begin
            reach = end
        elif end > reach:
            total += end - reach
            reach = end
    return total


def _slow_greeting(session: Session, mine: list[Lookup], spent: int, wait: int) -> Finding:
    client = address(session.client.ip)
    slowest = max(mine, key=lambda lk: (lk.duration_ns is None, lk.duration_ns or 0))
    parts = []
    for lookup in mine:
        took = (
            f"{seconds(lookup.duration_ns)}, {rcode_name(lookup.rcode)}"
            if lookup.duration_ns is not None
            else "no answer before the greeting"
        )
        parts.append(f"{lookup.question} ({took})")
    evidence = {f for lk in mine for f in lk.frames}
    frames = sorted(evidence | {session.flow.first_frame, session.greeting.frame})
    return _tie(
        Finding(
            "dns-slow-greeting",
            WARNING,
            f"the greeting waited {seconds(wait)} for the server's DNS lookups "
            f"({seconds(spent)} of them; slowest {slowest.question})",
            f"Between the client's SYN (frame {session.flow.first_frame}) and the greeting "
            f"(frame {session.greeting.frame}) the server {address(session.server.ip)} asked "
            f"resolver {_resolver(slowest)}: {'; '.join(parts[:8])}. The lookups cover "
            f"{seconds(spent)} of the {seconds(wait)} wait: the server greets only once it "
            f"knows who {client} is (Postfix looks up the client's name and address before "
            "the 220; blocklist checks add more). Clients that give up on the greeting "
            f"(30 s in common ones) lose the mail. In Wireshark: {_wireshark(slowest)}.",
            frames=frames,
            next_steps=[
                f"Time the server's resolver: {_dig(slowest)} from the server",
                "Fix or replace the slow resolver (a local caching resolver on the mail "
                "server), or the slow authoritative servers of the client's reverse zone",
            ],
        ),
        session,
    )

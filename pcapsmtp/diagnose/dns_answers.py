"""What the capture's DNS answers say (pcapsmtp.diagnose.dns): every name's addresses and MX
hosts, CNAMEs followed, and what became of each lookup (answered with data, late, timed out)."""

from __future__ import annotations

from pcapsmtp.dns.model import ADDRESS_TYPES, NOERROR, TYPE_CNAME, TYPE_MX, Lookup

TIMEOUT_NS = 5 * 10**9
"""A query unanswered this long has timed out: the resolver library's timeout per try
(resolv.conf(5) ``timeout:5``; Postfix and Exim use the system resolver's)."""


MAX_CNAME_CHAIN = 8


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


def mail_names_of(lookups: list[Lookup], answers: Answers) -> set[str]:
    """Names whose lookups carry mail: domains asked for MX, and the MX hosts named."""
    domains = {lookup.name for lookup in lookups if lookup.qtype == TYPE_MX}
    hosts = {host for domain in domains for host in answers.mx_hosts(domain) if host}
    return domains | hosts


def is_mail_lookup(lookup: Lookup, mail_names: set[str]) -> bool:
    return lookup.qtype == TYPE_MX or (lookup.qtype in ADDRESS_TYPES and lookup.name in mail_names)


def by_name(lookups: list[Lookup]) -> dict[str, list[Lookup]]:
    found: dict[str, list[Lookup]] = {}
    for lookup in lookups:
        found.setdefault(lookup.name, []).append(lookup)
    return found


def answered_later(lookup: Lookup, same: list[Lookup], answers: Answers) -> Lookup | None:
    """A later lookup of the same question (``same``: all of the name's) that got an answer."""
    for other in same:
        if (
            other.qtype == lookup.qtype
            and other.time_ns > lookup.time_ns
            and other.rcode == NOERROR
            and not is_late(other)
            and _has_data(other, answers)
        ):
            return other
    return None


def _has_data(lookup: Lookup, answers: Answers) -> bool:
    if lookup.qtype == TYPE_MX:
        return bool(lookup.records(TYPE_MX))
    if lookup.qtype in ADDRESS_TYPES:
        return bool(lookup.records(lookup.qtype))
    return bool(lookup.response and lookup.response.answers)


def timed_out(lookup: Lookup, end_ns: int | None) -> bool:
    """Unanswered, and the capture went on long enough after the last try to know (a
    client's retry says the same of the tries before it)."""
    if lookup.response is not None or not lookup.queries or end_ns is None:
        return False
    return end_ns - lookup.queries[-1].time_ns >= TIMEOUT_NS


def is_late(lookup: Lookup) -> bool:
    """Answered, but TIMEOUT_NS or more after the last try: the client had given up."""
    if lookup.response is None or not lookup.queries:
        return False
    return lookup.response.time_ns - lookup.queries[-1].time_ns >= TIMEOUT_NS


def no_address(lookup: Lookup, answers: Answers) -> bool:
    """NOERROR without an address, for a name that has none in the whole capture (an A
    query answered empty while AAAA has one is normal)."""
    return (
        lookup.qtype in ADDRESS_TYPES
        and lookup.rcode == NOERROR
        and not lookup.records(lookup.qtype)
        and not answers.addresses_of(lookup.name)
        and not answers.mx_hosts(lookup.name)
    )

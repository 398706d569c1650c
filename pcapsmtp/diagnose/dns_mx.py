"""The findings dns-no-mx and dns-mx-mismatch (pcapsmtp.diagnose.dns ``no_mx`` and
``mx_mismatch``): a null or implicit MX, and where a session's recipient domains' MX lookups
said its mail should have gone."""

from __future__ import annotations

from pcapsmtp.capture.addresses import address
from pcapsmtp.diagnose.coverage import ended_well
from pcapsmtp.diagnose.dns_answers import Answers
from pcapsmtp.diagnose.dns_evidence import dig, tie, wireshark
from pcapsmtp.diagnose.dns_sessions import made_by, recipient_domains, sessions_for_domain
from pcapsmtp.diagnose.model import ERROR, INFO, WARNING, Finding
from pcapsmtp.dns.model import Lookup
from pcapsmtp.smtp.model import Session


def null_mx(lookup: Lookup, sessions: list[Session]) -> Finding:
    affected = sessions_for_domain(sessions, lookup)
    return tie(
        Finding(
            "dns-no-mx",
            ERROR,
            f"{lookup.name} publishes a null MX (RFC 7505): it accepts no mail",
            f"The MX lookup for {lookup.name} from {address(lookup.client)} was answered with a "
            "single MX of preference 0 and host '.', which says the domain takes no mail "
            "(RFC 7505). MTAs bounce mail for it at once (Postfix: 'Domain does not accept "
            f"mail (nullMX)', 5.1.10 / 556). In Wireshark: {wireshark(lookup)}.",
            frames=lookup.frames,
            next_steps=[
                f"Confirm: {dig(lookup)}",
                "Check the recipient address for a typo; if the domain should take mail, its "
                "owner must replace the null MX with real MX records",
            ],
        ),
        affected[0] if affected else None,
    )


def implicit_mx(lookup: Lookup, answers: Answers) -> Finding:
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
        f"runs no SMTP server then fails. In Wireshark: {wireshark(lookup)}.",
        frames=lookup.frames,
        next_steps=[
            f"Confirm: {dig(lookup)} and `dig A {lookup.name}`",
            "If the domain takes mail, its owner should publish MX records; if it takes none, "
            "a null MX (RFC 7505)",
        ],
    )


RECENT_MX_NS = 60 * 10**9
"""Without a visible recipient, an MX lookup this shortly before a connection is taken as
the one it followed, when it is the only one."""


def destinations(session: Session, mx: list[Lookup], answers: Answers):
    """(the MX lookup, the addresses its answers lead to) for the session's recipient
    domains, from the answered MX lookups ``mx``; empty addresses when some MX host's
    address is not in the capture."""
    before = [
        lookup
        for lookup in mx
        if made_by(lookup, session.client.ip)
        and lookup.response.time_ns <= session.flow.first_time_ns
    ]
    domains = recipient_domains(session)
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


def mismatch(session: Session, lookup: Lookup, wanted: set[str], answers: Answers) -> Finding:
    server = address(session.server.ip)
    hosts = answers.mx_hosts(lookup.name) or [lookup.name]
    failed = not ended_well(session)
    frames = [*lookup.frames, session.flow.first_frame]
    return tie(
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
            + f" In Wireshark: {wireshark(lookup)}.",
            frames=frames,
            next_steps=[
                f"Compare {dig(lookup, False)} and the A/AAAA of its hosts with where the MTA "
                f"connects (Postfix: `postconf relayhost transport_maps`, `grep {server} "
                "/etc/hosts`)",
                "If nothing local sends it there, look for NAT or a transparent proxy on port 25",
            ],
        ),
        session,
    )

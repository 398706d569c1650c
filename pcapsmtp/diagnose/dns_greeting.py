"""The finding dns-slow-greeting (pcapsmtp.diagnose.dns ``slow_greeting_of``): the capture's
lookups indexed by time, those a server made about its client before it greeted, and the time
they covered."""

from __future__ import annotations

import ipaddress

from pcapsmtp.capture.addresses import address
from pcapsmtp.diagnose.dns_evidence import dig, resolver, tie, wireshark
from pcapsmtp.diagnose.dns_sessions import is_local, made_by
from pcapsmtp.diagnose.evidence import seconds
from pcapsmtp.diagnose.model import WARNING, Finding
from pcapsmtp.dns.model import ADDRESS_TYPES, TYPE_PTR, Lookup, rcode_name
from pcapsmtp.smtp.model import Session


class GreetingLookups:
    """The capture's lookups that asked something, with their times (for bisect), and the
    hosts that made them: about_client finds none for a server that made none."""

    def __init__(self, dns: list[Lookup]) -> None:
        self.lookups = [lk for lk in dns if lk.queries]
        self.times = [lk.time_ns for lk in self.lookups]
        self.makers = {lookup.client for lookup in self.lookups}
        self.local = any(is_local(client) for client in self.makers)
        """A loopback resolver asked for every host (made_by)."""

    def maybe_made_by(self, server: bytes) -> bool:
        return self.local or server in self.makers


def about_client(session: Session, window: list[Lookup]) -> list[Lookup]:
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
        if made_by(lk, server) and (lk.name == reverse or lk.name.startswith(prefix))
    ]
    names = {r.value for lk in mine for r in lk.records(TYPE_PTR)}
    chosen = {id(lk) for lk in mine}
    return [
        lk
        for lk in window
        if id(lk) in chosen
        or (lk.name in names and lk.qtype in ADDRESS_TYPES and made_by(lk, server))
    ]


def _reverse_name(ip: bytes) -> str:
    return ipaddress.ip_address(ip).reverse_pointer


def covered(spans: list[tuple[int, int]]) -> int:
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


def slow_greeting_finding(session: Session, mine: list[Lookup], spent: int, wait: int) -> Finding:
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
    return tie(
        Finding(
            "dns-slow-greeting",
            WARNING,
            f"the greeting waited {seconds(wait)} for the server's DNS lookups "
            f"({seconds(spent)} of them; slowest {slowest.question})",
            f"Between the client's SYN (frame {session.flow.first_frame}) and the greeting "
            f"(frame {session.greeting.frame}) the server {address(session.server.ip)} asked "
            f"resolver {resolver(slowest)}: {'; '.join(parts[:8])}. The lookups cover "
            f"{seconds(spent)} of the {seconds(wait)} wait: the server greets only once it "
            f"knows who {client} is (Postfix looks up the client's name and address before "
            "the 220; blocklist checks add more). Clients that give up on the greeting "
            f"(30 s in common ones) lose the mail. In Wireshark: {wireshark(slowest)}.",
            frames=frames,
            next_steps=[
                f"Time the server's resolver: {dig(slowest)} from the server",
                "Fix or replace the slow resolver (a local caching resolver on the mail "
                "server), or the slow authoritative servers of the client's reverse zone",
            ],
        ),
        session,
    )

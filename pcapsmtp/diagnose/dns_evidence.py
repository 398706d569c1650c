"""What a DNS finding shows (pcapsmtp.diagnose.dns): the resolver asked, the Wireshark filter
of a lookup, the dig command that asks again, and the session a finding is tied to."""

from __future__ import annotations

from pcapsmtp.capture.addresses import address
from pcapsmtp.diagnose.dns_sessions import reverse_address
from pcapsmtp.diagnose.model import Finding
from pcapsmtp.dns.model import TYPE_PTR, Lookup, type_name
from pcapsmtp.smtp.model import Session


def resolver(lookup: Lookup) -> str:
    return address(lookup.server)


def wireshark(lookup: Lookup) -> str:
    """The display filter of the lookup's first query and its answers. The name is kept in
    lower case, the wire's may not be (resolvers randomise its case, DNS 0x20), and
    Wireshark compares strings case-sensitively: so ``lower(dns.qry.name)``."""
    first = lookup.first
    name = lookup.name.replace("\\", "\\\\").replace('"', '\\"')
    return f'dns.id == 0x{first.id:04x} && lower(dns.qry.name) == "{name}"'


def dig(lookup: Lookup, at_resolver: bool = True) -> str:
    server = f"@{resolver(lookup)} " if at_resolver else ""
    if lookup.qtype == TYPE_PTR:
        reverse = reverse_address(lookup.name)
        if reverse is not None:
            return f"`dig {server}-x {reverse}`"
    return f"`dig {server}{type_name(lookup.qtype)} {lookup.name or '.'}`"


def tie(finding: Finding, session: Session | None) -> Finding:
    if session is not None:
        finding.session = session.id
        finding.tcp_stream = session.flow.stream
    return finding

"""Who made a DNS lookup and which SMTP session it was about (pcapsmtp.diagnose.dns): a host's
own lookups or its loopback resolver's, the sessions of a recipient domain, the client a PTR
lookup asks about, the sender domain a server checked."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from pcapsmtp.dns.model import TYPE_PTR, Lookup
from pcapsmtp.smtp.model import Session

LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))


def is_local(ip: bytes) -> bool:
    """A loopback address: a host's stub resolver (systemd-resolved at 127.0.0.53, a local
    unbound) is asked from there, and ``tcpdump -i any`` shows those lookups as the host's."""
    try:
        found = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return any(found in net for net in LOOPBACK if net.version == found.version)


def made_by(lookup: Lookup, host: bytes) -> bool:
    return lookup.client == host or is_local(lookup.client)


def reverse_address(name: str) -> str | None:
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


def sessions_for_domain(sessions: list[Session], lookup: Lookup) -> list[Session]:
    """Sessions of the same client, after the lookup, with a recipient in its domain."""
    domain = lookup.name
    return [
        s
        for s in sessions
        if made_by(lookup, s.client.ip)
        and s.flow.first_time_ns >= lookup.time_ns
        and domain in recipient_domains(s)
    ]


def recipient_domains(session: Session) -> set[str]:
    return {_domain(r.address) for t in session.transactions for r in t.rcpt_to if "@" in r.address}


def _domain(mailbox: str) -> str:
    return mailbox.rpartition("@")[2].strip("<> ").rstrip(".").lower()


def checked_sender(lookup: Lookup, sessions: list[Session]) -> Session | None:
    """The session whose server looked up its sender's domain during it (Postfix
    reject_unknown_sender_domain, Exim verify = sender): a receiving server's check."""
    for s in sessions:
        if (
            made_by(lookup, s.server.ip)
            and s.flow.first_time_ns <= lookup.time_ns <= s.flow.last_time_ns
            and any(t.mail_from and _domain(t.mail_from) == lookup.name for t in s.transactions)
        ):
            return s
    return None


class ClientSessions:
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


def ptr_session_of(lookup: Lookup, clients: ClientSessions) -> Session | None:
    """The SMTP session whose client this PTR lookup asks about, made by its server: the
    last one from that client that had begun when the lookup was made (or the first)."""
    if lookup.qtype != TYPE_PTR:
        return None
    reverse = reverse_address(lookup.name)
    if reverse is None:
        return None
    found = [
        (first_ns, position)
        for server, first_ns, position in clients.get(ipaddress.ip_address(reverse).packed)
        if made_by(lookup, server)
    ]
    begun = [position for first_ns, position in found if first_ns <= lookup.time_ns]
    chosen = begun[-1] if begun else (found[0][1] if found else None)
    return None if chosen is None else clients.sessions[chosen]

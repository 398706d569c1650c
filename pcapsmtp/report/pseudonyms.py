"""``--redact-addresses``: every IP address, email address and mail domain in a report
replaced by a stable pseudonym.

Stable: one original always becomes the same pseudonym within a report (the baseline
included), numbered in order of first appearance, so sessions can still be told apart and
followed. IPv4 addresses become addresses of the documentation ranges (RFC 5737), IPv6 ones
of 2001:db8::/32 (RFC 3849), mail domains ``domain-N.example`` and the names hosts give
themselves in HELO or their greeting ``host-N.example`` (RFC 2606); a local part becomes
``user-N``. A pseudonym never equals an address of the capture.

It works on the finished report structure, every string of it, so nothing a renderer shows
can escape it: the capture's file name, reply texts, findings, filters and the command line.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterator

EMAIL = r"(?<![\w.+=-])[\w.+=-]+@(?:[\w-]+\.)+[\w-]+"
IPV6 = (
    r"(?<![\w:.])(?=[0-9A-Fa-f:.]*[0-9A-Fa-f])(?:[0-9A-Fa-f]{0,4}:){2,7}"
    r"(?:[0-9A-Fa-f]{1,4}|(?:\d{1,3}\.){3}\d{1,3})?(?![\w.]*\w)"
)
"""Candidates only: ``ipaddress`` decides (times such as 06:44:49 are no address)."""
IPV4 = r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?!\.?\d)"
ADDRESS_ALTERNATIVES = f"(?P<email>{EMAIL})|(?P<ip6>{IPV6})|(?P<ip4>{IPV4})"
ADDRESSES = re.compile(ADDRESS_ALTERNATIVES)
HOSTNAME = re.compile(r"^(?:[A-Za-z0-9-]+\.)+[A-Za-z][A-Za-z0-9-]*$")

IPV4_POOLS = ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "233.252.0.0/24", "240.0.0.0/4")


def _strings(value) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)


def _map(value, function: Callable[[str], str]):
    if isinstance(value, str):
        return function(value)
    if isinstance(value, dict):
        return {key: _map(item, function) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_map(item, function) for item in value]
    return value


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


class Pseudonyms:
    """Original -> pseudonym tables, filled on first sight."""

    def __init__(self, hostnames: set[str], originals: set[str]) -> None:
        self.hostnames = {name.lower() for name in hostnames}
        self.originals = originals
        """Every address in the report: never handed out as a pseudonym."""
        self.table: dict[str, str] = {}
        self._counts = {"user": 0, "domain": 0, "host": 0, "ip4": 0, "ip6": 0}
        self._pool4 = (ip for pool in IPV4_POOLS for ip in ipaddress.ip_network(pool).hosts())
        self._everything = ADDRESSES

    def _next(self, kind: str) -> int:
        self._counts[kind] += 1
        return self._counts[kind]

    def _fresh_ip(self, version: int) -> str:
        while True:
            if version == 4:
                candidate = str(next(self._pool4))
            else:
                candidate = str(ipaddress.ip_address("2001:db8::") + self._next("ip6"))
            if candidate not in self.originals:
                return candidate

    def ip(self, parsed) -> str:
        key = str(parsed)
        if key not in self.table:
            self.table[key] = self._fresh_ip(parsed.version)
        return self.table[key]

    def domain(self, name: str, kind: str = "domain") -> str:
        key = name.lower().rstrip(".")
        if key not in self.table:
            self.table[key] = f"{kind}-{self._next(kind)}.example"
        return self.table[key]

    def email(self, text: str) -> str:
        local, _, domain = text.rpartition("@")
        key = f"{local}@{domain.lower()}"
        if key not in self.table:
            self.table[key] = f"user-{self._next('user')}@{self.domain(domain)}"
        return self.table[key]

    def _replace(self, match: re.Match[str]) -> str:
        text = match.group()
        if match.lastgroup == "email":
            return self.email(text)
        if match.lastgroup == "name":
            return self._name(text)
        trailing = ""
        parsed = _ip(text)
        while parsed is None and text.endswith(":"):  # "from 2001:db8::5: ..." in a sentence
            text, trailing = text[:-1], trailing + ":"
            parsed = _ip(text)
        return self.ip(parsed) + trailing if parsed is not None else match.group()

    def _pattern(self) -> re.Pattern[str]:
        """Addresses, and the known mail domains and host names (longest first) as whole
        names: one pattern, so no replacement is ever looked at again."""
        names = sorted(
            {k for k in self.table if "@" not in k and _ip(k) is None} | self.hostnames,
            key=len,
            reverse=True,
        )
        if not names:
            return ADDRESSES
        alternatives = "|".join(re.escape(name) for name in names)
        name = f"(?P<name>(?<![\\w-])(?:{alternatives})(?![\\w-]))"
        return re.compile(f"{ADDRESS_ALTERNATIVES}|{name}", re.IGNORECASE)

    def text(self, value: str) -> str:
        return self._everything.sub(self._replace, value)

    def _name(self, name: str) -> str:
        name = name.lower()
        if name in self.table:
            return self.table[name]
        return self.domain(name, "host")

    def prepare(self, strings: list[str]) -> None:
        """See every address first, so domains are known before any text is rewritten (a
        greeting naming a domain that only a later MAIL FROM reveals)."""
        for value in strings:
            ADDRESSES.sub(self._replace, value)
        self._everything = self._pattern()


def hostnames(report: dict) -> set[str]:
    """Names the hosts gave themselves: HELO arguments and the servers' own names."""
    names = set()
    for party in report.get("parties", []) + (report.get("baseline") or {}).get("parties", []):
        names.update(n for n in party.get("names", []) if HOSTNAME.match(n))
    for session in report.get("sessions", []):
        helo = (session.get("smtp") or {}).get("helo") or ""
        if HOSTNAME.match(helo):
            names.add(helo)
    return names


def redact_addresses(report: dict) -> dict:
    strings = list(_strings(report))
    originals = set()
    for value in strings:
        for match in ADDRESSES.finditer(value):
            parsed = _ip(match.group().rstrip(":"))
            if parsed is not None:
                originals.add(str(parsed))
    pseudonyms = Pseudonyms(hostnames(report), originals)
    pseudonyms.prepare(strings)
    return _without_flow_hashes(_map(report, pseudonyms.text))


def _without_flow_hashes(value):
    """Community IDs set to null: a hash of the real addresses and ports would let anyone who
    guesses an address confirm it."""
    if isinstance(value, dict):
        return {
            key: None if key == "community_id" else _without_flow_hashes(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_without_flow_hashes(item) for item in value]
    return value

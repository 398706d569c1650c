"""DNS records: one message as read from the capture, and a lookup (a question, its tries
and the answer)."""

from __future__ import annotations

from dataclasses import dataclass, field

# Query types (RFC 1035 3.2.2, RFC 3596), as dpkt.dns names them.
TYPE_A = 1
TYPE_NS = 2
TYPE_CNAME = 5
TYPE_SOA = 6
TYPE_PTR = 12
TYPE_MX = 15
TYPE_AAAA = 28
TYPE_NAMES = {
    TYPE_A: "A",
    TYPE_NS: "NS",
    TYPE_CNAME: "CNAME",
    TYPE_SOA: "SOA",
    TYPE_PTR: "PTR",
    TYPE_MX: "MX",
    16: "TXT",
    33: "SRV",
    TYPE_AAAA: "AAAA",
    65: "HTTPS",
    255: "ANY",
}
ADDRESS_TYPES = (TYPE_A, TYPE_AAAA)

# Response codes (RFC 1035 4.1.1, RFC 6895 2.3).
NOERROR = 0
FORMERR = 1
SERVFAIL = 2
NXDOMAIN = 3
NOTIMP = 4
REFUSED = 5
RCODE_NAMES = {
    NOERROR: "NOERROR",
    FORMERR: "FORMERR",
    SERVFAIL: "SERVFAIL",
    NXDOMAIN: "NXDOMAIN",
    NOTIMP: "NOTIMP",
    REFUSED: "REFUSED",
}


def type_name(qtype: int) -> str:
    return TYPE_NAMES.get(qtype, f"TYPE{qtype}")


def rcode_name(rcode: int) -> str:
    return RCODE_NAMES.get(rcode, f"RCODE{rcode}")


@dataclass(slots=True, frozen=True)
class Record:
    """One resource record of a response's answer or additional section."""

    name: str
    """Owner name, lower case, without the final dot."""
    type: int
    ttl: int
    value: str
    """An address as text (A, AAAA), a host name (MX, CNAME, PTR, NS), '' for the others."""
    preference: int | None = None
    """MX only (RFC 1035 3.3.9)."""


@dataclass(slots=True)
class DnsMessage:
    """A DNS query or response (RFC 1035 4.1) as the capture carries it."""

    frame: int
    time_ns: int
    client: tuple[bytes, int]
    """(IP, port) of the side that asks: the source of a query, the destination of a response."""
    server: tuple[bytes, int]
    """(IP, port) of the side that answers (the resolver, normally port 53)."""
    id: int
    response: bool
    rcode: int
    truncated: bool
    """TC: the answer did not fit in UDP; the client asks again over TCP (RFC 7766)."""
    name: str
    """The question's name, lower case, without the final dot; '' when there is no question."""
    qtype: int
    answers: tuple[Record, ...] = ()
    additional: tuple[Record, ...] = ()


@dataclass(slots=True)
class Lookup:
    """One question a client asked a resolver: its tries (retries of an unanswered query
    included) and the response that ended it."""

    client: bytes
    server: bytes
    name: str
    qtype: int
    queries: list[DnsMessage] = field(default_factory=list)
    """Each try, in order; empty when the capture holds only the response."""
    response: DnsMessage | None = None

    @property
    def first(self) -> DnsMessage:
        return self.queries[0] if self.queries else self.response

    @property
    def time_ns(self) -> int:
        return self.first.time_ns

    @property
    def frames(self) -> list[int]:
        found = [q.frame for q in self.queries]
        if self.response is not None:
            found.append(self.response.frame)
        return found

    @property
    def duration_ns(self) -> int | None:
        """First try to the response; None when unanswered or the query is not captured."""
        if self.response is None or not self.queries:
            return None
        return self.response.time_ns - self.queries[0].time_ns

    @property
    def rcode(self) -> int | None:
        return self.response.rcode if self.response is not None else None

    def records(self, qtype: int) -> list[Record]:
        """The answer's records of a type."""
        if self.response is None:
            return []
        return [r for r in self.response.answers if r.type == qtype]

    @property
    def question(self) -> str:
        return f"{self.name or '.'} {type_name(self.qtype)}"

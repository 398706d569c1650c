"""DNS messages read with dpkt.dns (pcapsmtp.dns.wire): a datagram's bytes in, a DnsMessage
(or why not) out."""

from __future__ import annotations

import ipaddress

from pcapsmtp.capture import DnsDatagram
from pcapsmtp.dns.model import (
    TYPE_A,
    TYPE_AAAA,
    TYPE_CNAME,
    TYPE_MX,
    TYPE_NS,
    TYPE_PTR,
    DnsMessage,
    Record,
)


def parse_datagram(datagram: DnsDatagram) -> DnsMessage | str:
    """The DNS message in a UDP port-53 datagram, or why it cannot be read."""
    if len(datagram.payload) < datagram.length:
        return "cut by the snap length"
    from pcapsmtp.dns.wire import MALFORMED, Message  # here: dpkt loads with the first datagram

    try:
        message = Message(datagram.payload)
        question = message.qd[0] if message.qd else None
        answers = tuple(_record(r) for r in message.an)
        additional = tuple(_record(r) for r in message.ar)
    except MALFORMED as error:
        return f"malformed ({type(error).__name__})"
    src, dst = (datagram.src, datagram.sport), (datagram.dst, datagram.dport)
    response = bool(message.qr)
    return DnsMessage(
        frame=datagram.frame,
        time_ns=datagram.time_ns,
        client=dst if response else src,
        server=src if response else dst,
        id=message.id,
        response=response,
        rcode=message.rcode,
        truncated=bool(message.tc),
        name=_name(question.name) if question is not None else "",
        qtype=question.type if question is not None else 0,
        answers=answers,
        additional=additional,
    )


def _name(name: str) -> str:
    return name.rstrip(".").lower()


def _record(rr) -> Record:
    value, preference = "", None
    if (rr.type == TYPE_A and len(rr.rdata) == 4) or (rr.type == TYPE_AAAA and len(rr.rdata) == 16):
        value = str(ipaddress.ip_address(rr.rdata))
    elif rr.type == TYPE_MX:
        value = _name(rr.mxname)
        preference = rr.preference[0] if isinstance(rr.preference, tuple) else rr.preference
    elif rr.type == TYPE_CNAME:
        value = _name(rr.cname)
    elif rr.type == TYPE_PTR:
        value = _name(rr.ptrname)
    elif rr.type == TYPE_NS:
        value = _name(rr.nsname)
    return Record(_name(rr.name), rr.type, rr.ttl, value, preference)

"""dpkt.dns's message class, made lenient: imported by pcapsmtp.dns.parse when the first
datagram is read, so a capture without DNS never loads dpkt (tens of milliseconds of
start-up)."""

from __future__ import annotations

import struct

import dpkt

DECODED_TYPES = frozenset({1, 2, 5, 6, 12, 13, 15, 16, 28, 33, 41, 10})
"""Record types dpkt.dns decodes (A, NS, CNAME, SOA, PTR, HINFO, MX, TXT, AAAA, SRV, OPT,
NULL); it refuses a whole message holding any other (RRSIG, HTTPS, ...)."""


class Record(dpkt.dns.DNS.RR):
    """dpkt's resource record, keeping the rdata of a type dpkt does not decode as bytes
    instead of refusing the whole message (a DNSSEC-signed answer holds RRSIGs)."""

    def unpack_rdata(self, buf, off):
        if self.type in DECODED_TYPES:
            super().unpack_rdata(buf, off)


class Message(dpkt.dns.DNS):
    RR = Record


MALFORMED = (dpkt.Error, struct.error, UnicodeDecodeError, IndexError, ValueError)
"""What dpkt.dns raises on bytes that are not a DNS message."""

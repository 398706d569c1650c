"""DNS in the capture: the lookups an MTA makes for its mail (MX, A/AAAA for the recipient's
domain; PTR for a connecting client), read from the UDP port-53 datagrams the capture layer
hands on, with dpkt.dns. Knows nothing of SMTP: diagnose ties lookups to sessions."""

from pcapsmtp.dns.lookups import match_lookups, read_dns
from pcapsmtp.dns.model import DnsMessage, Lookup, Record
from pcapsmtp.dns.parse import parse_datagram

__all__ = ["DnsMessage", "Lookup", "Record", "match_lookups", "parse_datagram", "read_dns"]

"""dpkt.dns's message class, made lenient: imported by pcapsmtp.dns.parse when the first
datagram is read, so a capture without DNS never loads dpkt.

Only dpkt's ``dns``, ``dpkt`` and ``compat`` modules are loaded, under a private package
name (``pcapsmtp.dns._dpkt``) whose path is dpkt's own directory: ``import dpkt.dns`` would
run dpkt's ``__init__``, which imports every protocol module dpkt has (31-40 ms against
2-2.5 ms). They are the installed dpkt's files, unchanged; the ``dpkt`` package itself stays
untouched, so code importing it gets the whole package as usual."""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import struct
import sys
from types import ModuleType


def _dpkt_dns() -> ModuleType:
    """dpkt's ``dns`` module, without its package's ``__init__``."""
    package_name = f"{__package__}._dpkt"
    if package_name not in sys.modules:
        found = importlib.util.find_spec("dpkt")
        if found is None or not found.submodule_search_locations:
            raise ImportError("dpkt is not installed", name="dpkt")
        spec = importlib.machinery.ModuleSpec(package_name, None, is_package=True)
        package = importlib.util.module_from_spec(spec)
        package.__path__ = list(found.submodule_search_locations)
        sys.modules[package_name] = package
    return importlib.import_module(f"{package_name}.dns")


dns = _dpkt_dns()

DECODED_TYPES = frozenset({1, 2, 5, 6, 12, 13, 15, 16, 28, 33, 41, 10})
"""Record types dpkt.dns decodes (A, NS, CNAME, SOA, PTR, HINFO, MX, TXT, AAAA, SRV, OPT,
NULL); it refuses a whole message holding any other (RRSIG, HTTPS, ...)."""


class Record(dns.DNS.RR):
    """dpkt's resource record, keeping the rdata of a type dpkt does not decode as bytes
    instead of refusing the whole message (a DNSSEC-signed answer holds RRSIGs)."""

    def unpack_rdata(self, buf, off):
        if self.type in DECODED_TYPES:
            super().unpack_rdata(buf, off)


class Message(dns.DNS):
    RR = Record


MALFORMED = (dns.dpkt.Error, struct.error, UnicodeDecodeError, IndexError, ValueError)
"""What dpkt.dns raises on bytes that are not a DNS message."""

"""The classic libpcap format: its magic numbers (the core reads the records).

The record loop is in core/src/reader.rs; this module names what Python code sniffs by
(rotated sets, pcapsmtp.capture.sets) and the bound the core applies.
"""

from __future__ import annotations

import struct

from pcapsmtp import _core

# Magic numbers as they appear on disk (https://www.tcpdump.org/manpages/pcap-savefile.5.html).
TCPDUMP_MAGIC = 0xA1B2C3D4  # dpkt.pcap.TCPDUMP_MAGIC
TCPDUMP_MAGIC_NANO = 0xA1B23C4D  # dpkt.pcap.TCPDUMP_MAGIC_NANO
MAGIC_US_BE = struct.pack(">I", TCPDUMP_MAGIC)
MAGIC_US_LE = struct.pack("<I", TCPDUMP_MAGIC)
MAGIC_NS_BE = struct.pack(">I", TCPDUMP_MAGIC_NANO)
MAGIC_NS_LE = struct.pack("<I", TCPDUMP_MAGIC_NANO)
PCAP_MAGICS = {
    MAGIC_US_BE: (">", 1000),
    MAGIC_US_LE: ("<", 1000),
    MAGIC_NS_BE: (">", 1),
    MAGIC_NS_LE: ("<", 1),
}
"""Magic -> (byte order, nanoseconds per fraction unit)."""

MAX_RECORD_LEN = _core.MAX_RECORD_LEN
"""Wireshark's WTAP_MAX_PACKET_SIZE_STANDARD: a longer record means a damaged file."""

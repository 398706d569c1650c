"""The classic libpcap format: our own record loop on dpkt's header layout.

dpkt's ``pcap.Reader`` yields only ``(ts, buf)`` and so loses the original length, and
it raises mid-iteration when the file is cut inside a record header; this loop keeps
both lengths and turns damage into a warning.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import BinaryIO

from pcapsmtp.capture.model import CaptureInfo, Frame

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

FILE_HEADER_LEN = 24
FILE_HEADER = {order: struct.Struct(order + "IHHiIII") for order in "<>"}
"""magic, version major and minor, time zone, sigfigs, snap length, link type."""
RECORD_HEADER_LEN = 16
MAX_RECORD_LEN = 262144
"""Wireshark's WTAP_MAX_PACKET_SIZE_STANDARD: a longer record means a damaged file."""
LINKTYPE_MASK = 0x0FFFFFFF
"""The upper bits of the link-type field carry FCS information (pcap-savefile(5))."""


def read_pcap(stream: BinaryIO, info: CaptureInfo) -> Iterator[Frame]:
    header = stream.read(FILE_HEADER_LEN)
    order, frac_to_ns = PCAP_MAGICS[header[:4]]
    info.format = "pcap" if frac_to_ns == 1000 else "pcap-ns"
    if len(header) < FILE_HEADER_LEN:
        info.warnings.append("the file ends inside the pcap file header: no frames")
        return
    # dpkt.pcap.FileHdr's layout, unpacked with struct: importing dpkt costs ~70 ms of
    # start-up for these 24 bytes.
    _magic, _major, _minor, _zone, _sigfigs, snaplen, linktype = FILE_HEADER.get(order).unpack(
        header
    )
    linktype &= LINKTYPE_MASK
    info.snaplen = snaplen
    record_header = struct.Struct(order + "IIII")

    number = 0
    while True:
        head = stream.read(RECORD_HEADER_LEN)
        if len(head) < RECORD_HEADER_LEN:
            if head:
                info.warnings.append(
                    f"the file is cut short inside the header of record {number + 1} "
                    f"({len(head)} of {RECORD_HEADER_LEN} bytes): it was not read"
                )
            return
        sec, frac, caplen, wire_len = record_header.unpack(head)
        if caplen > MAX_RECORD_LEN:
            info.warnings.append(
                f"record {number + 1} claims {caplen} captured bytes (more than "
                f"{MAX_RECORD_LEN}): the file is damaged from there on; stopped reading "
                f"after {number} frames"
            )
            return
        data = stream.read(caplen)
        if len(data) < caplen:
            info.warnings.append(
                f"the file is cut short inside record {number + 1} ({len(data)} of "
                f"{caplen} bytes present): that frame was not read"
            )
            return
        number += 1
        yield Frame(number, sec * 1_000_000_000 + frac * frac_to_ns, linktype, data, wire_len)

"""pcapng written from a capture's frames, keeping what the input said about each of them.

The core (core/src/reader.rs) turns records into frames and keeps only what the analysis
needs: a time in nanoseconds, a link type, the bytes. A copy meant to be opened in
Wireshark must keep more: each frame's interface (its link type, snap length, name, and the
timestamp resolution and offset the time is counted in), the timestamp exactly as stored,
and the packet comments and flags already there. ``scan`` reads those facts from a pcapng
input, one per frame in the core's order (Enhanced, obsolete and Simple Packet Blocks and
systemd journal entries all count, as Wireshark counts them); ``write`` writes frames with
their facts, and the comments to add, as one little-endian pcapng section.

dpkt builds the section header, the interface descriptions and the options. The Enhanced
Packet Block is packed here: dpkt 1.9.8's ``EnhancedPacketBlock.__bytes__`` sets the original
length to the captured length, which would hide every frame a snap length cut. Options are
read here too: dpkt raises on a comment that is not UTF-8, and a hostile capture may hold one.

Not carried over on purpose: the input's section header (its comment can hold TLS keys, as
in a public capture whose comment is a key log), Decryption Secrets Blocks, interface
comments and custom options (free text nobody reviewed), statistics and name resolution
blocks (about the whole input, not the frames kept), and a packet hash (wrong once a frame
is redacted). Options of a big-endian section are re-packed little-endian: only those whose
layout is known here are kept.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

import dpkt.pcapng as ng

from pcapsmtp.capture.model import LINKTYPE_SYSTEMD_JOURNAL, Frame
from pcapsmtp.capture.pcapng import MAX_BLOCK_LEN, PCAPNG_MAGIC

BT_SHB, BT_IDB, BT_PB, BT_SPB, BT_EPB, BT_JOURNAL = 0x0A0D0D0A, 1, 2, 3, 6, 9
OPT_ENDOFOPT, OPT_COMMENT = 0, 1
IF_TSRESOL, IF_TSOFFSET = 9, 14
EPB_HASH = 3
U64 = (1 << 64) - 1

IDB_OPTIONS = {code: None for code in (2, 3, 4, 5, 6, 7, 9, 11, 12, 13, 15)} | {
    8: "Q",
    10: "I",
    14: "q",
    16: "Q",
    17: "Q",
}
"""Interface options kept: code -> the struct format to re-pack a number in another byte
order (None: bytes or text, kept as they are). if_name, if_description, addresses, MAC and
EUI, speed, tsresol, tzone, filter, os, fcslen, tsoffset, hardware, tx and rx speed."""
EPB_OPTIONS = {OPT_COMMENT: None, 2: "I", 4: "Q", 5: "Q", 6: "I"}
"""Packet options kept: comments, epb_flags (direction, FCS), drop count, packet id, queue."""

DECOMPRESSORS = {b"\x1f\x8b": gzip.open, b"BZh": bz2.open, b"\xfd7zXZ\x00": lzma.open}


class ScanError(Exception):
    """The pcapng input does not match the frames the core read from it."""


@dataclass(slots=True, frozen=True)
class Interface:
    """An interface description as written: link type, snap length, the options kept."""

    linktype: int
    snaplen: int
    options: tuple[tuple[int, bytes], ...] = ()
    """(code, little-endian value); if_tsresol and if_tsoffset among them if the input had them."""
    key: tuple[int, int] = (0, 0)
    """(section, index) in the input: two interfaces described alike stay two."""

    @property
    def tsresol(self) -> int:
        for code, value in self.options:
            if code == IF_TSRESOL and value:
                return value[0]
        return 6

    @property
    def tsoffset_ns(self) -> int:
        for code, value in self.options:
            if code == IF_TSOFFSET and len(value) >= 8:
                return struct.unpack_from("<q", value)[0] * 1_000_000_000
        return 0

    def units(self, time_ns: int) -> int:
        """A time as this interface counts it (for a frame that came without a timestamp
        of its own, or from pcap), clamped to what pcapng can hold."""
        value = self.tsresol
        exponent = value & 0x7F
        ns = time_ns - self.tsoffset_ns
        if value & 0x80:
            units = (ns << exponent) // 1_000_000_000
        elif exponent <= 9:
            units = ns // 10 ** (9 - exponent)
        else:
            units = ns * 10 ** (exponent - 9)
        return min(max(units, 0), U64)


def pcap_interface(linktype: int, snaplen: int, nanoseconds: bool) -> Interface:
    """The interface of a pcap file: its one link type, counted in µs or ns as it was."""
    return Interface(linktype & 0xFFFF, snaplen, ((IF_TSRESOL, bytes([9 if nanoseconds else 6])),))


@dataclass(slots=True)
class RecordFacts:
    """What the input's block said about one frame, beyond what the core keeps."""

    interface: Interface | None = None
    """None for a journal entry."""
    units: int | None = None
    """The timestamp as stored (None: a Simple Packet Block has none)."""
    options: list[tuple[int, bytes]] = field(default_factory=list)
    """Packet options kept (comments among them), little-endian."""
    journal: bytes | None = None
    """A systemd journal entry's body, to be written as it was."""
    block: str = "epb"


# -- reading --------------------------------------------------------------------------------


def open_decompressed(path: str) -> BinaryIO:
    """The file's bytes, undone of the compression the core also undoes (capture.files)."""
    raw = open(path, "rb")  # noqa: SIM115 - returned open
    head = raw.read(6)
    raw.seek(0)
    for magic, opener in DECOMPRESSORS.items():
        if head.startswith(magic):
            raw.close()
            return opener(path, "rb")
    return raw


def is_pcapng(path: str) -> bool:
    with open_decompressed(path) as stream:
        return stream.read(4) == PCAPNG_MAGIC


def _options(data: bytes, big: bool, kept: dict[int, str | None]) -> list[tuple[int, bytes]]:
    """Options as the core reads them (a value is cut where the options end, the first
    opt_endofopt ends them), only the ``kept`` codes, numbers re-packed little-endian."""
    order = ">" if big else "<"
    out, at = [], 0
    while at + 4 <= len(data):
        code, length = struct.unpack_from(order + "HH", data, at)
        value = data[at + 4 : at + 4 + length]
        if code == OPT_ENDOFOPT:
            break
        at += 4 + (len(value) + 3) // 4 * 4
        if code not in kept:
            continue
        fmt = kept[code]
        if fmt is not None:
            if len(value) != struct.calcsize(fmt):
                continue
            value = struct.pack("<" + fmt, *struct.unpack(order + fmt, value))
        out.append((code, value))
    return out


class Scan:
    """The facts of each frame of a pcapng file, in frame order (iterate once); ends where
    the blocks stop making sense (the core stops there too, with a warning)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.interfaces: list[Interface] = []
        """Every interface described so far, in the order of the file."""

    def __iter__(self) -> Iterator[RecordFacts]:
        return _scan(self.path, self.interfaces)


def _scan(path: str, every: list[Interface]) -> Iterator[RecordFacts]:
    with open_decompressed(path) as stream:
        big = False
        section = -1
        interfaces: list[Interface] = []
        while True:
            head = stream.read(12)
            if len(head) < 12:
                return
            if head[:4] == PCAPNG_MAGIC:
                if struct.unpack_from("<I", head, 8)[0] == ng.BYTE_ORDER_MAGIC:
                    big = False
                elif struct.unpack_from(">I", head, 8)[0] == ng.BYTE_ORDER_MAGIC:
                    big = True
                else:
                    return
            order = ">" if big else "<"
            btype, length = struct.unpack_from(order + "II", head)
            if length < 12 or length % 4 or length > MAX_BLOCK_LEN:
                return
            block = head + stream.read(length - 12)
            if len(block) < length:
                return
            if btype == BT_SHB:
                section += 1
                interfaces = []
            elif btype == BT_IDB and length >= 20:
                linktype, snaplen = struct.unpack_from(order + "H2xI", block, 8)
                options = _options(block[16:-4], big, IDB_OPTIONS)
                key = (section, len(interfaces))
                interfaces.append(Interface(linktype, snaplen, tuple(options), key))
                every.append(interfaces[-1])
            elif btype in (BT_EPB, BT_PB) and length >= 32:
                index = struct.unpack_from(order + ("I" if btype == BT_EPB else "H"), block, 8)[0]
                high, low, caplen = struct.unpack_from(order + "III", block, 12)
                if index >= len(interfaces) or caplen > length - 32:
                    return
                at = 28 + (caplen + 3) // 4 * 4
                yield RecordFacts(
                    interfaces[index],
                    high << 32 | low,
                    _options(block[at:-4], big, EPB_OPTIONS),
                    block="epb" if btype == BT_EPB else "pb",
                )
            elif btype == BT_SPB and length >= 16:
                if not interfaces:
                    return
                yield RecordFacts(interfaces[0], block="spb")
            elif btype == BT_JOURNAL:
                yield RecordFacts(journal=block[8:-4], block="journal")


# -- writing --------------------------------------------------------------------------------


@dataclass(slots=True)
class Record:
    """One frame to write: its bytes (redacted or not), its facts, the comments to add."""

    frame: Frame
    data: bytes
    facts: RecordFacts
    comments: list[str] = field(default_factory=list)
    changed: bool = False
    """The bytes differ from the input's (a packet hash would no longer hold)."""


def _option_le(code: int, value: bytes) -> bytes:
    return bytes(ng.PcapngOptionLE(code=code, data=value))


def _block(block_type: int, body: bytes) -> bytes:
    body += b"\x00" * (-len(body) % 4)
    length = len(body) + 12
    return struct.pack("<II", block_type, length) + body + struct.pack("<I", length)


def _enhanced(record: Record, index: int, units: int) -> bytes:
    options = [
        (code, value)
        for code, value in record.facts.options
        if not (code == EPB_HASH and record.changed)
    ]
    options += [(OPT_COMMENT, comment.encode("utf-8")) for comment in record.comments]
    packed = b"".join(_option_le(c, v) for c, v in options)
    if packed:
        packed += _option_le(OPT_ENDOFOPT, b"")
    data = record.data
    wire_len = min(max(record.frame.wire_len, 0), 0xFFFFFFFF)
    header = struct.pack("<IIIII", index, units >> 32, units & 0xFFFFFFFF, len(data), wire_len)
    return _block(BT_EPB, header + data + b"\x00" * (-len(data) % 4) + packed)


def section_header(comment: str | None, application: str) -> bytes:
    options = [ng.PcapngOptionLE(code=4, data=application.encode("utf-8"))]
    if comment:
        options.insert(0, ng.PcapngOptionLE(code=OPT_COMMENT, text=comment))
    options.append(ng.PcapngOptionLE(code=OPT_ENDOFOPT))
    return bytes(ng.SectionHeaderBlockLE(opts=options))


def interface_block(interface: Interface) -> bytes:
    options = [ng.PcapngOptionLE(code=c, data=v) for c, v in interface.options]
    if options:
        options.append(ng.PcapngOptionLE(code=OPT_ENDOFOPT))
    return bytes(
        ng.InterfaceDescriptionBlockLE(
            linktype=interface.linktype, snaplen=interface.snaplen, opts=options
        )
    )


def write(
    records: Iterable[Record],
    out: BinaryIO,
    comment: str | None,
    application: str,
    interfaces: Iterable[Interface] = (),
) -> None:
    """One section: the header (``comment``, ``application`` as shb_userappl), the
    ``interfaces`` given (so a whole capture keeps its interface numbers), then each other
    interface the records use in order of first use, and the records.
    A record from a Simple Packet Block becomes an Enhanced one timed like the frame before
    it (the core's time for it); a journal entry is written as it was."""
    out.write(section_header(comment, application))
    indices: dict[Interface, int] = {}
    for interface in interfaces:
        indices.setdefault(interface, len(indices))
        out.write(interface_block(interface))
    for record in records:
        facts = record.facts
        if facts.journal is not None or record.frame.linktype == LINKTYPE_SYSTEMD_JOURNAL:
            out.write(_block(BT_JOURNAL, facts.journal or b""))
            continue
        interface = facts.interface
        if interface is None:
            raise ScanError(f"frame {record.frame.number} has no interface")
        if interface not in indices:
            indices[interface] = len(indices)
            out.write(interface_block(interface))
        units = facts.units if facts.units is not None else interface.units(record.frame.time_ns)
        out.write(_enhanced(record, indices[interface], units))

"""pcapng: our own block loop, dpkt's block classes for the rare blocks.

Why not ``dpkt.pcapng.Reader``: it applies the first interface's link type to every
packet, knows one section only and skips Simple Packet Blocks, so frame numbers drift
from Wireshark's. Here every section, interface, ``if_tsresol`` and ``if_tsoffset`` is
honoured, and Enhanced, Simple and obsolete Packet Blocks all count as frames
(draft-ietf-opsawg-pcapng).
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from pcapsmtp.capture.model import (
    LINKTYPE_SYSTEMD_JOURNAL,
    CaptureInfo,
    DecryptionSecrets,
    Frame,
)

PCAPNG_MAGIC = b"\x0a\x0d\x0d\x0a"
BYTE_ORDER_MAGIC = 0x1A2B3C4D

BT_SHB = 0x0A0D0D0A
BT_IDB = 0x00000001
BT_PB = 0x00000002  # obsolete Packet Block
BT_SPB = 0x00000003
BT_EPB = 0x00000006
BT_SYSTEMD_JOURNAL = 0x00000009  # Wireshark counts it as a frame
BT_DSB = 0x0000000A

JOURNAL_REALTIME = re.compile(rb"(?:^|\n)__REALTIME_TIMESTAMP=([0-9]{1,20})\n")
"""Wall-clock time of a journal entry in µs (systemd's Journal Export Format)."""

OPT_IF_TSRESOL = 9
OPT_IF_TSOFFSET = 14
MAX_BLOCK_LEN = 16 * 1024 * 1024
"""A block claiming more than this is damage, not data (Wireshark uses the same bound)."""


@dataclass(slots=True)
class Interface:
    linktype: int
    snaplen: int
    ts_numerator: int = 1000
    """Nanoseconds per timestamp unit, as a fraction numerator / denominator."""
    ts_denominator: int = 1
    ts_offset_ns: int = 0

    def time_ns(self, high: int, low: int) -> int:
        units = (high << 32) | low
        return units * self.ts_numerator // self.ts_denominator + self.ts_offset_ns


def _resolution(value: int) -> tuple[int, int]:
    """if_tsresol -> (numerator, denominator) of nanoseconds per unit."""
    exponent = value & 0x7F
    if value & 0x80:
        return 1_000_000_000, 1 << exponent
    if exponent <= 9:
        return 10 ** (9 - exponent), 1
    return 1, 10 ** (exponent - 9)


def _interface(block: bytes, order: str) -> Interface:
    import dpkt  # here, not at the top: ~70 ms of start-up, and pcap files never need it

    cls = (
        dpkt.pcapng.InterfaceDescriptionBlockLE
        if order == "<"
        else dpkt.pcapng.InterfaceDescriptionBlock
    )
    idb = cls(block)
    interface = Interface(idb.linktype, idb.snaplen)
    for opt in idb.opts:
        if opt.code == OPT_IF_TSRESOL and len(opt.data) >= 1:
            interface.ts_numerator, interface.ts_denominator = _resolution(opt.data[0])
        elif opt.code == OPT_IF_TSOFFSET and len(opt.data) >= 8:
            interface.ts_offset_ns = struct.unpack(order + "q", opt.data[:8])[0] * 1_000_000_000
    return interface


class _Damage(Exception):
    """The rest of the file cannot be trusted; the message says why."""


class _Reader:
    def __init__(self, stream: BinaryIO, info: CaptureInfo) -> None:
        self.stream = stream
        self.info = info
        self.order = "<"
        self.interfaces: list[Interface] = []
        self.number = 0
        self.sections = 0
        self.last_time_ns = 0
        """Time of the last frame that had one: what a frame without a timestamp gets."""

    def blocks(self) -> Iterator[tuple[int, bytes]]:
        """(type, whole block) for every block; a new section switches the byte order."""
        while True:
            head = self.stream.read(12)
            if not head:
                return
            if len(head) < 12:
                raise _Damage(
                    f"the file is cut short inside a block header after frame {self.number}"
                )
            if head[:4] == PCAPNG_MAGIC:
                bom = head[8:12]
                if bom == struct.pack("<I", BYTE_ORDER_MAGIC):
                    self.order = "<"
                elif bom == struct.pack(">I", BYTE_ORDER_MAGIC):
                    self.order = ">"
                else:
                    raise _Damage(
                        f"a section header after frame {self.number} has no valid byte-order magic"
                    )
            btype, length = struct.unpack(self.order + "II", head[:8])
            if length < 12 or length % 4 or length > MAX_BLOCK_LEN:
                raise _Damage(
                    f"a block after frame {self.number} claims an impossible length "
                    f"({length} bytes)"
                )
            rest = self.stream.read(length - 12)
            if len(rest) < length - 12:
                raise _Damage(
                    f"the file is cut short inside a block after frame {self.number} "
                    f"({len(rest) + 12} of {length} bytes present)"
                )
            block = head + rest
            if struct.unpack(self.order + "I", block[-4:])[0] != length:
                raise _Damage(f"a block after frame {self.number} has mismatched length fields")
            yield btype, block

    def frames(self) -> Iterator[Frame]:
        for btype, block in self.blocks():
            if btype == BT_SHB:
                self.sections += 1
                self.interfaces = []
            elif btype == BT_IDB:
                self._add_interface(block)
            elif btype == BT_EPB:
                yield self._enhanced(block)
            elif btype == BT_SPB:
                yield self._simple(block)
            elif btype == BT_PB:
                yield self._obsolete(block)
            elif btype == BT_SYSTEMD_JOURNAL:
                yield self._journal(block)
            elif btype == BT_DSB and len(block) >= 20:
                kind, size = struct.unpack_from(self.order + "II", block, 8)
                self.info.secrets.append(DecryptionSecrets(kind, block[16 : 16 + size]))

    def _add_interface(self, block: bytes) -> None:
        import dpkt

        try:
            interface = _interface(block, self.order)
        except (dpkt.Error, struct.error) as e:
            raise _Damage(
                f"an interface description after frame {self.number} is malformed ({e})"
            ) from None
        self.interfaces.append(interface)
        if interface.snaplen:
            self.info.snaplen = max(self.info.snaplen or 0, interface.snaplen)

    def _iface(self, index: int) -> Interface:
        if index >= len(self.interfaces):
            raise _Damage(
                f"frame {self.number + 1} refers to interface {index}, which the section "
                f"does not describe"
            )
        return self.interfaces[index]

    def _frame(self, iface_index: int, high: int, low: int, data: bytes, wire_len: int) -> Frame:
        iface = self._iface(iface_index)
        self.number += 1
        self.last_time_ns = iface.time_ns(high, low)
        return Frame(self.number, self.last_time_ns, iface.linktype, data, wire_len, iface_index)

    def _enhanced(self, block: bytes) -> Frame:
        if len(block) < 32:
            raise _Damage(f"an enhanced packet block after frame {self.number} is too short")
        iface, high, low, caplen, wire_len = struct.unpack_from(self.order + "IIIII", block, 8)
        if caplen > len(block) - 32:
            raise _Damage(
                f"frame {self.number + 1} claims more captured bytes than its block holds"
            )
        return self._frame(iface, high, low, block[28 : 28 + caplen], wire_len)

    def _simple(self, block: bytes) -> Frame:
        if len(block) < 16:
            raise _Damage(f"a simple packet block after frame {self.number} is too short")
        (wire_len,) = struct.unpack_from(self.order + "I", block, 8)
        iface = self._iface(0)
        caplen = min(wire_len, len(block) - 16)
        if iface.snaplen:
            caplen = min(caplen, iface.snaplen)
        self.number += 1
        # A Simple Packet Block has no timestamp (tshark shows none). Time 0 would put the
        # frame in 1970 and stretch the capture over decades; the time of the frame before
        # it keeps times in order and is the closest thing to the truth we know.
        time_ns = self.last_time_ns
        return Frame(self.number, time_ns, iface.linktype, block[12 : 12 + caplen], wire_len)

    def _journal(self, block: bytes) -> Frame:
        """A journal entry, timed like Wireshark does: by its ``__REALTIME_TIMESTAMP``."""
        found = JOURNAL_REALTIME.search(block[8:-4])
        if found:
            self.last_time_ns = int(found[1]) * 1000
        self.number += 1
        return Frame(self.number, self.last_time_ns, LINKTYPE_SYSTEMD_JOURNAL, b"", 0)

    def _obsolete(self, block: bytes) -> Frame:
        if len(block) < 32:
            raise _Damage(f"a packet block after frame {self.number} is too short")
        iface, _drops, high, low, caplen, wire_len = struct.unpack_from(
            self.order + "HHIIII", block, 8
        )
        if caplen > len(block) - 32:
            raise _Damage(
                f"frame {self.number + 1} claims more captured bytes than its block holds"
            )
        return self._frame(iface, high, low, block[28 : 28 + caplen], wire_len)


def read_pcapng(stream: BinaryIO, info: CaptureInfo) -> Iterator[Frame]:
    info.format = "pcapng"
    reader = _Reader(stream, info)
    try:
        yield from reader.frames()
    except _Damage as damage:
        info.warnings.append(f"{damage}; the frames before it were read")

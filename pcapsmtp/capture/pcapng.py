"""pcapng: its magic, and the reading of a pcapng stream that is no capture file.

The block loop is in core/src/reader.rs: every section, interface, ``if_tsresol`` and
``if_tsoffset`` is honoured, and Enhanced, Simple and obsolete Packet Blocks (and systemd
journal entries) all count as frames, as Wireshark counts them (draft-ietf-opsawg-pcapng).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import BinaryIO

from pcapsmtp import _core
from pcapsmtp.capture.files import core_reader, read_frames
from pcapsmtp.capture.model import CaptureInfo, Frame

PCAPNG_MAGIC = b"\x0a\x0d\x0d\x0a"
MAX_BLOCK_LEN = _core.MAX_BLOCK_LEN
"""A block claiming more than this is damage, not data (Wireshark uses the same bound)."""


def read_pcapng(stream: BinaryIO, info: CaptureInfo) -> Iterator[Frame]:
    """The frames of a pcapng stream (tshark's output, say); damage ends them with a
    warning in ``info``, as for a capture file. An empty stream has no frames."""
    info.format = "pcapng"
    reader = core_reader(stream)
    if reader.open_error is not None:
        info.warnings.append(f"the stream could not be read: {reader.open_error}")
        return
    if reader.format != "pcapng":
        if reader.head:
            info.warnings.append(
                f"the stream is not pcapng (it starts with {reader.head.hex(' ')})"
            )
        return
    yield from read_frames(reader, info)

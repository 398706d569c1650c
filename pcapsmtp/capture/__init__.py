"""The capture layer: files in, TCP segments and ICMP errors out. Knows nothing of SMTP.

Decoding runs in the compiled core (core/src/decode.rs, core/src/fragments.rs): the
reader's batches of frames become TcpSegment and IcmpError objects there, IP fragments
reassembled, without a Python object per frame.
"""

from __future__ import annotations

from collections.abc import Iterator

from pcapsmtp import _core
from pcapsmtp.capture.files import Capture, open_capture
from pcapsmtp.capture.model import (
    LINKTYPE_NAMES,
    CaptureInfo,
    DecryptionSecrets,
    Frame,
    IcmpError,
    IPPacket,
    QuotedPacket,
    TcpSegment,
)

__all__ = [
    "LINKTYPE_NAMES",
    "MODELS",
    "Capture",
    "CaptureInfo",
    "DecryptionSecrets",
    "Frame",
    "IPPacket",
    "IcmpError",
    "QuotedPacket",
    "TcpSegment",
    "open_capture",
    "packets",
]

MODELS = _core.Models(IPPacket, TcpSegment, IcmpError, QuotedPacket)
"""The classes the core builds its packets with (capture/model.py)."""


def packets(capture: Capture) -> Iterator[TcpSegment | IcmpError]:
    """TCP segments and ICMP errors, in capture order; a datagram reassembled from IP
    fragments comes with the frame completing it. ``capture`` may be a ChainedCapture
    (capture.sets): fragments are reassembled across its files."""
    decoder = _core.Decoder(MODELS)
    for batch in capture.batches(decoder):
        yield from batch
    _finish(capture.info, decoder)


def _finish(info: CaptureInfo, decoder: _core.Decoder) -> None:
    """The decoder's counts into ``info``, and warnings about what could not be read."""
    info.ip_frames += decoder.ip_frames
    info.reassembled += decoder.reassembled
    for reason, count in decoder.undecoded:
        info.undecoded[reason] = info.undecoded.get(reason, 0) + count
    info.warnings += decoder.finish()
    for reason, count in info.undecoded.items():
        info.warnings.append(f"{count} frame(s) not decoded: {reason}")

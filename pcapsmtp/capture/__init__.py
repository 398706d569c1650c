"""The capture layer: files in, TCP segments and ICMP errors out (and, on the side, the DNS
datagrams of UDP port 53). Knows nothing of SMTP.

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
    DnsDatagram,
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
    "DnsDatagram",
    "Frame",
    "IPPacket",
    "IcmpError",
    "QuotedPacket",
    "SegmentBatch",
    "TcpSegment",
    "open_capture",
    "packets",
    "segment_batches",
]

SegmentBatch = _core.SegmentBatch
"""A decoded batch whose TCP segments stay in the core (``segment_batches``)."""

MODELS = _core.Models(IPPacket, TcpSegment, IcmpError, QuotedPacket)
"""The classes the core builds its packets with (capture/model.py)."""
DNS_MODELS = _core.Models(IPPacket, TcpSegment, IcmpError, QuotedPacket, DnsDatagram)
"""The same, and DnsDatagram: the decoder then keeps the DNS datagrams it meets."""

MAX_DNS_DATAGRAMS = 200_000
"""DNS datagrams kept from one capture: a resolver's own capture holds millions; an MTA's
lookups for its mail are far fewer. Beyond this, the rest are counted in a warning."""


def packets(
    capture: Capture, dns: list[DnsDatagram] | None = None
) -> Iterator[TcpSegment | IcmpError]:
    """TCP segments and ICMP errors, in capture order; a datagram reassembled from IP
    fragments comes with the frame completing it. ``capture`` may be a ChainedCapture
    (capture.sets): fragments are reassembled across its files. With ``dns``, the DNS
    datagrams (UDP port 53) are appended to it batch by batch, in capture order; they never
    reach the flow table."""
    for batch in _decoded(capture, dns, segments=False):
        yield from batch


def segment_batches(
    capture: Capture, dns: list[DnsDatagram] | None = None
) -> Iterator[_core.SegmentBatch]:
    """The same packets as ``packets``, batch by batch, their TCP segments kept in the core
    (no TcpSegment objects; ICMP errors are objects in their place): the flow table's fast
    path (``FlowTracker.batch_events``). Each batch must be fully taken before the next."""
    return _decoded(capture, dns, segments=True)


def _decoded(capture: Capture, dns: list[DnsDatagram] | None, segments: bool) -> Iterator:
    decoder = _core.Decoder(MODELS if dns is None else DNS_MODELS, segments)
    left_out = 0
    for batch in capture.batches(decoder):
        yield batch
        if dns is not None:
            found = decoder.take_dns()
            room = MAX_DNS_DATAGRAMS - len(dns)
            dns += found[:room] if len(found) > room else found
            left_out += max(0, len(found) - room)
    if left_out:
        capture.info.warnings.append(
            f"{left_out} DNS datagram(s) beyond the first {MAX_DNS_DATAGRAMS} were not read"
        )
    _finish(capture.info, decoder)


def _finish(info: CaptureInfo, decoder: _core.Decoder) -> None:
    """The decoder's counts into ``info``, and warnings about what could not be read."""
    info.ip_frames += decoder.ip_frames
    info.reassembled += decoder.reassembled
    info.copy_frames.update(decoder.copy_frames)
    for reason, count in decoder.undecoded:
        info.undecoded[reason] = info.undecoded.get(reason, 0) + count
    info.warnings += decoder.finish()
    for reason, count in info.undecoded.items():
        info.warnings.append(f"{count} frame(s) not decoded: {reason}")

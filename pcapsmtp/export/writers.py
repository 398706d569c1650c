"""The export written as pcap (microsecond, or nanosecond when a timestamp needs it) or as
pcapng, to a file (whole or not at all) or to standard output."""

from __future__ import annotations

import os
import struct
from pathlib import Path
from typing import BinaryIO

from pcapsmtp import __version__
from pcapsmtp.capture import pcapng_copy
from pcapsmtp.capture.pcap import MAX_RECORD_LEN, TCPDUMP_MAGIC, TCPDUMP_MAGIC_NANO
from pcapsmtp.capture.pcapng_copy import U64, Record
from pcapsmtp.export.model import ExportError

U32 = 0xFFFFFFFF
PCAP_LAST_NS = U32 * 1_000_000_000 + 999_999_999
"""2106-02-07 06:28:15.999999999 UTC: a pcap record's time is an unsigned 32-bit second."""


def _clamp(value: int, last: int) -> int:
    return min(max(value, 0), last)


def _pcap(records: list[Record], out) -> None:
    nano = _needs_ns(records)
    linktype = records[0].frame.linktype if records else 1
    snaplen = _snaplen(records)
    magic, scale = (TCPDUMP_MAGIC_NANO, 1) if nano else (TCPDUMP_MAGIC, 1000)
    out.write(struct.pack("<IHHiIII", magic, 2, 4, 0, 0, snaplen, linktype & U32))
    for record in records:
        frame, data = record.frame, record.data
        seconds, rest = divmod(_clamp(frame.time_ns, PCAP_LAST_NS), 1_000_000_000)
        wire_len = _clamp(frame.wire_len, U32)
        out.write(struct.pack("<IIII", seconds, rest // scale, len(data), wire_len))
        out.write(data)


def _snaplen(records: list[Record]) -> int:
    """The capture's own snap length (a capture cut at 96 bytes says so in its export too),
    else, when its interfaces differ or none is known, one that holds every record."""
    longest = max((len(r.data) for r in records), default=0)
    known = {r.facts.interface.snaplen for r in records if r.facts.interface is not None}
    if len(known) == 1 and 0 < (snaplen := known.pop()) <= U32 and longest <= snaplen:
        return snaplen
    return min(max(MAX_RECORD_LEN, longest), U32)


def _needs_ns(records: list[Record]) -> bool:
    return any(record.frame.time_ns % 1000 for record in records)


def _unfit(records: list[Record], fmt: str) -> list[str]:
    """What the output format cannot hold as captured (and is written clamped): in pcap, the
    time of a damaged or hostile record beyond 2106 or before 1970, an original length
    beyond 32 bits; in pcapng, a timestamp the frame did not have in the input (a Simple
    Packet Block, a pcap record) that its interface's counter cannot hold."""
    if fmt == "pcapng":
        frames = [
            r.frame.number
            for r in records
            if r.facts.units is None
            and r.facts.interface is not None
            and r.facts.interface.units(r.frame.time_ns) in (0, U64)
            and r.frame.time_ns != r.facts.interface.tsoffset_ns
        ]
    else:
        frames = [r.frame.number for r in records if not 0 <= r.frame.time_ns <= PCAP_LAST_NS]
    warnings = []
    if frames:
        warnings.append(
            f"{len(frames)} frame(s) have a time {fmt} cannot hold (first: frame {frames[0]}): "
            "written as the nearest time it can (1970 or its last date)"
        )
    frames = [r.frame.number for r in records if not 0 <= r.frame.wire_len <= U32]
    if frames:
        warnings.append(
            f"{len(frames)} frame(s) have an original length {fmt} cannot hold (first: frame "
            f"{frames[0]}): written as {U32}"
        )
    return warnings


def _write(
    records: list[Record], output: str, stream: BinaryIO | None, pcapng: bool, note, interfaces=()
) -> str:
    """Write to ``stream`` when given (standard output), else next to the target and rename,
    so a failure never leaves half a file."""
    if pcapng:
        fmt = "pcapng"

        def writer(recs, out):
            pcapng_copy.write(recs, out, note, f"pcapsmtp {__version__}", interfaces)

    else:
        linktypes = sorted({record.frame.linktype for record in records})
        if len(linktypes) > 1:
            raise ExportError(
                f"the frames have several link types ({', '.join(map(str, linktypes))}) "
                "and pcap holds one: name the output .pcapng"
            )
        writer, fmt = _pcap, "pcap-ns" if _needs_ns(records) else "pcap"
    try:
        if stream is not None:
            writer(records, stream)
            stream.flush()
            return fmt
        target = Path(output)
        partial = target.with_name(f".{target.name}.partial")
        try:
            with open(partial, "wb") as out:
                writer(records, out)
            os.replace(partial, target)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
    except OSError as e:
        raise ExportError(f"{output}: {e.strerror or e}") from None
    except pcapng_copy.ScanError as e:
        raise ExportError(f"{output}: {e}") from None
    return fmt

"""A trimmed capture of one session, its AUTH credentials overwritten unless asked to keep them.

The frames of the session's TCP stream (IP fragments included) and the ICMP errors tied to
it are copied record by record with their original timestamps, captured bytes and original
lengths. The output is pcap (microsecond, or nanosecond when a timestamp needs it) unless the
file name ends in ``.pcapng``; pcap holds one link type only, so a session whose frames
came from interfaces of different link types must be exported as pcapng. Nothing else of the
input is carried over: no comments, no other interfaces, and never a Decryption Secrets Block.

Redaction overwrites the credential bytes of every line the SMTP parser marked secret (the
AUTH initial response after ``AUTH <mechanism> ``; every line answering a 334) in every
segment that carries them, retransmissions and ICMP quotes included, with as many ``X``.
Lengths, sequence numbers and timing stay as they were, so Wireshark's TCP analysis
of the export is the original's. Checksums are updated incrementally (RFC 1624): one that was
right stays right; one that was already wrong (checksum offloading) stays wrong the same way.
Credentials sent inside TLS are encrypted on the wire and left alone: the export carries no
key to decrypt them.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from pcapsmtp.analysis.one_pass import collect_streams
from pcapsmtp.capture import open_capture
from pcapsmtp.capture.decode import decode_ip, ip_start, parse_ip
from pcapsmtp.capture.model import IPPROTO_ICMP, IPPROTO_ICMP6, IPPROTO_TCP, Frame, IPPacket
from pcapsmtp.capture.pcap import MAX_RECORD_LEN, TCPDUMP_MAGIC, TCPDUMP_MAGIC_NANO
from pcapsmtp.errors import PcapsmtpError
from pcapsmtp.smtp.model import Session
from pcapsmtp.tcp.streams import MASK, StreamFrames

FILLER = b"X"
"""Overwrites credential bytes: visibly a redaction, and still valid base64 where the original
was (Wireshark with smtp.decryption on decodes it without complaint)."""


class ExportError(PcapsmtpError):
    """The export cannot be written as asked (and safely); the message says why."""


@dataclass(slots=True)
class ExportResult:
    path: str
    format: str
    """'pcap', 'pcap-ns' or 'pcapng'."""
    frames: int
    icmp_frames: int
    redacted_frames: list[int] = field(default_factory=list)
    """Frames whose bytes were overwritten."""
    redacted_lines: int = 0
    kept_lines: int = 0
    """Secret lines sent in clear and left as they were (``redact=False``)."""
    encrypted_secrets: int = 0
    """Secret lines sent inside TLS: nothing to overwrite on the wire."""
    warnings: list[str] = field(default_factory=list)
    """Values the output format cannot hold, written clamped."""


# -- what to overwrite ------------------------------------------------------------------------


def secret_ranges(session: Session) -> tuple[list[tuple[int, int]], int]:
    """Client stream offsets [start, end) of the credential bytes sent in clear, and how many
    secret lines were sent inside TLS instead.

    A range runs to the end of the line; its CR and LF are kept when overwriting, so the
    line terminator need not be known.
    """
    tls_frame = session.tls.frame if session.tls else None
    ranges, encrypted = [], 0
    for command in session.commands:
        if not command.secret:
            continue
        if tls_frame is not None and command.first_frame >= tls_frame:
            encrypted += 1
            continue
        start = command.offset
        if command.verb == "AUTH":
            mechanism = command.argument.split(" ", 1)[0]
            start += len("AUTH ") + len(mechanism) + 1
        ranges.append((start, command.offset + command.length))
    return ranges, encrypted


def _overlap(ranges, offset: int, length: int) -> list[tuple[int, int]]:
    """Parts of [offset, offset + length) inside ranges, relative to ``offset``."""
    out = []
    for start, end in ranges:
        lo, hi = max(start, offset), min(end, offset + length)
        if lo < hi:
            out.append((lo - offset, hi - offset))
    return out


# -- checksums (RFC 1071 sums, RFC 1624 incremental update) -----------------------------------


def _sum16(data: bytes) -> int:
    if len(data) % 2:
        data += b"\x00"
    total = sum(struct.unpack(f">{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def _fill(buf: bytearray, lo: int, hi: int) -> None:
    """Overwrite buf[lo:hi], keeping CR and LF: a range runs to the end of its line."""
    for i in range(lo, hi):
        if buf[i] not in (0x0D, 0x0A):
            buf[i] = FILLER[0]


def _update_checksum(buf: bytearray, checksum_at: int, old: bytes, new: bytes) -> None:
    """The checksum at ``checksum_at`` after its covered bytes went from ``old`` to ``new``
    (both starting at the same even offset of the sum): HC' = ~(~HC + ~m + m'), RFC 1624."""
    (checksum,) = struct.unpack_from(">H", buf, checksum_at)
    total = (~checksum & 0xFFFF) + (~_sum16(old) & 0xFFFF) + _sum16(new)
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    struct.pack_into(">H", buf, checksum_at, ~total & 0xFFFF)


def _payload_start(data: bytes, start: int, ip: IPPacket) -> int:
    """Where the IP packet's upper-layer bytes begin in ``data``."""
    return start + min(ip.total_len, len(data) - start) - len(ip.payload)


class _Redactor:
    """Overwrites credential bytes in the frames of one session's client direction."""

    def __init__(self, session: Session, found: StreamFrames, ranges) -> None:
        client = session.client
        self.client = (client.ip, client.port)
        self.base = found.base(session.flow.client)
        self.ranges = ranges
        self.fragment_frames = _secret_fragment_frames(found, session, ranges)
        """Fragments of client segments that carry credential bytes."""

    def frame(self, frame: Frame) -> bytes:
        if not self.ranges or self.base is None:
            return frame.data
        start = ip_start(frame)
        ip = decode_ip(frame) if start >= 0 else None
        if not isinstance(ip, IPPacket):
            return frame.data
        if ip.is_fragment:
            self._fragment(frame, ip)
            return frame.data
        buf = bytearray(frame.data)
        at = _payload_start(frame.data, start, ip)
        end = start + min(ip.total_len, len(frame.data) - start)
        if ip.proto == IPPROTO_TCP:
            changed = self._tcp(buf, ip.src, at, end)
        elif ip.proto in (IPPROTO_ICMP, IPPROTO_ICMP6):
            changed = self._icmp_quote(buf, at, end)
        else:
            changed = False
        return bytes(buf) if changed else frame.data

    def _tcp(self, buf: bytearray, src: bytes, at: int, end: int) -> bool:
        """The TCP segment at buf[at:end]: overwrite what lies in the secret ranges and
        update its checksum (when the quote of an ICMP error holds it)."""
        if end - at < 14:
            return False
        sport, _dport, seq = struct.unpack_from(">HHI", buf, at)
        if (src, sport) != self.client:
            return False
        payload = at + (buf[at + 12] >> 4) * 4
        parts = _overlap(self.ranges, (seq - self.base) & MASK, end - payload)
        if payload >= end or not parts:
            return False
        old = bytes(buf[at:end])
        for lo, hi in parts:
            _fill(buf, payload + lo, payload + hi)
        if buf[at:end] == old:
            return False
        if at + 18 <= end:
            _update_checksum(buf, at + 16, old, bytes(buf[at:end]))
        return True

    def _icmp_quote(self, buf: bytearray, at: int, end: int) -> bool:
        """An ICMP error quoting a client segment: the quote may hold credential bytes."""
        quoted_at = at + 8
        head = bytes(buf[:end])
        quoted = parse_ip(head, quoted_at) if end > quoted_at else None
        if not isinstance(quoted, IPPacket) or quoted.proto != IPPROTO_TCP or quoted.is_fragment:
            return False
        old = bytes(buf[at:end])
        if not self._tcp(buf, quoted.src, _payload_start(head, quoted_at, quoted), end):
            return False
        # The ICMP checksum covers the whole message (ICMPv6 adds an even-length pseudo
        # header), the quote and its updated TCP checksum included.
        _update_checksum(buf, at + 2, old, bytes(buf[at:end]))
        return True

    def _fragment(self, frame: Frame, ip: IPPacket) -> None:
        if frame.number in self.fragment_frames:
            raise ExportError(
                f"frame {frame.number} is an IP fragment of a segment that carries AUTH "
                "credentials; redacting inside fragments is not supported, so no export was "
                "written"
            )


def _secret_fragment_frames(found: StreamFrames, session: Session, ranges) -> frozenset[int]:
    client = session.flow.client
    frames: set[int] = set()
    for offset, length, direction, fragment_frames in found.fragmented:
        if direction == client and offset is not None and _overlap(ranges, offset, length):
            frames.update(fragment_frames)
    return frozenset(frames)


# -- writers ----------------------------------------------------------------------------------


U32 = 0xFFFFFFFF
PCAP_LAST_NS = U32 * 1_000_000_000 + 999_999_999
"""2106-02-07 06:28:15.999999999 UTC: a pcap record's time is an unsigned 32-bit second."""
PCAPNG_LAST_NS = (1 << 64) - 1
"""2554-07-21 23:34:33.709551615 UTC: a pcapng block's time is an unsigned 64-bit count."""


def _clamp(value: int, last: int) -> int:
    return min(max(value, 0), last)


def _pcap(records: list[tuple[Frame, bytes]], out) -> None:
    nano = _needs_ns(records)
    linktype = records[0][0].linktype if records else 1
    snaplen = min(max([MAX_RECORD_LEN, *(len(data) for _, data in records)]), U32)
    magic, scale = (TCPDUMP_MAGIC_NANO, 1) if nano else (TCPDUMP_MAGIC, 1000)
    out.write(struct.pack("<IHHiIII", magic, 2, 4, 0, 0, snaplen, linktype & U32))
    for frame, data in records:
        seconds, rest = divmod(_clamp(frame.time_ns, PCAP_LAST_NS), 1_000_000_000)
        wire_len = _clamp(frame.wire_len, U32)
        out.write(struct.pack("<IIII", seconds, rest // scale, len(data), wire_len))
        out.write(data)


def _needs_ns(records: list[tuple[Frame, bytes]]) -> bool:
    return any(frame.time_ns % 1000 for frame, _ in records)


def _block(block_type: int, body: bytes) -> bytes:
    body += b"\x00" * (-len(body) % 4)
    length = len(body) + 12
    return struct.pack("<II", block_type, length) + body + struct.pack("<I", length)


OPT_IF_TSRESOL_NS = struct.pack("<HHB3x", 9, 1, 9) + struct.pack("<HH", 0, 0)
"""if_tsresol = 9 (nanoseconds), then opt_endofopt (draft-ietf-opsawg-pcapng 4.2)."""


def _pcapng(records: list[tuple[Frame, bytes]], out) -> None:
    out.write(_block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1)))
    interfaces: dict[int, int] = {}
    for frame, _ in records:
        if frame.linktype not in interfaces:
            interfaces[frame.linktype] = len(interfaces)
            idb = struct.pack("<HHI", frame.linktype & 0xFFFF, 0, 0) + OPT_IF_TSRESOL_NS
            out.write(_block(1, idb))
    for frame, data in records:
        time_ns = _clamp(frame.time_ns, PCAPNG_LAST_NS)
        high, low = time_ns >> 32, time_ns & U32
        wire_len = _clamp(frame.wire_len, U32)
        header = struct.pack("<IIIII", interfaces[frame.linktype], high, low, len(data), wire_len)
        out.write(_block(6, header + data))


def _unfit(records: list[tuple[Frame, bytes]], fmt: str) -> list[str]:
    """What the output format cannot hold as captured (and is written clamped): the time of a
    damaged or hostile record, beyond 2106 in pcap or 2554 in pcapng, or before 1970."""
    last = PCAPNG_LAST_NS if fmt == "pcapng" else PCAP_LAST_NS
    frames = [f.number for f, _ in records if not 0 <= f.time_ns <= last]
    warnings = []
    if frames:
        warnings.append(
            f"{len(frames)} frame(s) have a time {fmt} cannot hold (first: frame {frames[0]}): "
            "written as the nearest time it can (1970 or its last date)"
        )
    frames = [f.number for f, _ in records if not 0 <= f.wire_len <= U32]
    if frames:
        warnings.append(
            f"{len(frames)} frame(s) have an original length {fmt} cannot hold (first: frame "
            f"{frames[0]}): written as {U32}"
        )
    return warnings


def _write(records: list[tuple[Frame, bytes]], output: str, stream: BinaryIO | None) -> str:
    """Write to ``stream`` when given (standard output), else next to the target and rename,
    so a failure never leaves half a file."""
    if stream is None and output.lower().endswith(".pcapng"):
        writer, fmt = _pcapng, "pcapng"
    else:
        linktypes = sorted({frame.linktype for frame, _ in records})
        if len(linktypes) > 1:
            raise ExportError(
                f"the session's frames have several link types ({', '.join(map(str, linktypes))}) "
                "and pcap holds one: name the output .pcapng"
            )
        writer, fmt = _pcap, "pcap-ns" if _needs_ns(records) else "pcap"
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
    except OSError as e:
        partial.unlink(missing_ok=True)
        raise ExportError(f"{output}: {e.strerror or e}") from None
    return fmt


# -- the export -------------------------------------------------------------------------------


def export_session(
    source: str,
    session: Session,
    output: str,
    redact: bool = True,
    ports: tuple = (),
    destination: BinaryIO | None = None,
) -> ExportResult:
    """Write the session's frames (and its ICMP errors) from ``source`` to ``output``, or as
    pcap to ``destination`` when one is given (``output`` then only names it). The credentials are
    overwritten unless ``redact`` is False: exports are made to be shared."""
    if destination is None and os.path.exists(output) and os.path.samefile(source, output):
        raise ExportError(f"{output} is the capture being read; choose another output file")
    stream = session.flow.stream
    found = collect_streams(source, [stream], ports, segments=False)[stream]
    ranges, encrypted = secret_ranges(session)
    kept = 0 if redact else len(ranges)
    ranges = ranges if redact else []
    redactor = _Redactor(session, found, ranges)
    records: list[tuple[Frame, bytes]] = []
    redacted: list[int] = []
    with open_capture(source) as capture:
        for frame in capture.frames():
            if frame.number not in found.frames:
                continue
            data = redactor.frame(frame)
            if data is not frame.data:
                redacted.append(frame.number)
            records.append((frame, data))
    if ranges and not redacted:
        raise ExportError(
            "the session's AUTH lines were not found in its frames; no export was written"
        )
    fmt = _write(records, output, destination)
    return ExportResult(
        warnings=_unfit(records, "pcapng" if fmt == "pcapng" else "pcap"),
        path=output,
        format=fmt,
        frames=len(records),
        icmp_frames=len(found.icmp_frames),
        redacted_frames=redacted,
        redacted_lines=len(ranges),
        kept_lines=kept,
        encrypted_secrets=encrypted,
    )

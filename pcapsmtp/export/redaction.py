"""Redaction overwrites the credential bytes of every line the SMTP parser marked secret (the
AUTH initial response after ``AUTH <mechanism> ``; every line answering a 334), and the bytes
of a later line that repeated them (a server echoing them in its reply: ``AuthAttempt.echoes``),
in every segment that carries them, retransmissions and ICMP quotes included, with as many ``X``.
Lengths, sequence numbers and timing stay as they were, so Wireshark's TCP analysis
of the export is the original's. Checksums are updated incrementally (RFC 1624): one that was
right stays right; one that was already wrong (checksum offloading) stays wrong the same way.
Credentials sent inside TLS are encrypted on the wire and left alone: the export carries no
key to decrypt them.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

from pcapsmtp.capture.decode import decode_ip, ip_start, parse_ip
from pcapsmtp.capture.model import IPPROTO_ICMP, IPPROTO_ICMP6, IPPROTO_TCP, Frame, IPPacket
from pcapsmtp.export.model import ExportError
from pcapsmtp.smtp.events import CLIENT, SERVER, Side
from pcapsmtp.smtp.model import Session
from pcapsmtp.tcp.streams import MASK, StreamFrames

FILLER = b"X"
"""Overwrites credential bytes: visibly a redaction, and still valid base64 where the original
was (Wireshark with smtp.decryption on decodes it without complaint)."""


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


def echo_ranges(session: Session) -> dict[Side, list[tuple[int, int]]]:
    """Stream offsets [start, end) of each side's bytes that repeated a credential in clear
    (an echo inside TLS never reaches the session: nothing to overwrite on the wire)."""
    tls_frame = session.tls.frame if session.tls else None
    ranges: dict[Side, list[tuple[int, int]]] = {}
    for attempt in session.auth:
        for echo in attempt.echoes:
            if tls_frame is None or echo.frame < tls_frame:
                ranges.setdefault(echo.sender, []).extend(echo.ranges)
    return ranges


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
    """Overwrites credential bytes in the frames of one session: its client's AUTH lines
    (``ranges``), and what either side repeated of them (``echoes``)."""

    def __init__(self, session: Session, found: StreamFrames, ranges, echoes) -> None:
        flow = session.flow
        self.ranges = ranges
        self.echoes = sum(len(r) for r in echoes.values())
        """Echoed credentials to overwrite."""
        self.sides: dict[tuple[bytes, int], tuple[int, list[tuple[int, int]]]] = {}
        """(address, port) of a sender -> the base of its sequence numbers and its ranges."""
        for side, endpoint, direction in (
            (CLIENT, session.client, flow.client),
            (SERVER, session.server, flow.server),
        ):
            base = found.base(direction)
            side_ranges = (ranges if side is CLIENT else []) + echoes.get(side, [])
            if base is not None and side_ranges:
                self.sides[(endpoint.ip, endpoint.port)] = (base, side_ranges)
        self.fragment_frames = _secret_fragment_frames(found, session, ranges, echoes)
        """Fragments of segments that carry credential bytes."""
        self.changed = 0
        """Frames overwritten so far."""

    def frame(self, frame: Frame) -> bytes:
        if not self.sides:
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
        if not changed:
            return frame.data
        self.changed += 1
        return bytes(buf)

    def _tcp(self, buf: bytearray, src: bytes, at: int, end: int) -> bool:
        """The TCP segment at buf[at:end]: overwrite what lies in the secret ranges and
        update its checksum (when the quote of an ICMP error holds it)."""
        if end - at < 14:
            return False
        sport, _dport, seq = struct.unpack_from(">HHI", buf, at)
        side = self.sides.get((src, sport))
        if side is None:
            return False
        base, ranges = side
        payload = at + (buf[at + 12] >> 4) * 4
        parts = _overlap(ranges, (seq - base) & MASK, end - payload)
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


def _secret_fragment_frames(
    found: StreamFrames, session: Session, ranges, echoes
) -> frozenset[int]:
    flow = session.flow
    by_direction = {
        flow.client: ranges + echoes.get(CLIENT, []),
        flow.server: echoes.get(SERVER, []),
    }
    frames: set[int] = set()
    for offset, length, direction, fragment_frames in found.fragmented:
        if offset is not None and _overlap(by_direction[direction], offset, length):
            frames.update(fragment_frames)
    return frozenset(frames)


def _redactors(sessions: Sequence[Session], found: dict[int, StreamFrames], redact: bool):
    """Frame -> the redactor of its session, for the sessions with credentials in clear;
    and the counts the result reports (overwritten, kept, inside TLS)."""
    by_frame: dict[int, _Redactor] = {}
    redactors, kept, encrypted = [], 0, 0
    for session in sessions:
        ranges, inside_tls = secret_ranges(session)
        encrypted += inside_tls
        if not ranges:
            continue
        if not redact:
            kept += len(ranges)
            continue
        if any(attempt.echoes_left_out for attempt in session.auth):
            raise ExportError(
                f"session {session.id} repeats its AUTH credentials more often than this "
                "tool keeps track of; they cannot all be overwritten, so no export was written"
            )
        echoes = echo_ranges(session)
        redactor = _Redactor(session, found[session.flow.stream], ranges, echoes)
        redactors.append(redactor)
        for frame in found[session.flow.stream].frames:
            by_frame[frame] = redactor
    return by_frame, redactors, kept, encrypted

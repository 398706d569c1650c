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
import re
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from pcapsmtp import __version__
from pcapsmtp.analysis import Analysis
from pcapsmtp.analysis.one_pass import collect_streams
from pcapsmtp.capture import open_capture, pcapng_copy
from pcapsmtp.capture.decode import decode_ip, ip_start, parse_ip
from pcapsmtp.capture.model import (
    IPPROTO_ICMP,
    IPPROTO_ICMP6,
    IPPROTO_TCP,
    LINKTYPE_SYSTEMD_JOURNAL,
    Frame,
    IPPacket,
)
from pcapsmtp.capture.pcap import MAX_RECORD_LEN, TCPDUMP_MAGIC, TCPDUMP_MAGIC_NANO
from pcapsmtp.capture.pcapng_copy import U64, Record, RecordFacts
from pcapsmtp.diagnose.model import Finding
from pcapsmtp.errors import PcapsmtpError
from pcapsmtp.report.safe import terminal
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
    frame_numbers: list[int] = field(default_factory=list)
    """The capture's number of each frame written, in order (frame i + 1 of the export)."""
    comments: int = 0
    """Packet comments added (one per finding on each of its evidence frames)."""
    commented_frames: int = 0
    annotated: bool = False
    """Findings were given to comment on (--annotate)."""
    annotated_findings: int = 0
    """Findings with at least one evidence frame in the export."""


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
        self.changed = 0
        """Frames overwritten so far."""

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


def _clamp(value: int, last: int) -> int:
    return min(max(value, 0), last)


def _pcap(records: list[Record], out) -> None:
    nano = _needs_ns(records)
    linktype = records[0].frame.linktype if records else 1
    snaplen = min(max([MAX_RECORD_LEN, *(len(r.data) for r in records)]), U32)
    magic, scale = (TCPDUMP_MAGIC_NANO, 1) if nano else (TCPDUMP_MAGIC, 1000)
    out.write(struct.pack("<IHHiIII", magic, 2, 4, 0, 0, snaplen, linktype & U32))
    for record in records:
        frame, data = record.frame, record.data
        seconds, rest = divmod(_clamp(frame.time_ns, PCAP_LAST_NS), 1_000_000_000)
        wire_len = _clamp(frame.wire_len, U32)
        out.write(struct.pack("<IIII", seconds, rest // scale, len(data), wire_len))
        out.write(data)


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


# -- findings as packet comments --------------------------------------------------------------


MAX_COMMENT_BYTES = 4000
"""A comment is one line in Wireshark's packet list and Expert Info: a summary is a line,
and a hostile one stays far below the option's 65535-byte bound."""


def finding_comment(finding: Finding) -> str:
    """``pcapsmtp <code>: <summary>``: the summary with its wire text made inert (control
    characters and bidi overrides shown as escapes, bytes that were not UTF-8 as \\xNN), so
    the comment is valid UTF-8 with no control byte; cut at a character boundary."""
    text = terminal(f"pcapsmtp {finding.code}: {finding.summary}")
    data = text.encode("utf-8", "backslashreplace")
    if len(data) > MAX_COMMENT_BYTES:
        data = data[: MAX_COMMENT_BYTES - 3] + b"..."
    return data.decode("utf-8", "ignore")


def _comments(findings: Sequence[Finding]) -> dict[int, list[str]]:
    """Frame -> one comment per finding that names it as evidence, in the findings' order."""
    by_frame: dict[int, list[str]] = {}
    for finding in findings:
        comment = finding_comment(finding)
        for frame in dict.fromkeys(finding.frames):
            by_frame.setdefault(frame, []).append(comment)
    return by_frame


def section_comment(source: str, findings: Sequence[Finding], sessions: int, scope: str) -> str:
    """The capture's comment: the tool, what was exported, and the verdict in counts."""
    counts = {severity: 0 for severity in ("error", "warning", "info")}
    for finding in findings:
        counts[finding.severity] = counts.get(finding.severity, 0) + 1
    codes = ", ".join(dict.fromkeys(f.code for f in findings if f.severity == "error"))
    verdict = (
        f"{counts['error']} error(s), {counts['warning']} warning(s), {counts['info']} info"
        + (f" (errors: {codes})" if codes else "")
    )
    name = terminal(os.path.basename(source))
    return (
        f"pcapsmtp {__version__}: {scope} of {name}; {sessions} SMTP session(s); findings: "
        f"{verdict}. Each evidence frame carries one comment per finding "
        '(display filter: frame.comment contains "pcapsmtp").'
    )


def annotation(analysis: Analysis, capture: str, session: Session | None) -> dict:
    """What ``--annotate`` comments on: every finding of the capture, or a session's own and
    the capture-wide ones; and the capture's comment. Keyword arguments of the exports."""
    findings = [
        f
        for f in analysis.findings
        if session is None or f.session is None or (f.capture, f.session) == session.key
    ]
    if session is None:
        scope = "annotated copy"
    else:
        scope = f"session {session.id} (tcp.stream {session.flow.stream})"
    note = section_comment(capture, findings, len(analysis.sessions), scope)
    return {"annotate": findings, "note": note}


# -- the export -------------------------------------------------------------------------------


def _refuse_own_input(source: str, output: str, destination) -> None:
    if destination is None and os.path.exists(output) and os.path.samefile(source, output):
        raise ExportError(f"{output} is the capture being read; choose another output file")


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
        redactor = _Redactor(session, found[session.flow.stream], ranges)
        redactors.append(redactor)
        for frame in found[session.flow.stream].frames:
            by_frame[frame] = redactor
    return by_frame, redactors, kept, encrypted


def _export(
    source: str,
    sessions: Sequence[Session],
    found: dict[int, StreamFrames],
    keep: set[int] | None,
    output: str,
    redact: bool,
    destination: BinaryIO | None,
    pcapng: bool,
    annotate: Sequence[Finding] | None,
    note: str | None,
) -> ExportResult:
    """Copy the frames ``keep`` accepts (all when None), redacting the sessions' credentials
    and commenting the evidence frames of ``annotate``'s findings."""
    by_frame, redactors, kept, encrypted = _redactors(sessions, found, redact)
    comments = _comments(annotate or ())
    scan = pcapng_copy.Scan(source) if pcapng and pcapng_copy.is_pcapng(source) else None
    facts = iter(scan) if scan is not None else None
    records: list[Record] = []
    redacted: list[int] = []
    with open_capture(source) as capture:
        interface = None
        for frame in capture.frames():
            fact = None
            if facts is not None:
                fact = next(facts, None)
                if fact is None or not _matches(fact, frame):
                    raise ExportError(
                        f"frame {frame.number}: the capture's blocks could not be matched "
                        "with its frames; no export was written"
                    )
            if keep is not None and frame.number not in keep:
                continue
            if fact is None:
                if interface is None or interface.linktype != frame.linktype & 0xFFFF:
                    nano = capture.info.format == "pcap-ns"
                    interface = pcapng_copy.pcap_interface(
                        frame.linktype, capture.info.snaplen or MAX_RECORD_LEN, nano
                    )
                fact = RecordFacts(interface)
            if annotate is not None:
                fact.options = [o for o in fact.options if not _earlier_annotation(*o)]
            redactor = by_frame.get(frame.number)
            data = redactor.frame(frame) if redactor else frame.data
            if data is not frame.data:
                redacted.append(frame.number)
            records.append(
                Record(frame, data, fact, comments.get(frame.number, []), data is not frame.data)
            )
    for redactor in redactors:
        if not redactor.changed:
            raise ExportError(
                "the AUTH lines of a session were not found in its frames; no export was written"
            )
    everything = keep is None and scan is not None
    fmt = _write(records, output, destination, pcapng, note, scan.interfaces if everything else ())
    numbers = [r.frame.number for r in records]
    exported = set(numbers)
    return ExportResult(
        warnings=_unfit(records, "pcapng" if fmt == "pcapng" else "pcap"),
        path=output,
        format=fmt,
        frames=len(records),
        icmp_frames=sum(len(found[s].icmp_frames) for s in found) if keep is not None else 0,
        redacted_frames=redacted,
        redacted_lines=sum(len(r.ranges) for r in redactors),
        kept_lines=kept,
        encrypted_secrets=encrypted,
        frame_numbers=numbers,
        comments=sum(len(r.comments) for r in records),
        commented_frames=sum(1 for r in records if r.comments),
        annotated=annotate is not None,
        annotated_findings=sum(1 for f in annotate or () if exported.intersection(f.frames)),
    )


EARLIER = re.compile(rb"pcapsmtp [a-z0-9-]+: ")
"""How a comment this export wrote begins: an annotated copy annotated again gets the new
analysis's comments, not both."""


def _earlier_annotation(code: int, value: bytes) -> bool:
    return code == pcapng_copy.OPT_COMMENT and EARLIER.match(value) is not None


def _matches(fact: RecordFacts, frame: Frame) -> bool:
    if fact.journal is not None:
        return frame.linktype == LINKTYPE_SYSTEMD_JOURNAL
    return fact.interface is not None and fact.interface.linktype == frame.linktype & 0xFFFF


def export_session(
    source: str,
    session: Session,
    output: str,
    redact: bool = True,
    ports: tuple = (),
    destination: BinaryIO | None = None,
    annotate: Sequence[Finding] | None = None,
    note: str | None = None,
) -> ExportResult:
    """Write the session's frames (and its ICMP errors) from ``source`` to ``output``, or to
    ``destination`` when one is given (``output`` then only names it): pcap, or pcapng when
    ``output`` ends in .pcapng or findings are given to ``annotate`` (their evidence frames
    get a comment each, ``note`` is the capture's comment). The credentials are overwritten
    unless ``redact`` is False: exports are made to be shared."""
    _refuse_own_input(source, output, destination)
    pcapng = annotate is not None or (destination is None and output.lower().endswith(".pcapng"))
    stream = session.flow.stream
    found = collect_streams(source, [stream], ports, segments=False)
    return _export(
        source,
        [session],
        found,
        found[stream].frames,
        output,
        redact,
        destination,
        pcapng,
        annotate,
        note,
    )


def export_capture(
    source: str,
    sessions: Sequence[Session],
    output: str,
    redact: bool = True,
    ports: tuple = (),
    destination: BinaryIO | None = None,
    annotate: Sequence[Finding] | None = None,
    note: str | None = None,
) -> ExportResult:
    """Every frame of ``source`` as pcapng, frame numbers unchanged, the credentials of its
    ``sessions`` overwritten unless ``redact`` is False, and a comment on each evidence
    frame of the findings given to ``annotate``."""
    _refuse_own_input(source, output, destination)
    streams = [s.flow.stream for s in sessions if redact and secret_ranges(s)[0]]
    found = collect_streams(source, streams, ports, segments=False) if streams else {}
    return _export(source, sessions, found, None, output, redact, destination, True, annotate, note)

"""The export: the frames of ``source`` that are kept, their credentials overwritten and the
findings' evidence frames commented, written with the facts the input held of each frame."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import BinaryIO

from pcapsmtp.analysis.one_pass import collect_streams
from pcapsmtp.capture import open_capture, pcapng_copy
from pcapsmtp.capture.model import LINKTYPE_SYSTEMD_JOURNAL, Frame
from pcapsmtp.capture.pcap import MAX_RECORD_LEN
from pcapsmtp.capture.pcapng_copy import Record, RecordFacts
from pcapsmtp.diagnose.model import Finding
from pcapsmtp.dns.model import Lookup
from pcapsmtp.export.comments import _comments, _earlier_annotation
from pcapsmtp.export.dns import lookup_frames
from pcapsmtp.export.model import ExportError, ExportResult
from pcapsmtp.export.redaction import _redactors, secret_ranges
from pcapsmtp.export.writers import _unfit, _write
from pcapsmtp.smtp.model import Session
from pcapsmtp.tcp.streams import StreamFrames


def _refuse_own_input(source: str, output: str, destination) -> None:
    if destination is None and os.path.exists(output) and os.path.samefile(source, output):
        raise ExportError(f"{output} is the capture being read; choose another output file")


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
    dns: set[int] = frozenset(),
) -> ExportResult:
    """Copy the frames ``keep`` accepts (all when None) and the DNS frames ``dns``, redacting
    the sessions' credentials and commenting the evidence frames of ``annotate``'s findings."""
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
            if keep is not None and frame.number not in keep and frame.number not in dns:
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
    warnings = []
    if dns and not pcapng:
        records, warnings = _one_link_type(records, dns)
    everything = keep is None and scan is not None
    fmt = _write(records, output, destination, pcapng, note, scan.interfaces if everything else ())
    numbers = [r.frame.number for r in records]
    exported = set(numbers)
    return ExportResult(
        warnings=warnings + _unfit(records, "pcapng" if fmt == "pcapng" else "pcap"),
        path=output,
        format=fmt,
        frames=len(records),
        icmp_frames=sum(len(found[s].icmp_frames) for s in found) if keep is not None else 0,
        redacted_frames=redacted,
        redacted_lines=sum(len(r.ranges) for r in redactors),
        redacted_echoes=sum(r.echoes for r in redactors),
        kept_lines=kept,
        encrypted_secrets=encrypted,
        frame_numbers=numbers,
        comments=sum(len(r.comments) for r in records),
        commented_frames=sum(1 for r in records if r.comments),
        annotated=annotate is not None,
        annotated_findings=sum(1 for f in annotate or () if exported.intersection(f.frames)),
        dns_frames=len(exported & dns),
    )


def _one_link_type(records: list[Record], dns: set[int]) -> tuple[list[Record], list[str]]:
    """pcap holds one link type: DNS frames captured on an interface of another link type
    than the session's are left out (with a warning) rather than failing the export."""
    session = {r.frame.linktype for r in records if r.frame.number not in dns}
    other = [r for r in records if r.frame.number in dns and r.frame.linktype not in session]
    if not other or len(session) != 1:
        return records, []
    kept = [r for r in records if r not in other]
    return kept, [
        f"{len(other)} DNS frame(s) of the session's lookups were captured with another link "
        "type and pcap holds one: left out (name the output .pcapng to keep them)"
    ]


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
    lookups: Sequence[Lookup] = (),
) -> ExportResult:
    """Write the session's frames (and its ICMP errors) from ``source`` to ``output``, or to
    ``destination`` when one is given (``output`` then only names it): pcap, or pcapng when
    ``output`` ends in .pcapng or findings are given to ``annotate`` (their evidence frames
    get a comment each, ``note`` is the capture's comment). The credentials are overwritten
    unless ``redact`` is False: exports are made to be shared. The frames of ``lookups``
    (export.dns.cited_lookups: the DNS its findings rest on) are written with them."""
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
        lookup_frames(lookups),
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

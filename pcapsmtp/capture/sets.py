"""Rotated capture sets: the files one capture point wrote, read as one capture.

Mail gateways capture with rotation: ``tcpdump -G 3600 -w gw1-%Y%m%d%H.pcap`` writes
``gw1-2026112301.pcap``, ``gw1-2026112302.pcap``, ...; ``tcpdump -C 100 -w gw1.pcap`` writes
``gw1.pcap``, ``gw1.pcap1``, ``gw1.pcap2``; Wireshark's ring buffer writes
``gw1_00001_20261123010000.pcapng``. Files whose names differ only in that rotation part
(in the same folder) are one set, ordered by their first timestamp; the frames of a set are
numbered on from file to file, exactly as in the capture ``mergecap -a`` would make of them.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from pcapsmtp import _core
from pcapsmtp.capture.files import COMPRESSIONS, Capture, open_capture
from pcapsmtp.capture.model import CaptureInfo, Frame
from pcapsmtp.capture.pcap import PCAP_MAGICS
from pcapsmtp.capture.pcapng import PCAPNG_MAGIC
from pcapsmtp.errors import CaptureError

COMPRESSED_SUFFIXES = (".gz", ".bz2", ".xz")
SIZE_ROTATION = re.compile(r"^(.*\.(?:pcapng|pcap|cap|dmp))(\d+)$", re.IGNORECASE)
"""tcpdump -C: the second and later files get a number after the whole name."""
TIME_ROTATION = re.compile(r"(?:(?<=[^A-Za-z0-9])|^)\d(?:[\d_.:-]|T(?=\d))*$")
"""The trailing counter or date-time of a name's stem (``-2026112301``, ``_00001_2026...``);
it starts after a non-alphanumeric character, so the ``1`` of ``gw1`` stays in the name."""


@dataclass(slots=True)
class CaptureSet:
    """The files of one capture point, in capture order (one file for most inputs)."""

    label: str
    """What the output calls the set: the file itself, or ``folder/gw1-*.pcap``."""
    files: list[str] = field(default_factory=list)


def rotation_key(path: str) -> str:
    """The name a rotated file shares with the other files of its set."""
    folder, name = os.path.split(path)
    compression = ""
    for suffix in COMPRESSED_SUFFIXES:
        if name.lower().endswith(suffix):
            name, compression = name[: -len(suffix)], name[-len(suffix) :]
            break
    sized = SIZE_ROTATION.match(name)
    if sized:
        return os.path.join(folder, sized.group(1) + "*" + compression)
    stem, ext = os.path.splitext(name)
    timed = TIME_ROTATION.search(stem)
    if timed and timed.start() > 0:
        return os.path.join(folder, stem[: timed.start()] + "*" + ext + compression)
    first_of_sized = name.lower().endswith((".pcap", ".pcapng", ".cap", ".dmp"))
    return os.path.join(folder, name + ("*" if first_of_sized else "") + compression)


def is_capture_file(path: str) -> bool:
    """The file starts like a capture (pcap, pcapng, or a compressed file)."""
    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError:
        return False
    return (
        head[:4] in PCAP_MAGICS
        or head[:4] == PCAPNG_MAGIC
        or any(head.startswith(magic) for magic in COMPRESSIONS)
    )


def expand_inputs(sources: list[str]) -> tuple[list[str], list[str], list[CaptureError]]:
    """Folders replaced by the capture files in them (sorted, not recursive): (inputs,
    warnings about folder entries that are not captures, folders with no capture)."""
    inputs: list[str] = []
    warnings: list[str] = []
    errors: list[CaptureError] = []
    for source in sources:
        if source == "-" or not os.path.isdir(source):
            inputs.append(source)
            continue
        names = sorted(os.listdir(source))
        paths = [os.path.join(source, n) for n in names if os.path.isfile(os.path.join(source, n))]
        found = [p for p in paths if is_capture_file(p)]
        skipped = [os.path.basename(p) for p in paths if p not in found]
        if skipped:
            shown = ", ".join(skipped[:5]) + (" ..." if len(skipped) > 5 else "")
            warnings.append(
                f"{source}: {len(skipped)} file(s) skipped, not pcap or pcapng: {shown}"
            )
        if not found:
            errors.append(CaptureError(source, "a folder with no pcap or pcapng file in it"))
        inputs += found
    return inputs, warnings, errors


def group_files(inputs: list[str]) -> list[CaptureSet]:
    """The inputs grouped into rotated sets, in the order their first file was given.
    Standard input and a file given twice stay on their own."""
    sets: dict[str, CaptureSet] = {}
    for n, path in enumerate(inputs):
        key = f"-#{n}" if path == "-" else rotation_key(path)
        found = sets.get(key)
        if found is None or path in found.files:
            key = key if found is None else f"{key}#{n}"
            sets[key] = CaptureSet(path, [path])
        else:
            found.files.append(path)
            found.label = key
    return list(sets.values())


def first_time(path: str) -> int | None:
    """Timestamp of the first frame of a capture file, None when it has none."""
    with open_capture(path) as capture:
        for frame in capture.frames():
            return frame.time_ns
    return None


def order_by_time(files: list[str], times: dict[str, int | None]) -> list[str]:
    """Files in capture order: by first timestamp, then by name (empty files last)."""
    return sorted(files, key=lambda f: (times.get(f) is None, times.get(f) or 0, f))


def merge_info(label: str, infos: list[CaptureInfo]) -> CaptureInfo:
    """One CaptureInfo for the files of a set, read one after another."""
    merged = CaptureInfo(file=label)
    merged.files = [info.file for info in infos]
    for info in infos:
        add_info(merged, info)
    return merged


def add_info(merged: CaptureInfo, info: CaptureInfo) -> None:
    """Add the facts of one more file of a set (its warnings named after it)."""
    merged.format = merged.format or info.format
    if info.format and info.format != merged.format and "mixed" not in merged.format:
        merged.format = f"mixed ({merged.format}, {info.format})"
    merged.compression = merged.compression or info.compression
    merged.frames += info.frames
    times = [t for t in (merged.first_time_ns, info.first_time_ns) if t is not None]
    merged.first_time_ns = min(times, default=None)
    times = [t for t in (merged.last_time_ns, info.last_time_ns) if t is not None]
    merged.last_time_ns = max(times, default=None)
    for linktype, count in info.link_types.items():
        merged.link_types[linktype] = merged.link_types.get(linktype, 0) + count
    if info.snaplen is not None:
        merged.snaplen = max(merged.snaplen or 0, info.snaplen)
    merged.truncated += info.truncated
    merged.ip_frames += info.ip_frames
    merged.reassembled += info.reassembled
    merged.copy_frames |= info.copy_frames
    frames, first, most = merged.time_backwards
    more, first_more, most_more = info.time_backwards
    merged.time_backwards = (frames + more, first or first_more, max(most, most_more))
    for reason, count in info.undecoded.items():
        merged.undecoded[reason] = merged.undecoded.get(reason, 0) + count
    name = os.path.basename(info.file)
    merged.warnings += [f"{name}: {warning}" for warning in info.warnings]
    merged.secrets += info.secrets


class ChainedCapture:
    """The files of a set as one capture: frames numbered on from file to file.

    Duck-types ``Capture`` for ``packets()``: ``info`` is the set's, and the layers above
    count into it; each file's own facts are added to it as the file ends.
    """

    def __init__(self, capture_set: CaptureSet) -> None:
        self.source = capture_set.label
        self.files = list(capture_set.files)
        self.info = CaptureInfo(file=capture_set.label)
        self.info.files = list(self.files)
        self._current: Capture | None = None
        self._done_bytes = 0

    def frames(self) -> Iterator[Frame]:
        for batch in self.batches():
            yield from batch

    def batches(self, decoder: _core.Decoder | None = None) -> Iterator[list]:
        """Capture.batches over the files in turn (one decoder for all: a datagram's
        fragments may span two files)."""
        offset = 0
        for path in self.files:
            try:
                capture = open_capture(path, offset)
            except CaptureError as error:
                self.info.warnings.append(f"{error}: left out of the set")
                continue
            self._current = capture
            with capture:
                yield from capture.batches(decoder)
                own = capture.info
                self._done_bytes += capture.size() or 0
            self._current = None
            offset += own.frames
            add_info(self.info, own)

    def position(self) -> int | None:
        current = self._current.position() if self._current is not None else 0
        return self._done_bytes + (current or 0)

    def size(self) -> int | None:
        total = 0
        for path in self.files:
            with contextlib.suppress(OSError):
                total += os.path.getsize(path)
        return total or None

    def close(self) -> None:
        if self._current is not None:
            self._current.close()

    def __enter__(self) -> ChainedCapture:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

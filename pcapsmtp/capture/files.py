"""Open a capture from a path or standard input, undo compression, sniff the format.

No seek is ever needed, so ``tcpdump -w - | pcapsmtp analyze -`` and compressed files
work the same way as plain files.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import sys
import zlib
from collections.abc import Iterator
from typing import BinaryIO

from pcapsmtp.capture.model import CaptureInfo, Frame
from pcapsmtp.capture.pcap import PCAP_MAGICS, read_pcap
from pcapsmtp.capture.pcapng import PCAPNG_MAGIC, read_pcapng
from pcapsmtp.capture.timestamps import LAST_DATE_NS
from pcapsmtp.errors import CaptureError

STDIN = "-"
CHUNK = 1 << 20

COMPRESSIONS = {
    b"\x1f\x8b": ("gzip", lambda f: gzip.GzipFile(fileobj=f, mode="rb")),
    b"BZh": ("bzip2", lambda f: bz2.BZ2File(f, mode="rb")),
    b"\xfd7zXZ\x00": ("xz", lambda f: lzma.LZMAFile(f, mode="rb")),  # noqa: SIM115 (closed with the file)
}
DECOMPRESS_ERRORS = (OSError, EOFError, lzma.LZMAError, ValueError, zlib.error)
"""What a damaged compressed stream raises; gzip's zlib.error is no OSError."""
MAX_INFLATION = 100
"""Inflated bytes per compressed byte beyond which a compressed capture is taken for a
decompression bomb (Apache POI's ZipSecureFile draws the line at the same ratio). Real
captures compress 2 to 10 times; a bomb of zeros, a thousand times."""
MIN_INFLATED = 16 << 20
"""Below this much inflated data the ratio is not checked: small files of zeros are fine."""


class InflationLimit(ValueError):
    """A compressed capture inflated past MAX_INFLATION times its size."""


class _Rewound(io.RawIOBase):
    """A stream whose first bytes, already read to sniff the format, are served again.

    ``consumed`` counts the bytes served; given the stream that feeds a decompressor
    (``source``), reading stops with InflationLimit once more than MAX_INFLATION times what
    that stream served has come out: the capture is streamed, never inflated whole, and a
    bomb ends the reading instead of running for hours."""

    def __init__(self, head: bytes, rest: BinaryIO, source: _Rewound | None = None) -> None:
        self._head = head
        self._rest = rest
        self._source = source
        self.consumed = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if self._head:
            n = min(len(buffer), len(self._head))
            buffer[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        # read1, not read: a decompressor's read(n) collects n bytes and, when the stream
        # is cut short, raises EOFError and drops what it had collected: every frame before
        # the cut that still sat in that megabyte would be lost.
        data = self._rest.read1(len(buffer))
        buffer[: len(data)] = data
        self.consumed += len(data)
        source = self._source
        if (
            source is not None
            and self.consumed > MIN_INFLATED
            and self.consumed > MAX_INFLATION * source.consumed
        ):
            raise InflationLimit(
                f"it inflates to more than {MAX_INFLATION} times its size "
                f"({self.consumed >> 20} MiB from {source.consumed >> 20} MiB): "
                "a decompression bomb, or not a capture"
            )
        return len(data)


def _sniff(stream: BinaryIO, n: int = 8, source: _Rewound | None = None) -> tuple[bytes, BinaryIO]:
    head = stream.read(n)
    rewound = _Rewound(head, stream, source)
    return head, io.BufferedReader(rewound, CHUNK)


def _open_raw(source: str) -> BinaryIO:
    if source == STDIN:
        return sys.stdin.buffer
    try:
        if os.path.isdir(source):
            raise CaptureError(source, "is a directory, not a capture file")
        return open(source, "rb", buffering=CHUNK)
    except FileNotFoundError:
        raise CaptureError(source, "no such file") from None
    except PermissionError:
        raise CaptureError(source, "permission denied") from None
    except OSError as e:
        raise CaptureError(source, e.strerror or str(e)) from None


def _describe_start(head: bytes) -> str:
    if not head:
        return "empty file"
    printable = head.isascii() and all(32 <= b < 127 or b in b"\r\n\t" for b in head)
    shown = head.decode("ascii").strip() if printable else head[:8].hex(" ")
    return f"not a pcap or pcapng capture (it starts with {shown!r})"


class Capture:
    """An open capture: its facts, and its frames as one streaming pass.

    Opening checks the file header, so an unreadable input fails at once with a
    CaptureError; damage later in the file becomes a warning in ``info``.
    """

    def __init__(self, source: str, frame_offset: int = 0) -> None:
        self.source = source
        self.info = CaptureInfo(file=source)
        self.frame_offset = frame_offset
        """Added to every frame number: the frames of the files before this one in a
        rotated set (pcapsmtp.capture.sets), so numbers run on as in one merged capture."""
        self._raw = _open_raw(source)
        try:
            head, stream = _sniff(self._raw)
            for magic, (name, opener) in COMPRESSIONS.items():
                if head.startswith(magic):
                    self.info.compression = name
                    head, stream = _sniff(opener(stream), source=stream.raw)
                    break
        except DECOMPRESS_ERRORS as e:
            self.close()
            raise CaptureError(source, f"cannot decompress: {e}") from None
        if head[:4] in PCAP_MAGICS:
            self._records = read_pcap
        elif head[:4] == PCAPNG_MAGIC:
            self._records = read_pcapng
        else:
            self.close()
            raise CaptureError(source, _describe_start(head))
        self._stream = stream

    def frames(self) -> Iterator[Frame]:
        """Every record of the file, in order; reading errors end it with a warning."""
        info = self.info
        kept = 0  # the most bytes kept of a cut frame: the snap length actually applied
        offset = self.frame_offset
        undated = 0  # frames whose time is not a date (pcapsmtp.capture.timestamps)
        first_undated = 0
        try:
            for frame in self._records(self._stream, info):
                if offset:
                    frame.number += offset
                info.frames += 1
                if not 0 <= frame.time_ns <= LAST_DATE_NS:
                    undated += 1
                    first_undated = first_undated or frame.number
                if info.first_time_ns is None:
                    info.first_time_ns = frame.time_ns
                info.last_time_ns = frame.time_ns
                info.link_types[frame.linktype] = info.link_types.get(frame.linktype, 0) + 1
                if frame.wire_len > len(frame.data):
                    info.truncated += 1
                    kept = max(kept, len(frame.data))
                yield frame
        except InflationLimit as e:
            info.warnings.append(
                f"reading stopped after frame {info.frames}: the {info.compression} stream {e}; "
                "the frames before it were read"
            )
        except DECOMPRESS_ERRORS as e:
            info.warnings.append(
                f"the {info.compression or 'file'} stream is damaged after frame "
                f"{info.frames} ({e}); the frames before it were read"
            )
        if undated:
            info.warnings.append(
                f"{undated} frame(s) have a time that is not a date (before 1970 or after "
                f"year 9999; first: frame {first_undated}): shown as @seconds since 1970"
            )
        if info.truncated:
            # Not info.snaplen: editcap -s and some capture tools cut frames without
            # lowering the snap length the file header announces.
            info.warnings.append(
                f"{info.truncated} frame(s) were cut short by the snap length ({kept} bytes): "
                "their payload is incomplete; capture again with 'tcpdump -s 0'"
            )

    def position(self) -> int | None:
        """Bytes of the input read so far (of the compressed file when it is compressed);
        None for standard input. For progress displays: it runs ahead of the frames by
        what the buffers hold."""
        if self.source == STDIN:
            return None
        try:
            return self._raw.tell()
        except (OSError, ValueError):
            return None

    def size(self) -> int | None:
        """Size of the input file in bytes; None for standard input or a pipe."""
        if self.source == STDIN:
            return None
        try:
            return os.fstat(self._raw.fileno()).st_size or None
        except (OSError, ValueError):
            return None

    def close(self) -> None:
        if self.source != STDIN:
            self._raw.close()

    def __enter__(self) -> Capture:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_capture(source: str, frame_offset: int = 0) -> Capture:
    """Open a pcap or pcapng file (plain or compressed), or ``-`` for standard input."""
    return Capture(source, frame_offset)

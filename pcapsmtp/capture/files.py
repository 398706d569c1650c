"""Open a capture from a path or standard input; the core reads it.

Opening the file stays here (its errors name the file in the terms a user knows); the
compiled core (``pcapsmtp._core``, core/src/) undoes compression, sniffs the format and
turns pcap and pcapng records into frames, in batches. No seek is ever needed, so
``tcpdump -w - | pcapsmtp analyze -`` and compressed files work the same way as plain files.
"""

from __future__ import annotations

import lzma
import os
import stat
import sys
import zlib
from collections.abc import Iterator
from typing import BinaryIO

from pcapsmtp import _core
from pcapsmtp.capture.model import CaptureInfo, DecryptionSecrets, Frame
from pcapsmtp.errors import CaptureError

STDIN = "-"
CHUNK = 1 << 20

COMPRESSIONS = {b"\x1f\x8b": "gzip", b"BZh": "bzip2", b"\xfd7zXZ\x00": "xz"}
"""Magic -> name of the compressions the core undoes (core/src/input.rs)."""
DECOMPRESS_ERRORS = (OSError, EOFError, lzma.LZMAError, ValueError, zlib.error)
"""What Python's own decompressors raise on a damaged stream (tshark_command copies a
compressed capture with them for tshark); gzip's zlib.error is no OSError."""
MAX_INFLATION = 100
"""Inflated bytes per compressed byte beyond which a compressed capture is taken for a
decompression bomb (Apache POI's ZipSecureFile draws the line at the same ratio). Real
captures compress 2 to 10 times; a bomb of zeros, a thousand times. Read when a capture is
opened and handed to the core."""
MIN_INFLATED = 16 << 20
"""Below this much inflated data the ratio is not checked: small files of zeros are fine."""


def core_reader(stream: BinaryIO, frame_offset: int = 0, path: str | None = None) -> _core.Reader:
    """The core's reader of a binary stream, its compression and format already sniffed;
    with ``path`` (the regular file ``stream`` reads), the core reads that file itself."""
    return _core.Reader(stream, Frame, frame_offset, MIN_INFLATED, MAX_INFLATION, path)


def read_frames(reader: _core.Reader, info: CaptureInfo) -> Iterator[Frame]:
    """The frames of an open core reader, with what it learns kept in ``info`` as it goes:
    snap length, decryption secrets, and at the end the warning about damage or a limit."""
    for batch in read_batches(reader, info):
        yield from batch


def read_batches(
    reader: _core.Reader, info: CaptureInfo, decoder: _core.Decoder | None = None
) -> Iterator[list]:
    """Batches of an open core reader: Frames, or with ``decoder`` the TcpSegments and
    IcmpErrors the decoder makes of them (capture.packets); what the reader learns is kept
    in ``info`` as it goes."""
    info.format = reader.format
    while True:
        batch = reader.next_batch() if decoder is None else decoder.decode(reader)
        if not batch and (decoder is None or batch is None):
            break
        if reader.snaplen is not None:
            info.snaplen = reader.snaplen
        info.secrets.extend(DecryptionSecrets(*s) for s in reader.take_secrets())
        yield batch
    if reader.snaplen is not None:
        info.snaplen = reader.snaplen
    info.secrets.extend(DecryptionSecrets(*s) for s in reader.take_secrets())
    info.warnings.extend(reader.take_warnings())


def _open_raw(source: str) -> BinaryIO:
    if source == STDIN:
        return sys.stdin.buffer
    return open_file(source)


def open_file(source: str, buffering: int = CHUNK) -> BinaryIO:
    """A capture file opened for reading, or a CaptureError saying in one line why not."""
    try:
        if os.path.isdir(source):
            raise CaptureError(source, "is a directory, not a capture file")
        return open(source, "rb", buffering=buffering)
    except FileNotFoundError:
        raise CaptureError(source, "no such file") from None
    except PermissionError:
        raise CaptureError(source, "permission denied") from None
    except OSError as e:
        raise CaptureError(source, e.strerror or str(e)) from None


def _regular(stream: BinaryIO) -> bool:
    """Whether ``stream`` reads a regular file (not a pipe, a FIFO or a device)."""
    try:
        return stat.S_ISREG(os.fstat(stream.fileno()).st_mode)
    except (OSError, ValueError, AttributeError):
        return False


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

    def __init__(self, source: str, frame_offset: int = 0, stream: BinaryIO | None = None) -> None:
        self.source = source
        self.info = CaptureInfo(file=source)
        self.frame_offset = frame_offset
        """Added to every frame number: the frames of the files before this one in a
        rotated set (pcapsmtp.capture.sets), so numbers run on as in one merged capture."""
        self._raw = _open_raw(source) if stream is None else stream
        self._path = source if stream is None and _regular(self._raw) else None
        """The file the core reads itself (no Python call per chunk), when a regular one."""
        try:
            self._reader = core_reader(self._raw, frame_offset, self._path)
        except BaseException:
            self.close()
            raise
        if self._reader.open_error is not None:
            self.close()
            raise CaptureError(source, self._reader.open_error)
        self.info.compression = self._reader.compression
        if self._reader.format is None:
            self.close()
            raise CaptureError(source, _describe_start(self._reader.head))

    def frames(self) -> Iterator[Frame]:
        """Every record of the file, in order; reading errors end it with a warning."""
        for batch in self.batches():
            yield from batch

    def batches(self, decoder: _core.Decoder | None = None) -> Iterator[list]:
        """The file's frames in batches, or with ``decoder`` the packets it decodes from
        them (pcapsmtp.capture.packets); the frames are counted in ``info`` as they are
        read, and what was odd about them becomes its warnings at the end."""
        info = self.info
        for batch in read_batches(self._reader, info, decoder):
            info.frames = self._reader.tally()[0]
            yield batch
        tally = self._reader.tally()
        info.frames, info.first_time_ns, info.last_time_ns, link_types = tally[:4]
        info.link_types = dict(link_types)
        info.truncated, kept, undated, first_undated, info.time_backwards = tally[4:]
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
        if self._path is not None:
            return self._reader.raw_position
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
        reader = getattr(self, "_reader", None)
        if reader is not None:
            reader.close()
        if self.source != STDIN:
            self._raw.close()

    def __enter__(self) -> Capture:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_capture(source: str, frame_offset: int = 0, stream: BinaryIO | None = None) -> Capture:
    """Open a pcap or pcapng file (plain or compressed), or ``-`` for standard input;
    ``stream``: read this binary stream instead, named ``source`` (the live mode's reader,
    pcapsmtp.analysis.follow)."""
    return Capture(source, frame_offset, stream)

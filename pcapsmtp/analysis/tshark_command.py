"""tshark's pass for TLS decryption (pcapsmtp.analysis.tlsdecrypt): the file it reads,
tshark found the way pyshark finds it, its version, and its command line.

tshark preferences, each for a reason:
- ``tls.desegment_ssl_application_data: FALSE``: each record is exported once; with TLS
  reassembly, bytes of a line cut between records are exported again in the PDU the SMTP
  dissector asked for;
- ``smtp.desegment_data: FALSE``: tshark need not also reassemble and parse each message.
"""

from __future__ import annotations

import bz2
import contextlib
import functools
import lzma
import shutil
import sys
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from pcapsmtp.analysis.extras import TLS, needs
from pcapsmtp.analysis.model import DecryptionError
from pcapsmtp.capture.files import DECOMPRESS_ERRORS
from pcapsmtp.errors import CaptureError
from pcapsmtp.smtp.model import Session
from pcapsmtp.smtp.tracker import SMTP_PORTS

STDIN = "-"
EXPORT_TAP = "OSI layer 7"
PREFERENCES = ("tls.desegment_ssl_application_data:FALSE", "smtp.desegment_data:FALSE")
TLS_SMTP_PORTS = (465,)
"""Ports tshark dissects as TLS with SMTP inside (implicit TLS, RFC 8314); 25 and 587 it
dissects as SMTP, which hands over to TLS after STARTTLS."""


# -- where tshark reads from --------------------------------------------------------------


@contextmanager
def readable_source(source: str, keylog: str | None) -> Iterator[str]:
    """The path to read the capture from: ``source`` itself, or for standard input with a key
    log a temporary copy, so that tshark can read the same bytes after our own pass."""
    if source != STDIN or keylog is None:
        yield source
        return
    with tempfile.NamedTemporaryFile(prefix="pcapsmtp-stdin-", suffix=".cap") as copy:
        shutil.copyfileobj(sys.stdin.buffer, copy, 1 << 20)
        copy.flush()
        try:
            yield copy.name
        except CaptureError as error:
            raise CaptureError(source, error.reason) from None


@contextmanager
def uncompressed(path: str, compression: str | None) -> Iterator[str]:
    """tshark reads plain and gzip captures itself; bzip2 and xz it cannot, so they are
    decompressed to a temporary file first."""
    opener = {"bzip2": bz2.open, "xz": lzma.open}.get(compression or "")
    if opener is None:
        yield path
        return
    with tempfile.NamedTemporaryFile(prefix="pcapsmtp-", suffix=".cap") as plain:
        # A damaged stream stops the copy where our own reader stopped (its warning says so);
        # tshark then reads what there is.
        with contextlib.suppress(*DECOMPRESS_ERRORS), opener(path, "rb") as packed:
            shutil.copyfileobj(packed, plain, 1 << 20)
        plain.flush()
        yield plain.name


# -- tshark --------------------------------------------------------------------------------


def find_tshark() -> str:
    """tshark's path as pyshark finds it: its config.ini's tshark_path, then PATH."""
    try:
        from pyshark.tshark.tshark import TSharkNotFoundException, get_process_path
    except ImportError:
        raise DecryptionError(f"{needs('it', TLS)}; the TLS sessions stay encrypted") from None
    try:
        return get_process_path()
    except TSharkNotFoundException:
        raise DecryptionError(
            "it needs tshark (Wireshark's command-line program, Debian package 'tshark'), "
            "which is not installed or not on PATH; the TLS sessions stay encrypted"
        ) from None
    except Exception as error:  # pyshark reads a config.ini from the current directory
        raise DecryptionError(f"pyshark could not look for tshark: {error}") from None


@functools.lru_cache(maxsize=4)
def tshark_version(tshark: str) -> tuple[int, int]:
    from pyshark.tshark.tshark import get_tshark_version

    try:
        version = get_tshark_version(tshark)
    except Exception as error:  # not runnable, or it printed no version
        raise DecryptionError(f"tshark ({tshark}) does not run: {error}") from None
    return version.major, version.minor


def stream_filter(streams: Iterable[int], version: tuple[int, int], limit: int = 32_000) -> str:
    """``tcp.stream in {...}``: Wireshark 4 wants commas between set elements and knows ranges
    (runs become ``a..b``); older versions get the elements separated by spaces.

    A filter longer than ``limit`` (one argument may not pass 128 KB on Linux) is made shorter
    by letting ranges take in the streams between them; those export nothing we use (no TLS,
    or not SMTP, which ``_Routes`` drops), and tshark dissects every frame anyway.
    """
    ordered = sorted(set(streams))
    if version < (4, 0):
        text = "tcp.stream in {" + " ".join(map(str, ordered)) + "}"
        if len(text) <= limit:
            return text
        return f"tcp.stream >= {ordered[0]} && tcp.stream <= {ordered[-1]}"
    gap = 1
    while True:
        runs = [[ordered[0], ordered[0]]]
        for stream in ordered[1:]:
            if stream - runs[-1][1] <= gap:
                runs[-1][1] = stream
            else:
                runs.append([stream, stream])
        text = ",".join(f"{a}..{b}" if b > a else str(a) for a, b in runs)
        if len(text) + 16 <= limit or len(runs) == 1:
            return "tcp.stream in {" + text + "}"
        gap *= 2


def tshark_command(
    tshark: str,
    path: str,
    sessions: list[Session],
    keylog: str | None,
    version: tuple[int, int],
) -> list[str]:
    """One tshark run over the capture, exporting the plaintext of the sessions' TLS records
    as pcapng on standard output."""
    command = [tshark, "-n", "-r", path]
    for preference in PREFERENCES:
        command += ["-o", preference]
    if keylog is not None:
        command += ["-o", f"tls.keylog_file:{keylog}"]
    for port, implicit in sorted({(s.server.port, s.tls.mode == "implicit") for s in sessions}):
        command += _decode_as(port, implicit)
    command += ["-Y", stream_filter((s.flow.stream for s in sessions), version)]
    return [*command, "-U", EXPORT_TAP, "-F", "pcapng", "-w", "-"]


def _decode_as(port: int, implicit: bool) -> list[str]:
    """Make tshark see SMTP (and TLS inside it) on a port it does not know for SMTP."""
    if implicit and port not in TLS_SMTP_PORTS:
        return ["-d", f"tcp.port=={port},tls", "-d", f"tls.port=={port},smtp"]
    if not implicit and port not in SMTP_PORTS:
        return ["-d", f"tcp.port=={port},smtp"]
    return []

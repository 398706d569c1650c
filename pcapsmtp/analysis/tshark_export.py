"""What tshark's Export PDU tap writes, read back as it comes: the plaintext of each
decrypted TLS record (pcapsmtp.analysis.tlsdecrypt), with the frame that completed it and its
addresses and ports."""

from __future__ import annotations

import re
import struct
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass

from pcapsmtp.analysis.model import DecryptionError
from pcapsmtp.capture import CaptureInfo, Frame
from pcapsmtp.capture.pcapng import read_pcapng

LINKTYPE_WIRESHARK_UPPER_PDU = 252

# Exported PDU tags (Wireshark's wsutil/exported_pdu_tlvs.h).
TAG_END_OF_OPT = 0
TAG_IPV4_SRC, TAG_IPV4_DST, TAG_IPV6_SRC, TAG_IPV6_DST = 20, 21, 22, 23
TAG_SRC_PORT, TAG_DST_PORT = 25, 26
TAG_ORIG_FNO = 30
DAMAGED_CAPTURE = re.compile(r"appears to have been cut short|appears to be damaged or corrupt")
"""tshark's exit status 2 for a capture it read up to damage, which our own reader reported
already: not a failure of decryption."""


@dataclass(slots=True, frozen=True)
class Plaintext:
    """The application data of one decrypted TLS record."""

    frame: int
    """The frame that completed the record (Wireshark's frame number)."""
    time_ns: int
    src: bytes
    sport: int
    dst: bytes
    dport: int
    data: bytes


def export_plaintext(command: list[str], timeout: float) -> Iterator[Plaintext]:
    """Run tshark; yield each decrypted record as it comes. Raises DecryptionError at the end
    when tshark failed or ran out of time (what came before it stays yielded)."""
    expired = threading.Event()
    with tempfile.TemporaryFile() as errors:
        try:
            process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=errors
            )
        except OSError as error:
            raise DecryptionError(f"tshark could not be started: {error}") from None

        def expire() -> None:
            expired.set()
            process.kill()

        timer = threading.Timer(timeout, expire)
        timer.daemon = True
        timer.start()
        info = CaptureInfo(file="tshark")
        try:
            for frame in read_pcapng(process.stdout, info):
                record = parse_exported(frame)
                if record is not None:
                    yield record
            if info.warnings:  # its output cannot be read further: no use letting it run
                process.kill()
            process.wait()  # the timer bounds it
        finally:
            timer.cancel()
            if process.poll() is None:  # the consumer stopped early
                process.kill()
                process.wait()
            process.stdout.close()
        if expired.is_set():
            raise DecryptionError(
                f"tshark did not finish decrypting within {timeout:.0f} s and was stopped; "
                "the decrypted dialogue may end early"
            )
        if info.warnings:
            raise DecryptionError(f"tshark's output could not be read: {info.warnings[0]}")
        errors.seek(0)
        message = _last_error(errors.read())
        if process.returncode != 0 and not DAMAGED_CAPTURE.search(message):
            raise DecryptionError(f"tshark failed (exit status {process.returncode}): {message}")


def _last_error(stderr: bytes) -> str:
    lines = [
        line.strip()
        for line in stderr.decode("utf-8", "replace").splitlines()
        if line.strip() and "This could be dangerous" not in line
    ]
    return lines[-1] if lines else "no message"


def parse_exported(frame: Frame) -> Plaintext | None:
    """An exported PDU: tags (2-byte type, 2-byte length, value) up to an end tag, then the
    PDU. None for anything else, or a PDU without addresses, ports or frame number."""
    if frame.linktype != LINKTYPE_WIRESHARK_UPPER_PDU:
        return None
    data, pos, tags = frame.data, 0, {}
    while pos + 4 <= len(data):
        tag, length = struct.unpack_from(">HH", data, pos)
        pos += 4
        if tag == TAG_END_OF_OPT:
            break
        tags[tag] = data[pos : pos + length]
        pos += length
    src = tags.get(TAG_IPV4_SRC) or tags.get(TAG_IPV6_SRC)
    dst = tags.get(TAG_IPV4_DST) or tags.get(TAG_IPV6_DST)
    numbers = [tags.get(t, b"") for t in (TAG_SRC_PORT, TAG_DST_PORT, TAG_ORIG_FNO)]
    if not src or not dst or any(len(n) != 4 for n in numbers):
        return None
    sport, dport, number = (struct.unpack(">I", n)[0] for n in numbers)
    return Plaintext(number, frame.time_ns, src, sport, dst, dport, data[pos:])

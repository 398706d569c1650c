"""The SMTP dialogue inside TLS, decrypted by Wireshark with the client's key log.

We write no TLS cryptography: tshark (found the way pyshark finds it) reads the capture once,
restricted by a display filter to the streams of the sessions that went into TLS, with the key
log as ``tls.keylog_file`` (keys in a pcapng Decryption Secrets Block it takes by itself). Its
Export PDU tap ("OSI layer 7") writes the application data of each decrypted TLS record as one
packet, tagged with the frame that completed the record and the record's addresses and ports
(LINKTYPE_WIRESHARK_UPPER_PDU). That pcapng comes over a pipe into our own pcapng reader as
tshark writes it, so the plaintext is exact, per direction, in capture order, never all in
memory, and fed to the same SMTP dialogue parser as clear text (``SmtpTracker.decrypted``).

Why not pyshark's FileCapture and a field such as the SMTP layer's raw bytes: parsing tshark's
per-packet JSON in Python took 517 s where tshark's own pass took 6 s (a 61 MB capture of TLS
sessions, docs/performance-log.md), and those bytes are the SMTP dissector's view of a record,
where the tap hands over the record itself.

tshark preferences, each for a reason:
- ``tls.desegment_ssl_application_data: FALSE``: each record is exported once; with TLS
  reassembly, bytes of a line cut between records are exported again in the PDU the SMTP
  dissector asked for;
- ``smtp.desegment_data: FALSE``: tshark need not also reassemble and parse each message.

Anything that stops decryption (no tshark, a key log without the session's secrets, a damaged
key log, tshark failing or running out of time) becomes one warning in the capture's warnings;
the sessions concerned stay "encrypted", as without a key log.
"""

from __future__ import annotations

import bz2
import contextlib
import functools
import lzma
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from pcapsmtp.analysis.extras import TLS, needs
from pcapsmtp.capture import CaptureInfo, DecryptionSecrets, Frame
from pcapsmtp.capture.files import DECOMPRESS_ERRORS
from pcapsmtp.capture.pcapng import read_pcapng
from pcapsmtp.errors import CaptureError, PcapsmtpError
from pcapsmtp.smtp.events import CLIENT, SERVER
from pcapsmtp.smtp.model import Session
from pcapsmtp.smtp.tls.scanner import TlsScanner
from pcapsmtp.smtp.tracker import SMTP_PORTS, SmtpTracker

STDIN = "-"
LINKTYPE_WIRESHARK_UPPER_PDU = 252
EXPORT_TAP = "OSI layer 7"
PREFERENCES = ("tls.desegment_ssl_application_data:FALSE", "smtp.desegment_data:FALSE")
TLS_SMTP_PORTS = (465,)
"""Ports tshark dissects as TLS with SMTP inside (implicit TLS, RFC 8314); 25 and 587 it
dissects as SMTP, which hands over to TLS after STARTTLS."""

# Exported PDU tags (Wireshark's wsutil/exported_pdu_tlvs.h).
TAG_END_OF_OPT = 0
TAG_IPV4_SRC, TAG_IPV4_DST, TAG_IPV6_SRC, TAG_IPV6_DST = 20, 21, 22, 23
TAG_SRC_PORT, TAG_DST_PORT = 25, 26
TAG_ORIG_FNO = 30

TIMEOUT_S = 120.0
TIMEOUT_PER_MB_S = 1.0
"""tshark's time limit: a base plus this per megabyte of capture (it needed at most 0.13 s of
CPU per MB in docs/performance.md); past it tshark is stopped and what it decrypted so far is
kept."""

DAMAGED_CAPTURE = re.compile(r"appears to have been cut short|appears to be damaged or corrupt")
"""tshark's exit status 2 for a capture it read up to damage, which our own reader reported
already: not a failure of decryption."""

KEY_LOG_LINE = re.compile(rb"([A-Z][A-Z0-9_]*) ([0-9A-Fa-f]{16,}) ([0-9A-Fa-f]{16,})")
"""NSS key log format: label, client random (or for RSA the encrypted pre-master secret's
first bytes), secret; lines starting with '#' are comments."""


class DecryptionError(PcapsmtpError):
    """Decryption could not be done; the message is the warning users read."""


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


@dataclass(slots=True)
class KeyLog:
    """What the key log sources hold for the sessions we want to decrypt."""

    names: list[str] = field(default_factory=list)
    """Where the keys come from, for messages."""
    lines: int = 0
    """Key log lines (comments and blank lines left out)."""
    damaged: int = 0
    """Lines that are not ``LABEL <hex> <hex>``."""
    randoms: set[bytes] = field(default_factory=set)
    """Client randoms, among those we look for, that have at least one secret."""
    notes: list[str] = field(default_factory=list)
    """Problems worth a warning that did not stop decryption."""

    @property
    def file_usable(self) -> bool:
        """The key log file (if any) is among the sources."""
        return any(name.startswith("the key log ") for name in self.names)


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
def _uncompressed(path: str, compression: str | None) -> Iterator[str]:
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


# -- key logs ------------------------------------------------------------------------------


def read_key_log(lines: Iterable[bytes], wanted: set[bytes], keys: KeyLog) -> None:
    """Count ``lines`` into ``keys``, remembering the client randoms in ``wanted``."""
    for raw in lines:
        line = raw.strip()
        if not line or line.startswith(b"#"):
            continue
        keys.lines += 1
        match = KEY_LOG_LINE.fullmatch(line)
        if match is None:
            keys.damaged += 1
            continue
        try:
            random = bytes.fromhex(match[2].decode())
        except ValueError:  # an odd number of hex digits
            keys.damaged += 1
            continue
        if random in wanted:
            keys.randoms.add(random)


def gather_keys(keylog: str | None, info: CaptureInfo, wanted: set[bytes]) -> KeyLog:
    """The key sources: the keys embedded in the capture, then the key log file. Raises
    DecryptionError when none of them holds a single key log line."""
    keys = KeyLog()
    embedded = [s.data for s in info.secrets if s.secrets_type == DecryptionSecrets.TLS_KEY_LOG]
    if embedded:
        keys.names.append("the keys embedded in the capture")
        for data in embedded:
            read_key_log(data.splitlines(), wanted, keys)
    if keylog is None:
        return keys
    before = (keys.lines, keys.damaged)
    try:
        with open(keylog, "rb") as lines:
            read_key_log(lines, wanted, keys)
    except OSError as error:
        raise DecryptionError(f"cannot read the key log {keylog}: {error.strerror}") from None
    if keys.lines - before[0] > keys.damaged - before[1]:
        keys.names.append(f"the key log {keylog}")
        return keys
    not_a_key_log = (
        f"{keylog} is not a TLS key log (no line like 'CLIENT_RANDOM <client random> "
        "<secret>', the SSLKEYLOGFILE format)"
    )
    if not embedded:
        raise DecryptionError(f"{not_a_key_log}; the TLS sessions stay encrypted")
    keys.notes.append(not_a_key_log)
    keys.lines, keys.damaged = before
    return keys


# -- the whole step ------------------------------------------------------------------------


def keys_at_hand(info: CaptureInfo, keylog: str | None) -> bool:
    """A key log was given or the capture so far holds TLS keys: TLS sessions are worth
    holding for decryption (pcapng writers put Decryption Secrets Blocks before the packets
    they open)."""
    return keylog is not None or any(
        s.secrets_type == DecryptionSecrets.TLS_KEY_LOG for s in info.secrets
    )


def _worth_decrypting(scanner: TlsScanner | None) -> bool:
    """The handshake got as far as encrypted records: there may be SMTP inside."""
    return scanner is not None and not scanner.failed and bool(scanner.facts.encrypted_from)


def decrypt_held(
    tracker: SmtpTracker, path: str, info: CaptureInfo, keylog: str | None
) -> list[Session]:
    """Decrypt the TLS sessions ``tracker`` holds, if a key log or embedded keys allow, and
    return every held session finished. ``path`` is what tshark reads (``-`` when the capture
    came from standard input and was not kept); what goes wrong lands in ``info.warnings``."""
    wanted = {
        session.flow.stream: (session, scanner.facts.client_random)
        for session, scanner in tracker.held()
        if _worth_decrypting(scanner)
    }
    if wanted and keys_at_hand(info, keylog):
        if path == STDIN:
            info.warnings.append(
                "TLS decryption: the capture holds TLS keys but came from standard input, "
                "which tshark cannot read again; save it to a file to decrypt its TLS sessions"
            )
        else:
            try:
                _decrypt(tracker, wanted, path, info, keylog)
            except DecryptionError as error:
                info.warnings.append(f"TLS decryption: {error}")
    return tracker.finish_held()


def _decrypt(
    tracker: SmtpTracker,
    wanted: dict[int, tuple[Session, bytes | None]],
    path: str,
    info: CaptureInfo,
    keylog: str | None,
) -> None:
    sessions = [session for session, _ in wanted.values()]
    randoms = {stream: random for stream, (_, random) in wanted.items()}
    keys = gather_keys(keylog, info, {r for r in randoms.values() if r is not None})
    info.warnings += [f"TLS decryption: {note}" for note in keys.notes]
    tshark = find_tshark()
    version = tshark_version(tshark)
    routes = _Routes(sessions)
    failure = None
    with _uncompressed(path, info.compression) as readable:
        command = tshark_command(
            tshark, readable, sessions, keylog if keys.file_usable else None, version
        )
        timeout = TIMEOUT_S + TIMEOUT_PER_MB_S * _size_mb(readable)
        try:
            for record in export_plaintext(command, timeout):
                routed = routes.find(record)
                if routed is not None:
                    tracker.decrypted(*routed, record.data, record.frame, record.time_ns)
        except DecryptionError as error:
            failure = error
    if keys.damaged:
        info.warnings.append(
            f"TLS decryption: {keys.damaged} of {keys.lines} lines in {' and '.join(keys.names)} "
            "are not key log lines (damaged?) and were ignored"
        )
    missing = _not_decrypted(sessions, routes.seen, randoms, keys)
    if missing:
        info.warnings.append(f"TLS decryption: {missing}")
    if failure is not None:
        raise failure


def _size_mb(path: str) -> float:
    try:
        return os.path.getsize(path) / 1e6
    except OSError:
        return 0.0


class _Routes:
    """Exported records -> (tcp.stream, sender), by addresses, ports and frame range (a
    4-tuple can come back later as another connection)."""

    def __init__(self, sessions: list[Session]) -> None:
        self._by_tuple: dict[tuple, list[tuple[int, int, int, str]]] = {}
        for session in sessions:
            flow, client, server = session.flow, session.client, session.server
            ends = ((client, server, CLIENT), (server, client, SERVER))
            for src, dst, sender in ends:
                key = (src.ip, src.port, dst.ip, dst.port)
                entry = (flow.first_frame, flow.last_frame, flow.stream, sender)
                self._by_tuple.setdefault(key, []).append(entry)
        self.seen: dict[int, set[str]] = {}
        """tcp.stream -> the senders whose plaintext came."""

    def find(self, record: Plaintext) -> tuple[int, str] | None:
        key = (record.src, record.sport, record.dst, record.dport)
        for first, last, stream, sender in self._by_tuple.get(key, ()):
            if first <= record.frame <= last:
                self.seen.setdefault(stream, set()).add(sender)
                return stream, sender
        return None


def _not_decrypted(
    sessions: list[Session],
    seen: dict[int, set[str]],
    randoms: dict[int, bytes | None],
    keys: KeyLog,
) -> str:
    """One sentence on the sessions that stayed encrypted (or half so), and why."""
    source = " and ".join(keys.names)
    reasons: dict[str, list[int]] = {}
    for session in sessions:
        stream = session.flow.stream
        senders = seen.get(stream, set())
        if senders == {CLIENT, SERVER}:
            continue
        random = randoms.get(stream)
        if senders:
            reason = f"only the {next(iter(senders))}'s side was decrypted: {source} lacks "
            reason += "the other side's secret"
        elif random is None:
            reason = "its ClientHello is not in the capture, so no key log line can be matched"
        elif random not in keys.randoms:
            reason = f"{source} has no secrets for its client random"
        else:
            reason = f"the secrets for it in {source} did not decrypt it (damaged or wrong?)"
        reasons.setdefault(reason, []).append(stream)
    if not reasons:
        return ""
    total = sum(len(streams) for streams in reasons.values())
    parts = [f"tcp.stream {_streams(streams)}: {reason}" for reason, streams in reasons.items()]
    return f"{total} of {len(sessions)} TLS session(s) not decrypted; " + "; ".join(parts)


def _streams(streams: list[int]) -> str:
    shown = ", ".join(map(str, streams[:10]))
    return shown + (f" and {len(streams) - 10} more" if len(streams) > 10 else "")

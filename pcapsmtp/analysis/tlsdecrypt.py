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

Anything that stops decryption (no tshark, a key log without the session's secrets, a damaged
key log, tshark failing or running out of time) becomes one warning in the capture's warnings;
the sessions concerned stay "encrypted", as without a key log.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from pcapsmtp.analysis.keylog import KeyLog, gather_keys
from pcapsmtp.analysis.model import DecryptionError
from pcapsmtp.analysis.tshark_command import (
    STDIN,
    find_tshark,
    tshark_command,
    tshark_version,
    uncompressed,
)
from pcapsmtp.capture import CaptureInfo, DecryptionSecrets
from pcapsmtp.smtp.events import CLIENT, SERVER
from pcapsmtp.smtp.model import Session
from pcapsmtp.smtp.tls.scanner import TlsScanner
from pcapsmtp.smtp.tracker import SmtpTracker

if TYPE_CHECKING:
    from pcapsmtp.analysis.tshark_export import Plaintext

TIMEOUT_S = 120.0
TIMEOUT_PER_MB_S = 1.0
"""tshark's time limit: a base plus this per megabyte of capture (it needed at most 0.13 s of
CPU per MB in docs/performance.md); past it tshark is stopped and what it decrypted so far is
kept."""


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
    with uncompressed(path, info.compression) as readable:
        command = tshark_command(
            tshark, readable, sessions, keylog if keys.file_usable else None, version
        )
        timeout = TIMEOUT_S + TIMEOUT_PER_MB_S * _size_mb(readable)
        # here: the reader of tshark's export (subprocess, the pcapng reader) is only loaded
        # when a capture has sessions to decrypt (8 ms of every other run's start-up)
        from pcapsmtp.analysis.tshark_export import export_plaintext

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

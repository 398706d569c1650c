"""TLS key logs (the SSLKEYLOGFILE format) and the keys a pcapng capture embeds: what they
hold for the sessions to decrypt (pcapsmtp.analysis.tlsdecrypt)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from pcapsmtp.analysis.model import DecryptionError
from pcapsmtp.capture import CaptureInfo, DecryptionSecrets

KEY_LOG_LINE = re.compile(rb"([A-Z][A-Z0-9_]*) ([0-9A-Fa-f]{16,}) ([0-9A-Fa-f]{16,})")
"""NSS key log format: label, client random (or for RSA the encrypted pre-master secret's
first bytes), secret; lines starting with '#' are comments."""


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

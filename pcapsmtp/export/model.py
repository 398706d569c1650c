"""What an export reports, and the error when it cannot be written."""

from __future__ import annotations

from dataclasses import dataclass, field

from pcapsmtp.errors import PcapsmtpError


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
    redacted_echoes: int = 0
    """Credentials a later line repeated (a server's echo), overwritten too."""
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
    dns_frames: int = 0
    """Frames of the DNS lookups the session's findings rest on (export.dns)."""

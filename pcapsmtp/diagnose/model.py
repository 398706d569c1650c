"""Findings: a stable code, a severity, the evidence frames and what to do about it."""

from __future__ import annotations

from dataclasses import dataclass, field

ERROR = "error"
"""What made mail fail."""
WARNING = "warning"
"""Trouble that did not stop mail, or that will."""
INFO = "info"
"""Worth knowing: PMTUD that worked, a clamped MSS, a masked banner that did no harm."""

SEVERITY_ORDER = {ERROR: 0, WARNING: 1, INFO: 2}


@dataclass(slots=True)
class Finding:
    code: str
    """A stable identifier from docs/findings.md (never renamed)."""
    severity: str
    summary: str
    """One line a mail admin reads first, with the numbers that matter."""
    detail: str
    """A paragraph: what was measured, how it was decided, where the evidence comes from."""
    frames: list[int] = field(default_factory=list)
    """Evidence frames, as Wireshark numbers them (at most MAX_FRAMES)."""
    frames_left_out: int = 0
    """Evidence frames beyond MAX_FRAMES, counted and not listed."""
    filter: str = ""
    """A Wireshark display filter that shows the evidence."""
    next_steps: list[str] = field(default_factory=list)
    session: int | None = None
    """The session id, or None for a finding about the whole capture."""
    capture: str = ""
    tcp_stream: int | None = None

    @property
    def rank(self) -> tuple[int, str, int]:
        return (SEVERITY_ORDER.get(self.severity, 3), self.capture, self.session or 0)


MAX_FRAMES = 1000
"""Evidence frames a finding lists: a peer that sends a million refused commands gives a
finding with a million frames otherwise, in every output."""


def cap_frames(finding: Finding) -> None:
    """Keep the first MAX_FRAMES distinct evidence frames (in their order); count the rest."""
    if len(finding.frames) <= MAX_FRAMES:
        return
    frames = list(dict.fromkeys(finding.frames))
    if len(frames) > MAX_FRAMES:
        finding.frames_left_out += len(frames) - MAX_FRAMES
        finding.frames = frames[:MAX_FRAMES]


def frame_filter(frames: list[int], stream: int | None = None) -> str:
    """'frame.number in {12 15 19}' (and the stream) — a filter that shows exactly these."""
    shown = " ".join(str(f) for f in sorted(set(frames))[:50])
    base = f"frame.number in {{{shown}}}" if frames else ""
    if stream is None:
        return base
    stream_filter = f"tcp.stream eq {stream}"
    return f"{stream_filter} && {base}" if base else stream_filter

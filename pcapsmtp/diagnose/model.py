"""Findings: a stable code, a severity, the evidence frames and what to do about it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum


class Severity(StrEnum):
    """How much a finding matters, most severe first (DESIGN.md). A StrEnum: the JSON and
    the text outputs carry the value ("error"), and it compares equal to it."""

    ERROR = "error"
    """What made mail fail."""
    WARNING = "warning"
    """Trouble that did not stop mail, or that will."""
    INFO = "info"
    """Worth knowing: PMTUD that worked, a clamped MSS, a masked banner that did no harm."""


ERROR = Severity.ERROR
WARNING = Severity.WARNING
INFO = Severity.INFO

SEVERITY_ORDER = {severity: rank for rank, severity in enumerate(Severity)}


@dataclass(slots=True)
class Finding:
    code: str
    """A stable identifier from docs/findings.md (never renamed)."""
    severity: Severity
    summary: str
    """One line a mail admin reads first, with the numbers that matter."""
    detail: str
    """A paragraph: what was measured, how it was decided, where the evidence comes from."""
    frames: list[int] = field(default_factory=list)
    """Evidence frames, as Wireshark numbers them (at most MAX_FRAMES)."""
    frames_left_out: int = 0
    """Evidence frames beyond MAX_FRAMES, counted and not listed."""
    next_steps: list[str] = field(default_factory=list)
    session: int | None = None
    """The session id, or None for a finding about the whole capture."""
    capture: str = ""
    tcp_stream: int | None = None

    @property
    def filter(self) -> str:
        """The Wireshark display filter that shows exactly the evidence frames."""
        return frame_filter(self.frames)

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


def frame_filter(frames: Iterable[int]) -> str:
    """The Wireshark display filter that shows exactly these frames, and no others:
    ``frame.number == 7`` or ``frame.number in {3, 7, 10..14}``.

    Wireshark 4 syntax: set members are separated by commas (whitespace separators were
    removed in 4.0, so ``{3 7}`` is an error there); runs of three or more consecutive
    frames are written as ranges, which keeps the filter short enough to paste. Every
    filter the tool prints comes from here.
    """
    numbers = sorted(set(frames))
    if not numbers:
        return ""
    if len(numbers) == 1:
        return f"frame.number == {numbers[0]}"
    members = []
    start = previous = numbers[0]
    for number in [*numbers[1:], None]:
        if number is not None and number == previous + 1:
            previous = number
            continue
        if previous - start >= 2:
            members.append(f"{start}..{previous}")
        else:
            members += [str(n) for n in range(start, previous + 1)]
        if number is not None:
            start = previous = number
    return f"frame.number in {{{', '.join(members)}}}"

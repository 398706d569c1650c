"""The one place that wires the stages together: capture -> tcp -> smtp -> diagnose."""

from __future__ import annotations

from dataclasses import dataclass, field

from pcapsmtp.capture import CaptureInfo, open_capture, packets
from pcapsmtp.errors import CaptureError


@dataclass(slots=True)
class Options:
    """What the user asked for, as far as the analysis (not the output) is concerned."""

    extra_ports: tuple[int, ...] = ()


@dataclass(slots=True)
class Analysis:
    """Everything found in one or more captures."""

    captures: list[CaptureInfo] = field(default_factory=list)
    errors: list[CaptureError] = field(default_factory=list)
    """Inputs that could not be read at all; the others are analysed regardless."""


def analyze_capture(source: str, options: Options) -> CaptureInfo:
    """Read one capture in a single streaming pass."""
    with open_capture(source) as capture:
        for _packet in packets(capture):
            pass
        return capture.info


def analyze(sources: list[str], options: Options | None = None) -> Analysis:
    options = options or Options()
    result = Analysis()
    for source in sources:
        try:
            result.captures.append(analyze_capture(source, options))
        except CaptureError as error:
            result.errors.append(error)
    return result

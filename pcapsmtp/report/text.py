"""Plain-text output for a terminal: everything from the wire passes through safe.terminal."""

from __future__ import annotations

from datetime import UTC, tzinfo

from pcapsmtp.analysis import Analysis
from pcapsmtp.capture import CaptureInfo
from pcapsmtp.report.captures import link_type_name
from pcapsmtp.report.safe import terminal
from pcapsmtp.report.times import duration, human


def format_capture(info: CaptureInfo, tz: tzinfo = UTC) -> str:
    kind = info.format + (f", {info.compression}" if info.compression else "")
    lines = [f"Capture {terminal(info.file)} ({kind})"]
    if info.frames:
        span = (info.last_time_ns - info.first_time_ns) / 1e9
        lines.append(
            f"  {info.frames} frames from {human(info.first_time_ns, tz)} "
            f"to {human(info.last_time_ns, tz)} ({duration(span)})"
        )
    else:
        lines.append("  no frames")
    links = ", ".join(f"{link_type_name(lt)} ({n})" for lt, n in sorted(info.link_types.items()))
    facts = [f"link types: {links or '-'}", f"snap length: {info.snaplen or '-'}"]
    if info.reassembled:
        facts.append(f"{info.reassembled} IP datagrams reassembled from fragments")
    lines.append("  " + "; ".join(facts))
    lines += [f"  warning: {terminal(w)}" for w in info.warnings]
    return "\n".join(lines)


def format_analysis(analysis: Analysis, tz: tzinfo = UTC) -> str:
    return "\n\n".join(format_capture(info, tz) for info in analysis.captures) + "\n"

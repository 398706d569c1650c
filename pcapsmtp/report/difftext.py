"""A diff for people: plain text for a terminal and Markdown for a ticket.

Wire text passes through ``safe.terminal`` (text) or ``safe.markdown`` (Markdown) here, at
output, and nowhere else.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from datetime import UTC, tzinfo

from tabulate import tabulate

from pcapsmtp.capture.addresses import endpoint_name
from pcapsmtp.diff.model import SAME_SESSION, AlignedStep, Diff, Side, Step
from pcapsmtp.diff.names import PAIRING_NAMES, describe, step_name
from pcapsmtp.report.safe import markdown, terminal
from pcapsmtp.report.times import human

CELL = 44
"""Characters of a dialogue cell in the text table."""
MARKS = {None: "=", False: "~", True: "≠"}
LEGEND = "= alike   ~ differs in a way sessions often do   ≠ departs   · absent on that side"
TROUBLE = {
    "retransmissions": "retrans",
    "resets": "RST",
    "ignored_resets": "ignored RST",
    "zero_windows": "zero-win",
    "icmp": "ICMP",
}


def _names(diff: Diff) -> tuple[str, str]:
    return ("client side", "server side") if diff.mode == SAME_SESSION else ("working", "failing")


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _mark(aligned: AlignedStep) -> str:
    found = aligned.divergence
    return MARKS[None if found is None else found.major]


def _latency(step: Step | None) -> str:
    if step is None or step.latency_ns is None:
        return ""
    ns = step.latency_ns
    return f"{ns / 1e9:.2f} s" if ns >= 1e9 else f"{ns / 1e6:.1f} ms"


def cell(step: Step | None, escape: Callable[[str], str], width: int | None = None) -> str:
    """'RCPT TO:<bob@example.org> → 250 2.1.5 Ok [3 retrans]' (escaped, clipped)."""
    if step is None:
        return "·"
    text = step.label
    if step.hidden:
        text += f" ({step.note})"
    elif step.reply is not None:
        reply = step.reply
        first = reply.lines[0] if reply.lines else ""
        text = f"{text} → {reply.code} {first}".rstrip()
    elif step.key not in ("end", "tls"):
        text += " → not captured" if step.reply_lost else " → no reply"
    trouble = ", ".join(f"{n} {TROUBLE[k]}" for k, n in step.tcp.items() if n)
    suffix = f" [{trouble}]" if trouble else ""
    if width is not None:
        text = _clip(text, width - len(suffix))
    return escape(text) + suffix


def _side_line(name: str, side: Side, tz: tzinfo) -> str:
    session = side.session
    return (
        f"{name}: session {session.id} of {side.capture} "
        f"(tcp.stream {session.flow.stream}), {endpoint_name(session.client)} → "
        f"{endpoint_name(session.server)}, {human(session.flow.first_time_ns, tz, 3)}, "
        f"{session.outcome}; {POINTS.get(side.capture_point, 'capture point unknown')}"
    )


POINTS = {
    "client": "captured at the client",
    "server": "captured at the server",
    "path": "captured on the path",
}


def _wrap(text: str, indent: str = "  ") -> list[str]:
    return textwrap.wrap(text, 96, initial_indent=indent, subsequent_indent=indent)


# -- text ---------------------------------------------------------------------------------


def format_diff(diff: Diff, tz: tzinfo = UTC) -> str:
    names = _names(diff)
    same = diff.mode == SAME_SESSION
    title = (
        "One session seen at two points (pcapsmtp diff --same-session)"
        if same
        else "Working vs failing (pcapsmtp diff)"
    )
    lines = [title]
    lines += [
        "  " + terminal(_side_line(name, side, tz))
        for name, side in zip(names, (diff.a, diff.b), strict=True)
    ]
    if same:
        lines.append(f"  paired {_pairing(diff)}")
    lines += ["", "Verdict", *_wrap(terminal(diff.verdict))]
    for note in diff.notes:
        lines += _wrap("note: " + terminal(note))
    if same:
        lines += ["", *_text_transit(diff)]
    lines += ["", *_text_steps(diff, names)]
    lines += ["", *_text_parameters(diff, names)]
    lines += ["", *_text_findings(diff, names)]
    return "\n".join(lines) + "\n"


def _pairing(diff: Diff) -> str:
    return PAIRING_NAMES.get(diff.pairing, diff.pairing or "")


def _transit_line(transit) -> str:
    arrow = "client → server" if transit.sender == "client" else "server → client"
    parts = [f"{transit.sent} data segments seen leaving", f"{transit.arrived} arrived"]
    if transit.vanished:
        sizes = ", ".join(f"{n}×{size}" for size, n in transit.vanished_sizes.items())
        parts.append(f"{transit.vanished} vanished ({sizes} bytes)")
    for attr, what in (
        ("unconfirmed", "not seen, other capture stopped"),
        ("fragmented", "arrived in fragments"),
        ("appeared", "appeared on the way"),
    ):
        if getattr(transit, attr):
            parts.append(f"{getattr(transit, attr)} {what}")
    if transit.hops is not None:
        parts.append(f"{transit.hops} hop{'' if transit.hops == 1 else 's'} apart")
    return f"{arrow}: " + ", ".join(parts)


def _text_transit(diff: Diff) -> list[str]:
    lines = ["Between the two points"]
    lines += [f"  {_transit_line(t)}" for t in diff.transit]
    for fact in diff.facts:
        named = f" [{fact.finding}]" if fact.finding else ""
        lines += _wrap(f"{fact.code}{named}: {terminal(fact.summary)}", "  ")
        evidence = _evidence(fact)
        if evidence:
            lines += _wrap(evidence, "      ")
    if not diff.facts:
        lines.append("  nothing lost, injected or rewritten")
    return lines


def _evidence(fact) -> str:
    parts = []
    for name, frames in (("client side", fact.frames_a), ("server side", fact.frames_b)):
        if frames:
            shown = ", ".join(map(str, sorted(frames)[:12])) + (" …" if len(frames) > 12 else "")
            parts.append(f"{name} frames {shown}")
    return "; ".join(parts)


def _text_steps(diff: Diff, names: tuple[str, str]) -> list[str]:
    rows = [
        [
            str(s.index),
            _mark(s),
            cell(s.a, terminal, CELL),
            _latency(s.a),
            cell(s.b, terminal, CELL),
            _latency(s.b),
        ]
        for s in diff.steps
    ]
    table = tabulate(
        rows,
        headers=["#", "", names[0], "latency", names[1], "latency"],
        tablefmt="simple",
        disable_numparse=True,
    )
    lines = ["Dialogue, step by step", *("  " + line for line in table.splitlines())]
    lines.append(f"  {LEGEND}")
    diverging = [s for s in diff.steps if s.divergence is not None]
    for step in diverging:
        found = step.divergence
        present = step.b or step.a
        lines += _wrap(
            f"{MARKS[found.major]} step {step.index} ({step_name(present)}): "
            f"{terminal(found.detail)}",
            "  ",
        )
    return lines


def _text_parameters(diff: Diff, names: tuple[str, str]) -> list[str]:
    rows = [
        [p.label, terminal(describe(p.a)), terminal(describe(p.b)), "≠" if p.differs else ""]
        for p in diff.parameters
        if p.name != "extensions"
    ]
    table = tabulate(
        rows,
        headers=["connection", names[0], names[1], ""],
        tablefmt="simple",
        disable_numparse=True,
    )
    lines = ["Connection parameters", *("  " + line for line in table.splitlines())]
    lines += _extension_lines(diff, names, terminal)
    return lines


def _extension_lines(diff: Diff, names, escape) -> list[str]:
    ext = next((p for p in diff.parameters if p.name == "extensions"), None)
    if ext is None:
        return []
    a, b = ext.a, ext.b
    common = [k for k in a if k in b]
    out = [f"  EHLO keywords in both: {escape(' '.join(common)) or '-'}"]
    for name, mine, theirs in ((names[0], a, b), (names[1], b, a)):
        only = [k for k in mine if k not in theirs]
        if only:
            out.append(f"  EHLO keywords only {name}: {escape(' '.join(only))}")
    return out


def _findings_title(diff: Diff, name: str) -> str:
    if diff.mode == SAME_SESSION:
        return f"Findings only on the {name}"
    return f"Findings only in the {name} session"


def _text_findings(diff: Diff, names: tuple[str, str]) -> list[str]:
    lines = []
    for name, found in ((names[1], diff.only_in_b), (names[0], diff.only_in_a)):
        lines.append(_findings_title(diff, name))
        if not found:
            lines.append("  none")
        for f in found:
            lines += _wrap(f"{f.severity.upper():7} {f.code}: {terminal(f.summary)}", "  ")
    return lines


# -- Markdown -----------------------------------------------------------------------------


def _md_cell(text: str) -> str:
    return text.replace("\n", " ")


def render_diff_markdown(diff: Diff, tz: tzinfo = UTC) -> str:
    names = _names(diff)
    same = diff.mode == SAME_SESSION
    lines = [
        "# " + ("One session seen at two points" if same else "Working vs failing session"),
        "",
    ]
    for name, side in zip(names, (diff.a, diff.b), strict=True):
        lines.append(f"- {markdown(_side_line(name, side, tz))}")
    if same:
        lines.append(f"- paired {_pairing(diff)}")
    lines += ["", "## Verdict", "", markdown(diff.verdict), ""]
    for note in diff.notes:
        lines += [f"> {markdown(note)}", ""]
    if same:
        lines += _md_transit(diff)
    lines += _md_steps(diff, names)
    lines += _md_parameters(diff, names)
    lines += _md_findings(diff, names)
    return "\n".join(lines).rstrip("\n") + "\n"


def _md_transit(diff: Diff) -> list[str]:
    lines = ["## Between the two points", ""]
    lines += [f"- {markdown(_transit_line(t))}" for t in diff.transit]
    lines.append("")
    for fact in diff.facts:
        named = f" (`{fact.finding}`)" if fact.finding else ""
        evidence = _evidence(fact)
        lines.append(
            f"- **{fact.code}**{named}: {markdown(fact.summary)}"
            + (f" — {markdown(evidence)}" if evidence else "")
        )
    if not diff.facts:
        lines.append("Nothing lost, injected or rewritten.")
    return [*lines, ""]


def _md_steps(diff: Diff, names: tuple[str, str]) -> list[str]:
    lines = [
        "## Dialogue, step by step",
        "",
        f"| # | | {names[0]} | latency | {names[1]} | latency |",
        "|---|---|---|---|---|---|",
    ]
    for s in diff.steps:
        lines.append(
            f"| {s.index} | {_mark(s)} | {_md_cell(cell(s.a, markdown))} | {_latency(s.a)} "
            f"| {_md_cell(cell(s.b, markdown))} | {_latency(s.b)} |"
        )
    lines += ["", markdown(LEGEND), ""]
    for step in diff.steps:
        found = step.divergence
        if found is not None:
            present = step.b or step.a
            lines.append(
                f"- {MARKS[found.major]} step {step.index} ({step_name(present)}): "
                f"{markdown(found.detail)}"
            )
    return [*lines, ""]


def _md_parameters(diff: Diff, names: tuple[str, str]) -> list[str]:
    lines = [
        "## Connection parameters",
        "",
        f"| connection | {names[0]} | {names[1]} | |",
        "|---|---|---|---|",
    ]
    for p in diff.parameters:
        if p.name == "extensions":
            continue
        lines.append(
            f"| {p.label} | {markdown(describe(p.a))} | {markdown(describe(p.b))} "
            f"| {'≠' if p.differs else ''} |"
        )
    lines.append("")
    lines += ["- " + line.strip() for line in _extension_lines(diff, names, markdown)]
    return [*lines, ""]


def _md_findings(diff: Diff, names: tuple[str, str]) -> list[str]:
    lines = []
    for name, found in ((names[1], diff.only_in_b), (names[0], diff.only_in_a)):
        lines += [f"## {_findings_title(diff, name)}", ""]
        if not found:
            lines.append("None.")
        for f in found:
            lines.append(f"- **{f.severity}** `{f.code}`: {markdown(f.summary)}")
        lines.append("")
    return lines

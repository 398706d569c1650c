"""The mail logs' links (pcapsmtp.maillog) as text, Markdown and plain structures: a summary
for ``analyze`` and the report, and one session's lines beside its dialogue for ``show``.

Log lines are untrusted text: terminal() / markdown() / wire() as everything from the wire."""

from __future__ import annotations

from datetime import UTC, tzinfo

from pcapsmtp.capture.timestamps import local, raw
from pcapsmtp.maillog.compare import AGREES, DIFFERS, FORMATS_TRIED, LATER
from pcapsmtp.maillog.link import MaillogLinks
from pcapsmtp.maillog.model import FileStats, LogLine
from pcapsmtp.report.model import LogLineDoc, LogLink, MaillogDoc
from pcapsmtp.report.safe import markdown, terminal, wire
from pcapsmtp.report.times import iso
from pcapsmtp.selection import session_ref

NS = 1_000_000_000
VERDICT_WORDS = {AGREES: "agrees", DIFFERS: "DIFFERS", LATER: "afterwards", "note": "note"}
MAX_ORPHANS_SHOWN = 10


def _clock(time_ns: int | None, precise: bool, tz: tzinfo) -> str:
    if time_ns is None:
        return "-"
    moment = local(time_ns, tz)
    if moment is None:
        return raw(time_ns)
    fraction = f".{time_ns % NS // 1000:06d}" if precise else ""
    return f"{moment:%Y-%m-%d %H:%M:%S}{fraction}"


def file_summary(stats: FileStats) -> str:
    """'mail.log: 721 lines, 721 used (postfix; rfc3164), 3 not understood, 1 cut at 16 KiB'."""
    kinds = ", ".join(sorted(stats.mtas)) or "no mail server"
    forms = ", ".join(sorted(stats.formats)) or "-"
    parts = [_count(stats.lines, "line"), f"{stats.used} used ({kinds}; {forms} time stamps)"]
    if stats.outside:
        parts.append(f"{stats.outside} outside the captures' time")
    others = sum(stats.other_programs.values())
    if others:
        top = ", ".join(name for name, _n in stats.other_programs.most_common(3))
        parts.append(f"{others} from other programs ({top})")
    if stats.not_understood:
        parts.append(f"{stats.not_understood} not understood")
    if stats.cut:
        parts.append(f"{stats.cut} cut at 16 KiB")
    if stats.dropped:
        parts.append(f"{stats.dropped} dropped over the limit")
    return f"{stats.source}: " + ", ".join(parts)


def _count(number: int, word: str) -> str:
    return f"{number} {word}" + ("" if number == 1 else "s")


def _methods(links: MaillogLinks) -> str:
    counts = [f"{n} by {method}" for method, n in links.methods().items() if n]
    return ", ".join(counts) or "none"


def _several(links: MaillogLinks) -> bool:
    """The links are about sessions of several captures: an id alone does not name one."""
    return len({capture for capture, _id in [*links.links, *links.unlinked]}) > 1


def _named(keys: list[tuple[str, int]], several: bool) -> str:
    """'1-3, 7', or 'a.pcap: 1-3; b.pcap: 2' among several captures."""
    from pcapsmtp.diagnose.health import id_ranges

    by_capture: dict[str, list[int]] = {}
    for capture, number in keys:
        by_capture.setdefault(capture, []).append(number)
    if not several:
        return id_ranges(number for _c, number in keys)
    return "; ".join(f"{capture}: {id_ranges(ids)}" for capture, ids in by_capture.items())


def _differences(links: MaillogLinks) -> list[tuple[tuple[str, int], str]]:
    return [
        (session, note.text)
        for session, session_links in sorted(links.links.items())
        for link in session_links
        for note in link.notes
        if note.verdict == DIFFERS
    ]


def _orphan_text(unit, tz: tzinfo) -> str:
    first = unit.lines[0]
    kind = "connection from" if unit.side == "server" else "attempt to"
    return (
        f"{_clock(first.time_ns, first.precise, tz)} {kind} {unit.peer} "
        f"({first.source} line {first.number})"
    )


def summary_lines(links: MaillogLinks, sessions: int, tz: tzinfo = UTC) -> list[str]:
    """The summary as plain (unescaped) lines."""
    out = [file_summary(stats) for stats in links.files]
    out += [f"warning: {w}" for f in links.files for w in f.warnings]
    out += [f"warning: {w}" for w in links.warnings]
    window = links.window_ns // NS
    out.append(
        f"{len(links.links)} of {_count(sessions, 'session')} linked to log lines: "
        f"{_methods(links)} "
        f"(address and time: within 2 s, then {window} s)"
    )
    if links.offset_ns:
        out.append(
            f"the log's clock is {links.offset_ns / NS:+.1f} s off the capture's (measured on "
            f"{_count(links.offset_basis, 'session')} linked by queue id); times compared "
            "accordingly"
        )
    several = _several(links)
    if links.unlinked:
        which = "session" if len(links.unlinked) == 1 else "sessions"
        out.append(f"no log line for {which} {_named(links.unlinked, several)}")
    if links.orphans:
        entries = "log entry" if len(links.orphans) == 1 else "log entries"
        out.append(f"{len(links.orphans)} {entries} with no session in the capture:")
        out += [f"  {_orphan_text(u, tz)}" for u in links.orphans[:MAX_ORPHANS_SHOWN]]
        if len(links.orphans) > MAX_ORPHANS_SHOWN:
            out.append(f"  … and {len(links.orphans) - MAX_ORPHANS_SHOWN} more")
    differences = _differences(links)
    out.append(comparison(links, differences))
    out += [f"  session {session_ref(s, several)}: {text}" for s, text in differences[:20]]
    return out


def comparison(links: MaillogLinks, differences: list | None = None) -> str:
    """The verdict of the comparison, which only says 'agree' when something was compared."""
    if not any(stats.used for stats in links.files):
        if any(stats.mtas for stats in links.files):
            return (
                "nothing compared: the log had no usable line (its mail-server lines all "
                "fall outside the captures' time; give --tz if the log is in local time)"
            )
        return f"nothing compared: the log had no usable line (tried {FORMATS_TRIED})"
    if not links.links:
        return "nothing compared: no session is linked to a log line"
    differences = _differences(links) if differences is None else differences
    if differences:
        return f"log and wire disagree in {_count(len({s for s, _t in differences}), 'session')}"
    return "log and wire agree wherever both say something"


def format_maillog(links: MaillogLinks, sessions: int, tz: tzinfo = UTC) -> str:
    return "Mail log\n" + "\n".join(
        f"  {terminal(line)}" for line in summary_lines(links, sessions, tz)
    )


def maillog_markdown(links: MaillogLinks, sessions: int, tz: tzinfo = UTC, level: int = 2) -> str:
    lines = summary_lines(links, sessions, tz)
    body = [
        ("  " if line.startswith("  ") else "") + f"- {markdown(line.strip())}" for line in lines
    ]
    return f"{'#' * level} Mail log\n\n" + "\n".join(body) + "\n"


# -- one session ----------------------------------------------------------------------------


def format_session_log(links: MaillogLinks, session, tz: tzinfo = UTC) -> str:
    """The session's log lines and the comparison, for ``show``; says so when there are none."""
    session_links = links.links.get(session.key, [])
    if not session_links:
        return (
            "Mail log: no line of the given logs belongs to this session (no queue id in its "
            f"replies matched, and no log entry for its peer within {links.window_ns // NS} s).\n"
        )
    out = []
    for link in session_links:
        whole = not all(line.precise for line in link.lines)
        out.append(f"Mail log, the {link.side}'s: linked by {terminal(link.why)}")
        out.append(
            "  (seconds from the session's first packet"
            + ("; this log stamps whole seconds" if whole else "")
            + (f"; clocks aligned by {links.offset_ns / NS:+.1f} s" if links.offset_ns else "")
            + ")"
        )
        width = max(len(_where(line)) for line in link.lines)
        for line in link.lines:
            out.append(f"  {_line_text(line, session, links, width)}")
        for note in link.notes:
            out.append(f"  {VERDICT_WORDS.get(note.verdict, note.verdict)}: {terminal(note.text)}")
    return "\n".join(out) + "\n"


def session_log_markdown(links: MaillogLinks, session, level: int = 3) -> str:
    """The session's log lines and the comparison for the report document, beside its
    dialogue; says so when no line belongs to it."""
    session_links = links.links.get(session.key, [])
    heading = f"{'#' * level} Mail log"
    if not session_links:
        return (
            f"{heading}\n\nNo line of the given logs belongs to this session (no queue id "
            f"matched, no log entry for its peer within {links.window_ns // NS} s).\n"
        )
    out = [heading, ""]
    for link in session_links:
        out += [f"The {link.side}'s log, linked by {markdown(link.why)}:", "", "```"]
        for line in link.lines:
            seconds = "?"
            if line.time_ns is not None:
                offset = line.time_ns - links.offset_ns - session.flow.first_time_ns
                seconds = f"{offset / NS:+.1f} s"
            text = terminal(f"{_where(line)} {seconds}  {line.text}")
            out.append(text.replace("```", "`\u200b``"))  # a log line cannot close the block
        out += ["```", ""]
        out += [
            f"- {VERDICT_WORDS.get(n.verdict, n.verdict)}: {markdown(n.text)}" for n in link.notes
        ]
        out.append("")
    return "\n".join(out)


def _where(line: LogLine) -> str:
    return f"{line.source}:{line.number}"


def _line_text(line: LogLine, session, links: MaillogLinks, width: int) -> str:
    if line.time_ns is None:
        offset = "      ?"
    else:
        seconds = (line.time_ns - links.offset_ns - session.flow.first_time_ns) / NS
        offset = f"{seconds:+7.1f}"
    return f"{terminal(_where(line)):<{width}} {offset} s  {terminal(line.text)}"


# -- JSON ------------------------------------------------------------------------------------


def line_dict(line: LogLine) -> LogLineDoc:
    return {
        "file": line.source,
        "line": line.number,
        "time": iso(line.time_ns),
        "mta": line.mta,
        "event": line.event,
        "queue_id": line.queue_id,
        "status": line.status,
        "dsn": line.dsn,
        "text": wire(line.text),
    }


def link_dict(link) -> LogLink:
    return {
        "side": link.side,
        "method": link.method,
        "why": link.why,
        "lines": [line_dict(line) for line in link.lines],
        "notes": [
            {
                "verdict": note.verdict,
                "text": wire(note.text),
                "line": note.line.number if note.line else None,
            }
            for note in link.notes
        ],
    }


def stats_dict(stats: FileStats) -> dict:
    return {
        "file": stats.source,
        "lines": stats.lines,
        "used": stats.used,
        "outside_capture_time": stats.outside,
        "other_programs": dict(stats.other_programs.most_common()),
        "not_understood": stats.not_understood,
        "cut": stats.cut,
        "dropped": stats.dropped,
        "mtas": dict(stats.mtas),
        "time_formats": dict(stats.formats),
        "first_time": iso(stats.first_ns),
        "last_time": iso(stats.last_ns),
        "warnings": list(stats.warnings),
    }


def maillog_document(links: MaillogLinks) -> MaillogDoc:
    several = _several(links)
    return {
        "files": [stats_dict(s) for s in links.files],
        "linked": links.methods(),
        "window_s": links.window_ns / NS,
        "clock_offset_s": links.offset_ns / NS,
        "unlinked_sessions": [session_ref(key, several) for key in links.unlinked],
        "comparison": wire(comparison(links)),
        "disagreements": [
            {"session": session_ref(s, several), "text": wire(t)} for s, t in _differences(links)
        ],
        "orphans": [
            {
                "side": unit.side,
                "peer": unit.peer,
                "start": iso(unit.start_ns),
                "lines": [line_dict(line) for line in unit.lines],
            }
            for unit in links.orphans
        ],
        "warnings": list(links.warnings),
    }


def session_links(links: MaillogLinks | None, session) -> list[LogLink] | None:
    """The per-session ``"maillog"`` value: None when no log was given."""
    if links is None:
        return None
    return [link_dict(link) for link in links.links.get(session.key, [])]

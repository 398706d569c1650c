"""The report as Markdown (and as JSON): for a ticket, a wiki page or a mail.

Wire text is made inert with ``safe.markdown`` in running text and table cells, and with
``safe.terminal`` inside code blocks, whose fences are longer than any run of backticks in
them (CommonMark 4.5), so nothing from the capture can close a block or start markup.
"""

from __future__ import annotations

import json
import re
import shlex

from pcapsmtp.report.findings import finding_cards, ranges
from pcapsmtp.report.model import (
    BaselineSection,
    CaptureSection,
    Detailed,
    Entry,
    FindingDoc,
    LogLink,
    MaillogDoc,
    Overview,
    Party,
    Produced,
    Report,
    SessionSection,
    TcpDoc,
    TimelineRow,
)
from pcapsmtp.report.safe import json_text, markdown, markdown_block, markdown_code
from pcapsmtp.report.zeek import tcp_legend

DRAWING = ("graphs", "ladder")
"""Keys of a session that only the HTML's figures read."""


def render_report_json(report: Report) -> str:
    """The report document; the graph data and the ladder's rows stay out (they are the
    HTML's drawing material)."""
    document = dict(report)
    document["sessions"] = [
        {k: v for k, v in session.items() if k not in DRAWING} for session in report["sessions"]
    ]
    if report["baseline"]:
        diff = {k: v for k, v in report["baseline"]["diff"].items() if k != "view"}
        document["baseline"] = report["baseline"] | {"diff": diff}
    text = json.dumps(document, indent=2, ensure_ascii=False)
    return json_text(text) + "\n"


# -- helpers ------------------------------------------------------------------------------------


_PIPE = re.compile(r"(?<!\\)\|")
"""A pipe not escaped yet: inside a code span too, GitHub tables split the cell at it."""
code = markdown_code
block = markdown_block


BACKTICKED = re.compile(r"`([^`\n]+)`")


def prose(text: str) -> str:
    """Running text whose `backticked` parts (the commands in our advice) become code spans
    (``code``); the rest is escaped (``safe.markdown``). Wire text quoted in it can at worst
    become a code span too, which renders as inert as escaped text."""
    parts = BACKTICKED.split(text)
    return "".join(code(part) if i % 2 else markdown(part) for i, part in enumerate(parts))


def table(headers: list[str], rows: list[list]) -> list[str]:
    """A GitHub table; cells are already Markdown (escape wire text before)."""
    out = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    out += ["| " + " | ".join(_PIPE.sub(r"\\|", str(cell)) for cell in row) + " |" for row in rows]
    return out


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _m(value) -> str:
    return "-" if value is None or value == "" else markdown(str(value))


def _pair(pair: dict | None, unit: str = "") -> str:
    if not pair:
        return "-"
    return f"client {pair.get('client') if pair.get('client') is not None else '-'}{unit}, " + (
        f"server {pair.get('server') if pair.get('server') is not None else '-'}{unit}"
    )


# -- sections -----------------------------------------------------------------------------------


def _capture(capture: CaptureSection, produced: Produced) -> list[str]:
    links = ", ".join(f"{lt['name']} ({lt['frames']})" for lt in capture["link_types"]) or "-"
    local = produced["tz"] != "UTC"
    rows = [
        ["File", _m(capture["file"])],
        ["SHA-256", code(capture["sha256"])],
        ["Size", f"{capture['size']:,} bytes"],
        [
            "Format",
            _m(
                capture["format"]
                + (f", {capture['compression']}" if capture["compression"] else "")
            ),
        ],
        ["Frames", f"{capture['frames']:,}"],
        ["Link types", _m(links)],
        ["Snap length", _m(capture["snaplen"])],
        ["First frame", _m(capture["first_time_utc"])],
        ["Last frame", _m(capture["last_time_utc"])],
    ]
    if local:
        rows.insert(8, [f"First frame ({_m(produced['tz'])})", _m(capture["first_time_local"])])
        rows.append([f"Last frame ({_m(produced['tz'])})", _m(capture["last_time_local"])])
    rows += [
        ["Duration", _m(capture["duration"])],
        [
            "Connections",
            f"{capture['smtp_sessions']} SMTP, {capture['other_connections']} other TCP",
        ],
    ]
    out = table(["", ""], rows)
    if capture["warnings"]:
        out += ["", "Warnings:", ""] + [f"- {markdown(w)}" for w in capture["warnings"]]
    return out


def _parties(parties: list[Party]) -> list[str]:
    rows = [
        [
            _m(p["role"]),
            _m(p["address"]),
            _m(", ".join(map(str, p["ports"]))),
            _m(", ".join(p["names"])),
            _m(", ".join(p["software"])),
            _m(ranges(p["sessions"])),
        ]
        for p in parties
    ]
    if not rows:
        return ["No SMTP sessions, so no parties."]
    return table(["Role", "Address", "Ports", "Names", "Software", "Sessions"], rows)


def _finding(number: int, card: dict) -> list[str]:
    """One finding, or one card for the same finding in several sessions (a retry storm's
    240 soft bounces): its count, its sessions, every evidence frame."""
    finding, count = card["finding"], card["count"]
    where = f"session {finding['session']}" if finding["session"] else "the capture"
    if count > 1:
        where = f"{count} sessions: {card['sessions']}"
    out = [
        f"### {number}. {finding['severity'].upper()} {_m(finding['code'])} ({where})",
        "",
        f"**{markdown(finding['summary'])}**",
        "",
    ]
    if count > 1:
        out += [f"The same finding in {count} sessions; the detail is session "
                f"{finding['session']}'s, each session is listed below.", ""]  # fmt: skip
    out += [prose(finding["detail"]), ""]
    frames = card["frames"]
    if frames:
        shown = ", ".join(map(str, frames[:40]))
        more = f" and {len(frames) - 40} more" if len(frames) > 40 else ""
        out.append(f"- Evidence frames: {shown}{more}")
    if card["filter"]:
        out.append(f"- Wireshark display filter: {code(card['filter'])}")
    if finding["tcp_stream"] is not None and count == 1:
        out.append(f"- TCP stream: {finding['tcp_stream']}")
    for step in finding["next_steps"]:
        out.append(f"- Next step: {prose(step)}")
    if count > 1:
        each = "; ".join(
            f"{f['session']} (tcp.stream {f['tcp_stream']}): {', '.join(map(str, f['frames']))}"
            for f in card["alike"]
        )
        out.append(f"- Each session, its tcp.stream and evidence frames: {_m(each)}")
    return [*out, ""]


def _findings(findings: list[FindingDoc]) -> list[str]:
    if not findings:
        return ["No findings: nothing failed and nothing is about to.", ""]
    out = []
    for number, card in enumerate(finding_cards(findings), start=1):
        out += _finding(number, card)
    return out


def timeline_table(rows: list[TimelineRow], tz: str) -> list[str]:
    if not rows:
        return ["No SMTP sessions."]
    when = "Start (UTC)" if tz == "UTC" else f"Start ({markdown(tz)})"
    return table(
        [
            "#",
            when,
            "Duration",
            "Client → server",
            "Mail from",
            "Rcpt",
            "Outcome",
            "Last reply",
            "TCP",
            "Findings",
        ],
        [
            [
                r["session"],
                _m(r["start_local"]),
                f"{r['duration_s']:.3f} s",
                _m(f"{r['client']} → {r['server']}"),
                _m(r["mail_from"]),
                r["recipients"],
                _m(r["outcome"]),
                _m(r["last_reply"]),
                _m(r["tcp"]),
                _m(", ".join(r["findings"])),
            ]
            for r in rows
        ],
    )


def dialogue_lines(entries: list[Entry]) -> list[str]:
    """The dialogue as fixed-width lines: frame, time since the session began, latency, who."""
    who = {"client": "C", "server": "S", "network": "!"}
    lines = [f"{'frame':>7}  {'time':>12}  {'latency':>10}     what"]
    for e in entries:
        sender = who.get(e["from"], "?")
        if e["kind"] == "tcp":
            sender = sender.lower()
        text = e["label"] if e["kind"] in ("tcp", "icmp") else e["text"]
        latency = f"{e['latency_ms']:.1f} ms" if e["latency_ms"] is not None else ""
        for i, part in enumerate(text.split("\n")):
            if i == 0:
                offset = e["offset_ms"] / 1000
                lines.append(f"{e['frame']:>7}  {offset:>+12.6f}  {latency:>10}  {sender}  {part}")
            else:
                lines.append(f"{'':>7}  {'':>12}  {'':>10}     {part}")
    return lines


def _tcp_facts(tcp: TcpDoc) -> list[str]:
    largest = _pair(tcp["max_segment"], " bytes")
    acked = _pair(tcp["max_acked_segment"], " bytes")
    return [
        f"- TCP: state {_m(tcp['state'])}, history {_m(tcp['history'])}, handshake RTT "
        f"{_m(tcp['rtt_ms'])} ms; MSS {_pair(tcp['mss'])}",
        f"- {markdown(tcp_legend(tcp['state'], tcp['history']))}",
        f"- Largest segment: {largest}; largest acknowledged: {acked}",
        f"- TCP trouble: {tcp['retransmissions']} retransmissions, {tcp['lost_segments']} "
        f"segments not captured, {tcp['zero_windows']} zero windows, {len(tcp['resets'])} "
        f"resets, {len(tcp['icmp'])} ICMP errors",
    ]


def _session(session: SessionSection) -> list[str]:
    smtp, tls, auth = session["smtp"], session["smtp"]["tls"], session["smtp"]["auth"]
    stream = code(f"tcp.stream eq {session['tcp_stream']}")
    out = [
        f"### Session {session['id']}: {markdown(session['client'])} → "
        f"{markdown(session['server'])}",
        "",
        f"- Outcome: **{_m(session['outcome'])}** ({_m(session['outcome_reason'])})",
        f"- Frames {session['first_frame']}–{session['last_frame']}; Wireshark: {stream}",
        f"- Server: {_m(smtp['server_software'])}; greeting {_m(smtp['banner'])}",
        f"- HELO/EHLO name: {_m(smtp['helo'])}; extensions: {_m(', '.join(smtp['extensions']))}",
        *_tcp_facts(session["tcp"]),
    ]
    if tls:
        alert = f", alert {_m(tls['alert'])}" if tls["alert"] else ""
        out.append(
            f"- TLS ({_m(tls['mode'])}, frame {tls['frame']}): {_m(tls['version'])}, "
            f"{_m(tls['cipher'])}{alert}"
        )
    if auth:
        out.append(
            f"- AUTH {_m(auth['mechanism'])}: reply {_m(auth['code'])} (credentials redacted)"
        )
    out.append("")
    if smtp["transactions"]:
        out += table(
            ["Mail from", "Recipients", "Size", "Subject", "Reply", "Outcome"],
            [
                [
                    _m("<>" if t["mail_from"] == "" else t["mail_from"]),
                    _m(", ".join(f"{r['address']} ({r['code']})" for r in t["rcpt_to"])),
                    _m(t["size"]),
                    _m(t["subject"]),
                    _m(
                        f"{t['code']} {t['text'] or ''}".replace("\n", " / ") if t["code"] else None
                    ),
                    _m(t["outcome"]),
                ]
                for t in smtp["transactions"]
            ],
        )
        out.append("")
    out += [
        "Dialogue (C/S: client/server said; c/s: TCP events they sent; !: ICMP from the network):",
        "",
    ]
    out += block(dialogue_lines(session["entries"]))
    if session["dialogue_dropped"]:
        out.append(f"({session['dialogue_dropped']} more dialogue lines not kept)")
    for limit in session.get("limits", []):
        out += ["", f"Limit reached (pcapsmtp docs/limits.md): {markdown(limit)}"]
    if session["log"] is not None:
        out += ["", *_session_log(session["log"])]
    return [*out, ""]


def _session_log(links: list[LogLink]) -> list[str]:
    if not links:
        return ["Mail server log: no line of the given logs belongs to this session.", ""]
    out = []
    for link in links:
        out += [f"Mail server log ({_m(link['side'])} side, linked by {_m(link['why'])}):", ""]
        out += block([line["text"] for line in link["lines"]])
        out += [f"- {_m(note['verdict'])}: {_m(note['text'])}" for note in link["notes"]]
        out.append("")
    return out


def _overview(overview: Overview) -> list[str]:
    """Per destination and per client: the capture-wide view (pcapsmtp.diagnose.health)."""
    out = []
    columns = [
        "attempts",
        "delivered",
        "deferred",
        "rejected",
        "refused",
        "unreachable",
        "timeouts",
    ]
    for key, who, title in (
        ("destinations", "server", "Destination"),
        ("clients", "client", "Client"),
    ):
        rows = overview[key]
        if not rows:
            continue
        out += table(
            [title, *[c.capitalize() for c in columns], "First", "Last", "Refusals"],
            [
                [
                    _m(row[who]),
                    *[_m(row[c]) for c in columns],
                    _m(row["first_time"]),
                    _m(row["last_time"]),
                    _m(
                        ", ".join(f"{r['code']}×{r['count']}" for r in row["negative_replies"])
                        or "-"
                    ),
                ]
                for row in rows
            ],
        )
        out.append("")
    return out


def _maillog(maillog: MaillogDoc) -> list[str]:
    linked = ", ".join(f"{n} by {how}" for how, n in maillog["linked"].items() if n) or "none"
    unlinked = ", ".join(map(str, maillog["unlinked_sessions"])) or "none"
    out = [
        f"- Logs: {_m(', '.join(f['file'] for f in maillog['files']))}",
        f"- Sessions linked to log lines: {_m(linked)}",
        f"- Sessions with no log line: {_m(unlinked)}",
        f"- Log deliveries with no session in the capture: {len(maillog['orphans'])}",
        f"- Comparison: {_m(maillog['comparison'])}",
    ]
    out += [
        f"- Disagreement, session {d['session']}: {_m(d['text'])}" for d in maillog["disagreements"]
    ]
    out += [f"- Warning: {_m(w)}" for w in maillog["warnings"]]
    return [*out, ""]


def _baseline(baseline: BaselineSection, tz: str) -> list[str]:
    capture = baseline["capture"]
    out = [
        f"Baseline capture {_m(capture['file'])}, SHA-256 {code(capture['sha256'])}, "
        f"{capture['frames']:,} frames from {_m(capture['first_time_utc'])} to "
        f"{_m(capture['last_time_utc'])}.",
        "",
        f"Verdict for the baseline: {markdown(baseline['verdict']['line'])}",
        "",
    ]
    diff = baseline["diff"]
    if diff["document"] is None:
        out += [f"No comparison: {markdown(diff['error'])}.", ""]
    else:
        out += [diff["view"]["markdown"].rstrip("\n"), ""]
    out += ["### Sessions of the baseline", ""]
    out += timeline_table(baseline["timeline"], tz)
    return [*out, ""]


def _produced(produced: Produced, detailed: Detailed) -> list[str]:
    command = shlex.join(produced["command_line"])
    return [
        f"- Tool: pcapsmtp {_m(produced['version'])}",
        f"- Command line: {code(command)}",
        f"- Generated: {_m(produced['generated'])}",
        "- Times: UTC" + ("" if produced["tz"] == "UTC" else f" and {_m(produced['tz'])}"),
        f"- Sessions in detail: {_m(detailed['why'])}",
        f"- Addresses: {_m(produced['addresses'])}",
        f"- Credentials: {_m(produced['credentials'])}",
        "",
    ]


def render_report_markdown(report: Report) -> str:
    produced = report["produced"]
    verdict = report["verdict"]
    outcomes = ", ".join(f"{n} {o}" for o, n in verdict["outcomes"].items()) or "none"
    out = [
        f"# {markdown(report['report']['title'])}",
        "",
        f"> {markdown(verdict['line'])}",
        ">",
        f"> {_count(verdict['sessions'], 'SMTP session')} ({markdown(outcomes)}); findings: "
        f"{_count(verdict['errors'], 'error')}, {_count(verdict['warnings'], 'warning')}, "
        f"{verdict['info']} info.",
        "",
        "## Capture",
        "",
        *_capture(report["capture"], produced),
        "",
        "## Parties",
        "",
        *_parties(report["parties"]),
        "",
        "## Findings",
        "",
        *_findings(report["findings"]),
        "## Session timeline",
        "",
        *timeline_table(report["timeline"], produced["tz"]),
        "",
    ]
    overview = _overview(report["overview"])
    if overview:  # as in the HTML report: no heading over nothing (a capture with no session)
        out += ["## Destinations and clients", "", *overview]
    if report["maillog"]:
        out += ["## Mail server logs", "", *_maillog(report["maillog"])]
    out += ["## Sessions in detail", "", f"Shown: {markdown(report['detailed']['why'])}.", ""]
    for session in report["sessions"]:
        out += _session(session)
    if report["baseline"]:
        out += ["## Baseline", "", *_baseline(report["baseline"], produced["tz"])]
    out += ["## How this report was produced", "", *_produced(produced, report["detailed"])]
    return "\n".join(out).rstrip("\n") + "\n"

"""The ladder diagram of a dialogue as inline SVG, for the HTML report (pcapsmtp.report.svg
says how text is made safe)."""

from __future__ import annotations

from markupsafe import Markup

from pcapsmtp.report.svg import WIDTH, el, ms_text, svg, text
from pcapsmtp.report.timeaxis import duration_label

MAX_LADDER_ROWS = 300


def _arrow(x1: float, x2: float, y: float, cls: str) -> Markup:
    head = 7 if x2 > x1 else -7
    return el("line", x1=x1, y1=y, x2=x2, y2=y, class_=f"arrow {cls}") + el(
        "path", d=f"M{x2:.1f},{y:.1f} l{-head},-4 l0,8 z", class_=f"head {cls}"
    )


def _reply_class(code: int | None) -> str:
    return f"r{code // 100}" if code and 2 <= code // 100 <= 5 else "r0"


def ladder(session: dict) -> Markup:
    """Client and server lifelines; each command, reply, message and TCP event an arrow in
    order, with its frame and its time since the session began. A run of retransmissions
    is drawn arrow by arrow (up to ``MAX_STACK``, then with its count), a silence of a
    second or more as a break across both lifelines with its length, a message that never
    reached its end as an arrow that stops short (``report.ladder``)."""
    rows = session.get("ladder") or [e | {"end_ms": e["offset_ms"]} for e in session["entries"]]
    shown = rows[:MAX_LADDER_ROWS]
    cx, sx, top = 330.0, 830.0, 58.0
    body, y = [], top
    for row in shown:
        height = _row_height(row)
        body.append(_ladder_row(row, cx, sx, y + 12, height))
        y += height
    height = y + 34
    parts = [
        text(8, 16, "frame", class_="axis"),
        text(58, 16, "time", class_="axis"),
        text(150, 16, "latency", class_="axis"),
        el("rect", x=cx - 120, y=4, width=240, height=34, rx=4, class_="party"),
        el("rect", x=sx - 120, y=4, width=240, height=34, rx=4, class_="party"),
        text(cx, 19, "client", class_="party-role", text_anchor="middle"),
        text(cx, 33, session["client"], 36, class_="party-name", text_anchor="middle"),
        text(sx, 19, "server", class_="party-role", text_anchor="middle"),
        text(sx, 33, session["server"], 36, class_="party-name", text_anchor="middle"),
        el("line", x1=cx, y1=40, x2=cx, y2=height - 6, class_="lifeline"),
        el("line", x1=sx, y1=40, x2=sx, y2=height - 6, class_="lifeline"),
        *body,
    ]
    if len(rows) > MAX_LADDER_ROWS:
        more = len(rows) - MAX_LADDER_ROWS
        parts.append(text(cx, height - 8, f"… {more} more lines in the table below", class_="note"))
    return svg(WIDTH, height, parts, f"Ladder diagram of session {session['id']}")


MAX_STACK = 6
"""Arrows drawn for a run of retransmissions or lost segments; more are counted."""
ROW = 24.0
STACK_STEP = 6.0
SILENCE_ROW = 40.0


def _offset(ms: float) -> str:
    return f"+{ms:.3f} ms" if ms < 1000 else f"+{ms / 1000:.3f} s"


def _tcp_class(row: dict) -> str:
    label = row["label"]
    if label.startswith("TCP RST"):
        return "rst"
    if "not captured" in label:
        return "lost"
    if row["count"] > 1 or "retrans" in label or "out-of-order" in label:
        return "tcp-warn"
    return "tcp"


def _stack(row: dict) -> int:
    """Arrows drawn for a row: one per retransmission or lost segment of a run (up to
    ``MAX_STACK``); one for anything else, its count in the label."""
    if row["kind"] == "tcp" and ("retrans" in row["label"] or _tcp_class(row) == "lost"):
        return min(row["count"], MAX_STACK)
    return 1


def _row_height(row: dict) -> float:
    if row["kind"] == "silence":
        return SILENCE_ROW
    return ROW + STACK_STEP * (_stack(row) - 1)


def _ladder_row(row: dict, cx: float, sx: float, y: float, height: float) -> Markup:
    """One row as a group whose class says what it is and whose data attributes give its
    frame and its time since the session began (what tests and curious readers check)."""
    if row["kind"] == "silence":
        return el(
            "g",
            "".join(_silence(row, cx, sx, y - 12, height)),
            class_="row row-silence",
            data_ms=ms_text(row["ms"]),
            data_from_ms=ms_text(row["offset_ms"]),
            data_to_ms=ms_text(row["end_ms"]),
        )
    parts = [
        text(8, y + 4, str(row["frame"]), class_="axis"),
        text(58, y + 4, _offset(row["offset_ms"]), class_="axis"),
    ]
    if row["latency_ms"] is not None:
        parts.append(text(150, y + 4, f"{row['latency_ms']:.1f} ms", class_="axis"))
    parts += _arrows(row, cx, sx, y)
    cls = _tcp_class(row) if row["kind"] == "tcp" else row["kind"]
    return el(
        "g",
        "".join(parts),
        class_=f"row row-{row['kind']} row-{cls}",
        data_frame=row["frame"],
        data_last_frame=row.get("last_frame"),
        data_count=row.get("count"),
        data_ms=ms_text(row["offset_ms"]),
        data_unfinished="yes" if row.get("unfinished") else None,
    )


def _silence(row: dict, cx: float, sx: float, y: float, height: float) -> list[Markup]:
    """A break across the diagram: a pale band, each lifeline cut by a zigzag, the length."""
    middle = y + height / 2
    parts = [el("rect", x=cx - 60, y=y + 4, width=sx - cx + 120, height=height - 8,
                class_="silence-band")]  # fmt: skip
    for x in (cx, sx):
        parts.append(el("rect", x=x - 6, y=y + 8, width=12, height=height - 16, class_="cut"))
        parts.append(el("path", d=f"M{x - 6:.1f},{y + 8:.1f} l4,4 l-4,4 l4,4 M{x + 6:.1f},"
                        f"{y + height - 20:.1f} l-4,4 l4,4 l-4,4", class_="zigzag"))  # fmt: skip
    parts.append(text((cx + sx) / 2, middle + 4,
                      f"{duration_label(row['ms'])} without a packet", class_="silence-text",
                      text_anchor="middle"))  # fmt: skip
    parts.append(text(58, middle + 4, f"{duration_label(row['ms'])} later", class_="axis"))
    return parts


def _arrows(row: dict, cx: float, sx: float, y: float) -> list[Markup]:
    kind, sender, label = row["kind"], row["from"], row["label"]
    middle = (cx + sx) / 2
    if kind == "icmp":
        to = cx if row.get("to", "client") == "client" else sx
        return [
            _arrow(middle, to, y, "icmp"),
            el("circle", cx=middle, cy=y, r=4, class_="icmp"),
            text(middle + (8 if to > middle else -8), y - 4, label, 40, class_="label icmp-text",
                 text_anchor="start" if to > middle else "end"),
        ]  # fmt: skip
    if kind == "gap":
        x = cx if sender == "client" else sx
        return [
            el("line", x1=x - 8, y1=y - 6, x2=x + 8, y2=y + 6, class_="gap"),
            text(middle, y - 4, label, 78, class_="label gap-text", text_anchor="middle"),
        ]
    start, end = (cx, sx) if sender == "client" else (sx, cx)
    if kind == "reply":
        cls = _reply_class(row["code"])
    elif kind == "tcp":
        cls = _tcp_class(row)
    else:
        cls = {"command": "cmd", "message": "msg", "tls": "tls"}.get(kind, "note")
    parts = []
    if row.get("unfinished"):
        stop = start + (end - start) * 0.62
        parts += [
            el("line", x1=start, y1=y, x2=stop, y2=y, class_="arrow msg unfinished"),
            el("path", d=f"M{stop:.1f},{y - 8:.1f} l4,4 l-4,4 l4,4 l-4,4", class_="torn"),
        ]
    elif cls == "lost":
        for i in range(_stack(row)):
            stop, yy = start + (end - start) * 0.55, y + STACK_STEP * i
            parts += [
                el("line", x1=start, y1=yy, x2=stop, y2=yy, class_="arrow lost"),
                el("path", d=f"M{stop - 4:.1f},{yy - 4:.1f} l8,8 m0,-8 l-8,8", class_="lost-cross"),
            ]  # fmt: skip
    else:
        for i in range(_stack(row)):
            parts.append(_arrow(start, end, y + STACK_STEP * i, cls))
    if kind == "tcp" and cls == "rst":
        parts.append(el("path", d=f"M{end - 5:.1f},{y - 5:.1f} l10,10 m0,-10 l-10,10",
                        class_="rst-cross"))  # fmt: skip
    bold = cls in ("r4", "r5", "rst")
    text_cls = "msg-text unfinished-text" if row.get("unfinished") else f"{cls}-text"
    parts.append(text(middle, y - 4, label, 80 if bold else 84, class_=f"label {text_cls}",
                      text_anchor="middle"))  # fmt: skip
    return parts

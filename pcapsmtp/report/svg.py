"""Inline SVG for the HTML report: the ladder diagram of a dialogue, a time-sequence graph
per direction, and the sessions on the capture's time axis.

Drawn as text. Every string from the document passes through ``safe.terminal`` (control
characters made visible) and ``markupsafe.escape``; attribute values are escaped too, so a
reply or a subject can never become markup. Colours come from CSS classes of the page,
which keeps the figures readable in print.
"""

from __future__ import annotations

from markupsafe import Markup, escape

from pcapsmtp.report.safe import terminal
from pcapsmtp.report.timeaxis import TimeAxis, duration_label, ticks

WIDTH = 960
MAX_LADDER_ROWS = 300
MAX_TIMELINE_ROWS = 120


def _attrs(attrs: dict) -> str:
    parts = []
    for name, value in attrs.items():
        if value is None:
            continue
        if isinstance(value, float):
            value = f"{value:.2f}".rstrip("0").rstrip(".")
        parts.append(f' {name.rstrip("_").replace("_", "-")}="{escape(str(value))}"')
    return "".join(parts)


def _ms(value: float) -> str:
    """Milliseconds for a data attribute, to the microsecond (as times are rounded)."""
    return f"{value:.3f}"


def el(tag: str, content: str | Markup = "", **attrs) -> Markup:
    """An element; ``content`` is trusted markup (other elements), never wire text."""
    return Markup(f"<{tag}{_attrs(attrs)}>{content}</{tag}>")


def text(x: float, y: float, value: str, limit: int | None = None, **attrs) -> Markup:
    """A text element; ``value`` is untrusted and shortened to ``limit`` characters."""
    value = terminal(str(value))
    if limit is not None and len(value) > limit:
        value = value[: limit - 1] + "…"
    return Markup(f"<text{_attrs({'x': x, 'y': y, **attrs})}>{escape(value)}</text>")


def svg(width: float, height: float, content: list[Markup], label: str) -> Markup:
    return Markup(
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width:.0f} {height:.0f}" '
        f'width="100%" role="img"{_attrs({"aria_label": label})}>' + "".join(content) + "</svg>"
    )


def _arrow(x1: float, x2: float, y: float, cls: str) -> Markup:
    head = 7 if x2 > x1 else -7
    return el("line", x1=x1, y1=y, x2=x2, y2=y, class_=f"arrow {cls}") + el(
        "path", d=f"M{x2:.1f},{y:.1f} l{-head},-4 l0,8 z", class_=f"head {cls}"
    )


# -- ladder -------------------------------------------------------------------------------------


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
            data_ms=_ms(row["ms"]),
            data_from_ms=_ms(row["offset_ms"]),
            data_to_ms=_ms(row["end_ms"]),
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
        data_ms=_ms(row["offset_ms"]),
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


# -- time-sequence graph ------------------------------------------------------------------------


def _bytes_label(value: float) -> str:
    if value >= 1_000_000:
        return f"{value / 1_000_000:g} MB"
    if value >= 10_000:
        return f"{value / 1000:g} kB"
    return f"{value:g}"


PANEL_H = 190.0
PANEL_GAP = 34.0


def time_sequence(graphs: dict) -> Markup:
    """Bytes over time, one panel per direction on one time axis: a vertical stroke per
    data segment (red when retransmitted), the peer's acknowledgements as a step line,
    resets and ICMP as marks across both. Long silences are cut short (``timeaxis``) and
    labelled once with their length; where a direction stalled and how a failed session
    ended are written on the graph."""
    left, right, top = 78.0, 16.0, 58.0
    plot_w = WIDTH - left - right
    directions = graphs["directions"]
    times = [m["t"] for m in graphs["marks"]]
    for d in directions:
        times += [p[0] for p in d["data"]] + [a[0] for a in d["acks"]]
        times += [d["stall"]["t"]] if d.get("stall") else []
        times += [d["unseen"]["t"]] if d.get("unseen") else []
    end = graphs.get("end")
    times += [end["t"]] if end else []
    axis = TimeAxis(times, graphs["span_ms"], left, plot_w)
    tops = [top + (PANEL_H + PANEL_GAP) * i for i in range(len(directions))]
    bottom = tops[-1] + PANEL_H if tops else top
    height = bottom + 30
    parts = [*_legend(left, 14)]
    if end:
        parts += _end_mark(end, axis, top, bottom, left + plot_w)
    for x, label in axis.ticks():
        parts.append(el("line", x1=x, y1=top, x2=x, y2=bottom, class_="grid"))
        parts.append(text(x, bottom + 16, label, class_="axis", text_anchor="middle"))
    for panel_top, direction in zip(tops, directions, strict=True):
        parts += _panel(direction, axis, left, plot_w, panel_top)
    for piece in axis.breaks:
        parts += _break(piece, top, bottom - top)
    parts += _marks(graphs["marks"], axis, top, bottom - top, left + plot_w)
    for panel_top, direction in zip(tops, directions, strict=True):
        parts.append(text(left, panel_top - 6, _title(direction), class_="graph-title"))
        if direction.get("stall"):
            parts += _stall(direction, axis, panel_top, left + plot_w)
    label = "Time-sequence graph: " + "; ".join(_title(d) for d in directions)
    return svg(WIDTH, height, parts, label)


def _title(direction: dict) -> str:
    peer = "server" if direction["from"] == "client" else "client"
    return (
        f"{direction['from']} → {peer}: {direction['bytes']:,} bytes in "
        f"{direction['segments']:,} data segments, {direction['retransmitted']} retransmitted"
    )


def _panel(direction: dict, axis: TimeAxis, left: float, plot_w: float, top: float) -> list:
    acks, data, unseen = direction["acks"], direction["data"], direction.get("unseen")
    highest = [direction["bytes"], *(a[1] for a in acks), unseen["offset"] if unseen else 0]
    limit = max(highest) or 1
    y = lambda b: top + PANEL_H * (1 - min(max(b, 0), limit) / limit)  # noqa: E731
    parts = []
    for tick in ticks(limit):
        parts.append(el("line", x1=left, y1=y(tick), x2=left + plot_w, y2=y(tick), class_="grid"))
        parts.append(text(left - 6, y(tick) + 4, _bytes_label(tick), class_="axis",
                          text_anchor="end"))  # fmt: skip
    parts.append(el("rect", x=left, y=top, width=plot_w, height=PANEL_H, class_="frame"))
    if acks:
        path = f"M{axis.x(acks[0][0]):.1f},{y(acks[0][1]):.1f}" + "".join(
            f" H{axis.x(t):.1f} V{y(b):.1f}" for t, b in acks[1:]
        )
        parts.append(el("path", d=path, class_="ack"))
    for t, offset, length, kind, _frame in data:
        y1 = y(offset)
        y2 = min(y(offset + length), y1 - 2)
        x = axis.x(t)
        parts.append(el("line", x1=x, y1=y1, x2=x, y2=y2, class_=f"seg {kind or 'data'}"))
    if not data:
        parts.append(text(left + plot_w / 2, top + PANEL_H / 2, "no data sent", class_="note",
                          text_anchor="middle"))  # fmt: skip
    if unseen:
        parts += _unseen(direction, axis, y, left + plot_w)
    return parts


def _unseen(direction: dict, axis: TimeAxis, y, right: float) -> list[Markup]:
    """Bytes the sender's sequence numbers say it sent and the capture never saw: a dashed
    stroke over the missing range, said in words."""
    unseen = direction["unseen"]
    x, top, bottom = axis.x(unseen["t"]), y(unseen["offset"]), y(unseen["offset"] - unseen["bytes"])
    peer = "server" if direction["from"] == "client" else "client"
    lines = [
        f"{unseen['bytes']:,} bytes the {direction['from']} sent never showed up here "
        f"(frame {unseen['frame']} is numbered after them)",
        f"lost on the way to the {peer}, or not captured",
    ]
    at, anchor = _place(x, lines, right, px=7.0)
    parts = [el("line", x1=x, y1=top, x2=x, y2=bottom, class_="unseen"),
             el("circle", cx=x, cy=top, r=3.5, class_="unseen-dot")]  # fmt: skip
    for i, line in enumerate(lines):
        parts.append(text(at, top + 48 + 15 * i, line, class_="annotation", text_anchor=anchor))
    return [el("g", "".join(parts), class_="unseen-note", data_ms=_ms(unseen["t"]),
               data_from=direction["from"])]  # fmt: skip


def _stall(direction: dict, axis: TimeAxis, top: float, right: float) -> list[Markup]:
    """Where the acknowledgements stopped for good, in words a mail admin reads."""
    stall = direction["stall"]
    x = axis.x(stall["t"])
    lines = [
        f"stalled here: nothing acknowledged after this point ({stall['waiting']:,} bytes waiting)",
        f"sent again {stall['retransmissions']}× (frames {stall['frames'][0]}–"
        f"{stall['frames'][1]}), never acknowledged",
    ]
    if stall.get("larger_sent_again"):
        lines[1] = (
            f"{stall['larger_sent_again']:,}-byte packets sent {stall['larger_times']}×, none "
            f"acknowledged; nothing larger than {stall['largest_acked_packet']:,} bytes ever was"
        )
    at, anchor = _place(x, lines, right, px=7.0)
    parts = [
        el("line", x1=x, y1=top, x2=x, y2=top + PANEL_H, class_="stall"),
        el("path", d=f"M{x - 6:.1f},{top + 40:.1f} l12,0 l-6,9 z", class_="stall-head"),
    ]
    for i, line in enumerate(lines):
        parts.append(text(at, top + 54 + 15 * i, line, class_="annotation",
                          text_anchor=anchor))  # fmt: skip
    return [el("g", "".join(parts), class_="stall-note", data_ms=_ms(stall["t"]),
               data_from=direction["from"])]  # fmt: skip


def _place(x: float, lines: list[str], right: float, px: float = 6.8) -> tuple[float, str]:
    """Where text about the point x goes: after it when it fits before ``right``, before
    it when it fits there, else against the right edge."""
    width = px * max(len(line) for line in lines)
    if x + 8 + width <= right:
        return x + 8, "start"
    if x - 8 - width >= 8:
        return x - 8, "end"
    return right - 4, "end"


def _end_mark(end: dict, axis: TimeAxis, top: float, bottom: float, right: float) -> list:
    """How a failed session ended: a line across both panels, said above them."""
    x = axis.x(end["t"])
    label = f"{end['outcome']} (frame {end['frame']}): {end['what']}"
    if len(label) > 120:
        label = label[:119] + "…"
    at, anchor = _place(x, [label], right)
    return [el("g", "".join([
        el("line", x1=x, y1=top - 20, x2=x, y2=bottom, class_="end-line"),
        text(at, top - 24, label, class_="end-text", text_anchor=anchor),
    ]), class_="end-note", data_ms=_ms(end["t"]), data_frame=end["frame"])]  # fmt: skip


def _break(piece, top: float, plot_h: float) -> list[Markup]:
    """A cut-short silence: a pale band with a zigzag at both ends and, written along it
    once, how long it lasted."""
    middle = (piece.x0 + piece.x1) / 2
    centre = top + min(plot_h, PANEL_H) / 2

    def zigzag(y0: float, n: int) -> str:
        points = (f"{middle + (3 if i % 2 else -3):.1f},{y0 + i * 7:.1f}" for i in range(n))
        return "M" + " L".join(points)

    rows = 6
    label = f"{duration_label(piece.end - piece.start)} idle"
    return [el("g", "".join([
        el("rect", x=piece.x0, y=top, width=piece.x1 - piece.x0, height=plot_h, class_="break"),
        el("path", d=zigzag(top, rows), class_="zigzag"),
        el("path", d=zigzag(top + plot_h - 7 * (rows - 1), rows), class_="zigzag"),
        text(middle + 4, centre, label, class_="break-text", text_anchor="middle",
             transform=f"rotate(-90 {middle + 4:.1f} {centre:.1f})"),
    ]), class_="gap-break", data_ms=_ms(piece.end - piece.start))]  # fmt: skip


def _marks(marks: list[dict], axis: TimeAxis, top: float, plot_h: float, right: float):
    """Resets and ICMP errors (and, faint, handshakes and closes) as vertical lines; a run of
    the same mark close together is labelled once, with its count."""
    parts, groups = [], []
    for mark in marks:
        x = axis.x(mark["t"])
        cls = {"RST": "rst", "ICMP": "icmp"}.get(mark["kind"], "tcp")
        parts.append(el("line", x1=x, y1=top, x2=x, y2=top + plot_h, class_=f"mark {cls}"))
        if cls == "tcp":
            continue
        last = groups[-1] if groups else None
        if last and last["kind"] == mark["kind"] and x - last["x"] < 40:
            last["count"] += 1
            last["last"] = mark["frame"]
        else:
            groups.append({**mark, "x": x, "cls": cls, "count": 1, "last": mark["frame"]})
    for row, group in enumerate(groups):
        frames = f"frame {group['frame']}"
        if group["count"] > 1:
            frames = f"×{group['count']}, frames {group['frame']}–{group['last']}"
        label = f"{group['kind']} ({group['from']}, {frames})"
        at_right = group["x"] > right - 260
        parts.append(text(group["x"] + (-4 if at_right else 4), top + 12 + 13 * (row % 3), label,
                          class_=f"label {group['cls']}-text",
                          text_anchor="end" if at_right else "start"))  # fmt: skip
    return parts


def _legend(x: float, y: float) -> list[Markup]:
    items = [("seg data", "data segment"), ("seg retransmission", "retransmission"),
             ("seg out-of-order", "out of order"), ("ack", "acknowledged by the peer"),
             ("mark rst", "reset"), ("mark icmp", "ICMP error")]  # fmt: skip
    parts = []
    for cls, label in items:
        parts.append(el("line", x1=x, y1=y - 4, x2=x + 14, y2=y - 4, class_=cls))
        parts.append(text(x + 18, y, label, class_="axis"))
        x += 26 + 6.2 * len(label)
    return parts


# -- the sessions on the capture's time axis ----------------------------------------------------


def sessions_timeline(timeline: list[dict], capture: dict) -> Markup:
    rows = timeline[:MAX_TIMELINE_ROWS]
    left, right, top = 200.0, 16.0, 10.0
    row, label_class = (18.0, "axis") if len(rows) <= 40 else (11.0, "axis small")
    plot_w = WIDTH - left - right
    height = top + row * len(rows) + 30
    span = max(capture["duration_s"] or 0, 0.001)
    x = lambda s: left + plot_w * min(max(s, 0), span) / span  # noqa: E731
    parts = []
    for tick in ticks(span):
        parts.append(el("line", x1=x(tick), y1=top, x2=x(tick), y2=height - 24, class_="grid"))
        parts.append(text(x(tick), height - 8, duration_label(tick * 1000), class_="axis",
                          text_anchor="middle"))  # fmt: skip
    for i, r in enumerate(rows):
        y = top + row * i
        start = r["offset_s"] or 0
        x1, x2 = x(start), max(x(start + r["duration_s"]), x(start) + 3)
        parts.append(text(8, y + row - 3, f"#{r['session']} {r['outcome']}", 30,
                          class_=label_class))  # fmt: skip
        parts.append(el("rect", x=x1, y=y + 2, width=x2 - x1, height=row - 4, rx=2,
                        class_=f"bar {r['outcome']}"))  # fmt: skip
    if len(timeline) > MAX_TIMELINE_ROWS:
        parts.append(text(8, height - 8, f"… {len(timeline) - MAX_TIMELINE_ROWS} more sessions",
                          class_="note"))  # fmt: skip
    return svg(WIDTH, height, parts, "Sessions over the capture's time")

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
    order, with its frame and its time since the session began."""
    entries = session["entries"][:MAX_LADDER_ROWS]
    cx, sx, top, row = 330.0, 830.0, 58.0, 24.0
    height = top + row * (len(entries) + 1) + 10
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
    ]
    for i, entry in enumerate(entries):
        y = top + row * i + 12
        parts.append(text(8, y + 4, str(entry["frame"]), class_="axis"))
        parts.append(text(58, y + 4, _offset(entry["offset_ms"]), class_="axis"))
        if entry["latency_ms"] is not None:
            parts.append(text(150, y + 4, f"{entry['latency_ms']:.1f} ms", class_="axis"))
        parts += _ladder_row(entry, cx, sx, y)
    if len(session["entries"]) > MAX_LADDER_ROWS:
        more = len(session["entries"]) - MAX_LADDER_ROWS
        parts.append(text(cx, height - 8, f"… {more} more lines in the table below", class_="note"))
    return svg(WIDTH, height, parts, f"Ladder diagram of session {session['id']}")


def _offset(ms: float) -> str:
    return f"+{ms:.3f} ms" if ms < 1000 else f"+{ms / 1000:.3f} s"


def _ladder_row(entry: dict, cx: float, sx: float, y: float) -> list[Markup]:
    kind, sender = entry["kind"], entry["from"]
    label = entry["label"]
    middle = (cx + sx) / 2
    if kind == "icmp":
        to = cx if entry.get("to", "client") == "client" else sx
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
        cls = _reply_class(entry["code"])
    elif kind == "tcp":
        cls = (
            "rst"
            if label.startswith("TCP RST")
            else "tcp-warn"
            if entry["count"] > 1
            or ("retrans" in label or "lost" in label or "not captured" in label)
            else "tcp"
        )
    else:
        cls = {"command": "cmd", "message": "msg", "tls": "tls"}.get(kind, "note")
    parts = [_arrow(start, end, y, cls)]
    if kind == "tcp" and cls == "rst":
        parts.append(el("path", d=f"M{end - 5:.1f},{y - 5:.1f} l10,10 m0,-10 l-10,10",
                        class_="rst-cross"))  # fmt: skip
    bold = cls in ("r4", "r5", "rst")
    parts.append(text(middle, y - 4, label, 70 if bold else 78, class_=f"label {cls}-text",
                      text_anchor="middle"))  # fmt: skip
    return parts


# -- time-sequence graph ------------------------------------------------------------------------


def _bytes_label(value: float) -> str:
    if value >= 1_000_000:
        return f"{value / 1_000_000:g} MB"
    if value >= 10_000:
        return f"{value / 1000:g} kB"
    return f"{value:g}"


def time_sequence(graphs: dict, direction: dict) -> Markup:
    """Bytes over time for one direction: a vertical stroke per data segment (red when
    retransmitted), the peer's acknowledgements as a step line, resets and ICMP as marks.
    Long silences are cut short (``timeaxis``) and labelled with their length."""
    left, right, top, bottom, height = 78.0, 16.0, 34.0, 34.0, 290.0
    plot_w, plot_h = WIDTH - left - right, height - top - bottom
    acks, data = direction["acks"], direction["data"]
    times = [p[0] for p in data] + [a[0] for a in acks] + [m["t"] for m in graphs["marks"]]
    axis = TimeAxis(times, graphs["span_ms"], left, plot_w)
    limit = max([direction["bytes"], *(a[1] for a in acks)], default=0) or 1
    y = lambda b: top + plot_h * (1 - min(max(b, 0), limit) / limit)  # noqa: E731
    peer = "server" if direction["from"] == "client" else "client"
    title = (
        f"{direction['from']} → {peer}: {direction['bytes']:,} bytes in "
        f"{direction['segments']:,} data segments, {direction['retransmitted']} retransmitted"
    )
    parts = [text(left, 14, title, class_="graph-title"), *_legend(left, 28)]
    for x, label in axis.ticks():
        parts.append(el("line", x1=x, y1=top, x2=x, y2=top + plot_h, class_="grid"))
        parts.append(text(x, height - bottom + 16, label, class_="axis", text_anchor="middle"))
    for tick in ticks(limit):
        parts.append(el("line", x1=left, y1=y(tick), x2=left + plot_w, y2=y(tick), class_="grid"))
        parts.append(text(left - 6, y(tick) + 4, _bytes_label(tick), class_="axis",
                          text_anchor="end"))  # fmt: skip
    parts.append(el("rect", x=left, y=top, width=plot_w, height=plot_h, class_="frame"))
    for piece in axis.breaks:
        parts += _break(piece, top, plot_h)
    parts += _marks(graphs["marks"], axis, top, plot_h, left + plot_w)
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
        parts.append(text(left + plot_w / 2, top + plot_h / 2, "no data sent", class_="note",
                          text_anchor="middle"))  # fmt: skip
    return svg(WIDTH, height, parts, title)


def _break(piece, top: float, plot_h: float) -> list[Markup]:
    """A cut-short silence: a pale band with a zigzag at both ends and, written along it,
    how long it lasted."""
    middle = (piece.x0 + piece.x1) / 2

    def zigzag(y0: float, n: int) -> str:
        points = (f"{middle + (3 if i % 2 else -3):.1f},{y0 + i * 7:.1f}" for i in range(n))
        return "M" + " L".join(points)

    rows = int(plot_h * 0.25 / 7)
    return [
        el("rect", x=piece.x0, y=top, width=piece.x1 - piece.x0, height=plot_h, class_="break"),
        el("path", d=zigzag(top, rows), class_="zigzag"),
        el("path", d=zigzag(top + plot_h - 7 * (rows - 1), rows), class_="zigzag"),
        text(middle + 4, top + plot_h / 2, f"{duration_label(piece.end - piece.start)} idle",
             class_="break-text", text_anchor="middle",
             transform=f"rotate(-90 {middle + 4:.1f} {top + plot_h / 2:.1f})"),
    ]  # fmt: skip


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
    left, right, top, row = 200.0, 16.0, 10.0, 18.0
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
        parts.append(text(8, y + 12, f"#{r['session']} {r['outcome']}", 30, class_="axis"))
        parts.append(el("rect", x=x1, y=y + 3, width=x2 - x1, height=row - 6, rx=2,
                        class_=f"bar {r['outcome']}"))  # fmt: skip
    if len(timeline) > MAX_TIMELINE_ROWS:
        parts.append(text(8, height - 8, f"… {len(timeline) - MAX_TIMELINE_ROWS} more sessions",
                          class_="note"))  # fmt: skip
    return svg(WIDTH, height, parts, "Sessions over the capture's time")

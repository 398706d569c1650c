"""The time-sequence graph of a session as inline SVG, one panel per direction, for the HTML
report (pcapsmtp.report.svg says how text is made safe)."""

from __future__ import annotations

from markupsafe import Markup

from pcapsmtp.report.svg import WIDTH, el, ms_text, svg, text
from pcapsmtp.report.timeaxis import TimeAxis, duration_label, ticks


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
    return [el("g", "".join(parts), class_="unseen-note", data_ms=ms_text(unseen["t"]),
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
    return [el("g", "".join(parts), class_="stall-note", data_ms=ms_text(stall["t"]),
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
    ]), class_="end-note", data_ms=ms_text(end["t"]), data_frame=end["frame"])]  # fmt: skip


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
    ]), class_="gap-break", data_ms=ms_text(piece.end - piece.start))]  # fmt: skip


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

"""The sessions on the capture's time axis as inline SVG, for the HTML report
(pcapsmtp.report.svg says how text is made safe)."""

from __future__ import annotations

from markupsafe import Markup

from pcapsmtp.report.svg import WIDTH, el, svg, text
from pcapsmtp.report.timeaxis import duration_label, ticks

MAX_TIMELINE_ROWS = 120


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

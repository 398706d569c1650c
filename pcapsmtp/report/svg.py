"""Inline SVG for the HTML report: the ladder diagram of a dialogue, a time-sequence graph
per direction, and the sessions on the capture's time axis.

Drawn as text. Every string from the document passes through ``safe.terminal`` (control
characters made visible) and ``markupsafe.escape``; attribute values are escaped too, so a
reply or a subject can never become markup. Colours come from CSS classes of the page,
which keeps the figures readable in print.

The figures are drawn in modules of their own: the ladder diagram in
pcapsmtp.report.ladder_svg, the time-sequence graph in .sequence_svg, the sessions on the
capture's time axis in .timeline_svg; this one holds the elements they are made of.
"""

from __future__ import annotations

from markupsafe import Markup, escape

from pcapsmtp.report.safe import terminal

WIDTH = 960


def _attrs(attrs: dict) -> str:
    parts = []
    for name, value in attrs.items():
        if value is None:
            continue
        if isinstance(value, float):
            value = f"{value:.2f}".rstrip("0").rstrip(".")
        parts.append(f' {name.rstrip("_").replace("_", "-")}="{escape(str(value))}"')
    return "".join(parts)


def ms_text(value: float) -> str:
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

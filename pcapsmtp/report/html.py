"""The report as one self-contained HTML page: no script, no external resource, printable.

Jinja2 renders it with autoescaping on, so every value from the document is escaped unless
it is ``Markup`` built by ``report.svg`` (which escapes its own text). Wire text also goes
through ``safe.terminal`` (the ``t`` filter) so control characters show as escapes. The
page's Content-Security-Policy forbids scripts and loads of any kind: even an escaping
mistake could not run code or reach the network.
"""

from __future__ import annotations

import re
import shlex
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup, escape

from pcapsmtp.report.findings import finding_cards, ranges
from pcapsmtp.report.ladder_svg import ladder
from pcapsmtp.report.model import Report
from pcapsmtp.report.safe import terminal
from pcapsmtp.report.sequence_svg import time_sequence
from pcapsmtp.report.timeline_svg import sessions_timeline
from pcapsmtp.report.zeek import tcp_legend

CONTENT_SECURITY_POLICY = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"


BACKTICKED = re.compile(r"`([^`\n]+)`")


def prose(value) -> Markup:
    """Running text whose `backticked` parts (commands in our advice) show as code. Every
    part is escaped; wire text quoted in the sentence can at worst become code too, which
    is as inert as the rest."""
    parts = BACKTICKED.split(terminal(str(value)))
    return Markup("").join(
        Markup("<code>{}</code>").format(part) if i % 2 else escape(part)
        for i, part in enumerate(parts)
    )


def moment(value, tz_name: str = "UTC") -> str:
    """An ISO 8601 time as people read it, in the report's zone, to the millisecond."""
    if not value:
        return "-"
    try:
        when = datetime.fromisoformat(str(value))
    except ValueError:
        return terminal(str(value))
    try:
        zone = UTC if tz_name == "UTC" else ZoneInfo(tz_name)
    except (ValueError, ZoneInfoNotFoundError):
        zone = UTC
    return when.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("pcapsmtp.report", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["t"] = lambda value: "-" if value is None or value == "" else terminal(str(value))
    env.filters["shell"] = shlex.join
    env.filters["lines"] = lambda value: [terminal(line) for line in str(value).split("\n")]
    env.filters["prose"] = prose
    env.filters["moment"] = moment
    env.filters["ranges"] = ranges
    env.globals.update(
        ladder=ladder,
        time_sequence=time_sequence,
        sessions_timeline=sessions_timeline,
        finding_cards=finding_cards,
        csp=CONTENT_SECURITY_POLICY,
        tcp_legend=tcp_legend,
    )
    return env


def render_report_html(report: Report) -> str:
    return _environment().get_template("report.html.j2").render(r=report)

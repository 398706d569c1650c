"""The report as one self-contained HTML page: no script, no external resource, printable.

Jinja2 renders it with autoescaping on, so every value from the document is escaped unless
it is ``Markup`` built by ``report.svg`` (which escapes its own text). Wire text also goes
through ``safe.terminal`` (the ``t`` filter) so control characters show as escapes. The
page's Content-Security-Policy forbids scripts and loads of any kind: even an escaping
mistake could not run code or reach the network.
"""

from __future__ import annotations

import shlex

from jinja2 import Environment, PackageLoader, StrictUndefined

from pcapsmtp.report import svg
from pcapsmtp.report.safe import terminal
from pcapsmtp.report.zeek import tcp_legend

CONTENT_SECURITY_POLICY = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"


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
    env.globals.update(
        ladder=svg.ladder,
        time_sequence=svg.time_sequence,
        sessions_timeline=svg.sessions_timeline,
        csp=CONTENT_SECURITY_POLICY,
        tcp_legend=tcp_legend,
    )
    return env


def render_report_html(report: dict) -> str:
    return _environment().get_template("report.html.j2").render(r=report)

"""The JSON document of DESIGN.md's contract."""

from __future__ import annotations

import json

from pcapsmtp import __version__
from pcapsmtp.analysis import Analysis
from pcapsmtp.report.captures import capture_dict


def analysis_document(analysis: Analysis) -> dict:
    return {
        "tool": {"name": "pcapsmtp", "version": __version__},
        "captures": [capture_dict(info) for info in analysis.captures],
        "errors": [{"file": e.source, "reason": e.reason} for e in analysis.errors],
        "sessions": [],
        "findings": [],
    }


def render_json(analysis: Analysis) -> str:
    return json.dumps(analysis_document(analysis), indent=2, ensure_ascii=False) + "\n"

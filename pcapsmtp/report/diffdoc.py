"""A diff as plain structures: the JSON of ``pcapsmtp diff`` (docs/diff.md has the schema).

Keys of the two sides are their roles: ``good`` and ``bad``, or ``client_side`` and
``server_side`` with ``--same-session``. Wire text passes through ``safe.wire``.
"""

from __future__ import annotations

import json
from datetime import UTC, tzinfo

from pcapsmtp import __version__
from pcapsmtp.capture.addresses import endpoint_name
from pcapsmtp.diff.model import SAME_SESSION, AlignedStep, Diff, Side, Step
from pcapsmtp.diff.names import named_findings, step_name
from pcapsmtp.report.safe import json_text, wire
from pcapsmtp.report.schema import SCHEMA_VERSION
from pcapsmtp.report.sessions import endpoint_fields
from pcapsmtp.report.times import iso
from pcapsmtp.smtp import codes
from pcapsmtp.tcp.community import community_id


def _ms(ns: int | None) -> float | None:
    return None if ns is None else round(ns / 1e6, 3)


def _clean(value):
    """Wire strings made valid text, recursively."""
    if isinstance(value, str):
        return wire(value)
    if isinstance(value, list):
        return [_clean(v) for v in value]
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    return value


def side_dict(side: Side) -> dict:
    session = side.session
    return {
        "capture": side.capture,
        "session": session.id,
        "tcp_stream": session.flow.stream,
        "client": endpoint_name(session.client),
        "server": endpoint_name(session.server),
        **endpoint_fields(session.client, session.server),
        "community_id": community_id(session.flow),
        "start": iso(session.flow.first_time_ns),
        "outcome": session.outcome,
        "outcome_reason": session.outcome_reason,
        "capture_point": side.capture_point,
        "sessions_in_capture": side.sessions_in_capture,
        "findings": [
            {"code": f.code, "severity": f.severity, "summary": wire(f.summary)}
            for f in side.findings
        ],
    }


def reply_dict(step: Step) -> dict | None:
    reply = step.reply
    if reply is None:
        return None
    return {
        "code": reply.code,
        "enhanced": codes.parse_enhanced(reply.lines[0]) if reply.lines else None,
        "text": wire(reply.text),
        "frame": reply.frame,
    }


def step_dict(step: Step | None) -> dict | None:
    if step is None:
        return None
    return {
        "step": step.key,
        "command": wire(step.label),
        "frame": step.frame,
        "time": iso(step.time_ns),
        "reply": reply_dict(step),
        "latency_ms": _ms(step.latency_ns),
        "incomplete": step.incomplete,
        "note": wire(step.note) or None,
        "tcp": dict(step.tcp),
    }


def divergence_dict(aligned: AlignedStep | None) -> dict | None:
    if aligned is None or aligned.divergence is None:
        return None
    found = aligned.divergence
    present = aligned.b or aligned.a
    return {
        "step": aligned.index,
        "name": step_name(present),
        "kind": found.kind,
        "major": found.major,
        "detail": wire(found.detail),
    }


def aligned_dict(aligned: AlignedStep, roles: tuple[str, str]) -> dict:
    present = aligned.a or aligned.b
    divergence = divergence_dict(aligned)
    if divergence is not None:
        divergence = {k: divergence[k] for k in ("kind", "major", "detail")}
    return {
        "index": aligned.index,
        "step": present.key,
        "divergence": divergence,
        roles[0]: step_dict(aligned.a),
        roles[1]: step_dict(aligned.b),
    }


def diff_document(diff: Diff) -> dict:
    roles = (diff.a.role, diff.b.role)
    document = {
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": "pcapsmtp", "version": __version__},
        "mode": diff.mode,
        roles[0]: side_dict(diff.a),
        roles[1]: side_dict(diff.b),
        "verdict": wire(diff.verdict),
        "first_divergence": divergence_dict(diff.first_divergence),
        f"findings_only_in_{roles[1]}": [f.code for f in diff.only_in_b],
        f"findings_only_in_{roles[0]}": [f.code for f in diff.only_in_a],
        "steps": [aligned_dict(step, roles) for step in diff.steps],
        "parameters": {
            p.name: {
                "label": p.label,
                roles[0]: _clean(p.a),
                roles[1]: _clean(p.b),
                "differs": p.differs,
            }
            for p in diff.parameters
        },
        "notes": [wire(note) for note in diff.notes],
    }
    if diff.mode == SAME_SESSION:
        document |= same_session_dict(diff, roles)
    return document


def same_session_dict(diff: Diff, roles: tuple[str, str]) -> dict:
    return {
        "pairing": diff.pairing,
        "transit": {
            t.sender: {
                "sent": t.sent,
                "arrived": t.arrived,
                "vanished": t.vanished,
                "vanished_sizes": {str(k): v for k, v in t.vanished_sizes.items()},
                "arrived_sizes": {str(k): v for k, v in t.arrived_sizes.items()},
                "unconfirmed": t.unconfirmed,
                "appeared": t.appeared,
                "fragmented": t.fragmented,
                "hops": t.hops,
            }
            for t in diff.transit
        },
        "middlebox": [
            {
                "code": fact.code,
                "finding": fact.finding,
                "summary": wire(fact.summary),
                "frames": {roles[0]: fact.frames_a, roles[1]: fact.frames_b},
            }
            for fact in diff.facts
        ],
        "findings": named_findings(diff),
    }


def render_diff_json(diff: Diff, tz: tzinfo = UTC) -> str:
    """The diff document; its times are UTC whatever ``tz`` is, as in every JSON output."""
    return json_text(json.dumps(diff_document(diff), indent=2, ensure_ascii=False)) + "\n"

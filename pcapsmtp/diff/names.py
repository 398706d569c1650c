"""How a diff's parts are named in words: its steps, its parameter values, how the two
captures' sessions were paired and the catalogue codes its transit facts amount to.

Both the comparison (its verdict sentences) and the renderers (pcapsmtp.report) use these,
so they live apart from the computation: the report layer reads them without importing it.
"""

from __future__ import annotations

from .model import Diff, Step, Value

STEP_NAMES = {
    "greeting": "the greeting",
    "message": "the message transfer",
    "tls": "the TLS handshake",
    "unsolicited": "a reply nobody asked for",
    "end": "the end of the session",
    "auth-response": "an AUTH exchange",
}


def step_name(step: Step) -> str:
    return STEP_NAMES.get(step.key, step.key)


VALUE_NAMES = {"from": "", "ttl": "TTL", "mtu": "MTU", "ignored": "(ignored)"}


def describe(value: Value) -> str:
    """A parameter value in a few characters: '1460 / 1400', 'client TTL 64', 'none'."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict) and set(value) == {"client", "server"}:
        return f"{describe(value['client'])} / {describe(value['server'])}"
    if isinstance(value, dict):
        words = (
            VALUE_NAMES.get(k, k) if v is True else f"{VALUE_NAMES.get(k, k)} {describe(v)}"
            for k, v in value.items()
            if v is not None and v is not False
        )
        return " ".join(words).strip()
    if isinstance(value, list):
        return ", ".join(describe(v) for v in value) if value else "none"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


PAIRING_NAMES = {
    "isn": "by their initial sequence numbers",
    "payload": "by the first bytes the client sent",
    "ports": "by the client port and time",
    "time": "by time alone (a guess)",
}


def named_findings(diff: Diff) -> list[str]:
    """The catalogue codes the transit facts amount to, in order."""
    out: list[str] = []
    for fact in diff.facts:
        if fact.finding and fact.finding not in out:
            out.append(fact.finding)
    return out

"""The rule registry: each family module registers small rules; a failing rule is isolated.

A rule is a function ``(session, context) -> Iterable[Finding]`` (or, for rules about the
whole capture, ``(sessions, context) -> Iterable[Finding]``), declared with the codes it can
produce so docs and tests can check every code has a rule.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from pcapsmtp.diagnose.model import Finding


@dataclass(slots=True, frozen=True)
class Rule:
    function: Callable[..., Iterable[Finding]]
    codes: tuple[str, ...]
    scope: str
    """'session' or 'capture'."""

    @property
    def name(self) -> str:
        return f"{self.function.__module__}.{self.function.__name__}"


RULES: list[Rule] = []


def session_rule(*codes: str):
    def register(function):
        RULES.append(Rule(function, codes, "session"))
        return function

    return register


def capture_rule(*codes: str):
    def register(function):
        RULES.append(Rule(function, codes, "capture"))
        return function

    return register

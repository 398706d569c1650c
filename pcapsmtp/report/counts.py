"""Counts in words: '1 SMTP session', '2 SMTP sessions', never '1 SMTP sessions'."""

from __future__ import annotations


def count(number: int, noun: str, plural: str | None = None) -> str:
    """'1 session', '3 sessions'; ``plural`` for nouns that do not just take an s."""
    return f"{number:,} {noun if number == 1 else plural or noun + 's'}"

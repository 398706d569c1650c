"""Envelope paths as commands give them (MAIL FROM, RCPT TO, with their parameters) and the
addresses replies quote."""

from __future__ import annotations

import re

PATH = re.compile(r"(?:FROM|TO)\s*:\s*(<[^>]*>?|[^\s<>]*)\s*(.*)", re.IGNORECASE | re.DOTALL)
QUOTED_ADDRESS = re.compile(r"<([^<>\s]+@[^<>\s]+)>")
"""An address a reply quotes ("550 5.1.1 <dave@example.org>: Recipient address rejected")."""


def parse_path(argument: str) -> tuple[str | None, dict[str, str]]:
    """'FROM:<a@b> SIZE=10' -> ('a@b', {'SIZE': '10'}); tolerates 'FROM:a@b' and spaces."""
    match = PATH.match(argument.strip())
    if not match:
        return None, {}
    address = match.group(1).strip().removeprefix("<").removesuffix(">")
    params = {}
    for token in match.group(2).split():
        key, _, value = token.partition("=")
        params[key.upper()] = value
    return address, params

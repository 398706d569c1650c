"""IP addresses named in a message's trace fields (Received, X-Originating-IP), found the
way Zeek's scripts find them (base/utils/addrs.zeek extract_ip_addresses and
base/protocols/smtp/main.zeek find_address_in_smtp_header), so that smtp.log's ``path`` and
``x_originating_ip`` are Zeek's; learnt from those scripts, none of it copied.

Zeek's pattern for an address is written out below as it is (including its IPv6-with-IPv4
forms, which need the dotted part right after the hex groups); a match is then checked to be
an address (``ipaddress``, as Zeek's is_valid_ip). Zeek takes the longest match at the
leftmost place; Python's ``re`` takes the first alternative, so the match is lengthened here.
"""

from __future__ import annotations

import functools
import ipaddress
import itertools
import re

MAX_CANDIDATES = 64
"""Address-like strings looked at in one field: a Received field names two or three, so
this bounds the work a hostile field full of them can cause."""
MAX_SEARCHED = 998
"""Characters searched for an address anywhere (not wrapped): a line's worth (RFC 5322
2.1.1), as much as an X-Originating-IP field holds."""

_DEC = r"(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|0[0-9]{2}|[0-9]{2}|[0-9])"
_V4 = rf"{_DEC}\.{_DEC}\.{_DEC}\.{_DEC}"
_HEX = r"[0-9A-Fa-f]{1,4}"


def _lead(count: int, after: int) -> str:
    head = "" if count == 0 else rf"{_HEX}(?::{_HEX}){{{count - 1}}}"
    tail = "" if after < 0 else rf"(?:{_HEX}(?::{_HEX}){{0,{after}}})?"
    return head + "::" + tail


_V6 = "|".join(
    [
        rf"(?:{_HEX}:){{7}}{_HEX}",
        *(_lead(count, 6 - count) for count in range(7)),
        _lead(7, -1),
        rf"(?:{_HEX}:){{6}}{_V4}",
        *(_lead(count, 4 - count) + _V4 for count in range(5)),
        _lead(5, -1) + _V4,
    ]
)


@functools.cache
def _address_pattern() -> re.Pattern[str]:
    """Zeek's address pattern, compiled when a trace field is first read (3.5 ms, which a
    capture without messages never needs)."""
    return re.compile(f"(?:{_V4}|{_V6})")


_RUN = re.compile(r"[0-9A-Fa-f:.]{2,}")
"""Text an address can lie in: what is outside cannot be part of one."""
_WRAPPED = re.compile(r"([\[({ ])([0-9A-Fa-f:.]{2,45})(?=([\])} ]))")
"""A run of such text (group 2) between [, (, { or a space (group 1) and ], ), } or a space
(group 3), short enough to be an address; it counts when the two belong together
(``_WRAPPERS``). One pattern with the pairs checked after the match: the four patterns of
the pairs, each behind a look-behind, cost twice as much on a Received field."""
_LONGEST = 45
"""The longest text of an address (IPv6 with an IPv4 tail): no match is longer."""
_WRAPPERS = {"[": "]", "(": ")", "{": "}", " ": " "}


@functools.lru_cache(maxsize=1024)
def _address(text: str) -> str | None:
    """The address as Zeek writes an addr (an IPv4-mapped IPv6 address as IPv4)."""
    try:
        found = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(found, ipaddress.IPv6Address) and found.ipv4_mapped is not None:
        return str(found.ipv4_mapped)
    return str(found)


def _matches(text: str, start: int, stop: int):
    """(start, end) of each match in text[start:stop], leftmost first, each as long as it
    can be."""
    address = _address_pattern()
    while True:
        found = address.search(text, start, stop)
        if found is None:
            return
        begin, end = found.span()
        for longer in range(min(stop, begin + _LONGEST), end, -1):
            if address.fullmatch(text, begin, longer):
                end = longer
                break
        yield begin, end
        start = max(end, begin + 1)


def ip_addresses(text: str, wrapped: bool = False, limit: int | None = None) -> list[str]:
    """The addresses in ``text``, in order, at most ``limit``. With ``wrapped`` (Zeek's
    check_wrapping) only those between [], (), {} or two spaces, or the whole text; Zeek
    also takes a match that touches the matches on both sides, which no address written by
    a mail server does and which is left out here. Only the first MAX_CANDIDATES
    address-like strings are looked at, and without ``wrapped`` only the first
    MAX_SEARCHED characters (Zeek looks at all)."""
    if wrapped:
        if _RUN.fullmatch(text):
            spans = iter([(0, len(text))])
        else:
            spans = (m.span(2) for m in _WRAPPED.finditer(text) if _WRAPPERS[m[1]] == m[3])
    else:
        spans = (
            span
            for run in _RUN.finditer(text, 0, MAX_SEARCHED)
            if "." in run.group() or ":" in run.group()
            for span in _matches(text, *run.span())
        )
    found: list[str] = []
    pattern = _address_pattern()
    for start, end in itertools.islice(spans, MAX_CANDIDATES):
        if wrapped and not pattern.fullmatch(text, start, end):
            continue
        address = _address(text[start:end])
        if address is None:
            continue
        found.append(address)
        if limit is not None and len(found) >= limit:
            break
    return found


def received_address(value: str) -> str | None:
    """The address a Received field names, as Zeek's SMTP script picks it: of the wrapped
    addresses, the second when there are several (``from host (name [client]) by ...``
    names the client second), else the first."""
    found = ip_addresses(value, wrapped=True, limit=2)
    return found[-1] if found else None

"""Which session the user means, the same way in every command.

A session is named by

- its id, ``3``: the number ``analyze`` printed for it. Ids are counted per capture (a file,
  or the files of one rotated set), from 1 in the order of the sessions' first frames, so a
  session has the same id whether its capture was analysed alone or with others;
- its client's address and port, ``10.0.0.5:40312`` or ``[2001:db8::5]:40312``, as the
  client column shows it;
- Wireshark's ``tcp.stream`` number (``--stream N``), for a user coming from Wireshark.

A selector that matches nothing, or sessions of several captures, is the user's mistake:
``SelectionError`` says what exists instead, and the command line makes it a usage error.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from pcapsmtp.capture.addresses import endpoint_name
from pcapsmtp.errors import PcapsmtpError
from pcapsmtp.smtp.model import Session

ID = "id"
CLIENT = "client"
STREAM = "stream"

_ENDPOINT = re.compile(r"^\[(?P<v6>[^\]]+)\]:(?P<port6>\d+)$|^(?P<v4>[^:\[\]]+):(?P<port4>\d+)$")
MAX_LISTED = 12
"""Sessions named in an error message; a retry storm's 240 are summed up after these."""


class SelectionError(PcapsmtpError, ValueError):
    """No session (or more than one capture's) answers to the selector; the text says which
    sessions there are."""

    usage = True


@dataclass(frozen=True, slots=True)
class Selector:
    kind: str
    """ID, CLIENT or STREAM."""
    value: int | tuple[bytes, int]
    """The id or tcp.stream number; for CLIENT (packed address, port)."""
    text: str
    """As the user wrote it, for messages and the report's command line."""

    def matches(self, session: Session) -> bool:
        if self.kind == ID:
            return session.id == self.value
        if self.kind == STREAM:
            return session.flow.stream == self.value
        return (session.client.ip, session.client.port) == self.value

    def describe(self) -> str:
        if self.kind == STREAM:
            return f"tcp.stream {self.value}"
        return f"session {self.text}" if self.kind == ID else f"session from {self.text}"


def parse_session(text: str) -> Selector:
    """``N`` or ``CLIENT:PORT`` (``[v6]:PORT``); ValueError says what is accepted."""
    text = text.strip()
    if text.isdigit():
        return Selector(ID, int(text), text)
    match = _ENDPOINT.match(text)
    if match:
        host = match["v6"] or match["v4"]
        port = int(match["port6"] or match["port4"])
        try:
            packed = ipaddress.ip_address(host).packed
        except ValueError:
            packed = None
        if packed is not None and 0 < port < 65536:
            return Selector(CLIENT, (packed, port), text)
    raise ValueError(
        f"{text!r} is not a session: give its id (3), or its client's address and port "
        "(10.0.0.5:40312, [2001:db8::5]:40312)"
    )


def stream_selector(number: int) -> Selector:
    return Selector(STREAM, number, str(number))


def as_selector(value: Selector | int) -> Selector:
    """A selector, from a selector or a plain session id."""
    return value if isinstance(value, Selector) else Selector(ID, value, str(value))


def select(sessions: list[Session], selector: Selector, where: str) -> Session:
    """The one session ``selector`` names among ``sessions`` (of ``where``, for messages)."""
    found = [s for s in sessions if selector.matches(s)]
    if len(found) == 1:
        return found[0]
    if not found:
        raise SelectionError(
            f"{where} has no SMTP {selector.describe()}; its sessions: {listing(sessions)}"
        )
    captures = sorted({s.capture for s in found})
    if len(captures) > 1:
        raise SelectionError(
            f"{selector.describe()} is in several captures ({', '.join(captures)}): "
            "name one capture file"
        )
    raise SelectionError(
        f"{selector.describe()} matches several sessions of {where}: {listing(found)}; "
        "give the session id"
    )


def listing(sessions: list[Session]) -> str:
    """'1 (10.0.0.5:40312, tcp.stream 0), 2 (...)': how to name each session."""
    if not sessions:
        return "none"
    several = len({s.capture for s in sessions}) > 1
    shown = [
        f"{s.id} ({endpoint_name(s.client)}, tcp.stream {s.flow.stream}"
        + (f", in {s.capture})" if several else ")")
        for s in sessions[:MAX_LISTED]
    ]
    more = f" … ({len(sessions)} in all)" if len(sessions) > MAX_LISTED else ""
    return ", ".join(shown) + more


def session_ref(key: tuple[str, int], several: bool) -> int | str:
    """How the JSON documents name a session: its id, or ``capture#id`` among the sessions of
    several captures (their ids each start at 1)."""
    return f"{key[0]}#{key[1]}" if several else key[1]

"""A Session's lists bounded whatever a peer sends (``_Capped``), and its lists and dicts
shared empty while its connection is open (``UNFILLED``, ``_grown``)."""

from __future__ import annotations

from collections import deque
from types import MappingProxyType

from pcapsmtp.smtp.events import Command
from pcapsmtp.smtp.model import LeftOut, Session

TAIL = 100
"""Past a cap, the last this many items are kept as well: a session fails at its end."""

UNFILLED = MappingProxyType({})
"""The empty mapping an open session's dicts share until they are given one."""
_LISTS = (
    "auth", "transactions", "dialogue", "commands", "unsolicited", "gaps", "anomalies",
    "not_captured", "unanswered", "uncertain",
)  # fmt: skip
_UNFILLED_FIELDS = {**dict.fromkeys(_LISTS, ()), "extensions": UNFILLED, "left_out": UNFILLED}
"""The Session's lists and dicts, shared empty while its connection is open (``_grown``):
most stay empty, and a flood holds 100,000 open sessions (ten empty lists and two empty
dicts were 688 bytes of each). ``SessionBuilder.finish`` gives the finished session its own
empty ones, as ``Session()`` does."""


def _grown(session: Session, name: str) -> list:
    """``session``'s list ``name``, made its own on first use."""
    items = getattr(session, name)
    if items == ():
        items = []
        setattr(session, name, items)
    return items


def _left_out(session: Session) -> dict[str, LeftOut]:
    """``session.left_out``, made its own on first use."""
    if session.left_out is UNFILLED:
        session.left_out = {}
    return session.left_out


class _Capped:
    """A session list bounded whatever a peer sends: the first ``cap`` items, the last TAIL,
    and a count (by reply code) of those in between, in ``session.left_out``."""

    __slots__ = ("cap", "items", "name", "noun", "session", "tail", "tail_size", "unanswered")

    def __init__(self, session: Session, name: str, noun: str, cap: int, tail: int = TAIL):
        self.session, self.name, self.noun, self.cap = session, name, noun, cap
        self.items: list = _grown(session, name)
        self.tail: deque | None = None
        """Made when the cap is first reached (an empty deque costs 600 bytes, and every
        open session has six of these)."""
        self.tail_size = tail
        self.unanswered: set[int] | None = None
        """ids of commands left out before their reply came: counted when it comes."""

    def add(self, item, keep: bool = False) -> None:
        """Append ``item``; ``keep`` appends it whatever the cap (AUTH lines: the export
        must find every one to redact it)."""
        if len(self.items) < self.cap or keep:
            self.items.append(item)
            return
        if self.tail is None:
            self.tail = deque()
        self.tail.append(item)
        if len(self.tail) > self.tail_size:
            self._leave_out(self.tail.popleft())

    def _leave_out(self, item) -> None:
        left_out = self.session.left_out.get(self.name)
        if left_out is None:
            left_out = _left_out(self.session)[self.name] = LeftOut(self.noun, self.cap)
        if isinstance(item, Command) and item.reply is None:
            if self.unanswered is None:
                self.unanswered = set()
            self.unanswered.add(id(item))
            left_out.count += 1
            return
        reply = getattr(item, "reply", None)
        left_out.add(getattr(item, "code", None) or getattr(reply, "code", None))

    def answered(self, command: Command, code: int) -> None:
        """The reply to a command already left out: its code joins the count."""
        if self.unanswered and id(command) in self.unanswered:
            self.unanswered.discard(id(command))
            codes = self.session.left_out[self.name].codes
            codes[code] = codes.get(code, 0) + 1

    def finish(self) -> None:
        if self.tail:
            self.items.extend(self.tail)
            self.items.sort(key=lambda item: item.frame)  # kept AUTH lines among the tail
            self.tail.clear()

"""A progress line on standard error while a long capture is read.

Only the command line decides to show one (standard error is a terminal and no
``--quiet``); the analysis only calls ``update`` now and then. Nothing is written during the
first second, so short reads stay silent, and the line is redrawn at most four times a
second and erased at the end, so it never mixes with the output.
"""

from __future__ import annotations

import os
import time
from typing import TextIO

INTERVAL = 0.25
"""Seconds between two redraws."""
DELAY = 1.0
"""Seconds of reading before the line first shows."""


def format_progress(
    source: str,
    position: int | None,
    size: int | None,
    packets: int,
    connections: int,
    sessions: int,
    seconds: float,
) -> str:
    """One line: what is read, how far, how fast."""
    name = "standard input" if source == "-" else os.path.basename(source)
    parts = [f"pcapsmtp: reading {name}"]
    if position is not None:
        done = f"{position / 1e6:,.0f}"
        if size:
            done += f" of {size / 1e6:,.0f} MB ({100 * position / size:.0f}%)"
        else:
            done += " MB"
        parts.append(done)
        if seconds > 0:
            parts.append(f"{position / 1e6 / seconds:,.0f} MB/s")
    parts.append(f"{packets:,} packets")
    parts.append(f"{connections:,} TCP connection{'' if connections == 1 else 's'}")
    parts.append(f"{sessions:,} SMTP session{'' if sessions == 1 else 's'}")
    return ", ".join(parts)


class Progress:
    """Redraws one line on a terminal stream, throttled; ``done`` erases it."""

    def __init__(self, stream: TextIO, clock=time.monotonic) -> None:
        self._stream = stream
        self._clock = clock
        self._start = clock()
        self._next = self._start + DELAY
        self._shown = False

    def update(
        self,
        source: str,
        position: int | None,
        size: int | None,
        packets: int,
        connections: int,
        sessions: int,
    ) -> None:
        now = self._clock()
        if now < self._next:
            return
        self._next = now + INTERVAL
        line = format_progress(
            source, position, size, packets, connections, sessions, now - self._start
        )
        self._stream.write("\r" + line + "\x1b[K")
        self._stream.flush()
        self._shown = True

    def tasks(self, what: str, done: int, total: int) -> None:
        """Files of a rotated set analysed in parallel: ``done`` of ``total``."""
        now = self._clock()
        if now < self._next and done < total:
            return
        self._next = now + INTERVAL
        name = "scanning files" if what == "scan" else f"analysing {os.path.basename(what)}"
        line = f"pcapsmtp: {name}: {done:,} of {total:,} files done, {now - self._start:.0f} s"
        self._stream.write("\r" + line + "\x1b[K")
        self._stream.flush()
        self._shown = True

    def done(self) -> None:
        if self._shown:
            self._stream.write("\r\x1b[K")
            self._stream.flush()
            self._shown = False

"""The project's errors: one base, ``PcapsmtpError``, caught once by the command line.

Every error the tool means to show derives from it, and ``pcapsmtp.cli`` turns it into
what the user reads, in one place:

- ``usage`` False (the default): the input or the output cannot be used. One line,
  ``pcapsmtp: error: <message>``, and exit status 1. ``CaptureError`` (this input cannot be
  read at all: missing, a directory, not a capture, empty, unreadable) is the common one.
- ``usage`` True: the command line names what the input does not hold (a session that is not
  there, two captures with nothing to compare). click's usage error, exit status 2; the
  message says what there is instead.

Everything that can be partly read is read; what was lost becomes a warning on the
result (``CaptureInfo.warnings``), never an exception.
"""

from __future__ import annotations

from typing import ClassVar


class PcapsmtpError(Exception):
    """An error meant for the user; its message is the one line they read."""

    usage: ClassVar[bool] = False
    """True: a mistake on the command line (exit 2), not in the input (exit 1)."""


class CaptureError(PcapsmtpError):
    """This input cannot be read."""

    def __init__(self, source: str, reason: str) -> None:
        super().__init__(f"{source}: {reason}")
        self.source = source
        self.reason = reason

    def __reduce__(self):
        return (type(self), (self.source, self.reason))

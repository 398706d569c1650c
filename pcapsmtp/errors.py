"""The project's one error type.

CaptureError
    This input cannot be read at all (missing, a directory, not a capture, empty,
    unreadable). The CLI turns it into one line, ``pcapsmtp: error: <file>: <reason>``,
    and exit status 1.

Everything that can be partly read is read; what was lost becomes a warning on the
result (``CaptureInfo.warnings``), never an exception.
"""


class CaptureError(Exception):
    """This input cannot be read."""

    def __init__(self, source: str, reason: str) -> None:
        super().__init__(f"{source}: {reason}")
        self.source = source
        self.reason = reason

    def __reduce__(self):
        return (type(self), (self.source, self.reason))

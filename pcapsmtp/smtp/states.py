"""The states of a Dialogue's two sides, written down with when each is entered, and the
fixed values a dialogue starts from (the virtual greeting command, a reply not begun)."""

from __future__ import annotations

from enum import Enum, auto

from pcapsmtp.smtp.events import GREETING, Command


class ClientState(Enum):
    START = auto()
    """Nothing seen yet: the first bytes tell TLS (port 465) from SMTP."""
    COMMAND = auto()
    """Reading command lines."""
    AWAIT_DATA_REPLY = auto()
    """Sent DATA: holding bytes until the server answers (354 starts the message)."""
    DATA_BODY = auto()
    """After 354: message bytes up to CRLF.CRLF."""
    BDAT_CHUNK = auto()
    """After a BDAT command line: exactly its size in message bytes."""
    AUTH_RESPONSE = auto()
    """After a 334 challenge: the next line is a credential."""
    AWAIT_TLS = auto()
    """STARTTLS accepted: the next bytes tell whether TLS really started."""
    TLS = auto()
    RESYNC = auto()
    """After a gap: skipping to the next line that reads as a command."""


READING_COMMANDS = (ClientState.COMMAND, ClientState.RESYNC)
CLIENT_LINES = (ClientState.COMMAND, ClientState.AUTH_RESPONSE, ClientState.RESYNC)
"""States in which the client's bytes are command lines."""


class ServerState(Enum):
    START = auto()
    LINES = auto()
    AWAIT_TLS = auto()
    TLS = auto()
    RESYNC = auto()


SERVER_LINES = (ServerState.LINES, ServerState.RESYNC)
"""States in which the server's bytes are reply lines."""

NOWHERE = (0, 0)
"""(first frame, stream offset) of a reply not begun."""
GREETING_COMMAND = Command(GREETING, "", 0, 0)
"""The virtual command every greeting answers, one for all connections (each open one held
its own, 144 bytes): never changed, so its ``reply`` stays None (a greeting is
``session.greeting``; the virtual command is in no session's ``commands``)."""

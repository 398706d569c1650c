"""The states of a Dialogue's two sides, written down with when each is entered, and the
fixed values a dialogue starts from (the virtual greeting command, a reply not begun).

A state is a named object compared by identity, a class attribute of ``ClientState`` or
``ServerState``: not an ``Enum`` member, because on Python 3.11 reading a member from its
class (``ClientState.COMMAND``) costs about 300 ns (``EnumType.__getattr__`` sends every
attribute lookup on the class through Python), 20 times a plain class attribute, and the
dialogue reads them several times for every line."""

from __future__ import annotations

from pcapsmtp.smtp.events import GREETING, Command


class State:
    """One state of a side: ``ClientState.COMMAND`` is the same object wherever it is read."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"<{self.name}>"


class ClientState:
    """The states of the client's side: what its next bytes are."""

    START = State("ClientState.START")
    """Nothing seen yet: the first bytes tell TLS (port 465) from SMTP."""
    COMMAND = State("ClientState.COMMAND")
    """Reading command lines."""
    AWAIT_DATA_REPLY = State("ClientState.AWAIT_DATA_REPLY")
    """Sent DATA: holding bytes until the server answers (354 starts the message)."""
    DATA_BODY = State("ClientState.DATA_BODY")
    """After 354: message bytes up to CRLF.CRLF."""
    DATA_TAIL = State("ClientState.DATA_TAIL")
    """The server answered a message whose end the capture lacked (a gap in the body), and
    the client's bytes sent before that reply are still to come (held behind a hole the
    reassembly gave up later): they are the rest of that message, up to its CRLF.CRLF."""
    BDAT_CHUNK = State("ClientState.BDAT_CHUNK")
    """After a BDAT command line: exactly its size in message bytes."""
    AUTH_RESPONSE = State("ClientState.AUTH_RESPONSE")
    """After a 334 challenge: the next line is a credential."""
    AWAIT_TLS = State("ClientState.AWAIT_TLS")
    """STARTTLS accepted: the next bytes tell whether TLS really started."""
    TLS = State("ClientState.TLS")
    RESYNC = State("ClientState.RESYNC")
    """After a gap: skipping to the next line that reads as a command."""


READING_COMMANDS = (ClientState.COMMAND, ClientState.RESYNC)
CLIENT_LINES = (ClientState.COMMAND, ClientState.AUTH_RESPONSE, ClientState.RESYNC)
"""States in which the client's bytes are command lines."""


class ServerState:
    """The states of the server's side: what its next bytes are (reply lines, or TLS after
    STARTTLS or on port 465; RESYNC after a gap: skipping to the next reply line)."""

    START = State("ServerState.START")
    LINES = State("ServerState.LINES")
    AWAIT_TLS = State("ServerState.AWAIT_TLS")
    TLS = State("ServerState.TLS")
    RESYNC = State("ServerState.RESYNC")


SERVER_LINES = (ServerState.LINES, ServerState.RESYNC)
"""States in which the server's bytes are reply lines."""

NOWHERE = (0, 0)
"""(first frame, stream offset) of a reply not begun."""
GREETING_COMMAND = Command(GREETING, "", 0, 0)
"""The virtual command every greeting answers, one for all connections (each open one held
its own, 144 bytes): never changed, so its ``reply`` stays None (a greeting is
``session.greeting``; the virtual command is in no session's ``commands``)."""

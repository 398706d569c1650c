"""Connection state and history in Zeek's conn.log vocabulary, so users of both read it at once.

See Zeek's ``base/protocols/conn/main.zeek`` (``conn_state`` and the ``history`` field).
Uppercase history letters are the client's (Zeek's originator), lowercase the server's.
The state machine is the core's (core/src/tcp/conn_state.rs): ``ConnectionState(flipped)``
fed ``segment(sender, is_client, flags, seq, length)`` and ``record(letter, is_client,
seq=None)``, read through ``states``, ``sizes``, ``history`` and ``conn_state(client)``.
The flow table keeps its own inside each flow's ``FlowAnalysis``.
"""

from __future__ import annotations

from enum import IntEnum

from pcapsmtp._core import ConnectionState

__all__ = ["ConnectionState", "EndpointState"]


class EndpointState(IntEnum):
    """The values of ``ConnectionState.states``."""

    INACTIVE = 0
    SYN_SENT = 1
    SYN_ACK_SENT = 2
    PARTIAL = 3
    """Sent packets, but its connection set-up was not seen (capture started mid-stream)."""
    ESTABLISHED = 4
    CLOSED = 5
    """Sent a FIN."""
    RESET = 6
    """Sent a RST."""

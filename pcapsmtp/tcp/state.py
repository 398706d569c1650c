"""Connection state and history in Zeek's conn.log vocabulary, so users of both read it at once.

See Zeek's ``base/protocols/conn/main.zeek`` (``conn_state`` and the ``history`` field).
Uppercase history letters are the client's (Zeek's originator), lowercase the server's.
"""

from __future__ import annotations

from enum import IntEnum

from pcapsmtp.tcp.model import TH_ACK, TH_FIN, TH_RST, TH_SYN, ConnState


class EndpointState(IntEnum):
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


ONCE = set("adiqADIQ")
LOGARITHMIC = set("gtwGTW")


class ConnectionState:
    """Both endpoints' states and the history string, fed segment by segment."""

    __slots__ = ("_counts", "_last_seq", "history", "sizes", "states")

    def __init__(self, flipped: bool) -> None:
        self.states = [EndpointState.INACTIVE, EndpointState.INACTIVE]
        self.sizes = [0, 0]
        self.history = "^" if flipped else ""
        self._counts: dict[str, int] = {}
        self._last_seq: dict[str, int] = {}

    def record(self, letter: str, is_client: bool, seq: int | None = None) -> None:
        letter = letter.upper() if is_client else letter
        count = self._counts.get(letter, 0) + 1
        self._counts[letter] = count
        if letter in ONCE:
            if count == 1:
                self.history += letter
        elif letter in LOGARITHMIC:
            if count in (1, 10, 100, 1000, 10000, 100000, 1000000):
                self.history += letter
        elif self._last_seq.get(letter) != seq:
            self._last_seq[letter] = seq
            self.history += letter

    def segment(self, sender: int, is_client: bool, flags: int, seq: int, length: int) -> None:
        self.sizes[sender] += length
        if not flags & (TH_SYN | TH_FIN | TH_RST):
            # Nearly every segment: data or a bare ACK, letters recorded once per side, so
            # after the first of each there is nothing to record.
            if length:
                letter = "D" if is_client else "d"
            else:
                letter = ("A" if is_client else "a") if flags & TH_ACK else ""
            if letter and letter not in self._counts:
                self.record(letter, is_client)
            self._transition(sender, 0, 0, 0, flags & TH_ACK)
            return
        syn, fin, rst, ack = flags & TH_SYN, flags & TH_FIN, flags & TH_RST, flags & TH_ACK
        if syn and (fin or rst):
            self.record("q", is_client)
        elif fin and rst:
            self.record("i", is_client)
        else:
            if syn:
                self.record("h" if ack else "s", is_client, seq)
            if fin:
                self.record("f", is_client, seq)
            if rst:
                self.record("r", is_client, seq)
            if length:
                self.record("d", is_client)
            elif ack and not (syn or fin or rst):
                self.record("a", is_client)
        self._transition(sender, syn, fin, rst, ack)

    def _transition(self, sender: int, syn: int, fin: int, rst: int, ack: int) -> None:
        me, peer = self.states[sender], self.states[1 - sender]
        if rst:
            self.states[sender] = EndpointState.RESET
        elif me == EndpointState.RESET:
            return
        elif fin:
            self.states[sender] = EndpointState.CLOSED
        elif syn:
            if me in (EndpointState.INACTIVE, EndpointState.PARTIAL):
                self.states[sender] = EndpointState.SYN_ACK_SENT if ack else EndpointState.SYN_SENT
        elif me in (EndpointState.SYN_SENT, EndpointState.SYN_ACK_SENT):
            if peer in (
                EndpointState.SYN_SENT,
                EndpointState.SYN_ACK_SENT,
                EndpointState.ESTABLISHED,
            ):
                self.states[sender] = EndpointState.ESTABLISHED
                if peer != EndpointState.ESTABLISHED:
                    self.states[1 - sender] = EndpointState.ESTABLISHED
        elif me == EndpointState.INACTIVE:
            self.states[sender] = EndpointState.PARTIAL

    def conn_state(self, client: int) -> ConnState:
        """Zeek's conn_state, the client taken as Zeek's originator."""
        os, rs = self.states[client], self.states[1 - client]
        inactive = (EndpointState.INACTIVE, EndpointState.PARTIAL)
        o_inactive, r_inactive = os in inactive, rs in inactive
        if rs == EndpointState.RESET:
            no_bytes = self.sizes[0] == 0 and self.sizes[1] == 0
            if os in (EndpointState.SYN_SENT, EndpointState.SYN_ACK_SENT) or (
                os == EndpointState.RESET and no_bytes
            ):
                return ConnState.REJ
            return ConnState.RSTRH if o_inactive else ConnState.RSTR
        if os == EndpointState.RESET:
            if r_inactive:
                return ConnState.RSTOS0 if self._syn_then_reset() else ConnState.OTH
            return ConnState.RSTO
        if rs == EndpointState.CLOSED and os == EndpointState.CLOSED:
            return ConnState.SF
        if os == EndpointState.CLOSED:
            return ConnState.SH if r_inactive else ConnState.S2
        if rs == EndpointState.CLOSED:
            return ConnState.SHR if o_inactive else ConnState.S3
        if os == EndpointState.SYN_SENT and rs == EndpointState.INACTIVE:
            return ConnState.S0
        if os == EndpointState.ESTABLISHED and rs == EndpointState.ESTABLISHED:
            return ConnState.S1
        return ConnState.OTH

    def _syn_then_reset(self) -> bool:
        """Zeek's /\\^?S[^HAFGIQ]*R.*/ on the history."""
        history = self.history.lstrip("^")
        if not history.startswith("S"):
            return False
        for letter in history[1:]:
            if letter == "R":
                return True
            if letter in "HAFGIQ":
                return False
        return False

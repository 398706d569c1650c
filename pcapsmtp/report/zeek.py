"""Zeek's conn_state and history letters (pcapsmtp.tcp.state) in words, for the legends next
to them: a mail admin need not know Zeek's conn.log to read ``SF ShADadFf``.

Said with our roles: Zeek's originator is the client (it sent the SYN), its responder the
server. Full tables in docs/zeek-conn.md.
"""

from __future__ import annotations

CONN_STATES = {
    "S0": "the client tried to connect, no answer seen",
    "S1": "connected, not closed within the capture",
    "SF": "connected and closed normally",
    "REJ": "the connection attempt was refused (RST)",
    "S2": "connected; the client began to close, no close seen from the server",
    "S3": "connected; the server began to close, no close seen from the client",
    "RSTO": "connected, then the client aborted it (RST)",
    "RSTR": "the server aborted it (RST)",
    "RSTOS0": "the client sent a SYN, then a RST; no SYN/ACK seen",
    "RSTRH": "the server sent a SYN/ACK, then a RST; the client's SYN not seen",
    "SH": "the client sent a SYN, then a FIN; no SYN/ACK seen (half open)",
    "SHR": "the server sent a SYN/ACK, then a FIN; the client's SYN not seen",
    "OTH": "no SYN seen: the capture began mid-connection, or nothing matched",
}
"""Zeek's conn_state values (base/protocols/conn/main.zeek), in our words."""

HISTORY_LETTERS = {
    "s": "SYN",
    "h": "SYN/ACK",
    "a": "pure ACK",
    "d": "data",
    "f": "FIN",
    "r": "RST",
    "c": "bad checksum",
    "g": "gap (bytes not captured)",
    "t": "retransmitted data",
    "w": "zero window",
    "i": "inconsistent flags (FIN with RST)",
    "q": "SYN with FIN or RST",
    "^": "direction flipped: the first packet seen was not the client's",
    "x": "analysis stopped early",
}
"""Zeek's history letters: upper case from the client, lower case from the server; g, t and w
are written again at the 10th, 100th, 1000th ... time."""

HISTORY_RULE = "upper case: from the client, lower case: from the server"


def state_words(state: str) -> str:
    return CONN_STATES.get(state, "unknown state")


def history_words(history: str) -> str:
    """The letters of one history, each once: ``S/s SYN, h SYN/ACK, A/a pure ACK, ...``."""
    seen: dict[str, list[str]] = {}
    for letter in history:
        key = letter.lower()
        if key in HISTORY_LETTERS and letter not in seen.setdefault(key, []):
            seen[key].append(letter)
    parts = [f"{'/'.join(sorted(letters))} {HISTORY_LETTERS[key]}" for key, letters in seen.items()]
    return ", ".join(parts)


def tcp_legend(state: str, history: str) -> str:
    """One sentence: ``TCP state SF (Zeek conn_state): connected and closed normally; history
    ShADadFf (Zeek's letters; upper case: ...): S/s SYN, ...``."""
    text = f"TCP state {state} (Zeek conn_state): {state_words(state)}"
    if history:
        text += f"; history {history} (Zeek's letters; {HISTORY_RULE}): {history_words(history)}"
    return text + "."

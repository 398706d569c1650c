"""The TCP frames of a lab capture as tshark 4.0 reads them (the oracle for capture-side facts)."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from dataclasses import dataclass
from functools import cache

import pytest

from tests.captures import LAB
from tests.tshark import answer, ask

CLIENT, SERVER = "10.77.1.2", "10.77.2.2"
FIELDS = ("frame.number", "frame.time_relative", "ip.src", "ip.id", "ip.ttl", "tcp.srcport",
          "tcp.dstport", "tcp.seq_raw", "tcp.ack_raw", "tcp.len", "tcp.flags.syn",
          "tcp.flags.fin", "tcp.flags.reset", "tcp.window_size_value", "tcp.payload")  # fmt: skip
ask(FIELDS, "tcp", ("-E", "occurrence=f"))


@dataclass(frozen=True)
class Frame:
    number: int
    time: float
    src: str
    ip_id: str
    ttl: int
    sport: int
    dport: int
    seq: int
    ack: int
    tcp_len: int
    syn: bool
    fin: bool
    rst: bool
    window: int
    payload: bytes

    @property
    def side(self) -> str:
        return "client" if self.src == CLIENT else "server"

    @property
    def client_port(self) -> int:
        return self.sport if self.side == "client" else self.dport

    @property
    def key(self) -> tuple:
        """The same packet in two captures of one interface, whatever its frame number."""
        return (self.src, self.ip_id, self.seq, self.ack, self.tcp_len, self.syn, self.fin,
                self.rst)  # fmt: skip


def _int(value: str) -> int:
    """A number field; -1 where tshark has none (a TCP header quoted in ICMP lacks the ACK)."""
    return int(value) if value else -1


def _flag(value: str) -> bool:
    return value in ("1", "True")


@cache
def tcp_frames(name: str) -> tuple[Frame, ...]:
    """The TCP frames of captures/``name``, in order."""
    if not shutil.which("tshark"):
        pytest.skip("tshark is not installed")
    found = answer(LAB / name, FIELDS, "tcp", ("-E", "occurrence=f"))
    assert found.status == 0, found.stderr
    frames = []
    for row in found.rows:
        v = (list(row) + [""] * len(FIELDS))[: len(FIELDS)]
        frames.append(
            Frame(int(v[0]), float(v[1]), v[2], v[3], _int(v[4]), _int(v[5]), _int(v[6]),
                  _int(v[7]), _int(v[8]), int(v[9] or 0), _flag(v[10]), _flag(v[11]),
                  _flag(v[12]), int(v[13] or 0), bytes.fromhex(v[14].replace(":", "")))
        )  # fmt: skip
    return tuple(frames)


def count(name: str, display_filter: str) -> int:
    """How many frames of captures/``name`` match ``display_filter``."""
    found = answer(LAB / name, ["frame.number"], display_filter)
    assert found.status == 0, found.stderr
    return len(found.rows)


def missing(reference: tuple[Frame, ...], capture: tuple[Frame, ...]) -> list[Frame]:
    """Frames of ``reference`` that ``capture`` lacks (multiset difference, in order)."""
    have = Counter(f.key for f in capture)
    out = []
    for frame in reference:
        if have[frame.key]:
            have[frame.key] -= 1
        else:
            out.append(frame)
    return out


def truth(name: str) -> dict | None:
    path = LAB / f"{name}.truth.json"
    if not path.exists():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def truth_or_skip(name: str) -> dict:
    found = truth(name)
    if found is None:
        pytest.skip(f"{name} not generated")
    return found

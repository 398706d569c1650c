"""Bounds-checked reading of the fields of a handshake message: a field that runs past the
message's end raises ``_Short``, which the scanner turns into an anomaly code."""

from __future__ import annotations


class _Short(Exception):
    """A handshake message ended before one of its fields."""


class _Reader:
    """Bounds-checked reading of TLS presentation-language fields (RFC 8446 3)."""

    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def left(self) -> int:
        return len(self.data) - self.pos

    def take(self, n: int) -> bytes:
        if n > self.left():
            raise _Short
        self.pos += n
        return self.data[self.pos - n : self.pos]

    def u8(self) -> int:
        return self.take(1)[0]

    def u16(self) -> int:
        return int.from_bytes(self.take(2), "big")

    def u24(self) -> int:
        return int.from_bytes(self.take(3), "big")

    def vector(self, size_bytes: int) -> bytes:
        return self.take(int.from_bytes(self.take(size_bytes), "big"))


def _extensions(r: _Reader) -> list[tuple[int, bytes]]:
    """Extensions block (optional in TLS <= 1.2 hellos)."""
    if r.left() < 2:
        return []
    block = _Reader(r.vector(2))
    found = []
    while block.left() >= 4:
        ext_type = block.u16()
        found.append((ext_type, block.vector(2)))
    return found


def _server_name(data: bytes) -> str | None:
    """server_name extension: the first host_name entry (RFC 6066 3)."""
    names = _Reader(_Reader(data).vector(2))
    while names.left() >= 3:
        name_type = names.u8()
        name = names.vector(2)
        if name_type == 0:
            return name.decode("ascii", "backslashreplace")
    return None

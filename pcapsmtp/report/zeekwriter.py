"""Zeek's log layout: the TSV its ASCII writer writes (``#`` header lines, ``-`` unset,
``(empty)``, escaped wire text) and the JSON lines it writes with ``LogAscii::use_json``.

Learnt from zeek/zeek's src/logging/writers/ascii, src/threading/formatters and
util::escape_utf8, none of it copied; what goes in the logs is pcapsmtp.report.zeeklogs.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime

from pcapsmtp.report.safe import json_text

SEPARATOR = "\t"
SET_SEPARATOR = ","
EMPTY = "(empty)"
UNSET = "-"


@dataclass(slots=True)
class ZeekLog:
    """One log: its path ('smtp', 'conn'), fields and rows (field name -> value; None is
    unset, a time or an interval is a float of seconds, as Zeek holds it: zeek_time)."""

    path: str
    fields: tuple[tuple[str, str], ...]
    rows: list[dict[str, object]] = field(default_factory=list)
    open_ns: int | None = None
    close_ns: int | None = None


def zeek_time(ns: int) -> float:
    """A capture time as Zeek holds it: libpcap's microseconds (a finer time truncated) as
    seconds in a double, so that a duration is the same difference of doubles as Zeek's."""
    seconds, micros = divmod(ns // 1000, 1_000_000)
    return seconds + micros / 1e6


_WIRE_BYTE = re.compile(r"\\x([89a-f][0-9a-f])")


def _encode(text: str) -> bytes:
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace")


def _to_bytes(text: str) -> bytes:
    """The bytes a model string stands for: the SMTP layer keeps a byte that is not UTF-8 as
    the text ``\\xNN`` (backslashreplace, NN from 80 to ff); it is turned back into that
    byte here so that it is escaped the way Zeek escapes the byte."""
    out = bytearray()
    position = 0
    for match in _WIRE_BYTE.finditer(text):
        out += _encode(text[position : match.start()])
        out.append(int(match.group(1), 16))
        position = match.end()
    out += _encode(text[position:])
    return bytes(out)


_BIDI_AND_SEPARATORS = re.compile("[\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
"""What Zeek writes raw but a terminal or an editor acts on (bidi marks, overrides and
isolates, line and paragraph separators): the TSV escapes them like controls, the JSON
writes them as \\uXXXX (pcapsmtp.report.safe.json_text)."""


def _char_ok(char: str, controls_ok: bool) -> bool:
    """A character Zeek's escape_utf8 writes as it is."""
    point = ord(char)
    if 32 <= point < 127:
        return True
    if point < 32 or point == 127:
        return controls_ok and char in "\b\f\n\r\t"
    return not (0x80 <= point <= 0x9F or 0xE000 <= point <= 0xF8FF or 0xFFF0 <= point <= 0xFFFF)


def _escape_utf8(chunk: bytes, controls_ok: bool, inert: bool = False) -> str:
    """Zeek's escape_utf8: valid UTF-8 of printable characters is kept; otherwise every byte
    that is not printable ASCII (nor, where ``controls_ok``, one of \\b \\f \\n \\r \\t, which
    the JSON quoting escapes) becomes \\xNN."""
    try:
        text = chunk.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if (
        text is not None
        and all(_char_ok(char, controls_ok) for char in text)
        and not (inert and _BIDI_AND_SEPARATORS.search(text))
    ):
        return text
    kept = b"\b\f\n\r\t" if controls_ok else b""
    return "".join(chr(b) if 32 <= b < 127 or b in kept else f"\\x{b:02x}" for b in chunk)


def tsv_text(text: str, in_set: bool = False) -> str:
    """A string field (or set element) as Zeek's ASCII writer writes it: empty is
    ``(empty)``, a value equal to ``-`` or ``(empty)`` has its first character escaped, a
    backslash is doubled, the tab (and a set's comma) is ``\\x09`` (``\\x2c``), and a
    control character or a byte that is not UTF-8 is ``\\xNN``. Beyond Zeek: a bidi mark or
    a line separator is escaped like a control character."""
    if text == "":
        return EMPTY
    data = _to_bytes(text)
    if data in (UNSET.encode(), EMPTY.encode()):
        return f"\\x{data[0]:02x}" + data[1:].decode()
    special = {ord("\\"): "\\\\", ord(SEPARATOR): "\\x09"}
    if in_set:
        special[ord(SET_SEPARATOR)] = "\\x2c"
    out, chunk = [], bytearray()
    for byte in data:
        if byte in special:
            out.append(_escape_utf8(bytes(chunk), controls_ok=False, inert=True))
            out.append(special[byte])
            chunk.clear()
        else:
            chunk.append(byte)
    out.append(_escape_utf8(bytes(chunk), controls_ok=False, inert=True))
    return "".join(out)


def tsv_value(value: object, kind: str) -> str:
    if value is None:
        return UNSET
    if kind in ("time", "interval"):
        return f"{value:.6f}"
    if kind == "bool":
        return "T" if value else "F"
    if kind.startswith(("set[", "vector[")):
        items = list(value)  # type: ignore[call-overload]
        if not items:
            return EMPTY
        return SET_SEPARATOR.join(tsv_text(str(item), in_set=True) for item in items)
    if kind == "string":
        return tsv_text(str(value))
    return str(value)


def _stamp(ns: int | None) -> str:
    moment = datetime.fromtimestamp((ns or 0) / 1e9, UTC)
    return moment.strftime("%Y-%m-%d-%H-%M-%S")


def tsv(log: ZeekLog) -> str:
    """One log in Zeek's ASCII layout. ``#open`` and ``#close`` are the capture's first and
    last packet times (UTC), not the clock, so the same capture gives the same file."""
    names = [name for name, _kind in log.fields]
    kinds = [kind for _name, kind in log.fields]
    lines = [
        "#separator \\x09",
        f"#set_separator{SEPARATOR}{SET_SEPARATOR}",
        f"#empty_field{SEPARATOR}{EMPTY}",
        f"#unset_field{SEPARATOR}{UNSET}",
        f"#path{SEPARATOR}{log.path}",
        f"#open{SEPARATOR}{_stamp(log.open_ns)}",
        SEPARATOR.join(["#fields", *names]),
        SEPARATOR.join(["#types", *kinds]),
    ]
    for row in log.rows:
        lines.append(SEPARATOR.join(tsv_value(row[n], k) for n, k in log.fields))
    lines.append(f"#close{SEPARATOR}{_stamp(log.close_ns)}")
    return "\n".join(lines) + "\n"


def _zeek_json_string(text: str) -> str:
    """A string as Zeek's JSON writer escapes it before JSON quoting (HEX policy)."""
    return _escape_utf8(_to_bytes(text), controls_ok=True)


def json_value(value: object, kind: str) -> object:
    if kind.startswith(("set[", "vector[")):
        return [_zeek_json_string(str(item)) for item in value]  # type: ignore[union-attr]
    if kind == "string":
        return _zeek_json_string(str(value))
    return value


def json_lines(log: ZeekLog, with_path: bool = False) -> str:
    """One JSON object a row, Zeek's field names as keys, unset fields left out (Zeek's
    default, LogAscii::json_include_unset_fields=F), times as epoch seconds."""
    out = []
    for row in log.rows:
        document: dict[str, object] = {"_path": log.path} if with_path else {}
        for name, kind in log.fields:
            if row[name] is not None:
                document[name] = json_value(row[name], kind)
        out.append(json_text(json.dumps(document, ensure_ascii=False, separators=(",", ":"))))
        out.append("\n")
    return "".join(out)

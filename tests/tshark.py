"""tshark as the reference oracle: fields parsed into rows, one tshark pass per file for the
questions many modules put to every capture.

tshark spends ~0.4 s of CPU starting up, and the oracle modules ask it about every capture,
each module its own fields and display filter. A module declares its question at import
time (:func:`ask`); all declared questions with the same dissection options are then
answered for a file by one pass: ``-T fields`` with the union of their fields (every
occurrence, joined by the byte 0xff, which UTF-8 text never holds) on every frame, and one
Lua tap per declared display filter giving the frames it shows (tests/tshark_taps.lua: a
tap's filter is compiled and applied by the same engine as ``-Y``, on the same dissection;
``-Y`` chooses the frames printed, it changes nothing in them). Each caller gets exactly
the rows ``tshark -Y filter -T fields -E occurrence=... -e ...`` prints. A question not
declared, or a pass whose output could be read two ways (a value with a tab or a line
break, bytes that are not UTF-8), is put to tshark on its own.

Passes are grouped by the options that change the dissection (``-d``, ``-o``,
``--enable-protocol``); a ``-o`` setting a preference to the value tshark already has (as
``tshark -G currentprefs`` says) changes nothing and does not split a group, nor does
enabling a post-dissector that only adds fields of its own (:data:`POSTDISSECTORS`): the
group's pass enables it when one of its questions asks for it.

Answers depend only on the file's bytes, the tshark version and the command line: they are
shared between pytest-xdist workers of one run (a directory of the run's temporary folder,
one lock per answer) and kept in pytest's cache under a digest of all three (``pytest
--cache-clear`` or ``-p no:cacheprovider`` to do without); our side is always computed
afresh."""

from __future__ import annotations

import fcntl
import functools
import hashlib
import itertools
import json
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.captures import LAB, PUBLIC, all_captures, capture_id

TSHARK = shutil.which("tshark")
TAPS = Path(__file__).with_name("tshark_taps.lua")
__all__ = [
    "LAB",
    "PUBLIC",
    "TSHARK",
    "all_captures",
    "answer",
    "ask",
    "capture_id",
    "fields",
    "needs_tshark",
    "occurrences",
]

needs_tshark = pytest.mark.skipif(TSHARK is None, reason="tshark is not installed")
CACHE = None
"""pytest's cache (``config.cache``), set by tests/conftest.py; None: always run tshark."""
SHARED: Path | None = None
"""A folder the pytest-xdist workers of this run share (tests/conftest.py); None: not shared."""
AGGREGATOR = b"\xff"
LINE_BREAKS = re.compile("[\r\x0b\x0c\x1c-\x1e\x85\u2028\u2029]")
"""What ``str.splitlines`` breaks a line at besides "\\n" (the rows of a question put on
its own are cut with it)."""

POSTDISSECTORS = frozenset({"communityid"})
"""Protocols that tshark runs after the others on each frame and that add a field of their
own, reading and changing no other (Wireshark's epan/dissectors/packet-communityid.c: "A
post-dissector for Community ID flow hashes"): ``--enable-protocol`` for one of them does
not split a group of passes."""
PORT_DECODE = re.compile(r"tcp\.port==(\d+),[A-Za-z0-9_.-]+")
"""``-d tcp.port==N,protocol``: it changes the dissection of TCP segments to or from port N
only, so for a file with none it changes nothing, and the pass without it answers."""

_ASKED: dict[tuple[str, ...], tuple[dict[str, None], dict[str, None]]] = {}
"""Declared questions: dissection options -> (fields, display filters), in declaration order."""


@dataclass(frozen=True)
class Answer:
    rows: tuple[tuple[str, ...], ...]
    status: int
    """tshark's exit status (2 for a damaged file: it shows the frames before the damage)."""
    stderr: str


def ask(names: list[str] | tuple[str, ...], display_filter: str | None = None,
        options: tuple[str, ...] = ()) -> None:  # fmt: skip
    """Declare, at import time, a question :func:`fields` or :func:`answer` will be asked
    about many files, so that one tshark pass per file answers it with the others."""
    dissection, _ = _split(options)
    wanted, filters = _ASKED.setdefault(dissection, ({}, {}))
    wanted.update(dict.fromkeys(names))
    if display_filter:
        filters[display_filter] = None
    rest, ports = _port_decodes(dissection)
    if ports:  # also asked of the pass without them, for the files with no segment there
        ask([*names, "tcp.srcport", "tcp.dstport"], display_filter, rest)


def _port_decodes(dissection: tuple[str, ...]) -> tuple[tuple[str, ...], frozenset[str]]:
    """(the dissection options but the ``-d tcp.port==N,...`` ones, those ports N)."""
    rest: list[str] = []
    ports: set[str] = set()
    items = iter(dissection)
    for option in items:
        value = next(items, "") if option == "-d" else None
        match = PORT_DECODE.fullmatch(value or "")
        if match:
            ports.add(match.group(1))
        else:
            rest += [option] if value is None else [option, value]
    return tuple(rest), frozenset(ports)


def fields(
    path: Path, names: list[str], display_filter: str | None = None, options: tuple[str, ...] = ()
) -> list[list[str]]:
    """tshark -T fields rows (first occurrence unless ``options`` say otherwise), empty
    fields as ''; tshark's complaints about damage are ignored. Every caller gets rows of
    its own."""
    found = answer(path, names, display_filter, ("-E", "occurrence=f", *options))
    return [list(row) for row in found.rows]


def answer(
    path: Path | str,
    names: list[str] | tuple[str, ...],
    display_filter: str | None = None,
    options: tuple[str, ...] = (),
) -> Answer:
    """The rows, exit status and stderr of ``tshark -n -r path -T fields [options] [-Y
    display_filter] -e name...``; tshark's defaults are its own (every occurrence, joined
    by ',')."""
    path = str(path)
    dissection, output = _split(options)
    served = _from_pass(path, tuple(names), display_filter, dissection, output)
    if served is not None:
        return served
    args = ["-T", "fields", *options]
    if display_filter:
        args += ["-Y", display_filter]
    for name in names:
        args += ["-e", name]
    done = _run(path, tuple(args))
    stdout = done["stdout"].decode(errors="replace")
    rows = tuple(tuple(line.split("\t")) for line in stdout.splitlines() if line)
    return Answer(rows, done["status"], done["stderr"])


def _split(options: tuple[str, ...]) -> tuple[tuple[str, ...], dict[str, str]]:
    """(the options that change the dissection, the -E output settings)."""
    dissection: list[str] = []
    output: dict[str, str] = {}
    items = iter(options)
    for option in items:
        if option == "-E":
            key, _, value = next(items).partition("=")
            output[key] = value
        else:
            dissection.append(option)
    return tuple(dissection), output


def _group(dissection: tuple[str, ...]) -> tuple[str, ...]:
    """The dissection options without the ``-o`` settings that are already in force."""
    kept: list[str] = []
    items = iter(dissection)
    for option in items:
        if option == "--enable-protocol":
            protocol = next(items)
            if protocol not in POSTDISSECTORS:
                kept += [option, protocol]
        elif option == "-o":
            setting = next(items)
            name, _, value = setting.partition(":")
            current = _current_preferences().get(name)
            same = current == value or (
                {current, value.upper()} <= {"TRUE", "FALSE"} and current == value.upper()
            )
            if not same:
                kept += [option, setting]
        else:
            kept.append(option)
    return tuple(kept)


@functools.cache
def _current_preferences() -> dict[str, str]:
    """Every preference's value as tshark runs here (defaults, as ``#name: value``, and
    whatever a personal profile changed)."""
    out = subprocess.run(
        [TSHARK, "-G", "currentprefs"], capture_output=True, text=True, errors="replace"
    ).stdout
    found = {}
    for line in out.splitlines():
        match = re.match(r"#?([A-Za-z0-9_.\-]+): (.*)$", line)
        if match:
            found[match.group(1)] = match.group(2).strip()
    return found


def _from_pass(
    path: str,
    names: tuple[str, ...],
    display_filter: str | None,
    dissection: tuple[str, ...],
    output: dict[str, str],
) -> Answer | None:
    """The answer read from the file's pass, or None when the pass cannot give it."""
    occurrence = output.get("occurrence", "a")
    aggregator = {",": ",", "/s": " "}.get(output.get("aggregator", ","), output.get("aggregator"))
    if (
        set(output) - {"occurrence", "aggregator", "separator"}
        or output.get("separator", "/t") not in ("/t", "\t")
        or occurrence not in ("f", "l", "a")
        or not _ASKED
    ):
        return None
    served = _served(path, names, display_filter, dissection)
    if served is None:
        return None
    table, status, stderr = served
    rows = []
    for _number, cells in table:
        row = []
        for parts in cells:
            if not parts:
                row.append("")
            elif occurrence == "f":
                row.append(parts[0])
            elif occurrence == "l":
                row.append(parts[-1])
            else:
                row.append(aggregator.join(parts))
        if row != [""]:  # an empty line, which a question put on its own skips
            rows.append(tuple(row))
    return Answer(tuple(rows), status, stderr)


def occurrences(
    path: Path | str,
    names: list[str] | tuple[str, ...],
    display_filter: str | None = None,
    options: tuple[str, ...] = (),
) -> list[tuple[int, list[list[str]]]] | None:
    """(frame number, every occurrence of each field, each value whole) of the frames
    ``tshark -Y display_filter`` shows, from the file's pass; None when the question was
    not declared (:func:`ask`) or the pass cannot answer it."""
    dissection, output = _split(options)
    if output or not _ASKED:
        return None
    served = _served(str(path), tuple(names), display_filter, dissection)
    return None if served is None else [(n, [list(p) for p in cells]) for n, cells in served[0]]


def _served(
    path: str, names: tuple[str, ...], display_filter: str | None, dissection: tuple[str, ...]
):
    """(the shown frames as (number, [occurrences of each of ``names``]), status, stderr)
    from the file's pass, or None when the pass cannot give them."""
    rest, ports = _port_decodes(dissection)
    if ports:
        every = _served(path, ("tcp.srcport", "tcp.dstport"), None, rest)
        if every is not None:
            used = {port for _n, cells in every[0] for found in cells for port in found}
            if not used & ports:
                return _served(path, names, display_filter, rest)
    group = _group(dissection)
    union, filters, enabled = _union(group)
    if not set(names) <= set(union) or (display_filter and display_filter not in filters):
        return None
    if not set(_enabled(dissection)) <= set(enabled):
        return None
    switched = tuple(o for protocol in enabled for o in ("--enable-protocol", protocol))
    passed = _pass(path, group + switched, union, filters)
    if passed is None:
        return None
    table, shown, status, stderr = passed
    columns = [union.index(name) for name in names]
    frames = shown.get(display_filter) if display_filter else None
    if display_filter and frames is None:
        return None
    kept = [
        (number, [cells[column] for column in columns])
        for number, cells in table
        if frames is None or number in frames
    ]
    return kept, status, stderr


def _enabled(dissection: tuple[str, ...]) -> tuple[str, ...]:
    """The post-dissectors ``dissection`` enables (``--enable-protocol``)."""
    return tuple(
        value
        for option, value in itertools.pairwise(dissection)
        if option == "--enable-protocol" and value in POSTDISSECTORS
    )


@functools.cache
def _union(group: tuple[str, ...]) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """The fields (frame.number first), the filters and the post-dissectors to enable of
    the questions in ``group``."""
    union: dict[str, None] = {"frame.number": None}
    filters: dict[str, None] = {}
    enabled: dict[str, None] = {}
    for dissection, (wanted, asked) in _ASKED.items():
        if _group(dissection) == group:
            union.update(wanted)
            filters.update(asked)
            enabled.update(dict.fromkeys(_enabled(dissection)))
    return tuple(union), tuple(filters), tuple(enabled)


def _pass(path: str, group: tuple[str, ...], union: tuple[str, ...], filters: tuple[str, ...]):
    """(frames as (number, [occurrences per field]), {filter: frames shown}, status,
    stderr) of one pass over ``path``, or None when its output could be read two ways.
    Shared by the callers: not to be changed."""
    stat = Path(path).stat()
    return _read_pass(path, stat.st_size, stat.st_mtime_ns, group, union, filters)


@functools.lru_cache(maxsize=16)
def _read_pass(
    path: str,
    _size: int,
    _mtime_ns: int,
    group: tuple[str, ...],
    union: tuple[str, ...],
    filters: tuple[str, ...],
):
    """:func:`_pass`, read once for the several questions a test asks of the same file."""
    args = ["-T", "fields", *group, "-E", "separator=\t", "-E", "occurrence=a"]
    args += ["-E", "aggregator=\udcff"]  # the byte 0xff on the command line
    for name in union:
        args += ["-e", name]
    done = _run(path, tuple(args), filters)
    try:
        text = done["stdout"].replace(AGGREGATOR, b"").decode()
    except UnicodeDecodeError:
        return None
    if LINE_BREAKS.search(text):
        return None
    table = []
    for line in done["stdout"].split(b"\n"):
        if not line:
            continue
        cells = line.split(b"\t")
        if len(cells) != len(union) or not cells[0].isdigit():
            return None
        table.append(
            (
                int(cells[0]),
                [[p.decode() for p in c.split(AGGREGATOR)] if c else [] for c in cells],
            )
        )
    shown = {}
    for number, frames in done["taps"].items():
        if not frames.startswith("ERROR"):
            shown[filters[int(number) - 1]] = {int(f) for f in frames.split(",") if f}
    return table, shown, done["status"], done["stderr"]


def _run(path: str, args: tuple[str, ...], filters: tuple[str, ...] = ()) -> dict:
    """``tshark -n -r path args`` (with a tap per filter): its exit status, stdout (bytes),
    stderr and tap answers, from a cache when known."""
    stat = Path(path).stat()
    return _run_once(path, stat.st_size, stat.st_mtime_ns, args, filters)


@functools.cache
def _run_once(
    path: str, _size: int, _mtime_ns: int, args: tuple[str, ...], filters: tuple[str, ...]
) -> dict:
    digest = hashlib.sha256(Path(path).read_bytes())
    digest.update(json.dumps([_version(), args, filters]).encode(errors="surrogateescape"))
    key = digest.hexdigest()
    if CACHE is not None:
        known = CACHE.get(f"pcapsmtp/tshark-run/{key}", None)
        if known is not None:
            return _decoded(known)
    if SHARED is not None:
        SHARED.mkdir(parents=True, exist_ok=True)
        with open(SHARED / f"{key}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            kept = SHARED / f"{key}.json"
            if kept.exists():
                stored = json.loads(kept.read_text())
            else:
                stored = _encoded(_start(path, args, filters))
                kept.write_text(json.dumps(stored))
    else:
        stored = _encoded(_start(path, args, filters))
    if CACHE is not None:
        CACHE.set(f"pcapsmtp/tshark-run/{key}", stored)
    return _decoded(stored)


def _encoded(done: dict) -> dict:
    return done | {"stdout": done["stdout"].decode("latin-1")}


def _decoded(stored: dict) -> dict:
    return stored | {"stdout": stored["stdout"].encode("latin-1")}


def _start(path: str, args: tuple[str, ...], filters: tuple[str, ...]) -> dict:
    command = [TSHARK, "-n", "-r", path, *args]
    env = None
    with tempfile.TemporaryDirectory(prefix="tshark-taps-") as folder:
        if filters:
            listing, out = Path(folder) / "filters.txt", Path(folder) / "taps.txt"
            listing.write_text("".join(f"{f}\n" for f in filters), encoding="utf-8")
            out.touch()
            command += ["-X", f"lua_script:{TAPS}"]
            env = os.environ | {"PCAPSMTP_FILTERS": str(listing), "PCAPSMTP_TAPS_OUT": str(out)}
        done = subprocess.run(command, capture_output=True, timeout=600, env=env)
        taps = {}
        if filters:
            for line in out.read_text(encoding="utf-8", errors="replace").splitlines():
                number, _, frames = line.partition("\t")
                taps[number] = frames
    return {
        "status": done.returncode,
        "stdout": done.stdout,
        "stderr": done.stderr.decode(errors="replace"),
        "taps": taps,
    }


@functools.cache
def _version() -> str:
    return subprocess.run([TSHARK, "-v"], capture_output=True, text=True, check=True).stdout


def shown_by_tshark(capture: Path, filters: list[str], tmp_path: Path) -> list[set[int] | str]:
    """For each filter, the frames tshark shows, or tshark's complaint (one tshark pass for
    all of them: a tap per filter, tests/tshark_taps.lua)."""
    return tap_filters(capture, filters, tmp_path)[0]


def tap_filters(
    capture: Path, filters: list[str], tmp_path: Path, display_filter: str | None = None
) -> tuple[list[set[int] | str], subprocess.CompletedProcess]:
    """shown_by_tshark's answers, and tshark's run (its exit status, its stderr); with
    ``display_filter``, the same run also prints the frames ``-Y display_filter`` shows
    (``-T fields -e frame.number``, on its stdout)."""
    listing, out = tmp_path / "filters.txt", tmp_path / "taps.txt"
    listing.write_text("".join(f"{f}\n" for f in filters), encoding="utf-8")
    out.write_text("")
    command = [TSHARK, "-n", "-q", "-r", str(capture), "-X", f"lua_script:{TAPS}"]
    if display_filter is not None:
        command = [TSHARK, "-n", "-r", str(capture), "-X", f"lua_script:{TAPS}"]
        command += ["-Y", display_filter, "-T", "fields", "-e", "frame.number"]
    result = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=600,
        env=os.environ | {"PCAPSMTP_FILTERS": str(listing), "PCAPSMTP_TAPS_OUT": str(out)},
    )
    answers: dict[int, set[int] | str] = {}
    for line in out.read_text(encoding="utf-8", errors="replace").splitlines():
        number, _, frames = line.partition("\t")
        if frames.startswith("ERROR"):
            answers[int(number)] = frames
        else:
            answers[int(number)] = {int(f) for f in frames.split(",") if f}
    shown = [
        answers.get(n, f"no answer: {result.stderr.strip()}") for n in range(1, len(filters) + 1)
    ]
    return shown, result

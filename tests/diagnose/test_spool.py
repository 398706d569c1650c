"""The session spool (pcapsmtp.analysis.spool): finished sessions in a temporary file, read
back in first-frame order, the same sessions and findings as when they are all held."""

from __future__ import annotations

import dataclasses
import functools
import gc
import io
import itertools
import os
import pickle
import tempfile

import pytest

from pcapsmtp.analysis import spool as spool_module
from pcapsmtp.analysis.model import Options
from pcapsmtp.analysis.one_pass import analyze_capture
from pcapsmtp.analysis.run import _numbered
from pcapsmtp.analysis.spool import SessionSpool
from pcapsmtp.capture import CaptureInfo
from pcapsmtp.diagnose import CaptureContext, diagnose
from pcapsmtp.diagnose.digest import Digest
from pcapsmtp.tcp import limits
from tests.captures import LAB

MANY = LAB / "retry-storm.pcap"
"""The lab's 240 connections to a server that answers 421: sessions that end out of the
order they started in, and a capture-wide finding."""
CAPTURES = [MANY, LAB / "greylisting.pcap"]

pytestmark = pytest.mark.skipif(not MANY.exists(), reason="no lab captures")


def _same(a, b, seen=None) -> bool:
    """The same sessions, field by field (a session holds cycles, so not by ``==``)."""
    seen = set() if seen is None else seen
    if (id(a), id(b)) in seen:
        return True
    seen.add((id(a), id(b)))
    if type(a) is not type(b):
        return False
    if dataclasses.is_dataclass(a):
        return all(
            _same(getattr(a, f.name), getattr(b, f.name), seen) for f in dataclasses.fields(a)
        )
    if isinstance(a, list | tuple | SessionSpool):
        return len(a) == len(b) and all(_same(x, y, seen) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k], seen) for k in a)
    return a == b


@functools.cache
def _both(path):
    held = analyze_capture(str(path), Options())
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(spool_module, "KEEP_IN_MEMORY", 0)
        spooled = analyze_capture(str(path), Options(), spool=True)
    assert isinstance(spooled.sessions, SessionSpool) and spooled.sessions._file is not None
    return _numbered(held.sessions), _numbered(spooled.sessions)


@pytest.mark.parametrize("path", [p for p in CAPTURES if p.exists()], ids=lambda p: p.name)
def test_spooled_sessions_come_back_equal_and_in_first_frame_order(path):
    held, spooled = _both(path)
    back = list(spooled)
    assert len(back) == len(held) > 0
    assert _same(back, list(held)) and not _same(back[:1], list(held)[1:2])
    frames = [s.flow.first_frame for s in back]
    assert frames == sorted(frames)
    assert [s.id for s in back] == list(range(1, len(back) + 1))
    assert _same([spooled[-1], *spooled[1:3]], [held[-1], *held[1:3]])
    with pytest.raises(IndexError):
        spooled[len(held)]


def test_sessions_end_out_of_order_yet_come_back_sorted(tmp_path):
    """Appended in the order they ended (the reverse here), read back by first frame."""
    held, _spooled = _both(MANY)
    spool = SessionSpool(reversed(held), keep=0)
    assert [s.flow.first_frame for s in spool] != [s.flow.first_frame for s in held]
    spool.sort_by_first_frame()
    spool.number()
    assert _same(list(spool), list(held))
    assert [d.id for d in spool.digests] == [s.id for s in held]


def test_the_first_sessions_stay_in_memory_the_rest_are_spooled():
    held, _spooled = _both(MANY)
    assert SessionSpool(held)._file is None  # fewer than KEEP_IN_MEMORY: no file at all
    spool = SessionSpool(reversed(held), keep=5)
    spool.sort_by_first_frame()
    spool.number()
    assert len(spool._held) == 5 and spool._file is not None
    assert _same(list(spool), list(held))


@pytest.mark.parametrize("path", [p for p in CAPTURES if p.exists()], ids=lambda p: p.name)
def test_findings_over_the_spool_equal_those_over_the_list(path):
    held, spooled = _both(path)
    info = CaptureInfo(file=str(path))
    found = diagnose(held, CaptureContext(info))
    assert found
    assert diagnose(spooled, CaptureContext(info)) == found


def test_the_spool_file_has_no_name_and_goes_with_the_spool(tmp_path, monkeypatch):
    """Unlinked when made: nothing in the temporary folder to delete, on an error, Ctrl-C
    or a kill either; its space is freed when it is closed or the process ends."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    held, _spooled = _both(MANY)
    spool = SessionSpool(held, keep=0)
    assert os.listdir(tmp_path) == []
    descriptor = spool._file.fileno()
    assert os.fstat(descriptor).st_nlink == 0 and os.fstat(descriptor).st_size > 0
    spool.close()
    with pytest.raises(OSError):
        os.fstat(descriptor)


def test_a_pickled_spool_travels_as_the_list_of_its_sessions():
    """A worker process's result (pcapsmtp.analysis.rotated) carries its sessions, not a
    file only that process can read."""
    held, spooled = _both(MANY)
    travelled = pickle.loads(pickle.dumps(spooled))
    assert type(travelled) is list and _same(travelled, list(held))


def test_digests_are_small():
    """What is held per finished session instead of the session."""
    import tracemalloc

    held, _spooled = _both(MANY)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        spool = SessionSpool(held, keep=0)
        per_session = (tracemalloc.get_traced_memory()[0] - before) / len(held)
    finally:
        tracemalloc.stop()
    spool.close()
    assert per_session < 1200, f"{per_session:,.0f} bytes a session"


def test_a_session_is_written_as_its_fields_and_comes_back_with_its_cycles():
    """The reducers (``REDUCERS``) write each dataclass as its class and its fields: fewer
    bytes than pickle's dict of field names, and a reply and the command it answers still
    point at each other when read back."""
    held, _spooled = _both(CAPTURES[1])
    session = next(s for s in held if s.commands and s.commands[0].reply is not None)
    file = io.BytesIO()
    spool_module.dump_session(session, file)
    assert file.tell() < len(pickle.dumps(session, protocol=pickle.HIGHEST_PROTOCOL)) * 0.8
    file.seek(0)
    back = pickle.load(file)
    assert _same(back, session)
    command = back.commands[0]
    assert command.reply.command is command
    for cls in (type(session), type(command), type(command.reply), type(session.dialogue[0])):
        assert cls in spool_module.REDUCERS


def test_a_cycle_the_reducers_do_not_know_falls_back_to_the_plain_pickle(monkeypatch):
    held, _spooled = _both(CAPTURES[1])
    session = next(s for s in held if s.commands and s.commands[0].reply is not None)
    monkeypatch.setattr(spool_module, "BACK_REFERENCES", {})
    monkeypatch.setattr(spool_module, "REDUCERS", spool_module._reducers(spool_module.events))
    file = io.BytesIO()
    file.write(b"before")
    spool_module.dump_session(session, file)
    file.seek(len(b"before"))
    assert _same(pickle.load(file), session)
    assert file.read() == b""


def test_sessions_ending_while_the_capture_is_read_are_spooled_past_a_few(monkeypatch):
    """While the capture is read (connections still open) at most KEEP_WHILE_READING
    sessions are held, and no more once the spool has begun; when every session ends with
    the capture, up to KEEP_IN_MEMORY. The sessions come back the same either way. (Closed
    flows end at once here, so most sessions end while the capture is read.)"""
    monkeypatch.setattr(limits, "LINGER_NS", 0)
    monkeypatch.setattr(limits, "LINGER_FRAMES", 0)
    monkeypatch.setattr(limits, "SWEEP_EVERY", 1)
    monkeypatch.setattr(spool_module, "KEEP_WHILE_READING", 1000)
    held = analyze_capture(str(MANY), Options(), spool=True).sessions
    assert held._file is None and len(held._held) == len(held)
    monkeypatch.setattr(spool_module, "KEEP_WHILE_READING", 3)
    spool = analyze_capture(str(MANY), Options(), spool=True).sessions
    assert isinstance(spool, SessionSpool) and not spool.reading
    assert spool._file is not None and len(spool._held) == 3 < len(spool)
    assert _same(list(_numbered(spool)), list(_numbered(held)))


def test_spilled_digest_bytes_read_back_as_a_bytearray_would(monkeypatch):
    """``SpilledBytes`` past its limit: in a file, whole records appended, every slice
    (across its read blocks, in the file or in the tail not written yet) the same bytes."""
    monkeypatch.setattr(spool_module, "SPILL_EVERY", 100)
    monkeypatch.setattr(spool_module, "READ_BLOCK", 64)
    spilled, plain, ends = spool_module.SpilledBytes(limit=300), bytearray(), [0]
    for n in range(200):
        record = bytes([n % 251]) * (1 + n * 7 % 90)
        spilled += record
        plain += record
        ends.append(len(plain))
        assert len(spilled) == len(plain)
    assert spilled._file is not None and 0 < len(spilled._tail) < len(plain) - 300
    slices = list(itertools.pairwise(ends))
    for start, end in [*slices, *reversed(slices), *slices[::7], (0, len(plain))]:
        assert bytes(spilled[start:end]) == plain[start:end]
    spilled.close()


def test_digests_past_the_limit_go_to_a_file_and_come_back_the_same(monkeypatch):
    """A spool whose digests outgrow DIGESTS_IN_MEMORY: the same digests, in the same order,
    numbered, and the same findings, as a spool that holds them all."""
    held, spooled = _both(MANY)
    monkeypatch.setattr(spool_module, "DIGESTS_IN_MEMORY", 500)
    monkeypatch.setattr(spool_module, "SPILL_EVERY", 300)
    monkeypatch.setattr(spool_module, "READ_BLOCK", 256)
    spill = SessionSpool(reversed(held), keep=0)
    spill.sort_by_first_frame()
    spill.number()
    assert spill._digest_bytes._file is not None
    assert len(spill._digest_bytes._tail) < 300 < len(spill._digest_bytes)
    assert _fields(spill.digests) == _fields(spooled.digests) != []
    backwards = range(len(held) - 1, -1, -3)
    assert _fields(spill.digests[n] for n in backwards) == _fields(
        spooled.digests[n] for n in backwards
    )
    info = CaptureInfo(file=str(MANY))
    assert diagnose(spill, CaptureContext(info)) == diagnose(spooled, CaptureContext(info))


def _fields(digests) -> list:
    return [tuple(getattr(d, name) for name in Digest.__slots__) for d in digests]


def test_a_session_the_pass_hands_over_is_let_go_of_once_written():
    """A spool made with ``let_go`` (the pass's) breaks the cycles of each session it
    writes, so the session is freed by reference counting when dropped, with nothing left
    for the cyclic collector; it comes back the same, cycles included."""
    held, _spooled = _both(CAPTURES[1])
    gc.disable()
    try:
        for let_go, left in ((True, 0), (False, 1)):
            sessions = list(analyze_capture(str(CAPTURES[1]), Options()).sessions)
            gc.collect()
            spool = SessionSpool(sessions, keep=0, let_go=let_go)
            sessions.clear()
            assert (gc.collect() > 0) == bool(left)
            back = list(_numbered(spool))
            assert _same(back, list(held))
            assert any(
                c.reply is not None and c.reply.command is c for s in back for c in s.commands
            )
            spool.close()
    finally:
        gc.enable()

"""The packed digests a spool keeps (pcapsmtp.diagnose.digest ``DigestTable``): read back
as the digests made of the sessions themselves, field by field and of the same types,
whether their repeated values are shared or (the shared table full) written in each record."""

from __future__ import annotations

import gc
import pickle
import tracemalloc

import pytest

from pcapsmtp.analysis.model import Options
from pcapsmtp.analysis.one_pass import analyze_capture
from pcapsmtp.diagnose import digest as digest_module
from pcapsmtp.diagnose.digest import Digest, DigestTable, make_digest
from tests.captures import LAB, PUBLIC

CAPTURES = sorted(LAB.glob("*.pcap")) + (sorted(PUBLIC.glob("*.pcap"))[:20])

pytestmark = pytest.mark.skipif(not CAPTURES, reason="no lab captures")


def _fields(digest: Digest) -> list:
    return [
        (name, type(value), value) for name in Digest.__slots__ for value in [getattr(digest, name)]
    ]


def _sessions():
    sessions = []
    for path in CAPTURES:
        sessions += analyze_capture(str(path), Options()).sessions
    assert len(sessions) > 200
    return sessions


@pytest.mark.parametrize("shared", [digest_module.MAX_SHARED, 3, 0])
def test_a_packed_digest_reads_back_as_the_digest(monkeypatch, shared):
    monkeypatch.setattr(digest_module, "MAX_SHARED", shared)
    sessions = _sessions()
    for number, session in enumerate(sessions):
        session.id = number
    made = [make_digest(session) for session in sessions]
    table = DigestTable()
    for digest in made:
        table.append(digest)
    assert len(table) == len(made)
    assert [_fields(d) for d in table] == [_fields(d) for d in made]
    assert _fields(table[-1]) == _fields(made[-1]) and _fields(table[7]) == _fields(made[7])
    assert [_fields(d) for d in table[3:9]] == [_fields(d) for d in made[3:9]]
    assert any(d.negatives for d in made) and any(d.envelopes for d in made)
    with pytest.raises(IndexError):
        table[len(made)]


def test_reordered_and_numbered():
    made = [make_digest(session) for session in _sessions()]
    table = DigestTable()
    for digest in made:
        table.append(digest)
    order = sorted(range(len(made)), key=lambda n: (-made[n].first_frame, n))
    table.reorder(order)
    table.number()
    back = list(table)
    assert [d.first_frame for d in back] == [made[n].first_frame for n in order]
    assert list(table.first_frames) == [made[n].first_frame for n in order]
    assert [d.id for d in back] == list(range(1, len(made) + 1))
    assert [d.envelopes for d in back] == [made[n].envelopes for n in order]


def test_packed_digests_take_less_than_half_the_objects():
    """What a spool keeps per session (the sessions themselves gone): measured as the
    capture's sessions come back from the spool, so the digests' strings are their own."""
    sessions = _sessions()
    pickled = [pickle.dumps(session) for session in sessions]
    for session in sessions:
        make_digest(session)  # the values digests share (``_shared``) made before either
    del sessions

    def kept(pack: bool) -> float:
        gc.collect()
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            held = DigestTable() if pack else []
            for blob in pickled:
                held.append(make_digest(pickle.loads(blob)))
            gc.collect()
            return (tracemalloc.get_traced_memory()[0] - before) / len(pickled)
        finally:
            tracemalloc.stop()

    objects, packed = kept(False), kept(True)
    assert packed < objects / 2, f"{packed:,.0f} vs {objects:,.0f} bytes a session"

"""The per-peer summary and the capture-wide rules read the digests one at a time (issue 21):
a long capture's diagnosis must not hold every session's ``Digest`` at once. Each digest
handed out here is watched; the most alive at any moment must stay a handful, whatever the
number of sessions, and what is found must be what the plain sessions give."""

from __future__ import annotations

import weakref
from collections.abc import Iterator, Sequence

from pcapsmtp.analysis import analyze
from pcapsmtp.diagnose import _path_acked
from pcapsmtp.diagnose.digest import (
    Chained,
    Digest,
    DigestTable,
    digests,
    in_time_groups,
)
from pcapsmtp.diagnose.health import summarize
from pcapsmtp.diagnose.storms import rate_limited, retry_storm
from tests.health.traffic import DELIVERY, attempts, greeted, write_capture


class _Tracked(Digest):
    """A digest that can be watched (no ``__slots__``: it has a weak reference)."""


class _Watched(Sequence):
    def __init__(self, kept: Sequence[Digest]) -> None:
        self.kept, self.live, self.most = kept, weakref.WeakSet(), 0

    def _hand(self, digest: Digest) -> Digest:
        copy = _Tracked.__new__(_Tracked)
        for name in Digest.__slots__:
            setattr(copy, name, getattr(digest, name))
        self.live.add(copy)
        self.most = max(self.most, len(self.live))
        return copy

    def __len__(self) -> int:
        return len(self.kept)

    def __getitem__(self, position):
        return self._hand(self.kept[position])

    def __iter__(self) -> Iterator[Digest]:
        for digest in self.kept:
            yield self._hand(digest)


class _Sessions(list):
    digests: Sequence[Digest]


def _health(health) -> tuple[list, list]:
    return list(health.destinations), list(health.clients)


def test_the_capture_wide_rules_hold_a_few_digests_at_once(tmp_path):
    throttle = greeted(b"421 4.7.0 [TSS04] Messages from 192.0.2.10 temporarily deferred")
    conversations = (
        attempts(40, 1.0, greeted(b"421 4.3.2 Service currently unavailable"))
        + attempts(5, 10.0, DELIVERY, first_port=30000)
        + attempts(3, 60.0, throttle, first_port=20000)
    )
    analysis = analyze([str(write_capture(tmp_path / "mixed.pcap", conversations))])
    plain = _Sessions(analysis.sessions)
    plain.digests = list(digests(analysis.sessions))
    watched = _Sessions(plain)
    watched.digests = _Watched(plain.digests)
    assert len(watched.digests) == 48

    assert _health(summarize(watched)) == _health(summarize(plain))
    storms = list(retry_storm(watched, None))
    assert storms and storms == list(retry_storm(plain, None))
    limited = list(rate_limited(watched, None))
    assert limited and limited == list(rate_limited(plain, None))
    assert _path_acked(watched) == _path_acked(plain)
    assert watched.digests.most <= 3


def test_groups_in_time_order_are_those_of_a_sort():
    class Fake:
        def __init__(self, time_ns: int, number: int, name: str) -> None:
            self.first_time_ns, self.id, self.name = time_ns, number, name

    kept = [
        Fake(time_ns, number, name)
        for time_ns, number, name in [
            (5, 1, "b"), (3, 9, "a"), (3, 2, "b"), (5, 1, "a"), (1, 7, "c"), (3, 2, "a"),
        ]
    ]  # fmt: skip
    for by_id in (False, True):
        order = (lambda d: (d.first_time_ns, d.id)) if by_id else (lambda d: d.first_time_ns)
        expected: dict[str, list[int]] = {}
        for position, digest in sorted(enumerate(kept), key=lambda item: order(item[1])):
            expected.setdefault(digest.name, []).append(position)
        (groups,) = in_time_groups(kept, lambda d: d.name, by_id=by_id)
        assert [(name, list(positions)) for name, positions in groups] == list(expected.items())


def test_chained_digests_read_each_part_in_turn():
    chained = Chained([[1, 2], [], [3]])
    assert len(chained) == 3 and list(chained) == [1, 2, 3]
    assert [chained[n] for n in (0, 1, 2, -1)] == [1, 2, 3, 3] and chained[1:] == [2, 3]


def test_a_table_reordered_twice_then_added_to_reads_in_that_order():
    made = [Digest.__new__(Digest) for _n in range(6)]
    for number, digest in enumerate(made):
        for name in Digest.__slots__:
            setattr(digest, name, None)
        digest.capture, digest.id, digest.first_frame, digest.messages = "c", number, number, ()
        digest.acked, digest.replies = (0, 0), ()
    table = DigestTable()
    for digest in made[:5]:
        table.append(digest)
    table.reorder([4, 0, 3, 1, 2])
    table.reorder([1, 0, 4, 3, 2])
    table.append(made[5])
    assert [d.id for d in table] == [0, 4, 2, 1, 3, 5]
    assert [table[n].id for n in range(6)] == [0, 4, 2, 1, 3, 5]
    assert list(table.first_frames) == [0, 4, 2, 1, 3, 5]

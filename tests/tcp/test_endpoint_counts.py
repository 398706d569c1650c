"""An endpoint's per-packet counts (TTL, DF, flags, sizes) are kept compactly while they
hold one value or none, and read as Counters all the same."""

from __future__ import annotations

from collections import Counter

from pcapsmtp.tcp.model import Endpoint


def test_one_ttl_then_another_keeps_counts_and_order() -> None:
    endpoint = Endpoint(b"\x0a\0\0\x01", 25)
    assert endpoint.ttls == Counter() and endpoint.df == Counter()
    for ttl, df in [(64, True), (64, True), (0, False), (64, True), (128, False)]:
        endpoint.count_packet(ttl, df)
    assert endpoint.ttls == Counter({64: 3, 0: 1, 128: 1})
    assert endpoint.ttls.most_common(1) == [(64, 3)]
    assert list(endpoint.ttls) == [64, 0, 128], "first seen first: ties go to the first TTL"
    assert endpoint.df == Counter({True: 3, False: 2})


def test_a_single_ttl_reads_as_a_counter_of_one() -> None:
    endpoint = Endpoint(b"\x0a\0\0\x01", 25)
    endpoint.count_packet(0, False)
    endpoint.count_packet(0, False)
    assert endpoint.ttls == Counter({0: 2})
    assert endpoint.df == Counter({False: 2}) and endpoint.df[True] == 0


def test_flags_and_sizes_start_empty_and_count() -> None:
    endpoint = Endpoint(b"\x0a\0\0\x01", 25)
    assert endpoint.counts["retransmission"] == 0
    assert not endpoint.retransmitted_sizes and not endpoint.unacked_sizes
    endpoint.count_flag("retransmission")
    endpoint.count_flag("retransmission")
    endpoint.count_retransmitted(1500)
    endpoint.count_unacked(1500)
    endpoint.count_unacked(576)
    assert endpoint.counts == Counter({"retransmission": 2})
    assert endpoint.retransmitted_sizes == Counter({1500: 1})
    assert endpoint.unacked_sizes == Counter({1500: 1, 576: 1})

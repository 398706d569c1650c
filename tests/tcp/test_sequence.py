"""tcp/sequence.py and tcp/flowkey.py: the sequence arithmetic and the flow key every
part of the TCP layer (and diff) shares."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from pcapsmtp.tcp.flowkey import flow_key
from pcapsmtp.tcp.sequence import MASK, gt, le, lt, unwrap

u32 = st.integers(0, MASK)
step = st.integers(-(2**31) + 1, 2**31 - 1)


def test_unwrap_carries_across_the_wrap_both_ways():
    assert unwrap(5, 0xFFFFFFFA) == 0x100000005  # 11 after, past 2**32
    assert unwrap(0xFFFFFFFA, 0x100000005) == 0xFFFFFFFA  # 11 before, back below
    assert unwrap(0x7FFFFFFF, 0) == 0x7FFFFFFF
    assert unwrap(0x80000000, 0) == -0x80000000  # half the space away counts as before
    assert unwrap(3, 5 * 2**32 + 1) == 5 * 2**32 + 3  # near an offset far past 4 GiB


@given(u32, step, st.integers(0, 8))
def test_unwrap_is_the_signed_difference(base, diff, wraps):
    near = wraps * 2**32 + base
    assert unwrap((base + diff) & MASK, near) == near + diff


@given(u32, step)
def test_comparisons_follow_the_signed_difference(a, diff):
    b = (a + diff) & MASK
    assert gt(b, a) == (diff > 0)
    assert lt(b, a) == (diff < 0)
    assert le(b, a) == (diff <= 0)


def test_comparisons_at_the_wrap():
    assert gt(0, 0xFFFFFFFF) and lt(0xFFFFFFFF, 0) and le(0xFFFFFFFF, 0)
    assert not gt(5, 5) and not lt(5, 5) and le(5, 5)


def test_the_flow_key_is_the_same_both_ways():
    client, server = bytes([10, 77, 1, 2]), bytes([10, 77, 2, 2])
    key = flow_key(client, 32832, server, 25)
    assert key == flow_key(server, 25, client, 32832)
    assert key == ((client, 32832), (server, 25))
    assert flow_key(client, 32832, server, 25) != flow_key(client, 32833, server, 25)
    # The same address on both sides (a loopback connection): the ports order the key.
    assert flow_key(b"\x7f\x00\x00\x01", 25, b"\x7f\x00\x00\x01", 40000) == (
        (b"\x7f\x00\x00\x01", 25),
        (b"\x7f\x00\x00\x01", 40000),
    )

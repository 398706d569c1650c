"""The JSON writer encodes with orjson (pcapsmtp.report.fastjson) and must write exactly the
bytes of the standard library's encoder (``render_json``, the contract's reference)."""

from __future__ import annotations

import io
import json
import re

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pcapsmtp.report import fastjson
from pcapsmtp.report.fastjson import encode
from pcapsmtp.report.jsondoc import render_json, write_json
from tests.captures import all_captures, analysed, capture_id

_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()  # lone surrogates included: the standard library writes those
)
_keys = st.text() | st.integers(min_value=-(2**63), max_value=2**63 - 1)
_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_keys, inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=2000, deadline=None)
@given(_values, st.integers(min_value=0, max_value=3))
def test_encode_writes_what_the_standard_library_writes(value, depth) -> None:
    expected = json.dumps(value, indent=2, ensure_ascii=False).replace("\n", "\n" + "  " * depth)
    assert encode(value, depth) == expected


@pytest.mark.parametrize(
    "value",
    [1e-5, -9.99e-5, 1e16, 1.5e300, 5e-324, 0.0001, 2**64, "\ud800", {1: [0.02, -0.0]}],
    ids=repr,
)
def test_values_orjson_writes_otherwise_come_out_as_python_writes_them(value) -> None:
    assert encode(value, 1) == json.dumps(value, indent=2, ensure_ascii=False).replace("\n", "\n  ")


CAPTURES = all_captures()


@pytest.mark.parametrize("path", CAPTURES, ids=[capture_id(p) for p in CAPTURES])
def test_write_json_is_render_json_byte_for_byte(path) -> None:
    analysis = analysed(path)
    written = io.StringIO()
    write_json(analysis, written)
    assert written.getvalue() == render_json(analysis)


_ONE_CLASS_LIST_ITEM = re.compile(rb"[\[,]\n *-?(?:[0-9][0-9.]*e|0\.0000)")
"""The list-item expression as it was, one expression starting with a class."""


def _may_differ_as_before(encoded: bytes) -> bool:
    return bool(
        fastjson._NUMBER_PYTHON_WRITES_OTHERWISE[0].search(encoded)
        or _ONE_CLASS_LIST_ITEM.search(encoded)
        or fastjson._SCALAR_PYTHON_WRITES_OTHERWISE.match(encoded)
    )


_PIECES = st.sampled_from([b",", b"[", b"\n", b"  ", b": ", b"-", b"1", b"0.0000", b"e", b"."])


@settings(max_examples=1000, deadline=None)
@given(_values | st.lists(_PIECES | st.binary(max_size=3), max_size=16).map(b"".join))
def test_literal_list_item_expressions_decide_as_the_class_did(value) -> None:
    if isinstance(value, bytes):
        encoded = value
    else:
        try:
            encoded = orjson.dumps(value, option=fastjson._OPTIONS)
        except TypeError:  # integers past 64 bits
            encoded = json.dumps(value, indent=2, ensure_ascii=False).encode("utf-8", "replace")
    assert fastjson._may_differ(encoded) == _may_differ_as_before(encoded)


_far_floats = st.floats(allow_nan=False, allow_infinity=False).filter(
    lambda x: x != 0 and not 1e-4 <= abs(x) < 1e16
)


@settings(max_examples=1000, deadline=None)
@given(
    st.recursive(
        _far_floats | _scalars,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_keys, inner, max_size=4),
        max_leaves=12,
    )
)
def test_every_text_orjson_writes_otherwise_is_seen_by_the_quick_check(value) -> None:
    """``_has_such_float`` may only say no where orjson writes what Python writes: floats
    below 1e-4 or from 1e16 on, in lists, dicts and alone (``_far_floats``)."""
    try:
        encoded = orjson.dumps(value, option=fastjson._OPTIONS)
    except TypeError:
        return
    if encoded.decode() != json.dumps(value, indent=2, ensure_ascii=False):
        assert fastjson._has_such_float(encoded)


@pytest.mark.parametrize("value", [1e-7, [1.5e300, 2], {"a": -5e-324}, 1e16, -9e-5], ids=repr)
def test_quick_check_sees_far_floats(value) -> None:
    assert fastjson._has_such_float(orjson.dumps(value, option=fastjson._OPTIONS))


@pytest.mark.parametrize(
    "value", [{"community_id": "1:3e8+4e5="}, ["2001:db8::3e8", 3], "0.0001", 12.5e3], ids=repr
)
def test_quick_check_passes_text_with_digits_around_an_e(value) -> None:
    assert not fastjson._has_such_float(orjson.dumps(value, option=fastjson._OPTIONS))


@settings(max_examples=500, deadline=None)
@given(
    st.lists(_values, max_size=12),
    st.integers(min_value=1, max_value=3),
    st.integers(min_value=1, max_value=5),
)
def test_items_encoded_in_batches_are_the_list_the_standard_library_writes(
    items, depth, batch
) -> None:
    indent = "\n" + "  " * depth
    expected = json.dumps(items, indent=2, ensure_ascii=False).replace(
        "\n", "\n" + "  " * (depth - 1)
    )
    written = ("," + indent).join(fastjson.encode_items(items, depth, batch))
    got = "[" + indent + written + "\n" + "  " * (depth - 1) + "]" if items else "[]"
    assert got == expected

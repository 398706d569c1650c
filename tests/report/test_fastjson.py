"""The JSON writer encodes with orjson (pcapsmtp.report.fastjson) and must write exactly the
bytes of the standard library's encoder (``render_json``, the contract's reference)."""

from __future__ import annotations

import io
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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

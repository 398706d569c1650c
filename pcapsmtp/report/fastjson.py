"""JSON values encoded by orjson, byte for byte as ``json.dumps(value, indent=2,
ensure_ascii=False)`` writes them.

The standard library's encoder runs in pure Python as soon as ``indent`` is given: on a
capture of many sessions it was most of the run (about 30 % on SMTP-heavy captures, 70 %
on a flood of short connections, where each session is about 5 KB of JSON). orjson writes
the same text for everything the documents hold (dicts in insertion order, lists and
tuples, strings with the same escapes, ints, shortest round-trip floats, two-space
indentation, ``": "`` after keys), except:

- floats below 1e-4 or from 1e16 on: orjson writes ``1e-5``/``0.00001`` and ``1e16``
  where Python writes ``1e-05`` and ``1e+16``;
- integers beyond 64 bits, strings holding lone surrogates, and keys other than str,
  int, float, bool or None, which orjson refuses;
- NaN and infinities, which orjson writes as ``null`` and Python as ``NaN``/``Infinity``
  (no figure of ours is computed that way: Python raises on a division by zero).

For the first two the standard library's encoder writes the value instead: a refusal is
seen as an exception, and a float of that range as a number in exponent form or starting
``0.0000`` in orjson's text (a string value that starts so is encoded again too, at no
harm but the time).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from itertools import islice

import orjson

_OPTIONS = orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS
_NUMBER_PYTHON_WRITES_OTHERWISE = (
    re.compile(rb": -?(?:[0-9][0-9.]*e|0\.0000)"),
    re.compile(rb",\n *-?(?:[0-9][0-9.]*e|0\.0000)"),
    re.compile(rb"\[\n *-?(?:[0-9][0-9.]*e|0\.0000)"),
)
"""A number in exponent form or below 1e-4 (where orjson's text may differ from Python's)
as a value after a key, or as an item of a list (after "," or "["); each expression starts
with a literal, which keeps the search fast: one expression with both took twice as long,
and the list item's as one expression starting with the class "[\\[,]" (checked at every
byte) 0.24 s against 0.14 s for the two on the 17 MB document of a 200 MB capture."""
_SCALAR_PYTHON_WRITES_OTHERWISE = re.compile(rb"-?(?:[0-9][0-9.]*e|0\.0000)")
_DIGITS_AND_MINUS_AS_0 = bytes.maketrans(b"123456789-", b"0000000000")
_EXPONENT_FORM = re.compile(rb"0e0{1,4}(?:[,\n]|\Z)")
"""In orjson's text with every digit and "-" made "0": a number in exponent form, which
orjson writes as digits, an "e" and a signed exponent of one to three digits, followed by
the "," or the line break that ends a value in indented JSON (or by the end of the text).
Starting with a literal, it is searched at memchr's speed; the hex of IPv6 addresses and
the base64 of Community IDs have digits around an "e" too, but not before a "," or a line
break."""


def _has_such_float(encoded: bytes) -> bool:
    """orjson's text may hold a float it writes otherwise than Python (``_may_differ``
    decides): the common case, none, found in a quarter of the time of those expressions
    (0.028 s against 0.118 s over the 12.8 MB of the 1,794 sessions of the 200 MB capture,
    none of which has such a float)."""
    return b"0.0000" in encoded or (
        _EXPONENT_FORM.search(encoded.translate(_DIGITS_AND_MINUS_AS_0)) is not None
    )


def _may_differ(encoded: bytes) -> bool:
    return (
        any(expression.search(encoded) for expression in _NUMBER_PYTHON_WRITES_OTHERWISE)
        or _SCALAR_PYTHON_WRITES_OTHERWISE.match(encoded) is not None
    )


class LazyList(list):
    """Items made one at a time as a writer reaches them (``make(item)`` for each of
    ``items``): a capture of 200,000 sessions, or of 200,000 clients, never holds all their
    dicts at once. The standard library's encoder with ``indent`` (pure Python) and
    ``jsondoc.write_json`` iterate it; ``len`` answers for the empty check."""

    def __init__(self, items, make) -> None:
        super().__init__()
        self.items, self.make = items, make

    def __len__(self) -> int:
        return len(self.items)

    def __bool__(self) -> bool:
        return bool(self.items)

    def __iter__(self):
        return map(self.make, self.items)


def encode(value, depth: int = 0) -> str:
    """``value`` as JSON text indented by two spaces a level, as if it were nested
    ``depth`` levels deep in a document (its lines after the first indented by that)."""
    try:
        encoded = orjson.dumps(value, option=_OPTIONS)
    except TypeError:
        encoded = None
    if encoded is None or (_has_such_float(encoded) and _may_differ(encoded)):
        text = json.dumps(value, indent=2, ensure_ascii=False)
    else:
        text = encoded.decode()
    if depth and "\n" in text:
        text = text.replace("\n", "\n" + "  " * depth)
    return text


def encode_items(items: Iterable, depth: int, batch: int = 16) -> Iterator[str]:
    """The items of a list nested ``depth`` levels deep (``depth`` >= 1), as JSON text
    joined by ``",\n"`` and the indentation of that depth (what goes between a list's
    first line break and its own indentation), a batch of items at a time.

    orjson encodes each batch nested in ``depth`` lists, which indents the items as the
    document needs: one call and no re-indentation (``str.replace``) per item, where a
    session of the 200 MB capture is about 7 KB of text. A batch orjson refuses or may
    write otherwise than Python is encoded item by item by ``encode``."""
    iterator = iter(items)
    head = len("".join("  " * level + "[\n" for level in range(depth)) + "  " * depth)
    tail = len("".join("\n" + "  " * level + "]" for level in range(depth)))
    separator = ",\n" + "  " * depth
    while chunk := list(islice(iterator, batch)):
        nested: object = chunk
        for _ in range(depth - 1):
            nested = [nested]
        try:
            encoded = orjson.dumps(nested, option=_OPTIONS)
        except TypeError:
            encoded = None
        if encoded is None or (_has_such_float(encoded) and _may_differ(encoded)):
            yield separator.join(encode(item, depth) for item in chunk)
        else:
            yield encoded[head:-tail].decode()

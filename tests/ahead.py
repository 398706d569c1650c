"""Slow oracle runs (tshark, editcap) started ahead of the tests that read them, when that pays.

Run in one process, a module's fixture starts every run up front in a small thread pool, so
tshark works while our side is checked. Under pytest-xdist a worker runs only some of a
module's tests and the cores are already busy: starting every run there would make each
worker do all of them. There each run is made when a test first asks for its result.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

UNDER_XDIST = "PYTEST_XDIST_WORKER" in os.environ


class Later:
    """A call made on the first ``result()``, like a Future that was never started."""

    def __init__(self, function: Callable, *args: Any) -> None:
        self._call = (function, args)
        self._done = False
        self._value: Any = None

    def result(self) -> Any:
        if not self._done:
            function, args = self._call
            self._value = function(*args)
            self._done = True
        return self._value


@contextmanager
def ahead(workers: int = 2) -> Iterator[Callable[..., Any]]:
    """``submit(function, *args)`` giving something with ``result()``: a thread pool's
    submit when the tests run in one process, :class:`Later` under pytest-xdist."""
    if UNDER_XDIST:
        yield Later
        return
    with ThreadPoolExecutor(max_workers=workers) as pool:
        yield pool.submit

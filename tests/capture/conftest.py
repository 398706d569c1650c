"""Capture tests: tshark's answers are kept in pytest's cache (see tshark.py)."""

import pytest

from tests.capture import tshark


@pytest.fixture(scope="session", autouse=True)
def _tshark_cache(request):
    tshark.CACHE = getattr(request.config, "cache", None)
    yield
    tshark.CACHE = None

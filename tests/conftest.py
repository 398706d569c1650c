"""Skipping when a capture or a tool is absent; where the captures are: tests/captures.py."""

from __future__ import annotations

import os
import resource
import shutil
import time
from pathlib import Path

import pytest

from tests import tshark
from tests.captures import LAB, PUBLIC, REPO_ROOT

PUBLIC_CAPTURES = PUBLIC
LAB_CAPTURES = LAB
"""The old names, for a test still importing them from here; new code: tests.captures."""
__all__ = ["LAB_CAPTURES", "PUBLIC_CAPTURES", "REPO_ROOT"]


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "xdist_group(name): tests that share an expensive module fixture (a Dask cluster, a "
        "generated capture, reports in every format); with ``--dist loadgroup`` (scripts/test) "
        "pytest-xdist runs them in one worker, so the fixture is made once",
    )


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items):
    """Make ``--dist loadgroup`` group again: pytest-xdist 3.8 names a test's group by
    rewriting ``item._nodeid`` (its ``pytest_collection_modifyitems``), which pytest 9 no
    longer reads (the node id comes from ``item._id``), so every group ran on both workers
    and each built its fixture. Runs after xdist's hook and does what it meant to."""
    if not getattr(config.option, "loadgroup", False):
        return
    for item in items:
        marks = item.iter_markers("xdist_group")
        names = sorted(
            {str(m.args[0] if m.args else m.kwargs.get("name", "default")) for m in marks}
        )
        if names and "@" not in item.nodeid:
            from _pytest.nodeid import coerce_node_id  # pytest 9 only; earlier ones never get here

            item._id = coerce_node_id(f"{item.nodeid}@{'_'.join(names)}")


CPU_LOG = os.environ.get("PCAPSMTP_TEST_CPU_LOG")
"""A file to which each test's CPU seconds are appended (``nodeid, worker, cpu, wall``, tab
separated): the process's and its finished children's user+system time over the test's
setup, call and teardown. Wall times of a loaded machine say little; CPU per test says
where a run's time goes (``sort -t$'\\t' -k3 -rn``)."""


def _cpu_seconds() -> float:
    own, children = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    if not CPU_LOG:
        yield
        return
    cpu, wall = _cpu_seconds(), time.monotonic()
    yield
    cpu, wall = _cpu_seconds() - cpu, time.monotonic() - wall
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    with open(CPU_LOG, "a", encoding="utf-8") as log:
        log.write(f"{item.nodeid}\t{worker}\t{cpu:.3f}\t{wall:.3f}\n")


@pytest.fixture(scope="session", autouse=True)
def _tshark_fields_cache(request, tmp_path_factory):
    """tshark's answers kept between runs in pytest's cache, and shared by the
    pytest-xdist workers of a run through their common temporary folder (see
    tests/tshark.py)."""
    tshark.CACHE = getattr(request.config, "cache", None)
    if hasattr(request.config, "workerinput"):
        tshark.SHARED = tmp_path_factory.getbasetemp().parent / "tshark-answers"
    yield
    tshark.CACHE = None
    tshark.SHARED = None


@pytest.fixture
def public_capture():
    """``public_capture(name)``: the path of a public capture; skips the test when absent."""

    def find(name: str) -> Path:
        path = PUBLIC / name
        if not path.is_file():
            pytest.skip(f"public capture {name} not present in {PUBLIC}")
        return path

    return find


@pytest.fixture
def tool():
    """``tool(name)``: the path of an installed program; skips the test when absent."""

    def find(name: str) -> str:
        path = shutil.which(name)
        if path is None:
            pytest.skip(f"{name} is not installed")
        return path

    return find

"""The reader against tshark on every real capture we have.

For each public capture and each capture of the lab (``captures/``, picked up as it is
added), and for the long captures composed from them (tests/composed.py: 4-tuples
reused after resets, ICMP errors quoting unseen connections): the number of frames,
every frame's time to the nanosecond, which frames carry IP, how many IP datagrams were
reassembled, and every TCP segment's frame, ports, sequence number and length equal
tshark's. On a damaged file tshark stops with an error; we compare what it did read.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from tests.ahead import ahead
from tests.capture.tshark import TSHARK, Facts, reader_facts, tshark_facts
from tests.captures import LAB, PUBLIC, in_folder
from tests.composed import icmp_errors, port_reuse


def capture_files() -> list[Path]:
    return in_folder(PUBLIC) + in_folder(LAB)


@dataclass(frozen=True)
class Difference:
    """Where we differ from tshark on purpose, and why."""

    ip_only_in_tshark: frozenset[int]
    """Frames in which tshark finds IP and we do not."""
    reason: str

    def apply(self, facts: Facts) -> Facts:
        ip_frames = tuple(n for n in facts.ip_frames if n not in self.ip_only_in_tshark)
        return replace(facts, ip_frames=ip_frames)


DIFFERENCES = {
    "arkime-arkime_synthetic.pcap": Difference(
        frozenset({307}),
        "Network Service Header (EtherType 0x894F, RFC 8300) is a service-function-chaining "
        "overlay inside data-centre fabrics, not a link layer where mail is captured; its "
        "payload may itself be Ethernet. We do not decode it.",
    ),
}

FILES = capture_files()


@pytest.fixture(scope="module")
def tshark_runs():
    """tshark on every file, two at a time, started before the first comparison (under
    pytest-xdist: on each file a worker's tests read)."""
    if TSHARK is None:
        pytest.skip("tshark is not installed")
    with ahead(2) as submit:
        yield {path: submit(tshark_facts, path) for path in FILES}


@pytest.mark.oracle
@pytest.mark.parametrize("path", FILES, ids=lambda path: path.name)
def test_reader_agrees_with_tshark(path: Path, tshark_runs) -> None:
    """Frame count, frame times, IP frames, reassembled datagrams and TCP segments are
    tshark's."""
    run = tshark_runs[path].result()
    ours, info = reader_facts(path)

    difference = DIFFERENCES.get(path.name)
    expected = difference.apply(run.facts) if difference else run.facts
    assert ours == expected
    if run.error:  # tshark met damage: we read as far as it did and say what was lost
        assert info.warnings, run.error


def test_deliberate_differences_name_existing_files() -> None:
    """A difference for a capture we no longer have is stale and must go."""
    if not PUBLIC.is_dir():
        pytest.skip(f"{PUBLIC} is absent")
    names = {path.name for path in FILES}
    assert set(DIFFERENCES) <= names


@pytest.mark.oracle
@pytest.mark.slow
@pytest.mark.parametrize("name", ["port-reuse", "icmp-errors"])
def test_reader_agrees_with_tshark_on_composed_captures(name: str, tmp_path: Path) -> None:
    if TSHARK is None:
        pytest.skip("tshark is not installed")
    if name == "port-reuse":
        path = port_reuse(tmp_path / "port-reuse.pcap")
    else:
        path = icmp_errors(tmp_path / "icmp-errors.pcap", PUBLIC / "zeek-smtp.pcap")
    run = tshark_facts(path)
    ours, _info = reader_facts(path)
    assert run.error == ""
    assert ours == run.facts
    assert ours.frames > 4000

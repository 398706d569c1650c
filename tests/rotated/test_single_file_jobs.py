"""``--jobs N`` on a single capture file: the sharded pass of rotated sets
(pcapsmtp.analysis.shards, ``analyze_sharded``), N forked processes each reading the file and
tracking the SMTP of its share of the streams. Its JSON is ``--jobs 1``'s byte for byte;
standard input, which cannot be read twice, stays in the command's process. A worker makes no
Python flow of the other shards' connections (``FlowTracker.only``), and the flow table's
warnings of all shards come out in one pass's order."""

from __future__ import annotations

import gzip
import io
import tempfile
from pathlib import Path

import pytest

from pcapsmtp.analysis import Options, analyze, shards
from pcapsmtp.analysis.run import _parallel
from pcapsmtp.analysis.shards import analyze_shard
from pcapsmtp.capture.sets import CaptureSet
from pcapsmtp.report.jsondoc import write_json
from pcapsmtp.tcp import reassembly
from pcapsmtp.tcp.flows import FlowTracker
from tests.capture.build import ipv4, tcp, write_pcap
from tests.captures import LAB

pytestmark = pytest.mark.xdist_group("rotated-local-jobs")

FILES = [
    "loss.pcap",
    "retry-storm.pcap",
    "dns-no-mx.pcap",
    "ip-fragmentation.pcap",
    "starttls-auth-587.pcap",
    "connect-refused.pcap",
    "icmp-quoted-streams.pcap",
]


def json_of(path: str, options: Options) -> str:
    out = io.StringIO()
    write_json(analyze([path], options), out)
    return out.getvalue()


@pytest.fixture
def sharded(monkeypatch) -> list[int]:
    """The jobs of every ``analyze_sharded`` call (the command's side of the workers)."""
    calls: list[int] = []
    real = shards.analyze_sharded

    def counted(capture_set, options, pool, jobs, board=None):
        calls.append(jobs)
        return real(capture_set, options, pool, jobs, board)

    monkeypatch.setattr(shards, "analyze_sharded", counted)
    return calls


@pytest.mark.parametrize("name", FILES)
@pytest.mark.parametrize("jobs", [2, 3])
def test_jobs_n_on_one_file_writes_the_json_of_one_process(sharded, name, jobs) -> None:
    if not (LAB / name).is_file():
        pytest.skip("no lab captures")
    one = json_of(str(LAB / name), Options(jobs=1))
    assert not sharded, "--jobs 1 reads in this process"
    assert '"sessions": [' in one
    assert json_of(str(LAB / name), Options(jobs=jobs)) == one
    assert sharded == [jobs], "the file was read by the shards"


def test_a_compressed_file_is_sharded_too(sharded, tmp_path) -> None:
    """Each worker undoes the compression itself (the cost is paid N times)."""
    if not (LAB / "retry-storm.pcap").is_file():
        pytest.skip("no lab captures")
    packed = tmp_path / "retry-storm.pcap.gz"
    packed.write_bytes(gzip.compress((LAB / "retry-storm.pcap").read_bytes()))
    one = json_of(str(packed), Options(jobs=1))
    assert '"compression": "gzip"' in one or "gzip" in one
    assert json_of(str(packed), Options(jobs=2)) == one
    assert sharded == [2]


def test_standard_input_and_the_default_stay_in_this_process() -> None:
    stdin = [CaptureSet("-", ["-"])]
    one_file = [CaptureSet("a.pcap", ["a.pcap"])]
    assert not _parallel(stdin, Options(jobs=2)), "stdin cannot be read twice"
    assert _parallel(one_file, Options(jobs=2))
    assert not _parallel(one_file, Options(jobs=1))
    assert not _parallel(one_file, Options()), "the default for one file is one process"


def test_an_unreadable_file_gives_the_error_of_one_process(tmp_path) -> None:
    bad = tmp_path / "bad.pcap"
    bad.write_bytes(b"garbage, no capture")
    errors = [[str(e) for e in analyze([str(bad)], Options(jobs=jobs)).errors] for jobs in (1, 2)]
    assert errors[0] and errors[1] == errors[0]


def holes(path: Path, flows: int = 4, segments: int = 30) -> Path:
    """Connections to port 25 whose client bytes after the first line stay behind a hole that
    never fills: each reaches a low reassembly bound and warns (stream 0, 1, 2, ...)."""
    packets = [
        ipv4(tcp(b"EHLO client.example\r\n", seq=1000, sport=40000 + n)) for n in range(flows)
    ]
    for k in range(segments):
        for n in range(flows):
            packets.append(ipv4(tcp(b"x" * 100, seq=1000 + 21 + 10 + 100 * k, sport=40000 + n)))
    return write_pcap(path, packets)


def test_the_flow_warnings_of_all_shards_come_in_one_pass_order(monkeypatch, tmp_path) -> None:
    """Each shard warns of its own flows only; merged, they come in the order of the flows'
    ends, as in one pass (not the first shard's, then the others')."""
    monkeypatch.setattr(reassembly, "MAX_PENDING_BYTES", 500)  # forked workers inherit it
    path = str(holes(tmp_path / "holes.pcap"))
    one = analyze([path], Options(jobs=1))
    warned = [w for w in one.results[0].info.warnings if "reassembly bound" in w]
    assert [w.split(",")[0] for w in warned] == [f"tcp.stream {n}" for n in range(4)]
    for jobs in (2, 3):
        assert json_of(path, Options(jobs=jobs)) == json_of(path, Options(jobs=1))


def test_a_shard_makes_no_flow_of_the_other_shards_connections(monkeypatch) -> None:
    """The flow table numbers every connection but the worker builds a Python flow only of
    its own (``FlowTracker.only``): the cost of the others is the core's."""
    name = "retry-storm.pcap"
    if not (LAB / name).is_file():
        pytest.skip("no lab captures")
    opened: list[int] = []
    real = FlowTracker._open

    def recorded(self, head, live=True):
        opened.append(head[1])
        return real(self, head, live)

    monkeypatch.setattr(FlowTracker, "_open", recorded)
    with tempfile.TemporaryDirectory() as folder:
        shard = analyze_shard(str(LAB / name), name, (), 1, 2, str(Path(folder) / "s1"))
    assert len(shard.offsets) > 0
    assert opened and {stream % 2 for stream in opened} == {1}

"""A capture cut into rotated files gives exactly what the uncut capture gives.

The chained pass (``--jobs 1``) is checked on every lab capture at random cuts; the
parallel path (tasks on a Dask cluster of worker processes, stitched) on the cases that
matter: mid-DATA, around a retransmission, port reuse, one session over many files.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pcapsmtp.analysis import Options, analyze
from tests.captures import LAB, PUBLIC, analysed
from tests.composed import icmp_errors, port_reuse
from tests.rotated.split import comparable, pcap_records, port_reuse_capture, split_pcap

pytestmark = pytest.mark.xdist_group("rotated-dask-cluster")

LAB_NAMES = sorted(p.name for p in LAB.glob("*.pcap"))


def whole(path: Path) -> dict:
    return comparable(analysed(path, jobs=1), str(path))


def rotated(folder: Path, options: Options) -> dict:
    analysis = analyze([str(folder)], options)
    assert len(analysis.results) == 1, "the pieces are one capture"
    files = sorted(str(p) for p in folder.iterdir())
    if len(files) == 1:
        return comparable(analysis, files[0])
    assert analysis.results[0].info.files == files
    return comparable(analysis, str(folder / "gw1-*.pcap"))


def records(name: str) -> int:
    return len(pcap_records(LAB / name)[1])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_chained_pieces_equal_the_whole(data) -> None:
    name = data.draw(st.sampled_from(LAB_NAMES), label="capture")
    n = records(name)
    cuts = data.draw(st.lists(st.integers(1, max(1, n - 1)), max_size=5), label="cuts")
    with tempfile.TemporaryDirectory() as folder:
        split_pcap(LAB / name, cuts, Path(folder))
        assert rotated(Path(folder), Options(jobs=1)) == whole(LAB / name)


def test_the_files_order_is_their_time_not_their_name(tmp_path) -> None:
    path = LAB / "loss.pcap"
    first, second = split_pcap(path, [60], tmp_path)
    swapped_a, swapped_b = tmp_path / "gw1-9.pcap", tmp_path / "gw1-1.pcap"
    first.rename(swapped_a)
    second.rename(swapped_b)
    analysis = analyze([str(tmp_path)], Options(jobs=1))
    assert analysis.results[0].info.files == [str(swapped_a), str(swapped_b)]
    assert comparable(analysis, str(tmp_path / "gw1-*.pcap")) == whole(path)


# Cases for the parallel path: (capture, cuts, what the cuts hit).
DATA_STARTS = 18  # loss.pcap: 354 in frame 18, the message up to frame 134, a retransmission in 94
CASES = [
    ("loss.pcap", [40], "mid-DATA"),
    ("loss.pcap", [93, 94, 95], "around a retransmission"),
    ("loss.pcap", [30, 70, 110, 140], "one session over five files"),
    ("loss.pcap", [DATA_STARTS + 1, 134], "DATA alone in the middle file"),
    ("retry-storm.pcap", [400, 401, 1200], "hundreds of connections, cuts everywhere"),
    ("zero-window.pcap", [100, 200], "zero-window probes over three files"),
    ("starttls-auth-587.pcap", [12, 20], "STARTTLS and AUTH over three files"),
    ("connect-refused.pcap", [1, 2, 3, 4, 5, 6, 7], "a frame a file"),
    ("ipv6.pcap", [11], "IPv6"),
]


@pytest.fixture(scope="module")
def dask_cluster():
    """A local Dask cluster of two worker processes on loopback."""
    distributed = pytest.importorskip("dask.distributed")
    import logging

    cluster = distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
        silence_logs=logging.ERROR,
    )
    yield cluster
    cluster.close()


@pytest.mark.parametrize(("name", "cuts", "what"), CASES, ids=[c[2] for c in CASES])
def test_parallel_pieces_equal_the_whole(dask_cluster, tmp_path, name, cuts, what) -> None:
    split_pcap(LAB / name, cuts, tmp_path)
    options = Options(scheduler=dask_cluster.scheduler_address)
    assert rotated(tmp_path, options) == whole(LAB / name)


@pytest.mark.parametrize("cut", [23, 24, 25, 30])
def test_port_reuse_across_a_boundary(dask_cluster, tmp_path, cut) -> None:
    """The second connection of a 4-tuple starts near the boundary, while the first still
    lingers in the flow table: the new stream number and the reuse flag as in one pass."""
    source = port_reuse_capture(LAB / "clean-delivery.pcap", tmp_path / "reuse.pcap")
    folder = tmp_path / "set"
    folder.mkdir()
    split_pcap(source, [cut], folder)
    expected = whole(source)
    assert [s["tcp_stream"] for s in expected["sessions"]] == [0, 1]
    assert rotated(folder, Options(jobs=1)) == expected
    assert rotated(folder, Options(scheduler=dask_cluster.scheduler_address)) == expected


def test_several_sets_and_single_files_in_one_run(dask_cluster, tmp_path) -> None:
    gw1, gw2 = tmp_path / "gw1", tmp_path / "gw2"
    gw1.mkdir()
    gw2.mkdir()
    split_pcap(LAB / "loss.pcap", [50], gw1)
    split_pcap(LAB / "greylisting.pcap", [20], gw2, prefix="gw2-")
    single = LAB / "unknown-user.pcap"
    inputs = [str(gw1), str(single), str(gw2)]
    parallel = analyze(inputs, Options(scheduler=dask_cluster.scheduler_address))
    chained = analyze(inputs, Options(jobs=1))
    assert [r.info.file for r in parallel.results] == [
        str(gw1 / "gw1-*.pcap"),
        str(single),
        str(gw2 / "gw2-*.pcap"),
    ]
    assert [s.key for s in parallel.sessions] == [
        (str(gw1 / "gw1-*.pcap"), 1),
        (str(single), 1),
        (str(gw2 / "gw2-*.pcap"), 1),
        (str(gw2 / "gw2-*.pcap"), 2),
    ], "ids count per capture (a rotated set is one)"
    for p, c in zip(parallel.results, chained.results, strict=True):
        assert comparable_result(p) == comparable_result(c)


def comparable_result(result) -> tuple:
    return (
        result.info.frames,
        result.other_connections,
        [
            (s.flow.stream, s.flow.first_frame, s.flow.last_frame, s.outcome)
            for s in result.sessions
        ],
        [(f.code, f.frames) for f in result.findings],
    )


def test_an_unreadable_file_in_a_set_is_named_and_the_rest_read(dask_cluster, tmp_path) -> None:
    pieces = split_pcap(LAB / "unknown-user.pcap", [10], tmp_path)
    bad = tmp_path / "gw1-202611230199.pcap"
    bad.write_bytes(b"garbage, no capture")
    inputs = [str(pieces[0]), str(bad), str(pieces[1])]
    for options in (Options(jobs=1), Options(scheduler=dask_cluster.scheduler_address)):
        analysis = analyze(inputs, options)
        (result,) = analysis.results
        assert result.info.files == [str(p) for p in pieces]
        assert len(result.sessions) == 1
        assert result.sessions[0].outcome == "rejected"
        (warning,) = [w for w in result.info.warnings if "left out" in w]
        assert warning.startswith(f"{bad}: not a pcap or pcapng capture")


def test_report_of_a_set_equals_the_report_of_the_whole(tmp_path) -> None:
    from pcapsmtp.ticket import ReportOptions, make_report

    source = LAB / "loss.pcap"
    split_pcap(source, [40, 94], tmp_path)
    options = ReportOptions(generated=None)
    whole_report, _ = make_report(str(source), Options(jobs=1), options)
    set_report, _ = make_report([str(tmp_path)], Options(jobs=1), options)
    assert set_report["capture"]["files"] == sorted(str(p) for p in tmp_path.iterdir())
    assert set_report["capture"]["sha256"].count(": ") == 3
    for report in (whole_report, set_report):
        for key in ("capture", "produced", "report"):
            report.pop(key)
    text = json.dumps(set_report).replace(str(tmp_path / "gw1-*.pcap"), str(source))
    assert json.loads(text) == whole_report
    assert set_report["sessions"][0]["graphs"], "the graphs read the set's frames"


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "cuts"), [("port-reuse", [2500, 5000, 7500]), ("icmp-errors", [30, 2500])]
)
def test_stream_numbers_of_long_captures_across_boundaries(dask_cluster, tmp_path, name, cuts):
    """4-tuples used again after the flow table ended them, and ICMP errors that begin a
    tcp.stream (tests/composed.py), cut into files: the stream numbers of one pass."""
    if name == "port-reuse":
        source = port_reuse(tmp_path / "whole.pcap")
    else:
        source = icmp_errors(tmp_path / "whole.pcap", PUBLIC / "zeek-smtp.pcap")
    folder = tmp_path / "set"
    folder.mkdir()
    split_pcap(source, cuts, folder)
    expected = whole(source)
    streams = [s["tcp_stream"] for s in expected["sessions"]]
    if name == "port-reuse":
        assert len(set(streams)) < len(streams)  # sessions that continue a stream
    elif (PUBLIC / "zeek-smtp.pcap").is_file():
        # zeek-smtp.pcap's errors quote a session the capture lacks: streams of ICMP only
        assert set(range(max(streams) + 1)) - set(streams)
    assert rotated(folder, Options(jobs=1)) == expected
    assert rotated(folder, Options(scheduler=dask_cluster.scheduler_address)) == expected

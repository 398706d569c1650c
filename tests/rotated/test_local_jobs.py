"""``--jobs N`` without ``--scheduler``: N processes forked from the command, each reading the
whole set and tracking the SMTP of its share of the streams (pcapsmtp.analysis.shards,
``analyze_sharded``). Its JSON is ``--jobs 1``'s byte for byte, warnings included, and
agrees with the per-file tasks on a Dask cluster (the parallel path before it) where those
agree with one pass."""

from __future__ import annotations

import io
import pickle
import tempfile
from pathlib import Path

import pytest

from pcapsmtp.analysis import Options, analyze
from pcapsmtp.analysis.shards import analyze_shard
from pcapsmtp.report.jsondoc import write_json
from tests.captures import LAB
from tests.rotated.split import comparable, pcap_records, split_pcap
from tests.rotated.test_stitch import dask_cluster  # noqa: F401 (a fixture)

pytestmark = pytest.mark.xdist_group("rotated-local-jobs")

SETS = [
    ("loss.pcap", [40, 94]),
    ("retry-storm.pcap", [400, 401, 1200]),
    ("dns-no-mx.pcap", [3, 9]),
    ("ip-fragmentation.pcap", [5, 6, 7, 8]),
    ("starttls-auth-587.pcap", [12, 20]),
    ("connect-refused.pcap", [1, 2, 3, 4, 5, 6, 7]),
]


def json_of(folder: Path, options: Options) -> str:
    out = io.StringIO()
    write_json(analyze([str(folder)], options), out)
    return out.getvalue()


@pytest.mark.parametrize(("name", "cuts"), SETS, ids=[s[0] for s in SETS])
@pytest.mark.parametrize("jobs", [2, 3])
def test_jobs_n_writes_the_json_of_one_pass(tmp_path, name, cuts, jobs) -> None:
    if not (LAB / name).is_file():
        pytest.skip("no lab captures")
    split_pcap(LAB / name, cuts, tmp_path)
    one = json_of(tmp_path, Options(jobs=1))
    assert '"sessions": [' in one
    assert json_of(tmp_path, Options(jobs=jobs)) == one


def test_the_shards_split_the_sessions(tmp_path) -> None:
    """Each process tracks its own streams: together all sessions, none twice."""
    name = "retry-storm.pcap"
    if not (LAB / name).is_file():
        pytest.skip("no lab captures")
    files = [str(p) for p in split_pcap(LAB / name, [400, 1200], tmp_path)]
    streams = []
    with tempfile.TemporaryDirectory() as folder:
        for k in range(2):
            shard = analyze_shard(files, "set", (), k, 2, str(Path(folder) / f"s{k}"))
            with open(shard.path, "rb") as records:
                sessions = []
                for offset in shard.offsets:
                    records.seek(offset)
                    sessions.append(pickle.load(records))
            assert [s.flow.first_frame for s in sessions] == list(shard.digests.first_frames)
            streams.append([s.flow.stream for s in sessions])
    assert all(streams), "both shards have sessions"
    assert [s % 2 for s in streams[0]] == [0] * len(streams[0])
    assert [s % 2 for s in streams[1]] == [1] * len(streams[1])
    whole = analyze([str(LAB / name)], Options(jobs=1)).results[0].sessions
    assert sorted(streams[0] + streams[1]) == sorted(s.flow.stream for s in whole)


def test_jobs_two_agrees_with_the_tasks_on_a_dask_cluster(dask_cluster, tmp_path) -> None:  # noqa: F811
    """The parallel path of before (one task per file, still that of --scheduler)."""
    source = LAB / "loss.pcap"
    if not source.is_file():
        pytest.skip("no lab captures")
    n = len(pcap_records(source)[1])
    split_pcap(source, [n // 4, n // 2, 3 * n // 4], tmp_path)
    on_dask = analyze([str(tmp_path)], Options(scheduler=dask_cluster.scheduler_address))
    label = str(tmp_path / "gw1-*.pcap")
    forked = analyze([str(tmp_path)], Options(jobs=2))
    assert comparable(forked, label) == comparable(on_dask, label)
    assert forked.results[0].info.files == on_dask.results[0].info.files


def test_an_unreadable_file_of_a_set_is_left_out_as_with_one_job(tmp_path) -> None:
    """One file of two unreadable: the other is still a set (its files, the warning that
    names the one left out), as with --jobs 1."""
    if not (LAB / "unknown-user.pcap").is_file():
        pytest.skip("no lab captures")
    (piece,) = split_pcap(LAB / "unknown-user.pcap", [], tmp_path)
    bad = tmp_path / "gw1-202611230199.pcap"
    bad.write_bytes(b"garbage, no capture")
    inputs = [str(piece), str(bad)]
    texts = []
    for jobs in (1, 2):
        out = io.StringIO()
        write_json(analyze(inputs, Options(jobs=jobs)), out)
        texts.append(out.getvalue())
    assert "left out of the set" in texts[0]
    assert texts[1] == texts[0]


def test_the_progress_line_shows_the_reading_of_the_shards(tmp_path) -> None:
    """The workers write how far they read to a shared board; the command draws the line
    of the slowest, as --jobs 1 draws its own, and erases it at the end."""
    import importlib.util
    import itertools

    from pcapsmtp.analysis.progress import Progress
    from tests.captures import REPO_ROOT

    spec = importlib.util.spec_from_file_location(
        "gencapture", REPO_ROOT / "scripts" / "bench" / "gencapture.py"
    )
    gencapture = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gencapture)
    whole = tmp_path / "busy.pcap"
    with open(whole, "wb") as out:
        gencapture.generate(out, 8 * 1024 * 1024, seed=7, concurrency=300)
    folder = tmp_path / "set"
    folder.mkdir()
    n = len(pcap_records(whole)[1])
    split_pcap(whole, [n // 2], folder)
    seconds = itertools.count(step=10)  # every update draws
    stream = io.StringIO()
    progress = Progress(stream, clock=lambda: next(seconds))
    analysis = analyze([str(folder)], Options(jobs=2, progress=progress))
    assert not analysis.errors and analysis.results[0].sessions
    lines = stream.getvalue().split("\r")
    drawn = [line for line in lines if line.startswith("pcapsmtp: reading gw1-*.pcap, ")]
    assert any(" of 8 MB (" in line and ", 0 of " not in line for line in drawn), drawn[:3]
    assert any(" 0 SMTP sessions" not in line for line in drawn)
    assert lines[-1] == "\x1b[K", "erased at the end"

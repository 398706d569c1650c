"""Which files make one rotated set, and in which order they are read."""

from __future__ import annotations

import os

import pytest

from pcapsmtp.capture.sets import expand_inputs, group_files, rotation_key
from tests.captures import LAB


@pytest.mark.parametrize(
    ("names", "key"),
    [
        (["gw1-2026112301.pcap", "gw1-2026112302.pcap"], "gw1-*.pcap"),  # tcpdump -G
        (["gw1.pcap", "gw1.pcap1", "gw1.pcap12"], "gw1.pcap*"),  # tcpdump -C
        (["gw1_00001_20261123010000.pcapng", "gw1_00002_20261123020000.pcapng"], "gw1_*.pcapng"),
        (["mx-2026-11-23T01:00:00.pcap.gz", "mx-2026-11-23T02:00:00.pcap.gz"], "mx-*.pcap.gz"),
    ],
)
def test_rotated_names_share_a_key(names, key) -> None:
    assert {rotation_key(os.path.join("d", n)) for n in names} == {os.path.join("d", key)}


@pytest.mark.parametrize(
    "names",
    [
        ["gw1-2026112301.pcap", "gw2-2026112301.pcap"],  # two gateways
        ["good.pcap", "bad.pcap"],
        ["test1.pcap", "test2.pcap"],  # a digit inside the name is no rotation counter
        ["gw1-01.pcap", "gw1-01.pcapng"],
    ],
)
def test_other_names_do_not(names) -> None:
    assert len({rotation_key(n) for n in names}) == len(names)


def test_the_same_folder_only() -> None:
    assert rotation_key("a/gw1-01.pcap") != rotation_key("b/gw1-01.pcap")


def test_groups_keep_the_order_given_and_stdin_alone() -> None:
    sets = group_files(["gw1-02.pcap", "other.pcap", "gw1-01.pcap", "-", "-"])
    assert [s.files for s in sets] == [["gw1-02.pcap", "gw1-01.pcap"], ["other.pcap"], ["-"], ["-"]]
    assert sets[0].label == "gw1-*.pcap"
    assert sets[1].label == "other.pcap"


def test_a_file_given_twice_is_two_captures() -> None:
    assert [s.files for s in group_files(["gw1-01.pcap", "gw1-01.pcap"])] == [
        ["gw1-01.pcap"],
        ["gw1-01.pcap"],
    ]


def test_a_folder_gives_its_captures_and_says_what_it_skipped(tmp_path) -> None:
    (tmp_path / "gw1-01.pcap").write_bytes((LAB / "clean-delivery.pcap").read_bytes())
    (tmp_path / "notes.txt").write_text("not a capture")
    (tmp_path / "sub").mkdir()
    inputs, warnings, errors = expand_inputs([str(tmp_path)])
    assert inputs == [str(tmp_path / "gw1-01.pcap")]
    assert warnings == [f"{tmp_path}: 1 file(s) skipped, not pcap or pcapng: notes.txt"]
    assert errors == []


def test_a_folder_without_captures_is_an_unreadable_input(tmp_path) -> None:
    (tmp_path / "notes.txt").write_text("not a capture")
    inputs, _warnings, errors = expand_inputs([str(tmp_path)])
    assert inputs == []
    assert [str(e) for e in errors] == [f"{tmp_path}: a folder with no pcap or pcapng file in it"]

"""Captures that hold only part of what the network carried, checked against their truth.

one-side-client / one-side-server (tcpdump -Q out, 'src host'), capture-after-ehlo and
capture-after-handshake (tcpdump started late), capture-drops (a mirror that loses copies):
each has a complete capture of the same interface beside it (``<name>.reference.pcap``).
What is checked is what the capture layer must get right whatever the diagnosis: which
packets are there, which are not, and that tshark reads the complete reference as the client
lived it. No pcapsmtp code is involved.
"""

from __future__ import annotations

from collections import Counter

import pytest

from tests.captures import LAB

from .tsharkframes import missing, tcp_frames, truth, truth_or_skip

PARTIAL = sorted(
    p.name.removesuffix(".truth.json")
    for p in LAB.glob("*.truth.json")
    if (truth(p.name.removesuffix(".truth.json")) or {}).get("capture")
)
EXPECTED = {"one-side-client", "one-side-server", "capture-after-ehlo", "capture-after-greeting",
            "capture-after-handshake", "capture-drops", "icmp-quoted-streams"}  # fmt: skip


def test_every_partial_scenario_is_there():
    if not LAB.is_dir():
        pytest.skip("no captures/")
    assert set(PARTIAL) >= EXPECTED


@pytest.mark.oracle
@pytest.mark.parametrize("name", PARTIAL)
def test_capture_is_part_of_its_reference(name: str):
    """Every packet of the main capture is in the complete one; the truth's counts are right."""
    t = truth_or_skip(name)
    main = tcp_frames(f"{name}.pcap")
    reference = tcp_frames(t["other_files"]["reference"])
    extra = Counter(f.key for f in main) - Counter(f.key for f in reference)
    assert not extra, f"{name}.pcap has packets the reference lacks"
    assert t["capture"]["captured_tcp_frames"] == len(main)
    assert t["capture"]["reference_tcp_frames"] == len(reference)
    assert len(main) < len(reference), "a partial capture that lacks nothing"


@pytest.mark.oracle
@pytest.mark.parametrize("name", PARTIAL)
def test_direction(name: str):
    t = truth_or_skip(name)
    direction = t["capture"]["direction"]
    main = tcp_frames(f"{name}.pcap")
    reference = tcp_frames(t["other_files"]["reference"])
    sides = {f.side for f in main}
    if direction == "both":
        assert sides == {"client", "server"}
    else:
        side = direction.removesuffix("-only")
        assert sides == {side}
        # exactly the packets of that side: nothing of it is missing
        assert [f.key for f in main] == [f.key for f in reference if f.side == side]


def _first_session_frames(frames, session: dict) -> list:
    port = int(session["client"].rsplit(":", 1)[1])
    return [f for f in frames if f.client_port == port]


def _command(frame) -> str:
    return frame.payload.split(b"\r\n", 1)[0].decode("ascii", "replace")


@pytest.mark.oracle
@pytest.mark.parametrize("name", PARTIAL)
def test_capture_start(name: str):
    """A late capture starts exactly where its truth says; the reference has what it lacks."""
    t = truth_or_skip(name)
    capture = t["capture"]
    session = t["sessions"][0]
    main = _first_session_frames(tcp_frames(f"{name}.pcap"), session)
    reference = _first_session_frames(tcp_frames(t["other_files"]["reference"]), session)
    assert any(f.syn for f in reference)
    if capture["started"] == "before-session":
        assert "first_step" not in capture
        return
    assert capture["handshake_captured"] is False
    assert not any(f.syn for f in main)
    first = main[0]
    step = session["dialogue"][capture["first_step"]]
    if step["command"] is None:  # the greeting is the first packet
        assert first.side == "server"
        assert _command(first).startswith(f"{step['reply']} ")
    else:
        assert first.side == "client"
        assert _command(first).upper().startswith(step["command"])
        # no earlier reply or command is in the capture: not the greeting (nor EHLO if missed)
        texts = [_command(f).upper() for f in main if f.payload]
        assert not any(x.startswith("220 ") for x in texts)
        if step["command"] != "EHLO":
            assert not any(x.startswith(("EHLO", "HELO")) for x in texts)
    missed = [s["command"] for s in session["dialogue"][: capture["first_step"]]]
    started = {(): "after-handshake", (None,): "after-greeting", (None, "EHLO"): "after-ehlo"}
    assert capture["started"] == started[tuple(missed)]


@pytest.mark.oracle
def test_capture_drops_are_the_ones_the_truth_lists():
    name = "capture-drops"
    t = truth_or_skip(name)
    main = tcp_frames(f"{name}.pcap")
    reference = tcp_frames(t["other_files"]["reference"])
    lost = missing(reference, main)
    listed = t["capture"]["dropped_by_capture"]
    assert [d["reference_frame"] for d in listed] == [f.number for f in lost]
    assert [d["from"] for d in listed] == [f.side for f in lost]
    assert [d["tcp_len"] for d in listed] == [f.tcp_len for f in lost]
    # a hole in the server's replies, not only in ACKs
    assert any(d["from"] == "server" and d["tcp_len"] and d["text"][:3].isdigit() for d in listed)
    # the network delivered everything: every session of the client's ended in delivery
    assert all(s["outcome"] == "delivered" for s in t["sessions"])


@pytest.mark.oracle
def test_tshark_sees_the_holes_only_in_the_lossy_capture():
    from .tsharkframes import count

    name = "capture-drops"
    t = truth_or_skip(name)
    holes = "tcp.analysis.lost_segment || tcp.analysis.ack_lost_segment"
    assert count(f"{name}.pcap", holes) > 0
    assert count(t["other_files"]["reference"], holes) == 0


@pytest.mark.oracle
@pytest.mark.parametrize("name", PARTIAL)
def test_reference_holds_the_whole_dialogue(name: str):
    """tshark reads the complete capture as the client lived it (commands and reply codes)."""
    from .test_truth import NOT_COMMANDS, tshark_facts

    t = truth_or_skip(name)
    seen, _ = tshark_facts(LAB / t["other_files"]["reference"])
    for session in t["sessions"]:
        port = int(session["client"].rsplit(":", 1)[1])
        commands, replies = seen[port][0]
        want = [s["command"].upper()[:4] for s in session["dialogue"]
                if s["command"] not in NOT_COMMANDS]  # fmt: skip
        assert commands == want
        assert replies == [s["reply"] for s in session["dialogue"] if s["reply"] is not None]

"""``diff CLIENT_SIDE SERVER_SIDE --same-session`` on the lab's two-sided captures, and on
real captures rewritten as a NAT, a sequence-randomising firewall, an MSS clamp or an SMTP
inspection would (tests/diff/rewrite.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pcapsmtp.diff import DiffError, same_session
from pcapsmtp.diff.points import named_findings
from tests.diff.rewrite import Box, rewrite
from tests.diff.test_compare import lab


def codes(diff) -> list[str]:
    return [fact.code for fact in diff.facts]


def test_mtu_blackhole_named_between_the_points():
    diff = same_session(
        lab("mtu-blackhole"), str(Path(lab("mtu-blackhole")).with_suffix(".server.pcap"))
    )
    assert diff.pairing == "isn"
    assert diff.a.session.id == 2 and diff.b.session.id == 2
    assert named_findings(diff) == ["mtu-blackhole"]
    client = diff.transit[0]
    assert client.sender == "client" and client.vanished > 0
    # Every vanished segment is larger than every one that arrived.
    assert min(client.vanished_sizes) > max(client.arrived_sizes)
    fact = diff.facts[0]
    assert fact.code == "segments-vanished" and fact.finding == "mtu-blackhole"
    assert f"larger than {max(client.arrived_sizes)} bytes" in fact.summary
    assert fact.frames_a and not fact.frames_b
    # The server's data all arrived; nothing was forged.
    assert diff.transit[1].vanished == 0 and "rst-forged" not in codes(diff)
    assert "mtu-blackhole" in diff.verdict


def test_forged_rst_seen_only_at_the_client():
    diff = same_session(lab("rst-in-data"), lab("rst-in-data").replace(".pcap", ".server.pcap"))
    assert named_findings(diff) == ["middlebox-reset"]
    forged = next(f for f in diff.facts if f.code == "rst-forged")
    assert forged.frames_a and not forged.frames_b
    assert "TTL 64" in forged.summary and "62" in forged.summary
    # The box answered the segment carrying the trigger, which never reached the server.
    assert "never reached the server" in forged.summary
    assert "middlebox-reset" in diff.verdict and "forged" in diff.verdict
    assert "mtu-blackhole" not in named_findings(diff)


def test_ip_fragmentation_between_the_points():
    diff = same_session(
        lab("ip-fragmentation").replace(".pcap", ".client.pcap"), lab("ip-fragmentation")
    )
    assert named_findings(diff) == ["ip-fragmentation"]
    assert diff.transit[0].fragmented > 100 and diff.transit[0].vanished == 0


def test_sides_given_the_other_way_round():
    server = str(Path(lab("mtu-blackhole")).with_suffix(".server.pcap"))
    diff = same_session(server, lab("mtu-blackhole"))
    assert diff.a.capture.endswith("mtu-blackhole.pcap")
    assert any("other way round" in note for note in diff.notes)
    assert named_findings(diff) == ["mtu-blackhole"]


def test_clean_pair_reports_nothing(tmp_path):
    copy = tmp_path / "copy.pcap"
    copy.write_bytes(Path(lab("clean-delivery")).read_bytes())
    diff = same_session(lab("clean-delivery"), str(copy))
    assert diff.facts == [] and "Nothing was lost or changed" in diff.verdict


def test_nat_sequence_randomisation_and_mss_clamp(tmp_path):
    """The server side behind a box: new client address and port, both ISNs shifted, the
    client's MSS clamped. Pairing falls back to the client's first bytes."""
    box = Box(
        client_ip=bytes([192, 0, 2, 7]),
        client_port=61001,
        seq_shift={"client": 0x12345678, "server": 0x0ABCDEF0},
        mss=1380,
    )
    server_side = rewrite(Path(lab("mtu-blackhole")), tmp_path / "server.pcap", box)
    diff = same_session(lab("mtu-blackhole"), str(server_side))
    assert diff.pairing == "payload"
    assert diff.b.session.server.port == 25 and diff.b.session.client.port == 61001
    assert {"nat", "isn-rewritten", "mss-rewritten"} <= set(codes(diff))
    clamp = next(f for f in diff.facts if f.code == "mss-rewritten")
    assert "MSS 1460 and arrived with 1380" in clamp.summary
    # Nothing else: every segment is matched in spite of the shifted sequence numbers.
    assert all(t.vanished == 0 and t.appeared == 0 for t in diff.transit)
    # The two sessions of the capture pair with their own twins, in order.
    assert diff.a.session.id == diff.b.session.id == 2


def test_smtp_inspection_between_the_points(tmp_path):
    """The client side of an ASA-style inspection: banner and EHLO keywords masked."""
    client_side = rewrite(
        Path(lab("clean-delivery")), tmp_path / "client.pcap", Box(mask_smtp=True)
    )
    diff = same_session(str(client_side), lab("clean-delivery"))
    assert diff.pairing == "isn"
    assert {"banner-masked", "starttls-removed", "ehlo-masked"} <= set(codes(diff))
    assert named_findings(diff) == ["smtp-inspection"]
    masked = next(f for f in diff.facts if f.code == "ehlo-masked")
    assert "STARTTLS" in masked.summary and "XXXXXXXA" in masked.summary


def test_unrelated_captures_are_not_paired():
    with pytest.raises(DiffError, match="is also in"):
        same_session(lab("clean-delivery"), lab("unknown-user"))


def test_session_choice(tmp_path):
    server = str(Path(lab("mtu-blackhole")).with_suffix(".server.pcap"))
    diff = same_session(lab("mtu-blackhole"), server, client_session=1)
    assert (diff.a.session.id, diff.b.session.id) == (1, 1)
    assert diff.facts == []
    diff = same_session(lab("mtu-blackhole"), server, server_session=2)
    assert (diff.a.session.id, diff.b.session.id) == (2, 2)
    with pytest.raises(DiffError, match="no SMTP session 5"):
        same_session(lab("mtu-blackhole"), server, client_session=5)
    with pytest.raises(DiffError, match="not '-'"):
        same_session("-", server)

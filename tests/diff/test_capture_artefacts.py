"""What the capture did is not what the network did, in a diff too. A clean delivery against
itself captured with every frame twice (a SPAN port), with a forged RST volley the hosts
ignored, or with the frame of one reply lost by the capture: ``diff`` used to say the copy
"departs at step 2, EHLO: 2 retransmissions", that the RST volley "reset by the client
(frame 13, TTL 250)" ended the session, and "no reply" where the capture lost the reply.

The variants are built at run time from the lab's clean-delivery (tests/capture_edits.py)."""

from __future__ import annotations

from pathlib import Path

from pcapsmtp.diff import compare_captures
from pcapsmtp.report.diffdoc import diff_document
from pcapsmtp.report.difftext import cell, format_diff
from tests.capture_edits import _records, _write, drop_frames, one_direction, payloads
from tests.diff.test_compare import lab, param
from tests.smtp.test_outlived_reset import _forged_rst_after


def test_a_capture_that_saw_every_packet_twice_runs_like_the_original(tmp_path):
    source = lab("clean-delivery")
    doubled = _write(tmp_path / "doubled.pcap", [r for r in _records(Path(source)) for _ in "ab"])
    diff = compare_captures(source, str(doubled))
    assert diff.first_divergence is None, diff.verdict
    assert all(not (s.b and s.b.tcp.get("retransmissions")) for s in diff.steps)
    assert param(diff, "retransmissions").b == {"client": 0, "server": 0}
    assert [f.code for f in diff.only_in_b] == ["capture-duplicates"]
    assert "runs step for step like" in diff.verdict
    assert " retrans]" not in format_diff(diff)


def test_a_forged_rst_the_connection_outlived_did_not_end_it(tmp_path):
    source = Path(lab("clean-delivery"))
    client_data = [n for n, sport, _dport, _data in payloads(source) if sport != 25]
    edited = _forged_rst_after(source, tmp_path / "ignored-rst.pcap", client_data[2])
    diff = compare_captures(str(source), str(edited))
    end = diff.steps[-1]
    assert end.b.key == "end" and end.b.argument == "closed", end.b.label
    assert end.divergence is None
    assert "reset by" not in diff.verdict
    first = diff.first_divergence
    assert first is not None and not first.divergence.major
    assert first.b.tcp.get("ignored_resets") == 1 and "resets" not in first.b.tcp
    assert "RST the connection outlived" in first.divergence.detail
    [reset] = param(diff, "resets").b
    assert reset["ignored"] is True
    assert "(ignored)" in format_diff(diff)


def test_a_reply_the_capture_lost_is_not_a_reply_never_sent(tmp_path):
    source = Path(lab("clean-delivery"))
    [lost] = [n for n, sport, _dport, data in payloads(source) if sport == 25 and b"2.1.0" in data]
    edited = drop_frames(source, tmp_path / "lost-reply.pcap", {lost})
    diff = compare_captures(str(source), str(edited))
    first = diff.first_divergence
    assert first is not None and first.b.key == "MAIL"
    assert first.b.reply is None and first.b.reply_lost
    assert first.divergence.kind == "not-captured" and not first.divergence.major
    assert "the capture lost the reply (working: 250 2.1.0)" in diff.verdict
    assert "MAIL: no reply" not in diff.verdict
    assert cell(first.b, str) == "MAIL FROM:<alice@client.lab.test> → not captured"
    step = diff_document(diff)["steps"][first.index - 1]
    assert step["bad"]["note"] == "the capture lost the reply"


def test_a_reply_never_sent_is_still_no_reply(tmp_path):
    """Without a hole in the server's bytes (the client gave up waiting), no reply stays a
    departure."""
    diff = compare_captures(lab("clean-delivery"), lab("no-eod-reply"))
    missing = [s for s in diff.steps if s.b is not None and s.b.reply is None and s.b.frame]
    assert missing and not any(s.b.reply_lost for s in missing)


def test_a_capture_of_the_clients_packets_only_lacks_the_replies_it_did_not_lose(tmp_path):
    """One direction captured (tcpdump -Q out, a one-way SPAN): every reply is missing
    because the capture holds no server packet, not because the server sent none; the
    server's handshake options are unknown, not different."""
    source = Path(lab("clean-delivery"))
    edited = one_direction(source, tmp_path / "client-only.pcap", 25, sent_from_port=False)
    diff = compare_captures(str(source), str(edited))
    assert diff.b.session.one_sided == "client"
    assert not any(s.divergence and s.divergence.major for s in diff.steps), diff.verdict
    missing = [s.b for s in diff.steps if s.b is not None and s.b.key not in ("greeting", "end")]
    assert missing and all(s.reply_lost for s in missing)
    details = [s.divergence.detail for s in diff.steps if s.divergence]
    assert "failing session: the capture holds only the client's packets (working: 250 2.1.0)" in (
        details
    )
    assert "MSS from the server" not in diff.verdict and "no reply" not in diff.verdict


def test_a_lost_reply_noticed_in_the_next_commands_own_frame(tmp_path):
    """Exim: the 250 to MAIL is lost; the client's RCPT segment acknowledges the hole, so
    the hole is noticed in the frame of the next command, and the reply captured after it
    is paired with MAIL by its code: RCPT is the command left unanswered."""
    source = Path(lab("clean-delivery-exim"))
    [lost] = [
        n for n, sport, _dport, data in payloads(source) if sport == 25 and data == b"250 OK\r\n"
    ]
    edited = drop_frames(source, tmp_path / "lost-reply.pcap", {lost})
    diff = compare_captures(str(source), str(edited))
    assert not any(s.divergence and s.divergence.major for s in diff.steps), diff.verdict
    assert [s.b.key for s in diff.steps if s.b is not None and s.b.reply_lost] == ["RCPT"]


def test_a_message_and_its_reply_partly_lost_by_the_capture(tmp_path):
    """A segment of a large message and the 250 to it missing from the capture: the
    session is left incomplete by the capture's holes, not by the server."""
    source = Path(lab("mtu-healthy"))
    found = payloads(source)
    [_, final] = [n for n, sport, _dport, data in found if sport == 25 and b"queued" in data]
    body = [n for n, sport, _dport, data in found if sport != 25 and len(data) > 1000]
    edited = drop_frames(source, tmp_path / "lost-message.pcap", {body[len(body) // 2], final})
    diff = compare_captures(str(source), str(edited))
    assert diff.b.session.outcome == "incomplete"
    assert not any(s.divergence and s.divergence.major for s in diff.steps), diff.verdict
    [message] = [s for s in diff.steps if s.b is not None and s.b.key == "message"]
    assert message.b.incomplete and message.b.reply_lost == "the capture lost the reply"
    assert message.divergence.detail.endswith("the capture lost the reply (working: 250 2.0.0)")

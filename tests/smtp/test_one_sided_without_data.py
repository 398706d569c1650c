"""One direction only, when the side the capture holds sent no payload: a server's SYN/ACK
alone (the capture cut right after it), or a client's handshake ACK and FIN (a server that
greeted and closed, its packets unseen). The other side's packets existed, so the session
is one-sided and a capture-one-sided finding explains it; a client's SYN alone stays an
unanswered connection attempt (the server may never have answered)."""

from __future__ import annotations

from pcapsmtp.analysis import analyze
from pcapsmtp.diagnose.coverage import unexplained
from pcapsmtp.smtp.events import CLIENT, SERVER
from pcapsmtp.smtp.model import Outcome
from tests.capture_edits import keep, one_direction
from tests.diagnose.helpers import lab


def _analysed(path):
    result = analyze([str(path)])
    return list(result.sessions), result.findings


def test_a_servers_syn_ack_alone_is_one_sided(tmp_path):
    # clean-delivery.pcap frame 4 is the server's SYN/ACK (3 the SYN).
    edited = keep(lab("clean-delivery"), tmp_path / "synack.pcap", lambda n, _b: n == 4)
    sessions, findings = _analysed(edited)
    assert [s.one_sided for s in sessions] == [SERVER]
    assert [f.code for f in findings if f.session == sessions[0].id] == ["capture-one-sided"]
    assert unexplained(sessions, findings) == []


def test_a_clients_acks_without_data_are_one_sided(tmp_path):
    # retry-storm: every connection is greeted with 421 and closed; the client sends no
    # payload, only its handshake ACK, the ACK of the greeting and its FIN.
    edited = one_direction(lab("retry-storm"), tmp_path / "client.pcap", 25, False)
    sessions, findings = _analysed(edited)
    assert sessions and all(s.one_sided == CLIENT for s in sessions)
    assert all(s.outcome == Outcome.INCOMPLETE for s in sessions)
    assert unexplained(sessions, findings) == []


def test_a_clients_syn_alone_is_not_one_sided(tmp_path):
    edited = keep(lab("clean-delivery"), tmp_path / "syn.pcap", lambda n, _b: n == 3)
    sessions, findings = _analysed(edited)
    assert [s.one_sided for s in sessions] == [None]
    assert "capture-one-sided" not in {f.code for f in findings}

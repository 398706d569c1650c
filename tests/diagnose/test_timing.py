"""slow-server, server-timeout and client-timeout: the delays measured, compared with
RFC 5321 4.5.3.2, and the severity that says whether the delay cost the mail."""

from __future__ import annotations

import pytest

from pcapsmtp.diagnose import ERROR, INFO, WARNING
from pcapsmtp.smtp.events import END_OF_DATA
from tests.diagnose.helpers import findings, lab, number, session_of, truth

CLEAN = [
    "clean-delivery",
    "clean-delivery-exim",
    "ipv6",
    "pipelining",
    "bdat-chunking",
    "mtu-healthy",
    "smtps-465",
    "starttls-25",
    "starttls-auth-587",
]


def test_tarpit_greeting_held_back_15_seconds():
    path = lab("tarpit")
    [finding] = findings(path, "slow-server")
    session = session_of(path, 1)
    delay = truth("tarpit")["sessions"][0]["greeting_delay_s"]
    assert finding.severity == WARNING
    assert number(r"held its greeting back ([\d.]+) s", finding.summary) == pytest.approx(
        delay, abs=0.5
    )
    assert "looks like tarpitting" in finding.summary
    assert f"a deliberate {delay} s delay" in finding.summary
    assert number(r"within (\d+) ms", finding.summary) < 100
    assert "5 min (RFC 5321 4.5.3.2.1)" in finding.detail
    assert finding.frames == [session.greeting.frame]


def test_slow_greeting_that_is_not_round_is_not_called_tarpitting(public_capture):
    """Postfix behind AOL's name, 5.4 s to greet: a DNS lookup timing out, most likely."""
    [finding] = findings(public_capture("arkime-smtp-subject-gb2312-b.pcap"), "slow-server")
    assert number(r"took ([\d.]+) s to answer the greeting", finding.summary) == 5.4
    assert "tarpitting" not in finding.summary
    assert "resolver's default timeout is 5 s" in finding.detail
    assert finding.frames == [4]


@pytest.mark.parametrize("name", CLEAN)
def test_no_slow_server_on_clean_captures(name):
    assert not findings(lab(name), "slow-server")


def test_server_closes_idle_client_with_421_4_4_2():
    path = lab("server-timeout")
    [finding] = findings(path, "server-timeout")
    session = session_of(path, 1)
    notice = session.unsolicited[0]
    ehlo = next(c for c in session.commands if c.verb == "EHLO")
    assert truth("server-timeout")["sessions"][0]["dialogue"][-1]["reply"] == 421
    assert finding.severity == ERROR
    assert "421 4.4.2 server.lab.test Error: timeout exceeded" in finding.summary
    idle = number(r"silent ([\d.]+) s", finding.summary)
    assert idle == pytest.approx((notice.time_ns - ehlo.reply.time_ns) / 1e9, abs=0.05)
    assert idle == pytest.approx(10, abs=0.5)  # the lab's smtpd_timeout = 10s
    assert "after its reply to EHLO" in finding.summary
    assert "5 minutes RFC 5321 4.5.3.2.7" in finding.detail
    assert finding.frames == [ehlo.reply.frame, notice.frame]
    assert not findings(path, "client-timeout") and not findings(path, "soft-bounce")


def test_server_timeout_behind_a_black_hole_is_a_consequence():
    """The client's data was stuck in the black hole; the server saw silence after 354."""
    for name in ("mtu-blackhole", "mtu-blackhole.server.pcap"):
        path = lab(name)
        [finding] = findings(path, "server-timeout")
        assert finding.severity == WARNING, name
        assert "waiting for the message after its 354" in finding.summary
        assert findings(path, "mtu-blackhole")[0].severity == ERROR


def test_server_timeout_summary_agrees_with_its_detail_on_the_client_silence():
    """At the client the data shows sent and never acknowledged: the detail says the client
    was not idle, so the summary must not call it silent (issue 18)."""
    [finding] = findings(lab("mtu-blackhole"), "server-timeout")
    assert "The client was not idle" in finding.detail
    assert "client was silent" not in finding.summary
    assert "lost on the way" in finding.summary
    assert "stopped talking" not in " ".join(finding.next_steps)


def test_server_timeout_names_the_other_end_to_capture_at():
    """The capture point is judged from TTLs: advice names the end it was not taken at."""
    at_client = findings(lab("mtu-blackhole"), "server-timeout")[0].next_steps
    at_server = findings(lab("mtu-blackhole.server.pcap"), "server-timeout")[0].next_steps
    assert any("a capture at the server 10.77.2.2" in s for s in at_client)
    assert any("a capture at the client 10.77.1.2" in s for s in at_server)
    assert not any("at the server" in s for s in at_server)


def test_server_timeout_after_a_delivered_mail_is_info(public_capture):
    """AOL delivers the mail, the client stays without QUIT, 30 s later: 421 4.4.2."""
    [finding] = findings(public_capture("arkime-smtp-data-250.pcap"), "server-timeout")
    assert finding.severity == INFO
    assert number(r"silent ([\d.]+) s", finding.summary) == 30.0
    assert "after its reply to the end of data" in finding.summary
    assert "without QUIT" in finding.detail or "instead of sending QUIT" in finding.detail


def test_client_gives_up_waiting_for_the_reply_to_the_end_of_data():
    path = lab("no-eod-reply")
    [finding] = findings(path, "client-timeout")
    session = session_of(path, 1)
    [pending] = [c for c in session.commands if c.reply is None]
    assert pending.verb == END_OF_DATA
    assert truth("no-eod-reply")["sessions"][0]["dialogue"][-1] == {"command": ".", "reply": None}
    assert finding.severity == ERROR
    waited = number(r"after ([\d.]+) s", finding.summary)
    assert waited == pytest.approx(20, abs=0.5)  # the lab client's 20 s timeout
    assert "answer the end of data" in finding.summary
    assert "RFC 5321 allows 10 min" in finding.summary
    assert "4.5.3.2.6" in finding.detail
    assert "RFC 1047" in finding.detail  # a retry may deliver it twice
    assert pending.frame in finding.frames and session.client.closed_frame in finding.frames
    assert not findings(path, "server-timeout") and not findings(path, "slow-server")


@pytest.mark.parametrize("name", [*CLEAN, "tarpit", "zero-window", "greylisting"])
def test_no_timeouts_where_both_sides_kept_talking(name):
    path = lab(name)
    assert not findings(path, "client-timeout") and not findings(path, "server-timeout")


def test_black_hole_at_the_receiver_asks_for_a_capture_at_the_client():
    [finding] = findings(lab("mtu-blackhole.server.pcap"), "mtu-blackhole")
    assert "confirm with a capture at the client 10.77.1.2" in finding.detail
    [sender] = findings(lab("mtu-blackhole"), "mtu-blackhole")
    assert "taken at the sending side (judged from TTLs)" in sender.detail

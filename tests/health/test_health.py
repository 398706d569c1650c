"""The per-destination and per-client view over the lab's captures: the counts a mail admin
would make by hand from the same sessions."""

from __future__ import annotations

import json

import pytest

from pcapsmtp.analysis import analyze
from pcapsmtp.diagnose.health import id_ranges, summarize
from pcapsmtp.report.health import format_health, health_markdown
from pcapsmtp.report.jsondoc import analysis_document
from tests.captures import LAB, analysed

pytestmark = pytest.mark.skipif(not (LAB / "greylisting.pcap").exists(), reason="no lab captures")


def _only(name: str):
    health = summarize(analysed(LAB / name).sessions)
    (destination,) = health.destinations
    (client,) = health.clients
    return destination, client


def test_greylisting_deferred_then_delivered():
    destination, client = _only("greylisting.pcap")
    assert destination.name == "10.77.2.2:25" and client.name == "10.77.1.2"
    assert destination.attempts == 2 and [n for _c, n in destination.sessions] == [1, 2]
    assert destination.outcomes == {"deferred": 1, "delivered": 1}
    assert destination.messages == {"deferred": 1, "delivered": 1}
    (grey,) = destination.negative_replies()
    assert (grey.code, grey.enhanced, grey.count) == (451, "4.7.1", 1)
    assert grey.meaning.startswith("greylisted")
    assert destination.replies[220] == 2 and destination.replies[221] == 2
    assert client.outcomes == destination.outcomes and client.peers == {"10.77.2.2:25"}


def test_retry_storm_240_deferred_by_the_greeting():
    destination, _client = _only("retry-storm.pcap")
    assert destination.attempts == 240
    assert destination.outcomes == {"deferred": 240}
    assert destination.messages == {}
    assert destination.replies == {421: 240}
    assert [(n.label, n.count) for n in destination.negative_replies()] == [("421 4.3.2", 240)]
    span = (destination.last_ns - destination.first_ns) / 1e9
    assert 40 < span < 60


@pytest.mark.parametrize(
    ("name", "outcome", "count"),
    [("connect-refused.pcap", "refused", 3), ("connect-timeout.pcap", "unreachable", 1)],
)
def test_connect_failures(name, outcome, count):
    destination, _client = _only(name)
    assert destination.outcomes == {outcome: count}
    assert destination.connect_failures == count and destination.replies == {}


def test_every_output_has_the_view():
    analysis = analyze([str(LAB / "greylisting.pcap"), str(LAB / "connect-refused.pcap")])
    health = summarize(analysis.sessions)
    text = format_health(health)
    row = next(line for line in text.splitlines() if line.startswith("10.77.2.2:25"))
    assert row.split()[:8] == ["10.77.2.2:25", "5", "1", "1", "0", "3", "0", "0"]
    assert "451 4.7.1 ×1" in row
    assert "| 10.77.1.2 " in health_markdown(health)
    document = json.loads(json.dumps(analysis_document(analysis)))
    (destination,) = document["destinations"]
    assert destination["attempts"] == 5 and destination["refused"] == 3
    assert destination["negative_replies"][0]["code"] == 451
    assert document["clients"][0]["servers"] == ["10.77.2.2:25"]


def test_id_ranges():
    assert id_ranges([1, 2, 3, 5, 7, 8]) == "1-3, 5, 7-8"
    assert id_ranges(range(1, 241)) == "1-240"
    assert id_ranges([]) == ""
    assert id_ranges(range(0, 40, 2), limit=2) == "0, 2, …"

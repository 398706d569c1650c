"""End to end on the lab's captures: what we report equals what the lab's client knows.

The ground truth (captures/<case>.truth.json) comes from the lab's own client transcript
and the faults it injected, never from this tool. Without a key log, as here, the steps inside
TLS are unknown and the truth's ``outcome_without_keys`` applies; tests/e2e/test_decrypt.py
compares them with the key log.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pcapsmtp.report.sessions import endpoint_name
from pcapsmtp.smtp.events import AUTH_RESPONSE, GREETING
from tests import captures
from tests.captures import LAB, TRUTHS


def _truth_id(path: Path) -> str:
    return path.name.removesuffix(".truth.json")


@pytest.fixture(scope="module")
def analysed():
    def get(truth_path: Path):
        truth = json.loads(truth_path.read_text())
        return truth, captures.analysed(LAB / f"{truth['scenario']}.pcap")

    return get


def _by_endpoints(analysis):
    return {(endpoint_name(s.client), endpoint_name(s.server)): s for s in analysis.sessions}


def _our_steps(session) -> list[tuple[str | None, int | None]]:
    """Greeting and commands with their replies; replies the client never asked for (a 421
    while it was still sending) are not in its transcript, so they are left out here."""
    steps = []
    if session.greeting is not None:
        steps.append((None, session.greeting.code))
    for command in session.commands:
        if command.verb == GREETING:
            continue
        verb = "AUTH-RESPONSE" if command.verb == AUTH_RESPONSE else command.verb
        steps.append((verb, command.reply.code if command.reply else None))
    return steps


def _skip_partial(truth: dict) -> None:
    """A capture that lacks part of the dialogue on purpose (one direction, a late start,
    capture drops: its truth has a ``capture`` key) is compared with its truth by what it
    holds in tests/smtp/test_partial_captures.py, not step for step here."""
    if "capture" in truth:
        pytest.skip("partial capture: see tests/smtp/test_partial_captures.py")


@pytest.mark.skipif(not TRUTHS, reason="no lab captures")
@pytest.mark.parametrize("truth_path", TRUTHS, ids=_truth_id)
def test_sessions_match_the_lab_truth(truth_path, analysed):
    truth, analysis = analysed(truth_path)
    _skip_partial(truth)
    ours = _by_endpoints(analysis)
    assert len(analysis.sessions) == len(truth["sessions"])
    for expected in truth["sessions"]:
        key = (expected["client"], expected["server"])
        assert key in ours, f"no session {key}"
        session = ours[key]
        clear = [s for s in expected["dialogue"] if not s.get("encrypted")]
        steps = [(s["command"], s["reply"]) for s in clear]
        if expected["tls"] == "implicit":
            steps = []
        told = [reply for command, reply in steps[1:] if command is None]
        steps = [step for i, step in enumerate(steps) if i == 0 or step[0] is not None]
        assert _our_steps(session) == steps, key
        assert [r.code for r in session.unsolicited][: len(told)] == told
        if steps and expected["helo"] is not None:
            assert session.helo == expected["helo"]
        if clear and clear == expected["dialogue"] and not session.unsolicited:
            assert session.last_reply.code == expected["last_reply"]
        outcome = expected["outcome_without_keys"] or expected["outcome"]
        assert session.outcome == outcome, (key, session.outcome_reason)


@pytest.mark.skipif(not TRUTHS, reason="no lab captures")
@pytest.mark.parametrize("truth_path", TRUTHS, ids=_truth_id)
def test_transactions_match_the_lab_truth(truth_path, analysed):
    truth, analysis = analysed(truth_path)
    _skip_partial(truth)
    ours = _by_endpoints(analysis)
    for expected in truth["sessions"]:
        if expected["tls"] is not None:
            continue
        session = ours[(expected["client"], expected["server"])]
        wanted = expected.get("transactions", [])
        got = [t for t in session.transactions if t.mail_from is not None or t.rcpt_to]
        assert len(got) == len(wanted)
        for ours_t, truth_t in zip(got, wanted, strict=True):
            if any(c.truncated for c in session.commands):
                continue  # the snap length cut the commands themselves
            assert ours_t.mail_from == truth_t["mail_from"]
            assert [(r.address, r.code) for r in ours_t.rcpt_to] == [
                (r["address"], r["code"]) for r in truth_t["rcpt_to"]
            ]
            assert (ours_t.final.code if ours_t.final else None) == truth_t["code"]
            if truth_t.get("subject") is not None and ours_t.message is not None:
                assert ours_t.message.subject == truth_t["subject"]
            if truth_t.get("size") is not None and ours_t.message_complete:
                assert ours_t.size == truth_t["size"]
            assert ours_t.queue_id == truth_t.get("queue_id")

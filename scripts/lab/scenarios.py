"""The scenarios: each makes captures/<name>.pcap and captures/<name>.truth.json.

A scenario function builds its network, starts its servers and captures, drives the client
inside the client namespace and calls ``run.finish(...)`` with what the lab knows.
"""

from __future__ import annotations

from collections.abc import Callable

from client import HELO, LabSMTP, make_message, run_session
from harness import TROUBLE, Run
from labnet import CLIENT, SERVER_IP, netns
from mta import SERVER_NAME

SCENARIOS: dict[str, Callable[[Run], None]] = {}

ALICE = f"alice@{HELO}"
BOB = f"bob@{SERVER_NAME}"


def scenario(name: str):
    def register(fn):
        SCENARIOS[name] = fn
        return fn

    return register


def absent(*but: str) -> list[str]:
    """Every trouble finding except ``but``."""
    return [c for c in TROUBLE if c not in but]


def simple_mail(subject: str, rcpt: list[str] | None = None, seed: int = 1, **kw):
    """A body for run_session: EHLO, one transaction, QUIT."""
    rcpt = rcpt or [BOB]

    def body(smtp: LabSMTP) -> None:
        smtp.ehlo()
        msg = make_message(subject, ALICE, rcpt, seed=seed, **kw)
        smtp.transaction(ALICE, rcpt, msg, subject)
        smtp.quit()

    return body


def session(run: Run, body, port: int = 25, host: str = SERVER_IP, **kw) -> LabSMTP:
    with netns(CLIENT):
        smtp = run_session(LabSMTP((host, port), **kw), body)
    return smtp


@scenario("clean-delivery")
def clean_delivery(run: Run) -> None:
    """one short mail to Postfix on port 25, no faults"""
    run.network()
    run.start_postfix()
    run.capture()
    smtp = session(run, simple_mail("lab clean delivery"))
    run.sessions.append(smtp.session())
    run.finish(description=clean_delivery.__doc__, absent=absent())

"""A capture that holds every packet twice (a SPAN port mirroring both ports, a bridge and
its member) holds each DNS query and response twice too. A copy is not the client's retry
and a second response is not a lookup of its own: the DNS findings are the original's. A
client that really asks again (the same query, a timeout later) still retries."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from pcapsmtp.analysis import analyze
from pcapsmtp.capture import DnsDatagram, open_capture, packets
from pcapsmtp.capture.model import CaptureInfo
from pcapsmtp.dns import read_dns
from tests.capture_edits import _records, _write
from tests.diagnose.helpers import lab

DNS_CODES = ("dns-lookup-failed", "dns-timeout", "dns-no-mx", "dns-mx-mismatch")


def _datagrams(path: str) -> list[DnsDatagram]:
    found: list[DnsDatagram] = []
    with open_capture(path) as capture:
        for _ in packets(capture, found):
            pass
    return found


def _dns_findings(path: Path | str) -> set[tuple]:
    result = analyze([str(path)])
    return {(f.code, f.severity, f.session) for f in result.findings if f.code in DNS_CODES}


def test_every_frame_twice_gives_the_original_dns_findings(tmp_path):
    for name in ("dns-lookup-failed", "dns-no-mx", "dns-timeout"):
        source = Path(lab(name))
        doubled = _write(
            tmp_path / f"{name}.dup.pcap", [r for r in _records(source) for _ in (0, 1)]
        )
        assert _dns_findings(doubled) == _dns_findings(source), name


def test_a_copy_is_no_retry_and_a_query_asked_again_is_one():
    datagrams = _datagrams(lab("dns-lookup-failed"))
    first = datagrams[0]
    copy = dataclasses.replace(first, frame=first.frame + 1, time_ns=first.time_ns + 100_000)
    again = dataclasses.replace(first, frame=first.frame + 2, time_ns=first.time_ns + 10**9)
    [lookup, *_] = read_dns([first, copy, *datagrams[1:]], CaptureInfo("x"))
    assert [q.frame for q in lookup.queries] == [first.frame]
    [lookup, *_] = read_dns([first, again, *datagrams[1:]], CaptureInfo("x"))
    assert [q.frame for q in lookup.queries] == [first.frame, first.frame + 2]

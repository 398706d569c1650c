"""One scenario's run: its network, servers and captures, and the truth file written at the end."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from labnet import CLIENT, SERVER, Lab, Topology
from mta import Postfix

OUTCOMES = {
    "delivered",
    "rejected",
    "deferred",
    "reset",
    "timeout",
    "tls-failed",
    "refused",
    "unreachable",
    "incomplete",
    "encrypted",
    "no-smtp",
}

# DESIGN.md finding codes (plus "retry-storm", which the issue asks for).
FINDINGS = {
    "mtu-blackhole",
    "icmp-frag-needed",
    "ip-fragmentation",
    "middlebox-reset",
    "reset",
    "connect-failed",
    "connect-refused",
    "retransmissions",
    "zero-window",
    "capture-loss",
    "capture-truncated",
    "tls-handshake-failed",
    "hard-bounce",
    "soft-bounce",
    "size-exceeded",
    "auth-failed",
    "slow-server",
    "server-timeout",
    "client-timeout",
    "smtp-inspection",
    "incomplete-session",
    "retry-storm",
    "dns-lookup-failed",
    "dns-timeout",
    "dns-no-mx",
    "dns-mx-mismatch",
    "dns-slow-greeting",
}

SEVERITIES = {"error", "warning", "info"}
# The ``capture`` truth key: which packets of the sessions the main capture holds.
DIRECTIONS = {"both", "client-only", "server-only"}
STARTS = {"before-session", "after-handshake", "after-greeting", "after-ehlo"}

# What must never be said of a capture in which nothing went wrong.
TROUBLE = sorted(FINDINGS - {"icmp-frag-needed"})

INTERFACES = {CLIENT: "eth0", SERVER: "eth0", "router": "lan0"}


class Run:
    """Everything one scenario starts; ``close()`` ends it all, whatever happened."""

    def __init__(self, name: str, out: Path, work: Path):
        self.name = name
        self.out = out
        self.work = work
        self.lab: Lab | None = None
        self.postfix: Postfix | None = None
        self.captures: dict[str, tuple[subprocess.Popen, Path]] = {}
        self.extra_stops: list[Callable[[], None]] = []
        self.sessions: list[dict] = []
        self.truth: dict | None = None
        self.main_point = CLIENT  # whose capture is <name>.pcap; the others are <name>.<point>.pcap

    # -- setting up -------------------------------------------------------------------------
    def network(self, topo: Topology | None = None) -> Lab:
        self.lab = Lab(topo or Topology(), self.work)
        self.lab.build()
        return self.lab

    def start_postfix(self, configure: Callable[[Postfix], None] | None = None) -> Postfix:
        self.postfix = Postfix(self.lab, self.work, ipv6=self.lab.topo.ipv6)
        if configure:
            configure(self.postfix)
        self.postfix.start()
        return self.postfix

    def capture(
        self,
        point: str = CLIENT,
        snaplen: int = 0,
        options: tuple[str, ...] = (),
        expression: str | None = None,
        interface: str | None = None,
        label: str | None = None,
    ) -> Path:
        """Start tcpdump at ``point``: <name>.pcap at the main point, else <name>.<label>.pcap.

        ``label`` (default: the point) names a second capture taken in the same namespace,
        such as the complete ``reference`` beside a one-sided or lossy main capture.
        """
        label = label or point
        main = label == self.main_point
        path = self.work / (f"{self.name}.pcap" if main else f"{self.name}.{label}.pcap")
        proc = self.lab.capture(
            point, interface or INTERFACES[point], path, snaplen, options, expression
        )
        self.captures[label] = (proc, path)
        return path

    # -- finishing ----------------------------------------------------------------------------
    def finish(self, **truth) -> None:
        """Stop the captures and servers, copy the artefacts into ``out`` and write the truth."""
        time.sleep(1)
        if self.postfix:
            self.postfix.settle()
        for proc, _ in self.captures.values():
            self.lab.stop_capture(proc)
        for stop in self.extra_stops:
            stop()
        self.extra_stops = []
        if self.postfix:
            self.postfix.stop()
        files = {}
        for point, (_, path) in self.captures.items():
            shutil.copyfile(path, self.out / path.name)
            files[point] = path.name
        maillog = None
        if self.postfix:
            maillog = f"{self.name}.maillog"
            shutil.copyfile(self.postfix.maillog, self.out / maillog)
        point = self.main_point
        doc = {
            "scenario": self.name,
            "description": truth.pop("description"),
            "capture_point": point,
            "server_software": truth.pop("server_software", "Postfix" if self.postfix else None),
            "fault": truth.pop("fault", None),
            "credentials": truth.pop("credentials", None),
            "keylog": truth.pop("keylog", None),
            "maillog": maillog,
            "other_files": {p: f for p, f in files.items() if p != point} or None,
            "sessions": self.sessions,
            "expected_findings": truth.pop("expected", []),
            "absent_findings": truth.pop("absent", []),
        }
        doc.update(truth)
        check_truth(doc)
        (self.out / f"{self.name}.truth.json").write_text(
            json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
        )
        self.truth = doc

    def close(self) -> None:
        for stop in self.extra_stops:
            try:
                stop()
            except Exception as exc:  # cleanup goes on whatever one step says
                print(f"  cleanup: {exc}")
        if self.postfix:
            self.postfix.stop()
        if self.lab:
            self.lab.close()


def check_truth(doc: dict) -> None:
    """Refuse to write a truth file that contradicts itself."""
    for s in doc["sessions"]:
        assert s["outcome"] in OUTCOMES, s["outcome"]
        assert s["outcome_without_keys"] in (None, *OUTCOMES)
    for code in doc["expected_findings"] + doc["absent_findings"]:
        assert code in FINDINGS, code
    assert not set(doc["expected_findings"]) & set(doc["absent_findings"])
    for code, severity in doc.get("expected_severity", {}).items():
        assert code in doc["expected_findings"] and severity in SEVERITIES, (code, severity)
    capture = doc.get("capture")
    if capture:
        assert capture["direction"] in DIRECTIONS, capture
        assert capture["started"] in STARTS, capture

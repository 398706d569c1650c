"""The lab's network: four namespaces joined by veth pairs, and captures inside them.

    client ── router ── core ── server
    10.77.1.0/24     10.77.3.0/24     10.77.2.0/24
    fd77:1::/64      fd77:3::/64      fd77:2::/64

The router is where faults live (firewall rules, loss, the inspection proxy); the
router–core link is "the middle of the path" whose MTU can be made smaller than the
1500-byte links at both ends (a path-MTU black hole needs exactly that). No namespace
has a default route: each only knows the lab's own prefixes, so nothing can leave.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

PREFIX = "pcl-"
CLIENT, ROUTER, CORE, SERVER = "client", "router", "core", "server"
NAMESPACES = (CLIENT, ROUTER, CORE, SERVER)

CLIENT_IP, SERVER_IP = "10.77.1.2", "10.77.2.2"
CLIENT_IP6, SERVER_IP6 = "fd77:1::2", "fd77:2::2"
ROUTER_IP = "10.77.1.1"
LAB_NET4, LAB_NET6 = "10.77.0.0/16", "fd77::/16"

# (namespace, interface, IPv4, IPv6) for each end of the three links.
LINKS = (
    (
        (CLIENT, "eth0", "10.77.1.2/24", "fd77:1::2/64"),
        (ROUTER, "lan0", "10.77.1.1/24", "fd77:1::1/64"),
    ),
    (
        (ROUTER, "wan0", "10.77.3.1/24", "fd77:3::1/64"),
        (CORE, "wan0", "10.77.3.2/24", "fd77:3::2/64"),
    ),
    (
        (CORE, "lan0", "10.77.2.1/24", "fd77:2::1/64"),
        (SERVER, "eth0", "10.77.2.2/24", "fd77:2::2/64"),
    ),
)
ROUTES = {
    CLIENT: [(LAB_NET4, "10.77.1.1"), (LAB_NET6, "fd77:1::1")],
    ROUTER: [("10.77.2.0/24", "10.77.3.2"), ("fd77:2::/64", "fd77:3::2")],
    CORE: [("10.77.1.0/24", "10.77.3.1"), ("fd77:1::/64", "fd77:3::1")],
    SERVER: [(LAB_NET4, "10.77.2.1"), (LAB_NET6, "fd77:2::1")],
}

# Short TCP timers so that every failure ends within the two-minute budget.
TCP_SYSCTLS = {
    "net.ipv4.tcp_syn_retries": "3",  # ~15 s before connect() gives up
    "net.ipv4.tcp_synack_retries": "3",
    "net.ipv4.tcp_retries2": "6",  # ~25 s of retransmissions before a send fails
    "net.ipv4.tcp_fin_timeout": "10",
    "net.ipv4.tcp_mtu_probing": "0",  # no RFC 4821 recovery: a black hole stays black
    "net.ipv4.tcp_ecn": "0",
}

CLONE_NEWNET = 0x40000000


def sh(*args: str, check: bool = True, **kw) -> subprocess.CompletedProcess:
    """Run a command, raising with its stderr when it fails."""
    proc = subprocess.run(args, capture_output=True, text=True, **kw)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: {proc.stderr.strip() or proc.returncode}")
    return proc


def nsname(role: str) -> str:
    return PREFIX + role


def in_ns(role: str, *args: str) -> list[str]:
    """The argv that runs ``args`` inside the lab namespace ``role``."""
    return ["ip", "netns", "exec", nsname(role), *args]


_libc = ctypes.CDLL(None, use_errno=True)


@contextlib.contextmanager
def netns(role: str):
    """Run the body with this thread in the lab namespace ``role`` (sockets made there stay)."""
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open(f"/run/netns/{nsname(role)}", os.O_RDONLY)
    try:
        if _libc.setns(target, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns {role}")
        yield
    finally:
        if _libc.setns(home, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns back home")
        os.close(target)
        os.close(home)


def existing_lab_namespaces() -> list[str]:
    out = sh("ip", "netns", "list").stdout
    return [line.split()[0] for line in out.splitlines() if line.startswith(PREFIX)]


@dataclass
class Topology:
    """Options for one scenario's network."""

    middle_mtu: int = 1500
    ipv6: bool = False
    client_sysctls: dict[str, str] = field(default_factory=dict)


class Lab:
    """Builds the namespaces; ``close()`` removes them and stops every process it started."""

    def __init__(self, topo: Topology, workdir: Path):
        self.topo = topo
        self.workdir = workdir
        self.procs: list[tuple[str, subprocess.Popen]] = []

    # -- building -------------------------------------------------------------------------
    def build(self) -> None:
        for ns in existing_lab_namespaces():  # left over by an interrupted run of ours
            sh("ip", "netns", "del", ns)
        for role in NAMESPACES:
            sh("ip", "netns", "add", nsname(role))
            self.sysctl(role, "net.ipv6.conf.all.disable_ipv6", "0" if self.topo.ipv6 else "1")
            self.sysctl(role, "net.ipv6.conf.default.disable_ipv6", "0" if self.topo.ipv6 else "1")
            self.sysctl(role, "net.ipv6.conf.default.accept_dad", "0")
            self.sysctl(role, "net.ipv6.conf.default.router_solicitations", "0")
            self.sysctl(role, "net.ipv6.conf.default.accept_ra", "0")
            for key, value in TCP_SYSCTLS.items():
                self.sysctl(role, key, value)
            sh(*in_ns(role, "ip", "link", "set", "lo", "up"))
        for role in (ROUTER, CORE):
            self.sysctl(role, "net.ipv4.ip_forward", "1")
            if self.topo.ipv6:
                self.sysctl(role, "net.ipv6.conf.all.forwarding", "1")
        # A 1 MB initial receive buffer holds a whole lab message, so a busy Postfix never
        # shows a zero window in scenarios where none belongs (zero-window sets its own).
        self.sysctl(SERVER, "net.ipv4.tcp_rmem", "4096 1048576 6291456")
        for key, value in self.topo.client_sysctls.items():
            self.sysctl(CLIENT, key, value)
        for a, b in LINKS:
            self._link(a, b)
        for role, routes in ROUTES.items():
            for prefix, via in routes:
                if ":" in prefix and not self.topo.ipv6:
                    continue
                sh(*in_ns(role, "ip", "route", "add", prefix, "via", via))

    def _link(self, a, b) -> None:
        (ns_a, if_a, _, _), (ns_b, if_b, _, _) = a, b
        sh(
            "ip",
            "link",
            "add",
            "name",
            if_a,
            "netns",
            nsname(ns_a),
            "type",
            "veth",
            "peer",
            "name",
            if_b,
            "netns",
            nsname(ns_b),
        )
        middle = {ns_a, ns_b} == {ROUTER, CORE}
        for ns, ifname, v4, v6 in (a, b):
            mtu = str(self.topo.middle_mtu if middle else 1500)
            sh(*in_ns(ns, "ip", "link", "set", ifname, "mtu", mtu))
            # A real wire carries no 64 KB super-segments and no unfinished checksums.
            sh(
                *in_ns(
                    ns,
                    "ethtool",
                    "-K",
                    ifname,
                    "tso",
                    "off",
                    "gso",
                    "off",
                    "gro",
                    "off",
                    "tx",
                    "off",
                    "rx",
                    "off",
                ),
                check=False,
            )
            sh(*in_ns(ns, "ip", "addr", "add", v4, "dev", ifname))
            if self.topo.ipv6:
                sh(*in_ns(ns, "ip", "addr", "add", v6, "dev", ifname, "nodad"))
            sh(*in_ns(ns, "ip", "link", "set", ifname, "up"))

    def sysctl(self, role: str, key: str, value: str) -> None:
        sh(*in_ns(role, "sysctl", "-q", "-w", f"{key}={value}"))

    def iptables(self, role: str, *rule: str, v6: bool = False) -> None:
        sh(*in_ns(role, "ip6tables" if v6 else "iptables", *rule))

    # -- processes ------------------------------------------------------------------------
    def spawn(self, role: str, argv: list[str], name: str, **kw) -> subprocess.Popen:
        """Start ``argv`` inside namespace ``role``; remembered so close() can end it by PID."""
        proc = subprocess.Popen(in_ns(role, *argv), **kw)
        self.procs.append((name, proc))
        return proc

    def stop(self, proc: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 10) -> None:
        if proc.poll() is None:
            os.kill(proc.pid, sig)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
        self.procs = [(n, p) for n, p in self.procs if p is not proc]

    def capture(
        self,
        role: str,
        ifname: str,
        path: Path,
        snaplen: int = 0,
        options: tuple[str, ...] = (),
        expression: str | None = None,
    ) -> subprocess.Popen:
        """Start tcpdump on a lab interface and wait until it listens.

        ``options`` go before ``-w`` (``-Q out``); ``expression`` is a pcap filter
        (``src host 10.77.2.2``): both make one-sided captures the way people make them.
        """
        proc = self.spawn(
            role,
            [
                "tcpdump",
                "-i",
                ifname,
                "-n",
                "-s",
                str(snaplen),
                "-U",
                "-Z",
                "root",
                *options,
                "-w",
                str(path),
                *([expression] if expression else []),
            ],
            f"tcpdump {role}",
            stderr=subprocess.PIPE,
            text=True,
        )
        line = proc.stderr.readline()
        if "listening on" not in line:
            raise RuntimeError(f"tcpdump in {role}: {line.strip()}")
        return proc

    def stop_capture(self, proc: subprocess.Popen) -> None:
        time.sleep(0.5)  # let the last packets reach the file
        self.stop(proc, signal.SIGINT)
        if proc.stderr:
            proc.stderr.close()

    def close(self) -> None:
        for _, proc in list(reversed(self.procs)):
            self.stop(proc)
        for ns in existing_lab_namespaces():
            sh("ip", "netns", "del", ns, check=False)

"""The DNS rules on the lab's DNS captures (unbound serving broken zones; what dig told the
client is the truth), against tshark's frames for the same lookups; and what they must not
say: nothing where the capture cannot tell (responses missing, an MX host's address not in
the capture), nothing on any capture whose truth does not expect it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pcapsmtp.analysis import analyze
from pcapsmtp.diagnose import ERROR, INFO, WARNING
from tests import tshark
from tests.capture_edits import keep
from tests.captures import LAB, PUBLIC, TRUTHS, all_captures, capture_id
from tests.diagnose.helpers import analysis, lab, truth

DNS_CODES = {
    "dns-lookup-failed",
    "dns-timeout",
    "dns-no-mx",
    "dns-mx-mismatch",
    "dns-slow-greeting",
}


def _dns_findings(path: str):
    return [f for f in analysis(path).findings if f.code in DNS_CODES]


def _frames(path: str, display_filter: str) -> list[int]:
    return [int(row[0]) for row in tshark.fields(Path(path), ["frame.number"], display_filter)]


@tshark.needs_tshark
def test_each_failed_mx_lookup_is_named_with_its_frames_and_status():
    path = lab("dns-lookup-failed")
    found = {tuple(f.frames): f for f in _dns_findings(path)}
    failed = [t for t in truth("dns-lookup-failed")["dns"] if t["status"] != "NOERROR"]
    assert len(failed) == 3 and len(found) == 3
    for asked in failed:
        frames = tuple(_frames(path, f"dns.id == {asked['id']}"))
        finding = found[frames]
        assert (finding.code, finding.severity, finding.session) == (
            "dns-lookup-failed",
            ERROR,
            None,
        )
        assert asked["name"] in finding.summary and asked["status"] in finding.summary
        assert f"dig @10.77.2.1 MX {asked['name']}" in " ".join(finding.next_steps)
        assert f"dns.id == 0x{asked['id']:04x}" in finding.detail


@tshark.needs_tshark
def test_a_server_checking_its_senders_domain_explains_the_refusal():
    """Server side: Postfix's reject_unknown_sender_domain asks MX, A and AAAA of the
    sender's domain, all NXDOMAIN, and defers the mail: one finding, on the session."""
    path = lab("dns-sender-domain")
    [finding] = _dns_findings(path)
    assert (finding.code, finding.severity, finding.session) == ("dns-lookup-failed", ERROR, 1)
    assert finding.frames == _frames(path, 'dns.qry.name == "gone.lab.test"')
    assert "sender domain" in finding.summary and "NXDOMAIN" in finding.summary
    [session] = analysis(path).sessions
    assert truth("dns-sender-domain")["sessions"][0]["outcome"] == session.outcome == "deferred"


@tshark.needs_tshark
def test_an_unanswered_mx_lookup_and_its_retry_are_a_timeout():
    path = lab("dns-timeout")
    [finding] = _dns_findings(path)
    assert (finding.code, finding.severity) == ("dns-timeout", ERROR)
    assert finding.frames == _frames(path, 'dns.qry.name == "silent.test"')
    assert "no answer (2 tries)" in finding.summary


@tshark.needs_tshark
def test_no_mx_is_info_and_a_null_mx_an_error():
    path = lab("dns-no-mx")
    by_severity = {f.severity: f for f in _dns_findings(path)}
    assert set(by_severity) == {ERROR, INFO}
    assert by_severity[ERROR].frames == _frames(path, 'dns.qry.name == "nullmx.lab.test"')
    assert "RFC 7505" in by_severity[ERROR].summary
    plain = _frames(path, 'dns.qry.name == "plain.lab.test" && dns.qry.type == 15')
    assert by_severity[INFO].frames == plain
    assert "10.77.2.2" in by_severity[INFO].detail  # the fallback address the capture shows


def test_a_connection_elsewhere_than_the_mx_is_named_on_its_session():
    path = lab("dns-mx-mismatch")
    told = truth("dns-mx-mismatch")
    [finding] = _dns_findings(path)
    assert (finding.code, finding.severity, finding.session) == ("dns-mx-mismatch", WARNING, 1)
    mx_address = told["dns"][1]["answers"][0]
    assert told["sessions"][0]["server"].startswith("10.77.2.2")
    assert "10.77.2.2" in finding.summary and mx_address in finding.summary


@tshark.needs_tshark
def test_a_slow_ptr_answer_is_why_the_greeting_was_late():
    path = lab("dns-slow-ptr")
    delay = truth("dns-slow-ptr")["slow_ptr_delay_s"]
    [finding] = _dns_findings(path)
    assert (finding.code, finding.severity, finding.session) == ("dns-slow-greeting", WARNING, 1)
    ptr = _frames(path, "dns.qry.type == 12")
    assert set(ptr) <= set(finding.frames)
    [[took]] = tshark.fields(
        Path(path), ["dns.time"], "dns.qry.type == 12 && dns.flags.response == 1"
    )
    assert delay <= float(took) < delay + 0.5
    assert "2.1.77.10.in-addr.arpa PTR" in finding.summary
    assert "dig @10.77.2.1 -x 10.77.1.2" in finding.next_steps[0]


def test_queries_without_their_responses_are_no_timeout(tmp_path):
    """A capture that kept only the client's queries (a one-sided capture) says nothing of
    DNS: no retry and no answer from that resolver, so nothing shows the lookups failed."""
    source = Path(lab("dns-lookup-failed"))
    kept = keep(source, tmp_path / "queries.pcap", lambda _n, buf: buf[34:36] != b"\x00\x35")
    result = analyze([str(kept)]).results[0]
    assert result.dns and all(lk.response is None for lk in result.dns)
    assert not [f for f in result.findings if f.code in DNS_CODES]


def test_an_mx_host_whose_address_is_not_in_the_capture_is_no_mismatch(tmp_path):
    source = Path(lab("dns-mx-mismatch"))
    answers = _frames(str(source), "dns.qry.type == 1 && dns.flags.response == 1")
    kept = keep(source, tmp_path / "no-a.pcap", lambda n, _buf: n not in answers)
    result = analyze([str(kept)]).results[0]
    assert not [f for f in result.findings if f.code == "dns-mx-mismatch"]


@pytest.mark.parametrize("path", all_captures(), ids=capture_id)
def test_dns_findings_only_where_the_truth_expects_them(path):
    """No false alarm: a DNS code appears in a lab capture only when its truth expects it,
    and in no public capture (three hold DNS: zeek-smtp.pcap and
    suricata-bug-3616-smtp_input.pcap the A lookup of the server the client then connects
    to, arkime-arkime_synthetic.pcap a resolver test with NXDOMAIN, SERVFAIL and unanswered
    queries for names no mail lookup needs)."""
    codes = {f.code for f in _dns_findings(str(path))}
    if path.parent == LAB:
        name = path.name.split(".")[0]
        expected = set(json.loads((LAB / f"{name}.truth.json").read_text())["expected_findings"])
        assert codes <= expected
    else:
        assert path.parent == PUBLIC and codes == set()


def test_every_dns_scenario_has_its_code():
    dns_truths = [t for t in TRUTHS if t.name.startswith("dns-")]
    if not dns_truths:
        pytest.skip("no DNS lab captures")
    expected = {c for t in dns_truths for c in json.loads(t.read_text())["expected_findings"]}
    assert expected & DNS_CODES == DNS_CODES


def _via_loopback(source: Path, target: Path) -> Path:
    """The capture as a host with a stub resolver shows it (systemd-resolved: asked at
    127.0.0.53 from 127.0.0.1): every DNS datagram's addresses moved to loopback."""
    import dpkt

    local, stub = bytes([127, 0, 0, 1]), bytes([127, 0, 0, 53])
    with open(source, "rb") as handle, open(target, "wb") as out:
        writer = dpkt.pcap.Writer(out, linktype=dpkt.pcap.DLT_EN10MB, snaplen=65535)
        for ts, buf in dpkt.pcap.Reader(handle):
            eth = dpkt.ethernet.Ethernet(buf)
            ip = eth.data
            if isinstance(getattr(ip, "data", None), dpkt.udp.UDP) and 53 in (
                ip.data.sport,
                ip.data.dport,
            ):
                ip.src, ip.dst = (local, stub) if ip.data.dport == 53 else (stub, local)
                ip.sum = ip.data.sum = 0
            writer.writepkt(bytes(eth), ts)
    return target


@pytest.mark.parametrize(
    ("name", "code"),
    [("dns-slow-ptr", "dns-slow-greeting"), ("dns-mx-mismatch", "dns-mx-mismatch")],
)
def test_lookups_through_a_loopback_stub_resolver_are_the_hosts(tmp_path, name, code):
    moved = _via_loopback(Path(lab(name)), tmp_path / f"{name}.pcap")
    result = analyze([str(moved)]).results[0]
    assert {lk.client for lk in result.dns} == {bytes([127, 0, 0, 1])}
    assert [f.session for f in result.findings if f.code == code] == [1]


def test_a_busy_servers_lookups_for_another_client_are_not_this_sessions(tmp_path):
    """The same capture with the PTR asked about 10.77.1.3 instead (another client of a busy
    server): the 2.5 s lookup is not why this session's greeting was late."""
    import dpkt

    target = tmp_path / "other-client.pcap"
    with open(lab("dns-slow-ptr"), "rb") as handle, open(target, "wb") as out:
        writer = dpkt.pcap.Writer(out, linktype=dpkt.pcap.DLT_EN10MB, snaplen=65535)
        for ts, buf in dpkt.pcap.Reader(handle):
            eth = dpkt.ethernet.Ethernet(buf)
            udp = getattr(eth.data, "data", None)
            if isinstance(udp, dpkt.udp.UDP) and 53 in (udp.sport, udp.dport):
                udp.data = bytes(udp.data).replace(
                    b"\x012\x011\x0277\x0210", b"\x013\x011\x0277\x0210"
                )
                eth.data.sum = udp.sum = 0
            writer.writepkt(bytes(eth), ts)
    result = analyze([str(target)]).results[0]
    assert any(lk.name == "3.1.77.10.in-addr.arpa" for lk in result.dns)
    assert not [f for f in result.findings if f.code == "dns-slow-greeting"]


@pytest.mark.parametrize(
    "args",
    [
        ["analyze"],
        ["analyze", "--format", "json"],
        ["analyze", "--format", "md"],
        ["report", "-o", "{tmp}/r.md"],
        ["report", "-o", "{tmp}/r.html"],
        ["report", "-o", "{tmp}/r.json"],
    ],
    ids=lambda a: "-".join(a[:3]).replace("{tmp}/", ""),
)
def test_dns_findings_show_in_every_output(tmp_path, args):
    """A DNS finding reaches every format the way other findings do: code, summary, the dig
    command to confirm it."""
    from click.testing import CliRunner

    from pcapsmtp.cli import main

    path = lab("dns-lookup-failed")
    argv = [a.replace("{tmp}", str(tmp_path)) for a in args]
    result = CliRunner().invoke(main, [argv[0], path, *argv[1:]], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    out = Path(argv[-1]).read_text() if argv[0] == "report" else result.output
    assert "dns-lookup-failed" in out
    assert "gone.lab.test" in out and "NXDOMAIN" in out
    assert "dig @10.77.2.1 MX gone.lab.test" in out


DNS_LAB = sorted(LAB.glob("dns-*.pcap"))


@pytest.fixture(scope="module")
def dns_lab_results():
    return [analyze([str(path)]).results[0] for path in DNS_LAB]


@pytest.mark.parametrize("number", range(len(DNS_LAB)), ids=[p.name for p in DNS_LAB])
def test_dns_rules_read_back_only_the_sessions_they_can_name(dns_lab_results, number):
    """slow_greeting passes over the sessions whose server made none of the lookups by their
    digest, failed_lookups gathers the clients' sessions only for a PTR lookup: the same
    findings as over a plain list (no digests), with every lab capture's sessions in one
    chain (servers that made none of this capture's lookups among them)."""
    from pcapsmtp.analysis.spool import Chain, SessionSpool
    from pcapsmtp.diagnose import CaptureContext
    from pcapsmtp.diagnose.dns import failed_lookups, slow_greeting

    result = dns_lab_results[number]
    context = CaptureContext(result.info, result.stray_icmp, dns=result.dns)
    parts = [r.sessions for r in dns_lab_results]
    spooled = SessionSpool(result.sessions, keep=0)
    for sessions in (result.sessions, Chain(parts), spooled):
        for rule in (failed_lookups, slow_greeting):
            assert list(rule(sessions, context)) == list(rule(list(sessions), context))
    assert [f.code for f in slow_greeting(Chain(parts), context)] == [
        f.code for f in result.findings if f.code == "dns-slow-greeting"
    ]


@tshark.needs_tshark
@pytest.mark.parametrize("label", [b"GoNe", b'g"n\\'], ids=["dns-0x20-case", "quote-backslash"])
def test_the_filter_in_the_prose_shows_the_lookup_whatever_the_case_of_its_name(tmp_path, label):
    """Resolvers randomise the case of the names they ask (DNS 0x20) and Wireshark compares
    strings case-sensitively, while the lookup's name is kept in lower case: the printed
    filter must show the query and its answer all the same, a quote or backslash in a label
    escaped."""
    edited = tmp_path / "dns-edited.pcap"
    original = Path(lab("dns-lookup-failed")).read_bytes()
    wire = b"\x04gone\x03lab\x04test"
    assert wire in original
    edited.write_bytes(original.replace(wire, b"\x04" + label + b"\x03lab\x04test"))
    [finding] = [f for f in analyze([str(edited)]).findings if f.frames == [28, 29]]
    shown = finding.detail.split("In Wireshark: ", 1)[1].removesuffix(".")
    assert _frames(str(edited), shown) == [28, 29], shown

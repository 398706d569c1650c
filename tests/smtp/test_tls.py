"""TlsScanner: the STARTTLS and port-465 captures checked against tshark, handshakes made by
the local OpenSSL (through ssl's memory BIOs) checked against what OpenSSL itself reports,
in random splits; failures (untrusted certificate, version mismatch, a peer that is not TLS);
fuzzing.

Deliberate differences from tshark:
- TLS 1.3 hides record types: a 19-byte application_data record (2 bytes + type + 16-byte
  AEAD tag) is reported as an encrypted alert (``inferred``); tshark shows opaque data.
- Cipher suites carry OpenSSL's names (as Postfix logs them), not the IANA names tshark
  prints; the tests compare the numeric values.
"""

from __future__ import annotations

import contextlib
import datetime
import ssl
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from hypothesis import given, settings
from hypothesis import strategies as st

from pcapsmtp.capture import open_capture, packets
from pcapsmtp.smtp.events import CLIENT, SERVER
from pcapsmtp.smtp.tls.names import VERSION_NAMES
from pcapsmtp.smtp.tls.scanner import TlsScanner
from pcapsmtp.tcp import StreamData, StreamGap, track_flows
from tests.captures import PUBLIC
from tests.tshark import fields, needs_tshark

# -- real captures --------------------------------------------------------------

CAPTURES = {
    # name: (server port, implicit TLS)
    "ndpi-smtp-starttls.pcap": (25, False),
    "zeek-smtp-starttls.pcap": (25, False),
    "arkime-smtp-starttls.pcap": (25, False),
    "suricata-smtp-startssl_input.pcap": (25, False),
    "wireshark-notes-smtp-ssl.pcapng": (25, False),
    "wireshark-notes-smtp2525-ssl.pcapng": (2525, False),
    "ndpi-smtps.pcapng": (465, True),
    "suricata-smtp-tls-protodetect_input.pcap": (25, False),
}


def scan_capture(path: Path, port: int, implicit: bool) -> dict[int, TlsScanner]:
    """tcp.stream -> scanner fed from the client's first TLS byte on (after STARTTLS) or
    from the start (implicit TLS); missing bytes become gaps."""
    scanners: dict[int, TlsScanner] = {}
    with open_capture(str(path)) as capture:
        for event in track_flows(packets(capture), (port,)):
            if not isinstance(event, StreamData | StreamGap):
                continue
            flow = event.flow
            sender = CLIENT if event.direction == flow.client else SERVER
            scanner = scanners.get(flow.stream)
            if scanner is None:
                hello = isinstance(event, StreamData) and event.data[:2] == b"\x16\x03"
                if not (implicit or (sender == CLIENT and hello)):
                    continue
                scanner = scanners[flow.stream] = TlsScanner()
            if isinstance(event, StreamGap):
                scanner.gap(sender)
            else:
                scanner.feed(sender, event.data, event.frame, event.time_ns)
    return scanners


TSHARK_FIELDS = [
    "frame.number",
    "tcp.stream",
    "tcp.srcport",
    "tls.handshake.type",
    "tls.handshake.extensions_server_name",
    "tls.handshake.version",
    "tls.handshake.extensions.supported_version",
    "tls.handshake.ciphersuite",
    "tls.handshake.cipher_suites_length",
    "tls.record.content_type",
    "tls.record.opaque_type",
    "tls.record.length",
    "tls.alert_message.desc",
    "x509ce.dNSName",
    "x509af.utcTime",
]


def tshark_view(path: Path, port: int) -> dict[int, dict]:
    """What tshark says about each stream's handshake, in our terms."""
    rows = fields(path, TSHARK_FIELDS, "tls", ("-E", "occurrence=a", "-d", f"tcp.port=={port},tls"))
    streams: dict[int, dict] = {}
    for row in rows:
        row += [""] * (len(TSHARK_FIELDS) - len(row))
        v = dict(zip(TSHARK_FIELDS, row, strict=True))
        frame, sender = int(v["frame.number"]), SERVER if v["tcp.srcport"] == str(port) else CLIENT
        s = streams.setdefault(int(v["tcp.stream"]), {"records": [], "alerts": []})
        types = v["tls.handshake.type"].split(",")
        if "1" in types and "client_hello_frame" not in s:
            s["client_hello_frame"] = frame
            s["sni"] = v["tls.handshake.extensions_server_name"] or None
            s["offered_ciphers"] = int(v["tls.handshake.cipher_suites_length"]) // 2
            versions = v["tls.handshake.extensions.supported_version"] or v["tls.handshake.version"]
            s["offered_versions"] = [_name(x) for x in versions.split(",") if not _grease(x)]
        if "2" in types:
            s["server_hello_frame"] = frame
            s["cipher_id"] = int(v["tls.handshake.ciphersuite"], 16)
            chosen = v["tls.handshake.extensions.supported_version"] or v["tls.handshake.version"]
            s["version"] = _name(chosen.split(",")[-1])
        if "11" in types and "certificate_frame" not in s:
            s["certificate_frame"] = frame
            s["san"] = [n for n in v["x509ce.dNSName"].split(",") if n]
            times = v["x509af.utcTime"].split(",")
            s["validity"] = [t.replace(" (UTC)", "Z").replace(" ", "T") for t in times[:2]]
        # Records in order: the clear types, then TLS 1.3's opaque ones (always last).
        kinds = [t for t in v["tls.record.content_type"].split(",") if t]
        kinds += ["opaque"] * len([t for t in v["tls.record.opaque_type"].split(",") if t])
        lengths = [int(x) for x in v["tls.record.length"].split(",") if x]
        s["records"] += [(frame, sender, k, n) for k, n in zip(kinds, lengths, strict=False)]
        for desc in (d for d in v["tls.alert_message.desc"].split(",") if d):
            s["alerts"].append((frame, int(desc)))
    for s in streams.values():
        s["encrypted_from"] = _encrypted_from(s["records"])
        s["application_bytes"] = {}
        for _, sender, kind, length in s["records"]:
            if kind in ("23", "opaque"):
                s["application_bytes"][sender] = s["application_bytes"].get(sender, 0) + length
    return streams


def _encrypted_from(records: list) -> dict[str, int]:
    """First record of each sender that is opaque (TLS 1.3) or follows its
    ChangeCipherSpec (TLS <= 1.2)."""
    found: dict[str, int] = {}
    after_ccs: set[str] = set()
    for frame, sender, kind, _ in records:
        if sender in found:
            continue
        if kind == "opaque" or (sender in after_ccs and kind != "20"):
            found[sender] = frame
        elif kind == "20":
            after_ccs.add(sender)
    return found


def _name(hex_value: str) -> str:
    return VERSION_NAMES.get(int(hex_value, 16), hex_value)


def _grease(hex_value: str) -> bool:
    value = int(hex_value, 16)
    return value & 0x0F0F == 0x0A0A


@needs_tshark
@pytest.mark.oracle
@pytest.mark.skipif(not PUBLIC.is_dir(), reason="public captures absent")
@pytest.mark.parametrize("name", sorted(CAPTURES))
def test_capture_handshake_matches_tshark(name):
    """Hello frames, SNI, offered suites and versions, the chosen suite and version, the
    leaf certificate's SANs and validity, alert frames, where encryption starts and the
    application_data byte counts agree with tshark, stream by stream."""
    path = PUBLIC / name
    if not path.exists():
        pytest.skip(f"{name} absent")
    port, implicit = CAPTURES[name]
    ours = scan_capture(path, port, implicit)
    theirs = tshark_view(path, port)
    assert ours, "no TLS found"
    for stream, scanner in ours.items():
        f, t = scanner.facts, theirs.get(stream, {"records": [], "alerts": []})
        assert f.client_hello_frame == t.get("client_hello_frame")
        assert f.sni == t.get("sni")
        assert f.offered_ciphers == t.get("offered_ciphers", 0)
        assert f.offered_versions == t.get("offered_versions", [])
        assert f.server_hello_frame == t.get("server_hello_frame")
        assert f.cipher_id == t.get("cipher_id")
        assert f.version == t.get("version")
        if "certificate_frame" in t:
            assert f.certificate.frame == t["certificate_frame"]
            assert f.certificate.san == t["san"]
            assert [f.certificate.not_before, f.certificate.not_after] == t["validity"]
        else:
            assert f.certificate is None
        clear = [(a.frame, a.description) for a in f.alerts if not a.encrypted]
        assert sorted({a.frame for a in f.alerts if not a.inferred}) == sorted(
            {frame for frame, _, kind, _ in t["records"] if kind == "21"}
        )
        assert [d for _, d in clear] == [_alert_name(code) for _, code in t["alerts"]]
        assert f.encrypted_from == t["encrypted_from"]
        assert f.application_bytes == t["application_bytes"]


def _alert_name(code: int) -> str:
    from pcapsmtp.smtp.tls.names import ALERT_NAMES

    return ALERT_NAMES[code]


@pytest.mark.skipif(not PUBLIC.is_dir(), reason="public captures absent")
def test_capture_facts_worth_knowing():
    """The facts a mail admin reads, for captures whose story is known: Gmail's 2014 MX
    with RC4 (which OpenSSL 3 no longer names), a TLS 1.3 session whose closing alerts
    are inferred from their size, and two clients that spoke TLS to a server that
    answered in clear text."""
    expected = {
        "zeek-smtp-starttls.pcap": dict(
            version="TLSv1.2",
            cipher="ECDHE-RSA-AES128-GCM-SHA256",
            subject="CN=mx.google.com,O=Google Inc,L=Mountain View,ST=California,C=US",
            issuer="CN=Google Internet Authority G2,O=Google Inc,C=US",
            public_key="RSA-2048",
            signature_hash="sha1",
            certificates=3,
            failed=False,
        ),
        "arkime-smtp-starttls.pcap": dict(version="TLSv1", cipher="0x0005", failed=False),
        "suricata-smtp-startssl_input.pcap": dict(
            version="TLSv1.3", cipher="TLS_AES_256_GCM_SHA384", inferred=2, failed=False
        ),
        "ndpi-smtps.pcapng": dict(clear="220-gator4223.hostgator.com ESMTP Exim", failed=True),
        "suricata-smtp-tls-protodetect_input.pcap": dict(
            clear="220 poczta.home-whs.pl ESMTP", failed=True
        ),
    }
    for name, want in expected.items():
        path = PUBLIC / name
        if not path.exists():
            continue
        [scanner] = scan_capture(path, *CAPTURES[name]).values()
        f = scanner.facts
        assert scanner.failed == want["failed"]
        if "clear" in want:
            assert f.clear_text[SERVER].startswith(want["clear"])
            assert f.anomalies == ["not_tls"]
            continue
        assert (f.version, f.cipher) == (want["version"], want["cipher"])
        if "subject" in want:
            cert = f.certificate
            got = (cert.subject, cert.issuer, cert.public_key, cert.signature_hash)
            assert got == (
                want["subject"],
                want["issuer"],
                want["public_key"],
                want["signature_hash"],
            )
            assert f.certificates == want["certificates"]
        if "inferred" in want:
            assert [a.inferred and not a.during_handshake for a in f.alerts] == [True] * 2


# -- handshakes made by the local OpenSSL ------------------------------------------


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> dict[str, Path]:
    """A CA and two server certificates: a small one and one whose SAN list makes the
    Certificate message longer than one record (16 KB)."""
    folder = tmp_path_factory.mktemp("pki")
    now = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test Mail CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(1)
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    (folder / "ca.pem").write_bytes(ca.public_bytes(pem))
    for label, sans in (("small", SANS), ("large", LARGE_SANS)):
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name(
            [
                x509.NameAttribute(NameOID.COMMON_NAME, sans[0]),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Example KK"),
            ]
        )
        leaf = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(2)
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=90))
            .add_extension(
                x509.SubjectAlternativeName([x509.DNSName(s) for s in sans]), critical=False
            )
            .sign(ca_key, hashes.SHA256())
        )
        chain = leaf.public_bytes(pem) + ca.public_bytes(pem)
        (folder / f"{label}.pem").write_bytes(chain)
        (folder / f"{label}.key").write_bytes(
            key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        )
    return {p.stem + p.suffix: p for p in folder.iterdir()}


SANS = ["mx.example.jp", "mail.example.jp"]
LARGE_SANS = [f"mx{i:04d}.very-long-subdomain-name.example.jp" for i in range(500)]


def contexts(pki, *, client_max=None, server_min=None, trusted=True, large=False, curve=None):
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if trusted:
        client.load_verify_locations(pki["ca.pem"])
    if client_max:
        client.maximum_version = client_max
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    label = "large" if large else "small"
    server.load_cert_chain(pki[f"{label}.pem"], pki[f"{label}.key"])
    if server_min:
        server.minimum_version = server_min
    if curve:
        server.set_ecdh_curve(curve)
    return client, server


def converse(client_ctx, server_ctx, sni="mx.example.jp"):
    """Run a handshake, then EHLO / 250 / QUIT / 221 and close_notify both ways, over
    memory BIOs. Returns the flights (sender, bytes), each one "frame", and the objects."""
    bios = {name: (ssl.MemoryBIO(), ssl.MemoryBIO()) for name in (CLIENT, SERVER)}
    ends = {
        CLIENT: client_ctx.wrap_bio(*bios[CLIENT], server_hostname=sni),
        SERVER: server_ctx.wrap_bio(*bios[SERVER], server_side=True),
    }
    flights: list[tuple[str, bytes]] = []
    broken: set[str] = set()

    def pump() -> None:
        for name, peer in ((CLIENT, SERVER), (SERVER, CLIENT)):
            data = bios[name][1].read()
            if data:
                flights.append((name, data))
                bios[peer][0].write(data)

    for _ in range(6):
        for name in (CLIENT, SERVER):
            if name not in broken:
                try:
                    ends[name].do_handshake()
                except ssl.SSLWantReadError:
                    pass
                except ssl.SSLError:
                    broken.add(name)
            pump()
    if not broken:
        for name, line in ((CLIENT, b"EHLO a\r\n"), (SERVER, b"250 b\r\n"), (CLIENT, b"QUIT\r\n")):
            ends[name].write(line)
            pump()
            peer = SERVER if name == CLIENT else CLIENT
            ends[peer].read()
        for name in (CLIENT, SERVER):
            with contextlib.suppress(ssl.SSLWantReadError, ssl.SSLError):
                ends[name].unwrap()
            pump()
    return flights, ends, broken


def feed(flights, splits=None) -> TlsScanner:
    scanner = TlsScanner()
    for frame, (sender, data) in enumerate(flights, start=1):
        sizes = splits or []
        pos = 0
        for size in [*sizes, len(data)]:
            if pos >= len(data):
                break
            scanner.feed(sender, data[pos : pos + size], frame, frame * 1_000_000)
            pos += size
    return scanner


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
def test_openssl_handshake_facts(pki, version):
    """What OpenSSL reports about its own session (version, suite) is what we read from the
    bytes; the SNI, the certificate (TLS 1.2 only: 1.3 encrypts it), close_notify alerts."""
    flights, ends, broken = converse(*contexts(pki, client_max=version))
    assert not broken
    scanner = feed(flights)
    f = scanner.facts
    cipher, protocol, _ = ends[CLIENT].cipher()
    assert (f.version, f.cipher) == (protocol, cipher)
    assert f.sni == "mx.example.jp"
    assert "TLSv1.3" in f.offered_versions if version == ssl.TLSVersion.TLSv1_3 else True
    assert (f.client_hello_frame, f.server_hello_frame) == (1, 2)
    assert set(f.encrypted_from) == {CLIENT, SERVER}
    assert not scanner.failed
    assert f.anomalies == []
    if version == ssl.TLSVersion.TLSv1_2:
        cert = f.certificate
        assert (cert.subject, cert.issuer) == ("O=Example KK,CN=mx.example.jp", "CN=Test Mail CA")
        assert (cert.san, cert.public_key, cert.signature_hash) == (SANS, "EC-secp256r1", "sha256")
        assert f.certificates == 2
        # close_notify in TLS 1.2 is an encrypted alert record, after the handshake.
        assert [(a.sender, a.encrypted, a.during_handshake) for a in f.alerts] == [
            (CLIENT, True, False),
            (SERVER, True, False),
        ]
    else:
        assert f.certificate is None
        assert [(a.sender, a.inferred) for a in f.alerts] == [(CLIENT, True), (SERVER, True)]


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=700), max_size=12))
def test_large_certificate_in_random_splits(pki_flights, sizes):
    """A Certificate message of more than 16 KB spans records; whatever the TCP split,
    the leaf certificate comes out whole."""
    scanner = feed(pki_flights, sizes)
    f = scanner.facts
    assert f.certificate is not None
    assert f.certificate.san == LARGE_SANS
    assert f.version == "TLSv1.2"
    assert not scanner.failed
    assert f.anomalies == []


@pytest.fixture(scope="module")
def pki_flights(pki):
    flights, _, broken = converse(
        *contexts(pki, client_max=ssl.TLSVersion.TLSv1_2, large=True), sni=LARGE_SANS[0]
    )
    assert not broken
    records = [d for s, d in flights if s == SERVER]
    assert len(records[0]) > 16384  # the Certificate message needs two records
    return flights


def test_hello_retry_request(pki):
    """A server that wants another key share answers with a HelloRetryRequest; the client
    sends a middlebox-compatibility ChangeCipherSpec and a second ClientHello (RFC 8446
    4.1.4, D.4), and the handshake still ends in TLS 1.3."""
    flights, ends, broken = converse(*contexts(pki, curve="secp384r1"))
    assert not broken
    scanner = feed(flights)
    f = scanner.facts
    assert f.hello_retry
    assert (f.version, f.cipher) == ("TLSv1.3", ends[CLIENT].cipher()[0])
    assert (f.client_hello_frame, f.server_hello_frame) == (1, 4)
    assert not scanner.failed


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
def test_untrusted_certificate_fails(pki, version):
    """The client does not trust the server's CA: its fatal unknown_ca alert (OpenSSL sends
    it before switching keys, even in TLS 1.3) makes the handshake failed."""
    flights, _, broken = converse(*contexts(pki, client_max=version, trusted=False))
    assert broken == {CLIENT, SERVER}
    scanner = feed(flights)
    assert scanner.failed
    [alert] = scanner.facts.alerts
    assert (alert.sender, alert.level, alert.description) == (CLIENT, "fatal", "unknown_ca")
    assert alert.during_handshake and not alert.encrypted


def test_version_mismatch_fails(pki):
    """A server that requires TLS 1.3 refuses a TLS 1.2 client with protocol_version and
    never sends a ServerHello."""
    flights, _, _ = converse(
        *contexts(pki, client_max=ssl.TLSVersion.TLSv1_2, server_min=ssl.TLSVersion.TLSv1_3)
    )
    scanner = feed(flights)
    f = scanner.facts
    assert scanner.failed
    assert f.server_hello_frame is None
    assert f.offered_versions == ["TLSv1.2", "TLSv1.1", "TLSv1", "SSLv3"][: len(f.offered_versions)]
    assert [(a.sender, a.description) for a in f.alerts] == [(SERVER, "protocol_version")]


def test_no_answer_to_client_hello_fails(pki):
    flights, _, _ = converse(*contexts(pki))
    scanner = feed(flights[:1])
    assert scanner.failed
    assert scanner.facts.client_hello_frame == 1


def test_gap_resynchronises_on_record_headers(pki):
    """Bytes lost inside the encrypted stream: the scanner finds the next two record
    headers and goes on counting, without raising."""
    flights, _, _ = converse(*contexts(pki, client_max=ssl.TLSVersion.TLSv1_2))
    whole = feed(flights).facts
    scanner = TlsScanner()
    for frame, (sender, data) in enumerate(flights, start=1):
        if frame == len(flights) - 3:  # lose the middle of a late flight
            scanner.feed(sender, data[:3], frame, 0)
            scanner.gap(sender)
            scanner.feed(sender, data[4:], frame, 0)
        else:
            scanner.feed(sender, data, frame, 0)
    f = scanner.facts
    assert "gap" in f.anomalies
    assert f.cipher == whole.cipher
    assert sum(f.application_bytes.values()) <= sum(whole.application_bytes.values())


def test_clear_text_answer_is_not_tls():
    """An inspection box that said 220 to STARTTLS and keeps talking SMTP in clear."""
    scanner = TlsScanner()
    scanner.feed(CLIENT, bytes.fromhex("160301002e01"), 5, 0)
    scanner.feed(SERVER, b"500 5.5.1 Command unrecognized\r\n", 6, 0)
    # Control characters are kept: report/safe.py strips them for display.
    assert scanner.facts.clear_text == {SERVER: "500 5.5.1 Command unrecognized\r\n"}
    assert scanner.facts.anomalies == ["not_tls"]
    assert scanner.failed


def test_sslv2_compatible_client_hello():
    """RFC 5246 E.2: an old client's SSLv2-framed hello offering TLS 1.0."""
    hello = bytes([0x80, 0x2E, 0x01, 0x03, 0x01, 0x00, 0x15, 0x00, 0x00, 0x00, 0x10])
    hello += bytes(0x15) + bytes(0x10)
    scanner = TlsScanner()
    scanner.feed(CLIENT, hello, 1, 0)
    assert scanner.facts.offered_versions == ["TLSv1"]
    assert scanner.facts.anomalies == ["sslv2_client_hello"]


# -- fuzzing ----------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from([CLIENT, SERVER, "gap"]),
            st.one_of(
                st.binary(max_size=300),
                st.builds(
                    lambda t, n, body: bytes([t, 3, n]) + len(body).to_bytes(2, "big") + body,
                    st.integers(20, 24),
                    st.integers(0, 5),
                    st.binary(max_size=200),
                ),
            ),
        ),
        max_size=20,
    )
)
def test_fuzz_never_raises(steps):
    scanner = TlsScanner()
    for frame, (sender, data) in enumerate(steps, start=1):
        if sender == "gap":
            scanner.gap(CLIENT)
        else:
            scanner.feed(sender, data, frame, frame)
    assert isinstance(scanner.failed, bool)
    assert isinstance(scanner.facts.anomalies, list)


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_fuzz_mutated_real_handshake(pki_flights, data):
    """Real handshake bytes with a few bytes changed, cut or dropped: never an exception."""
    flights = list(pki_flights)
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(flights) - 1))
        sender, payload = flights[i]
        if not payload:
            continue
        at = data.draw(st.integers(0, len(payload) - 1))
        op = data.draw(st.sampled_from(["flip", "cut", "drop"]))
        if op == "flip":
            payload = payload[:at] + bytes([payload[at] ^ 0xFF]) + payload[at + 1 :]
        elif op == "cut":
            payload = payload[:at]
        else:
            payload = payload[:at] + payload[at + 50 :]
        flights[i] = (sender, payload)
    scanner = feed(flights, data.draw(st.lists(st.integers(1, 2000), max_size=5)))
    assert isinstance(scanner.failed, bool)

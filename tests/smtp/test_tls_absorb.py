"""Encrypted TLS records absorbed by the flow table (issue 21): once a side's records are
application data the TLS scanner would only count, the table walks them in the core
(``_core.TlsRecords``) with no StreamData event, and hands on any chunk holding another
record. The sessions, their TLS facts included, must not change, on either path into the
table (objects, the decoder's batches)."""

from __future__ import annotations

import contextlib
import ssl

import pytest
from pcapsmtp._core import TlsRecords

from pcapsmtp.capture import open_capture, segment_batches
from pcapsmtp.smtp import dialogue
from pcapsmtp.smtp.ports import SMTP_PORTS
from pcapsmtp.smtp.tracker import SmtpTracker
from pcapsmtp.tcp import FlowTracker
from pcapsmtp.tcp.model import StreamData
from tests.smtp.test_absorb import CAPTURES, _sessions
from tests.tlsconv import CLIENT, SERVER, Conversation, make_pki


def _without_tls_absorption(monkeypatch) -> None:
    monkeypatch.setattr(dialogue.Dialogue, "encrypted", lambda self, sender: None)


@pytest.mark.parametrize("batches", [False, True], ids=["objects", "batches"])
def test_lab_sessions_are_the_same_with_tls_records_absorbed(batches, monkeypatch):
    absorbed = {path.name: _sessions(path, batches) for path in CAPTURES}
    _without_tls_absorption(monkeypatch)
    with_tls, fewer = 0, 0
    for path in CAPTURES:
        sessions, data, flows = absorbed[path.name]
        plain, plain_data, _ = _sessions(path, batches)
        assert repr(sessions) == repr(plain), path.name
        assert [repr(s.tls) for s in sessions] == [repr(s.tls) for s in plain], path.name
        assert flows._table.absorbing == 0, "every sink dropped with its flow"
        assert data <= plain_data
        if any(s.tls is not None and s.tls.facts is not None for s in plain):
            with_tls += 1
            fewer += plain_data - data
    assert with_tls >= 3
    assert fewer > 0, "the lab's TLS sessions had client records absorbed"


def _conversation(tmp_path, version: ssl.TLSVersion, sizes: list[int]) -> Conversation:
    """STARTTLS, then client writes of several records each, cut into segments of
    ``sizes`` (record headers split across segments), the server's replies of several
    records cut the same way, and close_notify both ways (TLS 1.2: an alert record; 1.3:
    an application_data record of an alert's length)."""
    c = Conversation(make_pki(tmp_path), tmp_path / "keys.log", version)
    c.starttls()
    c.send(CLIENT, b"EHLO client.example\r\n")
    c.send(SERVER, b"250-mx.example.jp\r\n250 PIPELINING\r\n")
    c.send(CLIENT, b"MAIL FROM:<a@client.example>\r\n", b"RCPT TO:<b@example.jp>\r\n", b"DATA\r\n")
    c.send(SERVER, b"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 go ahead\r\n")
    lines = [b"line %d of a message sent in small records\r\n" % i for i in range(40)]
    c.send(CLIENT, *lines, sizes=sizes * 200)
    c.send(CLIENT, b"x" * 20000, b".\r\n", sizes=sizes * 20)
    c.send(SERVER, b"250 2.0.0 Ok: queued as 4BC123\r\n", sizes=sizes * 10)
    c.send(CLIENT, b"QUIT\r\n", sizes=sizes)
    c.send(SERVER, *(b"221-%d\r\n" % i for i in range(30)), b"221 bye\r\n", sizes=sizes * 200)
    for sender in (CLIENT, SERVER):
        with contextlib.suppress(ssl.SSLWantReadError, ssl.SSLError):
            c.tls[sender].unwrap()
        with contextlib.suppress(ssl.SSLZeroReturnError):  # the peer reads it: on the wire
            c._flush(sender, sizes * 10)
    c.close()
    return c


def _held_scanner(path) -> tuple[str, int]:
    """repr of the state of the TLS scanner of the capture's one session, at its end, and
    the server's StreamData events."""
    tracker = SmtpTracker(path.name, hold_tls=lambda: True)
    server_data = 0
    with open_capture(str(path)) as capture:
        for event in FlowTracker(SMTP_PORTS).batch_events(segment_batches(capture)):
            server_data += type(event) is StreamData and event.direction == event.flow.server
            assert tracker.add(event) is None
    [(_, scanner)] = tracker.held()
    return repr((scanner._dirs, scanner.facts)), server_data


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
@pytest.mark.parametrize("sizes", [[3], [1, 4, 2, 9], [700]], ids=["3", "mixed", "700"])
def test_split_records_absorbed_give_the_same_session(tmp_path, monkeypatch, version, sizes):
    path = _conversation(tmp_path, version, sizes).write(tmp_path / "tls.pcap")
    runs, scanners = [], []
    for _ in range(2):
        runs.append(_sessions(path, batches=True))
        scanners.append(_held_scanner(path))
        _without_tls_absorption(monkeypatch)
    (absorbed, data, flows), (plain, plain_data, _) = runs
    assert scanners[0][0] == scanners[1][0], "the scanner's walks end where they would have"
    assert scanners[0][1] < scanners[1][1], "the server's records were walked too"
    assert repr(absorbed) == repr(plain)
    [session] = absorbed
    facts = session.tls.facts
    assert facts.application_bytes[CLIENT] > 20000
    assert facts.application_bytes[SERVER] > 300
    assert [(a.sender, a.encrypted) for a in facts.alerts] == [(CLIENT, True), (SERVER, True)]
    assert flows._table.absorbing == 0
    assert data < plain_data - 20


def test_the_walk_takes_application_data_and_refuses_the_rest():
    walk = TlsRecords()
    assert not walk.take(bytes([23, 3, 3, 0, 4, 1, 2])), "no walk yet"
    walk.walk(False, (0, b"", 19))
    assert walk.take(bytes([23, 3, 3, 0, 4, 1, 2]))
    assert walk.take(bytes([3, 4, 23, 3]))
    assert walk.counts(False) == (0, bytes([23, 3]), 1, 4)
    assert not walk.take(bytes([3, 0, 19]) + bytes(19)), "an encrypted alert's length"
    assert not walk.take(bytes([21, 3, 3, 0, 2])), "an alert"
    assert walk.take(bytes([3, 0, 20]))
    assert walk.counts(False) == (20, b"", 1, 20)
    assert not walk.take(bytes([23, 3, 3, 0, 1, 0]), server=True), "the server's: not walked"
    walk.walk(True, (2, b"\x17", None))
    assert walk.take(bytes([9, 9, 3, 3, 0, 19]), server=True)
    assert walk.counts(True) == (19, b"", 1, 19)
    assert walk.counts(False) == (20, b"", 0, 0)
    walk.walk(False, None)
    assert not walk.walking(False) and walk.walking(True)
    with pytest.raises(ValueError):
        walk.counts(False)

"""tcp/state.py at its own API: Zeek's conn_state and history from segments fed directly.

The connections of lab captures are replayed into a ``ConnectionState`` without the flow
table (the letters the flow table adds from the sequence analysis and the reassembly, t, g
and w, are recorded by hand where a test needs them). Each expected value is Zeek's reading
of that connection (base/protocols/conn/main.zeek): a normal close is SF, a refused SYN REJ,
a SYN never answered S0, a reset by the client RSTO and by the server RSTR.
"""

from __future__ import annotations

import pytest

from pcapsmtp.capture import TcpSegment, open_capture, packets
from pcapsmtp.tcp.flowkey import flow_key
from pcapsmtp.tcp.model import TH_ACK, TH_FIN, TH_PUSH, TH_RST, TH_SYN
from pcapsmtp.tcp.state import ConnectionState, EndpointState
from tests.conftest import LAB_CAPTURES

SMTP = (25, 465, 587)


def replay(name: str) -> tuple[ConnectionState, int]:
    """The first connection of a lab capture replayed into a ConnectionState: (state,
    index of the client), endpoint 0 being the sender of its first packet."""
    with open_capture(str(LAB_CAPTURES / name)) as capture:
        segments = [p for p in packets(capture) if isinstance(p, TcpSegment)]
    key = flow_key(segments[0].src, segments[0].sport, segments[0].dst, segments[0].dport)
    mine = [s for s in segments if flow_key(s.src, s.sport, s.dst, s.dport) == key]
    first = (mine[0].src, mine[0].sport)
    client = 1 if mine[0].sport in SMTP else 0
    conn = ConnectionState(flipped=client != 0)
    for seg in mine:
        d = 0 if (seg.src, seg.sport) == first else 1
        conn.segment(d, d == client, seg.flags, seg.seq, seg.length)
    return conn, client


@pytest.mark.parametrize(
    ("capture", "state", "history"),
    [
        # Handshake, the server's greeting first (d), the client's data (D), the server's
        # FIN first; a pure ACK letter only once per side.
        ("clean-delivery.pcap", "SF", "ShAdDafF"),
        ("bdat-chunking.pcap", "SF", "ShAdDaFf"),  # the client closed first
        ("connect-refused.pcap", "REJ", "Sr"),
        ("connect-timeout.pcap", "S0", "S"),  # one SYN, retried with the same seq
        ("rst-in-data.pcap", "RSTR", "ShAdDar"),
        ("starttls-25.pcap", "RSTO", "ShAdDafR"),  # the client reset after the server's FIN
        ("forged-rst-volley.server.pcap", "S1", "ShAdDa"),  # no FIN, no RST: still open
        ("one-side-client.pcap", "SH", "SADF"),  # only the client's packets captured
        ("one-side-server.pcap", "SHR", "^hdaf"),  # only the server's: no SYN seen
        ("capture-after-handshake.pcap", "SF", "^dADafF"),  # no handshake: no S, no h
        ("capture-drops.pcap", "SF", "ShAdDafF"),
    ],
)
def test_lab_connections(capture, state, history):
    conn, client = replay(capture)
    assert conn.history == history
    assert conn.conn_state(client) == state


def test_lab_connection_endpoint_states_and_sizes():
    conn, client = replay("clean-delivery.pcap")
    assert conn.states == [EndpointState.CLOSED, EndpointState.CLOSED]
    assert conn.sizes == [392, 324]  # client, server payload bytes (tshark's tcp.len)
    conn, client = replay("rst-in-data.pcap")
    assert conn.states[1 - client] == EndpointState.RESET
    assert conn.states[client] == EndpointState.ESTABLISHED


# -- transitions built segment by segment -------------------------------------------------

C, S = 0, 1
"""Endpoint 0 is the client in these, unless flipped."""
SYN, SYNACK, ACK, FIN, RST = TH_SYN, TH_SYN | TH_ACK, TH_ACK, TH_FIN | TH_ACK, TH_RST


def run(steps, flipped: bool = False, client: int = C) -> ConnectionState:
    conn = ConnectionState(flipped=flipped)
    for seq, (sender, flags, length) in enumerate(steps, start=1000):
        conn.segment(sender, sender == client, flags, seq, length)
    return conn


HANDSHAKE = [(C, SYN, 0), (S, SYNACK, 0), (C, ACK, 0)]


def test_the_handshake_establishes_both_sides():
    conn = ConnectionState(flipped=False)
    conn.segment(C, True, SYN, 1, 0)
    assert conn.states == [EndpointState.SYN_SENT, EndpointState.INACTIVE]
    conn.segment(S, False, SYNACK, 9, 0)
    assert conn.states == [EndpointState.SYN_SENT, EndpointState.SYN_ACK_SENT]
    conn.segment(C, True, ACK, 2, 0)
    assert conn.states == [EndpointState.ESTABLISHED, EndpointState.ESTABLISHED]
    assert conn.history == "ShA"
    assert conn.conn_state(C) == "S1"


@pytest.mark.parametrize(
    ("steps", "state", "history"),
    [
        ([*HANDSHAKE, (C, FIN, 0)], "S2", "ShAF"),
        ([*HANDSHAKE, (S, FIN, 0)], "S3", "ShAf"),
        ([*HANDSHAKE, (S, FIN, 0), (C, FIN, 0)], "SF", "ShAfF"),
        ([*HANDSHAKE, (C, RST, 0)], "RSTO", "ShAR"),
        ([*HANDSHAKE, (S, RST | TH_ACK, 0)], "RSTR", "ShAr"),
        ([(C, SYN, 0), (C, RST, 0)], "RSTOS0", "SR"),
        ([(C, SYN, 0), (S, SYNACK, 0), (C, RST, 0)], "RSTO", "ShR"),
        ([(C, SYN, 0), (S, RST | TH_ACK, 0)], "REJ", "Sr"),
        ([(C, SYN, 0), (C, FIN, 0)], "SH", "SF"),
        ([(S, SYNACK, 0), (S, RST, 0)], "RSTRH", "hr"),
        ([(C, ACK, 10), (S, ACK, 20)], "OTH", "Dd"),  # mid-stream: no set-up seen
        ([(C, ACK, 0), (C, RST, 0)], "OTH", "AR"),  # the client reset, no SYN before
        ([], "OTH", ""),
    ],
)
def test_zeek_states(steps, state, history):
    conn = run(steps)
    assert (conn.conn_state(C), conn.history) == (state, history)


def test_a_reset_side_stays_reset():
    conn = run([*HANDSHAKE, (S, RST, 0), (S, ACK | TH_PUSH, 30), (S, FIN, 0)])
    assert conn.states[S] == EndpointState.RESET
    assert conn.conn_state(C) == "RSTR"
    assert conn.history == "ShArdf"  # the letters still record what was sent


def test_a_fin_after_a_reset_by_the_peer_closes_only_the_sender():
    conn = run([*HANDSHAKE, (S, RST, 0), (C, FIN, 0)])
    assert conn.states == [EndpointState.CLOSED, EndpointState.RESET]
    assert conn.conn_state(C) == "RSTR"


def test_the_client_taken_as_originator_decides_upper_and_lower_case():
    """A flow whose first packet came from the server (a SYN/ACK first): endpoint 1 is the
    client, its letters are uppercase, and the history starts with Zeek's flip mark."""
    conn = run([(S, SYNACK, 0), (C, ACK, 0), (C, ACK, 5), (S, FIN, 0)], flipped=True)
    assert conn.history == "^hADf"
    assert conn.states == [EndpointState.PARTIAL, EndpointState.CLOSED]
    assert conn.conn_state(C) == "SHR"  # a SYN/ACK then a FIN, no SYN from the client
    assert conn.conn_state(S) == "SH"  # read the other way round


# -- history letters ----------------------------------------------------------------------


def test_syn_fin_rst_letters_repeat_only_with_a_new_sequence_number():
    conn = ConnectionState(flipped=False)
    conn.segment(C, True, SYN, 100, 0)
    conn.segment(C, True, SYN, 100, 0)  # retried SYN, same ISN: no new letter
    assert conn.history == "S"
    conn.segment(C, True, SYN, 200, 0)  # another ISN
    assert conn.history == "SS"
    conn.segment(S, False, RST | TH_ACK, 0, 0)
    conn.segment(S, False, RST | TH_ACK, 0, 0)
    conn.segment(S, False, RST | TH_ACK, 1, 0)
    assert conn.history == "SSrr"


def test_data_and_ack_letters_once_per_side():
    conn = run([(C, ACK, 0)] * 3 + [(C, ACK, 10)] * 3 + [(S, ACK, 0)] * 2 + [(S, ACK, 4)])
    assert conn.history == "ADad"


def test_data_with_a_syn_or_fin_records_d_too():
    conn = run([(C, SYN, 5), (S, SYNACK, 0), (C, FIN, 7)])
    assert conn.history == "SDhF"  # D once, with the SYN (TCP Fast Open)


def test_syn_with_fin_or_rst_is_q_and_fin_with_rst_is_i():
    assert run([(C, SYN | TH_FIN, 0)]).history == "Q"
    assert run([(S, SYN | TH_RST, 0)]).history == "q"
    assert run([*HANDSHAKE, (C, TH_FIN | TH_RST, 0), (C, TH_FIN | TH_RST, 0)]).history == "ShAI"
    conn = run([*HANDSHAKE, (S, TH_FIN | TH_RST | TH_ACK, 0)])
    assert conn.history == "ShAi"
    assert conn.states[S] == EndpointState.RESET


def test_retransmission_gap_and_window_letters_are_logarithmic():
    """t, g and w (recorded by the flow table) appear at the 1st, 10th, 100th ... time."""
    conn = ConnectionState(flipped=False)
    for _ in range(9):
        conn.record("t", True)
    assert conn.history == "T"
    conn.record("t", True)
    assert conn.history == "TT"
    for _ in range(90):
        conn.record("t", True)
    assert conn.history == "TTT"
    for _ in range(899):
        conn.record("t", True)
    assert conn.history == "TTT"
    conn.record("t", True)  # the 1,000th
    assert conn.history == "TTTT"
    conn.record("g", False)
    conn.record("w", False)
    conn.record("g", True)
    assert conn.history == "TTTTgwG"

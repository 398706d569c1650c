"""The Python side of the flow table's flows (pcapsmtp.tcp.flows).

``FlowObjects`` is a base of ``flows.FlowTracker`` and holds no state of its own (the
attributes are the tracker's: ``_table``, ``_flows``, ``_handed``, ``_servers``,
``_opened``, ``_sniffing``, ``server_ports``, ``warnings``, ``warned_at``, ``_ends``). Its
methods make the ``TcpFlow`` of a flow the consumer is handed (``_open``), tell the table
what the consumer changed of it (``_sync``) or that another shard's flow is not ours
(``_ignore``), and fill it in with everything the table knew of it when it ends
(``_ended``).
"""

from __future__ import annotations

import sys
from collections import Counter

from pcapsmtp.capture.addresses import endpoint_name
from pcapsmtp.tcp.model import (
    ConnState,
    Endpoint,
    Flag,
    Handshake,
    LiveEndpoint,
    SegmentNote,
    TcpFlow,
)
from pcapsmtp.tcp.reassembly import MAX_PENDING_BYTES

MAX_SHARED_ENDPOINTS = 4_096
"""Server endpoints the live flows share (``FlowTracker._live_endpoints``); past it the
table starts over."""
NOTHING = ()
"""A live flow's notes and ICMP errors while it has none (two empty lists were 112 bytes
of each of a flood's 100,000 open flows); lists once it ends or an ICMP error comes."""


class FlowObjects:
    """The ``TcpFlow`` objects of a ``FlowTracker``: made, synced with the table, filled in."""

    def _open(self, head: tuple, live: bool = True) -> TcpFlow:
        """The Python side of a flow the consumer is handed for the first time (``live``:
        while the table still holds it, with its endpoints' addresses only)."""
        (flow_id, stream, ip0, port0, ip1, port1, client, first_frame, first_time_ns,
         role_from, continues, syn, synack, handshake_ack) = head  # fmt: skip
        # The core makes a new object for each value: equal ones are kept once (a flood's
        # 100,000 open flows each held 116 bytes more otherwise).
        if stream == flow_id:
            stream = flow_id
        if syn == first_time_ns:
            syn = first_time_ns
        role_from = sys.intern(role_from)
        if live:
            endpoints = self._live_endpoints(ip0, port0, ip1, port1, client)
            notes, icmp = NOTHING, NOTHING
        else:
            endpoints, notes, icmp = (Endpoint(ip0, port0), Endpoint(ip1, port1)), [], []
        flow = TcpFlow(
            stream=stream,
            endpoints=endpoints,
            client=client,
            first_frame=first_frame,
            first_time_ns=first_time_ns,
            syn_time_ns=syn,
            synack_time_ns=synack,
            handshake_ack_time_ns=handshake_ack,
            role_from=role_from,
            continues=continues,
            notes=notes,
            icmp=icmp,
        )
        told = self._opened.get((client, role_from))
        if told is None:
            told = self._opened[(client, role_from)] = (client, role_from, False, None)
        flow._table = (flow_id, told)
        self._flows[flow_id] = flow
        return flow

    def _live_endpoints(
        self, ip0: bytes, port0: int, ip1: bytes, port1: int, client: int
    ) -> tuple[LiveEndpoint, LiveEndpoint]:
        """A live flow's endpoints; its server's is shared with the other live flows of
        that server (a bounded table: a flood's 100,000 connections to one server hold one)."""
        first, second = LiveEndpoint(ip0, port0), LiveEndpoint(ip1, port1)
        if (ip0, port0) == (ip1, port1):
            return first, second  # a flow to itself: two objects, as its two sides are
        server = second if client == 0 else first
        shared = self._servers.get((server.ip, server.port))
        if shared is None:
            if len(self._servers) >= MAX_SHARED_ENDPOINTS:
                self._servers.clear()
            shared = self._servers[(server.ip, server.port)] = server
        return (first, shared) if client == 0 else (shared, second)

    def _sync(self) -> None:
        """What the consumer changed of the flows it was handed, into the table."""
        update = self._table.update
        for flow in self._handed:
            known = flow._table
            if known is None:
                continue
            flow_id, (client, role_from, ignore, absorb) = known
            if flow.absorb is not absorb or (flow.client, flow.role_from, flow.ignore_payload) != (
                client,
                role_from,
                ignore,
            ):
                first, second = flow.endpoints
                update(first.ip, first.port, second.ip, second.port, flow_id, flow.client,
                       flow.role_from, flow.ignore_payload, flow.absorb)  # fmt: skip
                flow._table = (flow_id, (flow.client, flow.role_from, flow.ignore_payload,
                                         flow.absorb))  # fmt: skip
        self._handed = []

    def _ignore(self, head: tuple) -> None:
        """A flow of another shard (``only``), at its first event: its payload ignored in the
        table before the next packet, as the consumer would have set it."""
        flow_id, _, ip0, port0, ip1, port1, client, *_, role_from = head[:10]
        self._table.update(ip0, port0, ip1, port1, flow_id, client, role_from, True, None)

    def _ended(self, flow: TcpFlow | None, ended: tuple) -> TcpFlow:
        """The flow filled in with everything the table knew of it at its end."""
        (head, last_frame, last_time_ns, notes, dropped_notes, _ignored, state,
         history, endpoints, limited) = ended  # fmt: skip
        bare = False
        if flow is None:
            flow = self._open(head, live=False)
            del self._flows[head[0]]
            bare = self._sniffing and not {head[3], head[5]} & self.server_ports
        else:
            flow.syn_time_ns, flow.synack_time_ns, flow.handshake_ack_time_ns = head[11:]
            first, second = flow.endpoints
            flow.endpoints = (Endpoint(first.ip, first.port), Endpoint(second.ip, second.port))
            if flow.icmp is NOTHING:
                flow.icmp = []
        flow._table = flow.absorb = None
        flow.last_frame, flow.last_time_ns = last_frame, last_time_ns
        if not bare:
            flow.notes = [
                SegmentNote(f, t, d, fl, Flag(a), *rest) for f, t, d, fl, a, *rest in notes
            ]
            flow.dropped_notes = dropped_notes
            flow.state = ConnState(state)
            flow.history = history
            for endpoint, facts in zip(flow.endpoints, endpoints, strict=True):
                _fill(endpoint, facts)
        for d, (holes, skipped) in enumerate(limited):
            if holes:
                self.warnings.append(_limited(flow, d, holes, skipped))
                self.warned_at.append(2 * self._ends)
        return flow


def _fill(endpoint: Endpoint, facts: tuple) -> None:
    """An endpoint's figures from the table (python_table.rs ``endpoint``)."""
    (handshake, endpoint.packets, endpoint.bytes, endpoint.ip_bytes, endpoint.data_segments,
     endpoint.max_segment, endpoint.max_ip_len, endpoint.max_acked_segment,
     endpoint.max_acked_ip_len, endpoint.last_acked_frame, ttls, endpoint._df_set,
     endpoint._df_clear, counts, retransmitted, unacked, endpoint.ip_id_last,
     endpoint.ip_id_pairs, endpoint.ip_id_steps, endpoint.fragmented, fragment_frames,
     endpoint.stream_bytes, endpoint.gaps, endpoint.gap_bytes,
     endpoint.retransmission_mismatches, endpoint.longest_zero_window_ns,
     endpoint.too_big_mtu, endpoint.max_ip_len_after_too_big, endpoint.last_time_ns,
     endpoint.closed_frame, endpoint.peer_silent_ns) = facts  # fmt: skip
    if handshake is not None:
        endpoint.handshake = Handshake(*handshake)
    if len(ttls) == 1:
        endpoint._ttl, endpoint._ttl_packets = ttls[0]
    elif ttls:
        endpoint._ttls = Counter(dict(ttls))
    if counts:
        endpoint._counts = Counter(dict(counts))
    if retransmitted:
        endpoint._retransmitted_sizes = Counter(dict(retransmitted))
    if unacked:
        endpoint._unacked_sizes = Counter(dict(unacked))
    endpoint.fragment_frames = fragment_frames


def _limited(flow: TcpFlow, d: int, holes: int, skipped: int) -> str:
    sender, receiver = flow.endpoints[d], flow.endpoints[1 - d]
    return (
        f"tcp.stream {flow.stream}, {endpoint_name(sender)} -> {endpoint_name(receiver)}: "
        f"data held behind holes that did not fill reached the reassembly bound "
        f"({MAX_PENDING_BYTES // (1024 * 1024)} MiB) {holes:,} times; "
        f"{skipped:,} bytes were skipped (gaps 'buffer limit'), and "
        "segments of them arriving later were not used"
    )

"""Rules over all sessions of a capture: a client that keeps reconnecting to a destination that
never takes its mail (``retry-storm``), and a destination that says it throttles (``rate-limited``).

What is normal, for scale: Postfix retries a deferred message after ``minimal_backoff_time``
(300 s), doubling up to ``maximal_backoff_time`` (4000 s), and once a destination fails it is
marked dead and skipped until the next queue run (``queue_run_delay``, 300 s), when at most
``initial_destination_concurrency`` (5) connections test it again: about one attempt a minute
at worst. Exim's default retry rule starts at 15 minutes; Sendmail's queue runs every 15-60.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterator, Sequence

from pcapsmtp.capture.addresses import address, endpoint_name
from pcapsmtp.capture.timestamps import raw, utc
from pcapsmtp.diagnose.digest import Digest, digests, in_time_groups
from pcapsmtp.diagnose.health import (
    FAILED_OUTCOMES,
    NegativeReply,
    PeerHealth,
    id_ranges,
    server_replies,
)
from pcapsmtp.diagnose.model import ERROR, WARNING, Finding
from pcapsmtp.diagnose.registry import capture_rule
from pcapsmtp.smtp import codes
from pcapsmtp.smtp.events import Reply
from pcapsmtp.smtp.model import Outcome, Session

STORM_MIN_ATTEMPTS = 20
"""Failed attempts from one client to one destination before the rate is looked at."""
STORM_MIN_RATE = 1.0
"""Failed attempts a minute, on average: faster than any backed-off queue retries (see above)."""
STORM_PERSISTENT = 100
"""Failed attempts that make a storm at any rate: a queue hammering a destination for hours."""
EVIDENCE_SESSIONS = 10


def _utc(time_ns: int) -> str:
    moment = utc(time_ns)
    if moment is None:
        return raw(time_ns)
    return f"{moment:%Y-%m-%d %H:%M:%S} UTC"


def _span(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.1f} s"
    return f"{seconds / 60:.1f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"


OUTCOME_PHRASES = {
    Outcome.REFUSED: "refused (a reset to the SYN, or closed before any greeting)",
    Outcome.UNREACHABLE: "never answered",
    Outcome.DEFERRED: "deferred (4xx)",
    Outcome.REJECTED: "rejected (5xx)",
    Outcome.TIMEOUT: "timed out",
    Outcome.RESET: "reset",
    Outcome.TLS_FAILED: "failed in the TLS handshake",
}


def _failed(session: Session) -> bool:
    delivered = any(t.outcome == Outcome.DELIVERED for t in session.transactions)
    return session.outcome in FAILED_OUTCOMES and not delivered


def _digest_failed(digest: Digest) -> bool:
    return digest.outcome in FAILED_OUTCOMES and not digest.delivered


def _pairs(kept: Sequence[Digest]) -> list[tuple[tuple, array]]:
    """(client address, server address, server port) and the positions of its sessions in
    time order, in order of each pair's first session (``in_time_groups``: positions, not
    digests, so a long capture does not hold every digest at once)."""
    return in_time_groups(kept, _pair)[0]


def _pair(digest: Digest) -> tuple:
    return (digest.client_ip, digest.server_ip, digest.server_port)


def _rate(attempts: list[Session] | list[Digest]) -> tuple[float, float]:
    """(span in seconds from the first attempt to the last, attempts a minute)."""
    return _pace(attempts[0].first_time_ns, attempts[-1].first_time_ns, len(attempts))


def _pace(first_ns: int, last_ns: int, attempts: int) -> tuple[float, float]:
    """``_rate`` from the first and last attempts' times."""
    span = (last_ns - first_ns) / 1e9
    rate = (attempts - 1) * 60 / span if span > 0 else float("inf")
    return span, rate


def _how_they_failed(failed: list[Session]) -> str:
    peer = PeerHealth("destination", "")
    for session in failed:
        peer.outcomes[session.outcome] += 1
        for reply in server_replies(session):
            if codes.is_transient(reply.code) or codes.is_permanent(reply.code):
                enhanced = codes.parse_enhanced(reply.lines[0]) if reply.lines else None
                key = (reply.code, enhanced)
                known = peer.negative.setdefault(
                    key, NegativeReply(reply.code, enhanced, 0, reply.text, reply.frame, "")
                )
                known.count += 1
    parts = [
        f"{count} {OUTCOME_PHRASES.get(outcome, outcome)}"
        for outcome, count in peer.outcomes.most_common()
    ]
    text = ", ".join(parts)
    replies = peer.negative_replies()
    if replies:
        top = replies[0]
        text += (
            f"; the server answered {top.label} ({top.count} times): "
            f"'{' '.join(top.text.split())[:100]}', {top.meaning}"
        )
    return text


@capture_rule("retry-storm")
def retry_storm(sessions: Sequence[Session], context) -> Iterator[Finding]:
    """From the digests (pcapsmtp.diagnose.digest); a storm's failed sessions are read back
    to describe it."""
    kept = digests(sessions)
    for _pair_key, attempts in _pairs(kept):
        failed: list[int] = []
        first_ns = last_ns = 0
        delivered = False
        for position in attempts:
            digest = kept[position]
            delivered = delivered or digest.delivered
            if _digest_failed(digest):
                if not failed:
                    first_ns = digest.first_time_ns
                failed.append(position)
                last_ns = digest.first_time_ns
        if len(failed) < STORM_MIN_ATTEMPTS:
            continue
        span, rate = _pace(first_ns, last_ns, len(failed))
        if rate < STORM_MIN_RATE and len(failed) < STORM_PERSISTENT:
            continue
        loaded = [sessions[position] for position in failed]
        yield _storm_finding(len(attempts), delivered, loaded, span, rate)


def _storm_finding(attempts: int, delivered: bool, failed: list[Session], span: float, rate):
    first, last = failed[0], failed[-1]
    client, server = address(first.client.ip), endpoint_name(first.server)
    through = attempts - len(failed)
    got_through = (
        f"{through} other session{'' if through == 1 else 's'} to it did deliver mail or "
        "ended otherwise"
        if through
        else "not one attempt got a message through"
    )
    if rate == float("inf"):
        pace = "all at once"
    else:
        pace = f"{rate:.0f} a minute" if rate >= 10 else f"{rate:.1f} a minute"
    shown = [*failed[: EVIDENCE_SESSIONS - 1], last]
    return Finding(
        code="retry-storm",
        severity=WARNING if delivered else ERROR,
        summary=(
            f"{client} made {len(failed)} failed attempts to {server} in {_span(span)} "
            f"({pace}) and "
            + ("some mail got through" if delivered else "never got a message through")
        ),
        detail=(
            f"From {_utc(first.flow.first_time_ns)} (session {first.id}) to "
            f"{_utc(last.flow.first_time_ns)} (session {last.id}), {client} connected "
            f"{len(failed)} times to {server} without delivering: {_how_they_failed(failed)}. "
            f"Sessions {id_ranges(s.id for s in failed)}; {got_through}. A queue that backs "
            "off retries a failing destination about once a minute at most (Postfix: "
            "minimal_backoff_time 300 s, a failed destination skipped until the next queue "
            "run); this client retries "
            + ("faster, " if rate >= STORM_MIN_RATE else "without end, ")
            + "which loads both sides and, at a large provider, can get its address "
            "rate-limited or blocked."
        ),
        frames=[s.flow.first_frame for s in shown],
        next_steps=[
            f"On {client}: look at the queue for {address(first.server.ip)} (`postqueue -p`, "
            "`exim -bp`, `mailq`) and at the MTA's retry and concurrency settings; a script "
            "or an application that retries in a loop shows the same pattern.",
            _policy_step(failed, client, address(first.server.ip))
            or f"Find out why {server} does not take the mail (the replies above; its log at "
            "these times, e.g. with `--maillog`) and fix that, or hold the queue for it "
            "(`postsuper -h`, a transport map to `retry:`) until it is fixed.",
        ],
    )


def _policy_step(failed: list[Session], client: str, server: str) -> str | None:
    """When the server refuses the client by policy, no retry gets through: say what does."""
    refusal = next(
        (
            reply
            for session in failed
            for reply in server_replies(session)
            if codes.is_policy_refusal(reply.code, codes.parse_enhanced(reply.text), reply.text)
        ),
        None,
    )
    if refusal is None:
        return None
    words = " ".join(refusal.text.split())[:100]
    return (
        f"{server} refuses {client} by policy ('{refusal.code} {words}'): no retry gets "
        "through, fast or slow. Hold the queue for it (`postsuper -h`, a transport map to "
        f"`retry:`), then find the restriction that matched in {server}'s log and fix its "
        f"reason ({client}'s reverse DNS, an access table, a blocklist), or send through a "
        "relay the server accepts."
    )


def throttled(session: Session, replies: Sequence[Reply] | None = None) -> bool:
    """The server said it rate-limits (what the digest keeps for ``rate-limited``);
    ``replies``: the session's ``server_replies`` when the caller has them."""
    return bool(_throttling(session, replies))


def _destinations(kept: Sequence[Digest]) -> list[tuple[tuple, array]]:
    """(server address, server port) and the positions of its sessions in time order."""
    return in_time_groups(kept, _destination)[0]


def _destination(digest: Digest) -> tuple:
    return (digest.server_ip, digest.server_port)


def _throttling(session: Session, replies: Sequence[Reply] | None = None) -> list:
    out = []
    for reply in server_replies(session) if replies is None else replies:
        if not codes.is_transient(reply.code):
            continue  # is_rate_limited's first test, before the enhanced code is parsed
        enhanced = codes.parse_enhanced(reply.lines[0]) if reply.lines else None
        if codes.is_rate_limited(reply.code, enhanced, reply.text):
            out.append((reply, enhanced))
    return out


@capture_rule("rate-limited")
def rate_limited(sessions: Sequence[Session], context) -> Iterator[Finding]:
    """From the digests; the sessions with a throttling reply are read back."""
    kept = digests(sessions)
    for _destination_key, attempts in _destinations(kept):
        limited = [sessions[position] for position in attempts if kept[position].throttled]
        hits = [(s, reply, enhanced) for s in limited for reply, enhanced in _throttling(s)]
        if hits:
            yield _limited_finding(kept[attempts[0]].destination, len(attempts), hits)


def _limited_finding(server: str, attempts: int, hits: list) -> Finding:
    kinds: dict[tuple, list] = {}
    for session, reply, enhanced in hits:
        kinds.setdefault((reply.code, enhanced), []).append((session, reply))
    (code, enhanced), top = max(kinds.items(), key=lambda item: len(item[1]))
    sample = top[0][1]
    meaning = codes.meaning(code, enhanced, sample.text)
    label = f"{code} {enhanced}" if enhanced else str(code)
    limited = sorted({s.id for s, _r, _e in hits})
    clients = sorted({address(s.client.ip) for s, _r, _e in hits})
    text = " ".join(sample.text.split())[:160]
    others = "; also " + ", ".join(
        f"{c} {e}".strip() if e else str(c) for (c, e) in kinds if (c, e) != (code, enhanced)
    )
    return Finding(
        code="rate-limited",
        severity=WARNING,
        summary=(
            f"{server} throttled {', '.join(clients[:3])}"
            + (f" (+{len(clients) - 3})" if len(clients) > 3 else "")
            + f": {len(hits)} × {label} in {len(limited)} of {attempts} sessions — {meaning}"
        ),
        detail=(
            f"The server at {server} answered '{label} {text}' (session {top[0][0].id}, frame "
            f"{sample.frame}), which reads as a rate limit: {meaning}."
            + (others if len(kinds) > 1 else "")
            + f" Sessions {id_ranges(limited)}. A rate limit is temporary: mail is deferred, "
            "not lost, as long as the sender retries more slowly; retrying faster prolongs it."
        ),
        frames=sorted(reply.frame for _s, reply, _e in hits)[:20],
        next_steps=[
            "Send to this destination more slowly and with fewer parallel connections "
            "(Postfix: a transport for it with `_destination_concurrency_limit` and "
            "`_destination_rate_delay`; Exim: `serialize_hosts`, smaller `remote_max_parallel`).",
            "Read the provider's sender guidelines for this code, check the sending IP's "
            "reputation and complaint rate, and the volume sent from it recently.",
        ],
    )

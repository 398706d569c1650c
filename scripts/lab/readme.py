"""Write captures/README.md from the truth files present (one line per capture)."""

from __future__ import annotations

import json
from pathlib import Path

HEAD = """\
# Lab captures

Real SMTP traffic between real programs (Postfix 3.7 and Exim 4.96 from Debian, Python's
smtplib, swaks, and a few small lab servers and middleboxes in `scripts/lab/servers.py`) in
Linux network namespaces on this machine, through real injected faults. Nothing here is
synthetic or edited. Do not edit by hand: regenerate.

## Regenerate

```sh
sudo scripts/lab/run                 # every scenario (about 10 minutes), needs root
sudo scripts/lab/run mtu-blackhole   # only some
scripts/lab/run --list               # names and one-line descriptions
```

It installs the Debian packages it needs (postfix, swaks, tcpdump, tshark, iptables, ethtool,
sasl2-bin, postgrey; Exim is unpacked privately because its package conflicts with postfix)
without letting them start services, builds four namespaces

    client 10.77.1.2 ── router ── core ── server 10.77.2.2      (fd77:1::2 / fd77:2::2)

with offloads off on every veth and short TCP timers, runs each scenario and writes its files
here. No namespace has a default route; the MTAs never look anything up and never relay,
except in the `dns-*` scenarios, where Debian's unbound runs in the core namespace
(10.77.2.1:53) serving the lab's zones, some broken on purpose, and the sending side resolves
with dig (bind9-dnsutils) like an MTA: MX, then the hosts' A records.
Regenerated captures differ in timing, ports and queue ids: tests rely on the truth files,
never on byte equality.

## Files

- `<name>.pcap` — the main capture (`-s 0`, Ethernet, pcap); `capture_point` in the truth says
  where it was taken (the client's `eth0` unless said otherwise).
- `<name>.<point>.pcap` — the same sessions seen at another point (`other_files`).
- `<name>.reference.pcap` — for a capture that holds only part of the traffic (one direction,
  started late, lossy: the truth has a `capture` key), the complete capture taken at the same
  time on the same interface (`other_files["reference"]`), so what the main capture lacks is
  known packet by packet.
- `<name>.truth.json` — ground truth from the lab's own knowledge: what the client sent and
  received (recorded by the client itself), what fault was injected. Never derived from the
  capture.
- `<name>.maillog` — the MTA's log of the scenario (Postfix via postlogd, or Exim's mainlog),
  to link sessions to log lines by queue id.
- `<name>.keylog` — the client's TLS key log (SSLKEYLOGFILE format) for TLS scenarios.

## Truth conventions

- `dialogue`: every line the client sent and the reply code it got, in order. The greeting has
  `"command": null`; the end of data is `"."`; each BDAT chunk is `"BDAT"`; a line answering an
  AUTH 334 challenge is `"AUTH-RESPONSE"`; a reply nobody asked for (Postfix's 421 on idle
  timeout) has `"command": null`; a command that never got a reply has `"reply": null`. Steps
  inside TLS carry `"encrypted": true`. `reply_text` is the reply's text, lines joined by `\\n`.
- `transactions[].size`: bytes of the message as the client sent it, excluding the final
  `.CRLF` (no line starts with a dot, so dot-stuffing changes nothing); `null` when no message
  content was sent. `code`: the reply to the end of data (or to the last BDAT); when the
  transaction ended earlier, the reply that ended it (MAIL refused, or every RCPT refused);
  `null` when no reply came. `queue_id` from that reply's text (`queued as X`, Exim `id=X`).
- `transactions[].pipelined`: true when MAIL, RCPT and DATA (or the first BDAT) went out in
  one write (RFC 2920); `chunks`: the BDAT chunk sizes in order.
- Extra session keys where they apply: `auth` (mechanism, username, reply code),
  `client_software` (`swaks`), `client_error` (what the client's socket raised), `tls_error`.
- `subject` is the decoded subject (pipelining has ISO-2022-JP and UTF-8 encoded words).
- `late_replies`: reply codes the server sent after the client had already given up (they are
  in the capture, answered by a RST; the client never read them).
- `reset_by`: who sent the RST that ended the session, if one did (`middlebox` = forged).
- `transactions[].message_size`: present when the client's socket failed before the whole
  message went out (server-killed-in-data, forged-rst-volley): the message's full size, while
  `size` is what the client's socket accepted before the failure (not necessarily what reached
  the server); the end of data was then never sent, so the dialogue ends with DATA.
- `transactions[].line_ending`: `"LF"` when the client ended its message lines and its end
  of data with a bare LF (`size` counts the bytes as sent, the final `.\n` excluded).
- `expected_severity`: {finding code: `error` | `warning` | `info`}, the severity a correct
  analysis gives that expected finding here (a transient zero window on a delivered message is
  `info`; a server that died during DATA is an `error`).
- `other_connections`: connections the client made that are not SMTP sessions of the capture
  (icmp-quoted-streams: its attempts on port 2525, rejected with ICMP port unreachable, the
  capture filter keeping only the ICMP errors, which quote their TCP headers).
- `scanner` (scan-port-reuse): the raw-socket SYN scanner sharing the capture: its `source`,
  how its `isn` is made, `pause_s` between its `rounds`, each with the `ports` probed in order
  and the count of each `answers` kind.
- `greeting_delay_s`: how long the server held its greeting back on purpose.
- `dns` (the `dns-*` scenarios): each lookup the client made, in order, as dig reported it:
  `name`, `type`, `status` (the response code, or `timeout` when dig got no answer), `id`
  (the query's DNS id), `answers` (the answer section's data for that type).
  `slow_ptr_delay_s`: how long the lab's authority for the client's reverse zone waited before
  each answer.
- `capture` (only where the main capture is partial): `direction` (`both`, `client-only`,
  `server-only`); `started` (`before-session`, `after-handshake`: the first packet is the
  greeting, `after-greeting`: the first packet is the client's EHLO, `after-ehlo`: the first
  packet is the client's MAIL FROM); `first_step`: the index in
  the first session's `dialogue` of the first step in the capture, with `handshake_captured`
  false; `tcpdump`: the options or filter that made it one-sided; `mechanism`: how packets were
  lost; `captured_tcp_frames` / `reference_tcp_frames`: TCP frames in the main and in the
  reference capture (counted by tshark); `dropped_by_capture`: every packet the network carried
  that the capture lacks, in order (`reference_frame` its frame number in the reference, `from`
  client or server, `tcp_len`, `flags`, `text` the first line of its payload). These facts come
  from the reference capture; the SMTP truth still comes from the client. Findings a correct
  analysis of a partial capture may or may not give (`capture-loss` for a one-sided or late
  capture, `incomplete-session`) are in neither list.
- Finding codes follow DESIGN.md, plus `retry-storm`. `client-timeout` means the client gave up
  waiting for the server; `server-timeout` means the server gave up waiting for the client.
  `absent_findings` lists codes a correct analysis must not produce.

## Captures

| capture | point(s) | sessions | expected findings | what happens |
| --- | --- | --- | --- | --- |
"""


def write_readme(out: Path) -> None:
    rows = []
    for path in sorted(out.glob("*.truth.json")):
        truth = json.loads(path.read_text(encoding="utf-8"))
        name = truth["scenario"]
        points = [truth["capture_point"], *(truth["other_files"] or {})]
        size = (out / f"{name}.pcap").stat().st_size
        found = ", ".join(f"`{c}`" for c in truth["expected_findings"]) or "—"
        rows.append(
            f"| `{name}.pcap` ({size / 1024:.0f} KB) | {' + '.join(points)} | "
            f"{len(truth['sessions'])} | {found} | {truth['description']} |"
        )
    (out / "README.md").write_text(HEAD + "\n".join(rows) + "\n", encoding="utf-8")

#!/usr/bin/env python3
"""Print the tshark command pcapsmtp runs to decrypt a capture's TLS sessions.

    scripts/tshark-command.py CAPTURE KEYLOG

To run tshark by hand, or time it alone (scripts/bench-tls).
"""

from __future__ import annotations

import shlex
import sys

from pcapsmtp.analysis import analyze
from pcapsmtp.analysis.tshark_command import find_tshark, tshark_command, tshark_version


def main() -> None:
    capture, keylog = sys.argv[1:3]
    sessions = [
        s
        for s in analyze([capture]).sessions
        if s.tls is not None and not s.tls.failed and s.tls.facts.encrypted_from
    ]
    if not sessions:
        raise SystemExit(f"{capture}: no TLS session to decrypt")
    tshark = find_tshark()
    version = tshark_version(tshark)
    print(shlex.join(tshark_command(tshark, capture, sessions, keylog, version)))


if __name__ == "__main__":
    main()

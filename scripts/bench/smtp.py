#!/usr/bin/env python3
"""CPU seconds of the SMTP layer inside the one pass: the capture read through the flow
table as ``analyze`` does, with ``SmtpTracker.add`` timed call by call
(``time.process_time``), the dialogue parser's and message scanner's share of it timed
the same way. Compare two checkouts by running it with each on PYTHONPATH:

    PYTHONPATH=. python3 scripts/bench/smtp.py /tmp/bench-smtp-50M.pcap

Prints, per file: CPU of the whole pass, of the SMTP layer (``SmtpTracker.add``), of the
dialogue (``Dialogue.feed``, ``gap``, ``finish``: framing, message scanning, events) and
of the message scanner (``MessageScanner`` feeding and finishing) within it.
"""

from __future__ import annotations

import argparse
import time


class _Timer:
    """Wraps ``owner.name`` so each call's CPU time adds to ``seconds``; calls nested in
    another wrapped call of the same timer are not counted twice."""

    def __init__(self, owner: type, names: tuple[str, ...]) -> None:
        self.seconds = 0.0
        self._depth = 0
        for name in names:
            self._wrap(owner, name)

    def _wrap(self, owner: type, name: str) -> None:
        original = getattr(owner, name)
        timer = self

        def timed(*args, **kwargs):
            if timer._depth:
                return original(*args, **kwargs)
            timer._depth += 1
            start = time.process_time()
            try:
                return original(*args, **kwargs)
            finally:
                timer.seconds += time.process_time() - start
                timer._depth -= 1

        setattr(owner, name, timed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+")
    args = parser.parse_args()
    from pcapsmtp.analysis.one_pass import OnePass
    from pcapsmtp.capture import open_capture, packets
    from pcapsmtp.smtp import dialogue, message, tracker

    smtp = _Timer(tracker.SmtpTracker, ("add",))
    dialog = _Timer(dialogue.Dialogue, ("feed", "gap", "finish"))
    scanner = _Timer(message.MessageScanner, ("feed", "finish"))
    for path in args.files:
        smtp.seconds = dialog.seconds = scanner.seconds = 0.0
        start = time.process_time()
        with open_capture(path) as capture:
            one = OnePass(path, ())
            one.run(packets(capture))
        total = time.process_time() - start
        print(
            f"{path}: pass {total:.2f} s CPU, SMTP layer {smtp.seconds:.2f} s "
            f"(dialogue {dialog.seconds:.2f} s, of which message scanner "
            f"{scanner.seconds:.2f} s), {len(one.sessions)} sessions"
        )


if __name__ == "__main__":
    main()

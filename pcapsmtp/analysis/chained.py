"""A rotated set read in this process (``--jobs 1``, or with TLS keys).

``--jobs 1`` (or a set of one file) reads the files one after another as one stream
(pcapsmtp.capture.sets.ChainedCapture): one pass, exactly as over the merged capture. A set
with TLS keys is merged with ``mergecap -a`` into one file for tshark's pass.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile

from pcapsmtp.analysis.model import CaptureResult, Options
from pcapsmtp.analysis.one_pass import analyze_capture, run_pass
from pcapsmtp.capture.sets import CaptureSet, ChainedCapture, first_time, order_by_time
from pcapsmtp.errors import CaptureError


def analyze_chained(capture_set: CaptureSet, options: Options) -> CaptureResult:
    """One pass over the files of a set, one after another (``--jobs 1``)."""
    times = {}
    readable = []
    errors = []
    for path in capture_set.files:
        try:
            times[path] = first_time(path)
            readable.append(path)
        except CaptureError as error:
            errors.append(error)
    if not readable:
        raise errors[0]
    ordered = CaptureSet(capture_set.label, order_by_time(readable, times))
    capture = ChainedCapture(ordered)
    for error in errors:
        capture.info.warnings.append(f"{error}: left out of the set")
    # Spooled as a single file's sessions are: a set of many files ends as many sessions as
    # one capture of its size, and holding them all grew the memory with the set's length.
    result = run_pass(capture, capture_set.label, options, hold_tls=None, spool=True)
    if any(info_secret for info_secret in capture.info.secrets):
        capture.info.warnings.append(
            "TLS keys embedded in files of a rotated set are not used; give them with --keylog"
        )
    return result


def analyze_merged(capture_set: CaptureSet, options: Options) -> CaptureResult:
    """A set with TLS keys: merged with ``mergecap -a`` into one file, which tshark then
    decrypts as it would a single capture."""
    mergecap = shutil.which("mergecap")
    if mergecap is None:
        result = analyze_chained(capture_set, options)
        result.info.warnings.append(
            "TLS decryption of a rotated set needs mergecap (Debian package wireshark-common); "
            "the set was read without it"
        )
        return result
    times = {path: first_time(path) for path in capture_set.files}
    ordered = order_by_time(capture_set.files, times)
    with tempfile.TemporaryDirectory(prefix="pcapsmtp-") as folder:
        merged = os.path.join(folder, "merged.pcapng")
        subprocess.run([mergecap, "-a", "-w", merged, *ordered], check=True, capture_output=True)
        result = analyze_capture(merged, options)
    result.info.file = capture_set.label
    result.info.files = list(ordered)
    for session in result.sessions:
        session.capture = capture_set.label
    return result

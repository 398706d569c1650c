"""The analysis floor: captures in, an Analysis out (sessions, findings, mail-log links).

``model`` holds the records, ``one_pass`` the one place that wires capture -> tcp -> smtp,
``chained``, ``shards`` and ``rotated`` the sets read as one capture (in this process, in
forked processes, on Dask), ``tlsdecrypt`` tshark's pass for TLS, ``run``
the ``analyze`` that drives them and runs diagnose over what they found.
"""

from pcapsmtp.analysis.model import Analysis, CaptureResult, Options
from pcapsmtp.analysis.run import analyze

__all__ = ["Analysis", "CaptureResult", "Options", "analyze"]

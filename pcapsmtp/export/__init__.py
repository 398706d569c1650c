"""A trimmed capture of one session, its AUTH credentials overwritten unless asked to keep them.

The frames of the session's TCP stream (IP fragments included), the ICMP errors tied to it
and the DNS lookups its DNS findings rest on (``dns``) are copied record by record with
their original timestamps, captured bytes and original lengths. The output is pcap
(microsecond, or nanosecond when a timestamp needs it) unless the file name ends in
``.pcapng``; pcap holds one link type only, so a session whose frames
came from interfaces of different link types must be exported as pcapng. Nothing else of the
input is carried over: no comments, no other interfaces, and never a Decryption Secrets Block.

``run`` makes the export (a session's frames, or the whole capture for ``--annotate``),
``redaction`` overwrites the credentials, ``comments`` writes the findings as packet comments,
``writers`` writes pcap or pcapng, ``model`` holds the result and the error.
"""

from pcapsmtp.export.run import export_capture, export_session

__all__ = ["export_capture", "export_session"]

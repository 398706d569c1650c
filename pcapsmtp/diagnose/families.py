"""Every rule family; importing this module registers their rules."""

from pcapsmtp.diagnose import (  # noqa: F401
    auth,
    capture,
    dns,
    endings,
    inspection,
    path_mtu,
    replies,
    resets,
    size,
    storms,
    timing,
    tls,
    transport,
)

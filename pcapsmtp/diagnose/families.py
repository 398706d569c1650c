"""Every rule family; importing this module registers their rules."""

from pcapsmtp.diagnose import path_mtu, resets, transport  # noqa: F401

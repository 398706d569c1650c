"""Every rule family; importing this module registers their rules."""

from pcapsmtp.diagnose import path_mtu, resets, storms, transport  # noqa: F401

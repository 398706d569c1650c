"""Optional parts of the install (pyproject.toml's extras) and the one sentence that names the
missing one. The base install reads captures and explains them; Dask (rotated sets read by
several processes) and pyshark (which finds the tshark that decrypts TLS) come with
``pcapsmtp[cluster]`` and ``pcapsmtp[tls]``."""

from __future__ import annotations

import importlib
import importlib.util

CLUSTER = "cluster"
TLS = "tls"

MODULES = {CLUSTER: "dask.distributed", TLS: "pyshark.tshark.tshark"}


def available(extra: str) -> bool:
    """The extra's package can be imported (it is imported only when the extra is used)."""
    try:
        importlib.import_module(MODULES[extra])
    except ImportError:
        return False
    return True


def needs(what: str, extra: str) -> str:
    """``--jobs needs the cluster extra: pip install 'pcapsmtp[cluster]'``."""
    return f"{what} needs the {extra} extra: pip install 'pcapsmtp[{extra}]'"

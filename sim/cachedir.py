"""servesim's cache folder: ``$SERVESIM_CACHE`` if set, else ``~/.cache/servesim``.

Built models, downloaded wheels and compiled kernels live in folders inside it. Asking for the
path creates nothing.
"""
from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """``$SERVESIM_CACHE``, or ``~/.cache/servesim``."""
    env = os.environ.get("SERVESIM_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "servesim"

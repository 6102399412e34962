"""The fast engine: the platform models of `sim.platforms`, compiled with numba, one loop per chunk.

It gives the SimPy engine's results (per-request outcomes, tallies, bills) on the same inputs,
many times faster, from the same arrival chunks and the same per-request draws, streaming into
the same `Collector`. `unsupported(cfg)` names what it does not model (the caller refuses with
a pointer to ``engine: simpy``); `run` has the contract of `sim.engine_simpy.run`.
Compilation is cached on disk by numba (``cache=True``) in a folder per version of these sources
(`_kernel_cache_dir`): the first run pays it once; `warm_up()` does that up front and returns
the seconds it took.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Callable, Iterable

import numba
import numpy as np


def _kernel_cache_dir() -> Path:
    """Where numba caches the compiled kernels: a folder named after the engine's own sources.

    numba's cache checks only the file that defines a kernel, not the helpers of `common` (or
    of `sim.billing`) it inlines, so an edited helper could leave a stale kernel in use. A folder
    per version of the sources cannot. Under ``$NUMBA_CACHE_DIR`` if set, else servesim's cache
    folder."""
    h = hashlib.sha256(numba.__version__.encode())
    here = Path(__file__).parent
    for f in [*sorted(here.glob("*.py")), here.parent / "billing.py"]:
        h.update(f.name.encode() + f.read_bytes())
    base = os.environ.get("NUMBA_CACHE_DIR")
    if not base:
        from ..cachedir import cache_dir

        base = cache_dir() / "numba"
    return Path(base) / f"engine-{h.hexdigest()[:16]}"


numba.config.CACHE_DIR = str(_kernel_cache_dir())  # before the kernels' modules are imported

from ..config import EC2Config, LambdaConfig, PlatformConfig, platform_kind
from ..metrics import Collector


def unsupported(cfg: PlatformConfig) -> str | None:
    """None when the fast engine models `cfg` exactly, else what it does not support."""
    if not isinstance(cfg, (LambdaConfig, EC2Config)):
        return f"platform kind {platform_kind(cfg)}"
    if cfg.host is not None:
        return "host CPU sharing (host:)"
    if isinstance(cfg, LambdaConfig):
        return None
    try:
        from .ec2 import unsupported as ec2_unsupported
    except ImportError:
        return "EC2 platforms"
    return ec2_unsupported(cfg)


def run(cfg: PlatformConfig, chunks: Iterable[np.ndarray], *, seed: int, warmup_s: float,
        horizon_s: float | None, collector: Collector,
        progress: Callable[[int, float], None] | None = None):
    """Simulate one platform (see `sim.engine_simpy.run`); returns (model, end_s)."""
    if isinstance(cfg, LambdaConfig):
        from .lambda_ import run_lambda

        return run_lambda(cfg, chunks, seed=seed, warmup_s=warmup_s, horizon_s=horizon_s, collector=collector,
                          progress=progress)
    from .ec2 import run_ec2

    return run_ec2(cfg, chunks, seed=seed, warmup_s=warmup_s, horizon_s=horizon_s, collector=collector,
                   progress=progress)


def warm_up() -> float:
    """Compile (or load from numba's cache) every kernel; the seconds it took."""
    from .lambda_ import warm_up as lambda_warm_up

    seconds = lambda_warm_up()
    try:
        from .ec2 import warm_up as ec2_warm_up
    except ImportError:
        return seconds
    return seconds + ec2_warm_up()

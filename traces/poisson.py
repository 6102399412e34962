"""Homogeneous Poisson arrivals: exponential gaps at a constant rate.

Gaps are drawn exactly, never capped or truncated (a capped gap silently raises the rate and
cuts the tail of idle periods, which is what decides Lambda cold starts). Arrivals are generated
in blocks of a fixed size, so memory stays flat for any duration and the arrivals do not depend
on the `chunk_size` a consumer asks for.
"""
from __future__ import annotations

import math
from typing import Iterator

import numpy as np

from .base import DEFAULT_CHUNK, ArrivalSource, accumulate_gaps, rechunk

__all__ = ["Poisson"]

_BLOCK = 65536  # gaps drawn per step; part of the stream's definition (changing it changes arrivals)


class Poisson(ArrivalSource):
    """Poisson process of rate `rate_rps` (requests/s) on the window ``[0, duration_s)``."""

    def __init__(self, rate_rps: float, duration_s: float):
        if isinstance(rate_rps, bool) or not isinstance(rate_rps, (int, float)) \
                or not math.isfinite(rate_rps) or rate_rps <= 0:
            raise ValueError(f"rate_rps must be a finite number > 0, got {rate_rps!r}")
        if isinstance(duration_s, bool) or not isinstance(duration_s, (int, float)) \
                or not math.isfinite(duration_s) or duration_s <= 0:
            raise ValueError(f"duration_s must be a finite number > 0, got {duration_s!r}")
        self.rate_rps = float(rate_rps)
        self.duration_s = float(duration_s)

    def _blocks(self, seed: np.random.SeedSequence) -> Iterator[np.ndarray]:
        rng = np.random.default_rng(seed)
        scale = 1.0 / self.rate_rps
        return accumulate_gaps(lambda: rng.standard_exponential(_BLOCK) * scale, self.duration_s)

    def chunks(self, seed: np.random.SeedSequence, chunk_size: int = DEFAULT_CHUNK) -> Iterator[np.ndarray]:
        return rechunk(self._blocks(seed), chunk_size)

    def rate_at(self, t: np.ndarray) -> np.ndarray:
        """Expected rate (req/s) at times t."""
        return np.full(np.shape(t), self.rate_rps)

    def expected_count(self, start_s: float = 0.0, end_s: float | None = None) -> float:
        end = self.duration_s if end_s is None else min(end_s, self.duration_s)
        return self.rate_rps * max(0.0, end - max(0.0, start_s))

    def scaled(self, factor: float) -> "Poisson":
        """The same process at `factor` times the rate."""
        return Poisson(self.rate_rps * factor, self.duration_s)

    def describe(self) -> dict:
        return {"kind": "poisson", "rate_rps": self.rate_rps, "duration_s": self.duration_s}

    def __repr__(self) -> str:
        return f"Poisson(rate_rps={self.rate_rps:g}, duration_s={self.duration_s:g})"

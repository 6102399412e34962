"""Helpers shared by the trace tests: seeds, one-shot arrivals through chunks, the base contract."""
from __future__ import annotations

import numpy as np


def seed(n: int = 2024) -> np.random.SeedSequence:
    return np.random.SeedSequence(n)


def concat(source, s, chunk_size=65536) -> np.ndarray:
    """All arrivals of `source`, checking every chunk is a non-empty float64 array of at most chunk_size."""
    parts = list(source.chunks(s, chunk_size))
    assert all(p.dtype == np.float64 and 0 < p.size <= chunk_size for p in parts)
    return np.concatenate(parts) if parts else np.empty(0)


def check_contract(times: np.ndarray, duration_s: float | None) -> None:
    """ArrivalSource's contract: times >= 0, non-decreasing, and < duration_s when it is set."""
    assert np.all(times >= 0)
    assert np.all(np.diff(times) >= 0)
    if duration_s is not None:
        assert np.all(times < duration_s)

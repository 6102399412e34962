"""Time-weighted tallies of piecewise-constant levels (instances alive, workers busy, requests in system).

A level changes only at events; its integral over time is accumulated exactly. Only time at or
after `start_s` (the end of warm-up) counts. Optionally the integral is also split into fixed
periods (one minute by default) for the per-minute time series.
"""
from __future__ import annotations

import math

import numpy as np


class LevelTally:
    """Integral of a level over [start_s, now], in level·seconds, plus its maximum."""

    __slots__ = ("start_s", "period_s", "level", "last_s", "area", "max_level", "bins")

    def __init__(self, start_s: float = 0.0, period_s: float | None = None, level: float = 0):
        self.start_s = start_s
        self.period_s = period_s
        self.level = level
        self.last_s = start_s
        self.area = 0.0
        self.max_level = 0
        self.bins: list[float] | None = [] if period_s else None

    def set(self, now_s: float, level: float) -> None:
        """The level becomes `level` at time `now_s` (times never decrease)."""
        if now_s > self.last_s:
            self._advance(now_s)
        self.level = level
        if level > self.max_level and now_s >= self.start_s:
            self.max_level = level

    def add(self, now_s: float, delta: float) -> None:
        self.set(now_s, self.level + delta)

    def _advance(self, now_s: float) -> None:
        last = self.last_s
        level = self.level
        self.last_s = now_s
        if level == 0:
            return
        if level > self.max_level:
            self.max_level = level
        self.area += level * (now_s - last)
        bins = self.bins
        if bins is None:
            return
        p = self.period_s
        k0 = int((last - self.start_s) // p)
        k1 = int((now_s - self.start_s) // p)
        if len(bins) <= k1:
            bins.extend([0.0] * (k1 + 1 - len(bins)))
        if k0 == k1:
            bins[k0] += level * (now_s - last)
            return
        edge = self.start_s + (k0 + 1) * p
        bins[k0] += level * (edge - last)
        for k in range(k0 + 1, k1):
            bins[k] += level * p
        bins[k1] += level * (now_s - (self.start_s + k1 * p))

    def close(self, end_s: float) -> None:
        """Account up to `end_s` (the end of the measured window)."""
        if end_s > self.last_s:
            self._advance(end_s)

    def mean(self, end_s: float) -> float:
        span = end_s - self.start_s
        return self.area / span if span > 0 else float(self.level)

    def per_period(self, n_periods: int, end_s: float) -> np.ndarray:
        """Time-average level in each period; the last one, cut by `end_s`, over its own length."""
        out = np.zeros(n_periods)
        if self.bins:
            k = min(n_periods, len(self.bins))
            out[:k] = self.bins[:k]
        lengths = np.full(n_periods, float(self.period_s))
        last = end_s - self.start_s - (n_periods - 1) * self.period_s
        if 0 < last < self.period_s:
            lengths[-1] = last
        return out / lengths


def periods_in(span_s: float, period_s: float) -> int:
    return max(1, math.ceil(span_s / period_s))

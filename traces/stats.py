"""Statistics of an arrival stream, computed in one streaming pass in flat memory.

Counts are kept per second of the window (4 bytes a second: 10 MB for 30 days), from which the
per-minute rates, peaks and the index of dispersion at coarser windows follow; gaps go into a
fixed log-spaced histogram. Nothing per request is kept.

- index of dispersion at window w: variance / mean of the number of arrivals in consecutive
  windows of w seconds (1 for a Poisson process at every w; > 1 for bursty traffic).
- peak-to-mean: the busiest minute's rate over the mean rate.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Iterable

import numpy as np

DISPERSION_WINDOWS_S = (1, 10, 60, 600, 3600)
GAP_EDGES_S = np.logspace(-6, 6, 121)  # 10 bins per decade, 1 µs .. 11.6 days


@dataclass
class TraceStats:
    requests: int
    duration_s: float
    first_s: float | None
    last_s: float | None
    mean_rps: float
    peak_rps_1s: float
    peak_rps_1min: float
    peak_to_mean: float
    dispersion: dict[int, float]
    gap_counts: np.ndarray = field(repr=False)
    per_second: np.ndarray = field(repr=False)

    def per_minute(self) -> np.ndarray:
        """Arrivals in each minute of the window."""
        return _aggregate(self.per_second, 60)

    def as_dict(self) -> dict:
        return {"requests": self.requests, "duration_s": self.duration_s, "first_s": self.first_s,
                "last_s": self.last_s, "mean_rps": self.mean_rps, "peak_rps_1s": self.peak_rps_1s,
                "peak_rps_1min": self.peak_rps_1min, "peak_to_mean": self.peak_to_mean,
                "index_of_dispersion": {f"{w}s": v for w, v in self.dispersion.items()}}


def _aggregate(per_second: np.ndarray, w: int) -> np.ndarray:
    """Counts in consecutive windows of w seconds (a partial last window is dropped)."""
    n = per_second.size // w
    return per_second[: n * w].reshape(n, w).sum(axis=1, dtype=np.int64)


def trace_stats(chunks: Iterable[np.ndarray], duration_s: float | None,
                progress: Callable[[int, float], None] | None = None) -> TraceStats:
    """One pass over the chunks; `duration_s` (None: up to the last arrival) sets the window."""
    counts = np.zeros(0, dtype=np.int32)
    gaps = np.zeros(GAP_EDGES_S.size + 1, dtype=np.int64)  # [under, bins..., over]
    n = 0
    first = last = None
    for t in chunks:
        if t.size == 0:
            continue
        sec = t.astype(np.int64)
        need = int(sec[-1]) + 1
        if counts.size < need:
            counts = np.concatenate([counts, np.zeros(max(need, 2 * counts.size) - counts.size, np.int32)])
        lo = int(sec[0])
        c = np.bincount(sec - lo)
        counts[lo:lo + c.size] += c.astype(np.int32)
        d = np.diff(t) if last is None else np.diff(np.concatenate([[last], t]))
        gaps += np.bincount(np.searchsorted(GAP_EDGES_S, d, side="right"), minlength=gaps.size)
        if first is None:
            first = float(t[0])
        last = float(t[-1])
        n += t.size
        if progress is not None:
            progress(t.size, last)
    end = duration_s if duration_s is not None else (math.nextafter(last, math.inf) if last is not None else 0.0)
    n_sec = max(1, math.ceil(end))
    if counts.size < n_sec:
        counts = np.concatenate([counts, np.zeros(n_sec - counts.size, np.int32)])
    counts = counts[:n_sec]
    mean = n / end if end > 0 else 0.0
    per_min = _aggregate(counts, 60)
    peak_1min = float(per_min.max()) / 60.0 if per_min.size else float(counts.sum()) / max(end, 1e-9)
    disp = {}
    for w in DISPERSION_WINDOWS_S:
        agg = _aggregate(counts, w)
        if agg.size >= 10 and agg.mean() > 0:
            disp[w] = float(agg.var(ddof=1) / agg.mean())
    return TraceStats(requests=n, duration_s=float(end), first_s=first, last_s=last, mean_rps=mean,
                      peak_rps_1s=float(counts.max()) if counts.size else 0.0, peak_rps_1min=peak_1min,
                      peak_to_mean=peak_1min / mean if mean > 0 else math.nan, dispersion=disp,
                      gap_counts=gaps, per_second=counts)

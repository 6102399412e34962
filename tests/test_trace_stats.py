"""Trace statistics: exact counts against a direct computation, and dispersion against theory."""
from __future__ import annotations

import numpy as np
import pytest

from traces.files import TimestampList
from traces.poisson import Poisson
from traces.stats import GAP_EDGES_S, trace_stats


def test_stats_match_a_direct_computation():
    rng = np.random.default_rng(3)
    t = np.sort(rng.uniform(0, 7200, 50_000))
    src = TimestampList(t.tolist(), duration_s=7200.0)
    s = trace_stats(src.chunks(None, chunk_size=777), src.duration_s)
    assert s.requests == 50_000 and s.duration_s == 7200.0
    assert s.mean_rps == pytest.approx(50_000 / 7200)
    per_min = np.bincount((t // 60).astype(int), minlength=120)
    per_sec = np.bincount(t.astype(int), minlength=7200)
    assert np.array_equal(s.per_minute(), per_min)
    assert s.peak_rps_1min == per_min.max() / 60 and s.peak_rps_1s == per_sec.max()
    assert s.peak_to_mean == pytest.approx(per_min.max() / 60 / (50_000 / 7200))
    assert s.dispersion[60] == pytest.approx(per_min.var(ddof=1) / per_min.mean())
    gaps = np.diff(t)
    assert s.gap_counts.sum() == gaps.size
    assert np.array_equal(s.gap_counts[1:-1], np.histogram(gaps, GAP_EDGES_S)[0])


def test_poisson_index_of_dispersion_is_one():
    src = Poisson(20.0, 5 * 86400)
    s = trace_stats(src.chunks(np.random.SeedSequence(4)), src.duration_s)
    # Counts in windows of w s are Poisson: variance/mean = 1; the estimate from m windows has
    # a standard error of about sqrt(2/(m-1)).
    for w, v in s.dispersion.items():
        m = int(s.duration_s // w)
        assert v == pytest.approx(1.0, abs=4 * np.sqrt(2 / (m - 1)))

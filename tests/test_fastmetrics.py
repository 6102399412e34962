"""`sim.fastmetrics` against the numpy code it replaced, bit for bit.

The reference below is a verbatim copy of `Collector` (without the record sink) and of
`LogHistogram.add` as they were before the numba kernels: bincount per counter, lexsort for the
per-minute p99, numpy for the histogram's bucket index. The kernels must reproduce its state
exactly (counters, float sums, histogram, per-minute counts and p99, the carried minute, the
series) on every stream of chunks in arrival order.
"""
from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sim import fastmetrics
from sim.histogram import LogHistogram
from sim.metrics import OK, REJECTED, SERIES_COLUMNS, THROTTLED, TIMEOUT, Collector

COUNT_NAMES = ("arrivals", "completions", "rejections", "timeouts", "cold_starts")
COUNTERS = ("requests", "completed", "throttled", "rejected_queue", "timeouts", "cold_starts", "served")


# ---------------------------------------------------------------------------- reference
# Verbatim copies of LogHistogram.add and of Collector (record-sink branch left out) as they were
# before the numba kernels.
def ref_hist_add(self: LogHistogram, values) -> None:
    v = np.asarray(values, dtype=np.float64).ravel()
    if v.size == 0:
        return
    vmin = float(v.min())  # NaN propagates into min and max
    vmax = float(v.max())
    if not vmin >= 0.0:
        raise ValueError(f"values must be non-negative and not NaN, got {vmin!r}")
    if vmax == math.inf:
        raise ValueError("values must be finite, got inf")

    n = self._n
    if vmin >= self._min_value:
        idx = np.log(v)
    else:
        with np.errstate(divide="ignore"):
            idx = np.log(v)
    idx -= self._log_min
    idx *= self._inv_log_gamma
    np.ceil(idx, out=idx)
    np.clip(idx, 0.0, n - 1, out=idx)
    pos = idx.astype(np.int64)
    pos += 1
    if vmin < self._min_value:
        pos[v < self._min_value] = 0
    if vmax > self._max_value:
        pos[v > self._max_value] = n + 1
    # bincount was measured faster than np.add.at (1e6 values: ~1.0 vs ~1.1 ms).
    self._counts += np.bincount(pos, minlength=n + 2)
    self._count += int(v.size)
    self._sum += float(v.sum())
    self._min = min(self._min, vmin)
    self._max = max(self._max, vmax)


class RefCollector:
    """Aggregates finalised chunks of request outcomes for one platform run."""

    def __init__(self, warmup_s: float, period_s: float = 60.0):
        self.warmup_s = warmup_s
        self.period_s = period_s
        self.hist = LogHistogram()
        self.requests = 0
        self.completed = 0
        self.throttled = 0
        self.rejected_queue = 0
        self.timeouts = 0
        self.cold_starts = 0
        self.sojourn_s = 0.0  # sum over served requests (ok and timeout) of time in system
        self.served = 0
        self._counts: dict[str, np.ndarray] = {k: np.zeros(0, np.int64) for k in
                                               ("arrivals", "completions", "rejections", "timeouts", "cold_starts")}
        self._p99: list[float] = []
        self._carry_minute = -1
        self._carry: np.ndarray = np.zeros(0)
        self._first_index = 0

    def _bump(self, name: str, minutes: np.ndarray) -> None:
        if minutes.size == 0:
            return
        c = np.bincount(minutes)
        arr = self._counts[name]
        if arr.size < c.size:
            arr = np.concatenate([arr, np.zeros(c.size - arr.size, np.int64)])
        arr[: c.size] += c
        self._counts[name] = arr

    def add_chunk(self, t: np.ndarray, status: np.ndarray, cold: np.ndarray,
                  latency_ms: np.ndarray, done_s: np.ndarray, extra: dict | None = None) -> None:
        """Take one finalised chunk (all its requests resolved), in arrival order."""
        self._first_index += t.size
        keep = t >= self.warmup_s
        if not keep.all():
            t, status, cold, latency_ms, done_s = t[keep], status[keep], cold[keep], latency_ms[keep], done_s[keep]
        n = t.size
        if n == 0:
            return
        ok = status == OK
        served = ok | (status == TIMEOUT)
        self.requests += n
        self.completed += int(ok.sum())
        self.throttled += int((status == THROTTLED).sum())
        self.rejected_queue += int((status == REJECTED).sum())
        self.timeouts += int((status == TIMEOUT).sum())
        self.cold_starts += int(cold.sum())
        self.served += int(served.sum())
        self.sojourn_s += float((done_s[served] - t[served]).sum())
        lat_ok = latency_ms[ok]
        ref_hist_add(self.hist, lat_ok)

        minute = ((t - self.warmup_s) // self.period_s).astype(np.int64)
        self._bump("arrivals", minute)
        self._bump("rejections", minute[(status == THROTTLED) | (status == REJECTED)])
        self._bump("timeouts", minute[status == TIMEOUT])
        self._bump("cold_starts", minute[cold])
        self._bump("completions", ((done_s[ok] - self.warmup_s) // self.period_s).astype(np.int64))
        self._p99_by_minute(minute[ok], lat_ok)

    def _p99_by_minute(self, minute: np.ndarray, lat: np.ndarray) -> None:
        """Nearest-rank p99 of the latencies of each arrival minute; the last minute waits for the next chunk."""
        if self._carry.size:
            minute = np.concatenate([np.full(self._carry.size, self._carry_minute), minute])
            lat = np.concatenate([self._carry, lat])
        if minute.size == 0:
            return
        last = minute[-1]
        done = minute < last
        self._store_p99(minute[done], lat[done])
        self._carry_minute = int(last)
        self._carry = lat[~done]

    def _store_p99(self, minute: np.ndarray, lat: np.ndarray) -> None:
        if minute.size == 0:
            return
        order = np.lexsort((lat, minute))
        m, v = minute[order], lat[order]
        starts = np.flatnonzero(np.r_[True, m[1:] != m[:-1]])
        sizes = np.diff(np.r_[starts, m.size])
        ranks = starts + np.ceil(0.99 * sizes).astype(np.int64) - 1
        need = int(m[-1]) + 1
        if len(self._p99) < need:
            self._p99.extend([math.nan] * (need - len(self._p99)))
        for k, val in zip(m[starts].tolist(), v[ranks].tolist()):
            self._p99[k] = val

    def close(self) -> None:
        if self._carry.size:
            self._store_p99(np.full(self._carry.size, self._carry_minute), self._carry)
            self._carry = np.zeros(0)

    def series(self, n_periods: int, instances: np.ndarray, busy: np.ndarray) -> pd.DataFrame:
        """The per-period time series of the measured window, as a flat table."""
        def fit(a: np.ndarray) -> np.ndarray:
            out = np.zeros(n_periods, dtype=a.dtype)
            k = min(n_periods, a.size)
            out[:k] = a[:k]
            return out

        p99 = np.full(n_periods, np.nan)
        k = min(n_periods, len(self._p99))
        p99[:k] = self._p99[:k]
        data = {"minute": np.arange(n_periods),
                "start_s": self.warmup_s + self.period_s * np.arange(n_periods)}
        for name in ("arrivals", "completions", "rejections", "timeouts", "cold_starts"):
            data[name] = fit(self._counts[name])
        data["instances"] = instances
        data["busy"] = busy
        data["p99_ms"] = p99
        return pd.DataFrame(data, columns=list(SERIES_COLUMNS))


# ---------------------------------------------------------------------------- comparing
def bits(x) -> np.ndarray:
    return np.asarray(x, dtype=np.float64).view(np.int64)


def assert_same_float(got: float, want: float) -> None:
    assert (math.isnan(got) and math.isnan(want)) or bits(got) == bits(want), (got, want)


def assert_same_hist(got: LogHistogram, want: LogHistogram) -> None:
    assert np.array_equal(got.bucket_counts, want.bucket_counts)
    assert got.count == want.count
    assert_same_float(got.sum, want.sum)
    assert_same_float(got._min, want._min)
    assert_same_float(got._max, want._max)


def padded(a, size: int, fill) -> np.ndarray:
    """`a` (at most `size` long) filled up to `size` with `fill`."""
    a = np.asarray(a)
    out = np.full(size, fill, dtype=a.dtype)
    out[:a.size] = a
    return out


def assert_same(got: Collector, want: RefCollector) -> None:
    for name in COUNTERS:
        assert getattr(got, name) == getattr(want, name), name
    assert_same_float(got.sojourn_s, want.sojourn_s)
    assert_same_hist(got.hist, want.hist)
    size = max([got._counts.shape[1], len(want._p99)] + [a.size for a in want._counts.values()])
    for row, name in zip(got._counts, COUNT_NAMES):
        assert np.array_equal(padded(row, size, 0), padded(want._counts[name], size, 0)), name
    p_got, p_want = padded(got._p99, size, math.nan), padded(np.array(want._p99, dtype=float), size, math.nan)
    assert np.array_equal(np.isnan(p_got), np.isnan(p_want))
    assert np.array_equal(bits(p_got[~np.isnan(p_got)]), bits(p_want[~np.isnan(p_want)]))
    assert np.array_equal(bits(got._carry[:got._carry_n]), bits(want._carry))
    if want._carry.size:
        assert got._carry_minute == want._carry_minute


def assert_same_series(got: Collector, want: RefCollector, n_periods: int) -> None:
    rng = np.random.default_rng(n_periods)
    instances, busy = rng.random(n_periods), rng.random(n_periods)
    a, b = got.series(n_periods, instances, busy), want.series(n_periods, instances, busy)
    pd.testing.assert_frame_equal(a, b, check_exact=True)
    p_a, p_b = a["p99_ms"].to_numpy(), b["p99_ms"].to_numpy()
    assert np.array_equal(bits(p_a[~np.isnan(p_a)]), bits(p_b[~np.isnan(p_b)]))


def feed(chunks, warmup_s: float, period_s: float, check_every_chunk: bool = True):
    got, want = Collector(warmup_s, period_s), RefCollector(warmup_s, period_s)
    for chunk in chunks:
        got.add_chunk(*chunk)
        want.add_chunk(*chunk)
        if check_every_chunk:
            assert_same(got, want)
    got.close()
    want.close()
    assert_same(got, want)
    return got, want


# ---------------------------------------------------------------------------- generated streams
H = LogHistogram()


def edge_latencies(rng: np.random.Generator, n: int) -> np.ndarray:
    """Latencies on and next to bucket edges, at min_value and max_value, 0, below and above."""
    k = rng.integers(0, H.num_buckets + 1, n)
    edge = np.exp(H._log_min + k * math.log(H.gamma))
    nudged = np.where(rng.random(n) < 0.5, edge, np.nextafter(edge, np.where(rng.random(n) < 0.5, 0.0, np.inf)))
    special = np.array([0.0, 5e-324, 1e-4, H.min_value, np.nextafter(H.min_value, 0), np.nextafter(H.min_value, 1),
                        H.max_value, np.nextafter(H.max_value, 0), np.nextafter(H.max_value, np.inf), 3e9, 1e300])
    return np.where(rng.random(n) < 0.1, special[rng.integers(0, special.size, n)], nudged)


def make_stream(seed: int, n: int, period_s: float, warmup_frac: float, weights: tuple[int, ...],
                cold_p: float, tie_p: float, edge_p: float, n_cuts: int):
    """Requests in arrival order, cut into chunks; returns (chunks, warmup_s)."""
    rng = np.random.default_rng(seed)
    span = period_s * rng.choice([0.5, 3.0, 20.0])
    warmup_s = float(rng.choice([0.0, warmup_frac * span, 1.5 * period_s]))
    t = rng.uniform(0.0, span, n)
    on_edge = rng.random(n) < edge_p  # exactly on, or next to, a minute boundary
    boundary = warmup_s + period_s * rng.integers(0, int(span / period_s) + 2, n)
    boundary = np.where(rng.random(n) < 0.5, boundary, np.nextafter(boundary, np.where(rng.random(n) < 0.5, 0, np.inf)))
    t = np.where(on_edge, boundary, t)
    t = np.where(rng.random(n) < tie_p, np.roll(t, 1), t)  # equal arrival times
    t = np.sort(t)
    p = np.asarray(weights, dtype=float) + 1e-9
    status = rng.choice(4, n, p=p / p.sum()).astype(np.int8)
    cold = rng.random(n) < cold_p
    lat = np.where(rng.random(n) < 0.5, rng.lognormal(math.log(20.0), 1.5, n), edge_latencies(rng, n))
    lat = np.where(rng.random(n) < 0.02, 0.0, lat)
    # Completions: after the arrival, often across minute boundaries, sometimes exactly on one.
    done = t + rng.exponential(period_s * rng.choice([0.01, 1.0]), n)
    done = np.where(rng.random(n) < edge_p, np.maximum(boundary, warmup_s), done)
    nan = (status == THROTTLED) | (status == REJECTED)
    lat[nan] = np.nan
    done[nan] = np.nan
    lat[status == TIMEOUT] = 1000.0 * period_s
    cuts = np.sort(rng.integers(0, n + 1, n_cuts))
    bounds = np.r_[0, cuts, n]
    chunks = [(t[a:b], status[a:b], cold[a:b], lat[a:b], done[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]
    return chunks, warmup_s


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(0, 600),
       period_s=st.sampled_from([60.0, 1.0, 0.7, 0.1, 1e-3]),
       warmup_frac=st.sampled_from([0.0, 0.3, 0.999]),
       weights=st.tuples(*[st.integers(0, 4)] * 4), cold_p=st.sampled_from([0.0, 0.2, 1.0]),
       tie_p=st.sampled_from([0.0, 0.3]), edge_p=st.sampled_from([0.0, 0.1, 0.6]),
       n_cuts=st.integers(0, 12))
def test_streams_match_the_reference(seed, n, period_s, warmup_frac, weights, cold_p, tie_p, edge_p, n_cuts):
    chunks, warmup_s = make_stream(seed, n, period_s, warmup_frac, weights, cold_p, tie_p, edge_p, n_cuts)
    got, want = feed(chunks, warmup_s, period_s)
    n_periods = max(1, got._counts.shape[1] + 2)
    assert_same_series(got, want, n_periods)
    assert_same_series(got, want, max(1, n_periods // 3))


@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_small_hand_drawn_streams_match_the_reference(data):
    """Tiny chunks (sizes 0 and 1 included) of hand-drawn values: ties, zeros, boundaries."""
    period_s = data.draw(st.sampled_from([1.0, 60.0]))
    sizes = data.draw(st.lists(st.integers(0, 4), max_size=8))
    times = st.sampled_from([0.0, 0.5, 1.0, np.nextafter(1.0, 0), 2.0, 59.99, 60.0, 61.0, 120.0])
    chunks, last = [], 0.0
    for size in sizes:
        t = np.array(sorted(data.draw(st.lists(times.filter(lambda x: x >= last), min_size=size, max_size=size))))
        last = t[-1] if size else last
        status = np.array(data.draw(st.lists(st.integers(0, 3), min_size=size, max_size=size)), dtype=np.int8)
        cold = np.array(data.draw(st.lists(st.booleans(), min_size=size, max_size=size)), dtype=bool)
        lat = np.array(data.draw(st.lists(st.sampled_from([0.0, -0.0, 1e-3, 5.0, 5.0, 1e12]), min_size=size,
                                          max_size=size)), dtype=float)
        done = t + np.array(data.draw(st.lists(st.sampled_from([0.0, 0.5, 60.0]), min_size=size, max_size=size)))
        lat[status != OK] = np.where(status[status != OK] == TIMEOUT, 7.0, np.nan)
        chunks.append((t, status, cold, lat, done))
    feed(chunks, data.draw(st.sampled_from([0.0, 0.5, 1.0])), period_s)


def test_a_few_million_requests_in_chunks_match_the_reference():
    rng = np.random.default_rng(2026)
    n = 3_000_000
    t = np.cumsum(rng.exponential(1 / 400.0, n))  # about 24,000 requests a minute
    status = rng.choice(4, n, p=[0.94, 0.02, 0.02, 0.02]).astype(np.int8)
    cold = rng.random(n) < 0.01
    lat = rng.lognormal(math.log(20.0), 0.8, n) + np.where(cold, 900.0, 0.0)
    done = t + lat / 1000.0
    nan = (status == THROTTLED) | (status == REJECTED)
    lat[nan] = np.nan
    done[nan] = np.nan
    bounds = np.r_[0, np.cumsum(rng.integers(1, 131072, 100)), n]
    bounds = bounds[bounds <= n]
    chunks = [(t[a:b], status[a:b], cold[a:b], lat[a:b], done[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]
    got, want = feed(chunks, warmup_s=300.0, period_s=60.0, check_every_chunk=False)
    assert got.requests > 2_800_000
    assert_same_series(got, want, got._counts.shape[1] + 1)


def test_one_request_per_minute_and_long_quiet_gaps_match_the_reference():
    t = np.array([0.0, 61.0, 3600.0, 3600.0, 86_400.0 * 30])
    lat = np.array([10.0, 20.0, 30.0, 40.0, 50.0])
    chunks = [(t[i:i + 2], np.zeros(t[i:i + 2].size, np.int8), np.ones(t[i:i + 2].size, bool), lat[i:i + 2],
               t[i:i + 2] + 0.02) for i in range(0, 5, 2)]
    got, want = feed(chunks, 0.0, 60.0)
    assert_same_series(got, want, 43_201)


# ---------------------------------------------------------------------------- histogram
def test_histogram_add_matches_the_reference_on_millions_of_values():
    rng = np.random.default_rng(7)
    got, want = LogHistogram(), LogHistogram()
    for _ in range(10):
        v = np.concatenate([rng.lognormal(math.log(20.0), 3.0, 2_000_000), edge_latencies(rng, 500_000),
                            rng.uniform(0.0, 2e-3, 10_000)])
        got.add(v)
        ref_hist_add(want, v)
    assert_same_hist(got, want)


def test_histogram_buckets_match_the_reference_next_to_every_edge():
    k = np.arange(H.num_buckets + 1)
    edge = np.exp(H._log_min + k * math.log(H.gamma))
    near = [edge]
    for direction in (0.0, np.inf):
        x = edge
        for _ in range(4):
            x = np.nextafter(x, direction)
            near.append(x)
    v = np.concatenate(near)
    for rel_err, lo, hi in ((0.01, 1e-3, 1e9), (0.05, 0.1, 1e4), (0.001, 1.0, 2.0)):
        got, want = LogHistogram(rel_err, lo, hi), LogHistogram(rel_err, lo, hi)
        w = np.concatenate([v, lo * np.exp(np.arange(got.num_buckets + 1) * math.log(got.gamma))])
        got.add(w)
        ref_hist_add(want, w)
        assert_same_hist(got, want)


@pytest.mark.parametrize("bad, message", [(np.nan, "got nan"), (-1.0, "got -1.0"), (np.inf, "got inf")])
def test_invalid_latencies_raise_the_same_error_and_count_nothing(bad, message):
    t = np.array([0.0, 1.0, 2.0])
    args = (t, np.zeros(3, np.int8), np.zeros(3, bool), np.array([5.0, bad, 7.0]), t + 0.01)
    got, want = Collector(0.0), RefCollector(0.0)
    with pytest.raises(ValueError) as want_err:
        want.add_chunk(*args)
    with pytest.raises(ValueError, match=message) as got_err:
        got.add_chunk(*args)
    assert str(got_err.value) == str(want_err.value)
    assert_same(got, RefCollector(0.0))  # nothing of the chunk was counted
    h = LogHistogram()
    with pytest.raises(ValueError, match=message):
        h.add(np.array([1.0, bad]))
    assert h.count == 0 and not h.bucket_counts.any()


def test_arrivals_out_of_order_are_refused():
    c = Collector(0.0)
    ok = (np.zeros(2, np.int8), np.zeros(2, bool), np.ones(2), np.array([5.0, 6.0]))
    c.add_chunk(np.array([3.0, 4.0]), *ok)
    counts = c._counts.copy()
    with pytest.raises(ValueError, match="non-decreasing"):
        c.add_chunk(np.array([4.5, 200.0, 5.0]), *[np.resize(a, 3) for a in ok])  # rows before counted, then taken back
    with pytest.raises(ValueError, match="non-decreasing"):
        Collector(0.0).add_chunk(np.array([2.0, 1.0]), *ok)
    assert c.requests == 2
    assert np.array_equal(c._counts[:, :counts.shape[1]], counts) and not c._counts[:, counts.shape[1]:].any()


def test_completion_before_the_warm_up_is_refused():
    c = Collector(10.0)
    with pytest.raises(ValueError, match="completes before the warm-up"):
        c.add_chunk(np.array([10.0]), np.zeros(1, np.int8), np.zeros(1, bool), np.ones(1), np.array([9.0]))
    assert c.requests == 0


def test_the_first_problem_in_row_order_is_the_one_reported():
    """`scan_chunk` reports the first problem in row order: a completion too far out still wins
    over a later arrival out of order, and loses to an earlier one."""
    ok = (np.zeros(3, np.int8), np.zeros(3, bool), np.ones(3))
    far = 2.0 ** 60
    with pytest.raises(ValueError, match="infinite or NaN time"):
        Collector(0.0).add_chunk(np.array([1.0, 2.0, 1.5]), *ok, np.array([far, 3.0, 3.0]))
    with pytest.raises(ValueError, match="non-decreasing"):
        Collector(0.0).add_chunk(np.array([1.0, 0.5, 2.0]), *ok, np.array([3.0, 3.0, far]))
    with pytest.raises(ValueError, match="infinite or NaN time"):
        Collector(0.0).add_chunk(np.array([1.0, 2.0, 3.0]), *ok, np.array([3.0, far, np.inf]))


# ---------------------------------------------------------------------------- the kernels' parts
def test_floordiv_is_numpys_floor_divide():
    rng = np.random.default_rng(3)
    a = np.concatenate([rng.uniform(-1e3, 1e7, 200_000), rng.lognormal(0, 20, 200_000), [0.0, -0.0, 1e-300, -1e-300,
                        1e300, 59.99999999999999, 60.0, 120.0, 2.0**53]])
    for b in (60.0, 0.1, 0.7, 1e-3, 3.0, -2.5):
        want = np.floor_divide(a, b)
        got = np.array([fastmetrics.floordiv(x, b) for x in a[:2000]])
        assert np.array_equal(bits(got), bits(want[:2000]))
        # the minute table reproduces the floor division over the whole range of a chunk
        if b > 0:
            x = np.abs(a)
            x = x[x / b < 1e6]
            edges = np.zeros(int(x.max() / b) + 2)
            fastmetrics.fill_minute_edges(edges, 0, b)
            m = np.searchsorted(edges, x, side="right") - 1
            assert np.array_equal(m, np.floor_divide(x, b).astype(np.int64))


def test_minute_edges_are_the_first_value_of_each_minute():
    for p in (60.0, 0.1, 0.7, 1e-3, 86_400.0):
        edges = np.zeros(5000)
        fastmetrics.fill_minute_edges(edges, 0, p)
        m = np.arange(edges.size)
        assert np.array_equal(np.floor_divide(edges, p), m)
        assert np.array_equal(np.floor_divide(np.nextafter(edges[1:], -np.inf), p), m[1:] - 1)


def test_p99_is_the_nearest_rank_of_a_stable_sort():
    """Whatever the hint (none, the answer, far below or above it, a zero)."""
    rng = np.random.default_rng(11)
    for size in list(range(1, 300)) + [1000, 6001, 65_536]:
        v = rng.choice([0.0, -0.0, 1.0, 2.0, 3.0], size) if size % 2 else rng.lognormal(0, 1, size)
        cut = int(rng.integers(0, size + 1))
        rank = int(np.ceil(0.99 * size)) - 1
        want = np.sort(v, kind="stable")[rank]
        for hint in (math.nan, want, want / 0.8, 0.01 * want, 100.0 * want + 1.0, 0.0):
            assert bits(fastmetrics.minute_p99(v[:cut], v[cut:], hint)) == bits(want), hint
    # Large values exactly where a large minute is sampled: the sampled bound is too high and the
    # search falls back to all values.
    v = rng.random(8192)
    v[::8] += 10.0
    assert fastmetrics.minute_p99(v[:100], v[100:], math.nan) == np.sort(v)[int(np.ceil(0.99 * v.size)) - 1]


def test_the_kernels_run_as_plain_python():
    """With numba's JIT disabled the kernels are ordinary Python and give the same results."""
    code = (
        "import sys; sys.path[:0] = [{tests!r}]\n"
        "import test_fastmetrics as T\n"
        "chunks, w = T.make_stream(5, 300, 1.0, 0.3, (3, 1, 1, 1), 0.2, 0.3, 0.3, 4)\n"
        "T.feed(chunks, w, 1.0)\n"
        "import sim.fastmetrics as F; assert not hasattr(F.scan_chunk, 'signatures')\n"
    ).format(tests=str(Path(__file__).parent))
    env = dict(os.environ, NUMBA_DISABLE_JIT="1")
    root = Path(__file__).resolve().parents[1]
    subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=root)

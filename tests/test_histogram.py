"""Tests for sim.histogram.LogHistogram: relative-error bound, exact merges, edge cases."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.histogram import LogHistogram, nearest_rank

QS = [0.5, 0.9, 0.95, 0.99, 0.999]
# Bucket edges are reached exactly, so allow float rounding on top of rel_err.
SLACK = 1e-9


def exact_quantile(values, q_num: int, q_den: int) -> float:
    """Nearest-rank quantile q = q_num/q_den by integer arithmetic: k = max(1, ceil(q*n))."""
    s = np.sort(np.asarray(values, dtype=np.float64))
    n = s.size
    k = max(1, -(-q_num * n // q_den))
    return float(s[k - 1])


def as_fraction(q: float) -> tuple[int, int]:
    den = 10_000
    num = round(q * den)
    assert num / den == q
    return num, den


def assert_rel_close(got: float, want: float, rel: float) -> None:
    assert abs(got - want) <= rel * (1 + SLACK) * abs(want), (got, want, abs(got - want) / want)


# ---------------------------------------------------------------------------- distributions
def _samples(kind: str) -> np.ndarray:
    rng = np.random.default_rng(12345)
    n = 100_000
    if kind == "lognormal":
        return rng.lognormal(mean=np.log(95.0), sigma=0.6, size=n)
    if kind == "exponential":
        return rng.exponential(scale=100.0, size=n)
    if kind == "constant":
        return np.full(n, 123.456)
    if kind == "bimodal":  # warm invocations around 30 ms, cold starts around 2.5 s
        warm = rng.lognormal(np.log(30.0), 0.2, size=n)
        cold = rng.lognormal(np.log(2500.0), 0.3, size=n)
        return np.where(rng.random(n) < 0.05, cold, warm)
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["lognormal", "exponential", "constant", "bimodal"])
def test_quantiles_within_rel_err_on_distributions(kind):
    data = _samples(kind)
    h = LogHistogram()
    h.add(data)
    got = h.quantiles(QS)
    for q, g in zip(QS, got):
        assert_rel_close(g, exact_quantile(data, *as_fraction(q)), 0.01)
        assert h.quantile(q) == g
    assert h.count == data.size
    assert h.min == data.min() and h.max == data.max()
    assert h.mean == pytest.approx(data.mean(), rel=1e-12)
    if kind == "constant":
        assert np.all(got == 123.456)  # clamped into [min, max]


def test_bucket_layout_and_representatives():
    h = LogHistogram()
    gamma = 1.01 / 0.99
    assert h.gamma == pytest.approx(gamma)
    assert 1300 <= h.num_buckets <= 1500
    assert h.bucket_counts.dtype == np.int64 and h.bucket_counts.size == h.num_buckets + 2
    # Every bucket edge and its neighbours are reported within rel_err.
    edges = 1e-3 * gamma ** np.arange(h.num_buckets)
    edges = edges[edges <= 1e9]
    probes = np.concatenate([edges, np.nextafter(edges, 0), np.nextafter(edges, np.inf),
                             edges * math.sqrt(gamma)])
    probes = probes[(probes >= 1e-3) & (probes <= 1e9)]
    for v in probes[::37]:
        one = LogHistogram()
        one.add([1e-3, v, 1e9])  # keep min/max away so clamping does not help
        assert_rel_close(one.quantile(0.5), v, 0.01)


def test_memory_is_flat():
    h = LogHistogram()
    before = h.bucket_counts.nbytes
    for _ in range(5):
        h.add(np.random.default_rng(0).exponential(50.0, 20_000))
    assert h.bucket_counts.nbytes == before
    assert h.count == 100_000


# ---------------------------------------------------------------------------- hypothesis
pos_floats = st.floats(min_value=1e-3, max_value=1e9, allow_nan=False, allow_infinity=False)
value_lists = st.lists(pos_floats, min_size=1, max_size=200)
q_fracs = st.integers(min_value=0, max_value=1000)


@settings(max_examples=150, deadline=None)
@given(values=value_lists, q_nums=st.lists(q_fracs, min_size=1, max_size=8))
def test_hyp_quantile_rel_err(values, q_nums):
    h = LogHistogram()
    h.add(values)
    got = h.quantiles([q / 1000 for q in q_nums])
    for qn, g in zip(q_nums, got):
        want = exact_quantile(values, qn, 1000)
        assert_rel_close(g, want, h.rel_err)
        assert min(values) <= g <= max(values)
    assert h.quantile(0) == min(values)
    assert h.quantile(1) == max(values)


@settings(max_examples=50, deadline=None)
@given(values=value_lists, rel_err=st.sampled_from([0.001, 0.005, 0.02, 0.05]))
def test_hyp_quantile_rel_err_other_accuracies(values, rel_err):
    h = LogHistogram(rel_err=rel_err)
    h.add(values)
    for qn in (1, 250, 500, 900, 990, 999):
        assert_rel_close(h.quantile(qn / 1000), exact_quantile(values, qn, 1000), rel_err)


@settings(max_examples=100, deadline=None)
@given(values=value_lists, cut=st.integers(min_value=0, max_value=200))
def test_hyp_merge_of_split_equals_whole(values, cut):
    cut = min(cut, len(values))
    whole, a, b = LogHistogram(), LogHistogram(), LogHistogram()
    whole.add(values)
    a.add(values[:cut])
    b.add(values[cut:])
    for merged in (a + b, b + a):
        assert np.array_equal(merged.bucket_counts, whole.bucket_counts)
        assert merged.count == whole.count
        assert merged.min == whole.min and merged.max == whole.max
        assert merged.sum == pytest.approx(whole.sum, rel=1e-12)
        assert np.array_equal(merged.quantiles(QS), whole.quantiles(QS))
    a += b
    assert np.array_equal(a.bucket_counts, whole.bucket_counts)


@settings(max_examples=100, deadline=None)
@given(values=value_lists)
def test_hyp_exact_summaries(values):
    h = LogHistogram()
    h.add(values)
    assert h.count == len(values)
    assert h.min == min(values)
    assert h.max == max(values)
    assert h.sum == pytest.approx(math.fsum(values), rel=1e-12)
    assert h.mean == pytest.approx(math.fsum(values) / len(values), rel=1e-12)
    assert int(h.bucket_counts.sum()) == len(values)


@settings(max_examples=100, deadline=None)
@given(values=value_lists, chunk=st.integers(min_value=1, max_value=50))
def test_hyp_chunks_equal_at_once(values, chunk):
    once, chunked, scalars = LogHistogram(), LogHistogram(), LogHistogram()
    once.add(values)
    for i in range(0, len(values), chunk):
        chunked.add(values[i:i + chunk])
    for v in values:
        scalars.add(v)
    for h in (chunked, scalars):
        assert np.array_equal(h.bucket_counts, once.bucket_counts)
        assert (h.count, h.min, h.max) == (once.count, once.min, once.max)
        assert h.sum == pytest.approx(once.sum, rel=1e-12)


def test_nearest_rank():
    assert nearest_rank(0.07, 100) == 7  # 0.07 * 100 == 7.000000000000001 in float
    assert nearest_rank(0.5, 3) == 2
    assert nearest_rank(0.0, 10) == 1
    assert nearest_rank(1.0, 10) == 10
    assert nearest_rank(0.999, 100_000) == 99_900
    assert nearest_rank(0.5, 0) == 0
    for n in (1, 7, 100, 12345):
        for qn in range(0, 1001):
            assert nearest_rank(qn / 1000, n) == max(1, -(-qn * n // 1000))


# ---------------------------------------------------------------------------- edge cases
def test_empty():
    h = LogHistogram()
    assert h.count == 0 and len(h) == 0
    assert math.isnan(h.quantile(0.5))
    assert np.all(np.isnan(h.quantiles(QS)))
    assert math.isnan(h.mean) and math.isnan(h.min) and math.isnan(h.max)
    assert "count=0" in repr(h)
    h.add([])
    assert h.count == 0
    r = LogHistogram.from_dict(json.loads(json.dumps(h.to_dict())))
    assert r.count == 0 and math.isnan(r.quantile(0.9))


def test_single_value():
    h = LogHistogram()
    h.add(42.5)
    assert h.count == 1
    for q in [0, 0.001, 0.5, 0.99, 1]:
        assert h.quantile(q) == 42.5  # clamped into [min, max]
    assert h.mean == 42.5


def test_zeros_and_below_min():
    h = LogHistogram()
    h.add([0.0, 0.0, 5e-4, 10.0])
    assert h.bucket_counts[0] == 3
    assert h.min == 0.0
    assert h.quantile(0.5) == 0.0  # underflow bucket reports the exact minimum
    assert h.quantile(0.75) == 0.0
    assert_rel_close(h.quantile(1.0), 10.0, 0.0)
    assert_rel_close(h.quantile(0.76), 10.0, 0.01)
    g = LogHistogram()
    g.add(np.zeros(10))
    assert g.quantile(0.5) == 0.0 and g.quantile(1) == 0.0 and g.mean == 0.0
    # min_value itself is a regular value, just below it underflows
    m = LogHistogram()
    m.add([1e-3, np.nextafter(1e-3, 0)])
    assert m.bucket_counts[0] == 1 and m.bucket_counts[1] == 1


def test_above_max():
    h = LogHistogram()
    h.add([1.0, 2e9, 5e12])
    assert h.bucket_counts[-1] == 2
    assert h.quantile(1.0) == 5e12
    assert h.quantile(0.9) == 5e12  # overflow bucket reports the exact maximum
    h2 = LogHistogram()
    h2.add([1e9])  # max_value itself is a regular value
    assert h2.bucket_counts[-1] == 0 and h2.bucket_counts[-2] == 1


@pytest.mark.parametrize("bad", [math.nan, -1.0, [1.0, math.nan], [1.0, -1e-9], math.inf])
def test_bad_values_rejected_and_nothing_added(bad):
    h = LogHistogram()
    h.add([5.0])
    with pytest.raises(ValueError):
        h.add(bad)
    assert h.count == 1 and int(h.bucket_counts.sum()) == 1 and h.sum == 5.0


@pytest.mark.parametrize("q", [-0.1, 1.1, math.nan])
def test_bad_quantile(q):
    h = LogHistogram()
    h.add([1.0])
    with pytest.raises(ValueError):
        h.quantile(q)


@pytest.mark.parametrize(
    "kwargs", [{"rel_err": 0.02}, {"min_value": 1e-2}, {"max_value": 1e8}]
)
def test_merge_incompatible_rejected(kwargs):
    a, b = LogHistogram(), LogHistogram(**kwargs)
    a.add([1.0])
    b.add([2.0])
    with pytest.raises(ValueError):
        a.merge(b)
    with pytest.raises(ValueError):
        a += b
    with pytest.raises(ValueError):
        _ = a + b
    assert a.count == 1
    with pytest.raises(TypeError):
        a.merge([1.0])


@pytest.mark.parametrize(
    "kwargs", [{"rel_err": 0}, {"rel_err": 1}, {"min_value": 0}, {"min_value": 10, "max_value": 1}]
)
def test_bad_parameters(kwargs):
    with pytest.raises(ValueError):
        LogHistogram(**kwargs)


def test_merge_empty_and_add_leaves_operands():
    a, b = LogHistogram(), LogHistogram()
    a.add([1.0, 2.0])
    c = a + b
    assert np.array_equal(c.bucket_counts, a.bucket_counts) and c.min == 1.0 and c.max == 2.0
    c.add([3.0])
    assert a.count == 2 and b.count == 0  # __add__ copies
    b += a
    assert b.count == 2 and b.min == 1.0


def test_to_dict_round_trip():
    rng = np.random.default_rng(7)
    h = LogHistogram()
    h.add(np.concatenate([rng.lognormal(3, 1, 5000), [0.0, 2e10]]))
    d = h.to_dict()
    assert len(d["index"]) == len(d["counts"]) == int(np.count_nonzero(h.bucket_counts))
    assert all(c > 0 for c in d["counts"])
    r = LogHistogram.from_dict(json.loads(json.dumps(d)))
    assert np.array_equal(r.bucket_counts, h.bucket_counts)
    assert (r.count, r.sum, r.min, r.max) == (h.count, h.sum, h.min, h.max)
    assert np.array_equal(r.quantiles(QS), h.quantiles(QS))
    assert r.compatible(h)
    bad = dict(d, count=d["count"] + 1)
    with pytest.raises(ValueError):
        LogHistogram.from_dict(bad)


def test_repr():
    h = LogHistogram()
    h.add([10.0, 20.0, 30.0])
    s = repr(h)
    assert s.startswith("LogHistogram(") and "count=3" in s and "p99=" in s

"""Composition of sources: superpose, thin, scale, shift, window. Exact semantics on timestamp
lists, theory on Poisson (tolerances stated per test), attributes carried through."""
from __future__ import annotations

import math
from typing import Iterator

import numpy as np
import pytest
import scipy.stats as st
from tracehelp import concat, seed

from traces.base import DEFAULT_CHUNK, ArrivalSource, Batch, child_seed, rechunk
from traces.compose import Scaled, Shifted, Superpose, Thinned, Window
from traces.files import TimestampList
from traces.generators import MMPP, Diurnal, Ramp
from traces.poisson import Poisson


def all_batches(source, s, chunk_size=65536) -> Batch:
    parts = list(source.batches(s, chunk_size))
    assert all(0 < p.times.size <= chunk_size for p in parts)
    assert all(set(p.attrs) == set(source.attribute_names) for p in parts)
    assert all(v.size == p.times.size for p in parts for v in p.attrs.values())
    names = source.attribute_names
    return Batch(np.concatenate([p.times for p in parts]),
                 {n: np.concatenate([p.attrs[n] for p in parts]) for n in names})


class Tagged(ArrivalSource):
    """A tiny source with per-request attributes (`tokens`, and `tag` if given)."""

    def __init__(self, times, tokens, tag=None, duration_s=None):
        self.times = np.asarray(times, dtype=float)
        self.attrs = {"tokens": np.asarray(tokens, dtype=np.int64)}
        if tag is not None:
            self.attrs["tag"] = np.asarray(tag, dtype=np.float32)
        self.attribute_names = tuple(self.attrs)
        self.duration_s = duration_s

    def chunks(self, seed, chunk_size=DEFAULT_CHUNK):
        return rechunk([self.times], chunk_size)

    def batches(self, seed, chunk_size=DEFAULT_CHUNK) -> Iterator[Batch]:
        for i in range(0, self.times.size, chunk_size):
            yield Batch(self.times[i:i + chunk_size], {n: v[i:i + chunk_size] for n, v in self.attrs.items()})


class Endless(ArrivalSource):
    """One arrival per second forever (duration None); counts the chunks it was asked for."""

    def __init__(self):
        self.served = 0

    def chunks(self, seed, chunk_size=DEFAULT_CHUNK):
        start = 0
        while True:
            self.served += 1
            yield np.arange(start, start + chunk_size, dtype=float)
            start += chunk_size


# -- superpose -------------------------------------------------------------------------------------

def test_superpose_of_poissons_is_poisson_with_the_summed_rate():
    # count within 3σ of (λ1 + λ2) T; gaps Exp(λ1 + λ2) by KS (p > 0.001)
    a, b = Poisson(30.0, 5000.0), Poisson(70.0, 5000.0)
    times = Superpose([a, b]).arrivals(seed(1))
    assert abs(times.size - 100 * 5000) < 3 * math.sqrt(100 * 5000)
    assert st.kstest(np.diff(np.concatenate([[0.0], times])), "expon", args=(0, 0.01)).pvalue > 0.001
    # exactly the sorted union of the children run with child seeds
    union = np.sort(np.concatenate([a.arrivals(child_seed(seed(1), 0)), b.arrivals(child_seed(seed(1), 1))]))
    assert np.array_equal(times, union)


def test_superpose_contract_and_duration():
    srcs = [Poisson(50.0, 3000.0), MMPP([1.0, 60.0], [20.0, 5.0], 2000.0), Ramp(0.0, 40.0, 2500.0)]
    sp = Superpose(srcs)
    assert sp.duration_s == 3000.0
    x = concat(sp, seed(2), 65536)
    assert np.array_equal(x, concat(sp, seed(2), 1000)) and np.array_equal(x, concat(sp, seed(2), 999_983))
    assert not np.array_equal(x, concat(sp, seed(3)))
    assert np.all(np.diff(x) >= 0) and x[0] >= 0 and x[-1] < 3000.0
    gens = Superpose(srcs[1:])
    assert gens.expected_count() == pytest.approx(srcs[1].expected_count() + srcs[2].expected_count())
    assert gens.expected_count(0, 1000) == pytest.approx(srcs[1].expected_count() / 2 + 40 * 1000 / 2.5 / 2)
    assert Superpose([Poisson(1.0, 10.0), Endless()]).duration_s is None
    assert Superpose([TimestampList([1.0]), Poisson(1.0, 10.0)]).expected_count() is None


def test_superpose_ties_go_to_the_lower_index_and_attributes_are_united():
    first = Tagged([1.0, 2.0, 2.0, 3.0], tokens=[10, 11, 12, 13], tag=[0, 0, 0, 0], duration_s=4.0)
    second = Tagged([2.0, 2.0, 5.0], tokens=[20, 21, 22], duration_s=6.0)
    third = TimestampList([0.5, 2.0, 7.0])
    sp = Superpose([first, second, third])
    assert sp.attribute_names == ("tokens", "tag") and sp.duration_s > 7.0
    for chunk_size in (1, 2, 3, 100):
        out = all_batches(sp, seed(), chunk_size)
        assert out.times.tolist() == [0.5, 1.0, 2.0, 2.0, 2.0, 2.0, 2.0, 3.0, 5.0, 7.0]
        tokens = out.attrs["tokens"]
        assert np.array_equal(tokens, [np.nan, 10, 11, 12, 20, 21, np.nan, 13, 22, np.nan], equal_nan=True)
        assert tokens.dtype == np.float64  # missing in a child: NaN, float
        assert np.array_equal(out.attrs["tag"], [np.nan, 0, 0, 0, np.nan, np.nan, np.nan, 0, np.nan, np.nan],
                              equal_nan=True)
        assert np.array_equal(concat(sp, seed(), chunk_size), out.times)
    # an attribute every child has keeps its dtype
    both = Superpose([first, second])
    assert all_batches(both, seed()).attrs["tokens"].dtype == np.int64


def test_superpose_streams_many_chunks_in_order():
    # long children with many chunks each, interleaved: still exactly the sorted union
    lists = [TimestampList(np.sort(np.random.default_rng(i).uniform(0, 100, 200_000))) for i in range(3)]
    sp = Superpose(lists)
    assert np.array_equal(concat(sp, seed(), 4096), np.sort(np.concatenate([s.times for s in lists]),
                                                            kind="stable"))


# -- window, shift, scale on timestamp lists (exact) -----------------------------------------------

def test_window_keeps_a_half_open_interval_rebased():
    src = TimestampList([0.0, 1.0, 2.0, 2.5, 3.0, 4.0, 9.0], duration_s=10.0)
    w = Window(src, 2.0, 2.0)
    assert w.duration_s == 2.0
    for chunk_size in (1, 3, 100):
        assert concat(w, seed(), chunk_size).tolist() == [0.0, 0.5, 1.0]
    assert concat(Window(src, 0.0, 10.0), seed()).tolist() == src.times.tolist()
    assert list(Window(src, 10.0, 5.0).chunks(seed())) == []


def test_window_of_a_generator_is_its_slice_and_stops_reading():
    src = Poisson(100.0, 1000.0)
    full = src.arrivals(seed(4))
    inside = full[(full >= 250.0) & (full < 400.0)] - 250.0
    assert np.array_equal(Window(src, 250.0, 150.0).arrivals(seed(4)), inside)
    endless = Endless()
    assert concat(Window(endless, 100.0, 50.0), seed(), 10).tolist() == list(np.arange(50.0))
    assert endless.served == 1  # read one DEFAULT_CHUNK of the child, then stopped


def test_shift_moves_times_and_window():
    src = TimestampList([0.0, 1.5, 2.0], duration_s=3.0)
    sh = Shifted(src, 10.0)
    assert concat(sh, seed(), 2).tolist() == [10.0, 11.5, 12.0] and sh.duration_s == 13.0
    assert Shifted(Endless(), 1.0).duration_s is None
    # a time just below the end that would round onto the shifted end stays inside the window
    edge = TimestampList([np.nextafter(1.0, 0.0)], duration_s=1.0)
    t = Shifted(edge, 1e17).arrivals(seed())
    assert t[0] < 1e17 + 1.0 == Shifted(edge, 1e17).duration_s


def test_scale_on_timestamp_lists_thins_or_refuses():
    src = TimestampList(np.arange(20_000) * 0.01)
    assert np.array_equal(Scaled(src, 1.0).arrivals(seed()), src.times)
    half = Scaled(src, 0.5).arrivals(seed(5))
    assert np.all(np.isin(half, src.times)) and np.all(np.diff(half) > 0)
    # Binomial(20,000, 0.5): within 3σ = 3·sqrt(5000)
    assert abs(half.size - 10_000) < 3 * math.sqrt(5000)
    assert np.array_equal(half, Scaled(src, 0.5).arrivals(seed(5)))
    with pytest.raises(ValueError, match="superpose"):
        Scaled(src, 2.0)
    with pytest.raises(ValueError, match="cannot be scaled up"):
        Scaled(Superpose([Poisson(1.0, 10.0), src]), 1.5)


def test_scale_on_a_generator_uses_its_rate_function():
    gen = Diurnal(2 * 86400.0, mean_rps=0.5, peak_to_mean=2.0)
    up = Scaled(gen, 3.0)
    assert up.expected_count() == pytest.approx(3 * gen.expected_count(), rel=1e-12)
    assert np.array_equal(up.arrivals(seed(6)), gen.scaled(3.0).arrivals(seed(6)))
    n = up.arrivals(seed(6)).size
    assert abs(n - up.expected_count()) < 3 * math.sqrt(up.expected_count())  # Poisson, 3σ
    # compositions of generators scale too
    sp = Scaled(Superpose([gen, Shifted(Ramp(1.0, 2.0, 100.0), 50.0)]), 2.0)
    assert sp.expected_count() == pytest.approx(2 * (gen.expected_count() + 150.0), rel=1e-12)


def test_thinned_poisson_is_poisson():
    # keep 0.3 of rate 100: count within 3σ of 30·T; gaps Exp(30) (KS p > 0.001)
    th = Thinned(Poisson(100.0, 4000.0), 0.3)
    t = th.arrivals(seed(7))
    assert abs(t.size - 120_000) < 3 * math.sqrt(120_000)
    assert st.kstest(np.diff(np.concatenate([[0.0], t])), "expon", args=(0, 1 / 30)).pvalue > 0.001
    assert np.array_equal(concat(th, seed(7), 1000), t)
    assert Thinned(Diurnal(86400.0, mean_rps=1.0, peak_to_mean=2.0), 0.5).expected_count() \
        == pytest.approx(43200.0)
    with pytest.raises(ValueError):
        Thinned(th, 1.5)


# -- attributes through every wrapper --------------------------------------------------------------

def test_attributes_propagate_through_window_shift_thin_and_scale():
    src = Tagged(np.arange(1000) * 0.1, tokens=np.arange(1000), duration_s=100.0)
    w = all_batches(Window(src, 10.0, 5.0), seed(), 7)
    assert np.allclose(w.times, np.arange(100, 150) * 0.1 - 10.0) and w.attrs["tokens"].tolist() == \
        list(range(100, 150))
    s = all_batches(Shifted(src, 2.0), seed(), 64)
    assert s.attrs["tokens"].tolist() == list(range(1000)) and np.allclose(s.times, src.times + 2.0)
    th = Thinned(src, 0.5)
    t = all_batches(th, seed(8), 33)
    assert np.allclose(t.times, t.attrs["tokens"] * 0.1)  # each kept request keeps its own tokens
    assert np.array_equal(t.times, concat(th, seed(8), 50))
    sc = all_batches(Scaled(src, 0.5), seed(8), 33)
    assert sc.attrs["tokens"].dtype == np.int64 and np.allclose(sc.times, sc.attrs["tokens"] * 0.1)
    assert Window(src, 0, 1).attribute_names == ("tokens",)


def test_describe_and_repr():
    gen = Poisson(5.0, 100.0)
    for src, kind in [(Superpose([gen, gen]), "superpose"), (Thinned(gen, 0.5), "thinned"),
                      (Scaled(gen, 0.5), "scaled"), (Shifted(gen, 5.0), "shifted"),
                      (Window(gen, 1.0, 2.0), "window")]:
        assert src.describe()["kind"] == kind
        assert "Poisson(rate_rps=5" in repr(src)

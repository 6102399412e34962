"""Distribution objects and `parse_dist` (sim/dists.py; DESIGN.md "Distribution spec")."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import scipy.stats as st
from hypothesis import given, settings
from hypothesis import strategies as hst

from sim.dists import Constant, Distribution, Empirical, Exponential, ScipyDist, parse_dist
from sim.errors import ConfigError

SEED = 20240601
N_BIG = 200_000

EMPIRICAL_SAMPLES = [3.0, 7.5, 12.0, 40.0, 41.0, 250.0]

# (id, distribution, exact mean by the textbook formula)
FAMILIES = [
    ("constant", Constant(100.0), 100.0),
    ("expon", Exponential(80.0), 80.0),
    ("lognorm", ScipyDist("lognorm", {"s": 0.4, "scale": 95.0}), 95.0 * math.exp(0.4**2 / 2)),
    ("lognorm_loc", ScipyDist("lognorm", {"s": 0.6, "scale": 50.0, "loc": 10.0}),
     10.0 + 50.0 * math.exp(0.6**2 / 2)),
    ("gamma", ScipyDist("gamma", {"a": 2.5, "scale": 30.0}), 2.5 * 30.0),
    ("scipy_expon", ScipyDist("expon", {"loc": 5.0, "scale": 20.0}), 25.0),
    ("empirical", Empirical(EMPIRICAL_SAMPLES), float(np.mean(EMPIRICAL_SAMPLES))),
]
IDS = [f[0] for f in FAMILIES]

SCIPY_CASES = [
    ("lognorm", {"s": 0.4, "scale": 95.0}),
    ("lognorm", {"s": 0.6, "scale": 50.0, "loc": 10.0}),
    ("gamma", {"a": 2.5, "scale": 30.0}),
    ("weibull_min", {"c": 1.5, "scale": 40.0}),
    ("expon", {"loc": 5.0, "scale": 20.0}),
]

SRC = "scen.yaml"
KEY = "platforms[0].service.warm_ms"


# --------------------------------------------------------------------------- sampling

@pytest.mark.parametrize("name,dist,mean", FAMILIES, ids=IDS)
def test_sample_is_inverse_transform_of_uniforms(name, dist, mean):
    got = dist.sample(np.random.default_rng(SEED), 1000)
    want = dist.ppf(np.random.default_rng(SEED).random(1000))
    assert got.shape == (1000,)
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("name,dist,mean", FAMILIES, ids=IDS)
def test_mean_is_exact(name, dist, mean):
    assert dist.mean() == pytest.approx(mean, rel=1e-12)


@pytest.mark.parametrize("name,dist,mean", FAMILIES, ids=IDS)
def test_sample_mean_within_4_standard_errors(name, dist, mean):
    x = dist.sample(np.random.default_rng(SEED), N_BIG)
    assert np.all(x >= 0)
    se = x.std(ddof=1) / math.sqrt(N_BIG)
    if se == 0:  # constant
        assert np.all(x == dist.mean())
    else:
        assert abs(x.mean() - dist.mean()) < 4 * se


@pytest.mark.parametrize("family,params", SCIPY_CASES, ids=[f"{f}-{i}" for i, (f, _) in enumerate(SCIPY_CASES)])
def test_scipy_samples_pass_ks_test(family, params):
    d = ScipyDist(family, params)
    x = d.sample(np.random.default_rng(SEED), 20_000)
    ref = getattr(st, family)(**params)
    assert st.kstest(x, ref.cdf).pvalue > 0.001
    assert d.mean() == pytest.approx(float(ref.mean()), rel=1e-12)


def test_exponential_matches_scipy_expon():
    d = Exponential(80.0)
    u = np.random.default_rng(SEED).random(5000)
    np.testing.assert_allclose(d.ppf(u), st.expon(scale=80.0).ppf(u), rtol=1e-12)
    x = d.sample(np.random.default_rng(SEED), 20_000)
    assert st.kstest(x, st.expon(scale=80.0).cdf).pvalue > 0.001


def test_ppf_at_zero_is_support_start():
    assert Exponential(3.0).ppf(np.array([0.0]))[0] == 0.0
    assert ScipyDist("lognorm", {"s": 0.5, "scale": 10.0, "loc": 2.0}).ppf(np.array([0.0]))[0] == 2.0
    assert Empirical([5.0, 1.0, 3.0]).ppf(np.array([0.0]))[0] == 1.0


LOGNORM_PARAMS = [  # tests' and benchmarks' parameter sets, and extremes
    {"s": 0.25, "scale": 8.5}, {"s": 0.3, "scale": 1000.0}, {"s": 0.25, "scale": 7.0}, {"s": 0.4, "scale": 95.0},
    {"s": 0.6, "scale": 50.0, "loc": 10.0}, {"s": 0.6, "scale": 120.0}, {"s": 0.3, "scale": 400.0},
    {"s": 1.2, "scale": 0.02}, {"s": 0.5, "scale": 10.0, "loc": 2.0}, {"s": 3.0, "scale": 1e-3, "loc": 0.5},
    {"s": 0.05}, {"s": 2.0, "scale": 1e6},
]


@pytest.mark.parametrize("params", LOGNORM_PARAMS, ids=[str(p) for p in LOGNORM_PARAMS])
def test_lognorm_ppf_is_scipys_bit_for_bit(params):
    """ScipyDist's own lognorm quantiles are exactly those of scipy's frozen distribution: the
    engines' durations (and results pinned in other tests) do not depend on which computes them."""
    d = ScipyDist("lognorm", params)
    ref = st.lognorm(**params).ppf
    rng = np.random.default_rng(SEED)
    edges = np.array([0.0, 5e-324, 1e-300, 1e-20, 1e-10, 0.5, 1 - 2**-53, 1 - 2**-52, 0.9999999, 1.0])
    cases = [rng.random(1_000_003), rng.random(50_000) ** 40, 1.0 - rng.random(50_000) ** 40, edges,
             rng.random(65_536)[5::3], rng.random((7, 9)), np.concatenate([edges, rng.random(100)]),
             np.array([-0.0, -0.5, 1.5, np.nan]), rng.random(1), np.zeros(0)]
    for u in cases:
        got, want = d.ppf(u), ref(u)
        assert got.shape == want.shape and got.dtype == want.dtype
        assert np.array_equal(got, want, equal_nan=True)
        real = ~np.isnan(want)  # (NaN, outside [0, 1]: scipy's is positive, ours has any sign)
        assert np.array_equal(np.signbit(got[real]), np.signbit(want[real]))
    for x in (0.0, 0.3, 1 - 2**-53):
        assert d.ppf(x) == ref(x) and type(d.ppf(x)) is type(ref(x))
    assert np.array_equal(d.ppf([0.1, 0.7]), ref([0.1, 0.7]))


@pytest.mark.parametrize("name,dist,mean", FAMILIES, ids=IDS)
def test_ppf_is_elementwise(name, dist, mean):
    """The fast engine maps windows of a chunk's uniforms (its cold starts) where the SimPy
    engine maps the whole chunk: the values must not depend on the slice."""
    u = np.random.default_rng(SEED).random(5000)
    whole = dist.ppf(u)
    for a, b in ((0, 1), (3, 4), (17, 273), (256, 768), (4095, 5000)):
        np.testing.assert_array_equal(dist.ppf(u[a:b]), whole[a:b])


# --------------------------------------------------------------------------- empirical

def test_empirical_returns_only_given_samples_uniformly():
    samples = [3.0, 7.5, 12.0, 40.0, 41.0, 250.0]
    d = Empirical(samples)
    n = 60_000
    x = d.sample(np.random.default_rng(SEED), n)
    assert set(np.unique(x)) <= set(samples)
    counts = np.array([(x == s).sum() for s in samples])
    assert counts.sum() == n
    assert st.chisquare(counts, np.full(len(samples), n / len(samples))).pvalue > 0.001


def test_empirical_duplicates_weigh_by_multiplicity():
    d = Empirical([1.0, 2.0, 2.0, 2.0])
    n = 40_000
    x = d.sample(np.random.default_rng(SEED), n)
    counts = np.array([(x == 1.0).sum(), (x == 2.0).sum()])
    assert counts.sum() == n
    assert st.chisquare(counts, [n / 4, 3 * n / 4]).pvalue > 0.001
    assert d.mean() == 1.75


def test_empirical_ppf_edges():
    d = Empirical([10.0, 20.0, 30.0, 40.0])
    u = np.array([0.0, 0.2499, 0.25, 0.5, 0.75, np.nextafter(1.0, 0.0)])
    np.testing.assert_array_equal(d.ppf(u), [10.0, 10.0, 20.0, 30.0, 40.0, 40.0])


@pytest.mark.parametrize("bad", [[], [1.0, -2.0], [1.0, float("nan")], [float("inf")]])
def test_empirical_rejects_bad_samples(bad):
    with pytest.raises(ValueError):
        Empirical(bad)


# --------------------------------------------------------------------------- common random numbers

def test_common_random_numbers_lognormal_scale_coupling():
    a = ScipyDist("lognorm", {"s": 0.4, "scale": 95.0})
    b = ScipyDist("lognorm", {"s": 0.4, "scale": 120.0})
    xa = a.sample(np.random.default_rng(SEED), 10_000)
    xb = b.sample(np.random.default_rng(SEED), 10_000)
    np.testing.assert_allclose(xb / xa, 120.0 / 95.0, rtol=1e-12, atol=0)
    # monotone coupling: the same requests are the slow ones on both
    np.testing.assert_array_equal(np.argsort(xa, kind="stable"), np.argsort(xb, kind="stable"))


@settings(max_examples=30, deadline=None)
@given(u=hst.lists(hst.floats(0.0, 1.0, exclude_max=True), min_size=2, max_size=30),
       s=hst.floats(0.05, 2.0), scale1=hst.floats(1.0, 1000.0), scale2=hst.floats(1.0, 1000.0))
def test_ppf_is_monotone_and_lognorm_scale_is_a_factor(u, s, scale1, scale2):
    u = np.sort(np.array(u))
    d1 = ScipyDist("lognorm", {"s": s, "scale": scale1})
    d2 = ScipyDist("lognorm", {"s": s, "scale": scale2})
    x1, x2 = d1.ppf(u), d2.ppf(u)
    assert np.all(np.diff(x1) >= 0)
    np.testing.assert_allclose(x2, x1 * (scale2 / scale1), rtol=1e-12)
    for d in (Exponential(scale1), Empirical([scale1, scale2, s])):
        assert np.all(np.diff(d.ppf(u)) >= 0)


# --------------------------------------------------------------------------- repr / to_spec / equality

def test_repr_shows_parameters():
    assert repr(Constant(100)) == "Constant(value=100)"
    assert repr(Exponential(80)) == "Exponential(mean=80)"
    r = repr(ScipyDist("lognorm", {"s": 0.4, "scale": 95}))
    assert "lognorm" in r and "s=0.4" in r and "scale=95" in r
    r = repr(Empirical([1.0, 2.0, 6.0]))
    assert "n=3" in r and "mean=3" in r


@pytest.mark.parametrize("spec", [
    {"dist": "constant", "value": 100},
    {"dist": "expon", "mean": 100},
    {"dist": "expon", "scale": 40},
    {"dist": "expon", "scale": 40, "loc": 3},
    {"dist": "lognorm", "s": 0.4, "scale": 95, "loc": 0},
    {"dist": "gamma", "a": 2.5, "scale": 30},
    {"dist": "empirical", "samples": [5, 1, 3, 3]},
], ids=lambda s: s["dist"] + "-" + "-".join(k for k in s if k != "dist"))
def test_to_spec_round_trips(spec):
    d = parse_dist(spec)
    out = d.to_spec()
    assert json.loads(json.dumps(out)) == out  # JSON-serialisable
    again = parse_dist(out)
    assert again == d
    assert hash(again) == hash(d)
    assert again.mean() == d.mean()
    u = np.random.default_rng(SEED).random(100)
    np.testing.assert_array_equal(again.ppf(u), d.ppf(u))


def test_empirical_file_round_trips(tmp_path):
    np.save(tmp_path / "warm.npy", np.array([4.0, 2.0, 9.0]))
    d = parse_dist({"dist": "empirical", "file": "warm.npy"}, base_dir=tmp_path)
    # The saved spec names the resolved file, so it loads from any folder (a results folder).
    assert d.to_spec() == {"dist": "empirical", "file": str((tmp_path / "warm.npy").resolve())}
    assert parse_dist(d.to_spec(), base_dir=tmp_path / "elsewhere") == d


def test_equality_and_hash():
    a = parse_dist({"dist": "lognorm", "s": 0.4, "scale": 95})
    b = parse_dist({"dist": "lognorm", "scale": 95, "s": 0.4})
    assert a == b and hash(a) == hash(b)
    assert a != parse_dist({"dist": "lognorm", "s": 0.4, "scale": 96})
    assert Constant(1.0) != Exponential(1.0)
    assert Exponential(5.0) == Exponential(5)
    assert len({Constant(3.0), Constant(3), Exponential(3.0)}) == 2


# --------------------------------------------------------------------------- parse_dist: accepted

@pytest.mark.parametrize("value", [0, 100, 2.5])
def test_bare_number_is_constant(value):
    d = parse_dist(value, source=SRC, key=KEY)
    assert isinstance(d, Constant)
    assert d.mean() == value
    np.testing.assert_array_equal(d.sample(np.random.default_rng(0), 3), [value] * 3)


def test_expon_by_scale_or_mean():
    d = parse_dist({"dist": "expon", "scale": 40}, source=SRC, key=KEY)
    assert isinstance(d, Exponential) and d.mean() == 40.0
    assert parse_dist({"dist": "expon", "mean": 40}) == d
    assert parse_dist({"dist": "exponential", "mean": 40}) == d
    shifted = parse_dist({"dist": "expon", "scale": 40, "loc": 3})
    assert shifted.mean() == pytest.approx(43.0)


def test_scipy_family_accepted():
    d = parse_dist({"dist": "lognorm", "s": 0.4, "scale": 95, "loc": 0}, source=SRC, key=KEY)
    assert isinstance(d, ScipyDist)
    assert d.mean() == pytest.approx(95 * math.exp(0.08), rel=1e-12)


def test_empirical_inline_samples():
    d = parse_dist({"dist": "empirical", "samples": [3, 1, 2]}, source=SRC, key=KEY)
    assert isinstance(d, Empirical) and d.mean() == 2.0


def test_empirical_file_relative_to_base_dir(tmp_path, monkeypatch):
    data = np.array([12.0, 15.5, 11.0, 30.0])
    (tmp_path / "profiles").mkdir()
    np.save(tmp_path / "profiles" / "warm.npy", data)
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # must not resolve against the working directory
    d = parse_dist({"dist": "empirical", "file": "warm.npy"}, source=SRC, key=KEY,
                   base_dir=tmp_path / "profiles")
    assert isinstance(d, Empirical)
    np.testing.assert_array_equal(np.sort(d.samples), np.sort(data))
    assert d.mean() == pytest.approx(data.mean())
    # an absolute path ignores base_dir
    d2 = parse_dist({"dist": "empirical", "file": str(tmp_path / "profiles" / "warm.npy")}, base_dir=elsewhere)
    np.testing.assert_array_equal(d2.samples, d.samples)


# --------------------------------------------------------------------------- parse_dist: errors

def _err(spec, **kw) -> str:
    with pytest.raises(ConfigError) as ei:
        parse_dist(spec, source=SRC, key=KEY, **kw)
    msg = str(ei.value)
    assert SRC in msg, msg
    assert KEY in msg, msg
    assert ei.value.source == SRC
    assert ei.value.key.startswith(KEY)
    return msg


def test_error_empirical_missing_file(tmp_path):
    msg = _err({"dist": "empirical", "file": "nope.npy"}, base_dir=tmp_path)
    assert "nope.npy" in msg and "file" in msg


def test_error_empirical_unreadable_file(tmp_path):
    (tmp_path / "bad.npy").write_text("not numpy")
    _err({"dist": "empirical", "file": "bad.npy"}, base_dir=tmp_path)


def test_error_empirical_both_samples_and_file(tmp_path):
    np.save(tmp_path / "x.npy", np.array([1.0]))
    msg = _err({"dist": "empirical", "samples": [1.0], "file": "x.npy"}, base_dir=tmp_path)
    assert "samples" in msg and "file" in msg


def test_error_empirical_neither():
    msg = _err({"dist": "empirical"})
    assert "samples" in msg and "file" in msg


@pytest.mark.parametrize("samples", ["1,2,3", [1, "two"], [], [1, -1], [True, 2]])
def test_error_empirical_bad_samples(samples):
    _err({"dist": "empirical", "samples": samples})


@pytest.mark.parametrize("spec,param", [
    ({"dist": "lognorm", "s": "wide", "scale": 95}, "s"),
    ({"dist": "gamma", "a": [2], "scale": 30}, "a"),
    ({"dist": "expon", "mean": "100ms"}, "mean"),
    ({"dist": "expon", "scale": None}, "scale"),
    ({"dist": "constant", "value": "100"}, "value"),
    ({"dist": "constant", "value": True}, "value"),
])
def test_error_non_numeric_parameter(spec, param):
    msg = _err(spec)
    assert f"{KEY}.{param}" in msg
    assert "number" in msg


@pytest.mark.parametrize("family", ["lognormal", "gaussian", "poisson", "rv_continuous", 3])
def test_error_unknown_family(family):
    msg = _err({"dist": family, "s": 1})
    assert str(family) in msg


@pytest.mark.parametrize("spec", [
    {"dist": "lognorm", "s": -1, "scale": 95},
    {"dist": "gamma", "a": 0, "scale": 30},
    {"dist": "lognorm", "s": 0.4, "scale": -95},
    {"dist": "gamma", "a": 2, "scale": float("inf")},
    {"dist": "lognorm", "s": float("nan"), "scale": 95},
    {"dist": "expon", "mean": -5},
    {"dist": "expon", "mean": 0},
    {"dist": "constant", "value": -1},
    {"dist": "constant", "value": float("inf")},
], ids=lambda s: repr(s))
def test_error_parameter_out_of_range(spec):
    _err(spec)


@pytest.mark.parametrize("spec", [
    {"dist": "norm", "loc": 100, "scale": 10},
    {"dist": "t", "df": 3, "loc": 100},
    {"dist": "lognorm", "s": 0.4, "scale": 95, "loc": -10},
])
def test_error_negative_support(spec):
    msg = _err(spec)
    assert "negative" in msg


@pytest.mark.parametrize("spec,bad", [
    ({"dist": "lognorm", "s": 0.4, "scale": 95, "sigma": 1}, "sigma"),
    ({"dist": "lognorm", "scale": 95}, "s"),  # missing required shape
    ({"dist": "constant", "value": 1, "mean": 1}, "mean"),
    ({"dist": "expon", "mean": 1, "rate": 2}, "rate"),
    ({"dist": "empirical", "samples": [1], "weights": [1]}, "weights"),
])
def test_error_unknown_or_missing_parameter_name(spec, bad):
    msg = _err(spec)
    assert bad in msg


def test_error_missing_dist():
    msg = _err({"s": 0.4, "scale": 95})
    assert f"{KEY}.dist" in msg


@pytest.mark.parametrize("spec", ["lognorm", [1, 2], None, True, "100ms"])
def test_error_not_a_mapping(spec):
    _err(spec)


def test_error_without_key_or_source_still_readable():
    with pytest.raises(ConfigError) as ei:
        parse_dist({"dist": "lognormal"})
    assert "lognormal" in str(ei.value)


def test_distribution_is_abstract():
    with pytest.raises(TypeError):
        Distribution()  # type: ignore[abstract]

"""Synthetic generators against theory: counts, profiles, burstiness, exact thinning, and the
ArrivalSource contract (seeds, chunking, window). Tolerances are stated in each test; 3 sigma
is a 0.27 % false-alarm rate per seed, 4 sigma 0.006 %, KS p > 0.001 a 0.1 % one."""
from __future__ import annotations

import math
import time

import numpy as np
import pytest
import scipy.integrate as si
import scipy.stats as st
from tracehelp import check_contract, concat, seed

from sim.dists import Exponential, ScipyDist
from sim.errors import ConfigError
from traces import spec as trace_spec
from traces.generator_specs import KINDS, build_diurnal, build_mmpp, build_ramp, build_renewal, build_spike
from traces.generators import MMPP, Diurnal, Ramp, Renewal, Spike, SpikeShape
from traces.nhpp import NHPP
from traces.poisson import Poisson


def _step_rate(t, seg):  # 10 req/s before 500 s, then 10 + 9 sin: thinned against a bound of 20
    return np.where(t < 500, 10.0, 10.0 + 9.0 * np.sin(t / 50.0))


def general_nhpp(duration_s: float = 1000.0) -> NHPP:
    return NHPP(_step_rate, [0.0, 500.0, duration_s], [20.0, 20.0], duration_s)


def mmpp_count_variance(m: MMPP, t: float) -> float:
    """Var N(t) of a stationary 2-state MMPP: λ̄t + Var ∫ λ(X) (autocovariance π1π2Δ² e^{-(a+b)τ})."""
    a, b = 1 / m.mean_sojourn_s
    pi1, pi2 = m.stationary_distribution()
    d2 = (m.rates_rps[0] - m.rates_rps[1]) ** 2
    q = a + b
    return m.stationary_rate() * t + 2 * pi1 * pi2 * d2 * (t / q - (1 - math.exp(-q * t)) / q ** 2)


# every generator, small enough for the contract tests (name → factory)
GENERATORS = {
    "diurnal": lambda: Diurnal(3 * 86400.0, mean_rps=0.5, peak_to_mean=3.0),
    "diurnal_hourly_weekly": lambda: Diurnal(9 * 86400.0, hourly_rps=[0.1 * (h % 7) for h in range(24)],
                                             weekly=[1, 1, 1, 1, 1, 0.3, 0.2]),
    "mmpp": lambda: MMPP([2.0, 20.0], [30.0, 10.0], 20000.0),
    "spike": lambda: Spike(5.0, [SpikeShape(1000, 200, 50, 1000), SpikeShape(1500, 100, 30, 600)], 4000.0),
    "ramp": lambda: Ramp(1.0, 90.0, 2000.0),
    "renewal": lambda: Renewal(ScipyDist("gamma", {"a": 2.0, "scale": 0.05}), 5000.0),
    "nhpp": lambda: general_nhpp(),
}


# -- the contract, for every generator -------------------------------------------------------------

@pytest.mark.parametrize("name", list(GENERATORS))
def test_contract_seeds_chunking_and_window(name):
    # exact properties (no tolerance): determinism, independence of chunk_size, window, order
    source = GENERATORS[name]()
    a = concat(source, seed(1), 65536)
    b = concat(source, seed(1), 1000)
    c = concat(source, seed(2), 65536)
    assert np.array_equal(a, b)
    assert np.array_equal(a, concat(source, seed(1), 7919))
    assert a.size != c.size or not np.array_equal(a, c)
    check_contract(a, source.duration_s)
    assert np.array_equal(a, source.arrivals(seed(1)))  # no hidden state between calls


@pytest.mark.parametrize("name", list(GENERATORS))
def test_count_within_three_sigma_of_expected_count(name):
    # N ~ Poisson(E N) for the NHPPs; MMPP: exact 2-state variance; renewal: CLT variance
    # σ_g² T / μ³ (and E N = T/μ up to (cv²-1)/2 = -1/4 arrival, negligible). Tolerance 3σ.
    source = GENERATORS[name]()
    n = source.arrivals(seed(3)).size
    mean = source.expected_count()
    if isinstance(source, MMPP):
        var = mmpp_count_variance(source, source.duration_s)
    elif isinstance(source, Renewal):
        mu, var_g = 0.1, 2 * 0.05 ** 2
        var = var_g * source.duration_s / mu ** 3
    else:
        var = mean
    assert abs(n - mean) < 3 * math.sqrt(var), (n, mean, math.sqrt(var))


@pytest.mark.parametrize("name", list(GENERATORS))
def test_scaled_multiplies_rate_and_describe(name):
    # exact: the scaled generator's expected count is factor × (to 1e-12 relative)
    source = GENERATORS[name]()
    for f in (0.5, 3.0):
        assert source.scaled(f).expected_count() == pytest.approx(f * source.expected_count(), rel=1e-12)
        t = np.linspace(0, source.duration_s, 101)[:-1]
        assert np.allclose(source.scaled(f).rate_at(t), f * source.rate_at(t), rtol=1e-12, atol=0)
    d = source.describe()
    assert d["kind"] == source.kind and d["duration_s"] == source.duration_s
    assert type(source).__name__ in repr(source)
    assert np.all(source.rate_at(np.array([-1.0, source.duration_s, 1e12])) == 0)


def test_month_streams_without_materialising():
    # a 30-day diurnal at 100 req/s (~259 M arrivals): the first chunks come at once, small
    source = Diurnal(30 * 86400.0, mean_rps=100.0, peak_to_mean=3.0)
    it = source.chunks(seed(), 4096)
    first = [next(it) for _ in range(3)]
    assert all(c.size == 4096 for c in first) and first[2][-1] < 3600
    mm = MMPP([50.0, 200.0], [60.0, 20.0], 30 * 86400.0).chunks(seed(), 4096)
    assert next(mm).size == 4096


# -- diurnal ---------------------------------------------------------------------------------------

def poisson_chi2_p(observed: np.ndarray, expected: np.ndarray) -> float:
    """p-value of independent Poisson counts against known means (chi-square, df = bins)."""
    return float(st.chi2.sf(np.sum((observed - expected) ** 2 / expected), df=observed.size))


def hour_of_day_counts(times: np.ndarray) -> np.ndarray:
    return np.bincount(((times % 86400.0) // 3600.0).astype(np.int64), minlength=24)


def test_diurnal_hourly_means_follow_the_profile_and_peak_to_mean_is_recovered():
    days, mean, ratio = 20, 2.0, 3.0
    source = Diurnal(days * 86400.0, mean_rps=mean, peak_to_mean=ratio, peak_hour=14)
    times = source.arrivals(seed(5))
    counts = hour_of_day_counts(times)

    def rate(x):
        return float(source.rate_at(np.array([x]))[0])

    expected = np.array([days * si.quad(rate, 3600 * h, 3600 * (h + 1), epsabs=0, epsrel=1e-10)[0]
                         for h in range(24)])
    assert expected.sum() == pytest.approx(mean * days * 86400, rel=1e-9)  # long-run mean exact
    # per hour: Poisson counts, each within 4σ; together a chi-square test, p > 0.001
    assert np.all(np.abs(counts - expected) < 4 * np.sqrt(expected))
    assert poisson_chi2_p(counts, expected) > 0.001
    # the curve's max/mean is peak_to_mean (1e-6 on a 1-s grid), at peak_hour (±1 s)
    grid = np.arange(86400.0)
    r = source.rate_at(grid)
    assert r.max() / r.mean() == pytest.approx(ratio, rel=1e-6)
    assert abs(grid[r.argmax()] - 14 * 3600) <= 1
    # recovered from the data: the count in the 10 minutes around the peak over the mean
    # 10-minute count, within 4σ (Poisson σ of the peak count) of its expectation, which is
    # itself within 0.1 % of peak_to_mean
    exp_peak = days * source.expected_count(14 * 3600 - 300, 14 * 3600 + 300)
    exp_ratio = exp_peak / (mean * days * 600)
    assert exp_ratio == pytest.approx(ratio, rel=1e-3)
    tod = times % 86400.0
    peak_obs = ((tod >= 14 * 3600 - 300) & (tod < 14 * 3600 + 300)).sum()
    assert abs(peak_obs / (times.size / 144) - exp_ratio) < 4 * exp_ratio / math.sqrt(exp_peak)


def test_diurnal_hourly_and_weekly_profiles():
    hourly = [1.0 + (h % 5) for h in range(24)]
    weekly = [1, 1, 1, 1, 1, 0.5, 0.25]
    source = Diurnal(14 * 86400.0, hourly_rps=hourly, weekly=weekly)
    # long-run mean over whole weeks = mean(hourly) exactly (weekly multipliers mean-normalised)
    assert source.expected_count() == pytest.approx(np.mean(hourly) * 14 * 86400, rel=1e-12)
    t = source.arrivals(seed(7))
    w = np.array(weekly) / np.mean(weekly)
    cells = np.bincount((t // 3600).astype(np.int64), minlength=14 * 24).reshape(14, 24)
    expected = np.array([[3600 * hourly[h] * w[d % 7] for h in range(24)] for d in range(14)])
    assert np.all(np.abs(cells - expected) < 4 * np.sqrt(expected))  # 4σ per hour cell
    assert poisson_chi2_p(cells.ravel(), expected.ravel()) > 0.001


@pytest.mark.parametrize("ratio", [1.0, 1.5, 2.0, 10.0, 50.0])
def test_diurnal_any_peak_to_mean_is_exact_and_positive(ratio):
    # exp(k cos) keeps the rate >= 0 for any ratio (1 + a cos would go negative above 2; it is
    # > 0 until the trough underflows, near ratio 25); daily mean exact (1e-10), max/mean =
    # ratio (1e-6 on a 1-s grid)
    source = Diurnal(86400.0, mean_rps=1.0, peak_to_mean=ratio, peak_hour=3.5)
    r = source.rate_at(np.arange(86400.0))
    assert r.min() >= 0 and (ratio > 20 or r.min() > 0)
    assert r.max() / r.mean() == pytest.approx(ratio, rel=1e-6)
    assert source.expected_count() == pytest.approx(86400.0, rel=1e-10)
    assert source.acceptance() > 0.9  # tight bounds: thinning keeps most candidates


# -- MMPP ------------------------------------------------------------------------------------------

def test_mmpp_stationary_distribution_solves_the_balance_equations():
    # π Q = 0 for the uniform-jump chain with π ∝ mean sojourn (1e-12)
    for rates, soj in [([2.0, 20.0], [30.0, 10.0]), ([0.0, 5.0, 50.0], [100.0, 20.0, 3.0])]:
        m = MMPP(rates, soj, 100.0)
        pi = m.stationary_distribution()
        assert np.allclose(pi @ m.generator_matrix(), 0, atol=1e-12)
        assert pi.sum() == pytest.approx(1.0)
        assert m.stationary_rate() == pytest.approx(np.dot(pi, rates))


def test_mmpp_long_run_rate_and_burstiness():
    m = MMPP([2.0, 20.0], [30.0, 10.0], 200_000.0)
    assert m.stationary_rate() == pytest.approx((2 * 30 + 20 * 10) / 40)
    t = m.arrivals(seed(8))
    # batch means over 20 batches of 10,000 s: the overall rate within 4 standard errors
    batch = np.bincount((t // 10_000).astype(np.int64), minlength=20) / 10_000
    se = batch.std(ddof=1) / math.sqrt(batch.size)
    assert abs(batch.mean() - m.stationary_rate()) < 4 * se
    # index of dispersion of 60-s counts: theory 1 + 2π1π2Δ²/λ̄·[1/q − (1−e^{−qw})/(q²w)] ≈ 124;
    # the sample value within 15 % (about 4 standard errors of a variance over 3,333 windows)
    w = 60.0
    counts = np.bincount((t // w).astype(np.int64), minlength=int(m.duration_s // w))
    idc = counts.var(ddof=1) / counts.mean()
    theory = mmpp_count_variance(m, w) / (m.stationary_rate() * w)
    assert idc > 10 and idc == pytest.approx(theory, rel=0.15)
    # while a Poisson's is 1 within 5σ (σ of the sample IDC ≈ sqrt(2/(n−1)))
    p = Poisson(m.stationary_rate(), m.duration_s).arrivals(seed(9))
    pc = np.bincount((p // w).astype(np.int64), minlength=counts.size)
    assert abs(pc.var(ddof=1) / pc.mean() - 1) < 5 * math.sqrt(2 / (pc.size - 1))


def test_mmpp_with_an_off_state():
    # ON/OFF traffic (a state of rate 0): count within 3σ (exact 2-state variance), gaps > the
    # longest within-ON gap exist (the OFF periods are there)
    m = MMPP([0.0, 40.0], [50.0, 25.0], 50_000.0)
    t = m.arrivals(seed(10))
    assert abs(t.size - m.expected_count()) < 3 * math.sqrt(mmpp_count_variance(m, m.duration_s))
    assert np.diff(t).max() > 100


# -- spike and ramp --------------------------------------------------------------------------------

def test_spike_counts_inside_and_outside_match_the_rate_integral():
    base, peak = 5.0, 50.0
    source = Spike(base, [SpikeShape(start_s=1000, ramp_s=200, peak_rps=peak, duration_s=1000)], 4000.0)
    # hand integrals: inside = 5·1000 + 45·(1000 − 200); ramp up = 5·200 + 45·100; outside = 5·3000
    assert source.expected_count(1000, 2000) == pytest.approx(41_000, rel=1e-12)
    assert source.expected_count(1000, 1200) == pytest.approx(5_500, rel=1e-12)
    assert source.expected_count() == pytest.approx(56_000, rel=1e-12)
    assert source.rate_at(np.array([999.0, 1100.0, 1500.0, 1900.0, 2000.0])) == pytest.approx(
        [5.0, 27.5, 50.0, 27.5, 5.0])
    t = source.arrivals(seed(11))
    for a, b, mean in [(1000, 2000, 41_000), (1000, 1200, 5_500), (1200, 1800, 30_000), (0, 1000, 5_000),
                       (2000, 4000, 10_000)]:
        n = ((t >= a) & (t < b)).sum()
        assert abs(n - mean) < 3 * math.sqrt(mean), (a, b, n, mean)  # Poisson counts, 3σ


def test_spikes_overlap_by_adding_their_excess_and_steps_work():
    s = Spike(10.0, [SpikeShape(100, 0, 30, 200), SpikeShape(200, 0, 60, 200)], 1000.0)
    assert s.rate_at(np.array([50.0, 150.0, 250.0, 350.0, 450.0])) == pytest.approx([10, 30, 80, 60, 10])
    assert s.expected_count() == pytest.approx(10 * 1000 + 20 * 200 + 50 * 200, rel=1e-12)
    t = s.arrivals(seed(12))
    n = ((t >= 200) & (t < 300)).sum()
    assert abs(n - 8000) < 3 * math.sqrt(8000)  # 3σ


def test_ramp_first_and_last_tenth_and_time_rescaling():
    a, b, T = 1.0, 9.0, 10_000.0
    source = Ramp(a, b, T)
    t = source.arrivals(seed(13))
    first, last = (t < T / 10).sum(), (t >= 0.9 * T).sum()
    for n, mean in [(first, (1.0 + 1.8) / 2 * 1000), (last, (8.2 + 9.0) / 2 * 1000)]:
        assert abs(n - mean) < 3 * math.sqrt(mean)  # 3σ
    # exactness: mapped through the exact cumulative rate the gaps are Exp(1) (KS p > 0.001)
    cum = a * t + (b - a) * t ** 2 / (2 * T)
    assert st.kstest(np.diff(np.concatenate([[0.0], cum])), "expon").pvalue > 0.001


# -- renewal ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("dist", [ScipyDist("gamma", {"a": 2.0, "scale": 0.05}),
                                  ScipyDist("lognorm", {"s": 1.2, "scale": 0.02}), Exponential(0.03)])
def test_renewal_gaps_follow_the_distribution(dist):
    # KS of all gaps (the first is measured from 0) against the distribution: p > 0.001
    source = Renewal(dist, 3000.0)
    t = source.arrivals(seed(14))
    gaps = np.diff(np.concatenate([[0.0], t]))
    cdf = dist._frozen.cdf if isinstance(dist, ScipyDist) else (lambda x: 1 - np.exp(-x / dist.mean()))
    assert st.kstest(gaps, cdf).pvalue > 0.001
    check_contract(t, source.duration_s)


# -- exact thinning --------------------------------------------------------------------------------

def test_thinning_is_exact():
    # a rate of 10 on [0, 500) thinned from a bound of 20: gaps there are Exp(10) (KS p > 0.001),
    # none capped; over the whole window, the time-rescaled gaps are Exp(1) (KS p > 0.001)
    source = general_nhpp(1000.0)
    assert source.acceptance() == pytest.approx(source.expected_count() / 20_000)
    runs = [source.arrivals(np.random.SeedSequence(15, spawn_key=(i,))) for i in range(20)]
    gaps = np.concatenate([np.diff(r[r < 500]) for r in runs])  # ~100,000 gaps
    assert st.kstest(gaps, "expon", args=(0, 0.1)).pvalue > 0.001
    assert gaps.max() > 0.7  # the tail is there: ~90 gaps > 0.7 s expected, P(none) ~ e^-90

    def cum(x):
        return np.where(x < 500, 10 * x, 5000 + 10 * (x - 500) - 450 * (np.cos(x / 50) - math.cos(10)))

    for r in runs[:5]:
        assert st.kstest(np.diff(np.concatenate([[0.0], cum(r)])), "expon").pvalue > 0.001


def test_nhpp_rejects_a_bound_below_the_rate():
    with pytest.raises(ValueError, match="outside"):
        NHPP(_step_rate, [0.0, 500.0, 1000.0], [8.0, 20.0], 1000.0)
    with pytest.raises(ValueError, match="smooth"):
        NHPP(_step_rate, [0.0, 1000.0], [20.0], 1000.0)  # the step at 500 s is not on an edge
    with pytest.raises(ValueError):
        NHPP(_step_rate, [0.0, 10.0], [20.0], 1000.0)  # the table must cover the window


# -- builders --------------------------------------------------------------------------------------

def test_kinds_have_the_spec_shape_and_build_every_kind(monkeypatch):
    assert set(KINDS) == {"diurnal", "mmpp", "spike", "ramp", "renewal"}
    for kind, (keys, build) in KINDS.items():
        assert "kind" in keys and "duration" in keys and callable(build)
        monkeypatch.setitem(trace_spec.TRACE_KINDS, kind, (keys, build))
    specs = [
        {"kind": "diurnal", "mean_rps": 20, "peak_to_mean": 3, "duration": "30d"},
        {"kind": "diurnal", "hourly_rps": [1] * 24, "weekly": [1, 1, 1, 1, 1, 2, 2], "duration": "2d"},
        {"kind": "mmpp", "rates_rps": [1, 10], "mean_sojourn_s": [60, "2m"], "duration": "1h"},
        {"kind": "spike", "base_rps": 5, "duration": 3600,
         "spikes": [{"start_s": 60, "ramp_s": 10, "peak_rps": 50, "duration_s": "5m"}]},
        {"kind": "ramp", "start_rps": 0, "end_rps": 10, "duration": "15m"},
        {"kind": "renewal", "gap_s": {"dist": "gamma", "a": 2, "scale": 0.1}, "duration": 600},
    ]
    for s in specs:
        src = trace_spec.parse_trace(s, source="scn.yaml", base_dir=None)
        assert src.describe()["kind"] == s["kind"]
        assert src.expected_count() > 0
    d = trace_spec.parse_trace(specs[0], source="scn.yaml", base_dir=None)
    assert d.duration_s == 30 * 86400 and d.mean_rps == 20 and d.peak_hour == 14


@pytest.mark.parametrize("build,spec,where,expected", [
    (build_spike, {"kind": "spike", "base_rps": 5, "duration": 100,
                   "spikes": [{"start_s": 1, "ramp_s": 1, "peak_rps": 9, "duration_s": 5},
                              {"start_s": 1, "ramp_s": 3, "peak_rps": 9, "duration_s": 5}]},
     "trace.spikes[1].ramp_s", "half"),
    (build_spike, {"kind": "spike", "base_rps": 5, "duration": 100,
                   "spikes": [{"start_s": 1, "ramp": 1, "peak_rps": 9, "duration_s": 5}]},
     "trace.spikes[0].ramp", "ramp_s"),
    (build_spike, {"kind": "spike", "base_rps": 5, "duration": 100,
                   "spikes": [{"start_s": 1, "ramp_s": 1, "peak_rps": 2, "duration_s": 5}]},
     "trace.spikes[0].peak_rps", ">= base_rps"),
    (build_diurnal, {"kind": "diurnal", "mean_rps": 5, "peak_to_mean": 0.5, "duration": 100},
     "trace.peak_to_mean", ">= 1"),
    (build_diurnal, {"kind": "diurnal", "mean_rps": 5, "peak_to_mean": 2}, "trace.duration", "duration"),
    (build_diurnal, {"kind": "diurnal", "hourly_rps": [1] * 23, "duration": 100}, "trace.hourly_rps", "24"),
    (build_diurnal, {"kind": "diurnal", "hourly_rps": [1] * 23 + [-1], "duration": 100},
     "trace.hourly_rps[23]", ">= 0"),
    (build_diurnal, {"kind": "diurnal", "hourly_rps": [1] * 24, "peak_to_mean": 2, "duration": 100},
     "trace.peak_to_mean", "hourly_rps"),
    (build_diurnal, {"kind": "diurnal", "mean_rps": 1, "peak_to_mean": 2, "peak_hour": 24, "duration": 100},
     "trace.peak_hour", "[0, 24)"),
    (build_diurnal, {"kind": "diurnal", "mean_rps": 1, "peak_to_mean": 2, "weekly": [0] * 7, "duration": 100},
     "trace.weekly", "not all zero"),
    (build_diurnal, {"kind": "diurnal", "mean_rps": 1, "peak_to_men": 2, "duration": 100},
     "trace.peak_to_men", "peak_to_mean"),
    (build_mmpp, {"kind": "mmpp", "rates_rps": [1, 2], "mean_sojourn_s": [1], "duration": 100},
     "trace.mean_sojourn_s", "2 mean times"),
    (build_mmpp, {"kind": "mmpp", "rates_rps": [1], "mean_sojourn_s": [1], "duration": 100},
     "trace.rates_rps", "at least 2"),
    (build_mmpp, {"kind": "mmpp", "rates_rps": [1, 2], "mean_sojourn_s": [1, 0], "duration": 100},
     "trace.mean_sojourn_s[1]", "positive"),
    (build_ramp, {"kind": "ramp", "start_rps": 0, "end_rps": 0, "duration": 100}, "trace.end_rps", "> 0"),
    (build_ramp, {"kind": "ramp", "start_rps": "x", "end_rps": 1, "duration": 100}, "trace.start_rps", "rate"),
    (build_renewal, {"kind": "renewal", "gap_s": {"dist": "constant", "value": 0}, "duration": 100},
     "trace.gap_s", "mean > 0"),
    (build_renewal, {"kind": "renewal", "gap_s": {"mean": 1}, "duration": 100}, "trace.gap_s.dist", "family"),
])
def test_builders_name_the_key_path(build, spec, where, expected):
    with pytest.raises(ConfigError) as err:
        build(spec, "scn.yaml", "trace", None)
    msg = str(err.value)
    assert msg.startswith("scn.yaml: ") and f"{where}:" in msg and expected in msg, msg


# -- speed (printed, not asserted) -----------------------------------------------------------------

def test_generation_speed_report(capsys):
    # 10 M arrivals each; arrivals per second of wall time, for the record (run with -s to see)
    lines = []
    for name, source in [("poisson", Poisson(100.0, 1e5)),
                         ("diurnal", Diurnal(114_000.0, mean_rps=100.0, peak_to_mean=3.0)),
                         ("mmpp", MMPP([50.0, 200.0], [60.0, 20.0], 114_300.0))]:
        start = time.perf_counter()
        n = sum(c.size for c in source.chunks(seed(99)))
        dt = time.perf_counter() - start
        lines.append(f"{name:8s} {n / 1e6:6.2f} M arrivals in {dt:5.2f} s: {n / dt / 1e6:6.1f} M arrivals/s")
        assert n > 9e6
    with capsys.disabled():
        print("\n" + "\n".join(lines))

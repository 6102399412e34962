"""The model against queueing theory, with stated tolerances.

Long runs with fixed seeds; the tolerance of each check is well above the run's sampling error
(estimated from batch means where the run is long enough), so a pass is not luck.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from traces.files import TimestampList
from traces.poisson import Poisson

from simhelp import ec2, lam, run


def erlang_c(c: int, a: float) -> float:
    """Probability of waiting in M/M/c with offered load a = lambda/mu (Erlang C)."""
    b = 1.0
    for k in range(1, c + 1):  # Erlang B by recursion, then C from B
        b = a * b / (k + a * b)
    rho = a / c
    return b / (1 - rho + rho * b)


def erlang_b(c: int, a: float) -> float:
    b = 1.0
    for k in range(1, c + 1):
        b = a * b / (k + a * b)
    return b


def waits(df):
    ok = df[(df.status == "ok") & df.in_window]
    return (ok.latency_ms - ok.work_ms).to_numpy()


def batch_rel_se(x: np.ndarray, batches: int = 30) -> float:
    """Relative standard error of the mean of an autocorrelated series, by batch means."""
    m = x[: x.size // batches * batches].reshape(batches, -1).mean(axis=1)
    return float(m.std(ddof=1) / math.sqrt(batches) / x.mean())


@pytest.mark.slow
@pytest.mark.parametrize("c,rho,n", [(1, 0.5, 1_000_000), (2, 0.7, 1_500_000), (4, 0.8, 2_500_000)])
def test_mmc_mean_wait_and_wait_probability_match_erlang_c(c, rho, n):
    mean_s_ms = 100.0
    lam_rps = rho * c / (mean_s_ms / 1000)
    cfg = ec2(service={"dist": "expon", "mean": mean_s_ms}, instances=1, workers_per_instance=c,
              load_balancer="shared_queue", queue_limit=10**9, request_timeout_s=1e9, load_balancer_billed=False)
    res, df = run(cfg, Poisson(lam_rps, n / lam_rps), seed=11, warmup_s=200.0, records=True)
    w = waits(df)
    a = lam_rps * mean_s_ms / 1000
    pw = erlang_c(c, a)
    wq_ms = pw / (c / mean_s_ms - lam_rps / 1000)
    assert batch_rel_se(w) < 0.01  # the run is long enough for a 3 % check
    assert w.mean() == pytest.approx(wq_ms, rel=0.03)
    assert (w > 1e-9).mean() == pytest.approx(pw, rel=0.03)


@pytest.mark.slow
@pytest.mark.parametrize("service,es2_factor", [
    ({"dist": "constant", "value": 80.0}, 1.0),                     # M/D/1: E[S^2] = E[S]^2
    ({"dist": "lognorm", "s": 0.8, "scale": 80.0}, None),           # M/G/1, lognormal
    ({"dist": "gamma", "a": 0.5, "scale": 160.0}, None),            # M/G/1, high variance (cv^2 = 2)
])
def test_mg1_mean_wait_matches_pollaczek_khinchine(service, es2_factor):
    from sim.dists import parse_dist

    d = parse_dist(service)
    es = d.mean()
    es2 = es * es if es2_factor else float(d._frozen.moment(2))
    rho = 0.7
    lam_rps = rho / (es / 1000)
    n = 1_000_000
    cfg = ec2(service=service, instances=1, workers_per_instance=1, load_balancer="shared_queue",
              queue_limit=10**9, request_timeout_s=1e9, load_balancer_billed=False)
    res, df = run(cfg, Poisson(lam_rps, n / lam_rps), seed=5, warmup_s=100.0, records=True)
    wq_ms = (lam_rps / 1000) * es2 / (2 * (1 - rho))
    w = waits(df)
    assert batch_rel_se(w) < 0.01
    assert w.mean() == pytest.approx(wq_ms, rel=0.03)


@pytest.mark.slow
@pytest.mark.parametrize("warm", [
    {"dist": "expon", "mean": 200.0},
    {"dist": "lognorm", "s": 1.0, "scale": 200.0 / math.exp(0.5)},  # same mean, much heavier tail
])
@pytest.mark.parametrize("c,a", [(10, 8.0), (20, 20.0)])
@pytest.mark.parametrize("engine", ["simpy", "fast"])
def test_lambda_concurrency_limit_throttles_as_erlang_b(warm, c, a, engine):
    """Loss system M/G/c/c: blocking depends on the service law only through its mean (insensitivity)."""
    lam_rps = a / 0.2
    n = 600_000
    cfg = lam(warm=warm, concurrency_limit=c, keep_alive_s=1e9, scale_burst=10**9, scale_refill_per_s=1e9)
    res = run(cfg, Poisson(lam_rps, n / lam_rps), seed=3, warmup_s=50.0, engine=engine)
    assert res.summary["engine"] == engine
    s = res.summary
    assert s["throttled"] / s["requests"] == pytest.approx(erlang_b(c, a), rel=0.03)


@pytest.mark.parametrize("period_s,keep_alive_s,expect_all_cold", [(60.0, 90.0, False), (60.0, 45.0, True)])
def test_lambda_periodic_requests_cold_only_when_keep_alive_is_shorter(period_s, keep_alive_s, expect_all_cold):
    times = [i * period_s for i in range(50)]
    res, df = run(lam(keep_alive_s=keep_alive_s, cold={"dist": "constant", "value": 300}), TimestampList(times),
                  records=True)
    cold = df.cold.to_numpy()
    assert cold[0]
    if expect_all_cold:
        assert cold.all() and res.summary["instances"]["max"] == 1
    else:
        assert not cold[1:].any()
    assert res.summary["cold_starts"] == (50 if expect_all_cold else 1)


@pytest.mark.parametrize("policy", ["mru", "newest", "random"])
def test_littles_law_holds_on_every_kind_of_run(policy):
    # Lambda with reclaim and throttling, and EC2 with queueing: L = lambda * W within 1.5 %.
    arr = Poisson(40.0, 5_000)
    for cfg in (lam(warm={"dist": "lognorm", "s": 0.5, "scale": 90}, cold={"dist": "constant", "value": 500},
                    keep_alive_s={"dist": "expon", "mean": 5}, reuse=policy, concurrency_limit=8),
                ec2(service={"dist": "lognorm", "s": 0.5, "scale": 40}, instances=2, workers_per_instance=1,
                    load_balancer="least_outstanding" if policy != "random" else "round_robin")):
        q = run(cfg, arr, seed=2, warmup_s=100).summary["queueing"]
        assert q["in_system_mean"] == pytest.approx(q["served_rps"] * q["mean_time_in_system_s"], rel=0.015)


def test_poisson_arrivals_seen_by_sim_are_exponential():
    res, df = run(lam(), Poisson(5.0, 20_000), records=True)
    gaps = np.diff(df.arrival_s.to_numpy())
    assert stats.kstest(gaps, "expon", args=(0, 1 / 5.0)).pvalue > 0.001

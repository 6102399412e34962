"""The fast engine's EC2 model against the SimPy reference: exact agreement request by request.

Each scenario runs `sim.engine_simpy.run` (with `EC2Model`) and `sim.engine_fast.ec2.run_ec2` on
the same arrival chunks and seed, and compares every per-request record (status, latency,
completion time, service time) bit for bit, the collector's figures, the tallies (means, maxima,
per-period series), the end time, the launches, the scaling actions and the bill. Chunk sizes
as small as 7 put chunk boundaries inside queue backlogs. Ties are made on purpose with
dyadic (exactly representable) arrival grids and service times. With an idle effect
(`IdleEffect`) too, whose scaled service times are checked against the draws they come from.

Plus one theory check on the fast engine alone (Erlang C, the tolerance of tests/test_theory.py).
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sim import engine_simpy
from sim.config import AutoscalingConfig, IdleEffect
from sim.dists import parse_dist
from sim.engine_fast import ec2 as fast
from sim.metrics import Collector
from sim.streams import ARRIVALS, BOOT, ROUTING, WARM, RequestStreams, child_seed, generator
from sim.tally import periods_in
from traces.poisson import Poisson

from simhelp import PRICING, ec2

from simhelp import scaled_by_the_idle_effect, with_idle

LBS = ["least_outstanding", "round_robin", "shared_queue"]
PERIOD_S = 60.0
IDLE_EFFECTS = st.builds(IdleEffect, hot_ratio=st.floats(0.2, 1.5), tau_ms=st.floats(0.5, 200.0))


# --- harness ---------------------------------------------------------------------------------

def _chunks(times: np.ndarray, size: int) -> list[np.ndarray]:
    return [times[i:i + size] for i in range(0, times.size, size)]


def _run(engine, cfg, times, chunk, *, seed=1, warmup_s=0.0, horizon_s=None) -> dict:
    parts: list[pd.DataFrame] = []
    progress: list[tuple[int, float]] = []
    col = Collector(warmup_s, PERIOD_S, parts.append)
    model, end_s = engine(cfg, iter(_chunks(np.asarray(times, dtype=float), chunk)), seed=seed, warmup_s=warmup_s,
                          horizon_s=horizon_s, collector=col, progress=lambda n, t: progress.append((n, t)))
    n_periods = periods_in(max(0.0, end_s - warmup_s), PERIOD_S)
    levels = model.levels(end_s, n_periods)
    series = col.series(n_periods, levels["instances_series"], levels["busy_series"])
    try:
        cost = model.cost(PRICING, end_s, series["arrivals"].to_numpy(dtype=float)).as_dict()
    except ValueError as exc:  # a run that ends before its warm-up does (billing refuses the window)
        cost = repr(exc)
    return {
        "records": pd.concat(parts, ignore_index=True) if parts else None,
        "progress": progress,
        "end_s": end_s,
        "levels": levels,
        "series": series,
        "cost": cost,
        "launches": model.launches(end_s),
        "actions": list(getattr(model, "actions", [])) if cfg.autoscaling is not None else [],
        "counts": {k: getattr(col, k) for k in ("requests", "completed", "throttled", "rejected_queue", "timeouts",
                                               "cold_starts", "served", "sojourn_s")},
        "latency": col.latency_summary(),
        "tallies": [(t.area, t.max_level, t.level, t.last_s, _strip(t.bins))
                    for t in (model.alive_tally, model.busy_tally, model.in_system_tally)],
    }


def _strip(bins: list[float]) -> list[float]:
    """Per-period bins without trailing zeros (which per_period reads as zeros anyway)."""
    n = len(bins)
    while n and bins[n - 1] == 0.0:
        n -= 1
    return list(bins[:n])


def _assert_same(ref: dict, got: dict) -> None:
    if ref["records"] is None:
        assert got["records"] is None
    else:
        pd.testing.assert_frame_equal(ref["records"], got["records"], check_exact=True)
    assert got["end_s"] == ref["end_s"] and type(got["end_s"]) is type(ref["end_s"])
    assert got["progress"] == ref["progress"]
    for k, v in ref["levels"].items():
        assert np.array_equal(np.asarray(got["levels"][k]), np.asarray(v)), k
    pd.testing.assert_frame_equal(ref["series"], got["series"], check_exact=True)
    assert got["tallies"] == ref["tallies"]
    assert got["cost"] == ref["cost"]
    assert got["launches"] == ref["launches"]
    assert got["actions"] == ref["actions"]
    assert got["counts"] == ref["counts"]
    assert got["latency"] == ref["latency"]


def _compare(cfg, times, chunk, *, monkeypatch=None, **kw) -> dict:
    ref = _run(engine_simpy.run, cfg, times, chunk, **kw)
    got = _run(fast.run_ec2, cfg, times, chunk, **kw)
    _assert_same(ref, got)
    return got


def _poisson(rate_rps: float, n: int, seed: int = 7) -> np.ndarray:
    return np.cumsum(np.random.default_rng(seed).exponential(1.0 / rate_rps, n))


# --- fixed fleet -------------------------------------------------------------------------------

@pytest.mark.parametrize("lb", LBS)
@pytest.mark.parametrize("rho", [0.5, 0.8, 0.95])
@pytest.mark.parametrize("chunk", [7, 100, 65536])
def test_mmc_loads_agree_exactly(lb, rho, chunk):
    # 3 instances x 2 workers, exponential service of 100 ms: M/M/6 at load rho.
    n = 1500 if chunk == 7 else 6000
    times = _poisson(rho * 6 / 0.1, n)
    cfg = ec2(service={"dist": "expon", "mean": 100}, instances=3, workers_per_instance=2, load_balancer=lb)
    got = _compare(cfg, times, chunk, seed=3)
    assert got["counts"]["requests"] == n


@pytest.mark.parametrize("lb", LBS)
@pytest.mark.parametrize("chunk", [7, 100, 65536])
def test_constant_service_on_a_grid_ties_agree(lb, chunk):
    # Pairs of simultaneous arrivals every 1/16 s, service exactly 2/16 s: completions fall on
    # arrival instants (exact binary fractions), so event order decides who waits.
    times = np.repeat(np.arange(0, 2000) / 16.0, 2)
    cfg = ec2(service={"dist": "constant", "value": 125.0}, instances=2, workers_per_instance=1, load_balancer=lb,
              queue_limit=3)
    got = _compare(cfg, times, chunk, horizon_s=200.0)
    assert got["counts"]["rejected_queue"] > 0


@pytest.mark.parametrize("lb", LBS)
def test_zero_service_times_complete_at_the_arrival_instant(lb):
    # Completions scheduled at the current instant run after events already scheduled for it.
    times = np.repeat(np.arange(0, 50) / 8.0, 3)
    cfg = ec2(service={"dist": "constant", "value": 0.0}, instances=2, workers_per_instance=1, load_balancer=lb,
              queue_limit=1)
    _compare(cfg, times, 4)


@pytest.mark.parametrize("lb", LBS)
@pytest.mark.parametrize("qlim", [0, 1, 3])
def test_queue_limit_rejections_agree(lb, qlim):
    times = _poisson(40.0, 4000, seed=2)  # twice the fleet's capacity: long backlogs, many 503s
    cfg = ec2(service={"dist": "lognorm", "s": 0.6, "scale": 80}, instances=2, workers_per_instance=1,
              load_balancer=lb, queue_limit=qlim)
    got = _compare(cfg, times, 100)
    assert got["counts"]["rejected_queue"] > 0


@pytest.mark.parametrize("lb", LBS)
@pytest.mark.parametrize("chunk", [7, 65536])
def test_request_timeouts_agree(lb, chunk):
    times = _poisson(38.0, 3000, seed=4)
    cfg = ec2(service={"dist": "expon", "mean": 100}, instances=2, workers_per_instance=2, load_balancer=lb,
              request_timeout_s=0.3, queue_limit=50)
    got = _compare(cfg, times, chunk)
    assert got["counts"]["timeouts"] > 0


@pytest.mark.parametrize("lb", LBS)
@pytest.mark.parametrize("horizon_s", [None, 400.0])
def test_warmup_and_horizon_agree(lb, horizon_s):
    times = _poisson(30.0, 6000, seed=5)
    cfg = ec2(service={"dist": "gamma", "a": 2.0, "scale": 40.0}, instances=2, workers_per_instance=2,
              load_balancer=lb, request_kb=50.0)
    got = _compare(cfg, times, 100, warmup_s=37.5, horizon_s=horizon_s)
    assert got["records"].in_window.sum() == got["counts"]["requests"] < 6000


def test_backlog_beyond_the_last_arrival_and_an_empty_run():
    # An overloaded single worker: the run ends when the backlog is served, after the horizon.
    times = np.full(300, 5.0)
    cfg = ec2(service={"dist": "constant", "value": 100.0}, instances=1, workers_per_instance=1, queue_limit=10**6)
    got = _compare(cfg, times, 7, horizon_s=10.0)
    assert got["end_s"] == pytest.approx(35.0)
    _compare(cfg, np.zeros(0), 7, horizon_s=10.0)
    _compare(cfg, np.zeros(0), 7)


def test_no_instance_in_service_with_a_shared_queue_never_ends_in_either_engine():
    cfg = ec2(instances=0, load_balancer="shared_queue")
    for engine in (engine_simpy.run, fast.run_ec2):
        with pytest.raises(RuntimeError):
            engine(cfg, iter([np.array([1.0, 2.0])]), seed=1, warmup_s=0.0, horizon_s=None, collector=Collector(0.0))


settings_small = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@settings_small
@given(n=st.integers(1, 4), w=st.integers(1, 3), lb=st.sampled_from(LBS), qlim=st.integers(0, 6),
       load=st.floats(0.2, 1.6), svc=st.sampled_from(["constant", "expon", "lognorm"]), mean_ms=st.floats(5, 400),
       grid=st.booleans(), count=st.integers(0, 300), chunk=st.sampled_from([1, 3, 7, 50, 65536]),
       timeout_s=st.floats(0.05, 5.0), warmup_s=st.sampled_from([0.0, 1.0, 7.5]), seed=st.integers(0, 999),
       idle=st.one_of(st.none(), IDLE_EFFECTS))
def test_random_small_scenarios_agree(n, w, lb, qlim, load, svc, mean_ms, grid, count, chunk, timeout_s, warmup_s,
                                      seed, idle):
    service = {"constant": {"dist": "constant", "value": mean_ms}, "expon": {"dist": "expon", "mean": mean_ms},
               "lognorm": {"dist": "lognorm", "s": 0.8, "scale": mean_ms}}[svc]
    rate = load * n * w / (mean_ms / 1000.0)
    times = _poisson(rate, count, seed=seed)
    if grid:  # snap to a coarse binary grid: many simultaneous arrivals
        step = 2.0 ** math.floor(math.log2(max(mean_ms / 1000.0, 1e-3)))
        times = np.floor(times / step) * step
    cfg = with_idle(ec2(service=service, instances=n, workers_per_instance=w, load_balancer=lb, queue_limit=qlim,
                         request_timeout_s=timeout_s), idle)
    got = _compare(cfg, times, chunk, seed=seed, warmup_s=warmup_s)
    if idle is not None and got["records"] is not None:
        scaled_by_the_idle_effect(cfg, got["records"], seed)


# --- auto scaling ----------------------------------------------------------------------------

def _ramp(seed=1) -> np.ndarray:
    """8 req/s for 20 min, 1 req/s for 40 min, 6 req/s for 20 min (Poisson)."""
    rng = np.random.default_rng(seed)
    parts, t0 = [], 0.0
    for rate, dur in ((8.0, 1200.0), (1.0, 2400.0), (6.0, 1200.0)):
        t = t0 + np.cumsum(rng.exponential(1.0 / rate, int(rate * dur * 1.2)))
        parts.append(t[t < t0 + dur])
        t0 += dur
    return np.concatenate(parts)


@pytest.mark.parametrize("lb", LBS)
@pytest.mark.parametrize("metric,target", [("cpu", 0.5), ("requests_per_instance", 200.0)])
@pytest.mark.parametrize("boot", [30, {"dist": "expon", "mean": 40}])
@pytest.mark.parametrize("chunk", [50, 65536])
@pytest.mark.parametrize("idle", [None, IdleEffect(hot_ratio=0.7, tau_ms=50.0)], ids=["no-idle-effect", "idle-effect"])
def test_autoscaling_out_and_in_agrees(lb, metric, target, boot, chunk, idle, monkeypatch):
    """With an idle effect: launched instances start rested, booted ones take from the shared
    queue, and the scaled service times drive the scaling metric."""
    a = AutoscalingConfig(min_instances=1, max_instances=4, target=target, boot_s=parse_dist(boot), metric=metric,
                          metric_period_s=60, scale_out_periods=2, scale_in_periods=4, cooldown_s=120)
    cfg = with_idle(ec2(service={"dist": "expon", "mean": 100}, instances=1, workers_per_instance=1, autoscaling=a,
                         load_balancer=lb, queue_limit=20), idle)
    got = _compare(cfg, _ramp(), chunk, monkeypatch=monkeypatch, horizon_s=4800.0)
    kinds = {k for _, k, _ in got["actions"]}
    assert kinds == {"scale_out", "scale_in"}
    assert len(got["launches"]) > 1
    if idle is not None:
        assert scaled_by_the_idle_effect(cfg, got["records"], 1) > len(got["records"]) // 4


def test_the_reference_test_scenario_agrees():
    # The scenario of tests/test_engine.py (deterministic arrivals, constant boot).
    times = np.concatenate([np.arange(0, 1200, 1 / 8), np.arange(1200, 4800, 1.0)])
    a = AutoscalingConfig(min_instances=1, max_instances=4, target=0.5, boot_s=parse_dist(30),
                          metric_period_s=60, scale_out_periods=3, scale_in_periods=5, cooldown_s=120)
    cfg = ec2(instances=1, workers_per_instance=1, autoscaling=a, load_balancer_billed=False)
    got = _compare(cfg, times, 65536, horizon_s=4800.0)
    assert got["actions"][0] == (180.0, "scale_out", 2)


@pytest.mark.parametrize("lb", ["least_outstanding", "round_robin"])
def test_scale_in_drains_instances_with_queues(lb):
    # Short periods, no cooldown, a tight target: instances are drained while they still hold
    # a queue, and the victims' order (least loaded, newest first) matters.
    times = _ramp(seed=3)[:20000]
    a = AutoscalingConfig(min_instances=1, max_instances=6, target=0.6, boot_s=parse_dist({"dist": "expon", "mean": 5}),
                          metric_period_s=7.0, scale_out_periods=1, scale_in_periods=1, scale_in_ratio=0.95,
                          cooldown_s=0.0, initial_instances=3)
    cfg = ec2(service={"dist": "lognorm", "s": 1.0, "scale": 120}, instances=1, workers_per_instance=2,
              autoscaling=a, load_balancer=lb, queue_limit=8)
    got = _compare(cfg, times, 100)
    assert sum(k == "scale_in" for _, k, _ in got["actions"]) > 5


@settings(max_examples=50, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(lb=st.sampled_from(LBS), w=st.integers(1, 3), lo=st.integers(1, 2), extra=st.integers(0, 4),
       metric=st.sampled_from(["cpu", "requests_per_instance"]), target=st.floats(0.2, 0.9),
       period_s=st.sampled_from([1.0, 2.5, 10.0]), out_p=st.integers(1, 3), in_p=st.integers(1, 4),
       cooldown_s=st.sampled_from([0.0, 3.0, 20.0]), boot=st.sampled_from([0.0, 2.0, {"dist": "expon", "mean": 3}]),
       qlim=st.integers(0, 8), chunk=st.sampled_from([5, 64, 65536]), grid=st.booleans(), seed=st.integers(0, 99),
       idle=st.one_of(st.none(), IDLE_EFFECTS))
def test_random_autoscaling_scenarios_agree(lb, w, lo, extra, metric, target, period_s, out_p, in_p, cooldown_s,
                                            boot, qlim, chunk, grid, seed, idle, monkeypatch):
    rng = np.random.default_rng(seed)
    rates = rng.uniform(2.0, 40.0, 6)
    times = np.concatenate([20.0 * k + np.sort(rng.uniform(0, 20.0, rng.poisson(r * 20.0)))
                            for k, r in enumerate(rates)])
    if grid:  # arrivals on the autoscaler's period boundaries and boot ends (all binary fractions)
        times = np.floor(times * 2.0) / 2.0
    if metric == "requests_per_instance":
        target = target * 100.0
    a = AutoscalingConfig(min_instances=lo, max_instances=lo + extra, target=target, boot_s=parse_dist(boot),
                          metric=metric, metric_period_s=period_s, scale_out_periods=out_p, scale_in_periods=in_p,
                          cooldown_s=cooldown_s)
    cfg = with_idle(ec2(service={"dist": "expon", "mean": 150}, instances=1, workers_per_instance=w, autoscaling=a,
                         load_balancer=lb, queue_limit=qlim), idle)
    got = _compare(cfg, times, chunk, monkeypatch=monkeypatch, seed=seed, horizon_s=130.0)
    if idle is not None and got["records"] is not None:
        scaled_by_the_idle_effect(cfg, got["records"], seed)


def test_a_booted_instance_taking_from_the_shared_queue_leaves_nothing_counted():
    """Regression: EC2Model._in_service once took requests from the shared queue without
    counting them out of `queued`, so such runs never ended. Both engines end them now, alike."""
    a = AutoscalingConfig(min_instances=1, max_instances=4, target=0.5, boot_s=parse_dist(30), metric_period_s=60,
                          scale_out_periods=1, scale_in_periods=5, cooldown_s=120)
    cfg = ec2(instances=1, workers_per_instance=1, autoscaling=a, load_balancer="shared_queue")
    times = np.arange(0, 300, 1 / 12.0)  # 12 req/s on one 100 ms worker: a queue when the boots end
    got = _compare(cfg, times, 65536, seed=1)
    assert got["end_s"] > 300.0


# --- the idle effect -------------------------------------------------------------------------

@pytest.mark.parametrize("lb", LBS)
@pytest.mark.parametrize("workers", [1, 3])
@pytest.mark.parametrize("hot_ratio", [0.5, 1.3])
@pytest.mark.parametrize("chunk", [7, 65536])
def test_idle_effect_on_a_fixed_fleet_agrees(lb, workers, hot_ratio, chunk):
    """Service times scaled by the instance's idle time (0 while another of its workers is busy)
    at every start: from an arrival, from the instance's queue, from the shared queue; the scaled
    times deciding timeouts, completions and so the load balancer's choices."""
    times = _poisson(0.85 * 3 * workers / 0.05, 3000, seed=6)
    cfg = with_idle(ec2(service={"dist": "expon", "mean": 50}, instances=3, workers_per_instance=workers,
                         load_balancer=lb, queue_limit=4, request_timeout_s=0.25),
                     IdleEffect(hot_ratio=hot_ratio, tau_ms=30.0))
    got = _compare(cfg, times, chunk, seed=2)
    records = got["records"]
    assert scaled_by_the_idle_effect(cfg, records, 2) > len(records) // 4
    assert (records.latency_ms > records.work_ms).sum() > 0  # started from a queue


# --- building blocks -------------------------------------------------------------------------

def test_boot_draws_in_blocks_are_the_reference_stream():
    block = generator(5, BOOT).random(50)
    one_by_one = generator(5, BOOT)
    assert np.array_equal(block, np.concatenate([one_by_one.random(1) for _ in range(50)]))


def test_request_draws_are_those_of_request_streams():
    streams = RequestStreams(9)
    warm, route = generator(9, WARM), generator(9, ROUTING)
    for n in (7, 100, 3):
        d = streams.next(n)
        assert np.array_equal(d.warm, warm.random(n)) and np.array_equal(d.routing, route.random(n))


def test_least_outstanding_choice_is_the_references():
    """The compiled choice (one branch-free pass) against `EC2Model._choose`'s loop, on fleets
    whose loads tie often, the least loaded first, last or anywhere in `serving` order."""
    rng = np.random.default_rng(11)
    for _ in range(3000):
        slots = int(rng.integers(1, 12))
        inst = np.zeros((fast.I_N, slots + 3), np.int64)
        inst[fast.I_BUSY, :slots] = rng.integers(0, 3, slots)
        inst[fast.I_QLEN, :slots] = rng.integers(0, 2, slots) * rng.integers(0, 3, slots)
        n = int(rng.integers(1, slots + 1))
        serving = np.zeros(slots + 3, np.int64)
        serving[:n] = rng.permutation(slots)[:n]
        u = float(rng.choice([0.0, rng.random(), np.nextafter(1.0, 0.0)]))
        loads = [int(inst[fast.I_BUSY, s] + inst[fast.I_QLEN, s]) for s in serving[:n]]
        ties = [int(s) for s, load in zip(serving[:n], loads) if load == min(loads)]
        want = ties[min(int(u * len(ties)), len(ties) - 1)]
        assert fast._least_outstanding(u, n, inst, serving, np.zeros(4 * (slots + 3), np.int64)) == want


def test_ring_holds_only_the_chunks_in_flight():
    cfg = ec2(service={"dist": "expon", "mean": 100}, instances=2, workers_per_instance=1, queue_limit=30)
    run = fast._Run(cfg, 1, 0.0, PERIOD_S)
    col = Collector(0.0)
    times = _poisson(25.0, 50_000)
    for c in _chunks(times, 1000):
        run.feed(c)
        run.finalise(col)
        assert len(run.pending) <= 3
    assert run.RF.shape[1] <= 4096
    run.finish(float(times[-1]))
    run.finalise(col)
    assert not run.pending and col.requests == times.size


def test_every_configuration_is_supported_and_warm_up_compiles():
    a = AutoscalingConfig(min_instances=1, max_instances=3, target=0.5, boot_s=parse_dist(30))
    for lb in LBS:
        assert fast.unsupported(ec2(load_balancer=lb)) is None
        assert fast.unsupported(ec2(load_balancer=lb, autoscaling=a)) is None
    assert fast.warm_up() >= 0.0


# --- theory on the fast engine ---------------------------------------------------------------

def _erlang_c(c: int, a: float) -> float:
    b = 1.0
    for k in range(1, c + 1):
        b = a * b / (k + a * b)
    rho = a / c
    return b / (1 - rho + rho * b)


def test_fast_mmc_mean_wait_and_wait_probability_match_erlang_c():
    # As tests/test_theory.py (c=2, rho=0.7, 1.5 M requests, 3 %), on the fast engine.
    c, rho, n, mean_s_ms = 2, 0.7, 1_500_000, 100.0
    lam_rps = rho * c / (mean_s_ms / 1000)
    cfg = ec2(service={"dist": "expon", "mean": mean_s_ms}, instances=1, workers_per_instance=c,
              load_balancer="shared_queue", queue_limit=10**9, request_timeout_s=1e9, load_balancer_billed=False)
    arr = Poisson(lam_rps, n / lam_rps)
    waits: list[np.ndarray] = []

    def sink(df: pd.DataFrame) -> None:
        ok = df[(df.status == "ok") & df.in_window]
        waits.append((ok.latency_ms - ok.work_ms).to_numpy())

    col = Collector(200.0, PERIOD_S, sink)
    fast.run_ec2(cfg, arr.chunks(child_seed(11, ARRIVALS)), seed=11, warmup_s=200.0, horizon_s=arr.duration_s,
                 collector=col)
    w = np.concatenate(waits)
    batches = w[: w.size // 30 * 30].reshape(30, -1).mean(axis=1)
    assert batches.std(ddof=1) / math.sqrt(30) / w.mean() < 0.01  # long enough for a 3 % check
    pw = _erlang_c(c, lam_rps * mean_s_ms / 1000)
    wq_ms = pw / (c / mean_s_ms - lam_rps / 1000)
    assert w.mean() == pytest.approx(wq_ms, rel=0.03)
    assert (w > 1e-9).mean() == pytest.approx(pw, rel=0.03)

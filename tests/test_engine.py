"""The SimPy engine on tiny deterministic scenarios (exact event logs and bills), common random
numbers, and invariants checked by hypothesis."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sim.config import AutoscalingConfig
from sim.dists import parse_dist
from traces.files import TimestampList
from traces.poisson import Poisson

from simhelp import PRICING, ec2, lam, run

GB_S_X86 = 0.0000166667   # tier-1 x86 duration price, $/GB-s (aws-facts.md §1.1)
GB_S_ARM = 0.0000133334
REQ = 0.0000002           # $ per request
C6I_LARGE_HOUR = 0.085


# --- Lambda: exact event logs and bills ---------------------------------------------------

def test_lambda_event_log_and_bill_by_hand():
    # Requests at 0, 1 and 1000 s; keep-alive 360 s: cold, warm (reuses the environment), cold again.
    cfg = lam(warm={"dist": "constant", "value": 100.4}, cold={"dist": "constant", "value": 250.3},
              keep_alive_s=360, memory_mb=1024)
    res, df = run(cfg, TimestampList([0.0, 1.0, 1000.0], duration_s=1200.0), records=True)
    assert df.cold.tolist() == [True, False, True]
    assert df.latency_ms.tolist() == pytest.approx([350.7, 100.4, 350.7])
    assert df.done_s.tolist() == pytest.approx([0.3507, 1.1004, 1000.3507])
    s = res.summary
    assert (s["requests"], s["completed"], s["cold_starts"], s["rejected"]) == (3, 3, 2, 0)
    # Billed: ceil(250.3 + 100.4) = 351, ceil(100.4) = 101, 351 -> 803 ms at 1 GB.
    compute = 0.803 * 1.0 * GB_S_X86
    assert s["cost_usd"]["compute"] == pytest.approx(compute, rel=1e-12)
    assert s["cost_usd"]["requests"] == pytest.approx(3 * REQ, rel=1e-12)
    assert s["cost_usd"]["total"] == pytest.approx(compute + 3 * REQ, rel=1e-12)
    # One environment alive 0 -> 361.1004 s (idle from 1.1004 + 360 keep-alive), the second from
    # 1000 to the end of the window (1200): mean over 1200 s.
    assert s["instances"]["mean"] == pytest.approx((361.1004 + 200.0) / 1200.0)
    assert s["instances"]["max"] == 1


def test_lambda_bill_without_init_billing_arm64_and_memory():
    cfg = lam(warm={"dist": "constant", "value": 20.0}, cold={"dist": "constant", "value": 900.0},
              memory_mb=2048, architecture="arm64", init_billed=False)
    res = run(cfg, TimestampList([0.0, 0.5, 0.6]))
    # t=0 cold (busy until 0.92), t=0.5 finds it busy -> second cold, t=0.6 busy both -> third cold.
    s = res.summary
    assert s["cold_starts"] == 3
    assert s["cost_usd"]["compute"] == pytest.approx(3 * 0.020 * 2.0 * GB_S_ARM, rel=1e-12)


def test_provisioned_concurrency_serves_warm_and_is_billed_for_the_window():
    cfg = lam(warm={"dist": "constant", "value": 50.0}, cold={"dist": "constant", "value": 400.0},
              memory_mb=1024, provisioned_concurrency=2)
    # Three simultaneous requests: two on provisioned environments (warm), one spills over (cold).
    res, df = run(cfg, TimestampList([10.0, 10.0, 10.0], duration_s=3600.0), records=True)
    assert df.cold.tolist() == [False, False, True]
    assert df.provisioned.tolist() == [True, True, False]
    c = res.summary["cost_usd"]
    pc_held = 2 * 1.0 * 3600 * 0.0000041667
    pc_run = (2 * 50 + 2 * 400) / 1000 * 1.0 * 0.0000097222  # two invocations + the two environments' INIT
    on_demand = (450 / 1000) * 1.0 * GB_S_X86
    assert c["provisioned"] == pytest.approx(pc_held, rel=1e-12)
    assert c["compute"] == pytest.approx(pc_run + on_demand, rel=1e-12)


def test_lambda_timeout_is_billed_in_full_and_discards_the_environment():
    cfg = lam(warm={"dist": "constant", "value": 5000.0}, timeout_s=3.0)
    res, df = run(cfg, TimestampList([0.0, 10.0]), records=True)
    assert df.status.tolist() == ["timeout", "timeout"]
    assert df.cold.tolist() == [True, True]  # the timed-out environment was not reused
    assert df.latency_ms.tolist() == [3000.0, 3000.0]
    s = res.summary
    assert s["timeouts"] == 2 and s["completed"] == 0 and s["latency_ms"]["p50"] is None
    assert s["cost_usd"]["compute"] == pytest.approx(2 * 3.0 * 1.0 * GB_S_X86, rel=1e-12)


def test_concurrency_limit_and_scaling_rate_throttle():
    # 1500 simultaneous requests, limit 1200: 1200 accepted... but the token bucket allows 1000.
    cfg = lam(warm={"dist": "constant", "value": 1000.0}, concurrency_limit=1200)
    res = run(cfg, TimestampList([0.0] * 1500))
    assert res.summary["throttled"] == 500 and res.summary["completed"] == 1000
    # 100 tokens come back each second: at t=1.5 s (the first 1000 still busy) 150 more start.
    cfg = lam(warm={"dist": "constant", "value": 2000.0}, concurrency_limit=1200)
    res = run(cfg, TimestampList([0.0] * 1000 + [1.5] * 200))
    assert res.summary["completed"] == 1150
    cfg2 = lam(warm={"dist": "constant", "value": 1000.0}, concurrency_limit=10)
    assert run(cfg2, TimestampList([0.0] * 30)).summary["throttled"] == 20


def test_keep_alive_distribution_is_drawn_per_idle_period():
    cfg = lam(keep_alive_s={"dist": "expon", "mean": 30.0})
    times = [i * 30.0 for i in range(400)]
    res = run(cfg, TimestampList(times))
    # Each gap of ~29.9 s is survived with probability exp(-29.9/30) ~ 0.37.
    frac_warm = 1 - res.summary["cold_starts"] / 400
    assert frac_warm == pytest.approx(math.exp(-29.9 / 30.0), abs=0.08)


@pytest.mark.parametrize("policy", ["mru", "newest", "random"])
def test_reuse_policies(policy):
    # Two environments (created at 0 and 0.05), both idle from ~0.1-0.15 s; a request at 1 s picks one.
    cfg = lam(warm={"dist": "constant", "value": 100.0}, reuse=policy, keep_alive_s=100)
    res, df = run(cfg, TimestampList([0.0, 0.05, 1.0, 1.0]), records=True)
    assert df.cold.tolist() == [True, True, False, False]
    assert res.summary["instances"]["max"] == 2


def test_mru_keeps_fewer_environments_alive_than_random():
    # Under MRU the least recently used environments go idle long enough to be reclaimed.
    arr = Poisson(20.0, 3000)
    warm = {"dist": "lognorm", "s": 0.4, "scale": 150}
    mru = run(lam(warm=warm, reuse="mru", keep_alive_s=30), arr).summary["instances"]["mean"]
    rnd = run(lam(warm=warm, reuse="random", keep_alive_s=30), arr).summary["instances"]["mean"]
    assert mru < rnd


# --- EC2 -----------------------------------------------------------------------------------

def test_ec2_fifo_queue_event_log():
    # One worker, service 100 ms; requests at 0, 0.05, 0.06: waits 0, 50, 140 ms.
    cfg = ec2(instances=1, workers_per_instance=1, load_balancer_billed=False)
    res, df = run(cfg, TimestampList([0.0, 0.05, 0.06], duration_s=60.0), records=True)
    assert df.latency_ms.tolist() == pytest.approx([100.0, 150.0, 240.0])
    assert df.done_s.tolist() == pytest.approx([0.1, 0.2, 0.3])
    # c6i.large for the 60 s window (60 s minimum too): 60 * 0.085 / 3600.
    assert res.summary["cost_usd"]["compute"] == pytest.approx(60 * C6I_LARGE_HOUR / 3600, rel=1e-12)
    assert res.summary["cost_usd"]["load_balancer"] == 0


def test_ec2_bill_with_alb_by_hand():
    cfg = ec2(instances=2, workers_per_instance=2, request_kb=0.0, response_kb=0.0)
    res = run(cfg, TimestampList([1.0, 2.0], duration_s=5400.0))  # 1.5 h window
    c = res.summary["cost_usd"]
    assert c["compute"] == pytest.approx(2 * 5400 * C6I_LARGE_HOUR / 3600, rel=1e-12)
    # 2 ALB hours (partial hour billed full); LCUs: the new-connection dimension, 2 requests in
    # hour 0 -> 2/3600/25 LCU; active connections: in flight 0.2 request-seconds / 60 s per minute...
    # mean in-flight over hour 0 = 0.2 / 3600 -> /3000.  The max is the new-connection one.
    lcu_h0 = max(2 / 3600 / 25, (0.2 / 3600) / 3000)
    assert c["load_balancer"] == pytest.approx(2 * 0.0225 + lcu_h0 * 0.008, rel=1e-9)


def test_ec2_queue_limit_rejects_and_timeout_counts_but_still_serves():
    cfg = ec2(instances=1, workers_per_instance=1, queue_limit=2, request_timeout_s=0.25,
              load_balancer="least_outstanding")
    res, df = run(cfg, TimestampList([0.0] * 5), records=True)
    # 1 in service, 2 queued, 2 rejected; the third answers at 300 ms > 250 ms: a timeout.
    assert df.status.tolist() == ["ok", "ok", "timeout", "rejected", "rejected"]
    assert df.done_s.tolist()[:3] == pytest.approx([0.1, 0.2, 0.3])
    s = res.summary
    assert (s["completed"], s["rejected"], s["timeouts"]) == (2, 2, 1)


@pytest.mark.parametrize("lb", ["least_outstanding", "round_robin", "shared_queue"])
def test_load_balancers_spread_work(lb):
    cfg = ec2(instances=2, workers_per_instance=1, load_balancer=lb)
    res, df = run(cfg, TimestampList([0.0, 0.0]), records=True)
    assert df.latency_ms.tolist() == [100.0, 100.0]  # both instances busy at once, nobody waits


def test_least_outstanding_beats_round_robin_on_variable_service():
    arr = Poisson(30.0, 4000)
    svc = {"dist": "lognorm", "s": 1.2, "scale": 40}
    p99 = {}
    for lb in ("least_outstanding", "round_robin", "shared_queue"):
        p99[lb] = run(ec2(service=svc, instances=3, workers_per_instance=1, load_balancer=lb),
                      arr).summary["latency_ms"]["p99"]
    assert p99["shared_queue"] <= p99["least_outstanding"] < p99["round_robin"]


def test_autoscaling_scales_out_after_evaluation_periods_and_boot_then_back_in():
    # 1 instance, 1 worker of 100 ms; load of 8 req/s (80 % busy) for 20 min, then 1 req/s.
    times = np.concatenate([np.arange(0, 1200, 1 / 8), np.arange(1200, 4800, 1.0)])
    a = AutoscalingConfig(min_instances=1, max_instances=4, target=0.5, boot_s=parse_dist(30),
                          metric_period_s=60, scale_out_periods=3, scale_in_periods=5, cooldown_s=120)
    cfg = ec2(instances=1, workers_per_instance=1, autoscaling=a, load_balancer_billed=False)
    from sim.run import simulate_one

    res = simulate_one(cfg, TimestampList(times.tolist(), duration_s=4800.0), pricing=PRICING, seed=1)
    s = res.series
    # Metric 0.8 > 0.5 at t=60,120,180: launch ceil(1*0.8/0.5)=2 at t=180 -> serving at 210.
    assert s.instances[2] == pytest.approx(1.0)
    assert s.instances[3] == pytest.approx(2.0)
    assert s.instances[10] == pytest.approx(2.0)  # 0.4 per instance: within the dead band
    # After the load drops, 5 periods under 0.45, then scale in to 1.
    assert s.instances[int(3000 / 60)] == pytest.approx(1.0)
    assert res.summary["instances"]["max"] == 2
    # Billing: instance 0 for 4800 s; instance 1 launched at 180, terminated at a scale-in.
    assert res.summary["cost_usd"]["compute"] > 4800 * C6I_LARGE_HOUR / 3600


# --- common random numbers, determinism ------------------------------------------------------

def test_same_seed_same_results_and_platforms_share_arrivals_and_draws():
    arr = Poisson(10.0, 600)
    warm = {"dist": "lognorm", "s": 0.5, "scale": 80}
    r1, d1 = run(lam(warm=warm, memory_mb=1024), arr, seed=9, records=True)
    r2, d2 = run(lam(warm=warm, memory_mb=1024), arr, seed=9, records=True)
    assert r1.summary == r2.summary
    _, d3 = run(lam(warm={"dist": "lognorm", "s": 0.5, "scale": 40}, memory_mb=2048), arr, seed=9, records=True)
    _, d4 = run(ec2(service=warm), arr, seed=9, records=True)
    assert np.array_equal(d1.arrival_s, d3.arrival_s) and np.array_equal(d1.arrival_s, d4.arrival_s)
    # Same luck per request: a request twice as slow on one configuration scale is on the other.
    assert np.allclose(d1.work_ms, 2 * d3.work_ms)
    assert np.array_equal(d1.work_ms, d4.work_ms)
    _, d5 = run(lam(warm=warm), arr, seed=10, records=True)
    assert not np.array_equal(d1.arrival_s[:100], d5.arrival_s[:100])


def test_warmup_is_excluded_from_every_figure():
    arr = TimestampList([1.0, 2.0, 100.0, 101.0], duration_s=200.0)
    res, df = run(lam(warm={"dist": "constant", "value": 10.0}, keep_alive_s=1), arr, warmup_s=50.0, records=True)
    s = res.summary
    assert s["requests"] == 2 and s["cold_starts"] == 1 and s["horizon_s"] == 150.0
    assert s["cost_usd"]["requests"] == pytest.approx(2 * REQ)
    assert df.in_window.tolist() == [False, False, True, True]


# --- invariants (hypothesis) -----------------------------------------------------------------

arrival_lists = st.lists(st.floats(0, 50, allow_nan=False), min_size=1, max_size=60).map(sorted)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(times=arrival_lists, warm=st.floats(1, 3000), cold=st.floats(0, 2000), keep=st.floats(0.1, 30),
       limit=st.integers(1, 8), policy=st.sampled_from(["mru", "newest", "random"]), seed=st.integers(0, 99))
def test_lambda_invariants(times, warm, cold, keep, limit, policy, seed):
    cfg = lam(warm={"dist": "expon", "mean": warm}, cold={"dist": "expon", "mean": cold + 1e-3}, keep_alive_s=keep,
              concurrency_limit=limit, reuse=policy, timeout_s=5.0)
    res, df = run(cfg, TimestampList(times), seed=seed, records=True)
    s = res.summary
    assert s["requests"] == len(times) == len(df)
    assert sorted(df.request) == list(range(len(times)))  # none lost, none twice
    assert s["completed"] + s["rejected"] + s["timeouts"] == s["requests"]
    ok = df[df.status == "ok"]
    assert (ok.latency_ms >= ok.work_ms - 1e-9).all()
    assert (ok.latency_ms[ok.cold] >= ok.work_ms[ok.cold] + ok.init_ms[ok.cold] - 1e-9).all()
    assert s["instances"]["max"] <= limit
    assert s["cost_usd"]["total"] >= 0


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(times=arrival_lists, svc=st.floats(1, 3000), n=st.integers(1, 3), w=st.integers(1, 3),
       lb=st.sampled_from(["least_outstanding", "round_robin", "shared_queue"]), qlim=st.integers(0, 5),
       seed=st.integers(0, 99))
def test_ec2_invariants(times, svc, n, w, lb, qlim, seed):
    cfg = ec2(service={"dist": "expon", "mean": svc}, instances=n, workers_per_instance=w, load_balancer=lb,
              queue_limit=qlim, request_timeout_s=2.0)
    res, df = run(cfg, TimestampList(times), seed=seed, records=True)
    s = res.summary
    assert sorted(df.request) == list(range(len(times)))
    assert s["completed"] + s["rejected"] + s["timeouts"] == s["requests"] == len(times)
    served = df[df.status != "rejected"]
    assert (served.latency_ms >= served.work_ms - 1e-9).all()
    assert (served.done_s >= served.arrival_s).all()
    # FIFO per worker pool: nobody starts before arriving, never more than n*w in service at once.
    start = served.done_s - served.work_ms / 1000
    assert (start >= served.arrival_s - 1e-9).all()
    events = sorted([(round(t, 9), 1) for t in start] + [(round(t, 9), -1) for t in served.done_s])
    assert max(np.cumsum([e[1] for e in events])) <= n * w


@settings(max_examples=25, deadline=None)
@given(times=arrival_lists, base=st.floats(1, 500), factor=st.floats(1.0, 5.0), mem=st.sampled_from([128, 1024, 3008]))
def test_lambda_cost_is_monotone_in_duration(times, base, factor, mem):
    arr = TimestampList(times)
    c1 = run(lam(warm={"dist": "constant", "value": base}, memory_mb=mem, keep_alive_s=1e6), arr).summary
    c2 = run(lam(warm={"dist": "constant", "value": base * factor}, memory_mb=mem, keep_alive_s=1e6), arr).summary
    if c1["cold_starts"] == c2["cold_starts"]:
        assert c2["cost_usd"]["total"] >= c1["cost_usd"]["total"]

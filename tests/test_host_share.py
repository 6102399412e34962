"""Host CPU sharing (`sim.config.HostShare`, `sim.platforms.host`) in the SimPy engine: processor
sharing against queueing theory with stated tolerances, exact event logs and bills by hand, the
uncontended case equal to an unshared run bit for bit, and invariants checked by hypothesis."""
from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import simpy
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from sim import engine_simpy
from sim.config import HostShare, IdleEffect
from sim.metrics import Collector
from sim.platforms.host import Host, delay_until
from sim.streams import ARRIVALS, COLD, WARM, child_seed, generator
from traces.files import TimestampList
from traces.poisson import Poisson

from simhelp import ec2, lam, run, with_idle
from test_theory import batch_rel_se, erlang_c

GB_S_X86 = 0.0000166667


def shared(cfg, cores, init_cores=1.0, work_cores=1.0):
    return replace(cfg, host=HostShare(cores=cores, init_cores=init_cores, work_cores=work_cores))


# --- the host alone ----------------------------------------------------------------------------

def host_log(cores, jobs):
    """Run `jobs` [(start_s, phases)] on one host; returns {index: (end_s, durations_ms, timed_out)}."""
    env = simpy.Environment()
    host = Host(env, cores)
    out = {}

    def submit_at(i, t, phases):
        yield env.timeout(t)
        host.submit(phases, lambda job: out.__setitem__(i, (env.now, job.durations_ms, job.timed_out)))

    for i, (t, phases) in enumerate(jobs):
        env.process(submit_at(i, t, phases))
    env.run()
    return out, host


def test_water_filling_gives_a_small_cap_its_own_and_shares_the_rest():
    # caps 0.25, 1, 1 on 1.5 cores: the small job keeps 0.25 (rate 1), the others 0.625 each. At
    # 0.1 s the small one is done (100 ms); the others have done 62.5 ms and share 1.5 cores
    # (0.75 each): 37.5 ms / 0.75 = 50 ms more, done at 0.15 s.
    out, host = host_log(1.5, [(0.0, ((100.0, 0.25, None),)), (0.0, ((100.0, 1.0, None),)),
                               (0.0, ((100.0, 1.0, None),))])
    assert out[0] == (0.1, [100.0], False)
    for i in (1, 2):
        assert out[i][0] == pytest.approx(0.15, rel=1e-12)
        assert out[i][1] == pytest.approx([150.0], rel=1e-12)
    assert host.allocated_core_s == pytest.approx(host.demand_core_s, rel=1e-12)
    assert host.demand_core_s == pytest.approx(0.1 * 2.25, rel=1e-12)


def test_a_phase_limit_stops_a_stretched_phase_and_frees_its_cores():
    # One core: a needs 250 ms, b 100 ms, both limited to 300 ms. Together (rate 0.5) b ends at
    # 0.2 s; a has done 100 ms and runs alone, due at 0.35 s, but is stopped at 0.3 s.
    out, host = host_log(1.0, [(0.0, ((250.0, 1.0, 300.0),)), (0.0, ((100.0, 1.0, 300.0),))])
    assert out[1][0] == pytest.approx(0.2, rel=1e-12) and out[1][1] == pytest.approx([200.0]) and not out[1][2]
    assert out[0] == (pytest.approx(0.3, rel=1e-12), [300.0], True)
    assert host.allocated_core_s == pytest.approx(0.3, rel=1e-12)
    assert host.demand_core_s == pytest.approx(0.3, rel=1e-12)  # what ran of a, and b


def test_zero_length_phases_end_at_once_and_events_fire_at_exact_times():
    out, _ = host_log(1.0, [(0.0, ((0.0, 1.0, None), (0.0, 1.0, None))), (0.3, ((0.0, 1.0, None),))])
    assert out == {0: (0.0, [0.0, 0.0], False), 1: (0.3, [0.0], False)}
    for now, at in [(0.1, 0.3), (1e6 + 0.1, 1e6 + 0.30000000001), (3.0, 7e-17 + 3.0), (0.0, 1e-300)]:
        assert now + delay_until(now, at) == at
    # Unreachable from here (0.2889513820945003x either side round away): a hair early, never late,
    # and from that time on it is reachable.
    now, at = 0.17787303969698662, 0.4668244217914869
    early = now + delay_until(now, at)
    assert early < at and at - early < 1e-15 and early + delay_until(early, at) == at


# --- exact event logs by hand ------------------------------------------------------------------

COLD_150 = {"dist": "constant", "value": 150.0}
WARM_100 = {"dist": "constant", "value": 100.0}


@pytest.mark.parametrize("k", [1, 2, 4])
def test_k_simultaneous_cold_starts_stretch_by_k_over_cores(k):
    # 1.7 cores, INIT and invocation one core each: alone 150 + 100 ms; k at once share 1.7 cores
    # when k > 1.7, each phase stretched by k / 1.7. Billed ceil(INIT + invocation) each, at 1 GB.
    cfg = shared(lam(warm=WARM_100, cold=COLD_150, memory_mb=1024), 1.7)
    res, df = run(cfg, TimestampList([0.0] * k, duration_s=10.0), records=True, engine="simpy")
    stretch = 1.0 if k == 1 else k / 1.7
    init_ms, work_ms = 150.0 * stretch, 100.0 * stretch
    assert df.cold.all()
    assert df.init_ms.tolist() == pytest.approx([init_ms] * k, rel=1e-12)
    assert df.work_ms.tolist() == pytest.approx([work_ms] * k, rel=1e-12)
    assert df.latency_ms.tolist() == pytest.approx([init_ms + work_ms] * k, rel=1e-12)
    assert df.done_s.tolist() == pytest.approx([(init_ms + work_ms) / 1000] * k, rel=1e-12)
    billed_ms = k * math.ceil(init_ms + work_ms)
    assert billed_ms == {1: 250, 2: 2 * 295, 4: 4 * 589}[k]
    assert res.summary["cost_usd"]["compute"] == pytest.approx(billed_ms / 1000 * GB_S_X86, rel=1e-12)


def test_staggered_cold_starts_by_hand():
    # One core; INIT 100 ms, invocation 100 ms. a arrives at 0, b at 0.05 (a's INIT half done).
    #   0.00-0.05 a INIT alone (50 ms left)     0.05-0.15 a INIT, b INIT at rate 1/2: a's INIT ends
    #   0.15-0.25 a invocation, b INIT, 1/2 each: b's INIT ends, a has 50 ms of invocation left
    #   0.25-0.35 a, b invocations, 1/2 each: a ends; b has 50 ms left, alone: ends at 0.40.
    cfg = shared(lam(warm=WARM_100, cold={"dist": "constant", "value": 100.0}, memory_mb=1024), 1.0)
    res, df = run(cfg, TimestampList([0.0, 0.05], duration_s=10.0), records=True, engine="simpy")
    assert df.init_ms.tolist() == pytest.approx([150.0, 200.0], rel=1e-12)
    assert df.work_ms.tolist() == pytest.approx([200.0, 150.0], rel=1e-12)
    assert df.latency_ms.tolist() == pytest.approx([350.0, 350.0], rel=1e-12)
    assert df.done_s.tolist() == pytest.approx([0.35, 0.40], rel=1e-12)
    assert res.summary["cost_usd"]["compute"] == pytest.approx(0.700 * GB_S_X86, rel=1e-12)


def test_warm_invocation_shares_with_an_init_and_keep_alive_runs_from_the_real_completion():
    # 1.5 cores, INIT 1.5 cores, invocation 0.5: a (t=0) cold, done at 0.25 (alone). b at 0.3 warm
    # on a's environment (keep-alive 0.2 s from 0.25: still warm), c at 0.3 cold: b's 0.5 core fits
    # under its equal share (0.75), c's INIT gets the other 1.0 of its 1.5: rate 2/3 until b ends
    # at 0.4 (100 ms), then alone: 150 ms of INIT = 100 ms at 2/3 (66.7 done) + 83.3 alone:
    # ends at 0.4833.., then invocation 100 ms alone: done 0.58333.. d at 0.61 finds a's
    # environment reclaimed (idle since 0.4, keep-alive 0.2 s) and c's warm (idle since 0.5833).
    cfg = shared(lam(warm=WARM_100, cold=COLD_150, memory_mb=1024, keep_alive_s=0.2), 1.5, 1.5, 0.5)
    res, df = run(cfg, TimestampList([0.0, 0.3, 0.3, 0.61], duration_s=10.0), records=True, engine="simpy")
    c_init = 100.0 + (150.0 - 100.0 * 2 / 3)
    assert df.cold.tolist() == [True, False, True, False]
    assert df.latency_ms.tolist() == pytest.approx([250.0, 100.0, c_init + 100.0, 100.0], rel=1e-12)
    assert df.init_ms[2] == pytest.approx(c_init, rel=1e-12)
    assert res.summary["instances"]["max"] == 2
    # an environment reclaimed exactly keep-alive after its real completion: 0.4 + 0.2 < 0.61
    assert res.summary["cold_starts"] == 2


def test_stretched_invocation_times_out_is_billed_the_timeout_and_its_environment_is_discarded():
    # One core, INIT 0, two warm-length 200 ms invocations at once: each would take 400 ms; both
    # are stopped at 0.3 s (billed 300 ms), their environments discarded: a request at 1.0 is cold.
    cfg = shared(lam(warm={"dist": "constant", "value": 200.0}, memory_mb=1024, timeout_s=0.3), 1.0)
    res, df = run(cfg, TimestampList([0.0, 0.0, 1.0], duration_s=10.0), records=True, engine="simpy")
    assert df.status.tolist() == ["timeout", "timeout", "ok"]
    assert df.cold.tolist() == [True, True, True]
    assert df.latency_ms.tolist() == pytest.approx([300.0, 300.0, 200.0], rel=1e-12)
    assert df.done_s.tolist() == pytest.approx([0.3, 0.3, 1.2], rel=1e-12)
    assert res.summary["cost_usd"]["compute"] == pytest.approx(0.800 * GB_S_X86, rel=1e-12)


def test_ec2_workers_share_the_instance_and_timeouts_are_judged_on_the_stretched_latency():
    # 2 workers on 1 core, 100 ms each. a at 0, b at 0.05 (a half done), c at 0.06 (waits).
    #   0.05-0.15 a, b at 1/2: a ends at 0.15 (150 ms); b has 50 ms left; c starts (waited 90 ms)
    #   0.15-0.25 b, c at 1/2: b ends at 0.25 (200 ms); c has 50 ms left, alone: ends at 0.30.
    # Timeout 0.22 s: c's latency 90 + 150 = 240 ms is over it (its drawn 100 ms was not).
    cfg = shared(ec2(instances=1, workers_per_instance=2, service=WARM_100, load_balancer_billed=False,
                     request_timeout_s=0.22), 1.0)
    res, df = run(cfg, TimestampList([0.0, 0.05, 0.06], duration_s=60.0), records=True, engine="simpy")
    assert df.work_ms.tolist() == pytest.approx([150.0, 200.0, 150.0], rel=1e-12)
    assert df.latency_ms.tolist() == pytest.approx([150.0, 200.0, 240.0], rel=1e-12)
    assert df.done_s.tolist() == pytest.approx([0.15, 0.25, 0.30], rel=1e-12)
    assert df.status.tolist() == ["ok", "ok", "timeout"]


# --- processor sharing against theory ----------------------------------------------------------

def ps_sojourn(cfg, lam_rps, n, seed):
    _, df = run(cfg, Poisson(lam_rps, n / lam_rps), seed=seed, warmup_s=100.0, records=True, engine="simpy")
    ok = df[(df.status == "ok") & df.in_window]
    assert len(ok) == df.in_window.sum()  # 50 workers: nobody waits, nothing rejected
    assert np.all(ok.latency_ms.to_numpy() == ok.work_ms.to_numpy())
    return ok.latency_ms.to_numpy()


@pytest.mark.parametrize("service,rho,n", [
    ({"dist": "expon", "mean": 20.0}, 0.7, 300_000),
    ({"dist": "lognorm", "s": 1.0, "scale": 20.0 / math.exp(0.5)}, 0.6, 300_000),  # mean 20, cv^2 = e - 1
    ({"dist": "constant", "value": 20.0}, 0.5, 200_000),
])
def test_one_core_is_mg1_processor_sharing(service, rho, n):
    # M/G/1-PS: mean sojourn E[S] / (1 - rho), whatever the service law (insensitivity).
    es_ms = 20.0
    lam_rps = rho / (es_ms / 1000)
    cfg = shared(ec2(instances=1, workers_per_instance=50, service=service, load_balancer_billed=False,
                     queue_limit=10**9, request_timeout_s=1e9), 1.0)
    x = ps_sojourn(cfg, lam_rps, n, seed=7)
    assert batch_rel_se(x) < 0.01  # the run is long enough for a 3 % check
    assert x.mean() == pytest.approx(es_ms / (1 - rho), rel=0.03)


@pytest.mark.parametrize("service,rho", [({"dist": "expon", "mean": 20.0}, 0.6),
                                         ({"dist": "constant", "value": 20.0}, 0.7)])
def test_two_cores_one_per_job_match_mm2_through_insensitivity(service, rho):
    # Two cores, each job capped at one: n jobs in progress are served at total rate min(n, 2),
    # shared equally — a symmetric queue (Kelly), so insensitive: the number in system is that
    # of M/M/2, and by Little's law the mean sojourn is M/M/2's, E[S] + C(2, a) / (2 mu - lambda).
    es_ms = 20.0
    lam_rps = 2 * rho / (es_ms / 1000)
    cfg = shared(ec2(instances=1, workers_per_instance=50, service=service, load_balancer_billed=False,
                     queue_limit=10**9, request_timeout_s=1e9), 2.0)
    x = ps_sojourn(cfg, lam_rps, 200_000, seed=8)
    a = lam_rps * es_ms / 1000
    w_ms = es_ms + erlang_c(2, a) / (2 / es_ms - lam_rps / 1000)
    assert batch_rel_se(x) < 0.01
    assert x.mean() == pytest.approx(w_ms, rel=0.03)


# --- uncontended: the same run as without sharing ----------------------------------------------

LOGNORM = st.builds(lambda s, scale: {"dist": "lognorm", "s": s, "scale": scale},
                    st.floats(0.1, 1.0), st.floats(5.0, 300.0))


def records(cfg, arrivals, seed):
    res, df = run(cfg, arrivals, seed=seed, records=True, engine="simpy")
    return res.summary, df


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rate=st.floats(2.0, 60.0), warm=LOGNORM, cold=LOGNORM, keep=st.floats(0.05, 5.0),
       limit=st.integers(1, 6), pc=st.integers(0, 2), timeout=st.sampled_from([900.0, 0.2]),
       idle=st.booleans(), init_cores=st.floats(0.3, 2.0), work_cores=st.floats(0.3, 2.0),
       seed=st.integers(0, 99))
def test_lambda_on_a_big_enough_host_is_the_unshared_run(rate, warm, cold, keep, limit, pc, timeout, idle,
                                                         init_cores, work_cores, seed):
    cfg = lam(warm=warm, cold=cold, keep_alive_s=keep, concurrency_limit=limit, provisioned_concurrency=min(pc, limit),
              timeout_s=timeout)
    if idle:
        cfg = with_idle(cfg, IdleEffect(hot_ratio=0.6, tau_ms=30.0))
    arrivals = Poisson(rate, 4.0)
    a, da = records(cfg, arrivals, seed)
    b, db = records(shared(cfg, limit * max(init_cores, work_cores), init_cores, work_cores), arrivals, seed)
    pd.testing.assert_frame_equal(da, db, check_exact=True)
    assert a["cost_usd"] == b["cost_usd"] and a["cold_starts"] == b["cold_starts"]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rate=st.floats(2.0, 80.0), svc=LOGNORM, n=st.integers(1, 3), w=st.integers(1, 3),
       lb=st.sampled_from(["least_outstanding", "round_robin", "shared_queue"]), timeout=st.sampled_from([60.0, 0.3]),
       idle=st.booleans(), work_cores=st.floats(0.3, 2.0), seed=st.integers(0, 99))
@example(rate=25.0, svc={"dist": "lognorm", "s": 0.875, "scale": 237.0}, n=1, w=2, lb="least_outstanding",
         timeout=60.0, idle=False, work_cores=1.0, seed=32)  # a completion time SimPy cannot reach from 0.178 s
def test_ec2_on_big_enough_instances_is_the_unshared_run(rate, svc, n, w, lb, timeout, idle, work_cores, seed):
    cfg = ec2(service=svc, instances=n, workers_per_instance=w, load_balancer=lb, request_timeout_s=timeout,
              queue_limit=5)
    if idle:
        cfg = with_idle(cfg, IdleEffect(hot_ratio=0.6, tau_ms=30.0))
    arrivals = Poisson(rate, 4.0)
    a, da = records(cfg, arrivals, seed)
    b, db = records(shared(cfg, w * work_cores, work_cores=work_cores), arrivals, seed)
    pd.testing.assert_frame_equal(da, db, check_exact=True)
    assert a["cost_usd"] == b["cost_usd"] and a["latency_ms"] == b["latency_ms"]


# --- invariants under contention ---------------------------------------------------------------

def run_model(cfg, arrivals, seed):
    """The SimPy engine directly, to see the model's hosts; returns (model, records)."""
    parts = []
    collector = Collector(0.0, 60.0, parts.append)
    model, _ = engine_simpy.run(cfg, arrivals.chunks(child_seed(seed, ARRIVALS)), seed=seed, warmup_s=0.0,
                                horizon_s=arrivals.duration_s, collector=collector)
    return model, pd.concat(parts, ignore_index=True)


def drawn(dist_spec, seed, purpose, n):
    from sim.dists import parse_dist

    return parse_dist(dist_spec).ppf(generator(seed, purpose).random(n))


def check_conserved(hosts):
    allocated = sum(h.allocated_core_s for h in hosts)
    demand = sum(h.demand_core_s for h in hosts)
    assert allocated == pytest.approx(demand, rel=1e-9, abs=1e-12)
    assert all(not h.jobs for h in hosts)
    return demand


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rate=st.floats(5.0, 80.0), warm=LOGNORM, cold=LOGNORM, keep=st.floats(0.05, 3.0), limit=st.integers(1, 12),
       cores=st.floats(0.2, 4.0), init_cores=st.floats(0.3, 2.0), work_cores=st.floats(0.3, 2.0),
       seed=st.integers(0, 99))
def test_lambda_invariants_under_contention(rate, warm, cold, keep, limit, cores, init_cores, work_cores, seed):
    cfg = shared(lam(warm=warm, cold=cold, keep_alive_s=keep, concurrency_limit=limit), cores, init_cores, work_cores)
    arrivals = Poisson(rate, 3.0)
    model, df = run_model(cfg, arrivals, seed)
    n = len(df)
    assert n == sum(c.size for c in arrivals.chunks(child_seed(seed, ARRIVALS)))  # none lost, none twice
    assert df.request.tolist() == list(range(n))
    served = (df.status == "ok").to_numpy()
    assert set(df.status[~served]) <= {"throttled"}
    w0, c0 = drawn(warm, seed, WARM, n), drawn(cold, seed, COLD, n)
    work, init, cold_ = df.work_ms.to_numpy(), df.init_ms.to_numpy(), df.cold.to_numpy()
    assert np.all(work[served] >= w0[served] * (1 - 1e-12))
    assert np.all(init[served & cold_] >= c0[served & cold_] * (1 - 1e-12))
    lat = df.latency_ms.to_numpy()[served]
    assert np.all(lat >= work[served]) and np.all(np.isfinite(lat))
    assert np.allclose(lat, work[served] + init[served], rtol=1e-12)
    assert np.all(df.done_s.to_numpy()[served] >= df.arrival_s.to_numpy()[served])
    demand = check_conserved([model.host])
    expect = (w0[served] * work_cores).sum() + (c0[served & cold_] * init_cores).sum()
    assert demand == pytest.approx(expect / 1000, rel=1e-9)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rate=st.floats(5.0, 120.0), svc=LOGNORM, n=st.integers(1, 3), w=st.integers(1, 6),
       lb=st.sampled_from(["least_outstanding", "round_robin", "shared_queue"]), cores=st.floats(0.2, 4.0),
       work_cores=st.floats(0.3, 2.0), seed=st.integers(0, 99))
def test_ec2_invariants_under_contention(rate, svc, n, w, lb, cores, work_cores, seed):
    cfg = shared(ec2(service=svc, instances=n, workers_per_instance=w, load_balancer=lb, queue_limit=20,
                     request_timeout_s=1.0), cores, work_cores=work_cores)
    arrivals = Poisson(rate, 3.0)
    model, df = run_model(cfg, arrivals, seed)
    assert len(df) == sum(c.size for c in arrivals.chunks(child_seed(seed, ARRIVALS)))
    served = df.status.isin(["ok", "timeout"]).to_numpy()
    assert set(df.status[~served]) <= {"rejected"}
    w0 = drawn(svc, seed, WARM, len(df))
    work = df.work_ms.to_numpy()
    assert np.all(work[served] >= w0[served] * (1 - 1e-12))
    lat = df.latency_ms.to_numpy()[served]
    assert np.all(lat >= work[served] * (1 - 1e-12))
    assert np.array_equal(df.status[served] == "timeout", lat > 1000.0)
    demand = check_conserved([i.host for i in model.instances])
    assert demand == pytest.approx((w0[served] * work_cores).sum() / 1000, rel=1e-9)


def test_the_fast_engine_refuses_host_sharing_and_auto_picks_simpy():
    from sim.errors import ServesimError
    from sim.run import resolve_engine

    for cfg in (shared(lam(warm=100.0, cold=150.0), 1.7), shared(ec2(100.0), 2.0)):
        assert resolve_engine("auto", cfg) == "simpy"
        with pytest.raises(ServesimError, match=r"host CPU sharing \(host:\).*engine: simpy"):
            resolve_engine("fast", cfg)
        assert resolve_engine("auto", replace(cfg, host=None)) == "fast"

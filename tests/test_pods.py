"""Pods and container instances (`sim.platforms.pods`, `autoscalers`): queueing theory with stated
tolerances, the autoscalers' timelines computed by hand, tiny deterministic event logs, bills by
hand, and invariants checked by hypothesis."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sim import engine_simpy
from sim.config import (AutoscalingConfig, ContainerPrices, ContainerScaling, ContainerServiceConfig,
                        K8sFunctionConfig, KnativeKpa, OpenFaasRps, PodService)
from sim.dists import parse_dist
from sim.metrics import Collector
from sim.run import resolve_engine
from sim.streams import ARRIVALS, child_seed
from traces.files import TimestampList
from traces.poisson import Poisson

from test_theory import batch_rel_se, erlang_c, waits

C6I_LARGE_HOUR = 0.085  # $/h (aws-facts.md), as in test_engine.py


def openfaas(**kw) -> OpenFaasRps:
    p = dict(threshold_rps=5.0, rate_window_s=10.0, for_s=5.0, eval_interval_s=5.0, group_wait_s=0.0,
             repeat_interval_s=12.0,
             scale_factor_pct=20.0)
    p.update(kw)
    return OpenFaasRps(**p)


def kpa(**kw) -> KnativeKpa:
    p = dict(target=1.0, target_utilization=1.0, stable_window_s=60.0, panic_window_pct=10.0,
             panic_threshold_pct=200.0, max_scale_up_rate=1000.0, max_scale_down_rate=2.0,
             scale_to_zero_grace_s=30.0, tick_s=2.0)
    p.update(kw)
    return KnativeKpa(**p)


def k8s(service=100.0, start=2.0, autoscaler=None, **kw) -> K8sFunctionConfig:
    return K8sFunctionConfig(name="fn", service=PodService(parse_dist(service)), pod_start_s=parse_dist(start),
                             autoscaler=autoscaler if autoscaler is not None else openfaas(threshold_rps=1e9),
                             control_plane_usd_per_hour=0.10, **kw)


PRICES = ContainerPrices(preset="test", usd_per_vcpu_s=0.00002, usd_per_gb_s=0.000002, usd_per_request=4e-7,
                         billing="instance", increment_s=1.0, minimum_s=60.0)


def tracking(**kw) -> AutoscalingConfig:
    p = dict(min_instances=0, max_instances=10, target=0.6, boot_s=parse_dist(1.0), metric_period_s=60.0)
    p.update(kw)
    return AutoscalingConfig(**p)


def container(service=100.0, start=1.0, scaling=None, prices=PRICES, **kw) -> ContainerServiceConfig:
    scaling = scaling if scaling is not None else ContainerScaling(metric="cpu", tracking=tracking())
    return ContainerServiceConfig(name="svc", service=PodService(parse_dist(service)), start_s=parse_dist(start),
                                  prices=prices, scaling=scaling, **kw)


def sim(cfg, arrivals, *, seed=1, warmup_s=0.0):
    """Run the SimPy engine; returns (model, collector, per-request records)."""
    parts: list[pd.DataFrame] = []
    col = Collector(warmup_s, 60.0, parts.append)
    model, _ = engine_simpy.run(cfg, arrivals.chunks(child_seed(seed, ARRIVALS)), seed=seed, warmup_s=warmup_s,
                                horizon_s=arrivals.duration_s, collector=col)
    return model, col, pd.concat(parts, ignore_index=True)


def times(*ts, duration_s=None):
    return TimestampList(list(ts), duration_s=duration_s)


# --- fixed fleets against Erlang C ------------------------------------------------------------

def _check_mmc(cfg, servers: int, rho: float, n: int, seed: int):
    mean_ms = 100.0
    lam_rps = rho * servers / (mean_ms / 1000)
    model, col, df = sim(cfg, Poisson(lam_rps, n / lam_rps), seed=seed, warmup_s=200.0)
    w = waits(df)
    a = lam_rps * mean_ms / 1000
    pw = erlang_c(servers, a)
    wq_ms = pw / (servers / mean_ms - lam_rps / 1000)  # Erlang C: Wq = C(c, a) / (c mu - lambda)
    assert col.cold_starts == 0 and col.rejected == 0
    # Relative standard error of the mean wait (batch means), measured over seeds 1-4 with 2 M
    # requests: 0.9-1.2 % for M/M/6, 0.7-0.95 % for M/M/4 (deviations from theory -0.4..+2.0 %
    # and -0.4..+1.4 %). These runs are longer (3 M, 2.5 M): about 0.7-0.9 %, so 3 % is 3.5 to
    # 4 standard errors. P(wait) deviated by at most 0.5 % (2 % allowed).
    assert batch_rel_se(w) < 0.01
    assert w.mean() == pytest.approx(wq_ms, rel=0.03)
    assert (w > 1e-9).mean() == pytest.approx(pw, rel=0.02)
    print(f"M/M/{servers} rho {rho}: {w.size} waits, mean {w.mean():.3f} ms vs Erlang C {wq_ms:.3f} ms, "
          f"rel SE {batch_rel_se(w):.4f}; P(wait) {(w > 1e-9).mean():.4f} vs {pw:.4f}")


@pytest.mark.slow
def test_k8s_fixed_replicas_are_an_mmc_queue():
    # 3 pods x 2 slots = M/M/6 at rho 0.7 (a KPA that cannot move: min = max).
    cfg = k8s(service={"dist": "expon", "mean": 100.0}, autoscaler=kpa(), min_replicas=3, max_replicas=3,
              concurrency=2, request_timeout_s=1e9)
    _check_mmc(cfg, servers=6, rho=0.7, n=3_000_000, seed=1)


@pytest.mark.slow
def test_container_fixed_instances_are_an_mmc_queue():
    # 2 instances x 2 slots = M/M/4 at rho 0.7 (target tracking pinned by min = max).
    cfg = container(service={"dist": "expon", "mean": 100.0}, min_instances=2, max_instances=2, concurrency=2,
                    scaling=ContainerScaling(metric="cpu", tracking=tracking(min_instances=2, max_instances=2)),
                    request_timeout_s=1e9)
    _check_mmc(cfg, servers=4, rho=0.7, n=2_500_000, seed=1)


# --- OpenFaaS: the alert's timeline by hand -----------------------------------------------

def test_openfaas_alert_steps_replicas_up_then_back_to_min():
    # 30 req/s from t=0 to 120 s; threshold 5 req/s over a 10 s window, evaluated every 5 s,
    # for 5 s, first notification 5 s after firing (group wait), repeat every 12 s; step
    # ceil(5 * 20 / 100) = 1 replica, at most 5.
    # Evaluation 5 s: rate 15 > 5, pending. 10 s: pending for 5 s -> fires; notified at 15 s:
    # 2 replicas. Repeats at 27, 39, 51 s: 3, 4, 5; at 63 s and after: capped, no change.
    # Evaluation 125 s: (115, 125] still holds 5 s of load (15 req/s). 130 s: 0 -> resolved -> 1.
    arr = TimestampList([k / 30 for k in range(3600)], duration_s=200.0)
    cfg = k8s(service=20.0, start=2.0, autoscaler=openfaas(group_wait_s=5.0), min_replicas=1, max_replicas=5)
    model, col, df = sim(cfg, arr)
    assert [(t, n) for t, _, n in model.actions] == [(15.0, 2), (27.0, 3), (39.0, 4), (51.0, 5), (130.0, 1)]
    assert model.alive_tally.max_level == 5
    assert model.alive == 1 and model.ready == 1
    # The four pods added were stopped when the alert resolved (idle), the oldest kept.
    assert sorted(model.lives) == [(15.0, 130.0), (27.0, 130.0), (39.0, 130.0), (51.0, 130.0)]
    assert col.completed == 3600 and col.cold_starts == 0  # one pod keeps up; new pods find no queue


def test_openfaas_drain_keeps_busy_pod_until_empty_and_takes_no_new_request():
    # Threshold 1 req/s over 1 s, evaluated every 1 s, no `for`: fires at 1 s (3 arrivals in
    # (0, 1]), +1 pod (start 0.5 s: ready 1.5 s, takes the queue head, arrived 0.1: cold).
    # Evaluation 2 s: nothing in (1, 2] -> resolved -> back to 1: both pods busy, the newest
    # drains; it finishes at 11.5 s and stops without taking the request queued since 0.3 s.
    cfg = k8s(service=10_000.0, start=0.5, min_replicas=1, max_replicas=2,
              autoscaler=openfaas(threshold_rps=1.0, rate_window_s=1.0, for_s=0.0, eval_interval_s=1.0,
                                  repeat_interval_s=100.0, scale_factor_pct=50.0))
    model, col, df = sim(cfg, times(0.0, 0.1, 0.2, 0.3))
    assert [(t, n) for t, _, n in model.actions] == [(1.0, 2), (2.0, 1)]
    assert df.latency_ms.tolist() == pytest.approx([10_000.0, 11_400.0, 19_800.0, 29_700.0])
    assert df.done_s.tolist() == pytest.approx([10.0, 11.5, 20.0, 30.0])
    assert df.cold.tolist() == [False, True, False, False]
    assert model.lives == [(1.0, 11.5)]


# --- Knative KPA ------------------------------------------------------------------------------

def test_kpa_scales_to_zero_after_stable_window_and_grace_then_cold_start():
    # Min 0: the request at 0 finds no pod, starts one (3 s): cold, 3000 + 100 ms.
    # Requests at 10..20 s are warm. The last completes at 20.1 s; the first tick whose 60 s
    # stable window (t - 60, t] has no request in flight is 82 s (80 s still sees 20-20.1):
    # wanted 0, the last pod goes 30 s (grace) later: 112 s. The request at 150 s is cold again.
    ts = [0.0] + [float(t) for t in range(10, 21)] + [150.0]
    cfg = k8s(service=100.0, start=3.0, autoscaler=kpa(), min_replicas=0, max_replicas=10)
    model, col, df = sim(cfg, TimestampList(ts))
    assert df.cold.tolist() == [True] + [False] * 11 + [True]
    assert df.latency_ms.iloc[0] == pytest.approx(3100.0)
    assert df.latency_ms.iloc[-1] == pytest.approx(3100.0)
    assert df.latency_ms.iloc[1:-1].tolist() == pytest.approx([100.0] * 11)
    zero = [t for t, reason, n in model.actions if n == 0]
    assert zero == [pytest.approx(112.0, abs=1e-9)]  # the tick is exact here (asked: within one tick)
    assert model.lives[0] == pytest.approx((0.0, 112.0))
    assert col.cold_starts == 2


def test_kpa_panics_on_a_burst_and_scales_up_within_two_ticks():
    # 0.5 req/s of 1 s requests on one pod, then from t=100 s a burst of 10 req/s. In-flight
    # requests grow ~10/s: by 102 s the 6 s panic window averages ~3.3 -> 4 wanted pods over
    # 1 ready = 4 >= 200 %: panic, scale to 4 at once (the 60 s stable average is still ~0.8).
    ts = list(np.arange(0.0, 100.0, 2.0)) + list(np.arange(100.0, 130.0, 0.1))
    cfg = k8s(service=1000.0, start=1.0, autoscaler=kpa(), min_replicas=1, max_replicas=20)
    model, col, df = sim(cfg, TimestampList(ts))
    panic_start = model.scaler.panics[0][0]
    assert 100.0 < panic_start <= 104.0
    first_up = next(t for t, _, n in model.actions if n > 1)
    assert first_up == panic_start
    assert max(n for t, _, n in model.actions if t <= 104.0) >= 4
    # The burst needs 10 pods (10 req/s x 1 s); the backlog built meanwhile pushes the panicking
    # autoscaler (which never scales down) further, up to the maximum and never past it.
    assert 10 <= model.alive_tally.max_level <= 20


# --- tiny deterministic scenarios ---------------------------------------------------------------

def test_least_busy_ready_pod_then_fifo_gateway_queue():
    # Two pods of 2 slots (min = max = 2), 100 ms: requests at 0 go to pod 0, then pod 1 (less
    # busy), then pod 0 again (tie: the oldest), ...; the 5th queues and starts at 0.1 s.
    cfg = k8s(service=100.0, min_replicas=2, max_replicas=2, concurrency=2)
    model, col, df = sim(cfg, times(0.0, 0.0, 0.0, 0.0, 0.0, 0.05))
    assert df.latency_ms.tolist() == pytest.approx([100.0] * 4 + [200.0, 150.0])
    assert df.done_s.tolist() == pytest.approx([0.1] * 4 + [0.2, 0.2])
    assert not df.cold.any()


def test_cold_flag_covers_requests_that_waited_for_a_start():
    # Min 0, concurrency 1, start 2 s: the request at 0 starts one pod; the one at 0.5 queues
    # behind (no second pod: one is starting) and is served after the first at 2.1 s. Both
    # arrived before the pod was ready: cold. The one at 10 s finds it warm.
    cfg = k8s(service=100.0, start=2.0, autoscaler=kpa(), min_replicas=0, max_replicas=1)
    model, col, df = sim(cfg, times(0.0, 0.5, 10.0))
    assert df.cold.tolist() == [True, True, False]
    assert df.latency_ms.tolist() == pytest.approx([2100.0, 1700.0, 100.0])
    assert col.cold_starts == 2


def test_queue_limit_rejects_and_timeout_counts_but_is_served():
    cfg = k8s(service=100.0, min_replicas=1, max_replicas=1, queue_limit=2, request_timeout_s=0.25)
    model, col, df = sim(cfg, times(0.0, 0.0, 0.0, 0.0, 0.0))
    assert df.status.tolist() == ["ok", "ok", "timeout", "rejected", "rejected"]
    assert df.done_s.tolist()[:3] == pytest.approx([0.1, 0.2, 0.3])
    assert (col.completed, col.rejected, col.timeouts) == (2, 2, 1)


def test_idle_timeout_stops_an_instance_above_the_minimum():
    # Min 0: the request at 0 starts an instance (1 s, cold); at 1.5 s warm; idle from 1.6 s,
    # stopped 5 s later at 6.6 s; the request at 20 s is cold again.
    cfg = container(service=100.0, start=1.0, min_instances=0, max_instances=3,
                    scaling=ContainerScaling(metric="cpu", tracking=tracking(), idle_timeout_s=5.0))
    model, col, df = sim(cfg, times(0.0, 1.5, 20.0))
    assert df.cold.tolist() == [True, False, True]
    assert df.latency_ms.tolist() == pytest.approx([1100.0, 100.0, 1100.0])
    assert model.lives == [pytest.approx((0.0, 6.6))]


def test_fast_engine_refuses_the_new_kinds_by_their_names():
    from sim.errors import ServesimError

    assert resolve_engine("auto", k8s()) == "simpy"
    assert resolve_engine("auto", container()) == "simpy"
    with pytest.raises(ServesimError, match="platform kind k8s-function"):
        resolve_engine("fast", k8s())
    with pytest.raises(ServesimError, match="platform kind container-service"):
        resolve_engine("fast", container())


# --- bills by hand --------------------------------------------------------------------------------

def test_container_instance_bill_by_hand():
    from simhelp import run

    # One instance (min = max = 1) alive over the 100 s window: 100 s billed (above the 60 s minimum, whole
    # seconds), 1 vCPU and 2 GB; 3 requests.
    cfg = container(service=100.0, min_instances=1, max_instances=1, vcpu=1.0, memory_gb=2.0)
    res = run(cfg, times(1.0, 2.0, 3.0, duration_s=100.0))
    per_s = 1.0 * PRICES.usd_per_vcpu_s + 2.0 * PRICES.usd_per_gb_s
    c = res.summary["cost_usd"]
    assert c["total"] == pytest.approx(100.0 * per_s + 3 * PRICES.usd_per_request, rel=1e-9)
    assert res.summary["kind"] == "container-service"


def test_container_request_and_execution_bills_by_hand():
    from dataclasses import replace

    from simhelp import run

    # Requests of 250 ms at 1.0, 1.1 (overlapping: one active period 1.0-1.35 s) and 5.0
    # (5.0-5.25 s); increment 0.1 s: request billing 0.4 + 0.3 = 0.7 s; execution billing:
    # 3 x 0.25 s x 2 GB (no increment) = 1.5 GB-s.
    arr = times(1.0, 1.1, 5.0, duration_s=10.0)
    base = dict(service=250.0, min_instances=1, max_instances=1, vcpu=1.0, memory_gb=2.0)
    per_s = 1.0 * PRICES.usd_per_vcpu_s + 2.0 * PRICES.usd_per_gb_s
    req = run(container(prices=replace(PRICES, billing="request", increment_s=0.1, minimum_s=0.0), **base), arr)
    assert req.summary["cost_usd"]["total"] == pytest.approx(0.7 * per_s + 3 * PRICES.usd_per_request, rel=1e-9)
    ex = run(container(prices=replace(PRICES, billing="execution", increment_s=0.0, minimum_s=0.0), **base), arr)
    assert ex.summary["cost_usd"]["total"] == pytest.approx(1.5 * PRICES.usd_per_gb_s + 3 * PRICES.usd_per_request,
                                                            rel=1e-9)


def test_k8s_nodes_follow_pods_and_bill_by_hand():
    from dataclasses import replace

    from simhelp import run

    # OpenFaaS as in the drain test: 1 pod -> 2 pods at 1 s (pod 2 alive 1 .. 11.5 s); 2 pods
    # per node: one node for the whole 3600 s window; control plane $0.10/h for one hour.
    cfg = k8s(service=10_000.0, start=0.5, min_replicas=1, max_replicas=2, pods_per_node=2,
              autoscaler=openfaas(threshold_rps=1.0, rate_window_s=1.0, for_s=0.0, eval_interval_s=1.0,
                                  repeat_interval_s=100.0, scale_factor_pct=50.0))
    res = run(cfg, times(0.0, 0.1, 0.2, 0.3, duration_s=3600.0))
    assert res.summary["cost_usd"]["total"] == pytest.approx(C6I_LARGE_HOUR + 0.10, rel=1e-9)
    # One pod per node: a second node from 1 s to 11.5 s, billed its 60 s minimum.
    res = run(replace(cfg, pods_per_node=1), times(0.0, 0.1, 0.2, 0.3, duration_s=3600.0))
    assert res.summary["cost_usd"]["total"] == pytest.approx(C6I_LARGE_HOUR * (3600 + 60) / 3600 + 0.10, rel=1e-9)


# --- invariants (hypothesis) ----------------------------------------------------------------------

arrival_lists = st.lists(st.floats(0, 60, allow_nan=False), min_size=1, max_size=60).map(sorted)


def _policy(kind: int, lo: int, hi: int, conc: int, qlim: int, start: float, svc: float):
    service = {"dist": "expon", "mean": svc}
    startd = {"dist": "expon", "mean": start}
    if kind == 0:
        return k8s(service=service, start=startd, min_replicas=max(lo, 1), max_replicas=hi, concurrency=conc,
                   queue_limit=qlim, request_timeout_s=3.0,
                   autoscaler=openfaas(threshold_rps=1.0, rate_window_s=2.0, for_s=1.0, eval_interval_s=1.0,
                                       repeat_interval_s=2.0, scale_factor_pct=50.0))
    if kind == 1:
        return k8s(service=service, start=startd, min_replicas=lo, max_replicas=hi, concurrency=conc,
                   queue_limit=qlim, request_timeout_s=3.0,
                   autoscaler=kpa(stable_window_s=6.0, tick_s=1.0, scale_to_zero_grace_s=2.0, max_scale_up_rate=2.0))
    if kind == 2:
        return container(service=service, start=startd, min_instances=lo, max_instances=hi, concurrency=conc,
                         queue_limit=qlim, request_timeout_s=3.0,
                         scaling=ContainerScaling(metric="cpu", idle_timeout_s=3.0,
                                                  tracking=tracking(metric_period_s=2.0, scale_out_periods=1,
                                                                    scale_in_periods=2, cooldown_s=3.0)))
    return container(service=service, start=startd, min_instances=lo, max_instances=hi, concurrency=conc,
                     queue_limit=qlim, request_timeout_s=3.0,
                     scaling=ContainerScaling(metric="concurrency", idle_timeout_s=4.0,
                                              kpa=kpa(stable_window_s=6.0, tick_s=1.0, scale_to_zero_grace_s=2.0)))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ts=arrival_lists, kind=st.integers(0, 3), lo=st.integers(0, 2), extra=st.integers(0, 3),
       conc=st.integers(1, 3), qlim=st.integers(0, 6), start=st.floats(0.01, 5.0), svc=st.floats(1.0, 3000.0),
       seed=st.integers(0, 99))
def test_pod_invariants(ts, kind, lo, extra, conc, qlim, start, svc, seed):
    cfg = _policy(kind, lo, lo + extra + 1, conc, qlim, start, svc)
    model, col, df = sim(cfg, TimestampList(ts), seed=seed)
    lo_units, hi_units = model.min_units, model.max_units
    assert col.requests == len(ts) == len(df)
    assert sorted(df.request) == list(range(len(ts)))  # none lost, none twice
    assert col.completed + col.rejected + col.timeouts == col.requests
    served = df[df.status != "rejected"]
    assert (served.latency_ms >= served.work_ms - 1e-9).all()
    assert (served.done_s >= served.arrival_s).all()
    assert model.in_system == 0 and not model.queue
    # Units alive within [min, max] at all times: replay the launches and stops (the initial
    # units are launched at 0), checking the level after each instant's changes.
    lives = model.unit_lives(math.inf)
    changes: dict[float, int] = {}
    for s, e in lives:
        changes[s] = changes.get(s, 0) + 1
        if e < math.inf:
            changes[e] = changes.get(e, 0) - 1
    level = 0
    for t in sorted(changes):
        level += changes[t]
        assert lo_units <= level <= hi_units, (t, level)
    assert level == model.alive
    assert all(lo_units <= n <= hi_units for _, _, n in model.actions)
    assert model.alive_tally.max_level <= hi_units

"""The fast engine's Lambda model gives the SimPy engine's results exactly, on identical inputs.

"Exactly": every per-request record (status, cold start, provisioned, work, init, latency,
completion time) is bit-identical, and so are the end of the run, the instance tallies (areas,
maxima, per-minute series), the bills and every Result key. Both engines are run through
`sim.run.simulate_one` on the same arrival source, seed and chunk size. With an idle effect
(`IdleEffect`) too, whose scaled durations are checked against the draws they come from.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from simhelp import PRICING, ec2, lam, scaled_by_the_idle_effect, with_idle

from sim.config import IdleEffect
from sim.errors import ServesimError
from sim.run import simulate_one
from traces.files import TimestampList
from traces.poisson import Poisson

LOGN = {"dist": "lognorm", "s": 0.6, "scale": 120.0}
INIT = {"dist": "lognorm", "s": 0.3, "scale": 400.0}
IDLE_EFFECTS = st.builds(IdleEffect, hot_ratio=st.floats(0.2, 1.5), tau_ms=st.floats(0.5, 200.0))


def both(cfg, arrivals, *, seed=1, warmup_s=0.0, chunk_size=65536):
    """(simpy, fast): (result, records) of each engine."""
    out = []
    for engine in ("simpy", "fast"):
        parts: list[pd.DataFrame] = []
        res = simulate_one(cfg, arrivals, pricing=PRICING, seed=seed, warmup_s=warmup_s, engine=engine,
                           chunk_size=chunk_size, record_sink=parts.append)
        out.append((res, pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()))
    return out


def assert_identical(pair) -> None:
    (a, ra), (b, rb) = pair
    pd.testing.assert_frame_equal(ra, rb, check_exact=True)
    assert a.end_s == b.end_s
    sa, sb = dict(a.summary), dict(b.summary)
    assert (sa.pop("engine"), sb.pop("engine")) == ("simpy", "fast")
    assert sa == sb or _nan_equal(sa, sb), (sa, sb)
    pd.testing.assert_frame_equal(a.series, b.series, check_exact=True)
    assert a.histogram.to_dict() == b.histogram.to_dict()


def _nan_equal(x, y) -> bool:
    if isinstance(x, dict) and isinstance(y, dict):
        return x.keys() == y.keys() and all(_nan_equal(x[k], y[k]) for k in x)
    if isinstance(x, float) and isinstance(y, float) and math.isnan(x) and math.isnan(y):
        return True
    return x == y


@pytest.mark.parametrize("reuse", ["mru", "newest", "random"])
@pytest.mark.parametrize("case", ["plain", "keep-dist+pc+timeouts", "throttled", "warm-up"])
@pytest.mark.parametrize("chunk_size", [7, 65536])
@pytest.mark.parametrize("idle", [None, IdleEffect(hot_ratio=0.6, tau_ms=60.0), IdleEffect(hot_ratio=1.4, tau_ms=60.0)],
                         ids=["no-idle-effect", "faster-when-hot", "slower-when-hot"])
def test_identical_to_simpy(reuse, case, chunk_size, idle):
    """With an idle effect, the scaled durations of warm starts (on-demand and provisioned)
    decide timeouts, latencies, completions (hence which environment is reused) and the bill."""
    kw = dict(reuse=reuse, keep_alive_s=4.0)
    warmup_s = 0.0
    if case == "keep-dist+pc+timeouts":
        kw.update(keep_alive_s={"dist": "expon", "mean": 3.0}, provisioned_concurrency=2, timeout_s=0.25)
    elif case == "throttled":
        kw.update(concurrency_limit=6, scale_burst=3, scale_refill_per_s=1.5)
    elif case == "warm-up":
        warmup_s = 45.0
    cfg = with_idle(lam(warm=LOGN, cold=INIT, **kw), idle)
    pair = both(cfg, Poisson(40.0, 120.0), seed=7, warmup_s=warmup_s, chunk_size=chunk_size)
    assert_identical(pair)
    if idle is not None:
        records = pair[1][1]
        assert scaled_by_the_idle_effect(cfg, records, 7) > len(records) // 4


@pytest.mark.parametrize("reuse", ["mru", "newest", "random"])
def test_ties_resolve_as_in_simpy(reuse):
    """Constant times on a grid: completions, expiries and arrivals at the same instants."""
    times = np.repeat(np.arange(0.0, 30.0, 0.5), 3)  # three requests at each instant
    cfg = lam(warm={"dist": "constant", "value": 500.0}, cold={"dist": "constant", "value": 500.0},
              keep_alive_s=1.0, reuse=reuse, concurrency_limit=5, scale_burst=4, scale_refill_per_s=2.0)
    pair = both(cfg, TimestampList(times.tolist(), duration_s=40.0), chunk_size=5)
    assert_identical(pair)
    records = pair[1][1]
    assert records.cold.sum() > 3 and (records.status == "throttled").sum() > 0


def test_end_of_run_with_keep_alive_zero_and_a_horizon():
    cfg = lam(warm={"dist": "constant", "value": 250.0}, keep_alive_s=0.0)
    assert_identical(both(cfg, TimestampList([0.0, 0.25, 0.5, 0.75, 3.0], duration_s=3.25)))
    assert_identical(both(cfg, TimestampList([0.0, 0.25, 0.5, 0.75, 3.0])))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(reuse=st.sampled_from(["mru", "newest", "random"]),
       rate=st.floats(0.5, 60.0), keep=st.one_of(st.floats(0.0, 5.0), st.just("dist")),
       limit=st.integers(1, 12), burst=st.integers(1, 12), refill=st.floats(0.1, 20.0),
       pc=st.integers(0, 3), timeout_s=st.sampled_from([900.0, 0.3, 0.05]),
       warm=st.sampled_from([LOGN, {"dist": "expon", "mean": 80.0}, {"dist": "constant", "value": 100.0}]),
       chunk=st.sampled_from([1, 3, 50, 65536]), warmup=st.sampled_from([0.0, 5.0]), seed=st.integers(0, 10**6),
       idle=st.one_of(st.none(), IDLE_EFFECTS), init_billed=st.booleans())
def test_property_identical_to_simpy(reuse, rate, keep, limit, burst, refill, pc, timeout_s, warm, chunk, warmup,
                                     seed, idle, init_billed):
    keep_alive = {"dist": "expon", "mean": 2.0} if keep == "dist" else keep
    cfg = lam(warm=warm, cold=INIT, reuse=reuse, keep_alive_s=keep_alive, concurrency_limit=limit,
              scale_burst=burst, scale_refill_per_s=refill, provisioned_concurrency=pc, timeout_s=timeout_s,
              init_billed=init_billed)
    cfg = with_idle(cfg, idle)
    pair = both(cfg, Poisson(rate, 20.0), seed=seed, warmup_s=warmup, chunk_size=chunk)
    assert_identical(pair)
    if idle is not None and len(pair[1][1]):
        scaled_by_the_idle_effect(cfg, pair[1][1], seed)


@pytest.mark.parametrize("keep_alive_s", [0.02, 0.7, 30.0])
def test_cold_starts_throughout_large_chunks_identical_to_simpy(keep_alive_s):
    """Cold starts dense (every request), sparse, and only at the start of a long chunk: the
    INIT durations are computed in windows of the chunk that grow (FastLambda.chunk)."""
    cfg = lam(warm=LOGN, cold=INIT, keep_alive_s=keep_alive_s)
    pair = both(cfg, Poisson(30.0, 2500.0), seed=3, chunk_size=65536)
    assert_identical(pair)
    assert pair[1][1].cold.sum() > 20


def test_billed_sums_are_lambda_billed_ms_summed():
    """`lambda_billed_sums` (LambdaModel.account) against `lambda_billed_ms` on the masked arrays,
    totals next to whole milliseconds (where the 1 ns rounding decides) included."""
    from sim.billing import lambda_billed_ms, lambda_billed_sums

    rng = np.random.default_rng(5)
    n = 200_000
    for timeout_ms in (900_000.0, 50.0, 10.5):
        work = np.concatenate([rng.lognormal(2, 1.5, n // 2),
                               rng.integers(0, 10**8, n // 2) * 1e-6 + rng.choice([0, 5e-7, 4.9999e-7, 1e-9], n // 2)])
        init = rng.lognormal(6, 0.5, n)
        cold = rng.random(n) < 0.3
        init[~cold & (rng.random(n) < 0.5)] = np.nan  # never read
        served = rng.random(n) < 0.9
        on_pc = rng.random(n) < 0.2
        for with_init in (True, False):
            w = np.minimum(work[served], timeout_ms)
            i = np.where(cold[served], init[served], 0.0) if with_init else 0.0
            billed = lambda_billed_ms(w, i)
            pc = on_pc[served]
            want = (int(served.sum()), int(billed[pc].sum()), int(billed[~pc].sum()))
            assert lambda_billed_sums(served, work, timeout_ms, init if with_init else None, cold, on_pc) == want
    bad = np.array([1.0, -1.0])
    with pytest.raises(ValueError, match="finite and >= 0"):
        lambda_billed_ms(bad)
    with pytest.raises(ValueError, match="finite and >= 0"):
        lambda_billed_sums(np.ones(2, bool), bad, 100.0, None, np.zeros(2, bool), np.zeros(2, bool))
    assert lambda_billed_sums(np.array([True, False]), np.array([1.5, np.nan]), 100.0, None, np.zeros(2, bool),
                              np.zeros(2, bool)) == (1, 0, 2)


def test_fast_is_refused_where_it_does_not_model_the_platform(monkeypatch):
    import sim.engine_fast as engine_fast
    from sim.run import resolve_engine

    cfg = lam()
    assert resolve_engine("auto", cfg) == "fast" and resolve_engine("fast", cfg) == "fast"
    monkeypatch.setattr(engine_fast, "unsupported", lambda c: "a feature the fast engine lacks")
    assert resolve_engine("auto", cfg) == "simpy"
    with pytest.raises(ServesimError, match="engine fast does not support a feature the fast engine lacks.*engine: simpy"):
        simulate_one(cfg, Poisson(1.0, 10.0), pricing=PRICING, engine="fast")


# --- the idle effect -------------------------------------------------------------------------

@pytest.mark.parametrize("reuse", ["mru", "newest", "random"])
def test_idle_effect_with_ties_identical_to_simpy(reuse):
    """Constant durations on a grid: idle times of exactly 0 (an environment reused at the
    instant it finishes) and completions at arrival instants."""
    times = np.repeat(np.arange(0.0, 30.0, 0.25), 2)
    cfg = with_idle(lam(warm={"dist": "constant", "value": 250.0}, cold={"dist": "constant", "value": 250.0},
                        keep_alive_s=1.0, reuse=reuse, concurrency_limit=5, provisioned_concurrency=1),
                    IdleEffect(hot_ratio=0.5, tau_ms=10.0))
    pair = both(cfg, TimestampList(times.tolist(), duration_s=40.0), chunk_size=5)
    assert_identical(pair)
    assert scaled_by_the_idle_effect(cfg, pair[1][1], 1) > 0


def test_auto_picks_the_fast_engine_for_an_idle_effect():
    from sim.run import resolve_engine

    for cfg in (lam(), ec2()):
        assert resolve_engine("auto", with_idle(cfg, IdleEffect(hot_ratio=0.6, tau_ms=12.0))) == "fast"


def test_state_stays_flat_however_many_requests():
    """Memory follows the chunk size and the live environments, never the number of requests:
    the compiled state after 1 M and after 2 M requests is the same size, and small."""
    import sim.engine_fast.lambda_ as fl
    from sim.metrics import Collector
    from sim.streams import ARRIVALS, child_seed

    cfg = lam(warm={"dist": "expon", "mean": 50.0}, keep_alive_s=2.0)
    sizes = []
    original = fl.FastLambda.finish

    def finish(self, end_s):
        sizes.append((self.EI.shape[0], self.ring[0].size, self.heap[0].size))
        return original(self, end_s)

    fl.FastLambda.finish = finish
    try:
        for duration_s in (5000.0, 10000.0):
            src = Poisson(200.0, duration_s)
            fl.run_lambda(cfg, src.chunks(child_seed(1, ARRIVALS), 65536), seed=1, warmup_s=0.0,
                          horizon_s=src.duration_s, collector=Collector(0.0, 60.0, None))
    finally:
        fl.FastLambda.finish = original
    assert sizes[0] == sizes[1], sizes
    slots, completions, timers = sizes[0]
    assert slots <= 2048 and completions <= 2048 and timers <= 4 * 65536


def test_warm_up_reports_the_compile_time():
    from sim.engine_fast import warm_up

    seconds = warm_up()
    assert seconds > 0 and warm_up() < 30.0  # the second call finds everything compiled


def test_wide_service_times_that_reorder_many_completions_identical_to_simpy():
    """Completions far out of scheduling order (a wide lognormal, timeouts): the ring lets the
    latest go to the heap (`common.ring_push`), and the order stays SimPy's."""
    wide = {"dist": "lognorm", "s": 1.5, "scale": 50.0}
    for timeout_s in (900.0, 0.4):
        cfg = lam(warm=wide, cold=INIT, keep_alive_s=1.0, timeout_s=timeout_s)
        assert_identical(both(cfg, Poisson(300.0, 20.0), seed=11, chunk_size=1000))


def test_ring_pops_in_time_then_id_order_however_far_events_move():
    """`ring_push` against a sorted list: short and long events, ties, many later events."""
    from sim.engine_fast.common import RING_SHIFTS, heap_pop, new_heap, new_ring, ring_push

    rng = np.random.default_rng(2)
    rt, re, rc = new_ring(8192)  # room for every event pushed
    ht, he, hc = new_heap(8192)
    head = n = hn = 0
    pending, popped, want = [], [], []
    moved = False
    for eid in range(5000):
        if rng.random() < 0.5 and n + hn > 0:  # pop the earlier of the ring's head and the heap's top
            if n and (hn == 0 or (rt[head], re[head]) < (ht[0], he[0])):
                popped.append((rt[head], re[head]))
                assert rc[head] == re[head]  # an event's code moves with it
                head, n = (head + 1) % rt.size, n - 1
            else:
                popped.append((ht[0], he[0]))
                assert hc[0] == he[0]
                heap_pop(ht, he, hc, hn)
                hn -= 1
            pending.sort()
            want.append(pending.pop(0))
        now = popped[-1][0] if popped else 0.0
        t = now + float(np.round(rng.choice([1.0, 50.0], p=[0.9, 0.1]) * rng.random(), 1))
        n, hn = ring_push(rt, re, rc, head, n, t, eid, eid, ht, he, hc, hn)
        pending.append((t, eid))
        moved |= hn > 0
    assert popped == want and moved and RING_SHIFTS < 64


def test_cold_windows_are_the_request_streams_draws():
    """`_Streams` draws a chunk's COLD uniforms only in the windows asked for, skipping the rest
    of the stream: they are those of `RequestStreams`, chunk after chunk."""
    from sim.engine_fast.lambda_ import _Streams
    from sim.streams import RequestStreams

    ref, lazy = RequestStreams(9), _Streams(9, keep=True, routing=True)
    for n, windows in [(100, [(3, 10), (10, 50), (70, 100)]), (7, []), (65536, [(0, 256), (60000, 65536)]), (5, [(4, 5)])]:
        want, got = ref.next(n), lazy.next(n)
        for a, b in windows:
            assert np.array_equal(got.cold(a, b), want.cold[a:b])
        for name in ("warm", "keepalive", "routing"):
            assert np.array_equal(getattr(got, name), getattr(want, name))

"""Contention on a shared host (`HostShare.work_contention`): an invocation slowed by 1 + c (n - 1)
with n jobs in progress, whatever cores are free. Event times and bills by hand, the work and the
cores conserved under hypothesis, and the fit that finds c in bursts (`calibrate.fit`)."""
from __future__ import annotations

import json
import math
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from calibrate.fit import fit_host_share, fit_stretch, stretch_model
from sim.config import HostShare
from sim.profile import parse_host_share
from sim.streams import ARRIVALS, WARM, child_seed
from traces.files import TimestampList
from traces.poisson import Poisson

from simhelp import ec2, lam, run
from test_host_share import LOGNORM, check_conserved, drawn, host_log, run_model

GB_S_X86 = 0.0000166667
C = 0.25


def job(ms, c=C, cap=1.0):
    return ((ms, cap, None, c),)


# --- the host alone ----------------------------------------------------------------------------

def test_two_jobs_together_each_stretch_by_one_plus_c_on_a_big_host():
    # 8 cores, caps 1: the cores bind nothing; each of the two runs at 1 / 1.25: 10 ms -> 12.5 ms.
    out, host = host_log(8.0, [(0.0, job(10.0)), (0.0, job(10.0))])
    for i in (0, 1):
        assert out[i][0] == pytest.approx(0.0125, rel=1e-12) and out[i][1] == pytest.approx([12.5], rel=1e-12)
    assert host.allocated_core_s == pytest.approx(host.demand_core_s, rel=1e-12)
    assert host.demand_core_s == pytest.approx(0.020, rel=1e-12)


def test_staggered_jobs_by_hand():
    # a (10 ms) at 0 alone until b (10 ms) at 4 ms: 6 ms left, both at 0.8 from there: a ends at
    # 4 + 6 / 0.8 = 11.5 ms; b has done 6 ms by then, 4 ms left alone: ends at 15.5 ms. Both 11.5 ms.
    out, host = host_log(8.0, [(0.0, job(10.0)), (0.004, job(10.0))])
    assert out[0][0] == pytest.approx(0.0115, rel=1e-12) and out[0][1] == pytest.approx([11.5], rel=1e-12)
    assert out[1][0] == pytest.approx(0.0155, rel=1e-12) and out[1][1] == pytest.approx([11.5], rel=1e-12)
    assert host.allocated_core_s == pytest.approx(host.demand_core_s, rel=1e-12)


def test_a_job_without_contention_keeps_full_speed_beside_one_with_it():
    # An INIT-like job (c = 0) and an invocation (c = 0.25), 10 ms each, on 8 cores: the INIT runs
    # at rate 1 (ends at 10 ms, exactly); the invocation at 0.8 until then (8 ms done), then alone.
    out, _ = host_log(8.0, [(0.0, job(10.0, c=0.0)), (0.0, job(10.0))])
    assert out[0] == (0.01, [10.0], False)
    assert out[1][0] == pytest.approx(0.012, rel=1e-12) and out[1][1] == pytest.approx([12.0], rel=1e-12)


@pytest.mark.parametrize("cores, n, expect_ms", [
    (1.0, 2, 20.0),    # caps 1 / 1.25 = 0.8 each, 1.6 > 1 core: a share of 0.5 each, rate 0.5
    (1.6, 2, 12.5),    # 0.8 each fits in 1.6 cores: the contention alone, rate 0.8
    (1.6, 3, 18.75),   # caps 1 / 1.5 = 0.667 each, 2 > 1.6: 0.5333 each, rate 0.5333
    (3.0, 3, 15.0),    # 0.667 each fits: rate 1 / 1.5
])
def test_the_cores_and_the_contention_the_tighter_binds(cores, n, expect_ms):
    out, host = host_log(cores, [(0.0, job(10.0))] * n)
    for i in range(n):
        assert out[i][1] == pytest.approx([expect_ms], rel=1e-12)
    assert host.allocated_core_s == pytest.approx(host.demand_core_s, rel=1e-12)


def test_zero_contention_is_the_plain_cap_bit_for_bit():
    jobs3 = [(0.0, ((100.0, 1.0, None),)), (0.03, ((70.0, 0.5, 90.0),)), (0.05, ((40.0, 1.0, None),))]
    jobs4 = [(t, tuple(ph + (0.0,) for ph in phases)) for t, phases in jobs3]
    assert host_log(1.2, jobs3)[0] == host_log(1.2, jobs4)[0]


# --- the platforms -----------------------------------------------------------------------------

def contended(cfg, cores, c, work_cores=1.0):
    return replace(cfg, host=HostShare(cores=cores, work_cores=work_cores, work_contention=c))


def test_lambda_warm_invocations_together_stretch_and_are_billed_so():
    # Two cold starts at 0 (INIT 150 ms, c = 0 for INITs; invocations 100 ms at 0.8 while both run:
    # 125 ms), both environments warm after 0.275 s; at 1.0 two warm invocations at once: 125 ms
    # each; at 2.0 one alone: 100 ms. Billed ceil of each, at 1 GB.
    cfg = contended(lam(warm={"dist": "constant", "value": 100.0}, cold={"dist": "constant", "value": 150.0},
                        memory_mb=1024), 8.0, C)
    res, df = run(cfg, TimestampList([0.0, 0.0, 1.0, 1.0, 2.0], duration_s=10.0), records=True, engine="simpy")
    assert df.cold.tolist() == [True, True, False, False, False]
    assert df.init_ms[:2].tolist() == pytest.approx([150.0, 150.0], rel=1e-12)
    assert df.work_ms.tolist() == pytest.approx([125.0, 125.0, 125.0, 125.0, 100.0], rel=1e-12)
    assert df.latency_ms.tolist() == pytest.approx([275.0, 275.0, 125.0, 125.0, 100.0], rel=1e-12)
    assert df.done_s.tolist() == pytest.approx([0.275, 0.275, 1.125, 1.125, 2.1], rel=1e-12)
    billed_ms = 2 * 275 + 2 * 125 + 100
    assert res.summary["cost_usd"]["compute"] == pytest.approx(billed_ms / 1000 * GB_S_X86, rel=1e-12)


def test_ec2_busy_workers_slow_each_other_by_the_contention():
    # 2 workers, 4 cores: a at 0 and b at 0.05, 100 ms each; together from 0.05 at rate 0.8: a (50
    # ms left) ends at 0.05 + 0.0625 = 0.1125; b has done 50 ms by then, the rest alone: 0.1625.
    cfg = contended(ec2(service={"dist": "constant", "value": 100.0}, instances=1, workers_per_instance=2), 4.0, C)
    _, df = run(cfg, TimestampList([0.0, 0.05], duration_s=10.0), records=True, engine="simpy")
    assert df.latency_ms.tolist() == pytest.approx([112.5, 112.5], rel=1e-12)
    assert df.done_s.tolist() == pytest.approx([0.1125, 0.1625], rel=1e-12)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rate=st.floats(5.0, 80.0), warm=LOGNORM, cold=LOGNORM, limit=st.integers(1, 12), cores=st.floats(0.2, 4.0),
       work_cores=st.floats(0.3, 2.0), c=st.floats(0.0, 1.0), seed=st.integers(0, 99))
def test_lambda_under_contention_loses_no_work_and_never_runs_faster_than_drawn(rate, warm, cold, limit, cores,
                                                                                  work_cores, c, seed):
    cfg = contended(lam(warm=warm, cold=cold, keep_alive_s=1.0, concurrency_limit=limit), cores, c, work_cores)
    arrivals = Poisson(rate, 3.0)
    model, df = run_model(cfg, arrivals, seed)
    assert len(df) == sum(ch.size for ch in arrivals.chunks(child_seed(seed, ARRIVALS)))
    served = (df.status == "ok").to_numpy()
    w0 = drawn(warm, seed, WARM, len(df))
    work = df.work_ms.to_numpy()
    assert np.all(work[served] >= w0[served] * (1 - 1e-12))
    demand = check_conserved([model.host])
    assert demand >= (w0[served] * work_cores).sum() / 1000 * (1 - 1e-9)


# --- the fit -------------------------------------------------------------------------------------

def bursts(law, base_ms=2.0, sizes=(1, 2, 4, 8), sigma=0.03, seed=3):
    """Durations of bursts of k requests (k durations each, 10 bursts), `law(k)` times `base_ms`."""
    rng = np.random.default_rng(seed)
    return {k: base_ms * law(k) * np.exp(rng.normal(0.0, sigma, 10 * k)) for k in sizes}


def test_fit_finds_the_contention_of_a_stretch_linear_from_two():
    fit = fit_stretch(bursts(lambda k: 1 + C * (k - 1)), contention=True)
    assert fit.c == pytest.approx(C, abs=0.02)
    assert fit.base_ms == pytest.approx(2.0, rel=0.03)
    # the knee binds at most by the noise (3 % per duration) at the largest k
    bound = max(k / (1 + fit.c * (k - 1)) for k in (1, 2, 4, 8))
    assert bound * 0.97 <= fit.m <= bound
    for pt in fit.points:
        assert pt["fitted"] == pytest.approx(1 + fit.c * (pt["k"] - 1), rel=0.03)
        assert pt["stretch"] == pytest.approx(pt["fitted"], rel=0.05)


def test_without_noise_the_knee_binds_nowhere_and_m_is_its_lower_bound():
    fit = fit_stretch(bursts(lambda k: 1 + C * (k - 1), sigma=0.0), contention=True)
    assert fit.c == pytest.approx(C, rel=1e-6) and fit.base_ms == pytest.approx(2.0, rel=1e-6)
    assert fit.m == pytest.approx(8 / (1 + 7 * fit.c), rel=1e-9)  # max over k of k / (1 + c (k - 1)): k = 8
    assert "lower bound" in fit.note and fit.meta()["note"] == fit.note


def test_fit_keeps_the_plain_knee_when_the_data_show_one():
    data = bursts(lambda k: max(1.0, k / 3.0))
    plain, with_c = fit_stretch(data), fit_stretch(data, contention=True)
    assert with_c.c == 0.0 and with_c.m == plain.m and with_c.note is None
    assert with_c.m == pytest.approx(3.0, rel=0.05)


def test_fit_host_share_gives_work_contention_and_the_profile_reads_it_back():
    init = bursts(lambda k: max(1.0, k / 2.9), base_ms=150.0, seed=5)
    work = bursts(lambda k: max(k * 0.9 / 2.9, 1 + 0.22 * (k - 1)), seed=6)
    fit = fit_host_share(init, work)
    assert fit.cores == pytest.approx(2.9, rel=0.05)
    assert fit.work_contention == pytest.approx(0.22, abs=0.03)
    entry = json.loads(json.dumps(fit.entry()))
    assert entry["work_contention"] == pytest.approx(fit.work_contention, rel=1e-5)
    assert entry["fit"]["work"]["contention"] == entry["work_contention"]
    share, _ = parse_host_share(entry, "p.json", "lambda[0].host_share")
    assert share.work_contention == entry["work_contention"] and share.cores == entry["cores"]
    # the fitted law reproduces the bursts' medians within their noise
    for pt in entry["fit"]["work"]["points"]:
        assert pt["stretch"] == pytest.approx(pt["fitted"], rel=0.06)
    assert stretch_model(8, fit.work.m, fit.work.c) == pytest.approx(max(8 * 0.9 / 2.9, 1 + 0.22 * 7), rel=0.06)


def test_a_fit_without_contention_writes_no_key():
    init = bursts(lambda k: max(1.0, k / 2.9), base_ms=150.0, seed=5)
    work = bursts(lambda k: max(1.0, k * 0.9 / 2.9), seed=6)
    entry = fit_host_share(init, work).entry()
    assert "work_contention" not in entry and "contention" not in entry["fit"]["work"]
    assert parse_host_share(entry, "p.json", "k")[0].work_contention == 0.0
    assert math.isclose(HostShare(2.0).work_contention, 0.0)

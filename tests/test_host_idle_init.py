"""Cold host (`HostShare.init_idle_s`, `init_idle_factor`) in the SimPy Lambda model: the rule
by hand (the host starts warm; which INITs find it cold; the page-in, (factor - 1) times the
opener's drawn INIT, is a wait without cores that the INITs starting before its end share), its
combination with processor sharing, the rule replayed over random runs, runs without it
unchanged, the host's per-phase hook, and the validation of the config, the profile and the
scenario keys."""
from __future__ import annotations

import copy
import math
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import simpy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scenarios.loader import scenario_from_dict
from sim.config import HostShare
from sim.errors import ConfigError, ServesimError
from sim.platforms.host import Host
from sim.profile import load_profile, parse_host_share
from sim.run import resolve_engine
from sim.streams import COLD, WARM
from traces.files import TimestampList
from traces.poisson import Poisson

from simhelp import lam, run
from test_host_share import GB_S_X86, LOGNORM, WARM_100, check_conserved, drawn, records, run_model
from test_profile import GOOD as PROFILE
from test_profile import write as write_profile

INIT_100 = {"dist": "constant", "value": 100.0}


def cold_host(cfg, idle_s, factor, cores=8.0, init_cores=1.0, work_cores=1.0):
    return replace(cfg, host=HostShare(cores, init_cores, work_cores, init_idle_s=idle_s, init_idle_factor=factor))


def cold_starts(arrivals, idle_s=10.0, factor=1.5, cold=INIT_100, keep_alive_s=1.0, **host):
    """Run constant INITs (100 ms) and invocations (100 ms) at 1 GB on a cold-tracking host (8
    cores: no sharing unless `host` says otherwise); an environment is reclaimed 1 s after it idles."""
    cfg = cold_host(lam(warm=WARM_100, cold=cold, memory_mb=1024, keep_alive_s=keep_alive_s), idle_s, factor, **host)
    return run(cfg, TimestampList(arrivals, duration_s=max(arrivals) + 10.0), records=True, engine="simpy")


# --- the rule by hand ----------------------------------------------------------------------------

@pytest.mark.parametrize("t, init_ms", [(0.0, 100.0), (9.5, 100.0), (12.0, 150.0)])
def test_the_host_starts_warm_and_a_lone_init_after_init_idle_s_takes_the_factor(t, init_ms):
    # The idle time counts from the run's start: at 0 and 9.5 s (< 10 s) the INIT is its 100 ms; at
    # 12 s the host is cold: a page-in of 0.5 x 100 = 50 ms, then the INIT's 100 ms (Init Duration
    # 150 ms), then 100 ms: latency 250, billed 250 ms.
    res, df = cold_starts([t])
    assert df.cold.tolist() == [True]
    assert df.init_ms.tolist() == [init_ms] and df.work_ms.tolist() == [100.0]
    assert df.latency_ms.tolist() == [init_ms + 100.0] and df.done_s.tolist() == [t + (init_ms + 100.0) / 1000.0]
    assert res.summary["cost_usd"]["compute"] == pytest.approx((init_ms + 100.0) / 1000.0 * GB_S_X86, rel=1e-12)


def test_inits_starting_during_the_page_in_wait_for_its_end_then_run():
    # a at 20 s opens a page-in of 0.5 x its drawn 100 ms: to 20.05; a's INIT runs 20.05-20.15. b at
    # 20.02 (a busy: cold) waits the rest, 30 ms, then its 100 ms: Init Duration 130 ms. c at 20.06
    # (a, b busy: cold) starts after the page-in, though INITs still run: the files are back, c's
    # INIT is its 100 ms. 8 cores: no sharing.
    res, df = cold_starts([20.0, 20.02, 20.06])
    assert df.cold.tolist() == [True, True, True]
    assert df.init_ms.tolist() == pytest.approx([150.0, 130.0, 100.0], rel=1e-12)
    assert df.latency_ms.tolist() == pytest.approx([250.0, 230.0, 200.0], rel=1e-12)
    assert df.done_s.tolist() == pytest.approx([20.25, 20.25, 20.26], rel=1e-12)
    assert res.summary["cold_starts"] == 3


@pytest.mark.parametrize("t_b, init_ms", [(5.0, 100.0), (30.0, 150.0)])
def test_a_later_init_takes_the_factor_only_after_init_idle_s_without_one(t_b, init_ms):
    # a (warm host) INIT ends at 0.10, its environment is reclaimed at 1.2, so b is cold. 4.9 s after
    # the last INIT (< 10 s) the host is warm; 29.9 s after it (>= 10 s) it is cold.
    _, df = cold_starts([0.0, t_b])
    assert df.cold.tolist() == [True, True]
    assert df.init_ms.tolist() == [100.0, init_ms]
    assert df.latency_ms.tolist() == [200.0, init_ms + 100.0]


@pytest.mark.parametrize("t_b, init_ms", [(10.125, 250.0), (10.125 - 2**-7, 125.0)])
def test_init_idle_s_is_at_least(t_b, init_ms):
    # INIT 125 ms (warm host): a's INIT ends at exactly 0.125 s; b exactly 10 s later finds the host
    # cold (a page-in of 125 ms, then 125: 250 ms), b 1/128 s sooner does not (binary fractions: no
    # rounding in these times).
    _, df = cold_starts([0.0, t_b], factor=2.0, cold={"dist": "constant", "value": 125.0})
    assert df.init_ms.tolist() == [125.0, init_ms]


@pytest.mark.parametrize("idle_s, init_ms", [(0.04, 150.0), (0.06, 100.0)])
def test_the_idle_time_runs_from_the_end_of_the_init_phase_not_of_the_invocation(idle_s, init_ms):
    # a (0.01 s after the run's start, under either init_idle_s: warm) INIT to 0.11, invocation
    # to 0.21. b at 0.16 (a busy: cold): no INIT in progress, the last ended 0.05 s before: cold when
    # init_idle_s = 0.04, not when 0.06. (Counted from a's job end, the host would still be busy
    # with an INIT at 0.16 and never cold.)
    _, df = cold_starts([0.01, 0.16], idle_s=idle_s)
    assert df.cold.tolist() == [True, True]
    assert df.init_ms.tolist() == [100.0, init_ms]


# --- with processor sharing ----------------------------------------------------------------------

def test_two_simultaneous_cold_inits_wait_for_the_page_in_then_share_one_core():
    # One core, INIT and invocation one core each. a and b at 20 s: a opens a page-in of 50 ms, b
    # waits for it too (no cores used meanwhile); from 20.05 both INITs (100 ms alone) at rate 1/2
    # end at 20.25 (Init Duration 50 + 200 = 250 ms); the invocations (100 ms alone) at 1/2 end at
    # 20.45 (200 ms). Billed 2 x 450 ms.
    res, df = cold_starts([20.0, 20.0], cores=1.0)
    assert df.init_ms.tolist() == pytest.approx([250.0, 250.0], rel=1e-12)
    assert df.work_ms.tolist() == pytest.approx([200.0, 200.0], rel=1e-12)
    assert df.latency_ms.tolist() == pytest.approx([450.0, 450.0], rel=1e-12)
    assert df.done_s.tolist() == pytest.approx([20.45, 20.45], rel=1e-12)
    assert res.summary["cost_usd"]["compute"] == pytest.approx(0.900 * GB_S_X86, rel=1e-12)


def test_staggered_cold_inits_share_one_core_after_the_page_in():
    # One core, factor 1.5: a at 20 s opens a page-in of 50 ms; b at 20.1, after it, does not wait.
    # INITs and invocations 100 ms alone. Times after 20 s:
    #   0.05-0.10 a INIT alone (50 ms done)       0.10-0.20 a INIT, b INIT at 1/2: a's INIT ends (150 ms)
    #   0.20-0.30 a invocation, b INIT at 1/2: b's INIT ends (200 ms); a has 50 ms of invocation left
    #   0.30-0.40 both invocations at 1/2: a ends (200 ms); b has 50 ms left, alone: ends at 0.45 (150 ms).
    # Init Durations: a 50 + 150 = 200 ms, b 200 ms.
    res, df = cold_starts([20.0, 20.1], cores=1.0)
    assert df.init_ms.tolist() == pytest.approx([200.0, 200.0], rel=1e-12)
    assert df.work_ms.tolist() == pytest.approx([200.0, 150.0], rel=1e-12)
    assert df.latency_ms.tolist() == pytest.approx([400.0, 350.0], rel=1e-12)
    assert df.done_s.tolist() == pytest.approx([20.40, 20.45], rel=1e-12)
    assert res.summary["cost_usd"]["compute"] == pytest.approx(0.750 * GB_S_X86, rel=1e-12)


# --- the rule replayed over random runs ----------------------------------------------------------

def page_in_waits(start_s, end_s, drawn_ms, idle_s, factor) -> np.ndarray:
    """The page-in wait (ms) of each INIT (start and end times, drawn durations, in start order):
    one finding no INIT in progress and none ended within `idle_s` (the run's start counting as
    one: the host starts warm) opens a page-in of (factor - 1) times its drawn duration and waits
    all of it; one starting before the page-in's end waits the rest."""
    out = []
    until = -math.inf
    for i, t in enumerate(start_s):
        before = end_s[:i]
        if not any(e > t for e in before) and t - max((e for e in before), default=0.0) >= idle_s:
            until = t + (factor - 1.0) * drawn_ms[i] / 1000.0
            out.append((factor - 1.0) * drawn_ms[i])
        else:
            out.append((until - t) * 1000.0 if t < until else 0.0)
    return np.array(out)


def init_intervals(df):
    cold = df.cold.to_numpy() & (df.status == "ok").to_numpy()
    start = df.arrival_s.to_numpy()[cold]
    return cold, start, start + df.init_ms.to_numpy()[cold] / 1000.0


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rate=st.floats(1.0, 30.0), warm=LOGNORM, cold=LOGNORM, keep=st.floats(0.05, 2.0), idle_s=st.floats(0.05, 1.0),
       factor=st.floats(1.0, 3.0), seed=st.integers(0, 99))
def test_on_a_host_that_never_shares_each_init_is_its_draw_plus_the_wait_the_rule_says(
        rate, warm, cold, keep, idle_s, factor, seed):
    cfg = cold_host(lam(warm=warm, cold=cold, keep_alive_s=keep, concurrency_limit=20), idle_s, factor, cores=20.0)
    _, df = run(cfg, Poisson(rate, 4.0), seed=seed, records=True, engine="simpy")
    cold_, start, end = init_intervals(df)
    c0 = drawn(cold, seed, COLD, len(df))[cold_]
    np.testing.assert_allclose(df.init_ms.to_numpy()[cold_], c0 + page_in_waits(start, end, c0, idle_s, factor),
                               rtol=1e-9)
    ok = df[df.status == "ok"]
    np.testing.assert_allclose(ok.latency_ms, ok.work_ms + ok.init_ms.where(ok.cold, 0.0), rtol=1e-12)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rate=st.floats(5.0, 40.0), warm=LOGNORM, cold=LOGNORM, keep=st.floats(0.05, 2.0), idle_s=st.floats(0.02, 0.5),
       factor=st.floats(1.0, 3.0), cores=st.floats(0.5, 3.0), seed=st.integers(0, 99))
def test_on_a_contended_host_the_page_in_uses_no_cores_and_each_init_waits_at_least_it(
        rate, warm, cold, keep, idle_s, factor, cores, seed):
    # The host's work done (core-seconds, conserved against what it allocated) is the drawn work
    # alone: the page-in waits use none. Each INIT took at least its draw plus its wait (sharing
    # only stretches), the rule needing only when INITs started and ended (stretched here).
    cfg = cold_host(lam(warm=warm, cold=cold, keep_alive_s=keep, concurrency_limit=8), idle_s, factor, cores=cores)
    model, df = run_model(cfg, Poisson(rate, 3.0), seed)
    cold_, start, end = init_intervals(df)
    served = (df.status == "ok").to_numpy()
    assert set(df.status[~served]) <= {"throttled"}
    c0 = drawn(cold, seed, COLD, len(df))[cold_]
    w0 = drawn(warm, seed, WARM, len(df))[served]
    assert check_conserved([model.host]) == pytest.approx((w0.sum() + c0.sum()) / 1000, rel=1e-9)
    assert np.all(df.init_ms.to_numpy()[cold_] >= (c0 + page_in_waits(start, end, c0, idle_s, factor)) * (1 - 1e-9))


# --- without a cold host: unchanged --------------------------------------------------------------

@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rate=st.floats(5.0, 40.0), warm=LOGNORM, cold=LOGNORM, keep=st.floats(0.05, 2.0), idle_s=st.floats(0.02, 0.5),
       cores=st.floats(0.5, 3.0), seed=st.integers(0, 99))
def test_no_cold_host_and_a_factor_of_one_are_the_run_without_the_fields(rate, warm, cold, keep, idle_s, cores, seed):
    cfg = lam(warm=warm, cold=cold, keep_alive_s=keep, concurrency_limit=8)
    arrivals = Poisson(rate, 3.0)
    a, da = records(replace(cfg, host=HostShare(cores)), arrivals, seed)
    for host in (HostShare(cores, init_idle_s=None, init_idle_factor=1.0),
                 HostShare(cores, init_idle_s=idle_s, init_idle_factor=1.0)):
        b, db = records(replace(cfg, host=host), arrivals, seed)
        pd.testing.assert_frame_equal(da, db, check_exact=True)
        assert a["cost_usd"] == b["cost_usd"] and a["cold_starts"] == b["cold_starts"]


def test_the_fast_engine_still_refuses_a_cold_host():
    cfg = cold_host(lam(warm=100.0, cold=150.0), 30.0, 1.3)
    assert resolve_engine("auto", cfg) == "simpy"
    with pytest.raises(ServesimError, match=r"host CPU sharing \(host:\)"):
        resolve_engine("fast", cfg)


# --- the host's per-phase hook -------------------------------------------------------------------

def test_the_host_calls_on_phase_as_each_phase_ends_before_on_done():
    # One core: a (two phases of 100 ms, with the hook) and b (one of 100 ms, without) from 0, at
    # rate 1/2: a's first phase and b end at 0.2; a's second phase alone ends at 0.3.
    env = simpy.Environment()
    host = Host(env, 1.0)
    log = []
    host.submit(((100.0, 1.0, None), (100.0, 1.0, None)), lambda job: log.append(("done", job.tag, env.now)), "a",
                on_phase=lambda job, k: log.append(("phase", job.tag, k, env.now)))
    host.submit(((100.0, 1.0, None),), lambda job: log.append(("done", job.tag, env.now)), "b")
    env.run()
    assert log == [("phase", "a", 0, pytest.approx(0.2)), ("done", "b", pytest.approx(0.2)),
                   ("phase", "a", 1, pytest.approx(0.3)), ("done", "a", pytest.approx(0.3))]


# --- validation ----------------------------------------------------------------------------------

@pytest.mark.parametrize("kw, expected", [
    ({"init_idle_s": 0.0, "init_idle_factor": 1.3}, "init_idle_s must be None or > 0 and finite"),
    ({"init_idle_s": -30.0, "init_idle_factor": 1.3}, "init_idle_s must be None or > 0 and finite"),
    ({"init_idle_s": math.inf, "init_idle_factor": 1.3}, "init_idle_s must be None or > 0 and finite"),
    ({"init_idle_s": math.nan, "init_idle_factor": 1.3}, "init_idle_s must be None or > 0 and finite"),
    ({"init_idle_s": 30.0, "init_idle_factor": 0.0}, "init_idle_factor must be >= 1 and finite"),
    ({"init_idle_s": 30.0, "init_idle_factor": 0.9}, "init_idle_factor must be >= 1 and finite"),
    ({"init_idle_s": 30.0, "init_idle_factor": math.inf}, "init_idle_factor must be >= 1 and finite"),
    ({"init_idle_s": 30.0, "init_idle_factor": math.nan}, "init_idle_factor must be >= 1 and finite"),
    ({"init_idle_factor": 1.3}, "init_idle_factor must be 1.0 when init_idle_s is None"),
])
def test_host_share_refuses_bad_cold_host_values(kw, expected):
    with pytest.raises(ValueError, match=expected):
        HostShare(2.0, **kw)


def test_profile_host_share_reads_both_keys(tmp_path):
    good = copy.deepcopy(PROFILE)
    good["lambda"][0]["host_share"] = {"cores": 1.7, "init_idle_s": 30, "init_idle_factor": 1.3}
    prof = load_profile(write_profile(tmp_path, good))
    assert prof.lambdas[0].host == HostShare(1.7, 1.0, 1.0, init_idle_s=30.0, init_idle_factor=1.3)
    assert parse_host_share({"cores": 2}, "p.json", "host")[0] == HostShare(2.0)


def scenario(tmp_path, platform, profile=None):
    data = {"name": "cold", "trace": {"kind": "poisson", "rate_rps": 5, "duration": "1m"}, "platforms": [platform]}
    if profile is not None:
        write_profile(tmp_path, profile)
        data["profile"] = "prof.json"
    return scenario_from_dict(data, source="scn.yaml", base_dir=tmp_path)


COLD_HOST = {"cores": 2, "init_idle_s": 30, "init_idle_factor": 1.3}


def test_scenario_lambda_host_takes_the_cold_host_keys(tmp_path):
    fn = {"name": "fn", "kind": "lambda", "service": {"warm_ms": 2, "cold_init_ms": 9}, "host": COLD_HOST}
    assert scenario(tmp_path, fn).platforms[0].host == HostShare(2.0, init_idle_s=30.0, init_idle_factor=1.3)
    with pytest.raises(ConfigError) as e:
        scenario(tmp_path, {**fn, "host": {"cores": 2, "init_idle_s": 30}})
    assert "scn.yaml" in str(e.value) and "platforms[0].host.init_idle_factor" in str(e.value)


def test_scenario_ec2_host_refuses_a_cold_host_inline_or_from_the_profile(tmp_path):
    srv = {"name": "srv", "kind": "ec2", "instance_type": "c6i.large", "workers_per_instance": 2,
           "service": {"service_ms": 3}, "host": COLD_HOST}
    with pytest.raises(ConfigError) as e:
        scenario(tmp_path, srv)
    assert "platforms[0].host" in str(e.value) and "EC2 runs no Lambda INIT on its host" in str(e.value)
    assert "an inline host has init_idle_s 30" in str(e.value)
    prof = copy.deepcopy(PROFILE)
    prof["server"][0]["host_share"] = COLD_HOST
    with pytest.raises(ConfigError) as e:
        scenario(tmp_path, {**{k: v for k, v in srv.items() if k != "service"}, "host": "profile"}, prof)
    assert "EC2 runs no Lambda INIT" in str(e.value) and "the profile's host_share for" in str(e.value)
    ok = scenario(tmp_path, {**srv, "host": {"cores": 2}}).platforms[0]
    assert ok.host == HostShare(2.0)

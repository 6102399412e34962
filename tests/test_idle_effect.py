"""The idle effect (`sim.config.IdleEffect`): service times that depend on how long the unit was
idle before a request. Exact event logs and bills by hand in the SimPy engine, its neutral case,
the fit that measures it, and how profiles and scenarios carry it."""
from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from calibrate.campaign import WARM_GAP_MIN_S, warm_pauses
from calibrate.fit import fit_idle_effect
from calibrate.profiles import profile_from_table
from sim.config import IdleEffect
from sim.errors import ConfigError
from sim.profile import profile_from_dict
from scenarios.loader import scenario_from_dict
from traces.files import TimestampList
from traces.poisson import Poisson

from simhelp import ec2, lam, run, with_idle

GB_S_X86 = 0.0000166667
IDLE = IdleEffect(hot_ratio=0.5, tau_ms=20.0)


def factor(idle_s: float) -> float:
    return 1.0 - 0.5 * math.exp(-idle_s / 0.020)


def idle_on(cfg):
    return with_idle(cfg, IDLE)


def test_idle_effect_factor_and_checks():
    assert IDLE.factor(0.0) == pytest.approx(0.5)
    assert IDLE.factor(math.inf) == 1.0
    assert IDLE.factor(0.020) == pytest.approx(1 - 0.5 / math.e)
    with pytest.raises(ValueError):
        IdleEffect(hot_ratio=0.0, tau_ms=10)
    with pytest.raises(ValueError):
        IdleEffect(hot_ratio=0.5, tau_ms=0)


def test_lambda_warm_invocations_scale_with_the_environments_idle_time_by_hand():
    # warm 10 ms, INIT 100 ms. t=0 cold (rested: 110 ms, done 0.110); t=0.13 reuses it after
    # 20 ms idle (8.16 ms, done 0.13816); t=0.135 finds it busy -> a second cold start (rested,
    # done 0.245); t=0.5 reuses the most recently used one, the second.
    cfg = idle_on(lam(warm={"dist": "constant", "value": 10.0}, cold={"dist": "constant", "value": 100.0},
                        memory_mb=1024))
    res, df = run(cfg, TimestampList([0.0, 0.13, 0.135, 0.5], duration_s=10.0), records=True, engine="simpy")
    w1 = 10.0 * factor(0.13 - 0.110)
    done1 = 0.13 + w1 / 1000
    done2 = 0.135 + 0.110
    w3 = 10.0 * factor(0.5 - done2)
    assert df.cold.tolist() == [True, False, True, False]
    assert df.latency_ms.tolist() == pytest.approx([110.0, w1, 110.0, w3], rel=1e-12)
    assert df.work_ms.tolist() == pytest.approx([10.0, w1, 10.0, w3], rel=1e-12)
    assert 0.135 < done1 < done2
    # Billed: ceil(110) twice + ceil(w1) + ceil(w3), at 1 GB.
    billed_ms = 110 + 110 + math.ceil(w1) + math.ceil(w3)
    assert (math.ceil(w1), math.ceil(w3)) == (9, 10)
    assert res.summary["cost_usd"]["compute"] == pytest.approx(billed_ms / 1000 * GB_S_X86, rel=1e-12)


def test_ec2_service_scales_with_the_instances_idle_time_and_is_hot_while_a_worker_is_busy():
    # One instance, 2 workers, 10 ms service. t=0: rested (10 ms). t=0.005: the other worker, while
    # the first is busy: hot (5 ms). t=0.05: idle since 0.010 (the last completion).
    cfg = idle_on(ec2(instances=1, workers_per_instance=2, service={"dist": "constant", "value": 10.0},
                        load_balancer_billed=False))
    _, df = run(cfg, TimestampList([0.0, 0.005, 0.05], duration_s=60.0), records=True, engine="simpy")
    assert df.latency_ms.tolist() == pytest.approx([10.0, 5.0, 10.0 * factor(0.05 - 0.010)], rel=1e-12)
    # A queued request starts as the one before it ends: idle 0, hot.
    cfg1 = idle_on(ec2(instances=1, workers_per_instance=1, service={"dist": "constant", "value": 10.0},
                         load_balancer_billed=False))
    _, df = run(cfg1, TimestampList([0.0, 0.001], duration_s=60.0), records=True, engine="simpy")
    assert df.latency_ms.tolist() == pytest.approx([10.0, 9.0 + 5.0], rel=1e-12)


@pytest.mark.parametrize("make", [lambda: lam(warm={"dist": "lognorm", "s": 0.5, "scale": 20},
                                              cold={"dist": "constant", "value": 200}, keep_alive_s=5),
                                  lambda: ec2(instances=2, workers_per_instance=2,
                                              service={"dist": "lognorm", "s": 0.5, "scale": 20})])
def test_hot_ratio_one_changes_nothing(make):
    cfg = make()
    arrivals = Poisson(40, 600)
    a = run(cfg, arrivals, seed=3, engine="simpy").summary
    b = run(with_idle(cfg, IdleEffect(hot_ratio=1.0, tau_ms=15.0)), arrivals, seed=3, engine="simpy").summary
    assert a["latency_ms"] == b["latency_ms"]
    assert a["cost_usd"] == b["cost_usd"]


def test_shorter_idle_times_mean_shorter_latency_under_more_load():
    # With an idle effect, the mean service time falls as load rises (less idle time between
    # requests): at 200 req/s on one instance the mean sits well below rested; at 1 req/s near it.
    cfg = idle_on(ec2(instances=1, workers_per_instance=1, service={"dist": "constant", "value": 2.0},
                        load_balancer_billed=False))
    busy = run(cfg, Poisson(200, 300), seed=1, engine="simpy").summary
    calm = run(cfg, Poisson(1, 3000), seed=1, engine="simpy").summary
    assert calm["latency_ms"]["p50"] == pytest.approx(2.0, rel=0.02)
    assert busy["latency_ms"]["p50"] < 1.8


# --- the fit ---------------------------------------------------------------------------------

def synthetic(n=500, hot=0.64, tau_s=0.012, seed=1):
    idle = np.random.default_rng(seed + 1).permutation(np.geomspace(5e-4, 0.3, n))
    rested = np.random.default_rng(seed).lognormal(math.log(2.3), 0.15, n)
    return idle, rested * (1 - (1 - hot) * np.exp(-idle / tau_s)), rested


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_fit_recovers_the_effect_and_the_rested_samples(seed):
    idle, x, rested = synthetic(seed=seed)
    f = fit_idle_effect(idle, x)
    assert f.reason is None
    assert f.hot_ratio == pytest.approx(0.64, abs=0.03)
    assert f.tau_ms == pytest.approx(12.0, rel=0.3)
    # Rested samples: those within 10 % of rested, carried back; against the true rested values
    # of the same requests the median agrees within 2 % and the spread within 10 %.
    near = 1 - 0.36 * np.exp(-idle / 0.012) >= 0.9
    assert f.rested_ms.size == pytest.approx(near.sum(), rel=0.1)
    assert np.median(f.rested_ms) == pytest.approx(np.median(rested[near]), rel=0.02)
    assert np.std(np.log(f.rested_ms)) == pytest.approx(np.std(np.log(rested[near])), rel=0.1)


def test_fit_finds_no_effect_where_there_is_none_or_it_cannot_be_seen():
    idle, _, rested = synthetic()
    f = fit_idle_effect(idle, rested)
    assert f.hot_ratio is None and "no clear effect" in f.reason
    assert np.array_equal(f.rested_ms, rested)
    f = fit_idle_effect(np.full(500, 0.1), rested)
    assert "do not vary enough" in f.reason
    f = fit_idle_effect(idle[:10], rested[:10])
    assert "at least" in f.reason


def test_warm_pauses_half_spread_log_uniformly_half_rested_in_a_fixed_shuffled_order():
    p = warm_pauses(400, 0.2)
    assert np.array_equal(p, warm_pauses(400, 0.2))
    assert p.min() == pytest.approx(WARM_GAP_MIN_S) and p.max() == pytest.approx(0.2)
    assert np.allclose(np.sort(p), np.r_[np.geomspace(WARM_GAP_MIN_S, 0.2, 200), np.full(200, 0.2)])
    assert not np.all(np.diff(p) > 0)  # shuffled
    assert np.array_equal(warm_pauses(5, 0.0), np.zeros(5))


def table_rows(kind: str, n=400, hot=0.6, tau_s=0.012):
    """A measurement table's warm phase as the campaign writes it, durations from the model."""
    pauses = warm_pauses(n, 0.2)
    rested = np.random.default_rng(5).lognormal(math.log(2.3), 0.12, n)
    rows, t = [], 1.8e9
    prev_done = None
    for i, (pause, r) in enumerate(zip(pauses, rested)):
        t = (prev_done if prev_done is not None else t) + pause
        idle = t - prev_done if prev_done is not None else 1.0
        dur = r * (1 - (1 - hot) * math.exp(-idle / tau_s))
        client = dur + 0.3
        row = {"run_id": "r1", "target": "local-lambda" if kind == "lambda" else "local-server", "model": "m",
               "model_sha256": None, "config": "c", "phase": "warm", "level": None, "concurrency": 1, "seq": i,
               "send_s": t, "client_ms": client if kind == "lambda" else dur, "server_ms": dur if kind == "lambda" else None,
               "init_ms": None, "billed_ms": None, "max_memory_mb": None, "status": "ok", "error": None, "limit": None,
               "memory_mb": 1024 if kind == "lambda" else None, "architecture": "x86_64" if kind == "lambda" else None,
               "instance_type": None if kind == "lambda" else "c6i.large", "workers": None if kind == "lambda" else 2,
               "cpus": None}
        rows.append(row)
        prev_done = t + row["client_ms"] / 1000
    cold = [{**rows[0], "phase": "cold", "seq": i, "init_ms": 150.0 + i, "send_s": 1.7e9 + i} for i in range(25)]
    return pd.DataFrame(cold + rows if kind == "lambda" else rows)


@pytest.mark.parametrize("kind", ["lambda", "server"])
def test_profile_from_a_table_carries_the_effect_and_a_rested_distribution(kind, tmp_path):
    prof = profile_from_table(table_rows(kind))
    entry = prof[kind][0]
    eff = entry["idle_effect"]
    assert eff["hot_ratio"] == pytest.approx(0.6, abs=0.03)
    assert eff["tau_ms"] == pytest.approx(12.0, rel=0.3)
    key = "warm_ms" if kind == "lambda" else "service_ms"
    # The fitted distribution is the rested one (median 2.3 ms), not that of the mix measured.
    (tmp_path / "p.json").write_text(json.dumps(prof))
    p = profile_from_dict(json.loads((tmp_path / "p.json").read_text()), path=tmp_path / "p.json")
    e = p.lambdas[0] if kind == "lambda" else p.servers[0]
    assert e.idle == IdleEffect(eff["hot_ratio"], eff["tau_ms"])
    assert getattr(e, key).ppf(np.array([0.5]))[0] == pytest.approx(2.3, rel=0.03)
    assert "idle_effect" in e.fit and "bins" in e.fit["idle_effect"]


def scenario(service, profile=None):
    plat = {"name": "l", "kind": "lambda", **({"service": service} if service is not None else {})}
    data = {"name": "x", "trace": {"kind": "poisson", "rate_rps": 1, "duration": "1m"}, "platforms": [plat]}
    if profile is not None:
        data["profile"] = str(profile)
    return scenario_from_dict(data, source="s.yaml")


def test_scenarios_take_the_effect_inline_or_with_the_profiles_warm_ms(tmp_path):
    const = {"dist": "constant", "value": 5}
    sc = scenario({"warm_ms": const, "cold_init_ms": const, "idle_effect": {"hot_ratio": 0.7, "tau_ms": 9}})
    assert sc.platforms[0].service.idle == IdleEffect(0.7, 9.0)
    prof = {"schema": "servesim.profile/1", "model": {"name": "m"}, "measured": {"target": "local-lambda"},
            "lambda": [{"memory_mb": 1024, "architecture": "x86_64", "warm_ms": const, "cold_init_ms": const,
                        "idle_effect": {"hot_ratio": 0.6, "tau_ms": 12, "fit": {"n": 300}}}]}
    path = tmp_path / "p.json"
    path.write_text(json.dumps(prof))
    assert scenario(None, path).platforms[0].service.idle == IdleEffect(0.6, 12.0)
    # An inline warm_ms replaces the profile's, and its idle effect with it.
    assert scenario({"warm_ms": const}, path).platforms[0].service.idle is None
    # An inline cold_init_ms keeps the profile's warm_ms and its effect.
    assert scenario({"cold_init_ms": const}, path).platforms[0].service.idle == IdleEffect(0.6, 12.0)


@pytest.mark.parametrize("bad, key", [({"hot_ratio": 0, "tau_ms": 9}, "idle_effect.hot_ratio"),
                                      ({"hot_ratio": 0.5, "tau_ms": -1}, "idle_effect.tau_ms"),
                                      ({"hot_ratio": 0.5}, "idle_effect.tau_ms"),
                                      ({"hot_ratio": 0.5, "tau_ms": 9, "tau": 1}, "idle_effect")])
def test_bad_idle_effects_name_the_key(bad, key):
    const = {"dist": "constant", "value": 5}
    with pytest.raises(ConfigError) as e:
        scenario({"warm_ms": const, "cold_init_ms": const, "idle_effect": bad})
    assert f"platforms[0].service.{key}" in str(e.value) and "s.yaml" in str(e.value)
    with pytest.raises(ConfigError) as e:
        scenario({"cold_init_ms": const, "idle_effect": {"hot_ratio": 0.5, "tau_ms": 9}})
    assert "inline warm_ms beside it" in str(e.value)

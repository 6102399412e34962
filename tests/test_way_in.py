"""The local gateway's way in (`HostShare.way_in_ms`, `way_in_pressure`): a job's phase pressing on
the others (`sim.platforms.host`), the Lambda model's way in before each request (event times and
bills by hand), its keys in profiles and scenarios, and the fit from pairs (`calibrate.fit.fit_way_in`)."""
from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from calibrate.fit import _pair_a_ms, fit_way_in
from calibrate.profiles import profile_from_table
from scenarios.loader import scenario_from_dict
from sim.config import HostShare
from sim.errors import ConfigError
from sim.profile import parse_host_share
from traces.files import TimestampList

from simhelp import lam, run
from test_host_share import host_log

GB_S_X86 = 0.0000166667


# --- the host: pressure ------------------------------------------------------------------------

def test_a_phase_with_pressure_presses_harder_by_hand():
    # 8 cores (never binding). x: 2 ms, c = 0.5; y: 1 ms, c = 0, pressure 3. While y runs x can use
    # 1 / (1 + 0.5 * 3) = 0.4 of its cap: 0.4 ms done when y ends at 1 ms (y itself at full speed),
    # 1.6 ms left alone: x ends at 2.6 ms.
    out, host = host_log(8.0, [(0.0, ((2.0, 1.0, None, 0.5),)), (0.0, ((1.0, 1.0, None, 0.0, 3.0),))])
    assert out[1] == (0.001, [1.0], False)
    assert out[0][0] == pytest.approx(0.0026, rel=1e-12) and out[0][1] == pytest.approx([2.6], rel=1e-12)
    assert host.allocated_core_s == pytest.approx(host.demand_core_s, rel=1e-12)


def test_pressures_add_up():
    # x (c = 0.25, 10 ms) beside y (pressure 2) and z (pressure 1), both longer than x: x runs at
    # 1 / (1 + 0.25 * 3) all its life: 17.5 ms. Pressure 0 presses not at all: x alone, 10 ms.
    long_ = ((100.0, 1.0, None, 0.0, 2.0),)
    out, _ = host_log(8.0, [(0.0, ((10.0, 1.0, None, 0.25),)), (0.0, long_), (0.0, ((100.0, 1.0, None, 0.0),))])
    assert out[0][1] == pytest.approx([17.5], rel=1e-12)
    out, _ = host_log(8.0, [(0.0, ((10.0, 1.0, None, 0.25),)), (0.0, ((100.0, 1.0, None, 0.0, 0.0),))])
    assert out[0][1] == [10.0]


def test_pressure_one_is_the_default_bit_for_bit():
    jobs4 = [(0.0, ((100.0, 1.0, None, 0.3),)), (0.03, ((70.0, 0.5, 90.0, 0.1),)), (0.05, ((40.0, 1.0, None, 0.0),))]
    jobs5 = [(t, tuple(ph + (1.0,) for ph in phases)) for t, phases in jobs4]
    assert host_log(1.2, jobs4)[0] == host_log(1.2, jobs5)[0]


# --- the Lambda model --------------------------------------------------------------------------

def way_in(cfg, ms, pressure=1.0, c=0.0, cores=8.0):
    return replace(cfg, host=HostShare(cores=cores, work_contention=c, way_in_ms=ms, way_in_pressure=pressure))


def const(ms):
    return {"dist": "constant", "value": ms}


def test_the_way_in_is_before_the_work_and_neither_in_latency_nor_bill():
    # A cold start at 0: way in 2 ms, INIT 150, invocation 100 -> done at 0.252 s, latency 250 ms
    # (INIT + Duration, as Lambda reports). A warm one at 1.0: done at 1.102 s, latency 100 ms.
    cfg = way_in(lam(warm=const(100.0), cold=const(150.0), memory_mb=1024), 2.0)
    res, df = run(cfg, TimestampList([0.0, 1.0], duration_s=10.0), records=True, engine="simpy")
    assert df.cold.tolist() == [True, False]
    assert df.latency_ms.tolist() == pytest.approx([250.0, 100.0], rel=1e-12)
    assert df.done_s.tolist() == pytest.approx([0.252, 1.102], rel=1e-12)
    billed_ms = 250 + 100
    assert res.summary["cost_usd"]["compute"] == pytest.approx(billed_ms / 1000 * GB_S_X86, rel=1e-12)


def test_the_environment_is_taken_during_the_way_in():
    # Warm at 1.0 (env 1 busy until 1.0 + (2 + 100) ms); a request 1 ms later finds it busy (its
    # invocation has not started yet): a cold start, not a reuse.
    cfg = way_in(lam(warm=const(100.0), cold=const(150.0), memory_mb=1024), 2.0)
    _, df = run(cfg, TimestampList([0.0, 1.0, 1.001], duration_s=10.0), records=True, engine="simpy")
    assert df.cold.tolist() == [True, False, True]


def test_a_newcomers_way_in_slows_a_running_invocation_by_hand():
    # c = 0.25, pressure 3, way in 2 ms, 8 cores. Env 1 and env 2 warm (two cold starts at 0, apart
    # by 1 s of idle). At 5.0 request a: way in [0, 2] ms alone, invocation from 2 ms. At 5.003 b:
    # its way in (3 to 5 ms) presses a with 3: a at 1 / (1 + 0.25 * 3) = 4/7; b's way in itself at
    # 1 / (1 + 0.25 * 1) = 0.8 (a is an ordinary job): it needs 2.5 ms, until 5.5 ms. a did 1 ms
    # alone (2 to 3 ms), 2.5 * 4/7 = 10/7 ms with b's way in, then (b's invocation from 5.5 ms,
    # pressure 1) 1 / 1.25 = 0.8 until done: 10 - 1 - 10/7 = 7.5714 ms left at 0.8 = 9.4643 ms:
    # a's invocation took 1 + 2.5 + 9.4643 = 12.9643 ms.
    cfg = way_in(lam(warm=const(10.0), cold=const(150.0), memory_mb=1024), 2.0, pressure=3.0, c=0.25)
    _, df = run(cfg, TimestampList([0.0, 0.0, 5.0, 5.003], duration_s=10.0), records=True, engine="simpy")
    assert df.cold.tolist() == [True, True, False, False]
    left = 10.0 - 1.0 - 2.5 * 4.0 / 7.0
    a_ms = 1.0 + 2.5 + left / 0.8
    assert df.latency_ms[2] == pytest.approx(a_ms, rel=1e-12)
    assert df.done_s[2] == pytest.approx(5.0 + (2.0 + a_ms) / 1000.0, rel=1e-12)
    # the same through the fit's own pair simulation
    share = HostShare(cores=8.0, work_contention=0.25)
    assert _pair_a_ms(share, 2.0, 3.0, 3.0, 10.0) == pytest.approx(a_ms, rel=1e-9)


def test_a_cold_host_with_a_way_in():
    # keep-alive 1 s. At 0 the host is warm (it starts so): INIT 100 ms, ending at 0.102 s (after the
    # 2 ms way in). At 50 s, 49.9 s after the last INIT ended: cold, a page-in of (2 - 1) x 100 ms,
    # to 50.1 s as seen at the arrival (the wait follows the way in): Init Duration 200 ms. At 50.05 s
    # (env 1 busy): a cold start that waits the rest, 50 ms: 150 ms. At 52 s (the last INIT ended at
    # 50.202 s): warm again, 100 ms.
    cfg = lam(warm=const(10.0), cold=const(100.0), memory_mb=1024, keep_alive_s=1.0)
    cfg = replace(cfg, host=HostShare(cores=8.0, way_in_ms=2.0, init_idle_s=30.0, init_idle_factor=2.0))
    _, df = run(cfg, TimestampList([0.0, 50.0, 50.05, 52.0], duration_s=100.0), records=True, engine="simpy")
    assert df.cold.tolist() == [True, True, True, True]
    assert df.init_ms.tolist() == pytest.approx([100.0, 200.0, 150.0, 100.0], rel=1e-12)


# --- keys --------------------------------------------------------------------------------------

def test_profile_keys_round_trip_and_errors():
    share, _ = parse_host_share({"cores": 2.0, "work_contention": 0.2, "way_in_ms": 1.3, "way_in_pressure": 3},
                                "p.json", "lambda[0].host_share")
    assert (share.way_in_ms, share.way_in_pressure) == (1.3, 3.0)
    share, _ = parse_host_share({"cores": 2.0}, "p.json", "h")
    assert (share.way_in_ms, share.way_in_pressure) == (0.0, 1.0)
    for bad in ({"way_in_ms": -1}, {"way_in_pressure": "x"}, {"way_in_ms": float("inf")}):
        with pytest.raises(ConfigError, match=f"h.{next(iter(bad))}"):
            parse_host_share({"cores": 2.0, **bad}, "p.json", "h")
    with pytest.raises(ConfigError, match="no value when cores is null"):
        parse_host_share({"cores": None, "way_in_ms": 1.0}, "p.json", "h")


def test_an_ec2_host_refuses_a_way_in():
    doc = {"name": "x", "trace": {"kind": "poisson", "rate_rps": 1, "duration": "10s"},
           "platforms": [{"name": "e", "kind": "ec2", "instance_type": "c5.large",
                          "service": {"service_ms": const(10.0)},
                          "host": {"cores": 2, "way_in_ms": 1.0}}]}
    with pytest.raises(ConfigError, match="way_in_ms"):
        scenario_from_dict(doc, source="s.yaml")


# --- the fit -----------------------------------------------------------------------------------

SHARE = HostShare(cores=2.65, work_cores=0.83, work_contention=0.2)
OFFSETS = (0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 5.0, 6.0)


def synthetic_pairs(way_ms, pressure, n=20, seed=1, noise=0.08):
    rng = np.random.default_rng(seed)
    nominal, actual, a = [], [], []
    for lv in OFFSETS:
        for _ in range(n):
            o = lv + abs(rng.normal(0.0, 0.05))
            nominal.append(lv)
            actual.append(o)
            a.append(_pair_a_ms(SHARE, way_ms, pressure, o, 2.0 * rng.lognormal(0.0, noise)))
    return nominal, actual, a


def test_the_fit_recovers_the_way_in_from_noisy_pairs():
    # 8 % lognormal noise on A's duration, 20 pairs per offset: within 0.15 ms and 0.5 of pressure
    fit = fit_way_in(*synthetic_pairs(1.3, 3.0), SHARE)
    assert fit.reason is None
    assert fit.way_in_ms == pytest.approx(1.3, abs=0.15) and fit.pressure == pytest.approx(3.0, abs=0.5)
    assert fit.base_ms == pytest.approx(2.0, rel=0.05)
    assert [p["offset_ms"] for p in fit.points] == list(OFFSETS)


def test_no_way_in_without_a_slowdown():
    rng = np.random.default_rng(2)
    nominal = [lv for lv in OFFSETS for _ in range(20)]
    fit = fit_way_in(nominal, nominal, 2.0 * rng.lognormal(0.0, 0.05, len(nominal)), SHARE)
    assert fit.way_in_ms is None and "no offset shows A clearly slower" in fit.reason


def test_too_few_pairs_is_said():
    fit = fit_way_in([0.0, 0.0, 6.0], [0.0, 0.0, 6.0], [2.0, 2.0, 2.0], SHARE)
    assert fit.way_in_ms is None and "at least two offsets" in fit.reason


def pairs_rows(share: HostShare, way_ms: float, pressure: float, config: str) -> pd.DataFrame:
    """Rows of phase pairs as the campaign writes them: per offset, A (even seq) then B (odd)."""
    rng = np.random.default_rng(5)
    nominal = [lv for lv in OFFSETS for _ in range(10)]
    actual = [lv + abs(rng.normal(0.0, 0.05)) for lv in nominal]
    a = [_pair_a_ms(share, way_ms, pressure, o, 2.0 * rng.lognormal(0.0, 0.05)) for o in actual]
    rows, seq = [], {}
    for i, (lv, o, ms) in enumerate(zip(nominal, actual, a)):
        n = seq.get(lv, 0)
        seq[lv] = n + 2
        t = 1.8e9 + i
        for s, send, server in ((n, t, ms), (n + 1, t + o / 1000.0, 2.0)):
            rows.append({"run_id": "r", "target": "local-lambda", "model": "tiny", "config": config, "memory_mb": 1024,
                         "architecture": "x86_64", "phase": "pairs", "level": lv, "concurrency": 2, "seq": s,
                         "send_s": send, "client_ms": server + 1.3, "server_ms": server, "status": "ok"})
    return pd.DataFrame(rows)


def test_profile_gets_the_way_in_from_pairs_rows(tmp_path):
    from calibrate.profiles import write_profile
    from sim.profile import load_profile
    from test_host_calibration import CFG, COLD, SHARE as BURSTS, lambda_table, noisy

    # warm bursts with a contention of 0.2 per other job (a way in presses through the contention)
    warm = {k: noisy(2.0 * (1.0 + 0.2 * (k - 1)), 6, 20 + k) for k in (1, 2, 4, 8)}
    base = lambda_table(COLD, {}, init_bursts=BURSTS["init_bursts"], warm_bursts=warm)
    got = profile_from_table(base)["lambda"][0]["host_share"]
    assert "way_in_ms" not in got and "way_in" not in got["fit"]  # no pairs rows: no way in
    assert got["work_contention"] == pytest.approx(0.2, abs=0.05)
    share = HostShare(cores=got["cores"], work_cores=got["work_cores"], work_contention=got.get("work_contention", 0.0))
    table = pd.concat([base, pairs_rows(share, 1.3, 3.0, CFG).reindex(columns=base.columns)], ignore_index=True)
    prof = profile_from_table(table)
    entry = prof["lambda"][0]["host_share"]
    assert entry["way_in_ms"] == pytest.approx(1.3, abs=0.15) and entry["way_in_pressure"] == pytest.approx(3.0, abs=0.6)
    fit = entry["fit"]["way_in"]
    assert "reason" not in fit and [p["n"] for p in fit["points"]] == [10] * len(OFFSETS)
    assert prof["lambda"][0]["warm_ms"]["fit"]["status"]["pairs"] == {"ok": 2 * 10 * len(OFFSETS), "throttled": 0,
                                                                       "error": 0, "timeout": 0}
    write_profile(prof, tmp_path / "p.json")
    host = load_profile(tmp_path / "p.json").lambdas[0].host
    assert (host.way_in_ms, host.way_in_pressure) == (entry["way_in_ms"], entry["way_in_pressure"])
    json.dumps(prof)  # plain JSON


def test_without_contention_only_the_way_in_is_fitted():
    # 1 core, no contention: B's way in takes the core from A (a cap of 1 each: half each).
    share = HostShare(cores=1.0, work_cores=1.0)
    rng = np.random.default_rng(3)
    nominal = [lv for lv in OFFSETS for _ in range(12)]
    a = [_pair_a_ms(share, 1.0, 1.0, lv, 2.0 * rng.lognormal(0.0, 0.03)) for lv in nominal]
    fit = fit_way_in(nominal, nominal, a, share)
    assert fit.reason is None and fit.pressure == 1.0 and "not identified" in fit.note
    assert fit.way_in_ms == pytest.approx(1.0, abs=0.1)

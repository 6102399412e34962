"""Measure -> fit -> simulate: a quick campaign against each real local target gives a profile the
simulator loads, and simulating the measured configuration on the warm phase's own schedule
(its pauses spread from 0.5 to 300 ms, so the idle effect is at work) reproduces the measured
warm p50 within 5 %, and the p99 within 5 % of the measured p99's 95 % bootstrap interval (the
p99 of 400 measurements is itself uncertain by about 8 %)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from calibrate.campaign import run_campaign
from calibrate.fit import bootstrap_quantile_ci
from calibrate.profiles import fit_measurements
from calibrate.targets import LocalLambdaTarget, LocalServerTarget
from deploy.procs import live_processes
from sim.config import EC2Config, EC2Service, LambdaConfig, LambdaService
from sim.pricing import load_pricing
from sim.profile import load_profile
from sim.run import simulate_one
from traces.files import TimestampList

MODEL = "cifar10-cnn"  # ~0.6 ms per inference: a quick campaign, yet real compute
N_WARM = 400


@pytest.fixture(autouse=True)
def no_leaks():
    yield
    assert live_processes() == []


def warm_phase(table) -> pd.DataFrame:
    df = pd.read_parquet(table)
    return df[df.phase == "warm"].sort_values("seq")


def simulated_latencies(cfg, warm: pd.DataFrame) -> np.ndarray:
    """The warm phase's gaps between sends, 50 times over, after a first (cold) request at 10 s
    that is dropped: the same idle times as measured, with 50 times the samples."""
    gaps = np.diff(warm.send_s.to_numpy())
    times = 10.0 + np.concatenate([[0.0], np.cumsum(np.tile(gaps, 50))])
    parts = []
    simulate_one(cfg, TimestampList(times.tolist()), pricing=load_pricing(), seed=3, record_sink=parts.append)
    df = pd.concat(parts)
    return df.latency_ms.to_numpy()[1:]


def measured_warm(warm: pd.DataFrame, column: str) -> np.ndarray:
    """The ok warm requests but the first (its idle time is not known: it follows the warm-up)."""
    return warm[warm.status == "ok"][column].to_numpy()[1:]


def close(sim: np.ndarray, measured: np.ndarray) -> None:
    m, s = np.percentile(measured, 50), np.percentile(sim, 50)
    assert s == pytest.approx(m, rel=0.05), f"p50: simulated {s:.4g} ms vs measured {m:.4g} ms"
    lo, hi = bootstrap_quantile_ci(measured, [0.99], resamples=2000, rng=np.random.default_rng(0))[0]
    s = np.percentile(sim, 99)
    assert 0.95 * lo <= s <= 1.05 * hi, f"p99: simulated {s:.4g} ms vs measured 95 % interval {lo:.4g}-{hi:.4g} ms"


def test_local_lambda_profile_round_trips_through_the_simulator(tmp_path):
    table = tmp_path / "lambda.parquet"
    run_campaign(LocalLambdaTarget(MODEL, [1769]), table, quick=True, n_warm=N_WARM, progress=False,
                 echo=lambda s: None, bursts=0, pairs=0)
    fit_measurements(table, tmp_path / "p.json")
    prof = load_profile(tmp_path / "p.json")
    entry = prof.lambda_entry(1769, "x86_64")
    assert entry is not None and entry.cold_init_ms.mean() > 0
    assert entry.idle is not None  # measured with spread pauses on this host, the effect is always clear
    cfg = LambdaConfig(name="l", memory_mb=1769, keep_alive_s=1e9,
                       service=LambdaService(entry.warm_ms, entry.cold_init_ms, idle=entry.idle))
    warm = warm_phase(table)
    close(simulated_latencies(cfg, warm), measured_warm(warm, "server_ms"))  # warm_ms is Lambda's Duration


def test_local_server_profile_round_trips_through_the_simulator(tmp_path):
    table = tmp_path / "server.parquet"
    run_campaign(LocalServerTarget(MODEL, [1], cpus=1.0, instance_type="c6i.large"), table, quick=True,
                 n_warm=N_WARM, progress=False, echo=lambda s: None, bursts=0)
    fit_measurements(table, tmp_path / "p.json")
    prof = load_profile(tmp_path / "p.json")
    entry = prof.server_entry("c6i.large", 1)
    assert entry is not None and entry.throughput  # the load phase's curve is kept
    assert entry.idle is not None
    cfg = EC2Config(name="e", instance_type="c6i.large", instances=1, workers_per_instance=1,
                    service=EC2Service(entry.service_ms, idle=entry.idle), load_balancer_billed=False)
    warm = warm_phase(table)
    close(simulated_latencies(cfg, warm), measured_warm(warm, "client_ms"))  # one worker is busy for this long

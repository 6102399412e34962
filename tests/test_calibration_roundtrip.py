"""Measure -> fit -> simulate: a quick campaign against each real local target gives a profile the
simulator loads, and simulating the measured configuration reproduces the measured warm p50 and
p99 within 5 %."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from calibrate.campaign import run_campaign
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


def simulated_latencies(cfg) -> np.ndarray:
    """Sequential requests 10 s apart (never concurrent, never reclaimed): the first is cold."""
    parts = []
    simulate_one(cfg, TimestampList([10.0 * i for i in range(20_001)]), pricing=load_pricing(), seed=3,
                 record_sink=parts.append)
    df = pd.concat(parts)
    return df.latency_ms.to_numpy()[1:]


def measured_warm(table, column: str) -> np.ndarray:
    df = pd.read_parquet(table)
    return df[(df.phase == "warm") & (df.status == "ok")][column].to_numpy()


def close(sim: np.ndarray, measured: np.ndarray) -> None:
    for q in (50, 99):
        m, s = np.percentile(measured, q), np.percentile(sim, q)
        assert s == pytest.approx(m, rel=0.05), f"p{q}: simulated {s:.4g} ms vs measured {m:.4g} ms"


def test_local_lambda_profile_round_trips_through_the_simulator(tmp_path):
    table = tmp_path / "lambda.parquet"
    run_campaign(LocalLambdaTarget(MODEL, [1769]), table, quick=True, n_warm=N_WARM, progress=False,
                 echo=lambda s: None)
    fit_measurements(table, tmp_path / "p.json")
    prof = load_profile(tmp_path / "p.json")
    entry = prof.lambda_entry(1769, "x86_64")
    assert entry is not None and entry.cold_init_ms.mean() > 0
    cfg = LambdaConfig(name="l", memory_mb=1769, keep_alive_s=1e9,
                       service=LambdaService(entry.warm_ms, entry.cold_init_ms))
    close(simulated_latencies(cfg), measured_warm(table, "server_ms"))  # warm_ms is Lambda's Duration


def test_local_server_profile_round_trips_through_the_simulator(tmp_path):
    table = tmp_path / "server.parquet"
    run_campaign(LocalServerTarget(MODEL, [1], cpus=1.0, instance_type="c6i.large"), table, quick=True,
                 n_warm=N_WARM, progress=False, echo=lambda s: None)
    fit_measurements(table, tmp_path / "p.json")
    prof = load_profile(tmp_path / "p.json")
    entry = prof.server_entry("c6i.large", 1)
    assert entry is not None and entry.throughput  # the load phase's curve is kept
    cfg = EC2Config(name="e", instance_type="c6i.large", instances=1, workers_per_instance=1,
                    service=EC2Service(entry.service_ms), load_balancer_billed=False)
    close(simulated_latencies(cfg), measured_warm(table, "client_ms"))  # one worker is busy for this long

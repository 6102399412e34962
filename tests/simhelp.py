"""Small helpers for tests that drive the simulator directly (no scenario file)."""
from __future__ import annotations

import pandas as pd

from sim.config import EC2Config, EC2Service, LambdaConfig, LambdaService
from sim.dists import parse_dist
from sim.pricing import load_pricing
from sim.run import simulate_one

PRICING = load_pricing()


def dist(spec):
    return parse_dist(spec)


def lam(name="lam", warm=None, cold=None, **kw) -> LambdaConfig:
    warm = dist(warm if warm is not None else {"dist": "constant", "value": 100})
    cold = dist(cold if cold is not None else {"dist": "constant", "value": 0})
    if isinstance(kw.get("keep_alive_s"), dict):
        kw["keep_alive_s"] = dist(kw["keep_alive_s"])
    return LambdaConfig(name=name, service=LambdaService(warm, cold), **kw)


def ec2(name="ec2", service=None, **kw) -> EC2Config:
    svc = dist(service if service is not None else {"dist": "constant", "value": 100})
    return EC2Config(name=name, service=EC2Service(svc), **kw)


def run(cfg, arrivals, *, seed=1, warmup_s=0.0, records=False, **kw):
    """Simulate one platform; with records=True also return the per-request DataFrame."""
    parts: list[pd.DataFrame] = []
    res = simulate_one(cfg, arrivals, pricing=kw.pop("pricing", PRICING), seed=seed, warmup_s=warmup_s,
                       record_sink=parts.append if records else None, **kw)
    if records:
        return res, pd.concat(parts, ignore_index=True)
    return res

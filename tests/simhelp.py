"""Small helpers for tests that drive the simulator directly (no scenario file)."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from sim.config import EC2Config, EC2Service, IdleEffect, LambdaConfig, LambdaService
from sim.dists import parse_dist
from sim.metrics import RECORD_COLUMNS
from sim.pricing import load_pricing
from sim.run import simulate_one
from sim.streams import WARM, generator

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
        return res, pd.concat(parts, ignore_index=True) if parts else _no_records()
    return res


def _no_records() -> pd.DataFrame:
    """The records of a run without arrivals: no part was written; an empty table of the columns' types."""
    types = {"request": np.int64, "status": object, "cold": bool, "provisioned": bool, "in_window": bool}
    return pd.DataFrame({c: np.empty(0, dtype=types.get(c, np.float64)) for c in RECORD_COLUMNS})


def with_idle(cfg, idle: IdleEffect | None):
    """`cfg` whose service times depend on the unit's idle time as `idle` says."""
    return replace(cfg, service=replace(cfg.service, idle=idle))


def scaled_by_the_idle_effect(cfg, records: pd.DataFrame, seed: int) -> int:
    """Check the records' durations against their draws (the WARM stream through warm_ms or
    service_ms): a cold start, a throttled or a rejected request keeps its draw, any other has
    it multiplied by a factor between 1 and hot_ratio. Returns how many were multiplied by
    another factor than 1 (so a test can check the effect was at work)."""
    dist = cfg.service.warm_ms if isinstance(cfg, LambdaConfig) else cfg.service.service_ms
    drawn = dist.ppf(generator(seed, WARM).random(len(records)))
    work = records.work_ms.to_numpy()
    scaled = (~records.status.isin(["throttled", "rejected"]) & ~records.cold).to_numpy()
    np.testing.assert_allclose(work[~scaled], drawn[~scaled], rtol=1e-12)
    lo, hi = sorted((1.0, cfg.service.idle.hot_ratio))
    ratio = work[scaled] / drawn[scaled]
    assert np.all((ratio >= lo * (1 - 1e-12)) & (ratio <= hi * (1 + 1e-12)))
    return int(np.sum(np.abs(ratio - 1.0) > 1e-12))


# -- mutating a parsed YAML document (price and presets files) -----------------------------------

def _key_at(doc, path):
    """The mapping (or list) holding the last key of `path` (a sequence of keys and list indexes)."""
    *parents, last = path
    for k in parents:
        doc = doc[k]
    return doc, last


def set_key(path, value):
    """A function setting `path` of a document to `value`, in place."""
    def mutate(d):
        parent, last = _key_at(d, path)
        parent[last] = value
    return mutate


def delete_key(path):
    """A function deleting `path` of a document, in place."""
    def mutate(d):
        parent, last = _key_at(d, path)
        del parent[last]
    return mutate

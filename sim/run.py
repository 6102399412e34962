"""Run platform configurations on one arrival source and assemble their results.

`simulate` is the library entry point: the same arrivals (regenerated from the scenario seed for
each configuration, never stored whole) and the same per-request draws for every platform, one
engine run each, then metrics, time series and the bill. The result objects are plain data; the
`Result` dict keys are those of DESIGN.md plus a few additions.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Iterator, Protocol, Sequence

import numpy as np
import pandas as pd

from . import engine_simpy
from .config import EC2Config, PlatformConfig
from .errors import ServesimError
from .histogram import LogHistogram
from .metrics import Collector
from .pricing import Pricing
from .streams import ARRIVALS, child_seed
from .tally import periods_in

ENGINES = ("auto", "simpy", "fast")


class Arrivals(Protocol):
    """What `sim` needs of a trace: chunks of arrival times (s) and the window's end (or None)."""

    duration_s: float | None

    def chunks(self, seed: np.random.SeedSequence, chunk_size: int = 65536) -> Iterator[np.ndarray]: ...


@dataclass
class PlatformResult:
    summary: dict          # the Result object of DESIGN.md
    series: pd.DataFrame   # per-minute time series of the measured window
    histogram: LogHistogram
    end_s: float


def resolve_engine(engine: str, cfg: PlatformConfig | None = None) -> str:
    """The engine that runs `cfg`: ``simpy``, ``fast``, or for ``auto`` fast when it models `cfg`.
    Asking for ``fast`` on a configuration it does not model is refused, naming what is missing."""
    if engine not in ENGINES:
        raise ServesimError(f"unknown engine {engine!r}; expected one of {', '.join(ENGINES)}")
    if engine == "simpy":
        return "simpy"
    from . import engine_fast

    missing = engine_fast.unsupported(cfg) if cfg is not None else None
    if missing is None:
        return "fast"
    if engine == "fast":
        name = getattr(cfg, "name", "?")
        raise ServesimError(f"engine fast does not support {missing} (platform {name!r}); use engine: simpy "
                            "for it (engine: auto picks simpy by itself)")
    return "simpy"


def simulate_one(cfg: PlatformConfig, arrivals: Arrivals, *, pricing: Pricing, seed: int = 0,
                 warmup_s: float = 0.0, engine: str = "auto", period_s: float = 60.0,
                 chunk_size: int = 65536, record_sink: Callable[[pd.DataFrame], None] | None = None,
                 progress: Callable[[int, float], None] | None = None) -> PlatformResult:
    """Simulate one platform configuration; see `simulate`."""
    engine = resolve_engine(engine, cfg)
    collector = Collector(warmup_s, period_s, record_sink)
    chunks = arrivals.chunks(child_seed(seed, ARRIVALS), chunk_size)
    if engine == "fast":
        from . import engine_fast as runner
    else:
        runner = engine_simpy
    model, end_s = runner.run(cfg, chunks, seed=seed, warmup_s=warmup_s, horizon_s=arrivals.duration_s,
                              collector=collector, progress=progress)
    window_s = max(0.0, end_s - warmup_s)
    n_periods = periods_in(window_s, period_s)
    levels = model.levels(end_s, n_periods)
    series = collector.series(n_periods, levels["instances_series"], levels["busy_series"])
    if isinstance(cfg, EC2Config):
        cost = model.cost(pricing, end_s, series["arrivals"].to_numpy(dtype=float))
    else:
        cost = model.cost(pricing, end_s)
    c = collector
    served_rps = c.served / window_s if window_s > 0 else math.nan
    summary = {
        "platform": cfg.name,
        "kind": model.kind,
        "requests": c.requests,
        "completed": c.completed,
        "rejected": c.rejected,
        "throttled": c.throttled,
        "timeouts": c.timeouts,
        "cold_starts": c.cold_starts,
        "cold_start_fraction": c.cold_starts / c.requests if c.requests else 0.0,
        "latency_ms": c.latency_summary(),
        "instances": {"mean": levels["instances_mean"], "max": levels["instances_max"],
                      "busy_mean": levels["busy_mean"]},
        "utilization": levels["utilization"],
        "cost_usd": cost.as_dict(),
        "cost_per_million_usd": cost.total / c.requests * 1e6 if c.requests else None,
        "horizon_s": window_s,
        "engine": engine,
        "queueing": {"in_system_mean": levels["in_system_mean"], "served_rps": served_rps,
                     "mean_time_in_system_s": c.sojourn_s / c.served if c.served else None},
        "warmup_s": warmup_s,
        "seed": seed,
        "interpolated": getattr(cfg.service, "interpolated", None),
    }
    return PlatformResult(summary, series, c.hist, end_s)


def simulate(platforms: Sequence[PlatformConfig], arrivals: Arrivals, *, pricing: Pricing, seed: int = 0,
             warmup_s: float = 0.0, engine: str = "auto", period_s: float = 60.0,
             record_sink_for: Callable[[PlatformConfig], Callable[[pd.DataFrame], None] | None] | None = None,
             progress_for: Callable[[PlatformConfig], Callable[[int, float], None] | None] | None = None,
             ) -> list[PlatformResult]:
    """Simulate every platform on the same arrivals with the same per-request luck.

    Figures cover requests arriving at or after `warmup_s`; the bill covers [warmup_s, end].
    """
    out = []
    for cfg in platforms:
        sink = record_sink_for(cfg) if record_sink_for else None
        prog = progress_for(cfg) if progress_for else None
        out.append(simulate_one(cfg, arrivals, pricing=pricing, seed=seed, warmup_s=warmup_s, engine=engine,
                                period_s=period_s, record_sink=sink, progress=prog))
    return out

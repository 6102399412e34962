"""The reference engine: one SimPy environment per platform configuration.

An arrival process walks the arrival chunks (each request arrives at its own time: a SimPy
timeout, never a poll); the platform model schedules completions and idle expiries as events
with callbacks. When the arrivals are exhausted the run continues until every accepted request
is finished and the trace's window has ended; keep-alive expiries and autoscaler periods after
that are not simulated (they cannot change a reported figure).
"""
from __future__ import annotations

from collections import deque
from typing import Callable, Iterable

import numpy as np
import simpy

from .config import ContainerServiceConfig, EC2Config, K8sFunctionConfig, LambdaConfig, PlatformConfig
from .metrics import Collector
from .platforms.base import Chunk, Platform
from .platforms.ec2 import EC2Model
from .platforms.lambda_ import LambdaModel
from .platforms.pods import ContainerServiceModel, K8sFunctionModel
from .streams import BOOT, RequestStreams, generator


def build_model(env: simpy.Environment, cfg: PlatformConfig, seed: int, warmup_s: float,
                period_s: float) -> Platform:
    if isinstance(cfg, LambdaConfig):
        return LambdaModel(env, cfg, warmup_s, period_s)
    if isinstance(cfg, EC2Config):
        return EC2Model(env, cfg, warmup_s, period_s, boot_rng=generator(seed, BOOT))
    if isinstance(cfg, K8sFunctionConfig):
        return K8sFunctionModel(env, cfg, warmup_s, period_s, boot_rng=generator(seed, BOOT))
    if isinstance(cfg, ContainerServiceConfig):
        return ContainerServiceModel(env, cfg, warmup_s, period_s, boot_rng=generator(seed, BOOT))
    raise TypeError(f"unknown platform config {type(cfg).__name__}")


def run(cfg: PlatformConfig, chunks: Iterable[np.ndarray], *, seed: int, warmup_s: float,
        horizon_s: float | None, collector: Collector,
        progress: Callable[[int, float], None] | None = None) -> tuple[Platform, float]:
    """Simulate one platform on the given arrival chunks; returns the model and the end time (s).

    `horizon_s` is the end of the trace's window (None: the last arrival). The run ends at the
    later of the horizon and the completion of the last accepted request.
    """
    env = simpy.Environment()
    model = build_model(env, cfg, seed, warmup_s, collector.period_s)
    streams = RequestStreams(seed)
    pending: deque[Chunk] = deque()

    def finalise(_chunk: Chunk) -> None:
        while pending and pending[0].pending == 0:
            c = pending.popleft()
            t = c.t_arr
            keep = t >= warmup_s
            model.account(c, keep)
            extra = None
            if collector.wants_records:
                extra = {k: np.asarray(v) for k, v in c.extra.items()}
                extra["work_ms"] = np.asarray(c.work_ms)
                extra["init_ms"] = np.where(c.cold, c.init_ms, 0.0) if c.init_ms is not None else np.zeros(t.size)
            collector.add_chunk(t, np.asarray(c.status, dtype=np.int8), np.asarray(c.cold, dtype=bool),
                                np.asarray(c.latency_ms, dtype=float), np.asarray(c.done_s, dtype=float), extra)

    model.on_resolved = finalise

    def main():
        timeout = env.timeout
        last_t = 0.0
        for t_arr in chunks:
            n = t_arr.size
            if n == 0:
                continue
            chunk = model.prepare(t_arr, streams.next(n))
            pending.append(chunk)
            arrive = model.arrive
            for j, t in enumerate(chunk.t):
                d = t - env.now
                if d > 0:
                    yield timeout(d)
                arrive(chunk, j)
            last_t = chunk.t[-1]
            if progress is not None:
                progress(n, last_t)
        if model.in_system > 0:
            yield model.wait_empty()
        end = max(horizon_s if horizon_s is not None else last_t, env.now)
        if end > env.now:
            yield timeout(end - env.now)

    proc = env.process(main())
    env.run(until=proc)
    end_s = env.now
    model.close(end_s)
    collector.close()
    return model, end_s

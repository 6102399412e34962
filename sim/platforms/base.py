"""The interface every platform model shares, and the chunk of requests it resolves.

A platform model lives in one SimPy environment. The engine calls `prepare` once per chunk of
arrivals (turning the chunk's per-request uniforms into this platform's service times), then
`arrive` for each request at its arrival time. The model resolves each request (status, cold
start, latency, completion time) into the chunk, schedules its own completions and idle
expiries as SimPy events, and says how it is billed (`cost`). When every request of a chunk is
resolved the engine hands it, in arrival order, to the metrics collector.
"""
from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np
import simpy

from ..billing import Cost
from ..pricing import Pricing
from ..streams import RequestDraws
from ..tally import LevelTally


class Chunk:
    """One chunk of requests in arrival order, with per-request inputs and outcomes.

    Inputs (lists, for fast scalar access in the event loop): arrival time `t` (s), `work_ms`
    (service time of the request on this platform), `init_ms` (cold-start init if it needs one),
    `keep_s` (keep-alive drawn for the idle period it starts, or None), `route` (uniform for
    random choices). Outcomes: `status`, `cold`, `latency_ms`, `done_s`, `extra` columns.
    """

    __slots__ = ("t_arr", "t", "work_ms", "init_ms", "keep_s", "route", "status", "cold",
                 "latency_ms", "done_s", "pending", "extra")

    def __init__(self, t_arr: np.ndarray, work_ms: np.ndarray, init_ms: np.ndarray | None,
                 keep_s: np.ndarray | None, route: np.ndarray):
        n = t_arr.size
        self.t_arr = t_arr
        self.t = t_arr.tolist()
        self.work_ms = work_ms.tolist()
        self.init_ms = init_ms.tolist() if init_ms is not None else None
        self.keep_s = keep_s.tolist() if keep_s is not None else None
        self.route = route.tolist()
        self.status = [0] * n
        self.cold = [False] * n
        self.latency_ms = [np.nan] * n
        self.done_s = [np.nan] * n
        self.pending = n
        self.extra: dict[str, list] = {}


class Platform(ABC):
    """A modelled platform: arrival, completion, idle expiry, and billing."""

    kind: str

    def __init__(self, env: simpy.Environment, warmup_s: float, period_s: float):
        self.env = env
        self.warmup_s = warmup_s
        self.period_s = period_s
        self.on_resolved = None  # set by the engine: called with a chunk when its last request resolves
        self._empty: simpy.Event | None = None

    def wait_empty(self) -> simpy.Event:
        """An event that succeeds when no accepted request is left in the system."""
        self._empty = self.env.event()
        if self.in_system == 0:
            self._empty.succeed()
        return self._empty

    def _maybe_empty(self) -> None:
        """Models call this when a request leaves the system."""
        if self._empty is not None and not self._empty.triggered and self.in_system == 0:
            self._empty.succeed()

    @abstractmethod
    def prepare(self, t_arr: np.ndarray, draws: RequestDraws) -> Chunk:
        """Map the chunk's uniforms into this platform's per-request durations."""

    @abstractmethod
    def arrive(self, chunk: Chunk, j: int) -> None:
        """Request j of `chunk` arrives now (env.now == its arrival time)."""

    @property
    @abstractmethod
    def in_system(self) -> int:
        """Requests accepted and not yet finished."""

    @abstractmethod
    def account(self, chunk: Chunk, keep: np.ndarray) -> None:
        """Add the billed quantities of a finalised chunk (`keep`: requests inside the measured window)."""

    @abstractmethod
    def close(self, end_s: float) -> None:
        """The run ends at `end_s`: close tallies."""

    @abstractmethod
    def cost(self, pricing: Pricing, end_s: float) -> Cost:
        """The bill for the measured window [warmup_s, end_s]."""

    @abstractmethod
    def levels(self, end_s: float, n_periods: int) -> dict:
        """Time averages: {'instances_mean', 'instances_max', 'busy_mean', 'in_system_mean',
        'utilization', 'instances_series', 'busy_series'}."""

    def resolved(self, chunk: Chunk) -> None:
        chunk.pending -= 1
        if chunk.pending == 0:
            self.on_resolved(chunk)


def fleet_levels(alive: LevelTally, busy: LevelTally, in_system: LevelTally, slots_per_unit: int,
                 end_s: float, n_periods: int) -> dict:
    """`Platform.levels` of a fleet of units (instances, pods) of `slots_per_unit` slots each,
    from its tallies of units alive, slots busy and requests in the system."""
    alive_mean = alive.mean(end_s)
    busy_mean = busy.mean(end_s)
    return {"instances_mean": alive_mean, "instances_max": alive.max_level,
            "busy_mean": busy_mean, "in_system_mean": in_system.mean(end_s),
            "utilization": busy_mean / (alive_mean * slots_per_unit) if alive_mean > 0 else 0.0,
            "instances_series": alive.per_period(n_periods, end_s),
            "busy_series": busy.per_period(n_periods, end_s)}

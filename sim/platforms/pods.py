"""Pods and container instances: a function on Kubernetes (OpenFaaS, Knative; kind
``k8s-function``) and a container service (Fargate, Cloud Run, ...; kind ``container-service``).

A pod and a container instance are the same thing here: a *unit* of `concurrency` slots, each
slot serving one request at a time (service times do not depend on how many slots are busy).

Model (`sim.config.K8sFunctionConfig`, `ContainerServiceConfig`; decisions where they are
silent are marked *):
- Routing: an arriving request starts at once on the ready unit with a free slot that has the
  fewest requests in service, ties to the oldest unit; else it waits in the one FIFO gateway
  queue (OpenFaaS gateway, Knative activator), rejected (503) when the queue holds
  `queue_limit`. A freed slot of a ready unit takes the queue's head; a unit that becomes ready
  takes queued requests up to its concurrency.
- Latency = wait + service_ms. Answered after `request_timeout_s`: status timeout, still served
  in full (as EC2). Timeouts are not in the latency percentiles.
- Cold start*: a request is cold when the unit that serves it became ready after the request
  arrived (its wait includes part of a unit start). This counts the requests queued before the
  start began too, e.g. those waiting at the gateway when the autoscaler added the unit.
- Units: min (min_replicas / min_instances) ready at t=0 (warm); a new unit serves
  `pod_start_s` / `start_s` after launch (drawn from the boot stream; alive, and billed, from
  launch). The policies of `autoscalers.py` set the number of units alive and not draining,
  always clamped to [min, max].
  Scale-in* stops starting units first (newest first, as a ReplicaSet deletes pending pods
  first), then idle ready units (newest first), then drains busy ones (fewest requests in
  service, then newest): a draining unit takes no new request and stops when empty.
  Scale-out* first takes back draining units (newest first: they are still running), then
  launches new ones; so units alive never exceed max.
- Scale from zero*: a request that finds no unit alive or starting starts one at once (even
  if the queue is full and it is rejected), whatever the policy (documented for the KPA; for
  the others it keeps a queue from being stranded when min is 0), and the fleet is never
  scaled below 1 while requests queue.
- Idle timeout (container `scaling.idle_timeout_s`): see `autoscalers.IdleTimeout`.
- k8s nodes: `nodes` fixed for the whole run, or ceil(units alive / pods_per_node) (at least 1)
  following the units at once, the newest node stopping first (LIFO); billed by
  `billing_pods.k8s_cost` with the control plane's hourly fee.
- Container billing (`ContainerPrices.billing`): instance: each unit's life (launch to stop,
  or the run's end) through `interval_billed_s` with the price's minimum and increment;
  request: each active period (from a unit's first request in service to when it has none),
  rounded up to the increment, at least the minimum, summed as each period closes (so a
  period's rounding may reach up to max(increment, minimum) past the run's end*); execution: `execution_gb_s` of the requests
  served (ok or timeout) arriving in the window. Every mode adds the request fee of the
  accepted requests arriving in the window.
"""
from __future__ import annotations

import math
from bisect import insort
from collections import deque

import numpy as np

from ..billing import Cost
from ..billing_pods import container_cost, execution_gb_s, interval_billed_s, k8s_cost
from ..config import ContainerServiceConfig, K8sFunctionConfig, KnativeKpa, OpenFaasRps
from ..metrics import OK, REJECTED, TIMEOUT
from ..pricing import Pricing
from ..streams import RequestDraws
from ..tally import LevelTally
from .autoscalers import IdleTimeout, KpaScaler, OpenFaasRpsScaler, TargetTracking
from .base import Chunk, Platform, fleet_levels

STARTING, READY, DRAINING, STOPPED = range(4)
_NO_END = float(np.finfo(float).max)  # the window's end while the run goes on (periods close before it)


class _Unit:
    """One pod or container instance."""

    __slots__ = ("id", "launched_s", "ready_s", "stopped_s", "state", "busy", "active_s", "idle_s",
                 "timer_s")

    def __init__(self, id_: int, launched_s: float, ready_s: float, state: int):
        self.id = id_
        self.launched_s = launched_s
        self.ready_s = ready_s      # when it became (or will become) ready
        self.stopped_s: float | None = None
        self.state = state
        self.busy = 0
        self.active_s = 0.0         # start of the current active period (busy >= 1)
        self.idle_s = launched_s    # start of the current idle period
        self.timer_s: float | None = None  # its pending idle-timeout timer, if any

    @property
    def is_idle(self) -> bool:
        return self.state == READY and self.busy == 0


def _key(u: _Unit) -> int:
    return u.id


class PodModel(Platform):
    """The shared model; `K8sFunctionModel` and `ContainerServiceModel` add scaling and billing."""

    def __init__(self, env, cfg, warmup_s: float, period_s: float, *, start_dist, min_units: int,
                 max_units: int, boot_rng: np.random.Generator | None = None):
        super().__init__(env, warmup_s, period_s)
        self.cfg = cfg
        self.start_dist = start_dist
        self.boot_rng = boot_rng if boot_rng is not None else np.random.default_rng(0)
        self.conc = cfg.concurrency
        self.slots_per_unit = cfg.concurrency
        self.min_units = min_units
        self.max_units = max_units
        self.queue_limit = cfg.queue_limit
        self.timeout_ms = cfg.request_timeout_s * 1000.0
        self.queue: deque = deque()
        self.ready_units: list[_Unit] = []  # ready, oldest first
        self.starting_units: list[_Unit] = []  # launch order
        self.draining_units: list[_Unit] = []
        self.lives: list[tuple[float, float]] = []  # (launch, stop) of stopped units
        self.actions: list[tuple[float, str, int]] = []  # (time, reason, units after)
        self._next_id = 0
        self.alive = 0
        self.busy = 0
        self.alive_tally = LevelTally(warmup_s, period_s)
        self.busy_tally = LevelTally(warmup_s, period_s)
        self.in_system_tally = LevelTally(warmup_s, period_s)
        self.scaler = None
        self.idle_timeout: IdleTimeout | None = None
        self.in_flight = self.busy_all = self.ready_slots = None
        self._close_period = None  # set by a billing that needs active periods
        for _ in range(min_units):
            u = self._new_unit(0.0, READY)
            self.ready_units.append(u)

    def _attach(self, scaler, idle_timeout_s: float | None) -> None:
        """Install the scaling policy (and the idle timeout) and the tallies they need, from t=0."""
        self.scaler = scaler
        for name in getattr(scaler, "needs", ()):
            setattr(self, name, LevelTally(0.0))
        if self.ready_slots is not None:
            self.ready_slots.set(0.0, len(self.ready_units) * self.conc)
        if idle_timeout_s is not None:
            self.idle_timeout = IdleTimeout(self, idle_timeout_s)
            for u in self.ready_units:
                self.idle_timeout.on_idle(u)

    # -- the fleet (autoscalers.Fleet) ---------------------------------------------------
    @property
    def units(self) -> int:
        return len(self.ready_units) + len(self.starting_units)

    @property
    def ready(self) -> int:
        return len(self.ready_units)

    @property
    def starting(self) -> int:
        return len(self.starting_units)

    @property
    def in_system(self) -> int:
        return self.busy + len(self.queue)

    def _new_unit(self, ready_s: float, state: int) -> _Unit:
        now = self.env.now
        u = _Unit(self._next_id, now, ready_s, state)
        self._next_id += 1
        self.alive += 1
        self.alive_tally.set(now, self.alive)
        self._alive_changed()
        return u

    def _alive_changed(self) -> None:
        """Hook: the number of units alive changed (k8s nodes follow it)."""

    def scale_to(self, n: int, reason: str) -> None:
        floor = max(self.min_units, 1 if self.queue else 0)
        n = min(max(n, floor), self.max_units)
        cur = self.units
        if n == cur:
            return
        now = self.env.now
        if n > cur:
            k = n - cur
            while k and self.draining_units:
                self._make_ready(self.draining_units.pop())
                k -= 1
            for _ in range(k):
                self._launch()
        else:
            k = cur - n
            while k and self.starting_units:
                self._stop(self.starting_units.pop())
                k -= 1
            if k:
                for u in [u for u in reversed(self.ready_units) if u.busy == 0][:k]:
                    self.stop_idle(u)
                    k -= 1
            if k:
                for u in sorted(self.ready_units, key=lambda u: (u.busy, -u.id))[:k]:
                    self._drain(u)
        self.actions.append((now, reason, self.units))

    def stop_idle(self, u: _Unit) -> None:
        self.ready_units.remove(u)
        if self.ready_slots is not None:
            self.ready_slots.add(self.env.now, -self.conc)
        self._stop(u)

    def _launch(self) -> None:
        now = self.env.now
        start_s = float(self.start_dist.ppf(self.boot_rng.random(1))[0])
        u = self._new_unit(now + start_s, STARTING)
        self.starting_units.append(u)
        ev = self.env.timeout(start_s, u)
        ev.callbacks.append(self._became_ready)

    def _became_ready(self, ev) -> None:
        u = ev._value
        if u.state != STARTING:  # stopped while starting
            return
        self.starting_units.remove(u)
        u.ready_s = self.env.now
        self._make_ready(u)

    def _make_ready(self, u: _Unit) -> None:
        """`u` (new, or draining and taken back) serves from now: it takes queued requests."""
        now = self.env.now
        u.state = READY
        insort(self.ready_units, u, key=_key)
        if self.ready_slots is not None:
            self.ready_slots.add(now, self.conc)
        queue = self.queue
        while u.busy < self.conc and queue:
            self._start(u, *queue.popleft())
        if u.busy == 0:
            u.idle_s = now
            if self.idle_timeout is not None:
                self.idle_timeout.on_idle(u)

    def _drain(self, u: _Unit) -> None:
        self.ready_units.remove(u)
        if self.ready_slots is not None:
            self.ready_slots.add(self.env.now, -self.conc)
        u.state = DRAINING
        self.draining_units.append(u)

    def _stop(self, u: _Unit) -> None:
        now = self.env.now
        u.state = STOPPED
        u.stopped_s = now
        self.lives.append((u.launched_s, now))
        self.alive -= 1
        self.alive_tally.set(now, self.alive)
        self._alive_changed()

    # -- requests ------------------------------------------------------------------------
    def prepare(self, t_arr: np.ndarray, draws: RequestDraws) -> Chunk:
        return Chunk(t_arr, self.cfg.service.service_ms.ppf(draws.warm), None, None, draws.routing)

    def arrive(self, chunk: Chunk, j: int) -> None:
        now = self.env.now
        if self.scaler is not None:
            self.scaler.on_arrival(now)
        best = self._least_busy()
        if best is None and not self.starting_units and not self.ready_units:
            self.scale_to(1, "scale from zero")
            best = self._least_busy()  # a draining unit taken back may have a free slot
        if best is not None:
            self._start(best, chunk, j)
            return
        if len(self.queue) >= self.queue_limit:
            chunk.status[j] = REJECTED
            self.resolved(chunk)
            return
        self.queue.append((chunk, j))
        self._in_system_changed(now)

    def _least_busy(self) -> _Unit | None:
        """The ready unit with a free slot and the fewest requests in service, ties to the oldest."""
        best = None
        conc = self.conc
        for u in self.ready_units:  # oldest first: the first of the least busy wins ties
            b = u.busy
            if b < conc and (best is None or b < best.busy):
                best = u
                if b == 0:
                    break
        return best

    def _in_system_changed(self, now: float) -> None:
        n = self.busy + len(self.queue)
        self.in_system_tally.set(now, n)
        if self.in_flight is not None:
            self.in_flight.set(now, n)

    def _start(self, u: _Unit, chunk: Chunk, j: int) -> None:
        """A slot of `u` starts request j of `chunk` now (the request has left the queue)."""
        now = self.env.now
        t = chunk.t[j]
        work_ms = chunk.work_ms[j]
        latency_ms = (now - t) * 1000.0 + work_ms
        chunk.latency_ms[j] = latency_ms
        chunk.done_s[j] = now + work_ms / 1000.0
        if latency_ms > self.timeout_ms:
            chunk.status[j] = TIMEOUT
        if t < u.ready_s:
            chunk.cold[j] = True
        if u.busy == 0:
            u.active_s = now
        u.busy += 1
        self.busy += 1
        self.busy_tally.set(now, self.busy)
        if self.busy_all is not None:
            self.busy_all.set(now, self.busy)
        self._in_system_changed(now)
        ev = self.env.timeout(work_ms / 1000.0, u)
        ev.callbacks.append(self._complete)
        self.resolved(chunk)

    def _complete(self, ev) -> None:
        u = ev._value
        now = self.env.now
        u.busy -= 1
        self.busy -= 1
        self.busy_tally.set(now, self.busy)
        if self.busy_all is not None:
            self.busy_all.set(now, self.busy)
        if u.state == READY and self.queue:
            self._start(u, *self.queue.popleft())
            return
        self._in_system_changed(now)
        if u.busy == 0:
            if self._close_period is not None:
                self._close_period(u.active_s, now)
            if u.state == DRAINING:
                self.draining_units.remove(u)
                self._stop(u)
            else:
                u.idle_s = now
                if self.idle_timeout is not None:
                    self.idle_timeout.on_idle(u)
        if self._empty is not None:
            self._maybe_empty()

    # -- results -------------------------------------------------------------------------
    def account(self, chunk: Chunk, keep: np.ndarray) -> None:
        pass

    def close(self, end_s: float) -> None:
        for t in (self.alive_tally, self.busy_tally, self.in_system_tally):
            t.close(end_s)

    def unit_lives(self, end_s: float) -> list[tuple[float, float]]:
        """(launch, stop) of every unit, those still alive stopping at `end_s`."""
        alive = self.ready_units + self.starting_units + self.draining_units
        return self.lives + [(u.launched_s, end_s) for u in alive]

    def levels(self, end_s: float, n_periods: int) -> dict:
        return fleet_levels(self.alive_tally, self.busy_tally, self.in_system_tally, self.conc, end_s, n_periods)


class K8sFunctionModel(PodModel):
    kind = "k8s-function"

    def __init__(self, env, cfg: K8sFunctionConfig, warmup_s: float, period_s: float,
                 boot_rng: np.random.Generator | None = None):
        self.open_nodes: list[float] = []   # launch times of the nodes up, oldest first
        self.node_lives: list[tuple[float, float]] = []
        super().__init__(env, cfg, warmup_s, period_s, start_dist=cfg.pod_start_s,
                         min_units=cfg.min_replicas, max_units=cfg.max_replicas, boot_rng=boot_rng)
        a = cfg.autoscaler
        if isinstance(a, OpenFaasRps):
            scaler = OpenFaasRpsScaler(self, a)
        elif isinstance(a, KnativeKpa):
            scaler = KpaScaler(self, a, scale_to_zero=a.scale_to_zero and cfg.min_replicas == 0)
        else:
            raise TypeError(f"unknown autoscaler {type(a).__name__}")
        self._attach(scaler, None)
        self._alive_changed()

    def _alive_changed(self) -> None:
        if self.cfg.nodes is not None:
            return
        now = self.env.now
        want = max(1, math.ceil(self.alive / self.cfg.pods_per_node))
        nodes = self.open_nodes
        while len(nodes) < want:
            nodes.append(now)
        while len(nodes) > want:
            self.node_lives.append((nodes.pop(), now))

    def node_launches(self, end_s: float) -> list[tuple[float, float]]:
        if self.cfg.nodes is not None:
            return [(0.0, end_s)] * self.cfg.nodes
        return self.node_lives + [(s, end_s) for s in self.open_nodes]

    def cost(self, pricing: Pricing, end_s: float) -> Cost:
        cfg = self.cfg
        return k8s_cost(pricing=pricing, node_instance_type=cfg.node_instance_type,
                        node_launches=self.node_launches(end_s), window=(self.warmup_s, end_s),
                        control_plane_usd_per_hour=cfg.control_plane_usd_per_hour)


class ContainerServiceModel(PodModel):
    kind = "container-service"

    def __init__(self, env, cfg: ContainerServiceConfig, warmup_s: float, period_s: float,
                 boot_rng: np.random.Generator | None = None):
        super().__init__(env, cfg, warmup_s, period_s, start_dist=cfg.start_s,
                         min_units=cfg.min_instances, max_units=cfg.max_instances, boot_rng=boot_rng)
        s = cfg.scaling
        if s.metric == "concurrency":
            if s.kpa is None:
                raise ValueError(f"platform {cfg.name!r}: scaling metric concurrency needs `kpa`")
            scaler = KpaScaler(self, s.kpa, scale_to_zero=s.kpa.scale_to_zero and cfg.min_instances == 0)
        elif s.metric == "cpu":
            if s.tracking is None:
                raise ValueError(f"platform {cfg.name!r}: scaling metric cpu needs `tracking`")
            scaler = TargetTracking(self, s.tracking)
        else:
            raise ValueError(f"platform {cfg.name!r}: unknown scaling metric {s.metric!r}")
        self._attach(scaler, s.idle_timeout_s)
        self.billed_active_s = 0.0
        self.execution_gb_s = 0.0
        self.billed_requests = 0
        if cfg.prices.billing == "request":
            self._close_period = self._bill_period

    def _bill_period(self, start_s: float, end_s: float) -> None:
        p = self.cfg.prices
        self.billed_active_s += interval_billed_s(start_s, end_s, (self.warmup_s, _NO_END),
                                                  minimum_s=p.minimum_s, increment_s=p.increment_s)

    def account(self, chunk: Chunk, keep: np.ndarray) -> None:
        status = np.asarray(chunk.status, dtype=np.int8)
        self.billed_requests += int(np.count_nonzero(keep & (status != REJECTED)))
        if self.cfg.prices.billing == "execution":
            served = keep & ((status == OK) | (status == TIMEOUT))
            if served.any():
                work = np.asarray(chunk.work_ms, dtype=float)[served]
                self.execution_gb_s += execution_gb_s(work, self.cfg.memory_gb, self.cfg.prices)

    def cost(self, pricing: Pricing, end_s: float) -> Cost:
        cfg = self.cfg
        p = cfg.prices
        window = (self.warmup_s, end_s)
        billed_s = 0.0
        if p.billing == "instance":
            billed_s = sum(interval_billed_s(s, e, window, minimum_s=p.minimum_s, increment_s=p.increment_s)
                           for s, e in self.unit_lives(end_s))
        elif p.billing == "request":
            billed_s = self.billed_active_s + sum(
                interval_billed_s(u.active_s, end_s, window, minimum_s=p.minimum_s, increment_s=p.increment_s)
                for u in self.ready_units + self.draining_units if u.busy > 0)
        return container_cost(prices=p, vcpu=cfg.vcpu, memory_gb=cfg.memory_gb, billed_s=billed_s,
                              execution_gb_s=self.execution_gb_s, requests=self.billed_requests)

"""EC2: a fleet of instances, each running `workers_per_instance` processes, behind a load balancer.

Model (DESIGN.md, "Platform semantics"):
- Each worker serves one request at a time, in FIFO order from its instance's queue
  (`least_outstanding`: the in-service instance with the fewest requests in service or waiting,
  ties broken uniformly at random; `round_robin`: in-service instances in turn) or from one
  queue shared by every worker of the fleet (`shared_queue`; an M/G/c system).
- A request finding its queue at `queue_limit` is rejected (503). A request answered after more
  than `request_timeout_s` is a timeout for the client; its worker still serves it in full, as a
  gunicorn worker does not know the client left. Timeouts are not in the latency percentiles.
- Target-tracking auto scaling (`AutoscalingConfig`): the metric is evaluated each period over
  in-service instances only (booting ones do not count); scale-out and scale-in need their
  numbers of consecutive breaching periods and respect the cooldown; scale-in never starts while
  instances are still booting. A launched instance is billed from launch and serves after its
  boot time; a scaled-in instance stops receiving requests, finishes what it has, and is
  terminated (billing stops) when it is empty.
- Idle effect (`EC2Service.idle`, when measured): a request's service time is multiplied by
  ``1 - (1 - hot_ratio) * exp(-idle / tau)``, idle being the time since its instance last had a
  request in service (0 when another of its workers is busy; a new instance is rested).
- Shared CPUs (`EC2Config.host`): the busy workers of an instance share its `host.cores`
  (`host.py`), each request a job capped at `host.work_cores`, stretched when the instance is
  oversubscribed and by `host.work_contention` per other busy worker (the idle effect scales
  the drawn duration first). Latency is the wait plus the stretched service; the request is
  resolved when it ends, its timeout judged on that latency.
- Billing: per second with a 60 s minimum per launch, plus the ALB (see `billing.py`).
"""
from __future__ import annotations

import math
from collections import deque

import numpy as np

from ..billing import Cost, ec2_cost
from ..config import EC2Config
from ..metrics import REJECTED, TIMEOUT
from ..pricing import Pricing
from ..streams import RequestDraws
from ..tally import LevelTally
from .base import Chunk, Platform, fleet_levels
from .host import Host, Job

BOOTING, IN_SERVICE, DRAINING, TERMINATED = range(4)


class _Instance:
    __slots__ = ("id", "launched_s", "terminated_s", "state", "busy", "queue", "free_s", "host")

    def __init__(self, id_: int, launched_s: float, host: Host | None = None):
        self.id = id_
        self.launched_s = launched_s
        self.terminated_s: float | None = None
        self.state = BOOTING
        self.busy = 0
        self.queue: deque = deque()
        self.free_s = -math.inf  # when a request of it last finished (never: rested)
        self.host = host  # its shared CPUs (None: a CPU per worker)


class EC2Model(Platform):
    kind = "ec2"

    def __init__(self, env, cfg: EC2Config, warmup_s: float, period_s: float,
                 boot_rng: np.random.Generator | None = None):
        super().__init__(env, warmup_s, period_s)
        self.cfg = cfg
        self.workers = cfg.workers_per_instance
        idle = cfg.service.idle
        self.idle_deficit = idle.deficit if idle is not None else None
        self.idle_tau_s = idle.tau_s if idle is not None else None
        self.timeout_ms = cfg.request_timeout_s * 1000.0
        self.shared = cfg.load_balancer == "shared_queue"
        self.lor = cfg.load_balancer == "least_outstanding"
        self.shared_queue: deque = deque()
        self.instances: list[_Instance] = []
        self.serving: list[_Instance] = []
        self.booting = 0
        self.rr = 0
        self.busy = 0
        self.queued = 0
        self.alive_tally = LevelTally(warmup_s, period_s)
        self.busy_tally = LevelTally(warmup_s, period_s)
        self.in_system_tally = LevelTally(warmup_s, period_s)
        self.boot_rng = boot_rng
        self.autoscaling = cfg.autoscaling
        if self.autoscaling is not None:
            a = self.autoscaling
            initial = a.initial_instances if a.initial_instances is not None else max(a.min_instances, cfg.instances)
            initial = min(max(initial, a.min_instances), a.max_instances)
            # Tallies from t=0 over in-service instances, for the scaling metric.
            self._as_busy = LevelTally(0.0)
            self._as_capacity = LevelTally(0.0)
            self._as_arrivals = 0
            self.actions: list[tuple[float, str, int]] = []
        else:
            initial = cfg.instances
        for _ in range(initial):
            self._in_service(self._launch())
        if self.autoscaling is not None:
            env.process(self._autoscaler())

    # -- fleet ---------------------------------------------------------------------------
    def _launch(self) -> _Instance:
        host = Host(self.env, self.cfg.host.cores) if self.cfg.host is not None else None
        inst = _Instance(len(self.instances), self.env.now, host)
        self.instances.append(inst)
        self.alive_tally.add(self.env.now, 1)
        return inst

    def _in_service(self, inst: _Instance) -> None:
        inst.state = IN_SERVICE
        self.serving.append(inst)
        if self.autoscaling is not None:
            self._as_capacity.add(self.env.now, self.workers)
        if self.shared:
            while inst.busy < self.workers and self.shared_queue:
                self.queued -= 1  # it leaves the queue (as in _complete)
                self._start(inst, *self.shared_queue.popleft())

    def _booted(self, ev) -> None:
        inst = ev._value
        self.booting -= 1
        self._in_service(inst)

    def _drain(self, inst: _Instance) -> None:
        inst.state = DRAINING
        self.serving.remove(inst)
        if self.autoscaling is not None:
            self._as_capacity.add(self.env.now, -self.workers)
        if inst.busy == 0 and not inst.queue:
            self._terminate(inst)

    def _terminate(self, inst: _Instance) -> None:
        inst.state = TERMINATED
        inst.terminated_s = self.env.now
        self.alive_tally.add(self.env.now, -1)

    # -- requests ------------------------------------------------------------------------
    def prepare(self, t_arr: np.ndarray, draws: RequestDraws) -> Chunk:
        return Chunk(t_arr, self.cfg.service.service_ms.ppf(draws.warm), None, None, draws.routing)

    @property
    def in_system(self) -> int:
        return self.busy + self.queued

    def _choose(self, u: float) -> _Instance | None:
        serving = self.serving
        n = len(serving)
        if n == 0:
            return None
        if self.lor:
            best = None
            ties = []
            for inst in serving:
                load = inst.busy + len(inst.queue)
                if best is None or load < best:
                    best = load
                    ties = [inst]
                elif load == best:
                    ties.append(inst)
            return ties[min(int(u * len(ties)), len(ties) - 1)]
        self.rr = (self.rr + 1) % n
        return serving[self.rr]

    def arrive(self, chunk: Chunk, j: int) -> None:
        now = self.env.now
        if self.autoscaling is not None:
            self._as_arrivals += 1
        if self.shared:
            for inst in self.serving:
                if inst.busy < self.workers:
                    self._start(inst, chunk, j)
                    return
            if len(self.shared_queue) >= self.cfg.queue_limit:
                self._reject(chunk, j)
                return
            self.shared_queue.append((chunk, j))
        else:
            inst = self._choose(chunk.route[j])
            if inst is None:
                self._reject(chunk, j)
                return
            if inst.busy < self.workers:
                self._start(inst, chunk, j)
                return
            if len(inst.queue) >= self.cfg.queue_limit:
                self._reject(chunk, j)
                return
            inst.queue.append((chunk, j))
        self.queued += 1
        self.in_system_tally.set(now, self.busy + self.queued)

    def _reject(self, chunk: Chunk, j: int) -> None:
        chunk.status[j] = REJECTED
        self.resolved(chunk)

    def _start(self, inst: _Instance, chunk: Chunk, j: int) -> None:
        """Worker of `inst` starts request j of `chunk` now."""
        now = self.env.now
        if self.idle_deficit is not None:
            idle_s = now - inst.free_s if inst.busy == 0 else 0.0
            chunk.work_ms[j] *= 1.0 - self.idle_deficit * math.exp(-idle_s / self.idle_tau_s)
        work_ms = chunk.work_ms[j]
        if inst.host is not None:
            self._occupy(inst, now)
            host = self.cfg.host
            inst.host.submit(((work_ms, host.work_cores, None, host.work_contention),), self._shared_done,
                             (inst, chunk, j, now))
            return
        latency_ms = (now - chunk.t[j]) * 1000.0 + work_ms
        done_s = now + work_ms / 1000.0
        chunk.latency_ms[j] = latency_ms
        chunk.done_s[j] = done_s
        if latency_ms > self.timeout_ms:
            chunk.status[j] = TIMEOUT
        self._occupy(inst, now)
        ev = self.env.timeout(work_ms / 1000.0, inst)
        ev.callbacks.append(self._complete)
        self.resolved(chunk)

    def _occupy(self, inst: _Instance, now: float) -> None:
        """A worker of `inst` becomes busy now."""
        inst.busy += 1
        self.busy += 1
        self.busy_tally.set(now, self.busy)
        self.in_system_tally.set(now, self.busy + self.queued)
        if self.autoscaling is not None:
            self._as_busy.add(now, 1)

    def _shared_done(self, job: Job) -> None:
        """The request of a job on an instance's shared CPUs ends now, its service stretched."""
        inst, chunk, j, start_s = job.tag
        (work_ms,) = job.durations_ms
        chunk.work_ms[j] = work_ms
        latency_ms = (start_s - chunk.t[j]) * 1000.0 + work_ms
        chunk.latency_ms[j] = latency_ms
        chunk.done_s[j] = self.env.now
        if latency_ms > self.timeout_ms:
            chunk.status[j] = TIMEOUT
        self.resolved(chunk)
        self._free(inst)

    def _complete(self, ev) -> None:
        self._free(ev._value)

    def _free(self, inst: _Instance) -> None:
        """A worker of `inst` finished its request now."""
        now = self.env.now
        inst.free_s = now
        inst.busy -= 1
        self.busy -= 1
        self.busy_tally.set(now, self.busy)
        if self.autoscaling is not None:
            self._as_busy.add(now, -1)
        nxt = None
        if inst.queue:
            nxt = inst.queue.popleft()
        elif self.shared and inst.state == IN_SERVICE and self.shared_queue:
            nxt = self.shared_queue.popleft()
        if nxt is not None:
            self.queued -= 1
            self._start(inst, *nxt)
            return
        self.in_system_tally.set(now, self.busy + self.queued)
        if inst.state == DRAINING and inst.busy == 0:
            self._terminate(inst)
        if self._empty is not None:
            self._maybe_empty()

    # -- auto scaling --------------------------------------------------------------------
    def _autoscaler(self):
        a = self.autoscaling
        env = self.env
        period = a.metric_period_s
        out_streak = in_streak = 0
        last_action_s = -math.inf
        prev_busy = prev_cap = 0.0
        prev_arrivals = 0
        while True:
            yield env.timeout(period)
            now = env.now
            self._as_busy.close(now)
            self._as_capacity.close(now)
            d_busy = self._as_busy.area - prev_busy
            d_cap = self._as_capacity.area - prev_cap
            d_arr = self._as_arrivals - prev_arrivals
            prev_busy, prev_cap, prev_arrivals = self._as_busy.area, self._as_capacity.area, self._as_arrivals
            n = len(self.serving)
            if a.metric == "cpu":
                metric = d_busy / d_cap if d_cap > 0 else 0.0
            else:
                mean_instances = d_cap / (self.workers * period)
                metric = d_arr / mean_instances if mean_instances > 0 else float(d_arr)
            if metric > a.target:
                out_streak += 1
                in_streak = 0
            elif metric < a.target * a.scale_in_ratio:
                in_streak += 1
                out_streak = 0
            else:
                out_streak = in_streak = 0
            if now - last_action_s < a.cooldown_s:
                continue
            desired = math.ceil(max(n, 1) * metric / a.target - 1e-9)
            desired = min(max(desired, a.min_instances), a.max_instances)
            capacity = n + self.booting
            if out_streak >= a.scale_out_periods and desired > capacity:
                for _ in range(desired - capacity):
                    inst = self._launch()
                    self.booting += 1
                    boot_s = float(a.boot_s.ppf(self.boot_rng.random(1))[0])
                    ev = env.timeout(boot_s, inst)
                    ev.callbacks.append(self._booted)
                self.actions.append((now, "scale_out", desired))
                last_action_s = now
                out_streak = 0
            elif in_streak >= a.scale_in_periods and self.booting == 0 and desired < n:
                victims = sorted(self.serving, key=lambda i: (i.busy + len(i.queue), -i.id))[: n - desired]
                for inst in victims:
                    self._drain(inst)
                self.actions.append((now, "scale_in", desired))
                last_action_s = now
                in_streak = 0

    # -- results -------------------------------------------------------------------------
    def account(self, chunk: Chunk, keep: np.ndarray) -> None:
        pass  # EC2 bills instance time and the ALB, not requests

    def close(self, end_s: float) -> None:
        for t in (self.alive_tally, self.busy_tally, self.in_system_tally):
            t.close(end_s)

    def launches(self, end_s: float) -> list[tuple[float, float]]:
        return [(i.launched_s, i.terminated_s if i.terminated_s is not None else end_s) for i in self.instances]

    def cost(self, pricing: Pricing, end_s: float, arrivals_per_period: np.ndarray | None = None) -> Cost:
        cfg = self.cfg
        window = (self.warmup_s, end_s)
        kw = {}
        if cfg.load_balancer_billed:
            per_hour = max(1, int(round(3600.0 / self.period_s)))
            n_periods = max(1, math.ceil((end_s - self.warmup_s) / self.period_s))
            arr = np.zeros(n_periods)
            if arrivals_per_period is not None:
                k = min(n_periods, arrivals_per_period.size)
                arr[:k] = arrivals_per_period[:k]
            active = self.in_system_tally.per_period(n_periods, end_s)
            hours = math.ceil(n_periods / per_hour)
            pad = hours * per_hour - n_periods
            arr = np.concatenate([arr, np.zeros(pad)]).reshape(hours, per_hour)
            active = np.concatenate([active, np.zeros(pad)]).reshape(hours, per_hour)
            kw = dict(alb_requests_per_hour=arr.sum(axis=1), alb_mean_active_connections=active.mean(axis=1),
                      bytes_per_request=(cfg.request_kb + cfg.response_kb) * 1024.0)
        return ec2_cost(pricing=pricing, instance_type=cfg.instance_type, launches=self.launches(end_s),
                        window=window, **kw)

    def levels(self, end_s: float, n_periods: int) -> dict:
        return fleet_levels(self.alive_tally, self.busy_tally, self.in_system_tally, self.workers, end_s, n_periods)

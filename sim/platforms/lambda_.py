"""AWS Lambda: execution environments that serve one request at a time.

Model (DESIGN.md, "Platform semantics"):
- An arriving request takes an idle environment, provisioned ones first, chosen by the reuse
  policy (`pools.py`). With none idle it starts a new environment: a cold start, whose latency is
  `cold_init_ms` then the invocation.
- Throttling (HTTP 429, counted as rejected): when `concurrency_limit` requests are already in
  flight, or when a cold start finds the scaling token bucket empty (`scale_burst` tokens,
  refilled continuously at `scale_refill_per_s`; AWS: 1000 environments per 10 s per function).
- An environment idle for its keep-alive (a constant, or a draw per idle period tied to the
  request that started the idle period) is reclaimed, exactly then. Each environment has at
  most one pending expiry timer: when it fires on an environment that was used meanwhile it is
  re-armed for the new deadline (so the event heap holds one timer per environment, not one
  per request). Provisioned environments are initialised
  before the run, never cold for a request, and never reclaimed.
- An invocation longer than `timeout_s` is stopped at the timeout (billed in full, status
  timeout) and its environment is discarded (AWS resets the runtime after a timeout).
- Idle effect (`LambdaService.idle`, when measured): a warm invocation's duration is multiplied
  by ``1 - (1 - hot_ratio) * exp(-idle / tau)``, idle being the time since its environment's
  previous invocation finished; a cold start's first invocation and a provisioned environment's
  first are rested (factor 1). The billed duration is the multiplied one.
- No queueing: a request's latency is known when it arrives. Network and front-door overheads
  are not modelled; add them to `warm_ms` if you measured them end to end.
- Shared host (`LambdaConfig.host`, a local target): every environment runs on one host whose
  CPUs are shared (`host.py`): a cold start's INIT is a job capped at `init_cores`, its
  invocation (and a warm one) a job capped at `work_cores`; both stretch when the host is
  oversubscribed, and an invocation also by its `work_contention` per other job in progress
  (the idle effect scales the drawn duration first). The request is resolved when
  its job ends, with the stretched durations as latency and billed durations; the environment is
  busy until then. The timeout applies to the stretched invocation (stopped `timeout_s` after it
  started, billed `timeout_s`).
- Way in (`HostShare.way_in_ms` > 0, with a shared host): the job starts with the gateway's
  work for the request, a phase of `way_in_ms` alone on `WAY_IN_CORES` core with the
  invocation's contention and `way_in_pressure` as its pressure on the others; the INIT (on a
  cold start) and the invocation follow. The environment is taken at the arrival and busy
  through all of it; the way in is neither in the latency nor in the bill.
- Cold host (`HostShare.init_idle_s`, with a shared host): an INIT starting when no INIT is in
  progress on the host and the last INIT phase on it ended at least `init_idle_s` earlier
  starts a page-in of (`init_idle_factor` - 1) times its drawn duration: the job waits for it
  in a phase of cap 0 (no cores; pressure 0) before its INIT. Every INIT starting before the
  page-in ends waits for the rest of it (the files come back once, for all). The host starts
  warm (its idle time counts from the run's start); the host tells when each INIT phase ends
  (the invocation after it does not count), and an INIT is in progress from its request's
  arrival. The recorded and billed INIT is the wait plus the actual INIT. Provisioned
  environments' INITs (before the run) do not count.
- Billing: each invocation's duration rounded up to 1 ms, INIT added before rounding on a cold
  start when `init_billed`; invocations on provisioned environments at the PC duration rate;
  the provisioned environments' own INIT (once each, at the mean of `cold_init_ms`; AWS's
  periodic recycling of them is not modelled) at that rate too.
"""
from __future__ import annotations

import math

import numpy as np

from ..billing import Cost, lambda_billed_sums, lambda_cost
from ..config import LambdaConfig
from ..dists import Distribution
from ..metrics import OK, THROTTLED, TIMEOUT
from ..pricing import Pricing
from ..streams import RequestDraws
from ..tally import LevelTally
from .base import Chunk, Platform
from .host import Host, Job
from .pools import POOLS

WAY_IN_CORES = 1.0
"""The gateway's and the emulator's handling of one request runs on one core (`HostShare.way_in_ms`)."""


class _Env:
    """One execution environment."""

    __slots__ = ("id", "created_s", "provisioned", "idle", "expires_s", "timer_s", "gen", "free_s")

    def __init__(self, id_: int, created_s: float, provisioned: bool):
        self.id = id_
        self.created_s = created_s
        self.provisioned = provisioned
        self.idle = False
        self.expires_s = 0.0  # end of the current idle period's keep-alive
        self.timer_s: float | None = None  # when its one pending expiry timer fires, if any
        self.gen = 0  # bumped when a timer is armed: an older pending timer is superseded
        self.free_s = -math.inf  # when its last invocation finished (never: rested)


class LambdaModel(Platform):
    kind = "lambda"

    def __init__(self, env, cfg: LambdaConfig, warmup_s: float, period_s: float):
        super().__init__(env, warmup_s, period_s)
        self.cfg = cfg
        self.timeout_ms = cfg.timeout_s * 1000.0
        self.keep_dist: Distribution | None = None if isinstance(cfg.keep_alive_s, (int, float)) else cfg.keep_alive_s
        self.keep_const_s = float(cfg.keep_alive_s) if self.keep_dist is None else None
        idle = cfg.service.idle
        self.idle_deficit = idle.deficit if idle is not None else None
        self.idle_tau_s = idle.tau_s if idle is not None else None
        self.idle = POOLS[cfg.reuse]()
        self.pc_idle = POOLS[cfg.reuse]()
        self.host = Host(env, cfg.host.cores) if cfg.host is not None else None
        self.init_idle_s = cfg.host.init_idle_s if cfg.host is not None else None
        self.inits = 0  # INIT phases in progress on the host (counted with a cold host only)
        self.last_init_end_s = env.now  # when the last INIT phase on the host ended (it starts warm)
        self.page_in_until_s = -math.inf  # the end of the cold host's current page-in
        self.busy = 0
        self.alive = 0
        self.tokens = float(cfg.scale_burst)
        self.tokens_at_s = 0.0
        self._next_id = 0
        self.alive_tally = LevelTally(warmup_s, period_s)
        self.busy_tally = LevelTally(warmup_s, period_s)
        self.invocations = 0
        self.billed_ms_on_demand = 0
        self.billed_ms_provisioned = 0
        for _ in range(cfg.provisioned_concurrency):
            self.pc_idle.add(self._new_env(provisioned=True))
        self.alive_tally.set(0.0, self.alive)

    def _new_env(self, provisioned: bool) -> _Env:
        e = _Env(self._next_id, self.env.now, provisioned)
        self._next_id += 1
        self.alive += 1
        return e

    def prepare(self, t_arr: np.ndarray, draws: RequestDraws) -> Chunk:
        svc = self.cfg.service
        keep = self.keep_dist.ppf(draws.keepalive) if self.keep_dist is not None else None
        chunk = Chunk(t_arr, svc.warm_ms.ppf(draws.warm), svc.cold_init_ms.ppf(draws.cold), keep, draws.routing)
        chunk.extra["provisioned"] = [False] * t_arr.size
        return chunk

    @property
    def in_system(self) -> int:
        return self.busy

    def arrive(self, chunk: Chunk, j: int) -> None:
        now = self.env.now
        cfg = self.cfg
        if self.busy >= cfg.concurrency_limit:
            chunk.status[j] = THROTTLED
            self.resolved(chunk)
            return
        u = chunk.route[j]
        e = self.pc_idle.pick(u) if self.cfg.provisioned_concurrency else None
        if e is None:
            e = self.idle.pick(u)
        init_ms = 0.0
        if e is None:
            tokens = self.tokens + (now - self.tokens_at_s) * cfg.scale_refill_per_s
            self.tokens = tokens if tokens < cfg.scale_burst else float(cfg.scale_burst)
            self.tokens_at_s = now
            if self.tokens < 1.0:
                chunk.status[j] = THROTTLED
                self.resolved(chunk)
                return
            self.tokens -= 1.0
            e = self._new_env(provisioned=False)
            self.alive_tally.set(now, self.alive)
            init_ms = chunk.init_ms[j]
            chunk.cold[j] = True
        else:
            e.idle = False
            if e.provisioned:
                chunk.extra["provisioned"][j] = True
            if self.idle_deficit is not None:
                chunk.work_ms[j] *= 1.0 - self.idle_deficit * math.exp(-(now - e.free_s) / self.idle_tau_s)
        work_ms = chunk.work_ms[j]
        if self.host is not None:
            self._run_shared(chunk, j, e, init_ms)
            return
        timed_out = work_ms > self.timeout_ms
        if timed_out:
            work_ms = self.timeout_ms
            chunk.status[j] = TIMEOUT
        latency_ms = init_ms + work_ms
        latency_s = latency_ms / 1000.0
        chunk.latency_ms[j] = latency_ms
        chunk.done_s[j] = now + latency_s
        self.busy += 1
        self.busy_tally.set(now, self.busy)
        keep_s = self.keep_const_s if self.keep_dist is None else chunk.keep_s[j]
        ev = self.env.timeout(latency_s, (e, keep_s, timed_out))
        ev.callbacks.append(self._complete)
        self.resolved(chunk)

    def _run_shared(self, chunk: Chunk, j: int, e: _Env, init_ms: float) -> None:
        """Request j runs on environment `e` of the shared host: its way in (when the host has
        one), INIT (on a cold start), then the invocation, as one job; it is resolved when the job
        ends (`_shared_done`). A cold host counts the INIT in progress from the arrival."""
        cfg = self.cfg
        now = self.env.now
        self.busy += 1
        self.busy_tally.set(now, self.busy)
        keep_s = self.keep_const_s if self.keep_dist is None else chunk.keep_s[j]
        share = cfg.host
        invoke = (chunk.work_ms[j], share.work_cores, self.timeout_ms, share.work_contention)
        way_in = ((share.way_in_ms, WAY_IN_CORES, None, share.work_contention, share.way_in_pressure),) \
            if share.way_in_ms > 0.0 else ()
        tag = (chunk, j, e, keep_s)
        if not chunk.cold[j]:
            self.host.submit(way_in + (invoke,), self._shared_done, tag)
            return
        on_phase = None
        wait = ()
        if self.init_idle_s is not None:  # a cold host: the first INITs after a while wait for a page-in
            wait_ms = 0.0
            if self.inits == 0 and now - self.last_init_end_s >= self.init_idle_s:
                wait_ms = (share.init_idle_factor - 1.0) * init_ms
                self.page_in_until_s = now + wait_ms / 1000.0
            elif now < self.page_in_until_s:
                wait_ms = (self.page_in_until_s - now) * 1000.0
            if wait_ms > 0.0:  # no cores, pressing on nobody
                wait = ((wait_ms, 0.0, None, 0.0, 0.0),)
            self.inits += 1
            on_phase = self._phase_done
        self.host.submit(way_in + wait + ((init_ms, share.init_cores, None), invoke), self._shared_done, tag, on_phase)

    def _phase_done(self, job: Job, k: int) -> None:
        """Phase k of a cold start ended (with a cold host): the one before the last is its INIT."""
        if k != len(job.phases) - 2:
            return
        self.inits -= 1
        self.last_init_end_s = self.env.now

    def _shared_done(self, job: Job) -> None:
        chunk, j, e, keep_s = job.tag
        ran_ms = job.durations_ms[1:] if self.cfg.host.way_in_ms > 0.0 else job.durations_ms  # not the way in
        if chunk.cold[j]:
            *init, work_ms = ran_ms  # (a cold host's page-in wait, then) the INIT
            init_ms = sum(init)
            chunk.init_ms[j] = init_ms
        else:
            init_ms = 0.0
            (work_ms,) = ran_ms
        if job.timed_out:
            chunk.status[j] = TIMEOUT
            if chunk.work_ms[j] < work_ms:  # stretched past the timeout: billed in full
                chunk.work_ms[j] = work_ms
        else:
            chunk.work_ms[j] = work_ms
        chunk.latency_ms[j] = init_ms + work_ms
        chunk.done_s[j] = self.env.now
        self.resolved(chunk)
        self._free(e, keep_s, job.timed_out)

    def _complete(self, ev) -> None:
        self._free(*ev._value)

    def _free(self, e: _Env, keep_s: float, timed_out: bool) -> None:
        """Environment `e` finished its invocation now."""
        now = self.env.now
        e.free_s = now
        self.busy -= 1
        self.busy_tally.set(now, self.busy)
        if self._empty is not None:
            self._maybe_empty()
        if e.provisioned:
            self.pc_idle.add(e)  # a timed-out provisioned environment is re-initialised by AWS, not lost
            return
        if timed_out:
            self.alive -= 1
            self.alive_tally.set(now, self.alive)
            return
        e.idle = True
        e.expires_s = now + keep_s
        self.idle.add(e)
        if e.timer_s is None or e.timer_s > e.expires_s:
            self._arm(e, e.expires_s)

    def _arm(self, e: _Env, at_s: float) -> None:
        e.gen += 1
        e.timer_s = at_s
        ev = self.env.timeout(at_s - self.env.now, (e, e.gen))
        ev.callbacks.append(self._expire)

    def _expire(self, ev) -> None:
        e, gen = ev._value
        if e.gen != gen:  # superseded by an earlier timer armed since
            return
        armed_for = e.timer_s
        e.timer_s = None
        if not e.idle:  # busy: its completion arms a timer for the next idle period
            return
        if e.expires_s > armed_for:  # used and idled again since: wait for the new deadline
            self._arm(e, e.expires_s)
            return
        e.idle = False
        self.idle.remove(e)
        self.alive -= 1
        self.alive_tally.set(self.env.now, self.alive)

    def account(self, chunk: Chunk, keep: np.ndarray) -> None:
        status = np.asarray(chunk.status, dtype=np.int8)
        served = (status == OK) | (status == TIMEOUT)
        served &= keep
        n, pc, od = lambda_billed_sums(served, np.asarray(chunk.work_ms, dtype=float), self.timeout_ms,
                                       np.asarray(chunk.init_ms, dtype=float) if self.cfg.init_billed else None,
                                       np.asarray(chunk.cold, dtype=bool),
                                       np.asarray(chunk.extra["provisioned"], dtype=bool))
        self.invocations += n
        self.billed_ms_provisioned += pc
        self.billed_ms_on_demand += od

    def close(self, end_s: float) -> None:
        self.alive_tally.close(end_s)
        self.busy_tally.close(end_s)

    def cost(self, pricing: Pricing, end_s: float) -> Cost:
        cfg = self.cfg
        pc_init_ms = 0
        if cfg.provisioned_concurrency:
            pc_init_ms = cfg.provisioned_concurrency * int(math.ceil(cfg.service.cold_init_ms.mean()))
        return lambda_cost(pricing=pricing, architecture=cfg.architecture, memory_mb=cfg.memory_mb,
                           invocations=self.invocations, billed_ms_on_demand=self.billed_ms_on_demand,
                           billed_ms_provisioned=self.billed_ms_provisioned + pc_init_ms,
                           provisioned_concurrency=cfg.provisioned_concurrency,
                           window_s=max(0.0, end_s - self.warmup_s))

    def levels(self, end_s: float, n_periods: int) -> dict:
        alive = self.alive_tally.mean(end_s)
        busy = self.busy_tally.mean(end_s)
        return {"instances_mean": alive, "instances_max": self.alive_tally.max_level,
                "busy_mean": busy, "in_system_mean": busy,
                "utilization": busy / alive if alive > 0 else 0.0,
                "instances_series": self.alive_tally.per_period(n_periods, end_s),
                "busy_series": self.busy_tally.per_period(n_periods, end_s)}

"""Scaling policies of pods and container instances (`pods.py`), each a small class the model calls.

A policy reads the fleet through the `Fleet` interface and changes it only through
`Fleet.scale_to`; it wakes on its own SimPy timeouts (evaluation intervals, ticks, metric
periods, timers), never per request, except for the O(1) `on_arrival` hook some policies use to
count arrivals. Evaluation times are k * interval from t=0 (computed, not accumulated, so they
do not drift).

- `OpenFaasRpsScaler`: the OpenFaaS CE requests-per-second alert (Prometheus + AlertManager).
  The rate at an evaluation is the count of arrivals in (now - rate_window_s, now] divided by
  rate_window_s (Prometheus's extrapolation is not modelled). The alert is pending from the first
  evaluation above the threshold and fires at the first evaluation at least for_s later (at once
  when for_s is 0); its first notification is sent group_wait_s later (at once when 0), the next
  ones every repeat_interval_s while it fires, each adding ceil(max * scale_factor_pct / 100) units to the
  units alive or starting (capped at max). The first evaluation at or under the threshold
  resolves it (or clears a pending alert) and the fleet goes back to its minimum.
- `KpaScaler`: Knative's KPA, concurrency mode (see `sim.config.KnativeKpa`). In-flight requests
  (in service + queued at the gateway) are time-averaged exactly, per tick, from a tally; the
  stable window is round(stable_window_s / tick_s) ticks, the panic window
  max(1, round(that * panic_window_pct / 100)) ticks (both shorter at the start of the run).
  Rate limits and the panic threshold are computed as Knative does (ready pods counted as at
  least 1; the threshold on the unclamped panic wanted pods). Wanted 0 (no request in flight
  over the stable window, scale to zero allowed) leaves one unit and arms a timer: the last unit
  goes scale_to_zero_grace_s later if no request arrived meanwhile and none is in flight.
  Scale from zero on arrival is done by the model for every policy (a request queued with no
  unit alive or starting starts one at once).
- `TargetTracking`: EC2-style target tracking (`sim.config.AutoscalingConfig`) on the busy-slot
  fraction of the ready units (metric cpu) or the arrivals per ready unit per period
  (requests_per_instance): consecutive breaching periods, cooldown, no scale-in while units are
  starting. Its min/max are the fleet's; its `boot_s` and `initial_instances` are not used
  (the service's own start time and minimum are).
- `IdleTimeout`: a unit idle (ready, no request in service) for idle_timeout_s is stopped when
  the fleet is above its minimum; each unit has at most one pending timer, re-armed lazily.
"""
from __future__ import annotations

import math
from collections import deque
from typing import Protocol

import simpy

from ..config import AutoscalingConfig, KnativeKpa, OpenFaasRps
from ..tally import LevelTally

_EPS = 1e-9


class Fleet(Protocol):
    """What a policy sees of the model."""

    env: simpy.Environment
    min_units: int
    max_units: int
    in_flight: LevelTally | None   # requests in service + queued, from t=0 (for Kpa)
    busy_all: LevelTally | None    # slots busy, from t=0 (for TargetTracking)
    ready_slots: LevelTally | None  # slots of ready units, from t=0 (for TargetTracking)
    slots_per_unit: int

    @property
    def units(self) -> int:
        """Units alive and not draining (starting or ready)."""

    @property
    def ready(self) -> int:
        """Units ready (serving, not draining)."""

    @property
    def starting(self) -> int:
        """Units starting."""

    @property
    def in_system(self) -> int:
        """Requests in service or queued."""

    def scale_to(self, n: int, reason: str) -> None:
        """Make `n` units alive and not draining (clamped to [min, max] by the model)."""

    def stop_idle(self, unit) -> None:
        """Stop one idle ready unit."""


def _ticks(env: simpy.Environment, interval_s: float):
    """Timeouts ending at k * interval_s, k = 1, 2, ... (no drift)."""
    k = 1
    while True:
        yield env.timeout(max(0.0, k * interval_s - env.now))
        k += 1


class OpenFaasRpsScaler:
    needs = ()

    def __init__(self, fleet: Fleet, cfg: OpenFaasRps):
        self.fleet = fleet
        self.cfg = cfg
        self.step = math.ceil(fleet.max_units * cfg.scale_factor_pct / 100.0 - _EPS)
        self.arrivals: deque[float] = deque()
        self.pending_since: float | None = None
        self.firing = False
        self.gen = 0  # bumped when the alert resolves: the pending repeat timer is void
        fleet.env.process(self._evaluate())

    def on_arrival(self, now: float) -> None:
        self.arrivals.append(now)

    def _evaluate(self):
        cfg = self.cfg
        env = self.env = self.fleet.env
        arrivals = self.arrivals
        for tick in _ticks(env, cfg.eval_interval_s):
            yield tick
            now = env.now
            lo = now - cfg.rate_window_s
            while arrivals and arrivals[0] <= lo:
                arrivals.popleft()
            rate = len(arrivals) / cfg.rate_window_s
            if rate > cfg.threshold_rps:
                if self.pending_since is None:
                    self.pending_since = now
                if not self.firing and now - self.pending_since >= cfg.for_s - _EPS:
                    self.firing = True
                    if cfg.group_wait_s > 0:
                        env.timeout(cfg.group_wait_s, self.gen).callbacks.append(self._repeat)
                    else:
                        self._notify()
            else:
                self.pending_since = None
                if self.firing:
                    self.firing = False
                    self.gen += 1
                    self.fleet.scale_to(self.fleet.min_units, "alert resolved")

    def _notify(self) -> None:
        fleet = self.fleet
        fleet.scale_to(min(fleet.units + self.step, fleet.max_units), "alert notification")
        ev = self.env.timeout(self.cfg.repeat_interval_s, self.gen)
        ev.callbacks.append(self._repeat)

    def _repeat(self, ev) -> None:
        if self.firing and ev._value == self.gen:
            self._notify()


class KpaScaler:
    needs = ("in_flight",)

    def __init__(self, fleet: Fleet, cfg: KnativeKpa, scale_to_zero: bool):
        self.fleet = fleet
        self.cfg = cfg
        self.scale_to_zero = scale_to_zero
        self.n_stable = max(1, round(cfg.stable_window_s / cfg.tick_s))
        self.n_panic = max(1, round(self.n_stable * cfg.panic_window_pct / 100.0))
        self.areas: deque[float] = deque(maxlen=self.n_stable)
        self.panic_since: float | None = None
        self.max_panic = 0
        self.last_arrival_s = -math.inf
        self.zero_at: float | None = None  # when the armed scale-to-zero timer fires
        self.panics: list[tuple[float, float | None]] = []  # (start, end) of panic periods
        fleet.env.process(self._run())

    def on_arrival(self, now: float) -> None:
        self.last_arrival_s = now

    @property
    def panicking(self) -> bool:
        return self.panic_since is not None

    def _run(self):
        cfg = self.cfg
        fleet = self.fleet
        env = fleet.env
        tally = fleet.in_flight
        areas = self.areas
        tu = cfg.target * cfg.target_utilization
        prev_area = 0.0
        for tick in _ticks(env, cfg.tick_s):
            yield tick
            now = env.now
            tally.close(now)
            areas.append(tally.area - prev_area)
            prev_area = tally.area
            stable_area = sum(areas)
            stable_avg = stable_area / (len(areas) * cfg.tick_s)
            panic_ticks = min(self.n_panic, len(areas))
            panic_avg = sum(areas[-k] for k in range(1, panic_ticks + 1)) / (panic_ticks * cfg.tick_s)
            ready = max(1, fleet.ready)
            dspc = math.ceil(stable_avg / tu - _EPS)
            dppc = math.ceil(panic_avg / tu - _EPS)
            max_up = math.ceil(cfg.max_scale_up_rate * ready - _EPS)
            max_down = math.floor(ready / cfg.max_scale_down_rate + _EPS)
            stable_want = min(max(dspc, max_down), max_up)
            panic_want = min(max(dppc, max_down), max_up)
            if dppc / ready >= cfg.panic_threshold_pct / 100.0:
                if self.panic_since is None:
                    self.panics.append((now, None))
                self.panic_since = now  # entering or extending the panic
            elif self.panic_since is not None and now - self.panic_since >= cfg.stable_window_s - _EPS:
                self.panic_since = None
                self.max_panic = 0
                self.panics[-1] = (self.panics[-1][0], now)
            want = stable_want
            if self.panic_since is not None:
                self.max_panic = max(self.max_panic, panic_want)
                want = self.max_panic  # never scales down while panicking
            if want == 0 and stable_area == 0.0 and self.scale_to_zero:
                if fleet.units > 1:
                    fleet.scale_to(1, "kpa")
                if fleet.units == 1 and self.zero_at is None:
                    self.zero_at = now + cfg.scale_to_zero_grace_s
                    ev = env.timeout(cfg.scale_to_zero_grace_s, now)
                    ev.callbacks.append(self._zero)
                continue
            fleet.scale_to(max(want, 1), "kpa")

    def _zero(self, ev) -> None:
        armed_s = ev._value
        self.zero_at = None
        fleet = self.fleet
        if self.last_arrival_s < armed_s and fleet.in_system == 0 and fleet.units <= 1:
            fleet.scale_to(0, "kpa scale to zero")


class TargetTracking:
    needs = ("busy_all", "ready_slots")

    def __init__(self, fleet: Fleet, cfg: AutoscalingConfig):
        self.fleet = fleet
        self.cfg = cfg
        self.arrivals = 0
        fleet.env.process(self._run())

    def on_arrival(self, now: float) -> None:
        self.arrivals += 1

    def _run(self):
        a = self.cfg
        fleet = self.fleet
        env = fleet.env
        busy, slots = fleet.busy_all, fleet.ready_slots
        out_streak = in_streak = 0
        last_action_s = -math.inf
        prev_busy = prev_slots = 0.0
        prev_arrivals = 0
        for tick in _ticks(env, a.metric_period_s):
            yield tick
            now = env.now
            busy.close(now)
            slots.close(now)
            d_busy, d_slots = busy.area - prev_busy, slots.area - prev_slots
            d_arr = self.arrivals - prev_arrivals
            prev_busy, prev_slots, prev_arrivals = busy.area, slots.area, self.arrivals
            if a.metric == "cpu":
                metric = d_busy / d_slots if d_slots > 0 else 0.0
            else:
                mean_units = d_slots / (fleet.slots_per_unit * a.metric_period_s)
                metric = d_arr / mean_units if mean_units > 0 else float(d_arr)
            if metric > a.target:
                out_streak, in_streak = out_streak + 1, 0
            elif metric < a.target * a.scale_in_ratio:
                in_streak, out_streak = in_streak + 1, 0
            else:
                out_streak = in_streak = 0
            if now - last_action_s < a.cooldown_s:
                continue
            n = fleet.ready
            desired = math.ceil(max(n, 1) * metric / a.target - _EPS)
            desired = min(max(desired, fleet.min_units), fleet.max_units)
            if out_streak >= a.scale_out_periods and desired > fleet.units:
                fleet.scale_to(desired, "target tracking out")
                last_action_s, out_streak = now, 0
            elif in_streak >= a.scale_in_periods and fleet.starting == 0 and desired < n:
                fleet.scale_to(desired, "target tracking in")
                last_action_s, in_streak = now, 0


class IdleTimeout:
    """Stops a unit idle for `idle_s` while the fleet is above its minimum (Cloud Run, Azure)."""

    def __init__(self, fleet: Fleet, idle_s: float):
        self.fleet = fleet
        self.idle_s = idle_s

    def on_idle(self, unit) -> None:
        """`unit` (ready) has just become idle: `unit.idle_s` is now."""
        if unit.timer_s is None:
            self._arm(unit, unit.idle_s + self.idle_s)

    def _arm(self, unit, at_s: float) -> None:
        env = self.fleet.env
        unit.timer_s = at_s
        ev = env.timeout(max(0.0, at_s - env.now), unit)
        ev.callbacks.append(self._fire)

    def _fire(self, ev) -> None:
        unit = ev._value
        unit.timer_s = None
        if not unit.is_idle:  # busy, draining or stopped: a later idle period arms again
            return
        deadline = unit.idle_s + self.idle_s
        if deadline > self.fleet.env.now + _EPS:  # used and idle again since: wait for the new deadline
            self._arm(unit, deadline)
            return
        if self.fleet.units > self.fleet.min_units:
            self.fleet.stop_idle(unit)

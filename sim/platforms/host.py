"""One host's CPUs shared by the jobs running on it: processor sharing with per-job caps.

Model (`sim.config.HostShare`): each job in progress would use `cap` cores alone and then take
its drawn duration. The host's `cores` are divided by water-filling: while the caps sum to at
most `cores` every job gets its cap; beyond that every job gets the same share, except that a
job whose cap is below the share keeps its cap and leaves the rest to the others. A job given
cores a of its cap progresses at rate a / cap (alone-seconds of work per second), so its
duration stretches by cap / a.

Contention: a phase may also have a contention c >= 0: it can use at most cap / (1 + c P) cores
(and so progresses at most at rate 1 / (1 + c P)), whatever cores are free, where P is the sum
of the pressures of the other jobs' current phases: the slowdown of work that shares more than
the CPUs (caches, memory bandwidth, the local gateway), linear in the other jobs, with no knee.
A phase's pressure (default 1) is how hard it presses on the others, against an ordinary job:
with every pressure 1, P = n - 1 for n jobs in progress (the same floats). The water-filling
then divides the cores over these reduced caps. c = 0 (the default): the plain cap.

A phase with cap 0 uses no cores: a wait (for a disk, say) that always progresses at rate 1 and,
with pressure 0, slows nobody.

A job is a sequence of phases (a Lambda cold start: INIT, then the invocation), each with its
own duration alone (ms), cap, optionally a time limit (ms), optionally a contention and then a
pressure (as above): a phase still running that long after its start is stopped and ends the
job (timed out). The owner gets a callback when a job ends, with each phase's actual duration, and
optionally one as each of its phases ends (the Lambda model's cold host needs when an INIT
phase ended, not its job).

Events, never polling: when a job starts or a phase ends, every job's remaining work is brought
up to date, the cores re-allocated, and one SimPy event scheduled for the next phase end; an
older pending event is superseded by a generation counter. O(n) per event (O(n log n) under
contention), for the few jobs (< 50) of one host.

Exactness: a job that has progressed at full speed (rate 1) all its life ends at the time and
with the durations it would have without sharing, computed the same way the platforms compute
them (start + (sum of its phase durations, ms) / 1000; events fire at exactly that time, via
an early event first where SimPy's now + delay cannot reach it, see `delay_until`), so an
uncontended host reproduces an unshared run bit for bit, ties between simultaneous events
aside. A job that was slowed finishes when its remaining work is within a few ulps of the clock
of zero (float noise), its durations measured on the clock.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import simpy

Phase = tuple  # (work_ms, cap_cores, limit_ms or None[, contention >= 0 (default 0)[, pressure >= 0 (default 1)]])


def delay_until(now: float, at_s: float) -> float:
    """A delay d >= 0 with now + d == at_s in floating point (SimPy schedules at now + delay), so an
    event fires at exactly `at_s`. Some times cannot be reached from a `now` below half of them
    (at_s - now is not a float, and both neighbours round away): then the largest delay whose
    time is below `at_s`, never after it. The host's event then comes a few ulps early, finds
    nothing ended and schedules again from there, where at_s - now is exact (Sterbenz)."""
    if at_s <= now:
        return 0.0
    d = at_s - now
    for _ in range(4):
        t = now + d
        if t == at_s:
            return d
        d = math.nextafter(d, math.inf if t < at_s else 0.0)
    while d > 0.0 and now + d >= at_s:
        d = math.nextafter(d, 0.0)
    return d


class Job:
    """A job in progress on a `Host` (read its outcome in the owner's callback)."""

    __slots__ = ("phases", "k", "cap", "contention", "remaining_s", "rate", "alloc", "full", "start_s",
                 "phase_start_s", "sum_ms", "full_end_s", "deadline_s", "durations_ms", "timed_out", "on_done",
                 "on_phase", "tag", "pressure")

    def __init__(self, phases: Sequence[Phase], on_done: Callable[[Job], None], tag: Any, now: float,
                 on_phase: Callable[[Job, int], None] | None = None):
        self.phases = phases
        self.on_done = on_done
        self.on_phase = on_phase
        self.tag = tag
        self.start_s = now
        self.full = True  # progressed at rate 1 over all its life so far
        self.sum_ms = 0.0  # durations of its finished phases (ms), summed left to right
        self.durations_ms: list[float] = []
        self.timed_out = False
        self.rate = 1.0
        self.alloc = 0.0
        self.k = -1
        self._next_phase(now)

    def _next_phase(self, now: float) -> None:
        self.k += 1
        phase = self.phases[self.k]
        work_ms, cap, limit_ms = phase[:3]
        self.cap = cap
        self.contention = phase[3] if len(phase) > 3 else 0.0
        self.pressure = phase[4] if len(phase) > 4 else 1.0
        self.remaining_s = work_ms / 1000.0
        self.phase_start_s = now
        self.deadline_s = math.inf if limit_ms is None else now + limit_ms / 1000.0
        ran_ms = work_ms if limit_ms is None or work_ms <= limit_ms else limit_ms
        self.full_end_s = self.start_s + (self.sum_ms + ran_ms) / 1000.0  # meaningful while full


class Host:
    """The CPUs (`cores`) of one host, shared by the jobs submitted to it."""

    def __init__(self, env: simpy.Environment, cores: float):
        self.env = env
        self.cores = cores
        self.jobs: list[Job] = []
        self.at_s = env.now  # time to which the jobs' remaining work is up to date
        self.gen = 0  # bumped when the next event is rescheduled: an older pending one is superseded
        self.allocated_core_s = 0.0  # core-seconds given to jobs so far
        self.demand_core_s = 0.0  # core-seconds of the work done by ended phases (work alone x cap)

    def submit(self, phases: Sequence[Phase], on_done: Callable[[Job], None], tag: Any = None,
               on_phase: Callable[[Job, int], None] | None = None) -> Job:
        """Start a job now; `on_done(job)` is called (from a later event, never from here) when it ends.
        With `on_phase`, `on_phase(job, k)` is called when its phase k ends (each phase, the last
        and a stopped one too), at that time, before the `on_done` calls of that event."""
        now = self.env.now
        self._advance(now)
        job = Job(phases, on_done, tag, now, on_phase)
        self.jobs.append(job)
        self._allocate()
        self._schedule(now)
        return job

    # -- internals ------------------------------------------------------------------------------
    def _advance(self, now: float) -> None:
        dt = now - self.at_s
        if dt > 0.0:
            core_s = 0.0
            for job in self.jobs:
                job.remaining_s -= job.rate * dt
                core_s += job.alloc * dt
                if job.rate < 1.0:
                    job.full = False
            self.allocated_core_s += core_s
        self.at_s = now

    def _allocate(self) -> None:
        """Water-filling: equal shares, a job never given more than its cap (reduced by its
        contention, see the module's docstring); a job's rate is the cores it gets over its cap."""
        jobs = self.jobs
        n = len(jobs)
        pressure = 0.0
        for job in jobs:
            pressure += job.pressure
        caps = [job.cap if job.contention == 0.0 else job.cap / (1.0 + job.contention * (pressure - job.pressure))
                for job in jobs]
        total = 0.0
        for cap in caps:
            total += cap
        if total <= self.cores * (1.0 + 1e-12):  # caps summing to the cores up to rounding: each gets its cap
            for job, cap in zip(jobs, caps):
                job.alloc = cap
                job.rate = cap / job.cap if job.cap else 1.0  # exactly 1.0 for an uncontended job (x / x)
            return
        left = self.cores
        for cap, job in sorted(zip(caps, jobs), key=lambda cj: cj[0]):
            share = left / n
            job.alloc = cap if cap <= share else share  # above the share: so are all caps after it, each the share
            job.rate = job.alloc / job.cap if job.cap else 1.0
            left -= job.alloc
            n -= 1

    @staticmethod
    def _tol_s(now: float) -> float:
        """Float noise of a remaining time at clock `now` (s)."""
        return 1e-12 + 8.0 * math.ulp(now)

    def _end_s(self, job: Job, now: float) -> float:
        """When the job's current phase ends at its current rate."""
        if job.full and job.rate == 1.0:
            return job.full_end_s
        end = now + job.remaining_s / job.rate
        return end if end < job.deadline_s else job.deadline_s

    def _phase_done(self, job: Job, now: float, tol: float) -> bool:
        """Ends the job's current phase if it is over; True if it was."""
        work_ms, _, limit_ms = job.phases[job.k][:3]
        if job.full:
            if job.full_end_s > now:
                return False
            timed_out = limit_ms is not None and work_ms > limit_ms
            ran_ms = limit_ms if timed_out else work_ms
        else:
            finished = job.remaining_s <= job.rate * tol
            timed_out = not finished and job.deadline_s <= now + tol
            if not (finished or timed_out):
                return False
            ran_ms = limit_ms if timed_out else (now - job.phase_start_s) * 1000.0
        # the work it did: all of it, or (stopped) all but what remains
        self.demand_core_s += (work_ms / 1000.0 - (job.remaining_s if timed_out else 0.0)) * job.cap
        job.durations_ms.append(ran_ms)
        job.sum_ms += ran_ms
        job.timed_out = timed_out
        return True

    def _schedule(self, now: float) -> None:
        if not self.jobs:
            return
        nxt = math.inf
        for job in self.jobs:
            end = self._end_s(job, now)
            if end < nxt:
                nxt = end
        self.gen += 1
        ev = self.env.timeout(delay_until(now, nxt), self.gen)
        ev.callbacks.append(self._on_event)

    def _on_event(self, ev) -> None:
        if ev._value != self.gen:  # superseded
            return
        now = self.env.now
        self._advance(now)
        tol = self._tol_s(now)
        ended: list[Job] = []
        phased: list[tuple[Job, int]] = []
        changed = True
        while changed:  # a phase ending frees cores or changes caps; zero-length phases end at once
            changed = False
            keep = []
            for job in self.jobs:
                while self._phase_done(job, now, tol):
                    changed = True
                    if job.on_phase is not None:
                        phased.append((job, job.k))
                    if job.timed_out or job.k + 1 == len(job.phases):
                        ended.append(job)
                        break
                    job._next_phase(now)
                else:
                    keep.append(job)
            self.jobs = keep
            self._allocate()
        self._schedule(now)
        for job, k in phased:  # the host is consistent: callbacks may submit jobs
            job.on_phase(job, k)
        for job in ended:
            job.on_done(job)

"""The EC2 half of the fast engine: `EC2Model` (sim/platforms/ec2.py) as one compiled loop.

It models exactly what the SimPy engine does with an `EC2Model` (same per-request status,
latency and completion time, same tallies, end time and bill, bit for bit) and is checked
against it request by request in tests/test_fast_ec2.py. What it keeps from the reference:

- **Draws.** Per chunk, in Python: the WARM and ROUTING streams of `RequestStreams` (the same
  generators; the COLD and KEEPALIVE ones do not affect EC2 and are not drawn), service times
  by `service_ms.ppf` of the whole chunk as `EC2Model.prepare` does; boot times from the BOOT
  stream, drawn in blocks (``Generator.random(k)`` is the stream of k calls of ``random(1)``)
  and mapped one by one through ``boot_s.ppf`` of a one-element array, as the reference does.
- **Event order.** SimPy's (time, id): one id counter in scheduling order for the arrival
  process's timeouts (one before each request later than the previous one), completions,
  boots, the autoscaler's periods, and the end of run (the `wait_empty` event, the timeout up
  to the horizon and the process's own end event: events at the end time scheduled after it
  are not processed, as in SimPy).
- **Arithmetic.** The same floating-point operations in the same order (an arrival's time is
  ``now + (t - now)``, a completion ``now + work_ms / 1000.0``), and the tallies are
  `common.tally_set` called in the order `EC2Model` calls `LevelTally.set`.
- **Idle effect** (`EC2Service.idle`). Each instance slot records when a request of it last
  finished (`last_done`: set on every completion, -inf at launch: a new instance is rested).
  Every start of service (`_serve`: from an arrival, the instance's queue or the shared queue)
  first multiplies the request's service time, in the ring, by ``1.0 - deficit *
  math.exp(-idle_s / tau_s)``, ``idle_s = now - last_done`` when no worker of the instance is
  busy, else 0.0: `EC2Model._start`'s operations in its order (`deficit` and `tau_s` are
  `IdleEffect.deficit` and `IdleEffect.tau_s` computed in Python; numba's ``math.exp`` is the C
  library's ``exp`` that Python's calls). Latency, completion time and the records' ``work_ms``
  read the scaled time. Without an idle effect `_serve` skips it on one flag.

Requests live in a ring buffer indexed by their position in the trace; queues are linked lists
through it (one per instance, or the shared one), so memory holds the chunks in flight only
(besides a few values per instance slot): a chunk is handed to the collector, in order, once
all its requests are resolved (started or rejected), as the reference engine's `pending` deque
does, with the service times as served (the ring's).

One deliberate difference: when a booting instance takes requests from the shared queue
(`shared_queue` with auto scaling), `EC2Model._in_service` does not decrement its `queued`
count, so in the reference the system never looks empty again and the run never ends. Here
the count is decremented (as `_complete` does); on every run the reference finishes, the two
agree exactly. A run that can truly never end (requests in the shared queue and no instance in
service or to come) raises RuntimeError, as the reference does when it runs out of events.

Everything per request runs in `_kernel`, one call per chunk, compiled without numba's
reference counting and never allocating; the driver (`_Run`) grows its buffers between calls
when the kernel asks (R_NEED).
"""
from __future__ import annotations

import math
import time
from collections import deque
from typing import Callable, Iterable

import numpy as np
from numba import njit

from ..config import EC2Config
from ..metrics import OK as _OK
from ..metrics import REJECTED as _REJECTED
from ..metrics import TIMEOUT as _TIMEOUT
from ..metrics import Collector
from ..platforms.ec2 import BOOTING as _BOOTING
from ..platforms.ec2 import DRAINING as _DRAINING
from ..platforms.ec2 import IN_SERVICE as _IN_SERVICE
from ..platforms.ec2 import TERMINATED as _TERMINATED
from ..platforms.ec2 import EC2Model
from ..streams import BOOT, ROUTING, WARM, generator
from ..tally import LevelTally
from .common import (T_AREA, T_LEVEL, heap_pop, heap_push, new_heap, new_tally, tally_close, tally_load, tally_set,
                     tally_step, tally_store, tally_to_python)

__all__ = ["unsupported", "run_ec2", "warm_up", "FastEC2Model"]

LB_LEAST_OUTSTANDING, LB_ROUND_ROBIN, LB_SHARED = 0, 1, 2
_LB = {"least_outstanding": LB_LEAST_OUTSTANDING, "round_robin": LB_ROUND_ROBIN, "shared_queue": LB_SHARED}

# Heap event kinds (the arrival process and the autoscaler have one pending event each, kept apart).
K_COMPLETE, K_BOOT = 0, 1
# The arrival process: running (no pending event), or waiting on one of its events.
M_RUN, M_ARRIVAL, M_WAIT_EMPTY, M_EMPTY, M_END, M_PROC_END, M_FINISHED = range(7)
# Kernel return codes.
R_CHUNK_DONE, R_FINISHED, R_NEED, R_HANG = range(4)
# Kernel modes.
MODE_FEED, MODE_FINISH, MODE_INIT = range(3)

# Integer state and parameters (one int64 array `I`).
(S_EID, S_BUSY, S_QUEUED, S_RR, S_BOOTING, S_NSERV, S_MAIN, S_MAIN_ID, S_AS_ID, S_HEAPN, S_J,
 S_OUT, S_IN, S_AS_ARR, S_PREV_ARR, S_SQ_HEAD, S_SQ_TAIL, S_SQ_LEN, S_BOOT_POS, S_BOOT_N, S_NACT,
 S_NINST, S_NFREE, S_OLDEST, S_INITIAL, S_IDLE, S_TIMED,
 P_WORKERS, P_QLIMIT, P_LB, P_AS, P_MIN, P_MAX, P_METRIC_CPU, P_OUT_PERIODS, P_IN_PERIODS, P_IDLE_EFFECT,
 I_SIZE) = range(38)
# Float state and parameters (one float64 array `X`; the idle effect's deficit and tau_s are 0.0
# without one).
(F_NOW, F_MAIN_T, F_AS_T, F_LAST_ACTION, F_PREV_BUSY, F_PREV_CAP, F_END, F_TCAP, F_NEED_T,
 Q_TIMEOUT_MS, Q_PERIOD, Q_TARGET, Q_IN_RATIO, Q_COOLDOWN, Q_IDLE_DEFICIT, Q_IDLE_TAU_S, X_SIZE) = range(17)
# Rows of the request ring: floats RF and ints RI.
R_T, R_WORK, R_ROUTE, R_LAT, R_DONE = range(5)
R_LINK, R_STATUS = range(2)
# Rows of the per-slot instance table.
I_STATE, I_BUSY, I_QHEAD, I_QTAIL, I_QLEN, I_ID, I_N = range(7)
# Rows of the tally table T (bins B for the first three).
TA_ALIVE, TA_BUSY, TA_INSYS, TA_AS_BUSY, TA_AS_CAP = range(5)

ACTION_NAMES = ("scale_out", "scale_in")


def unsupported(cfg: EC2Config) -> str | None:
    """None if the fast engine models `cfg` exactly, else the name of what it does not support."""
    if cfg.load_balancer not in _LB:
        return f"load_balancer {cfg.load_balancer!r}"
    return None


# -- the compiled model ----------------------------------------------------------------------
# Compiled without numba's reference counting (_nrt=False): the kernel never allocates, and the
# counting of array arguments would otherwise cost more than the model itself. The hot path
# (arrival, completion, start of service) is written out in `_kernel`; rare steps are functions.

@njit(cache=True, _nrt=False, inline="always")
def _next_id(I):
    eid = I[S_EID]
    I[S_EID] = eid + 1
    return eid


@njit(cache=True, _nrt=False)
def _push(I, ht, HI, t, kind, slot):
    n = I[S_HEAPN]
    heap_push(ht, HI[0], HI[1], n, t, _next_id(I), 2 * slot + kind)  # capacity ensured by the driver
    I[S_HEAPN] = n + 1


@njit(cache=True, _nrt=False, inline="always")
def _serve(s, g, now, busy, queued, eid, heapn, X, RF, RI, inst, last_done, ht, he, hc, T, B, autoscaling,
           idle_effect, tb, ti):
    """A worker of slot `s` starts request g now (EC2Model._start); its completion gets id `eid`
    (heap of `heapn` events). `tb` and `ti` are the busy and in-system tallies (`tally_step`).
    With `idle_effect`, the request's service time is first scaled by the instance's idle time.
    Returns the new number of busy workers and the two tallies."""
    i = g & (RF.shape[1] - 1)
    if idle_effect:
        idle_s = now - last_done[s] if inst[I_BUSY, s] == 0 else 0.0
        RF[R_WORK, i] *= 1.0 - X[Q_IDLE_DEFICIT] * math.exp(-idle_s / X[Q_IDLE_TAU_S])
    work_ms = RF[R_WORK, i]
    latency_ms = (now - RF[R_T, i]) * 1000.0 + work_ms
    done_s = now + work_ms / 1000.0
    RF[R_LAT, i] = latency_ms
    RF[R_DONE, i] = done_s
    RI[R_STATUS, i] = _TIMEOUT if latency_ms > X[Q_TIMEOUT_MS] else _OK
    inst[I_BUSY, s] += 1
    busy += 1
    tb = tally_step(tb, B[TA_BUSY], now, float(busy))
    ti = tally_step(ti, B[TA_INSYS], now, float(busy + queued))
    if autoscaling:
        tally_set(T[TA_AS_BUSY], B[0], now, T[TA_AS_BUSY, T_LEVEL] + 1.0)
    heap_push(ht, he, hc, heapn, done_s, eid, 2 * s + K_COMPLETE)  # capacity ensured by the driver
    return busy, tb, ti


@njit(cache=True, _nrt=False, inline="always")
def _reject(i, RF, RI):
    """The request at ring position i is rejected (503): no latency, no completion."""
    RI[R_STATUS, i] = _REJECTED
    RF[R_LAT, i] = np.nan
    RF[R_DONE, i] = np.nan


@njit(cache=True, _nrt=False)
def _start(s, g, I, X, RF, RI, inst, last_done, ht, HI, T, B):
    """`_serve` on the state kept in I, X and T (for the rare paths)."""
    I[S_BUSY], tb, ti = _serve(s, g, X[F_NOW], I[S_BUSY], I[S_QUEUED], I[S_EID], I[S_HEAPN], X, RF, RI, inst,
                               last_done, ht, HI[0], HI[1], T, B, I[P_AS] != 0, I[P_IDLE_EFFECT] != 0,
                               tally_load(T[TA_BUSY]), tally_load(T[TA_INSYS]))
    tally_store(T[TA_BUSY], tb)
    tally_store(T[TA_INSYS], ti)
    I[S_EID] += 1
    I[S_HEAPN] += 1


@njit(cache=True, _nrt=False)
def _terminate(s, I, X, inst, free, terminated, T, B):
    now = X[F_NOW]
    inst[I_STATE, s] = _TERMINATED
    terminated[inst[I_ID, s]] = now
    tally_set(T[TA_ALIVE], B[TA_ALIVE], now, T[TA_ALIVE, T_LEVEL] - 1.0)
    free[I[S_NFREE]] = s
    I[S_NFREE] += 1


@njit(cache=True, _nrt=False)
def _launch(I, X, inst, last_done, free, launched, terminated, T, B):
    """A new instance (billed from now, rested) in a free slot; returns the slot."""
    now = X[F_NOW]
    I[S_NFREE] -= 1
    s = free[I[S_NFREE]]
    iid = I[S_NINST]
    I[S_NINST] = iid + 1
    launched[iid] = now
    terminated[iid] = np.nan
    inst[I_STATE, s] = _BOOTING
    inst[I_BUSY, s] = 0
    inst[I_QLEN, s] = 0
    inst[I_ID, s] = iid
    last_done[s] = -np.inf
    tally_set(T[TA_ALIVE], B[TA_ALIVE], now, T[TA_ALIVE, T_LEVEL] + 1.0)
    return s


@njit(cache=True, _nrt=False)
def _in_service(s, I, X, RF, RI, inst, last_done, serving, ht, HI, T, B):
    now = X[F_NOW]
    inst[I_STATE, s] = _IN_SERVICE
    serving[I[S_NSERV]] = s
    I[S_NSERV] += 1
    if I[P_AS]:
        tally_set(T[TA_AS_CAP], B[0], now, T[TA_AS_CAP, T_LEVEL] + I[P_WORKERS])
    if I[P_LB] == LB_SHARED:
        mask = RF.shape[1] - 1
        while inst[I_BUSY, s] < I[P_WORKERS] and I[S_SQ_LEN] > 0:
            g = I[S_SQ_HEAD]
            I[S_SQ_HEAD] = RI[R_LINK, g & mask]
            I[S_SQ_LEN] -= 1
            I[S_QUEUED] -= 1  # EC2Model._in_service omits this (see the module docstring)
            _start(s, g, I, X, RF, RI, inst, last_done, ht, HI, T, B)


@njit(cache=True, _nrt=False)
def _drain(s, I, X, inst, serving, free, terminated, T, B):
    inst[I_STATE, s] = _DRAINING
    n = I[S_NSERV]
    k = 0
    while serving[k] != s:
        k += 1
    for m in range(k, n - 1):
        serving[m] = serving[m + 1]
    I[S_NSERV] = n - 1
    if I[P_AS]:
        tally_set(T[TA_AS_CAP], B[0], X[F_NOW], T[TA_AS_CAP, T_LEVEL] - I[P_WORKERS])
    if inst[I_BUSY, s] == 0 and inst[I_QLEN, s] == 0:
        _terminate(s, I, X, inst, free, terminated, T, B)


@njit(cache=True, _nrt=False, inline="always")
def _least_outstanding(u, n, inst, serving, ties):
    """EC2Model._choose for least_outstanding over the n > 0 instances in service: the least
    loaded, ties (in `serving` order, collected in `ties`) broken by the uniform u."""
    # One pass without branches on the loads (they are random: branches on them mispredict):
    # a lower load restarts the ties, an equal one is kept (a higher one is written past the
    # ties and not counted). The variable store index also keeps LLVM from vectorising the
    # loop into gathers, which cost more than the few instances they would save.
    best = inst[I_BUSY, serving[0]] + inst[I_QLEN, serving[0]]
    nt = 0
    for k in range(n):
        s = serving[k]
        load = inst[I_BUSY, s] + inst[I_QLEN, s]
        nt *= load >= best
        best = min(best, load)
        ties[nt] = s
        nt += load == best
    return ties[min(int(u * nt), nt - 1)]


@njit(cache=True, _nrt=False, inline="always")
def _record_action(I, X, act_t, act_i, now, kind, desired):
    """A scaling action (kind 0 scale out, 1 scale in) to the desired fleet size, at `now`."""
    k = I[S_NACT]
    act_t[k] = now
    act_i[0, k] = kind
    act_i[1, k] = desired
    I[S_NACT] = k + 1
    X[F_LAST_ACTION] = now

@njit(cache=True, _nrt=False)
def _autoscale(I, X, RF, RI, inst, last_done, serving, free, launched, terminated, ht, HI, T, B,
               boots, act_t, act_i, scratch):
    """One evaluation period of EC2Model._autoscaler (now is the period's end)."""
    now = X[F_NOW]
    period = X[Q_PERIOD]
    # LevelTally.close(now) on the two metric tallies: setting their own level is the same
    # (they have no bins, and their maximum is not read), and needs no allocation.
    tally_set(T[TA_AS_BUSY], B[0], now, T[TA_AS_BUSY, T_LEVEL])
    tally_set(T[TA_AS_CAP], B[0], now, T[TA_AS_CAP, T_LEVEL])
    d_busy = T[TA_AS_BUSY, T_AREA] - X[F_PREV_BUSY]
    d_cap = T[TA_AS_CAP, T_AREA] - X[F_PREV_CAP]
    d_arr = I[S_AS_ARR] - I[S_PREV_ARR]
    X[F_PREV_BUSY] = T[TA_AS_BUSY, T_AREA]
    X[F_PREV_CAP] = T[TA_AS_CAP, T_AREA]
    I[S_PREV_ARR] = I[S_AS_ARR]
    n = I[S_NSERV]
    if I[P_METRIC_CPU]:
        metric = d_busy / d_cap if d_cap > 0 else 0.0
    else:
        mean_instances = d_cap / (I[P_WORKERS] * period)
        metric = d_arr / mean_instances if mean_instances > 0 else float(d_arr)
    target = X[Q_TARGET]
    if metric > target:
        I[S_OUT] += 1
        I[S_IN] = 0
    elif metric < target * X[Q_IN_RATIO]:
        I[S_IN] += 1
        I[S_OUT] = 0
    else:
        I[S_OUT] = 0
        I[S_IN] = 0
    if now - X[F_LAST_ACTION] < X[Q_COOLDOWN]:
        return
    x = max(n, 1) * metric / target - 1e-9
    lo = I[P_MIN]
    hi = I[P_MAX]
    if x >= hi:  # clamped to hi anyway; keeps math.ceil within int64
        desired = hi
    else:
        desired = min(max(int(math.ceil(x)), lo), hi)
    capacity = n + I[S_BOOTING]
    if I[S_OUT] >= I[P_OUT_PERIODS] and desired > capacity:
        for _ in range(desired - capacity):
            s = _launch(I, X, inst, last_done, free, launched, terminated, T, B)
            I[S_BOOTING] += 1
            boot_s = boots[I[S_BOOT_POS]]
            I[S_BOOT_POS] += 1
            _push(I, ht, HI, now + boot_s, K_BOOT, s)
        _record_action(I, X, act_t, act_i, now, 0, desired)
        I[S_OUT] = 0
    elif I[S_IN] >= I[P_IN_PERIODS] and I[S_BOOTING] == 0 and desired < n:
        # Victims: sorted(serving, key=(busy + len(queue), -id))[: n - desired], loads read before
        # any drain. scratch: [candidates | keys | taken | victims], each of the slots' size.
        m = n - desired
        w = inst.shape[1]
        for k in range(n):
            s = serving[k]
            scratch[k] = s
            scratch[w + k] = inst[I_BUSY, s] + inst[I_QLEN, s]
            scratch[2 * w + k] = 0
        for v in range(m):
            b = -1
            for k in range(n):
                if scratch[2 * w + k]:
                    continue
                if (b < 0 or scratch[w + k] < scratch[w + b]
                        or (scratch[w + k] == scratch[w + b] and inst[I_ID, scratch[k]] > inst[I_ID, scratch[b]])):
                    b = k
            scratch[2 * w + b] = 1
            scratch[3 * w + v] = scratch[b]
        for v in range(m):
            _drain(scratch[3 * w + v], I, X, inst, serving, free, terminated, T, B)
        _record_action(I, X, act_t, act_i, now, 1, desired)
        I[S_IN] = 0


@njit(cache=True, _nrt=False)
def _main_end(I, X):
    """The arrival process after its last request (and wait_empty): wait up to the horizon, then end."""
    now = X[F_NOW]
    end = X[F_END] if X[F_END] >= now else now  # max(horizon or last_t, env.now)
    if end > now:
        I[S_MAIN] = M_END
        X[F_MAIN_T] = now + (end - now)
    else:
        I[S_MAIN] = M_PROC_END
        X[F_MAIN_T] = now
    I[S_MAIN_ID] = _next_id(I)


@njit(cache=True, _nrt=False)
def _oldest_unresolved(I, inst):
    """The trace index of the oldest request not yet resolved (queued, or not yet arrived)."""
    oldest = I[S_J]
    if I[S_SQ_LEN] > 0 and I[S_SQ_HEAD] < oldest:
        oldest = I[S_SQ_HEAD]
    for s in range(inst.shape[1]):
        if inst[I_QLEN, s] > 0 and inst[I_STATE, s] != _TERMINATED and inst[I_QHEAD, s] < oldest:
            oldest = inst[I_QHEAD, s]
    return oldest


@njit(cache=True, _nrt=False, inline="always")
def _save(I, X, T, now, busy, queued, eid, heapn, main, main_t, main_id, j, as_t, as_id, tb, ti):
    X[F_NOW] = now
    I[S_BUSY] = busy
    I[S_QUEUED] = queued
    I[S_EID] = eid
    I[S_HEAPN] = heapn
    I[S_MAIN] = main
    X[F_MAIN_T] = main_t
    I[S_MAIN_ID] = main_id
    I[S_J] = j
    X[F_AS_T] = as_t
    I[S_AS_ID] = as_id
    tally_store(T[TA_BUSY], tb)
    tally_store(T[TA_INSYS], ti)


@njit(cache=True, _nrt=False, inline="always")
def _load(I, X, T):
    return (X[F_NOW], I[S_BUSY], I[S_QUEUED], I[S_EID], I[S_HEAPN], I[S_MAIN], X[F_MAIN_T], I[S_MAIN_ID],
            I[S_J], X[F_AS_T], I[S_AS_ID], tally_load(T[TA_BUSY]), tally_load(T[TA_INSYS]))


@njit(cache=True, _nrt=False)
def _kernel(mode, g_end, I, X, RF, RI, inst, last_done, serving, free, launched, terminated, ht, HI, T, B,
            boots, act_t, act_i, scratch):
    """Advance the simulation. MODE_INIT: the initial fleet (and the autoscaler's first period);
    MODE_FEED: through the arrivals of trace indices < g_end; MODE_FINISH: to the end of the run.

    Returns R_CHUNK_DONE / R_FINISHED, R_NEED when the driver must grow a buffer before the next
    event (then call again: the state is consistent), or R_HANG when requests wait for an
    instance that can never come (the reference engine would never end).

    The hot state lives in locals (see `_load`), the busy and in-system tallies included; it is
    saved to I, X and T before any call that reads them and before returning, and loaded again
    after calls that change it."""
    if mode == MODE_INIT:
        for _ in range(I[S_INITIAL]):
            s = _launch(I, X, inst, last_done, free, launched, terminated, T, B)
            _in_service(s, I, X, RF, RI, inst, last_done, serving, ht, HI, T, B)
        if I[P_AS]:
            X[F_AS_T] = X[F_NOW] + X[Q_PERIOD]
            I[S_AS_ID] = _next_id(I)
        return R_CHUNK_DONE
    he = HI[0]
    hc = HI[1]
    mask = RF.shape[1] - 1
    autoscaling = I[P_AS] != 0
    idle_effect = I[P_IDLE_EFFECT] != 0
    lb = I[P_LB]
    workers = I[P_WORKERS]
    qlimit = I[P_QLIMIT]
    tcap = X[F_TCAP]
    now, busy, queued, eid, heapn, main, main_t, main_id, j, as_t, as_id, tb, ti = _load(I, X, T)
    while True:
        g = -1  # a request arriving now
        if main == M_RUN:
            if mode == MODE_FEED:
                # The arrival process walks the chunk: a timeout before each later request.
                if j == g_end:
                    _save(I, X, T, now, busy, queued, eid, heapn, main, main_t, main_id, j, as_t, as_id, tb, ti)
                    I[S_OLDEST] = _oldest_unresolved(I, inst)
                    return R_CHUNK_DONE
                d = RF[R_T, j & mask] - now
                if d > 0:
                    main = M_ARRIVAL
                    main_t = now + d
                    main_id = eid
                    eid += 1
                else:
                    g = j
            elif busy + queued > 0:
                main = M_WAIT_EMPTY
            else:
                _save(I, X, T, now, busy, queued, eid, heapn, main, main_t, main_id, j, as_t, as_id, tb, ti)
                _main_end(I, X)
                now, busy, queued, eid, heapn, main, main_t, main_id, j, as_t, as_id, tb, ti = _load(I, X, T)
        if g < 0:
            # The next event by (time, id): the heap's first, the arrival process's, the autoscaler's.
            src = -1
            bt = np.inf
            bi = 0
            if heapn > 0:
                src = 0
                bt = ht[0]
                bi = he[0]
            if main != M_WAIT_EMPTY and (src < 0 or main_t < bt or (main_t == bt and main_id < bi)):
                src = 1
                bt = main_t
                bi = main_id
            if autoscaling and (src < 0 or as_t < bt or (as_t == bt and as_id < bi)):
                src = 2
                bt = as_t
                bi = as_id
            if src < 0 or bt >= tcap:
                _save(I, X, T, now, busy, queued, eid, heapn, main, main_t, main_id, j, as_t, as_id, tb, ti)
                if src < 0:
                    return R_HANG
                X[F_NEED_T] = bt
                return R_NEED
            if src != 1 or main == M_ARRIVAL or main == M_END:
                I[S_TIMED] = 1  # a Timeout is processed: SimPy's clock is a float from now on
            if src == 0:
                code = hc[0]
                s = code >> 1
                heap_pop(ht, he, hc, heapn)
                heapn -= 1
                now = bt
                if code & 1 == K_BOOT:
                    _save(I, X, T, now, busy, queued, eid, heapn, main, main_t, main_id, j, as_t, as_id, tb, ti)
                    I[S_BOOTING] -= 1
                    _in_service(s, I, X, RF, RI, inst, last_done, serving, ht, HI, T, B)
                    now, busy, queued, eid, heapn, main, main_t, main_id, j, as_t, as_id, tb, ti = _load(I, X, T)
                    continue
                # A worker of slot s finishes (EC2Model._complete).
                last_done[s] = now
                inst[I_BUSY, s] -= 1
                busy -= 1
                tb = tally_step(tb, B[TA_BUSY], now, float(busy))
                if autoscaling:
                    tally_set(T[TA_AS_BUSY], B[0], now, T[TA_AS_BUSY, T_LEVEL] - 1.0)
                nxt = -1
                if inst[I_QLEN, s] > 0:
                    nxt = inst[I_QHEAD, s]
                    inst[I_QHEAD, s] = RI[R_LINK, nxt & mask]
                    inst[I_QLEN, s] -= 1
                elif lb == LB_SHARED and inst[I_STATE, s] == _IN_SERVICE and I[S_SQ_LEN] > 0:
                    nxt = I[S_SQ_HEAD]
                    I[S_SQ_HEAD] = RI[R_LINK, nxt & mask]
                    I[S_SQ_LEN] -= 1
                if nxt >= 0:
                    queued -= 1
                    busy, tb, ti = _serve(s, nxt, now, busy, queued, eid, heapn, X, RF, RI, inst, last_done, ht, he,
                                          hc, T, B, autoscaling, idle_effect, tb, ti)
                    eid += 1
                    heapn += 1
                    continue
                ti = tally_step(ti, B[TA_INSYS], now, float(busy + queued))
                if inst[I_STATE, s] == _DRAINING and inst[I_BUSY, s] == 0:
                    X[F_NOW] = now
                    _terminate(s, I, X, inst, free, terminated, T, B)
                if main == M_WAIT_EMPTY and busy + queued == 0:
                    # Platform._maybe_empty: the wait_empty event succeeds now.
                    main = M_EMPTY
                    main_t = now
                    main_id = eid
                    eid += 1
                continue
            if src == 1:
                now = bt
                if main == M_ARRIVAL:
                    main = M_RUN
                    g = j
                elif main == M_EMPTY:
                    _save(I, X, T, now, busy, queued, eid, heapn, main, main_t, main_id, j, as_t, as_id, tb, ti)
                    _main_end(I, X)
                    now, busy, queued, eid, heapn, main, main_t, main_id, j, as_t, as_id, tb, ti = _load(I, X, T)
                    continue
                elif main == M_END:
                    main = M_PROC_END
                    main_id = eid
                    eid += 1
                    continue
                else:  # M_PROC_END: env.run(until=proc) stops here
                    main = M_FINISHED
                    _save(I, X, T, now, busy, queued, eid, heapn, main, main_t, main_id, j, as_t, as_id, tb, ti)
                    I[S_OLDEST] = _oldest_unresolved(I, inst)
                    return R_FINISHED
            else:
                _save(I, X, T, now, busy, queued, eid, heapn, main, main_t, main_id, j, as_t, as_id, tb, ti)
                # Enough boot draws, free slots, instance records and action rows for one period.
                need = I[P_MAX]
                if (I[S_BOOT_N] - I[S_BOOT_POS] < need or I[S_NFREE] < need
                        or launched.size - I[S_NINST] < need or act_t.size - I[S_NACT] < 1):
                    X[F_NEED_T] = bt
                    return R_NEED
                if heapn == 0 and main == M_WAIT_EMPTY:
                    # Requests wait (in the shared queue, no instance in service), nothing runs
                    # or boots, no request arrives: after a period without activity the metric
                    # is 0 for ever, no instance is launched and the queue never empties.
                    I[S_IDLE] += 1
                    if I[S_IDLE] > 3:
                        return R_HANG
                else:
                    I[S_IDLE] = 0
                X[F_NOW] = bt
                _autoscale(I, X, RF, RI, inst, last_done, serving, free, launched, terminated, ht, HI, T, B,
                           boots, act_t, act_i, scratch)
                now, busy, queued, eid, heapn, main, main_t, main_id, j, as_t, as_id, tb, ti = _load(I, X, T)
                as_t = now + X[Q_PERIOD]
                as_id = eid
                eid += 1
                continue
        # Request g arrives now (EC2Model.arrive).
        j = g + 1
        i = g & mask
        if autoscaling:
            I[S_AS_ARR] += 1
        s = -1
        if lb == LB_SHARED:
            for k in range(I[S_NSERV]):
                if inst[I_BUSY, serving[k]] < workers:
                    s = serving[k]
                    break
            if s < 0:
                if I[S_SQ_LEN] >= qlimit:
                    _reject(i, RF, RI)
                    continue
                if I[S_SQ_LEN] == 0:
                    I[S_SQ_HEAD] = g
                else:
                    RI[R_LINK, I[S_SQ_TAIL] & mask] = g
                I[S_SQ_TAIL] = g
                I[S_SQ_LEN] += 1
        else:
            n = I[S_NSERV]
            if n == 0:
                _reject(i, RF, RI)
                continue
            if lb == LB_LEAST_OUTSTANDING:
                s = _least_outstanding(RF[R_ROUTE, i], n, inst, serving, scratch)
            else:
                rr = (I[S_RR] + 1) % n
                I[S_RR] = rr
                s = serving[rr]
            if inst[I_BUSY, s] >= workers:
                if inst[I_QLEN, s] >= qlimit:
                    _reject(i, RF, RI)
                    continue
                if inst[I_QLEN, s] == 0:
                    inst[I_QHEAD, s] = g
                else:
                    RI[R_LINK, inst[I_QTAIL, s] & mask] = g
                inst[I_QTAIL, s] = g
                inst[I_QLEN, s] += 1
                s = -1
        if s >= 0:
            busy, tb, ti = _serve(s, g, now, busy, queued, eid, heapn, X, RF, RI, inst, last_done, ht, he, hc, T, B,
                                  autoscaling, idle_effect, tb, ti)
            eid += 1
            heapn += 1
        else:
            queued += 1
            ti = tally_step(ti, B[TA_INSYS], now, float(busy + queued))


# -- the driver ------------------------------------------------------------------------------

def _pow2(n: int) -> int:
    return 1 << max(0, int(n) - 1).bit_length()


class FastEC2Model:
    """The outcome of a fast EC2 run, read as an `EC2Model` is (`levels`, `cost`, `launches`)."""

    kind = "ec2"
    levels = EC2Model.levels
    cost = EC2Model.cost

    def __init__(self, cfg: EC2Config, warmup_s: float, period_s: float, tallies: tuple[LevelTally, ...],
                 launched_s: np.ndarray, terminated_s: np.ndarray, actions: list[tuple[float, str, int]]):
        self.cfg = cfg
        self.warmup_s = warmup_s
        self.period_s = period_s
        self.workers = cfg.workers_per_instance
        self.alive_tally, self.busy_tally, self.in_system_tally = tallies
        self.launched_s = launched_s
        self.terminated_s = terminated_s
        self.actions = actions
        self.in_system = 0

    def launches(self, end_s: float) -> list[tuple[float, float]]:
        return [(float(a), float(b) if not math.isnan(b) else end_s)
                for a, b in zip(self.launched_s.tolist(), self.terminated_s.tolist())]


class _Run:
    """Buffers of one fast EC2 run, grown between kernel calls so the kernel never allocates."""

    def __init__(self, cfg: EC2Config, seed: int, warmup_s: float, period_s: float):
        self.cfg = cfg
        self.warmup_s = warmup_s
        self.period_s = period_s
        self.lb = _LB[cfg.load_balancer]
        self.warm_rng = generator(seed, WARM)        # RequestStreams' WARM stream
        self.route_rng = generator(seed, ROUTING)    # and its ROUTING stream
        a = cfg.autoscaling
        self.a = a
        if a is not None:
            initial = a.initial_instances if a.initial_instances is not None else max(a.min_instances, cfg.instances)
            initial = min(max(initial, a.min_instances), a.max_instances)
            self.boot_rng = generator(seed, BOOT)
            max_i = a.max_instances
        else:
            initial = cfg.instances
            max_i = 0
        self.I = I = np.zeros(I_SIZE, np.int64)
        self.X = X = np.zeros(X_SIZE)
        I[P_WORKERS] = cfg.workers_per_instance
        I[P_QLIMIT] = min(int(cfg.queue_limit), np.iinfo(np.int64).max)
        I[P_LB] = self.lb
        X[Q_TIMEOUT_MS] = cfg.request_timeout_s * 1000.0
        idle = cfg.service.idle
        if idle is not None:
            I[P_IDLE_EFFECT] = 1
            X[Q_IDLE_DEFICIT], X[Q_IDLE_TAU_S] = idle.deficit, idle.tau_s
        if a is not None:
            I[P_AS] = 1
            I[P_MIN], I[P_MAX] = a.min_instances, a.max_instances
            I[P_METRIC_CPU] = a.metric == "cpu"
            I[P_OUT_PERIODS], I[P_IN_PERIODS] = a.scale_out_periods, a.scale_in_periods
            X[Q_PERIOD], X[Q_TARGET] = a.metric_period_s, a.target
            X[Q_IN_RATIO], X[Q_COOLDOWN] = a.scale_in_ratio, a.cooldown_s
        I[S_INITIAL] = initial
        X[F_LAST_ACTION] = -math.inf
        I[S_MAIN] = M_RUN
        # Ring of the requests in flight, indexed by trace index & (capacity - 1).
        self.RF = np.zeros((5, 1))
        self.RI = np.zeros((2, 1), np.int64)
        self.g_next = 0                    # trace index of the next chunk's first request
        self.pending: deque = deque()      # (first index, t_arr) of the chunks not yet finalised
        # Instance slots (recycled after termination), instance records, heap.
        slots = max(4, initial + 2 * max_i + 1)
        self.inst = np.zeros((I_N, slots), np.int64)
        self.inst[I_STATE] = _TERMINATED
        self.last_done = np.full(slots, -np.inf)  # per slot: when a request of its instance last finished
        self.free = np.arange(slots - 1, -1, -1, dtype=np.int64)
        I[S_NFREE] = slots
        self.serving = np.zeros(slots, np.int64)
        self.scratch = np.zeros(4 * slots, np.int64)
        self.launched = np.zeros(max(16, initial + 2 * max_i))
        self.terminated = np.full(self.launched.size, np.nan)
        self.ht, he, hc = new_heap(self._heap_need(slots))
        self.HI = np.stack([he, hc])
        # Tallies: alive, busy, in system (with period bins), and the autoscaler's two (none).
        tal = [new_tally(warmup_s, period_s) for _ in range(3)] + [new_tally(0.0, None) for _ in range(2)]
        self.T = np.stack([ts for ts, _ in tal])
        self.B = np.zeros((3, 64))
        self._set_tcap()
        self.boots = np.zeros(0)
        self.act_t = np.zeros(16)
        self.act_i = np.zeros((2, 16), np.int64)
        self.call(MODE_INIT, 0)

    def _heap_need(self, slots: int) -> int:
        return slots * (self.cfg.workers_per_instance + 1) + 8  # completions and boots in flight

    def _set_tcap(self) -> None:
        # An event before tcap falls in a period bin < B.shape[1] - 1 (one bin of rounding margin).
        self.X[F_TCAP] = self.warmup_s + (self.B.shape[1] - 2) * self.period_s

    # -- buffers -----------------------------------------------------------------------------
    def _grow(self) -> None:
        """Grow whatever the kernel found short before its next event."""
        I, X = self.I, self.X
        if X[F_NEED_T] >= X[F_TCAP]:
            k = int((X[F_NEED_T] - self.warmup_s) // self.period_s) + 3
            size = self.B.shape[1]
            while size < k:
                size *= 2
            B = np.zeros((3, size))
            B[:, : self.B.shape[1]] = self.B
            self.B = B
            self._set_tcap()
        if self.a is None:
            return
        need = self.a.max_instances
        if I[S_BOOT_N] - I[S_BOOT_POS] < need:
            self._draw_boots(need)
        if I[S_NFREE] < need:
            old = self.inst.shape[1]
            new = 2 * old + need
            inst = np.zeros((I_N, new), np.int64)
            inst[I_STATE] = _TERMINATED
            inst[:, :old] = self.inst
            self.inst = inst
            last_done = np.full(new, -np.inf)
            last_done[:old] = self.last_done
            self.last_done = last_done
            free = np.empty(new, np.int64)
            nf = int(I[S_NFREE])
            free[:nf] = self.free[:nf]
            free[nf:nf + new - old] = np.arange(new - 1, old - 1, -1)
            self.free = free
            I[S_NFREE] = nf + new - old
            serving = np.zeros(new, np.int64)
            serving[:old] = self.serving
            self.serving = serving
            self.scratch = np.zeros(4 * new, np.int64)
            hn = int(I[S_HEAPN])
            ht = np.empty(self._heap_need(new))
            HI = np.empty((2, ht.size), np.int64)
            ht[:hn] = self.ht[:hn]
            HI[:, :hn] = self.HI[:, :hn]
            self.ht, self.HI = ht, HI
        if self.launched.size - I[S_NINST] < need:
            size = 2 * self.launched.size + need
            launched = np.zeros(size)
            terminated = np.full(size, np.nan)
            n = int(I[S_NINST])
            launched[:n] = self.launched[:n]
            terminated[:n] = self.terminated[:n]
            self.launched, self.terminated = launched, terminated
        if self.act_t.size - I[S_NACT] < 1:
            self.act_t = np.concatenate([self.act_t, np.zeros(self.act_t.size)])
            self.act_i = np.concatenate([self.act_i, np.zeros_like(self.act_i)], axis=1)

    def _draw_boots(self, need: int) -> None:
        """Boot times, as EC2Model draws them one launch at a time: ppf of ``boot_rng.random(1)``."""
        I = self.I
        left = self.boots[I[S_BOOT_POS]:I[S_BOOT_N]]
        k = max(64, 2 * need)
        u = self.boot_rng.random(k)  # the same stream as k calls of random(1)
        ppf = self.a.boot_s.ppf
        fresh = np.array([float(ppf(u[i:i + 1])[0]) for i in range(k)])
        self.boots = np.concatenate([left, fresh])
        I[S_BOOT_POS] = 0
        I[S_BOOT_N] = self.boots.size

    def _ensure_ring(self, n: int) -> None:
        """Room in the ring for the chunks in flight and n more requests; when it grows, room
        for n more again (a chunk is mostly fed while the end of the previous one is in flight,
        and each growth copies the ring)."""
        cap = self.RF.shape[1]
        lo = self.pending[0][0] if self.pending else self.g_next
        need = self.g_next + n - lo
        if need <= cap and cap > 1:
            return
        new = _pow2(max(need + n, 2 * cap, 1024))
        RF = np.zeros((5, new))
        RI = np.zeros((2, new), np.int64)
        if self.g_next > lo:
            g = np.arange(lo, self.g_next, dtype=np.int64)
            RF[:, g & (new - 1)] = self.RF[:, g & (cap - 1)]
            RI[:, g & (new - 1)] = self.RI[:, g & (cap - 1)]
        self.RF, self.RI = RF, RI

    def _slices(self, g0: int, n: int):
        """(ring slice, chunk slice) pairs for trace indices [g0, g0 + n): at most two."""
        cap = self.RF.shape[1]
        a = g0 & (cap - 1)
        if a + n <= cap:
            return [(slice(a, a + n), slice(0, n))]
        k = cap - a
        return [(slice(a, cap), slice(0, k)), (slice(0, n - k), slice(k, n))]

    # -- stepping ------------------------------------------------------------------------------
    def call(self, mode: int, g_end: int) -> int:
        while True:
            code = _kernel(mode, g_end, self.I, self.X, self.RF, self.RI, self.inst, self.last_done, self.serving,
                           self.free, self.launched, self.terminated, self.ht, self.HI, self.T, self.B,
                           self.boots, self.act_t, self.act_i, self.scratch)
            if code == R_NEED:
                self._grow()
                continue
            if code == R_HANG:
                raise RuntimeError(
                    f"EC2 platform {self.cfg.name!r}: requests wait in the shared queue with no instance in service "
                    "and none can be launched, so the run never ends (the SimPy engine would not end either)")
            return code

    def feed(self, t_arr: np.ndarray) -> None:
        n = t_arr.size
        work = np.asarray(self.cfg.service.service_ms.ppf(self.warm_rng.random(n)), dtype=float)
        route = self.route_rng.random(n) if self.lb == LB_LEAST_OUTSTANDING else None
        self._ensure_ring(n)
        RF = self.RF
        for dst, src in self._slices(self.g_next, n):
            RF[R_T, dst] = t_arr[src]
            RF[R_WORK, dst] = work[src]
            if route is not None:
                RF[R_ROUTE, dst] = route[src]
        self.pending.append((self.g_next, t_arr))
        self.g_next += n
        self.call(MODE_FEED, self.g_next)

    def finish(self, end_target_s: float) -> float:
        self.X[F_END] = end_target_s
        self.call(MODE_FINISH, self.g_next)
        return float(self.X[F_NOW])

    def finalise(self, collector: Collector) -> None:
        """Hand every chunk whose requests are all resolved to the collector, in order."""
        oldest = int(self.I[S_OLDEST])
        RF, RI = self.RF, self.RI
        while self.pending and self.pending[0][0] + self.pending[0][1].size <= oldest:
            g0, t_arr = self.pending.popleft()
            n = t_arr.size
            status = np.empty(n, np.int8)
            lat = np.empty(n)
            done = np.empty(n)
            work = np.empty(n) if collector.wants_records else None
            for src, dst in self._slices(g0, n):
                status[dst] = RI[R_STATUS, src]
                lat[dst] = RF[R_LAT, src]
                done[dst] = RF[R_DONE, src]
                if work is not None:
                    work[dst] = RF[R_WORK, src]  # as served: scaled by the idle effect, if any
            extra = None
            if work is not None:
                extra = {"work_ms": work, "init_ms": np.zeros(n)}
            collector.add_chunk(t_arr, status, np.zeros(n, dtype=bool), lat, done, extra)

    def model(self, end_s: float) -> FastEC2Model:
        tallies = []
        for k in range(3):
            bins = tally_close(self.T[k], self.B[k].copy(), float(end_s))
            lt = LevelTally(self.warmup_s, self.period_s)
            tally_to_python(self.T[k], bins, lt)
            tallies.append(lt)
        n = int(self.I[S_NINST])
        k = int(self.I[S_NACT])
        acts = [(t, ACTION_NAMES[a], d) for t, a, d in
                zip(self.act_t[:k].tolist(), self.act_i[0, :k].tolist(), self.act_i[1, :k].tolist())]
        return FastEC2Model(self.cfg, self.warmup_s, self.period_s, tuple(tallies),
                            self.launched[:n].copy(), self.terminated[:n].copy(), acts)


def run_ec2(cfg: EC2Config, chunks: Iterable[np.ndarray], *, seed: int, warmup_s: float, horizon_s: float | None,
            collector: Collector, progress: Callable[[int, float], None] | None = None) -> tuple[FastEC2Model, float]:
    """Same contract as `sim.engine_simpy.run` for an EC2Config: returns (model, end_s); `model`
    has ``.kind == "ec2"``, ``.levels(end_s, n_periods)`` and ``.cost(pricing, end_s,
    arrivals_per_period)`` as `EC2Model`, and every chunk is streamed, once all its requests are
    resolved, into ``collector.add_chunk`` in arrival order."""
    why = unsupported(cfg)
    if why is not None:
        raise ValueError(f"engine 'fast' does not support {why} (platform {cfg.name!r}); use engine: simpy")
    run = _Run(cfg, seed, warmup_s, collector.period_s)
    last_t = 0.0
    for t_arr in chunks:
        n = t_arr.size
        if n == 0:
            continue
        run.feed(t_arr)
        run.finalise(collector)
        last_t = float(t_arr[-1])
        if progress is not None:
            progress(n, last_t)
    end_s = run.finish(horizon_s if horizon_s is not None else last_t)
    if not run.I[S_TIMED]:
        end_s = 0  # SimPy's clock starts as the int 0 and only a Timeout makes it a float
    run.finalise(collector)
    assert not run.pending, "a chunk was left unresolved"
    model = run.model(end_s)
    collector.close()
    return model, end_s


def warm_up() -> float:
    """Compile (or load from cache) the kernels on a tiny input; returns the seconds it took."""
    from ..config import AutoscalingConfig, EC2Service
    from ..dists import Constant

    t0 = time.perf_counter()
    svc = EC2Service(Constant(100.0))
    auto = AutoscalingConfig(min_instances=1, max_instances=2, target=0.5, boot_s=Constant(1.0),
                             metric_period_s=1.0, scale_out_periods=1, scale_in_periods=1, cooldown_s=0.0)
    times = np.arange(0.0, 3.0, 0.01)
    for lb in _LB:
        for a in (None, auto):
            cfg = EC2Config(name="warm_up", service=svc, instances=1, workers_per_instance=1, load_balancer=lb,
                            queue_limit=4, autoscaling=a)
            run_ec2(cfg, [times], seed=0, warmup_s=0.0, horizon_s=None, collector=Collector(0.0))
    return time.perf_counter() - t0

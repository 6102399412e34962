"""The Lambda model of `sim.platforms.lambda_` as one compiled loop per chunk of arrivals.

Same model, same inputs, same order of operations as the SimPy `LambdaModel` (read its docstring
for the semantics): per chunk, the per-request durations come from the same uniforms through the
same `ppf`s (numpy, in Python), then `_chunk` (numba) handles, in SimPy's event order, every
completion and keep-alive expiry due before each arrival and then the arrival itself. Event
times are computed as SimPy computes them (``now + delay``), ties resolve by scheduling order
(`sim.engine_fast.common`), and the instance tallies perform the same floating-point
operations, so per-request outcomes, tallies and bills are the SimPy engine's. The bill's sums
(`LambdaModel.account`: invocations, and billed milliseconds on provisioned environments and on
the others) are taken as each request is served, with `sim.billing`'s rounding of one invocation.

The idle effect (`LambdaService.idle`), where `LambdaModel.arrive` applies it: a request served
by an existing environment (on-demand or provisioned; not a cold start) has its duration
multiplied, in ``work_ms`` itself and before anything reads it, by ``1.0 - deficit *
math.exp(-(now - free_s) / tau_s)``: `deficit` and `tau_s` are `IdleEffect.deficit` and
`IdleEffect.tau_s` computed in Python, `free_s` is when the environment's last invocation
finished (every completion records it; -inf for a provisioned environment not used yet, whose
factor is 1). Those are the reference's floating-point operations in its order, and numba's
``math.exp`` is the C library's ``exp`` that Python's calls, so the timeout check, latency,
completion time, bill and records see the same duration, bit for bit. Without an idle effect
the kernel skips it on one flag.

State between chunks lives in arrays:
- environments, one row per slot of ``EI`` (int64 fields) and ``EF`` (float64: the end of the
  idle period's keep-alive, the time its pending expiry timer fires or NaN, the keep-alive its
  pending completion will start, when its last invocation finished); a slot is reused
  after its environment is reclaimed, its generation bumped so stale timers cannot touch the
  new environment;
- two idle pools (on-demand and provisioned), each in the reuse policy's structure: ``mru`` a
  doubly linked list in insertion order (pick the tail), ``newest`` an indexed max-heap on the
  environment id, ``random`` an array with swap-removal exactly like `RandomPool`;
- the pending events (`common`'s ring and heap; an event's int64 code packs its kind, its slot,
  and the timer's generation or whether the completion timed out): completions in a ring sorted
  on (time, id), where they come nearly in the order they are scheduled, and expiry timers in a
  heap with the completions that the ring let go (`common.ring_push`);
- the scalar state (time, tokens, counts) and the configuration's parameters in ``fs`` and
  ``ist``, so a call takes fewer arguments.
Before each call `FastLambda._reserve` makes every array large enough for it (bounded by the
concurrency limit and the chunk size), so memory follows the number of live environments and
the chunk size, never the number of requests, and the kernel itself never allocates.
"""
from __future__ import annotations

import math
from typing import Callable, Iterable, NamedTuple

import numpy as np
from numba import njit

from ..billing import lambda_billed_ms, lambda_billed_ms_of
from ..config import LambdaConfig
from ..metrics import Collector
from ..platforms.lambda_ import LambdaModel
from ..streams import COLD, KEEPALIVE, ROUTING, WARM, generator
from .common import (heap_pop, heap_push, new_heap, new_ring, new_tally, ring_push, tally_close, tally_load,
                     tally_set, tally_step, tally_store, tally_to_python)

MRU, NEWEST, RANDOM = 0, 1, 2
POLICY = {"mru": MRU, "newest": NEWEST, "random": RANDOM}
OK, THROTTLED, TIMEOUT = 0, 1, 3  # sim.metrics status codes (checked at import below)
COMPLETE, EXPIRE = 0, 1
# EI fields
F_ID, F_PROV, F_IDLE, F_GEN, F_PREV, F_NEXT, F_POS, F_TIMER_SET = range(8)
NF = 8
# EF fields: the end of the idle period's keep-alive, when the pending expiry timer fires, the
# keep-alive of the idle period the pending completion will start, and when the environment's
# last invocation finished (-inf: never; `LambdaModel`'s free_s, read by the idle effect)
G_EXPIRES, G_TIMER, G_KEEP, G_FREE = range(4)
NG = 4
# fs: float state (S_BAD_MS: the first billed duration that is not finite and >= 0), then
# parameters (the idle effect's deficit and tau_s: 0.0 without one)
(S_NOW, S_TOKENS, S_TOKENS_AT, S_BAD_MS, Q_KEEP_S, Q_BURST, Q_REFILL, Q_TIMEOUT_MS, Q_IDLE_DEFICIT, Q_IDLE_TAU_S,
 Q_WARMUP_S) = range(11)
NS = 11
# ist: int state (the bill's sums, as `LambdaModel.account` adds them, and whether S_BAD_MS is
# set), then parameters (P_IDLE_EFFECT: 1 when the configuration has an idle effect)
(I_BUSY, I_ALIVE, I_NEXT_ID, I_EID, I_RING_HEAD, I_RING_N, I_HEAP_N, I_FREE_N, I_HEAD0, I_TAIL0, I_HEAD1,
 I_TAIL1, I_N0, I_N1, I_INVOCATIONS, I_BILLED_PC_MS, I_BILLED_OD_MS, I_BAD, P_POLICY, P_LIMIT, P_PC, P_KEEP_CONST,
 P_IDLE_EFFECT, P_INIT_BILLED) = range(24)
NI = 24
# Event codes: bit 0 the kind; a completion's bit 1 whether it timed out, bits 2+ its slot; a
# timer's bits 1-31 its slot, bits 32+ its generation (modulo 2**31).
_GEN_MASK = 0x7FFFFFFF


def _check_codes():
    from .. import metrics

    assert (metrics.OK, metrics.THROTTLED, metrics.TIMEOUT) == (OK, THROTTLED, TIMEOUT)


_check_codes()


# ---- pools ----------------------------------------------------------------------------------

@njit(cache=True, inline="always")
def _swap_items(items, p, EI, i, j):
    """Swap places i and j of pool p's heap, keeping each slot's position (F_POS) right."""
    a, b = items[p, i], items[p, j]
    items[p, i], items[p, j] = b, a
    EI[b, F_POS], EI[a, F_POS] = i, j


@njit(cache=True, inline="always")
def _sift_up(items, p, EI, i):
    while i > 0:
        q = (i - 1) >> 1
        if EI[items[p, i], F_ID] > EI[items[p, q], F_ID]:
            _swap_items(items, p, EI, i, q)
            i = q
        else:
            break


@njit(cache=True, inline="always")
def _sift_down(items, p, EI, i, n):
    while True:
        left = 2 * i + 1
        if left >= n:
            break
        c = left
        if left + 1 < n and EI[items[p, left + 1], F_ID] > EI[items[p, left], F_ID]:
            c = left + 1
        if EI[items[p, c], F_ID] > EI[items[p, i], F_ID]:
            _swap_items(items, p, EI, i, c)
            i = c
        else:
            break


@njit(cache=True, inline="always")
def _pool_add(policy, p, s, EI, items, ist):
    """Add slot s to pool p (0 on-demand, 1 provisioned)."""
    n_at = I_N0 + p
    if policy == MRU:
        head, tail = I_HEAD0 + 2 * p, I_TAIL0 + 2 * p
        EI[s, F_NEXT] = -1
        EI[s, F_PREV] = ist[tail]
        if ist[tail] >= 0:
            EI[ist[tail], F_NEXT] = s
        else:
            ist[head] = s
        ist[tail] = s
    elif policy == RANDOM:
        n = ist[n_at]
        EI[s, F_POS] = n
        items[p, n] = s
    else:
        n = ist[n_at]
        items[p, n] = s
        EI[s, F_POS] = n
        _sift_up(items, p, EI, n)
    ist[n_at] += 1


@njit(cache=True, inline="always")
def _pool_remove(policy, p, s, EI, items, ist):
    """Remove slot s (in pool p) from it."""
    n_at = I_N0 + p
    if policy == MRU:
        head, tail = I_HEAD0 + 2 * p, I_TAIL0 + 2 * p
        prv, nxt = EI[s, F_PREV], EI[s, F_NEXT]
        if prv >= 0:
            EI[prv, F_NEXT] = nxt
        else:
            ist[head] = nxt
        if nxt >= 0:
            EI[nxt, F_PREV] = prv
        else:
            ist[tail] = prv
    elif policy == RANDOM:  # RandomPool._take: the last item moves into the hole
        i = EI[s, F_POS]
        n = ist[n_at]
        last = items[p, n - 1]
        if last != s:
            items[p, i] = last
            EI[last, F_POS] = i
    else:
        i = EI[s, F_POS]
        n = ist[n_at] - 1
        last = items[p, n]
        if i != n:
            items[p, i] = last
            EI[last, F_POS] = i
            _sift_down(items, p, EI, i, n)
            _sift_up(items, p, EI, EI[last, F_POS])
    ist[n_at] -= 1


@njit(cache=True, inline="always")
def _pool_pick(policy, p, u, EI, items, ist):
    """Take a slot for a request (-1 when the pool is empty)."""
    n = ist[I_N0 + p]
    if n == 0:
        return -1
    if policy == MRU:
        s = ist[I_TAIL0 + 2 * p]
    elif policy == RANDOM:
        k = int(u * n)
        s = items[p, k if k < n - 1 else n - 1]
    else:
        s = items[p, 0]
    _pool_remove(policy, p, s, EI, items, ist)
    return s


# ---- slots ----------------------------------------------------------------------------------

@njit(cache=True)
def _grow_slots(EI, EF, items, free, ist):
    """Twice the slots, the new ones pushed on the free stack (lowest on top)."""
    cap = EI.shape[0]
    EI2 = np.zeros((2 * cap, NF), np.int64)
    EI2[:cap] = EI
    EF2 = np.full((2 * cap, NG), np.nan)
    EF2[:cap] = EF
    items2 = np.zeros((2, 2 * cap), np.int64)
    items2[:, :cap] = items
    free2 = np.empty(2 * cap, np.int64)
    free2[:cap] = free
    for k in range(2 * cap - 1, cap - 1, -1):
        free2[ist[I_FREE_N]] = k
        ist[I_FREE_N] += 1
    return EI2, EF2, items2, free2


@njit(cache=True, inline="always")
def _new_env(EI, EF, free, ist, provisioned):
    """A new environment in a free slot (there is one: `FastLambda._reserve`); its slot."""
    ist[I_FREE_N] -= 1
    s = free[ist[I_FREE_N]]
    EI[s, F_ID] = ist[I_NEXT_ID]
    ist[I_NEXT_ID] += 1
    EI[s, F_PROV] = 1 if provisioned else 0
    EI[s, F_IDLE] = 0
    EI[s, F_TIMER_SET] = 0
    EF[s, G_EXPIRES] = 0.0
    EF[s, G_TIMER] = np.nan
    EF[s, G_FREE] = -np.inf
    ist[I_ALIVE] += 1
    return s


@njit(cache=True, inline="always")
def _free_slot(EI, free, ist, s):
    EI[s, F_GEN] += 1  # a timer still pending for the old environment no longer matches
    free[ist[I_FREE_N]] = s
    ist[I_FREE_N] += 1


# ---- the chunk ------------------------------------------------------------------------------

@njit(cache=True, inline="always")
def _throttle(j, status, cold, latency, done, prov):
    """Request j is throttled: no latency, no completion."""
    status[j] = THROTTLED
    cold[j] = False
    latency[j] = np.nan
    done[j] = np.nan
    prov[j] = False


@njit(cache=True, _nrt=False)  # no reference counting: the kernel never allocates (see _reserve)
def _chunk(t_arr, work_ms, init_ms, keep_s, route, status, cold, latency, done, prov,
           fs, ist, EI, EF, items, free, rt, re, rc, ht, he, hc, at_s, at_b, bt_s, bt_b,
           mode, until_t, j_start, init_to, resume):
    """Run the chunk's arrivals (mode 0), or drain (mode 1: until no request is in flight;
    mode 2: every event before (until_t, next id), then advance to until_t; mode 3: every event
    at the current time scheduled before the next id). The caller has made every array large
    enough for the call (`FastLambda._reserve`): the kernel never reassigns an array, which
    would cost atomic reference counting on every iteration.

    Mode 0 starts at request `j_start`; `init_ms` holds INIT durations of the requests below
    `init_to` from the first cold start on. A cold start of a later request stops the call before
    anything of that request is done but its events (the return value is its index, below the
    chunk's size): the caller fills `init_ms` from there and calls again with `j_start` that
    index, a larger `init_to` and `resume`: the request resumes where it stopped (its arrival
    event is not scheduled twice). Every request run gets all its outcomes (status, cold,
    latency, done, prov) written: the caller's arrays need no initial values. With an idle
    effect, a warm start's `work_ms` is scaled in place: the caller bills and records it so.

    The state read on every event (time, busy count, id counter, queue sizes) lives in locals
    while the call runs and is saved to `fs` and `ist` when it returns; so does the busy tally.
    Indices that cannot be negative are cast to unsigned where they index the chunk's arrays and
    the ring: numba then skips its wraparound of negative indices, a cost on every access."""
    policy, limit, pc, use_const = ist[P_POLICY], ist[P_LIMIT], ist[P_PC], ist[P_KEEP_CONST] != 0
    keep_const, burst, refill, timeout_ms = fs[Q_KEEP_S], fs[Q_BURST], fs[Q_REFILL], fs[Q_TIMEOUT_MS]
    idle_effect, idle_deficit, idle_tau_s = ist[P_IDLE_EFFECT] != 0, fs[Q_IDLE_DEFICIT], fs[Q_IDLE_TAU_S]
    warmup_s, init_billed = fs[Q_WARMUP_S], ist[P_INIT_BILLED] != 0
    now, busy, eid = fs[S_NOW], ist[I_BUSY], ist[I_EID]
    invocations, billed_pc, billed_od = ist[I_INVOCATIONS], ist[I_BILLED_PC_MS], ist[I_BILLED_OD_MS]
    rh, nr, nh = ist[I_RING_HEAD], ist[I_RING_N], ist[I_HEAP_N]
    bt = tally_load(bt_s)
    mask = rt.size - 1
    n_req = t_arr.size if mode == 0 else 0
    j = j_start
    while True:
        # Next request's arrival event (SimPy: the arrival process's timeout), or the drain target.
        if mode == 0:
            if j >= n_req:
                break
            t = t_arr[np.uint64(j)]
            if resume:  # its events already ran and `now` is its arrival time
                resume = False
                target_t = now
                target_e = -1
            elif t - now > 0:
                target_t = now + (t - now)
                eid += 1
                target_e = eid
            else:
                target_t = now
                target_e = -1  # nothing runs before it
        elif mode == 1:
            if busy == 0:
                break
            target_t = np.inf
            target_e = 0
        else:
            target_t = now + (until_t - now) if mode == 2 else now
            eid += 1
            target_e = eid
        # Events due before it, in (time, id) order: completions in the ring, expiry timers (and
        # the completions that left the ring) in the heap; the next is the earlier of the two tops.
        while True:
            if nr > 0:
                h = np.uint64(rh)
                ev_t, ev_e = rt[h], re[h]
                in_ring = nh == 0 or ev_t < ht[0] or (ev_t == ht[0] and ev_e < he[0])
                if not in_ring:
                    ev_t, ev_e = ht[0], he[0]
            elif nh > 0:
                ev_t, ev_e = ht[0], he[0]
                in_ring = False
            else:
                break
            if not (ev_t < target_t or (ev_t == target_t and ev_e < target_e)):
                break
            if in_ring:
                code = rc[h]
                rh = (rh + 1) & mask
                nr -= 1
            else:
                code = hc[0]
                heap_pop(ht, he, hc, nh)
                nh -= 1
            now = ev_t
            if code & 1 == COMPLETE:
                s = code >> 2
                EF[s, G_FREE] = now
                busy -= 1
                bt = tally_step(bt, bt_b, now, busy)
                if EI[s, F_PROV] == 1:
                    _pool_add(policy, 1, s, EI, items, ist)
                elif code & 2:  # timed out: the environment is discarded
                    ist[I_ALIVE] -= 1
                    tally_set(at_s, at_b, now, ist[I_ALIVE])
                    _free_slot(EI, free, ist, s)
                else:
                    EI[s, F_IDLE] = 1
                    expires = now + EF[s, G_KEEP]
                    EF[s, G_EXPIRES] = expires
                    _pool_add(policy, 0, s, EI, items, ist)
                    if EI[s, F_TIMER_SET] == 0 or EF[s, G_TIMER] > expires:
                        eid += 1
                        nh = _arm(EI, EF, s, expires, now, eid, ht, he, hc, nh)
                if mode == 1 and busy == 0:
                    break  # SimPy: the empty event is scheduled now; later ids wait for it
            else:  # EXPIRE
                s = (code >> 1) & _GEN_MASK
                if EI[s, F_GEN] & _GEN_MASK != code >> 32:
                    continue
                armed_for = EF[s, G_TIMER]
                EI[s, F_TIMER_SET] = 0
                EF[s, G_TIMER] = np.nan
                if EI[s, F_IDLE] == 0:
                    continue
                if EF[s, G_EXPIRES] > armed_for:
                    eid += 1
                    nh = _arm(EI, EF, s, EF[s, G_EXPIRES], now, eid, ht, he, hc, nh)
                    continue
                EI[s, F_IDLE] = 0
                _pool_remove(policy, 0, s, EI, items, ist)
                ist[I_ALIVE] -= 1
                tally_set(at_s, at_b, now, ist[I_ALIVE])
                _free_slot(EI, free, ist, s)
        if mode == 1:
            if busy == 0:
                break
            continue
        if mode >= 2:
            now = target_t
            break
        # The arrival (LambdaModel.arrive).
        now = target_t
        uj = np.uint64(j)
        if busy >= limit:
            _throttle(uj, status, cold, latency, done, prov)
            j += 1
            continue
        u = route[uj] if policy == RANDOM else 0.0  # (route is empty for the other policies)
        s = _pool_pick(policy, 1, u, EI, items, ist) if pc > 0 else -1
        if s < 0:
            s = _pool_pick(policy, 0, u, EI, items, ist)
        init = 0.0
        if s < 0:
            if j >= init_to:
                break  # a cold start needs its INIT duration: computed by the caller
            tokens = fs[S_TOKENS] + (now - fs[S_TOKENS_AT]) * refill
            fs[S_TOKENS] = tokens if tokens < burst else burst
            fs[S_TOKENS_AT] = now
            if fs[S_TOKENS] < 1.0:
                _throttle(uj, status, cold, latency, done, prov)
                j += 1
                continue
            fs[S_TOKENS] -= 1.0
            s = _new_env(EI, EF, free, ist, False)
            tally_set(at_s, at_b, now, ist[I_ALIVE])
            init = init_ms[uj]
            cold[uj] = True
            on_pc = False
        else:
            EI[s, F_IDLE] = 0
            cold[uj] = False
            on_pc = EI[s, F_PROV] == 1
            if idle_effect:
                work_ms[uj] *= 1.0 - idle_deficit * math.exp(-(now - EF[s, G_FREE]) / idle_tau_s)
        work = work_ms[uj]
        timed_out = work > timeout_ms
        if timed_out:
            work = timeout_ms
        status[uj] = TIMEOUT if timed_out else OK
        lat_ms = init + work
        lat_s = lat_ms / 1000.0
        latency[uj] = lat_ms
        done[uj] = now + lat_s
        prov[uj] = on_pc
        if t >= warmup_s:  # LambdaModel.account: its sums (work + init there: the same float)
            billed = lat_ms if init_billed else work + 0.0
            if billed >= 0.0 and billed < np.inf:
                invocations += 1
                if on_pc:
                    billed_pc += lambda_billed_ms_of(billed)
                else:
                    billed_od += lambda_billed_ms_of(billed)
            elif ist[I_BAD] == 0:
                ist[I_BAD] = 1
                fs[S_BAD_MS] = billed
        busy += 1
        bt = tally_step(bt, bt_b, now, busy)
        EF[s, G_KEEP] = keep_const if use_const else keep_s[uj]
        eid += 1
        nr, nh = ring_push(rt, re, rc, rh, nr, now + lat_s, eid, (s << 2) | (2 if timed_out else 0) | COMPLETE,
                           ht, he, hc, nh)
        j += 1
    fs[S_NOW] = now
    tally_store(bt_s, bt)
    ist[I_BUSY], ist[I_EID], ist[I_RING_HEAD], ist[I_RING_N], ist[I_HEAP_N] = busy, eid, rh, nr, nh
    ist[I_INVOCATIONS], ist[I_BILLED_PC_MS], ist[I_BILLED_OD_MS] = invocations, billed_pc, billed_od
    return j


@njit(cache=True, inline="always")
def _arm(EI, EF, s, expires, now, eid, ht, he, hc, nh):
    """LambdaModel._arm: slot s's expiry timer (id eid) for `expires`; returns the heap's size."""
    EI[s, F_GEN] += 1
    EI[s, F_TIMER_SET] = 1
    EF[s, G_TIMER] = expires
    heap_push(ht, he, hc, nh, now + (expires - now), eid, ((EI[s, F_GEN] & _GEN_MASK) << 32) | (s << 1) | EXPIRE)
    return nh + 1


class FastLambda:
    """The compiled Lambda model's state, and a `LambdaModel` that keeps its bill and tallies."""

    def __init__(self, cfg: LambdaConfig, warmup_s: float, period_s: float):
        import simpy

        self.cfg = cfg
        # The reference model, never run: it holds the configuration's derived values, bills the
        # sums `account` would have made (`finish`) and reads its tallies in `levels`, as for SimPy.
        self.model = LambdaModel(simpy.Environment(), cfg, warmup_s, period_s)
        self.policy = POLICY[cfg.reuse]
        cap = 64
        while cap < cfg.provisioned_concurrency + 2:
            cap *= 2
        self.EI = np.zeros((cap, NF), np.int64)
        self.EF = np.full((cap, NG), np.nan)
        self.items = np.zeros((2, cap), np.int64)
        self.free = np.arange(cap - 1, -1, -1, dtype=np.int64)
        self.ist = ist = np.zeros(NI, np.int64)
        ist[[I_HEAD0, I_TAIL0, I_HEAD1, I_TAIL1]] = -1
        ist[I_FREE_N] = cap
        ist[P_POLICY], ist[P_LIMIT], ist[P_PC] = self.policy, cfg.concurrency_limit, cfg.provisioned_concurrency
        ist[P_KEEP_CONST] = self.model.keep_dist is None
        ist[P_IDLE_EFFECT] = self.model.idle_deficit is not None
        ist[P_INIT_BILLED] = cfg.init_billed
        self.fs = np.zeros(NS)
        self.fs[[S_TOKENS, Q_KEEP_S, Q_BURST, Q_REFILL, Q_TIMEOUT_MS, Q_WARMUP_S]] = (
            float(cfg.scale_burst), float(cfg.keep_alive_s) if self.model.keep_dist is None else 0.0,
            float(cfg.scale_burst), float(cfg.scale_refill_per_s), self.model.timeout_ms, warmup_s)
        if ist[P_IDLE_EFFECT]:
            self.fs[[Q_IDLE_DEFICIT, Q_IDLE_TAU_S]] = self.model.idle_deficit, self.model.idle_tau_s
        self._outputs = tuple(np.empty(0, dtype) for dtype in _OUTPUT_DTYPES)  # reused by `chunk`
        self.ring = new_ring()  # completions
        self.heap = new_heap()  # expiry timers, and completions that left the ring
        self.at_s, self.at_b = new_tally(warmup_s, period_s)
        self.bt_s, self.bt_b = new_tally(warmup_s, period_s)
        for _ in range(cfg.provisioned_concurrency):  # LambdaModel.__init__'s provisioned environments
            s = _new_env(self.EI, self.EF, self.free, ist, True)
            _pool_add(self.policy, 1, s, self.EI, self.items, ist)
        tally_set(self.at_s, self.at_b, 0.0, float(ist[I_ALIVE]))

    def _reserve(self, n_req: int, until_s: float) -> None:
        """Make every array large enough for a call with `n_req` arrivals and events up to
        `until_s`: each arrival may add a completion, a new environment and (through its
        completion) an expiry timer; the tallies' bins must reach `until_s`."""
        ist, cfg = self.ist, self.cfg
        busy, nr, nh = int(ist[I_BUSY]), int(ist[I_RING_N]), int(ist[I_HEAP_N])
        # In flight (pending completions) and on-demand environments alive never exceed the
        # concurrency limit (an environment is created only when none is idle), plus the
        # provisioned ones; expiry timers at most one per completion on top of those pending.
        # The heap holds the timers and may hold every completion.
        bound = cfg.concurrency_limit + cfg.provisioned_concurrency
        need_c = min(busy + n_req, bound) + 1
        need_x = nh + min(busy + n_req, 2 * n_req + bound) + need_c
        if self.ring[0].size < need_c:
            size = _pow2(need_c)
            order = (int(ist[I_RING_HEAD]) + np.arange(nr)) & (self.ring[0].size - 1)
            grown = new_ring(size)
            for new, old in zip(grown, self.ring):
                new[:nr] = old[order]
            self.ring = grown
            ist[I_RING_HEAD] = 0
        if self.heap[0].size < need_x:
            self.heap = tuple(_grown(a, need_x) for a in self.heap)
        while ist[I_FREE_N] < min(n_req, max(0, bound - int(ist[I_ALIVE]))) + 1:
            self.EI, self.EF, self.items, self.free = _grow_slots(self.EI, self.EF, self.items, self.free, ist)
        for name in ("at", "bt"):
            ts, bins = getattr(self, f"{name}_s"), getattr(self, f"{name}_b")
            k = int((until_s - ts[0]) // ts[1]) + 2 if until_s > ts[0] and ts[1] == ts[1] else 0
            if k > bins.size:
                setattr(self, f"{name}_b", _grown(bins, k))

    def _last_completion(self) -> float:
        """When the last pending completion is due (the current time when none is)."""
        ist = self.ist
        nr, nh = int(ist[I_RING_N]), int(ist[I_HEAP_N])
        last = self.now
        if nr:
            last = max(last, float(self.ring[0][(int(ist[I_RING_HEAD]) + nr - 1) & (self.ring[0].size - 1)]))
        completions = (self.heap[2][:nh] & 1) == COMPLETE
        if completions.any():
            last = max(last, float(self.heap[0][:nh][completions].max()))
        return last

    def _call(self, t, work, init, keep, route, outs, mode, until_t=0.0, j_start=0, init_to=0, resume=False):
        if mode == 0:
            until_s = float(t[-1]) if t.size else self.now
        elif mode == 1:
            until_s = self._last_completion()
        else:
            until_s = max(until_t, self.now)
        if not resume:
            self._reserve(t.size, until_s)
        return _chunk(t, work, init, keep, route, *outs, self.fs, self.ist, self.EI, self.EF, self.items, self.free,
                      *self.ring, *self.heap, self.at_s, self.at_b, self.bt_s, self.bt_b, mode, until_t, j_start,
                      init_to, resume)

    def chunk(self, t_arr: np.ndarray, draws: _Draws, keep_outputs: bool = False):
        """Run one chunk of arrivals; the per-request outcomes as arrays: new ones when
        `keep_outputs`, else the engine's own, valid until the next call."""
        cfg, n = self.cfg, t_arr.size
        svc = cfg.service
        work = np.asarray(svc.warm_ms.ppf(draws.warm), dtype=np.float64)
        keep = (np.asarray(self.model.keep_dist.ppf(draws.keepalive), dtype=np.float64)
                if self.model.keep_dist is not None else _EMPTY)
        if keep_outputs or self._outputs[0].size < n:
            outputs = tuple(np.empty(n, dtype) for dtype in _OUTPUT_DTYPES)
            if not keep_outputs:
                self._outputs = outputs
        else:
            outputs = tuple(a[:n] for a in self._outputs)
        init, status, cold, latency, done, prov = outputs
        t_arr = np.ascontiguousarray(t_arr, dtype=np.float64)
        route = np.asarray(draws.routing, dtype=np.float64) if draws.routing is not None else _EMPTY
        outs = (status, cold, latency, done, prov)
        # INIT durations only in windows from a cold start on: most chunks of a steady load have
        # none or a few cold starts, and `ppf` of the whole rest of the chunk (or even its
        # uniforms) would cost more than the chunk's simulation. A window is _INIT_WINDOW long
        # for a cold start _INIT_SPARSE requests or more after the last window, else twice the
        # last one: a call of the kernel costs as much as a few thousand INIT durations, so
        # sparse cold starts cost a short window each, and the others at most log2(chunk /
        # _INIT_WINDOW) + 1 calls and windows. The values are those of `ppf` of the whole
        # chunk (`ppf` is elementwise). Values outside the windows are never read, nor drawn
        # (`init` holds anything there).
        j, init_to, window = 0, 0, _INIT_WINDOW
        while True:
            j = self._call(t_arr, work, init, keep, route, outs, 0, j_start=j, init_to=init_to, resume=init_to > 0)
            if j >= n:
                break
            window = 2 * window if init_to and j - init_to < _INIT_SPARSE else _INIT_WINDOW
            init_to = min(n, j + window)
            init[j:init_to] = svc.cold_init_ms.ppf(draws.cold(j, init_to))
        if self.ist[I_BAD]:
            lambda_billed_ms(self.fs[S_BAD_MS])  # raises account's ValueError
        return work, init, status, cold, latency, done, prov

    def drain(self, mode: int, until_t: float = 0.0) -> None:
        self._call(_EMPTY, _EMPTY, _EMPTY, _EMPTY, _EMPTY, (_EMPTY_I8, _EMPTY_B, _EMPTY, _EMPTY, _EMPTY_B), mode,
                   until_t)

    @property
    def now(self) -> float:
        return float(self.fs[S_NOW])

    @property
    def busy(self) -> int:
        return int(self.ist[I_BUSY])

    def finish(self, end_s: float) -> LambdaModel:
        ist, model = self.ist, self.model
        model.invocations = int(ist[I_INVOCATIONS])
        model.billed_ms_provisioned, model.billed_ms_on_demand = int(ist[I_BILLED_PC_MS]), int(ist[I_BILLED_OD_MS])
        self.at_b = tally_close(self.at_s, self.at_b, end_s)
        self.bt_b = tally_close(self.bt_s, self.bt_b, end_s)
        tally_to_python(self.at_s, self.at_b, self.model.alive_tally)
        tally_to_python(self.bt_s, self.bt_b, self.model.busy_tally)
        return self.model


def _pow2(n: int) -> int:
    """The least power of two >= n."""
    return 1 << max(0, n - 1).bit_length()


def _grown(a: np.ndarray, size: int) -> np.ndarray:
    """`a` copied into a larger array (at least `size`, at least twice as large)."""
    out = np.zeros(max(size, 2 * a.size), a.dtype)
    out[:a.size] = a
    return out


_EMPTY = np.zeros(0)
# `FastLambda.chunk`'s arrays: init_ms, status, cold, latency_ms, done_s, provisioned
_OUTPUT_DTYPES = (np.float64, np.int8, np.bool_, np.float64, np.float64, np.bool_)
_EMPTY_I8 = np.zeros(0, np.int8)
_EMPTY_B = np.zeros(0, np.bool_)
_INIT_WINDOW = 256  # INIT durations drawn after a cold start (`FastLambda.chunk`) ...
_INIT_SPARSE = 4096  # ... when it comes this many requests or more after the last window


class _Draws(NamedTuple):
    """A chunk's uniforms (`RequestDraws`); the COLD ones on demand: ``cold(start, stop)``."""

    warm: np.ndarray
    cold: Callable[[int, int], np.ndarray]
    keepalive: np.ndarray | None
    routing: np.ndarray | None


class _Streams:
    """`RequestStreams` without the draws this configuration never reads (each purpose is a
    stream of its own, so leaving one out changes no other: the draws are the same).

    A chunk's COLD uniforms are drawn only where a request needs its INIT duration: the stream
    skips the others with ``PCG64.advance`` (a uniform of ``Generator.random`` is one 64-bit
    output of the bit generator, so skipping k outputs is drawing k uniforms)."""

    def __init__(self, seed: int, *, keep: bool, routing: bool):
        self._warm, self._cold = generator(seed, WARM), generator(seed, COLD)
        self._keep = generator(seed, KEEPALIVE) if keep else None
        self._route = generator(seed, ROUTING) if routing else None
        self._cold_left = 0  # COLD uniforms of the previous chunk not drawn yet
        self._cold_at = 0  # the next COLD uniform's index in the current chunk

    def next(self, n: int) -> _Draws:
        self._cold.bit_generator.advance(self._cold_left - self._cold_at)
        self._cold_left, self._cold_at = n, 0
        return _Draws(self._warm.random(n), self._cold_window,
                      self._keep.random(n) if self._keep is not None else None,
                      self._route.random(n) if self._route is not None else None)

    def _cold_window(self, start: int, stop: int) -> np.ndarray:
        """The COLD uniforms of requests [start, stop) of the current chunk (windows in order)."""
        assert self._cold_at <= start <= stop <= self._cold_left, "COLD windows must come in order"
        self._cold.bit_generator.advance(start - self._cold_at)
        self._cold_at = stop
        return self._cold.random(stop - start)


def run_lambda(cfg: LambdaConfig, chunks: Iterable[np.ndarray], *, seed: int, warmup_s: float,
               horizon_s: float | None, collector: Collector,
               progress: Callable[[int, float], None] | None = None) -> tuple[LambdaModel, float]:
    """`sim.engine_simpy.run` for a LambdaConfig, compiled: same contract, same results."""
    fast = FastLambda(cfg, warmup_s, collector.period_s)
    model = fast.model
    streams = _Streams(seed, keep=model.keep_dist is not None, routing=fast.policy == RANDOM)
    last_t = 0.0
    for t_arr in chunks:
        n = t_arr.size
        if n == 0:
            continue
        work, init, status, cold, latency, done, prov = fast.chunk(t_arr, streams.next(n), collector.wants_records)
        extra = None
        if collector.wants_records:
            extra = {"provisioned": prov, "work_ms": work, "init_ms": np.where(cold, init, 0.0)}
        collector.add_chunk(t_arr, status, cold, latency, done, extra)
        last_t = float(t_arr[-1])
        if progress is not None:
            progress(n, last_t)
    if fast.busy > 0:
        fast.drain(1)  # until the last completion ...
        fast.drain(3)  # ... and the events at that instant scheduled before SimPy's empty event
    end = max(horizon_s if horizon_s is not None else last_t, fast.now)
    if end > fast.now:
        fast.drain(2, end)
    fast.drain(3)  # the main process ends: events at this instant scheduled before that run first
    end_s = fast.now
    collector.close()
    return fast.finish(end_s), end_s


def warm_up() -> float:
    """Compile (or load from numba's cache) the kernel on a tiny input; the seconds it took."""
    import time

    from ..config import LambdaService
    from ..dists import Constant

    t0 = time.perf_counter()
    cfg = LambdaConfig("warm-up", LambdaService(Constant(5.0), Constant(50.0)), keep_alive_s=1.0)
    for reuse in POLICY:
        from dataclasses import replace

        run_lambda(replace(cfg, reuse=reuse), [np.array([0.0, 0.001, 2.0])], seed=0, warmup_s=0.0, horizon_s=None,
                   collector=Collector(0.0, 60.0, None))
    return time.perf_counter() - t0

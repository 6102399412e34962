"""Compiled building blocks of the fast engine: SimPy's event order and `LevelTally`, in numba.

**Event order.** SimPy processes events by (time, event id), ids counting up as events are
scheduled, so two events at the same time run in the order they were scheduled. The fast
kernels give every event they schedule the next id of one counter, in the order the SimPy
models schedule theirs (completions, expiry timers, and the arrival process's own timeout
before each request that arrives later than the previous one), and keep pending events in a
binary min-heap on (time, id). That is what makes ties (constant service times, arrivals at the
same instant) resolve exactly as in the SimPy engine.

**Heap.** Parallel arrays: time (float64), id (int64) and an int64 code into which the caller
packs what the event carries. Kernels never allocate or hand arrays back (that would cost
atomic reference counting on every event): their drivers make the arrays large enough before
each call.

**Tally.** A `LevelTally` (sim/tally.py) as a float64 state vector ``[start_s, period_s, level,
last_s, area, max_level]`` plus a bins array; `tally_set` performs exactly the floating-point
operations of `LevelTally.set` in the same order, so areas and per-period bins are identical.
`tally_to_python` copies the state into a `LevelTally` so the platforms' `levels()` and `cost()`
read it unchanged.
"""
from __future__ import annotations

import numpy as np
from numba import njit

T_START, T_PERIOD, T_LEVEL, T_LAST, T_AREA, T_MAX, T_BIN, T_SAFE = range(8)
# T_BIN: the period of `last` (k0 below); T_SAFE: a time offset below which a later time is
# certainly still in that period (the exact floor division is skipped only then).


def new_heap(capacity: int = 1024):
    """(times, ids, codes): the caller packs what an event carries into its int64 code."""
    return np.empty(capacity), np.empty(capacity, np.int64), np.empty(capacity, np.int64)


@njit(cache=True)
def _grow(a, n):
    out = np.empty(2 * a.size, a.dtype)
    out[:n] = a[:n]
    return out


@njit(cache=True, inline="always")
def heap_push(ht, he, hc, n, t, eid, code):
    """Push an event into a heap of n < ht.size events (the driver makes room beforehand).
    The caller adds 1 to n.

    Sifts with a hole: the parents it passes move down one place each and the event is written
    once, where a chain of swaps would have put it (the same heap, fewer stores)."""
    _sift_up_into(ht, he, hc, n, t, eid, code)


@njit(cache=True, inline="always")
def _sift_up_into(ht, he, hc, i, t, eid, code):
    """Write event (t, eid, code) into the hole at i, moving the parents it passes down a place."""
    while i > 0:
        p = (i - 1) >> 1
        tp = ht[p]
        if t < tp or (t == tp and eid < he[p]):
            ht[i], he[i], hc[i] = tp, he[p], hc[p]
            i = p
        else:
            break
    ht[i], he[i], hc[i] = t, eid, code


@njit(cache=True, inline="always")
def heap_pop(ht, he, hc, n):
    """Remove the first event (index 0) of a heap of n > 0 events; its fields must be read
    before. The caller subtracts 1 from n.

    Bottom-up: the hole left at the root moves down the path of lesser children to the bottom
    (the lesser of two picked without a branch), then the last event sifts up from there (it
    mostly belongs near the bottom). The classic sift-down branches on every comparison of the
    moving event, which mispredicts half the time. Keys (time, id) are distinct, so the heap is
    the one the classic sift-down would give."""
    last = n - 1
    if last == 0:
        return
    t, eid, code = ht[last], he[last], hc[last]
    i = 0
    while True:
        c = 2 * i + 1
        if c >= last:
            break
        r = c + 1
        if r < last:
            tc, tr = ht[c], ht[r]
            c += (tr < tc) | ((tr == tc) & (he[r] < he[c]))
        ht[i], he[i], hc[i] = ht[c], he[c], hc[c]
        i = c
    _sift_up_into(ht, he, hc, i, t, eid, code)


def new_tally(start_s: float, period_s: float | None, level: float = 0.0):
    """(state, bins): a LevelTally from `start_s`; period_s None: no bins (NaN in the state)."""
    state = np.array([start_s, np.nan if not period_s else float(period_s), float(level), start_s, 0.0, 0.0,
                      0.0, -np.inf])
    return state, np.zeros(64)


@njit(cache=True, inline="always")
def _advance(ts, bins, now_s):
    last = ts[T_LAST]
    level = ts[T_LEVEL]
    ts[T_LAST] = now_s
    if level == 0:
        return
    if level > ts[T_MAX]:
        ts[T_MAX] = level
    ts[T_AREA] += level * (now_s - last)
    p = ts[T_PERIOD]
    if np.isnan(p):
        return
    start = ts[T_START]
    x = now_s - start
    if x < ts[T_SAFE]:  # certainly the period of `last`: Python's two floor divisions agree on it
        bins[int(ts[T_BIN])] += level * (now_s - last)
        return
    k0 = int((last - start) // p)
    k1 = int(x // p)
    ts[T_BIN] = k1
    # Below (k1 + 1) * p by a margin of a few ulps, x // p is k1 (x never decreases).
    edge = (k1 + 1) * p
    ts[T_SAFE] = edge - 8.0 * np.spacing(edge)
    if k0 == k1:
        bins[k0] += level * (now_s - last)
        return
    edge = start + (k0 + 1) * p
    bins[k0] += level * (edge - last)
    for k in range(k0 + 1, k1):
        bins[k] += level * p
    bins[k1] += level * (now_s - (start + k1 * p))


@njit(cache=True, inline="always")
def tally_full(ts, bins, now_s):
    """True when `tally_set(ts, bins, now_s, ...)` needs a larger bins array (`tally_grow`)."""
    p = ts[T_PERIOD]
    if np.isnan(p) or ts[T_LEVEL] == 0 or not now_s > ts[T_LAST]:
        return False
    x = now_s - ts[T_START]
    if x < ts[T_SAFE]:
        return False
    return int(x // p) >= bins.size


@njit(cache=True)
def tally_grow(ts, bins, now_s):
    """A bins array large enough for `now_s` (its values copied)."""
    k1 = int((now_s - ts[T_START]) // ts[T_PERIOD])
    size = bins.size
    while size <= k1:
        size *= 2
    grown = np.zeros(size)
    grown[:bins.size] = bins
    return grown


@njit(cache=True, inline="always")
def tally_set(ts, bins, now_s, level):
    """LevelTally.set: the level becomes `level` at `now_s` (bins large enough for `now_s`)."""
    if now_s > ts[T_LAST]:
        _advance(ts, bins, now_s)
    ts[T_LEVEL] = level
    if level > ts[T_MAX] and now_s >= ts[T_START]:
        ts[T_MAX] = level


@njit(cache=True)
def tally_close(ts, bins, end_s):
    """Account up to `end_s`; returns the bins (grown if needed)."""
    if end_s > ts[T_LAST]:
        if tally_full(ts, bins, end_s):
            bins = tally_grow(ts, bins, end_s)
        _advance(ts, bins, end_s)
    return bins


def tally_to_python(ts: np.ndarray, bins: np.ndarray, tally) -> None:
    """Copy a compiled tally's state into a `sim.tally.LevelTally` (same start and period)."""
    tally.level = ts[T_LEVEL] if ts[T_LEVEL] != int(ts[T_LEVEL]) else int(ts[T_LEVEL])
    tally.last_s = float(ts[T_LAST])
    tally.area = float(ts[T_AREA])
    tally.max_level = ts[T_MAX] if ts[T_MAX] != int(ts[T_MAX]) else int(ts[T_MAX])
    if tally.bins is not None:
        used = bins.size
        while used > 0 and bins[used - 1] == 0.0:
            used -= 1
        tally.bins = bins[:used].tolist()

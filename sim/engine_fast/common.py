"""Compiled building blocks of the fast engine: SimPy's event order and `LevelTally`, in numba.

**Event order.** SimPy processes events by (time, event id), ids counting up as events are
scheduled, so two events at the same time run in the order they were scheduled. The fast
kernels give every event they schedule the next id of one counter, in the order the SimPy
models schedule theirs (completions, expiry timers, and the arrival process's own timeout
before each request that arrives later than the previous one), and keep pending events ordered
on (time, id), in a binary min-heap (or a ring, below). That is what makes ties (constant
service times, arrivals at the same instant) resolve exactly as in the SimPy engine.

**Heap.** Parallel arrays: time (float64), id (int64) and an int64 code into which the caller
packs what the event carries. Kernels never allocate or hand arrays back (that would cost
atomic reference counting on every event): their drivers make the arrays large enough before
each call.

**Ring.** Completions of a service time that varies little come nearly in the order they are
scheduled, so a kernel may keep them in a ring of the same parallel arrays, sorted on (time,
id): the next is at its head, and a new one goes in at the back, moving past the few later
ones (`ring_push`); one that would move past many sends the ring's latest event to a heap
instead, so a long completion costs one heap push however many short ones follow it. The next
event is then the earlier of the ring's head and the heap's top.

**Tally.** A `LevelTally` (sim/tally.py) as a float64 state vector ``[start_s, period_s, level,
last_s, area, max_level, bin, safe]`` plus a bins array; `tally_set` performs exactly the
floating-point operations of `LevelTally.set` in the same order, so areas and per-period bins
are identical. `tally_step` is the same on the state as a tuple, which a kernel carries in
locals for a tally it sets on every event. `tally_to_python` copies the state into a
`LevelTally` so the platforms' `levels()` and `cost()` read it unchanged.
"""
from __future__ import annotations

import numpy as np
from numba import njit

T_START, T_PERIOD, T_LEVEL, T_LAST, T_AREA, T_MAX, T_BIN, T_SAFE = range(8)
# T_BIN: the period of `last` (`_cross`); T_SAFE: a time offset below which a later time is
# certainly still in that period (the exact floor division is skipped only then).


def new_heap(capacity: int = 1024):
    """(times, ids, codes): the caller packs what an event carries into its int64 code."""
    return np.empty(capacity), np.empty(capacity, np.int64), np.empty(capacity, np.int64)


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


RING_SHIFTS = 16  # events a completion may move past in the ring before the latest moves to the heap


def new_ring(capacity: int = 64):
    """(times, ids, codes) of a completion ring: `capacity` must be a power of two."""
    return new_heap(capacity)


@njit(cache=True, inline="always")
def ring_push(rt, re, rc, head, n, t, eid, code, ht, he, hc, hn):
    """Schedule event (t, eid, code), `eid` later than every event queued, in the ring of the
    n < rt.size events from `head` sorted on (time, id); returns (n, hn).

    Completions of a service time that varies little come nearly in the order they are
    scheduled: the later events move up a place each, in one loop (inline), until the event's
    place; the exit of that loop is the one branch that a varying number of them mispredicts.
    Past RING_SHIFTS of them, `_ring_insert` takes over. (Positions are cast to unsigned: numba
    then skips its wraparound of negative indices.)"""
    mask = rt.size - 1
    lo = n - RING_SHIFTS if n > RING_SHIFTS else 0
    k = n
    while k > lo:
        s = np.uint64((head + k - 1) & mask)
        if not rt[s] > t:
            break
        d = np.uint64((head + k) & mask)
        rt[d], re[d], rc[d] = rt[s], re[s], rc[s]
        k -= 1
    if k == lo and k > 0 and rt[np.uint64((head + k - 1) & mask)] > t:
        return _ring_insert(rt, re, rc, head, n, k, t, eid, code, ht, he, hc, hn)
    d = np.uint64((head + k) & mask)
    rt[d], re[d], rc[d] = t, eid, code
    return n + 1, hn


@njit(cache=True, _nrt=False)
def _ring_insert(rt, re, rc, head, n, k, t, eid, code, ht, he, hc, hn):
    """`ring_push` of an event that more than RING_SHIFTS events are later than (the ones from
    place k on, moved up a place, move back first). The ring's latest event moves to the heap
    (hn events, room made by the driver) until the event has its place within RING_SHIFTS of
    the end: an event moves at most once, so a long one (a cold start, a timeout) costs a heap
    push, not a move per later completion. Its id being the largest, the event goes after every
    event at its time."""
    mask = rt.size - 1
    for i in range(k, n):
        d, s = (head + i) & mask, (head + i + 1) & mask
        rt[d], re[d], rc[d] = rt[s], re[s], rc[s]
    while True:
        k = n
        lo = n - RING_SHIFTS if n > RING_SHIFTS else 0
        while k > lo and rt[(head + k - 1) & mask] > t:
            k -= 1
        if k == 0 or not rt[(head + k - 1) & mask] > t:
            break
        b = (head + n - 1) & mask
        heap_push(ht, he, hc, hn, rt[b], re[b], rc[b])
        hn += 1
        n -= 1
    for i in range(n, k, -1):
        d, s = (head + i) & mask, (head + i - 1) & mask
        rt[d], re[d], rc[d] = rt[s], re[s], rc[s]
    d = (head + k) & mask
    rt[d], re[d], rc[d] = t, eid, code
    return n + 1, hn


def new_tally(start_s: float, period_s: float | None, level: float = 0.0):
    """(state, bins): a LevelTally from `start_s`; period_s None: no bins (NaN in the state)."""
    state = np.array([start_s, np.nan if not period_s else float(period_s), float(level), start_s, 0.0, 0.0,
                      0.0, -np.inf])
    return state, np.zeros(64)


@njit(cache=True, inline="always")
def tally_load(ts):
    """A tally's state vector as a tuple, to be carried in locals (`tally_step`)."""
    return ts[T_START], ts[T_PERIOD], ts[T_LEVEL], ts[T_LAST], ts[T_AREA], ts[T_MAX], ts[T_BIN], ts[T_SAFE]


@njit(cache=True, inline="always")
def tally_store(ts, st):
    """Write a tuple of `tally_load` back into the state vector."""
    ts[T_START], ts[T_PERIOD], ts[T_LEVEL], ts[T_LAST], ts[T_AREA], ts[T_MAX], ts[T_BIN], ts[T_SAFE] = st


@njit(cache=True, inline="always")
def _advance(st, bins, now_s):
    """LevelTally's accounting from its last change to `now_s` (> last) at the current level."""
    start, p, level, last, area, top, k, safe = st
    if level != 0:
        if level > top:
            top = level
        area += level * (now_s - last)
        if not np.isnan(p):
            x = now_s - start
            if x < safe:  # certainly the period of `last`: Python's two floor divisions agree on it
                bins[int(k)] += level * (now_s - last)
            else:
                k, safe = _cross(bins, start, p, level, last, now_s, x)
    return start, p, level, now_s, area, top, k, safe


@njit(cache=True, _nrt=False)
def _cross(bins, start, p, level, last, now_s, x):
    """`_advance` into another period than that of `last` (x = now_s - start): the bins get
    their parts; returns the new period and the offset below which a time is still in it."""
    k0 = int((last - start) // p)
    k1 = int(x // p)
    # Below (k1 + 1) * p by a margin of a few ulps, x // p is k1 (x never decreases).
    edge = (k1 + 1) * p
    safe = edge - 8.0 * np.spacing(edge)
    if k0 == k1:
        bins[k0] += level * (now_s - last)
    else:
        edge = start + (k0 + 1) * p
        bins[k0] += level * (edge - last)
        for k in range(k0 + 1, k1):
            bins[k] += level * p
        bins[k1] += level * (now_s - (start + k1 * p))
    return float(k1), safe


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
def tally_step(st, bins, now_s, level):
    """LevelTally.set on a tuple state: the level becomes `level` at `now_s` (bins large enough
    for `now_s`); returns the new state. Kernels keep a busy tally so, in locals."""
    if now_s > st[T_LAST]:
        st = _advance(st, bins, now_s)
    start, p, _, last, area, top, k, safe = st
    if level > top and now_s >= start:
        top = float(level)
    return start, p, float(level), last, area, top, k, safe


@njit(cache=True, inline="always")
def tally_set(ts, bins, now_s, level):
    """LevelTally.set: the level becomes `level` at `now_s` (bins large enough for `now_s`)."""
    tally_store(ts, tally_step(tally_load(ts), bins, now_s, level))


@njit(cache=True)
def tally_close(ts, bins, end_s):
    """Account up to `end_s`; returns the bins (grown if needed)."""
    if end_s > ts[T_LAST]:
        if tally_full(ts, bins, end_s):
            bins = tally_grow(ts, bins, end_s)
        tally_store(ts, _advance(tally_load(ts), bins, end_s))
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

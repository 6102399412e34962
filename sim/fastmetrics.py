"""Compiled kernels (numba) behind `Collector.add_chunk` and `LogHistogram.add`.

Each kernel reproduces, bit for bit, the numpy expression it replaced (tests/test_fastmetrics.py
keeps those expressions as its reference):

- **Minutes.** ``(x - warmup_s) // period_s`` as numpy's ``floor_divide`` computes it
  (`floordiv` is numpy's ``npy_divmod``). For ``0 <= a < 2**50 * period_s`` that is the exact
  floor of ``a / period_s`` (fmod is exact and the division's rounding error is below 1/2), so
  it is monotone and minute ``m`` is the interval ``[edges[m], edges[m + 1])`` of a table of
  first values (`fill_minute_edges`, computed with `floordiv`): a minute costs one division and
  one comparison, and only a comparison when it is that of the previous request (arrivals
  are sorted; completions mostly fall in the minute of the previous one).
- **Histogram buckets.** From numpy's own ``np.log``, which the caller computes: numpy's SIMD
  log and the C library's (numba's ``math.log``) differ in the last bit for about 1 value in
  2,000, which would move values that sit on a bucket edge. The rest (subtract ``log_min``,
  multiply by ``1 / log(gamma)``, ceil, clip, under/overflow) is `bucket_counts`.
- **p99 per arrival minute.** Nearest rank ``ceil(0.99 * size)`` of the latencies of one minute
  (``np.lexsort`` then indexing, before): a selection, the k-th largest in a min-heap of k
  values, over the values above a lower bound (sampled when the minute is large, else guessed
  from the previous minute's p99) when at least k are; a zero keeps the sign it has in a
  stable sort (`minute_p99`). A chunk's minutes are counted in one pass (`scan_chunk`), their
  p99 taken after the histogram has accepted the latencies (`close_minutes`).
- **Float sums** stay with numpy (``ndarray.sum``, pairwise): the kernels only fill buffers with
  the summands in the order the numpy code had them.

Assumption: arrival times are non-decreasing within and across chunks (`scan_chunk` checks),
so the minutes of the ok requests come in contiguous groups.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

_JIT = {"cache": True, "nogil": True, "error_model": "numpy"}

# Problems `scan_chunk` reports (0: none); the caller grows its arrays for NO_ROOM and turns the
# others into ValueError.
UNSORTED, BAD_ARRIVAL, BAD_DONE, NO_ROOM = 1, 2, 3, 4

# Minutes are capped so that the floor division stays exact (see the module docs).
MAX_MINUTE = 2.0 ** 50


@njit(**_JIT)
def floordiv(a, b):
    """``a // b`` exactly as numpy's ``floor_divide`` for float64 (its ``npy_divmod``); b != 0."""
    mod = np.fmod(a, b)
    div = (a - mod) / b
    if mod != 0.0:
        if (b < 0.0) != (mod < 0.0):
            div -= 1.0
    if div != 0.0:
        floor = math.floor(div)
        if div - floor > 0.5:
            floor += 1.0
        return floor
    return math.copysign(0.0, a / b)


@njit(**_JIT)
def fill_minute_edges(edges, start, period_s):
    """``edges[m]`` for ``m >= start``: the least float64 ``a >= 0`` with ``a // period_s >= m``."""
    for m in range(start, edges.size):
        if m == 0:
            edges[0] = 0.0
            continue
        x = m * period_s
        while floordiv(x, period_s) < m:
            x = np.nextafter(x, np.inf)
        while floordiv(np.nextafter(x, -np.inf), period_s) >= m:
            x = np.nextafter(x, -np.inf)
        edges[m] = x


@njit(**_JIT)
def _minute(a, edges, period_s):
    """``int(a // period_s)`` for ``0 <= a`` with ``a / period_s < MAX_MINUTE`` (edges cover it)."""
    m = int(a / period_s)  # the exact floor, or one more when the division rounded up to it
    if a < edges[m]:
        m -= 1
    return m


@njit(**_JIT)
def scan_chunk(t, status, cold, latency_ms, done_s, warmup_s, period_s, codes, last_t, edges, counts,
               lat_ok, sojourn_s, group_minute, group_start, carry_minute, sign, stop):
    """One pass over rows ``[0, stop)`` of a chunk: checks, totals, summands and per-minute counts.

    Rows with ``t >= warmup_s`` count. Fills ``lat_ok`` with their ok latencies and ``sojourn_s``
    with ``done_s - t`` of their served (ok or timeout) rows, both in row order; adds ``sign``
    times the per-minute counts to ``counts`` (rows: arrivals, completions, rejections (throttled
    or rejected), timeouts, cold starts; completions by completion minute, the others by arrival
    minute); and notes where the ok latencies of each arrival minute start: the ``n_groups``
    minutes after ``carry_minute`` (the one the previous chunk ended in) in ``group_minute``, and
    their first index in ``lat_ok`` in ``group_start`` (`close_minutes` takes their p99).

    Returns ``(totals, problem, row, last_t, n_groups, need)``: totals ``[requests, ok,
    throttled, rejected, timeout, cold, served]``; problem 0, or, at the first row (``row``) that
    has one: `UNSORTED` (an arrival before ``last_t``, the previous one), `BAD_ARRIVAL` /
    `BAD_DONE` (an arrival, or an ok completion, that has no minute in ``[0, MAX_MINUTE)``: a
    completion before the warm-up, an infinite or NaN time), or `NO_ROOM` (its minute is past
    ``edges``; ``need`` minutes would do). With a problem, ``counts`` holds the counts of the
    rows before ``row``: the same call with ``sign = -1`` and ``stop = row`` takes them back.

    Counts of the current minutes are kept in locals and added to ``counts`` (and the totals)
    when they change (an increment of the same array slot per request would be a chain through
    memory). Buffer positions are cast to unsigned: numba then skips its wraparound of negative
    indices.
    """
    ok, throttled, rejected, timeout = codes
    n = n_ok = n_served = n_cold = n_throttled = n_rejected = n_timeout = 0
    m = -1  # arrival minute, the start of the next one, and its counts not yet in `counts`
    m_end = -math.inf
    arrivals = rejections = timeouts = colds = 0
    done_m = -1  # completion minute of the last ok request, its bounds, and its count not yet in `counts`
    done_lo, done_hi = math.inf, -math.inf
    completions = 0
    n_groups = 0
    problem = row = need = 0
    for i in range(stop):
        ti = t[i]
        if not ti >= warmup_s:
            continue
        if ti < last_t:
            problem, row = UNSORTED, i
            break
        a = ti - warmup_s
        if a >= m_end:
            if not a / period_s < MAX_MINUTE:
                problem, row = BAD_ARRIVAL, i
                break
            if int(a / period_s) + 1 >= edges.size:
                problem, row, need = NO_ROOM, i, int(a / period_s) + 2
                break
            if m >= 0:
                counts[0, m] += sign * arrivals
                counts[2, m] += sign * rejections
                counts[3, m] += sign * timeouts
                counts[4, m] += sign * colds
                n, n_timeout, n_cold = n + arrivals, n_timeout + timeouts, n_cold + colds
                arrivals = rejections = timeouts = colds = 0
            m = _minute(a, edges, period_s)
            m_end = edges[m + 1]
        s = status[i]
        if s == ok:
            d = done_s[i] - warmup_s
            if not (d >= done_lo and d < done_hi):  # not the minute of the previous completion
                if not (d >= 0.0 and d / period_s < MAX_MINUTE):
                    problem, row = BAD_DONE, i
                    break
                if int(d / period_s) + 1 >= edges.size:
                    problem, row, need = NO_ROOM, i, int(d / period_s) + 2
                    break
                if completions:
                    counts[1, done_m] += sign * completions
                    completions = 0
                done_m = _minute(d, edges, period_s)
                done_lo, done_hi = edges[done_m], edges[done_m + 1]
            completions += 1
            if m != carry_minute:  # the first ok request of a new minute
                group_minute[n_groups] = m
                group_start[n_groups] = n_ok
                n_groups += 1
                carry_minute = m
            lat_ok[np.uint64(n_ok)] = latency_ms[i]
            n_ok += 1
            sojourn_s[np.uint64(n_served)] = done_s[i] - ti
            n_served += 1
        elif s == throttled:
            n_throttled += 1
            rejections += 1
        elif s == rejected:
            n_rejected += 1
            rejections += 1
        elif s == timeout:
            timeouts += 1
            sojourn_s[np.uint64(n_served)] = done_s[i] - ti
            n_served += 1
        last_t = ti
        arrivals += 1
        colds += cold[i]
    if m >= 0:
        counts[0, m] += sign * arrivals
        counts[2, m] += sign * rejections
        counts[3, m] += sign * timeouts
        counts[4, m] += sign * colds
        n, n_timeout, n_cold = n + arrivals, n_timeout + timeouts, n_cold + colds
    if completions:
        counts[1, done_m] += sign * completions
    totals = np.empty(7, np.int64)
    totals[0], totals[1], totals[2], totals[3], totals[4], totals[5], totals[6] = (
        n, n_ok, n_throttled, n_rejected, n_timeout, n_cold, n_served)
    return totals, problem, row, last_t, n_groups, need


@njit(**_JIT)
def close_minutes(p99, lat_ok, n_ok, group_minute, group_start, n_groups, carry, carry_n, carry_minute):
    """The p99 of every arrival minute a chunk closed (`scan_chunk`'s groups): a minute closes
    when a later one has an ok request. The latencies of the last minute (``carry_n`` in
    ``carry`` from earlier chunks, then the chunk's) stay in ``carry`` (large enough) for the
    next chunk. Returns ``(carry_n, carry_minute)``. (Each p99 takes the previous minute's as
    its hint: `minute_p99`.)"""
    start = 0
    for g in range(n_groups):
        end = group_start[g]
        if carry_n or end > start:
            p99[carry_minute] = minute_p99(carry[:carry_n], lat_ok[start:end], p99[carry_minute - 1]
                                           if carry_minute > 0 else math.nan)
        carry_n = 0
        carry_minute = group_minute[g]
        start = end
    carry[carry_n:carry_n + n_ok - start] = lat_ok[start:n_ok]
    return carry_n + n_ok - start, carry_minute


@njit(**_JIT)
def _kth_largest(a, b, k):
    """The k-th largest value of ``a`` and ``b`` (1 <= k <= their size): the smallest of the k
    largest, kept in a min-heap (k = 1, any minute of up to 100 values: the maximum)."""
    if k == 1:
        top = -math.inf
        for x in a:
            top = max(top, x)
        for x in b:
            top = max(top, x)
        return top
    heap = np.empty(k)
    for i in range(a.size + b.size):
        x = a[i] if i < a.size else b[i - a.size]
        if i < k:  # fill: sift up
            c = i
            while c > 0:
                p = (c - 1) // 2
                if heap[p] <= x:
                    break
                heap[c] = heap[p]
                c = p
            heap[c] = x
        elif x > heap[0]:  # replace the smallest: sift down
            c = 0
            while True:
                child = 2 * c + 1
                if child >= k:
                    break
                if child + 1 < k and heap[child + 1] < heap[child]:
                    child += 1
                if heap[child] >= x:
                    break
                heap[c] = heap[child]
                c = child
            heap[c] = x
    return heap[0]


_SAMPLE = 1024  # values sampled to bound the p99 of a large minute from below
_HINT_FACTOR = 0.8  # of the previous minute's p99: a threshold most minutes' k largest reach


@njit(**_JIT)
def minute_p99(a, b, hint):
    """Nearest-rank p99 of the values of ``a`` then ``b`` (not empty; no NaN, none negative).

    The value at 0-based rank ``ceil(0.99 * size) - 1`` of a stable ascending sort, that is the
    k-th largest, ``k = size - rank``. Only the values at or above a threshold are searched,
    when at least k of them are: then the k largest are all among them. The threshold is, in a
    large minute, a high quantile of an evenly spaced sample; in another, `_HINT_FACTOR` times
    `hint`, a guess of the result (the previous minute's p99; NaN: none). The result does not
    depend on the threshold. Equal values are the same float except 0.0 and -0.0, which a stable
    sort keeps in order of sight: a zero result is the rank-th zero seen.
    """
    size = a.size + b.size
    rank = int(np.ceil(0.99 * size)) - 1
    k = size - rank
    search_a, search_b = a, b
    threshold = _HINT_FACTOR * hint
    if size >= 4 * _SAMPLE:
        sample = np.empty(_SAMPLE)
        for i in range(_SAMPLE):
            j = i * size // _SAMPLE
            sample[i] = a[j] if j < a.size else b[j - a.size]
        above = _SAMPLE * k / size  # sampled values expected above the answer; take a margin
        threshold = _kth_largest(sample, sample[:0], min(_SAMPLE, int(above + 4.0 * math.sqrt(above)) + 2))
    if k > 1 and threshold > 0.0:
        pool = np.empty(size)
        n = 0
        for x in a:  # branch-free: a value is kept by moving past it
            pool[n] = x
            n += x >= threshold
        for x in b:
            pool[n] = x
            n += x >= threshold
        if n >= k:  # (else the threshold was too high: search all)
            search_a, search_b = pool[:n], pool[:0]
    value = _kth_largest(search_a, search_b, k)
    if value == 0.0:
        zeros = -1
        for i in range(size):
            x = a[i] if i < a.size else b[i - a.size]
            if x == 0.0:
                zeros += 1
                if zeros == rank:
                    return x
    return value


@njit(**_JIT)
def bucket_counts(counts, values, log_values, log_min, inv_log_gamma, min_value, max_value):
    """Add each value to its `LogHistogram` bucket in ``counts`` (underflow, n regular, overflow).

    ``log_values`` is numpy's ``np.log(values)``; the index is ``clip(ceil((log - log_min) *
    inv_log_gamma), 0, n - 1)`` in float64, exactly as `LogHistogram.add` computed it with numpy.
    The indices are computed first, all of them, then counted.
    """
    n = counts.size - 2
    last = float(n - 1)
    pos = np.empty(values.size, np.uint32)  # (unsigned: numba skips its wraparound of negative indices)
    under, over = np.uint32(0), np.uint32(n + 1)
    for i in range(values.size):  # no branch: vectorised
        x = np.ceil((log_values[i] - log_min) * inv_log_gamma)
        x = x if x > 0.0 else 0.0
        regular = np.uint32(x if x < last else last) + np.uint32(1)
        v = values[i]
        pos[i] = under if v < min_value else over if v > max_value else regular
    for i in range(values.size):
        counts[pos[i]] += 1

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
  values, over the values above a sampled lower bound when the minute is large; a zero keeps
  the sign it has in a stable sort (`minute_p99`).
- **Float sums** stay with numpy (``ndarray.sum``, pairwise): the kernels only fill buffers with
  the summands in the order the numpy code had them.

Assumption: arrival times are non-decreasing within and across chunks (`gather_chunk` checks),
so the minutes of the ok requests come in contiguous groups.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

_JIT = {"cache": True, "nogil": True, "error_model": "numpy"}

# Problems `gather_chunk` reports (0: none); the caller turns them into ValueError.
UNSORTED, BAD_ARRIVAL, BAD_DONE = 1, 2, 3

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
def gather_chunk(t, status, cold, latency_ms, done_s, warmup_s, period_s, codes, last_t,
                 lat_ok, sojourn_s):
    """First pass over a chunk: counts, checks, and the summands; changes nothing but the buffers.

    Rows with ``t >= warmup_s`` count. Fills ``lat_ok`` with their ok latencies and ``sojourn_s``
    with ``done_s - t`` of their served (ok or timeout) rows, both in row order. Returns
    ``(totals, problem, last_t, max_minute)``: totals ``[requests, ok, throttled, rejected,
    timeout, cold, served]``; problem 0, or `UNSORTED` (an arrival before ``last_t``, the previous
    one), `BAD_ARRIVAL` / `BAD_DONE` (an arrival, or an ok completion, that has no minute in
    ``[0, MAX_MINUTE)``: a completion before the warm-up, an infinite or NaN time); the last
    arrival counted; and the largest minute estimate ``int(a / period_s)`` met, for sizing the
    per-minute arrays. A chunk with a problem counts nothing (the caller raises).
    """
    ok, throttled, rejected, timeout = codes
    totals = np.zeros(7, np.int64)
    # Counts in locals (an increment of an array slot per request would be a chain through
    # memory). The division of the minute check is done once, on the latest ok completion:
    # ``a / period_s`` does not decrease as `a` grows, so no completion fails it if that one passes.
    n = n_ok = n_served = n_cold = n_throttled = n_rejected = n_timeout = 0
    done_top = 0.0
    for i in range(t.size):
        ti = t[i]
        if not ti >= warmup_s:
            continue
        if ti < last_t:
            return totals, BAD_DONE if not done_top / period_s < MAX_MINUTE else UNSORTED, last_t, 0
        last_t = ti
        s = status[i]
        n += 1
        n_cold += cold[i]
        if s == ok:
            lat_ok[n_ok] = latency_ms[i]
            n_ok += 1
            a = done_s[i] - warmup_s
            if not a >= 0.0:
                return totals, BAD_DONE, last_t, 0
            done_top = max(done_top, a)
            sojourn_s[n_served] = done_s[i] - ti
            n_served += 1
        elif s == throttled:
            n_throttled += 1
        elif s == rejected:
            n_rejected += 1
        elif s == timeout:
            n_timeout += 1
            sojourn_s[n_served] = done_s[i] - ti
            n_served += 1
    if not done_top / period_s < MAX_MINUTE:
        return totals, BAD_DONE, last_t, 0
    totals[0], totals[1], totals[2], totals[3], totals[4], totals[5], totals[6] = (
        n, n_ok, n_throttled, n_rejected, n_timeout, n_cold, n_served)
    top = done_top
    if n:
        a = last_t - warmup_s
        if not a / period_s < MAX_MINUTE:
            return totals, BAD_ARRIVAL, last_t, 0
        top = max(top, a)
    return totals, 0, last_t, int(top / period_s)


@njit(**_JIT)
def tally_chunk(t, status, cold, done_s, warmup_s, period_s, codes, edges, counts, p99,
                lat_ok, carry, carry_n, carry_minute):
    """Second pass (after `gather_chunk` found no problem and `LogHistogram.add` accepted
    ``lat_ok``): per-minute counts and p99.

    ``counts`` rows: arrivals, completions, rejections (throttled or rejected), timeouts, cold
    starts. Latencies of ok requests (``lat_ok``, from `gather_chunk`) are grouped by arrival
    minute; a minute's p99 goes to ``p99`` when a later minute starts, and the latencies of the
    last minute stay in ``carry`` (``carry_n`` of them, of ``carry_minute``) for the next chunk.
    ``edges`` and ``carry`` must be large enough. Returns ``(carry_n, carry_minute)``.

    Counts of the current minute are kept in locals and added to ``counts`` when it changes
    (an increment of the same array slot per request would be a chain through memory).
    """
    ok, throttled, rejected, timeout = codes
    m = -1  # arrival minute, the start of the next one, and its counts not yet in `counts`
    m_end = -math.inf
    arrivals = rejections = timeouts = colds = 0
    done_m = -1  # completion minute of the last ok request, its bounds, and its count not yet in `counts`
    done_lo, done_hi = math.inf, -math.inf
    completions = 0
    group_start = 0  # in lat_ok, of the ok requests of minute carry_minute
    j = 0  # ok requests so far
    for i in range(t.size):
        ti = t[i]
        if not ti >= warmup_s:
            continue
        a = ti - warmup_s
        if a >= m_end:
            if m >= 0:
                counts[0, m] += arrivals
                counts[2, m] += rejections
                counts[3, m] += timeouts
                counts[4, m] += colds
                arrivals = rejections = timeouts = colds = 0
            m = _minute(a, edges, period_s)
            m_end = edges[m + 1]
        s = status[i]
        arrivals += 1
        colds += cold[i]
        if s != ok:
            if s == throttled or s == rejected:
                rejections += 1
            elif s == timeout:
                timeouts += 1
            continue
        a = done_s[i] - warmup_s
        if not (a >= done_lo and a < done_hi):  # not the minute of the previous completion
            if completions:
                counts[1, done_m] += completions
            done_m = _minute(a, edges, period_s)
            done_lo, done_hi = edges[done_m], edges[done_m + 1]
            completions = 0
        completions += 1
        if m != carry_minute:  # the first ok request of a new minute closes the previous one
            if carry_n or j > group_start:
                p99[carry_minute] = minute_p99(carry[:carry_n], lat_ok[group_start:j])
            carry_n = 0
            carry_minute = m
            group_start = j
        j += 1
    if m >= 0:
        counts[0, m] += arrivals
        counts[2, m] += rejections
        counts[3, m] += timeouts
        counts[4, m] += colds
    if completions:
        counts[1, done_m] += completions
    if j > group_start:
        carry[carry_n:carry_n + j - group_start] = lat_ok[group_start:j]
        carry_n += j - group_start
    return carry_n, carry_minute


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


@njit(**_JIT)
def minute_p99(a, b):
    """Nearest-rank p99 of the values of ``a`` then ``b`` (not empty; no NaN, none negative).

    The value at 0-based rank ``ceil(0.99 * size) - 1`` of a stable ascending sort, that is the
    k-th largest, ``k = size - rank``. In a large minute only the values at or above a threshold
    (a high quantile of an evenly spaced sample) are searched, when at least k of them are:
    then the k largest are all among them. Equal values are the same float except 0.0 and -0.0,
    which a stable sort keeps in order of sight: a zero result is the rank-th zero seen.
    """
    size = a.size + b.size
    rank = int(np.ceil(0.99 * size)) - 1
    k = size - rank
    search_a, search_b = a, b
    if size >= 4 * _SAMPLE:
        sample = np.empty(_SAMPLE)
        for i in range(_SAMPLE):
            j = i * size // _SAMPLE
            sample[i] = a[j] if j < a.size else b[j - a.size]
        above = _SAMPLE * k / size  # sampled values expected above the answer; take a margin
        threshold = _kth_largest(sample, sample[:0], min(_SAMPLE, int(above + 4.0 * math.sqrt(above)) + 2))
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
    """
    n = counts.size - 2
    last = float(n - 1)
    for i in range(values.size):
        v = values[i]
        if v < min_value:
            pos = 0
        elif v > max_value:
            pos = n + 1
        else:
            x = np.ceil((log_values[i] - log_min) * inv_log_gamma)
            pos = int(min(max(x, 0.0), last)) + 1
        counts[pos] += 1

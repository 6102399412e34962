"""What a simulation reports: metric names (defined once), request outcomes, and their aggregation.

Engines resolve every request into an outcome (status, cold start, latency, completion time) in
chunks that follow the arrival chunks; `Collector` turns finalised chunks into the reported
figures without keeping per-request arrays: latencies stream into a log-bucketed histogram, and
the per-minute series are counts. Only requests that arrive at or after the end of warm-up count.

Definitions:
- latency_ms: from arrival to response, for completed (status ok) requests only; throttled,
  rejected and timed-out requests are counted apart and are not in the percentiles.
- per-minute series: arrivals, rejections, timeouts, cold starts and p99 by *arrival* minute;
  completions by completion minute; instances as the time average over the minute.
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np
import pandas as pd

from . import fastmetrics
from .histogram import LogHistogram

# Request status codes (the measurement table's names in STATUS_NAMES).
OK, THROTTLED, REJECTED, TIMEOUT = 0, 1, 2, 3
STATUS_NAMES = {OK: "ok", THROTTLED: "throttled", REJECTED: "rejected", TIMEOUT: "timeout"}

# Result keys (DESIGN.md "Result"): may be added to, never renamed.
RESULT_KEYS = ("platform", "kind", "requests", "completed", "rejected", "cold_starts",
               "cold_start_fraction", "latency_ms", "instances", "utilization", "cost_usd",
               "cost_per_million_usd", "horizon_s", "engine")
LATENCY_KEYS = ("mean", "p50", "p90", "p95", "p99", "p999", "max")
LATENCY_QUANTILES = (0.5, 0.9, 0.95, 0.99, 0.999)
RECORD_COLUMNS = ("request", "arrival_s", "status", "cold", "work_ms", "init_ms", "latency_ms", "done_s",
                  "provisioned", "in_window")
SERIES_COLUMNS = ("minute", "start_s", "arrivals", "completions", "rejections", "timeouts",
                  "cold_starts", "instances", "busy", "p99_ms")
_COUNT_NAMES = SERIES_COLUMNS[2:7]  # the per-minute counts, in `fastmetrics.scan_chunk`'s row order
_CODES = (OK, THROTTLED, REJECTED, TIMEOUT)  # in the order the kernels unpack them
_PROBLEMS = {fastmetrics.UNSORTED: "arrival times must be non-decreasing within and across chunks",
             fastmetrics.BAD_ARRIVAL: "an arrival time is infinite or too far beyond the warm-up",
             fastmetrics.BAD_DONE: "an ok request completes before the warm-up ends, or at an infinite or NaN time"}


class Collector:
    """Aggregates finalised chunks of request outcomes for one platform run.

    The per-request work is done by the compiled kernels of `sim.fastmetrics`; chunks must come
    in arrival order (arrival times non-decreasing within and across chunks).
    """

    def __init__(self, warmup_s: float, period_s: float = 60.0,
                 record_sink: Callable[[pd.DataFrame], None] | None = None):
        if not (math.isfinite(period_s) and period_s > 0):
            raise ValueError(f"period_s must be finite and > 0, got {period_s!r}")
        self.warmup_s = warmup_s
        self.period_s = period_s
        self.hist = LogHistogram()
        self.requests = 0
        self.completed = 0
        self.throttled = 0
        self.rejected_queue = 0
        self.timeouts = 0
        self.cold_starts = 0
        self.sojourn_s = 0.0  # sum over served requests (ok and timeout) of time in system
        self.served = 0
        # Per minute (columns, grown on demand): counts (rows in _COUNT_NAMES order), p99 of the
        # ok latencies (nan: none yet), and the least t - warmup_s of each minute (see fastmetrics).
        self._counts = np.zeros((len(_COUNT_NAMES), 0), np.int64)
        self._p99 = np.zeros(0)
        self._edges = np.zeros(0)
        # Latencies of the ok requests of the last arrival minute seen, waiting for the next chunk.
        self._carry = np.zeros(0)
        self._carry_n = 0
        self._carry_minute = -1
        self._last_t = -math.inf  # last arrival counted
        self._lat_ok = np.zeros(0)  # per-chunk buffers (`fastmetrics.scan_chunk`)
        self._sojourn = np.zeros(0)
        self._group_minute = np.zeros(0, np.int64)
        self._group_start = np.zeros(0, np.int64)
        self._record_sink = record_sink
        self._first_index = 0

    def add_chunk(self, t: np.ndarray, status: np.ndarray, cold: np.ndarray,
                  latency_ms: np.ndarray, done_s: np.ndarray, extra: dict | None = None) -> None:
        """Take one finalised chunk (all its requests resolved), in arrival order.

        Raises `ValueError`, having counted nothing of the chunk, when an arrival precedes an
        earlier one, an ok request has no valid latency (see `LogHistogram.add`) or completes
        before the warm-up ends.
        """
        first = self._first_index
        self._first_index += t.size
        if self._record_sink is not None:
            extra = extra or {}
            rec = {"request": np.arange(first, first + t.size), "arrival_s": t,
                   "status": pd.Categorical.from_codes(status, [STATUS_NAMES[i] for i in range(4)]),
                   "cold": cold, "work_ms": extra.get("work_ms"), "init_ms": extra.get("init_ms"),
                   "latency_ms": latency_ms, "done_s": done_s,
                   "provisioned": extra.get("provisioned", np.zeros(t.size, dtype=bool)),
                   "in_window": t >= self.warmup_s}
            self._record_sink(pd.DataFrame(rec, columns=list(RECORD_COLUMNS)))
        t = np.asarray(t, dtype=np.float64)
        latency_ms = np.asarray(latency_ms, dtype=np.float64)
        done_s = np.asarray(done_s, dtype=np.float64)
        cold = np.asarray(cold, dtype=bool)
        status = np.asarray(status)
        if self._lat_ok.size < t.size:
            self._lat_ok = np.empty(t.size)
            self._sojourn = np.empty(t.size)
            self._group_minute = np.empty(t.size, np.int64)
            self._group_start = np.empty(t.size, np.int64)
        # Room for the last arrival's minute and the next: a scan that runs out of room (a later
        # completion) is taken back and made again.
        top = (t[-1] - self.warmup_s) / self.period_s if t.size else -1.0
        if 0.0 <= top < fastmetrics.MAX_MINUTE:
            self._reserve(int(top) + 3, 0)
        while True:
            totals, problem, row, last_t, n_groups = self._scan(t, status, cold, latency_ms, done_s, 1, t.size)
            if not problem:
                break
            self._scan(t, status, cold, latency_ms, done_s, -1, row)  # takes back the counts of the rows before
            if problem != fastmetrics.NO_ROOM:
                raise ValueError(_PROBLEMS[problem])
        n, n_ok, n_throttled, n_rejected, n_timeout, n_cold, n_served = totals.tolist()
        if n == 0:
            return
        try:
            self.hist.add(self._lat_ok[:n_ok])  # validates the latencies before anything is counted
        except ValueError:
            self._scan(t, status, cold, latency_ms, done_s, -1, t.size)
            raise
        self._last_t = last_t
        self.requests += n
        self.completed += n_ok
        self.throttled += n_throttled
        self.rejected_queue += n_rejected
        self.timeouts += n_timeout
        self.cold_starts += n_cold
        self.served += n_served
        self.sojourn_s += float(self._sojourn[:n_served].sum())
        self._reserve(0, self._carry_n + n_ok)
        self._carry_n, self._carry_minute = fastmetrics.close_minutes(
            self._p99, self._lat_ok, n_ok, self._group_minute, self._group_start, n_groups, self._carry,
            self._carry_n, self._carry_minute)

    def _scan(self, t, status, cold, latency_ms, done_s, sign: int, stop: int):
        """`fastmetrics.scan_chunk` of rows [0, stop); grows the per-minute arrays when it needs
        room (having taken back what it counted). Returns (totals, problem, row, last_t, n_groups)."""
        out = fastmetrics.scan_chunk(t, status, cold, latency_ms, done_s, self.warmup_s, self.period_s, _CODES,
                                     self._last_t, self._edges, self._counts, self._lat_ok, self._sojourn,
                                     self._group_minute, self._group_start, self._carry_minute, sign, stop)
        if out[1] == fastmetrics.NO_ROOM:
            self._reserve(out[5], 0)
        return out[:5]

    def _reserve(self, minutes: int, carry: int) -> None:
        """Room for `minutes` minutes and `carry` carried latencies (capacities double)."""
        have = self._edges.size
        if have < minutes:
            size = max(minutes, 2 * have)
            self._counts = np.concatenate([self._counts, np.zeros((len(_COUNT_NAMES), size - have), np.int64)], 1)
            self._p99 = np.concatenate([self._p99, np.full(size - have, math.nan)])
            self._edges = np.concatenate([self._edges, np.empty(size - have)])
            fastmetrics.fill_minute_edges(self._edges, have, self.period_s)
        if self._carry.size < carry:
            grown = np.empty(max(carry, 2 * self._carry.size))
            grown[:self._carry_n] = self._carry[:self._carry_n]
            self._carry = grown

    def close(self) -> None:
        if self._carry_n:
            m = self._carry_minute
            self._p99[m] = fastmetrics.minute_p99(self._carry[:self._carry_n], self._carry[:0],
                                                  self._p99[m - 1] if m > 0 else math.nan)
            self._carry_n = 0

    @property
    def wants_records(self) -> bool:
        return self._record_sink is not None

    @property
    def rejected(self) -> int:
        return self.throttled + self.rejected_queue

    def latency_summary(self) -> dict:
        h = self.hist
        if h.count == 0:
            return {k: None for k in LATENCY_KEYS}
        qs = h.quantiles(LATENCY_QUANTILES)
        out = {"mean": h.mean}
        out.update({k: float(q) for k, q in zip(("p50", "p90", "p95", "p99", "p999"), qs)})
        out["max"] = h.max
        return out

    def series(self, n_periods: int, instances: np.ndarray, busy: np.ndarray) -> pd.DataFrame:
        """The per-period time series of the measured window, as a flat table."""
        def fit(a: np.ndarray) -> np.ndarray:
            out = np.zeros(n_periods, dtype=a.dtype)
            k = min(n_periods, a.size)
            out[:k] = a[:k]
            return out

        p99 = np.full(n_periods, np.nan)
        k = min(n_periods, self._p99.size)
        p99[:k] = self._p99[:k]
        data = {"minute": np.arange(n_periods),
                "start_s": self.warmup_s + self.period_s * np.arange(n_periods)}
        for name, counts in zip(_COUNT_NAMES, self._counts):
            data[name] = fit(counts)
        data["instances"] = instances
        data["busy"] = busy
        data["p99_ms"] = p99
        return pd.DataFrame(data, columns=list(SERIES_COLUMNS))

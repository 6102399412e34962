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


class Collector:
    """Aggregates finalised chunks of request outcomes for one platform run."""

    def __init__(self, warmup_s: float, period_s: float = 60.0,
                 record_sink: Callable[[pd.DataFrame], None] | None = None):
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
        self._counts: dict[str, np.ndarray] = {k: np.zeros(0, np.int64) for k in
                                               ("arrivals", "completions", "rejections", "timeouts", "cold_starts")}
        self._p99: list[float] = []
        self._carry_minute = -1
        self._carry: np.ndarray = np.zeros(0)
        self._record_sink = record_sink
        self._first_index = 0

    def _bump(self, name: str, minutes: np.ndarray) -> None:
        if minutes.size == 0:
            return
        c = np.bincount(minutes)
        arr = self._counts[name]
        if arr.size < c.size:
            arr = np.concatenate([arr, np.zeros(c.size - arr.size, np.int64)])
        arr[: c.size] += c
        self._counts[name] = arr

    def add_chunk(self, t: np.ndarray, status: np.ndarray, cold: np.ndarray,
                  latency_ms: np.ndarray, done_s: np.ndarray, extra: dict | None = None) -> None:
        """Take one finalised chunk (all its requests resolved), in arrival order."""
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
        keep = t >= self.warmup_s
        if not keep.all():
            t, status, cold, latency_ms, done_s = t[keep], status[keep], cold[keep], latency_ms[keep], done_s[keep]
        n = t.size
        if n == 0:
            return
        ok = status == OK
        served = ok | (status == TIMEOUT)
        self.requests += n
        self.completed += int(ok.sum())
        self.throttled += int((status == THROTTLED).sum())
        self.rejected_queue += int((status == REJECTED).sum())
        self.timeouts += int((status == TIMEOUT).sum())
        self.cold_starts += int(cold.sum())
        self.served += int(served.sum())
        self.sojourn_s += float((done_s[served] - t[served]).sum())
        lat_ok = latency_ms[ok]
        self.hist.add(lat_ok)

        minute = ((t - self.warmup_s) // self.period_s).astype(np.int64)
        self._bump("arrivals", minute)
        self._bump("rejections", minute[(status == THROTTLED) | (status == REJECTED)])
        self._bump("timeouts", minute[status == TIMEOUT])
        self._bump("cold_starts", minute[cold])
        self._bump("completions", ((done_s[ok] - self.warmup_s) // self.period_s).astype(np.int64))
        self._p99_by_minute(minute[ok], lat_ok)

    def _p99_by_minute(self, minute: np.ndarray, lat: np.ndarray) -> None:
        """Nearest-rank p99 of the latencies of each arrival minute; the last minute waits for the next chunk."""
        if self._carry.size:
            minute = np.concatenate([np.full(self._carry.size, self._carry_minute), minute])
            lat = np.concatenate([self._carry, lat])
        if minute.size == 0:
            return
        last = minute[-1]
        done = minute < last
        self._store_p99(minute[done], lat[done])
        self._carry_minute = int(last)
        self._carry = lat[~done]

    def _store_p99(self, minute: np.ndarray, lat: np.ndarray) -> None:
        if minute.size == 0:
            return
        order = np.lexsort((lat, minute))
        m, v = minute[order], lat[order]
        starts = np.flatnonzero(np.r_[True, m[1:] != m[:-1]])
        sizes = np.diff(np.r_[starts, m.size])
        ranks = starts + np.ceil(0.99 * sizes).astype(np.int64) - 1
        need = int(m[-1]) + 1
        if len(self._p99) < need:
            self._p99.extend([math.nan] * (need - len(self._p99)))
        for k, val in zip(m[starts].tolist(), v[ranks].tolist()):
            self._p99[k] = val

    def close(self) -> None:
        if self._carry.size:
            self._store_p99(np.full(self._carry.size, self._carry_minute), self._carry)
            self._carry = np.zeros(0)

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
        k = min(n_periods, len(self._p99))
        p99[:k] = self._p99[:k]
        data = {"minute": np.arange(n_periods),
                "start_s": self.warmup_s + self.period_s * np.arange(n_periods)}
        for name in ("arrivals", "completions", "rejections", "timeouts", "cold_starts"):
            data[name] = fit(self._counts[name])
        data["instances"] = instances
        data["busy"] = busy
        data["p99_ms"] = p99
        return pd.DataFrame(data, columns=list(SERIES_COLUMNS))

"""Synthetic traffic: exact non-homogeneous Poisson, diurnal, MMPP, spike, ramp and renewal arrivals.

Every generator here is exact for the rate it states: no gap is capped, no rate read at one
arrival is held over the next gap, and a rate that changes inside a gap is followed exactly.

Method for the rate-driven kinds (`Diurnal`, `Spike`, `Ramp`, and `MMPP` given its state
path): the exact NHPP engine of `nhpp.py`. In short: the window is cut into segments, each with an upper bound
``bound_j >= rate(t)`` (and a lower bound ``floor_j <= rate(t)``). The piecewise-constant
dominating rate has an exactly invertible cumulative rate (piecewise linear), so a unit-rate
Poisson process (cumulative sums of standard exponentials) is mapped through its inverse to a
Poisson process of rate ``bound(t)`` (time rescaling, exact); each candidate is then kept with
probability ``rate(t) / bound_j`` (Lewis-Shedler thinning, exact). A candidate whose uniform
falls under ``floor_j / bound_j`` is kept without evaluating the rate (a squeeze: same decision,
fewer evaluations); on a segment where the rate is constant (``floor_j == bound_j``) no uniform
is drawn at all. Everything is vectorised over fixed blocks of ``_BLOCK`` exponentials, then
re-cut with `rechunk`, so `chunk_size` never changes the arrivals and memory stays flat for
any duration (a periodic rate keeps a table of one period, an MMPP builds its path as it goes).

All generators take `duration_s` and produce arrivals in ``[0, duration_s)``. Rates are in
requests per second, times in seconds from the start of the trace.

Each source also offers ``rate_at(t)`` (expected rate, req/s; 0 outside the window),
``expected_count(start_s=0, end_s=None)`` (expected arrivals in a part of the window),
``scaled(factor)`` (the same traffic shape at ``factor`` times the rate) and ``describe()``.

The scenario keys of each kind are read in `generator_specs.py`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np

from sim.dists import Distribution

from .base import DEFAULT_CHUNK, ArrivalSource, accumulate_gaps, child_seed, rechunk
from .nhpp import (
    BLOCK,
    DAY_S,
    NHPP,
    SLACK,
    PiecewiseLinear,
    Span,
    make_span,
    nonneg_number,
    positive_number,
    rate_array,
    rescaled_blocks,
    scale_factor,
)

__all__ = ["Diurnal", "MMPP", "SpikeShape", "Spike", "Ramp", "Renewal"]


# -- diurnal ---------------------------------------------------------------------------------------

def _shape_for_peak_to_mean(peak_to_mean: float) -> float:
    """k with max/mean of exp(k cos θ) equal to `peak_to_mean`: 1 / i0e(k) = peak_to_mean.

    ``i0e(k) = exp(-k) I0(k)`` falls strictly from 1 (k = 0) towards 0, so the root is unique.
    """
    from scipy.optimize import brentq
    from scipy.special import i0e

    if peak_to_mean == 1.0:
        return 0.0
    target = math.log(peak_to_mean)
    f = lambda k: -math.log(i0e(k)) - target  # noqa: E731 (increasing in k)
    hi = 1.0
    while f(hi) < 0:
        hi *= 2.0
    return float(brentq(f, 0.0, hi, xtol=1e-14, rtol=4 * np.finfo(float).eps))


_LOG_TINY = -700.0
"""Below exp(-700) ≈ 1e-304 of its peak the diurnal curve is taken as 0 (it would underflow to
subnormals anyway; reached only for peak_to_mean above about 25, where it means < 1e-290 req/s)."""


class Diurnal(NHPP):
    """A daily traffic profile, optionally modulated by day of the week; exact NHPP.

    Two forms:

    - ``mean_rps`` + ``peak_to_mean`` (>= 1), peak at ``peak_hour`` (default 14; the trace
      starts at midnight, t = 0): ``rate(h) = mean_rps · exp(k (cos(2π (h − peak_hour)/24) − 1))
      / i0e(k)``, h the hour of the day. Its daily mean is exactly `mean_rps` (the mean of
      ``exp(k cos θ)`` over a period is the Bessel value ``I0(k)``; ``i0e(k) = e^-k I0(k)``) and
      its max/mean is ``1 / i0e(k)``; k solves ``1 / i0e(k) = peak_to_mean`` (any ratio >= 1; k =
      0 is a constant rate). The minimum is ``mean_rps · e^-2k / i0e(k)`` (> 0).
    - ``hourly_rps``: 24 rates (req/s, >= 0, not all 0), constant within each hour; the mean
      rate is their mean.

    ``weekly``: 7 multipliers (>= 0, not all 0; day 0 is the trace's first day), divided by
    their mean so the long-run mean is unchanged. So the long-run mean rate (over whole weeks,
    or whole days without `weekly`) equals `mean_rps` (or ``mean(hourly_rps)``) exactly in
    expectation. `peak_to_mean` describes the daily curve; with `weekly` the overall peak is
    ``peak_to_mean · max(weekly) / mean(weekly)`` times the mean.

    The curve is thinned against per-segment bounds on short segments (5 min, shorter for
    sharp peaks), so about 98 % of candidates are kept at peak_to_mean = 3; the hourly form
    is piecewise constant and needs no thinning.
    """

    kind = "diurnal"

    def __init__(self, duration_s: float, *, mean_rps: float | None = None,
                 peak_to_mean: float | None = None, peak_hour: float = 14.0,
                 hourly_rps: Sequence[float] | None = None, weekly: Sequence[float] | None = None):
        if (hourly_rps is None) == (mean_rps is None):
            raise ValueError("give either mean_rps (with peak_to_mean) or hourly_rps")
        self.weekly = None if weekly is None else rate_array("weekly", weekly, 7)
        wk = np.ones(1) if self.weekly is None else self.weekly / self.weekly.mean()
        days = wk.size
        period = days * DAY_S
        if hourly_rps is not None:
            if peak_to_mean is not None:
                raise ValueError("peak_to_mean goes with mean_rps, not hourly_rps")
            self.hourly_rps = rate_array("hourly_rps", hourly_rps, 24)
            self.mean_rps = float(self.hourly_rps.mean())
            self.peak_to_mean = float(self.hourly_rps.max() / self.mean_rps)
            self.peak_hour = None
            self.k = None
            edges = np.arange(24 * days + 1) * 3600.0
            rates = (wk[:, None] * self.hourly_rps[None, :]).ravel()
            self._table_rates = rates
            super().__init__(self._hourly_rate, edges, rates, duration_s, floors_rps=rates, period_s=period)
            return
        self.hourly_rps = None
        self.mean_rps = positive_number("mean_rps", mean_rps)
        if peak_to_mean is None:
            raise ValueError("mean_rps needs peak_to_mean (>= 1)")
        self.peak_to_mean = positive_number("peak_to_mean", peak_to_mean)
        if self.peak_to_mean < 1:
            raise ValueError(f"peak_to_mean must be >= 1, got {peak_to_mean!r}")
        self.peak_hour = nonneg_number("peak_hour", peak_hour)
        if self.peak_hour >= 24:
            raise ValueError(f"peak_hour must be in [0, 24), got {peak_hour!r}")
        from scipy.special import i0e

        self.k = _shape_for_peak_to_mean(self.peak_to_mean)
        # segments short enough that the rate changes by <~5 % across one (|d ln r/dt| <= k·2π/day)
        per_day = int(min(86400, max(288, math.ceil(self.k * 2 * math.pi / 0.05))))
        self._per_day = per_day
        self._scale_by_day = self.mean_rps * wk / float(i0e(self.k))
        self._omega = 2 * math.pi / DAY_S
        self._phase = 2 * math.pi * self.peak_hour / 24
        edges = np.arange(per_day * days + 1) * (DAY_S / per_day)
        a, b = edges[:-1], edges[1:]
        day = np.arange(per_day * days) // per_day
        ga, gb = self._shape(a), self._shape(b)
        peak_t = day * DAY_S + self.peak_hour * 3600.0
        trough_t = day * DAY_S + ((self.peak_hour + 12) % 24) * 3600.0
        gmax = np.where((a <= peak_t) & (peak_t <= b), 1.0, np.maximum(ga, gb))
        trough = math.exp(-2 * self.k) if -2 * self.k > _LOG_TINY else 0.0
        gmin = np.where((a <= trough_t) & (trough_t <= b), trough, np.minimum(ga, gb))
        c = self._scale_by_day[day]
        if self.k == 0:
            bounds = floors = c
        else:
            bounds, floors = c * gmax * (1 + SLACK), c * gmin * (1 - SLACK)
        super().__init__(self._curve_rate, edges, bounds, duration_s, floors_rps=floors, period_s=period)

    def _shape(self, t: np.ndarray) -> np.ndarray:
        x = self.k * (np.cos(self._omega * t - self._phase) - 1.0)
        return np.where(x > _LOG_TINY, np.exp(x), 0.0)

    def _curve_rate(self, t: np.ndarray, seg: np.ndarray) -> np.ndarray:
        return self._scale_by_day[seg // self._per_day] * self._shape(t)

    def _hourly_rate(self, t: np.ndarray, seg: np.ndarray) -> np.ndarray:
        return self._table_rates[seg]

    def scaled(self, factor: float) -> "Diurnal":
        f = scale_factor(factor)
        weekly = None if self.weekly is None else self.weekly.tolist()
        if self.hourly_rps is not None:
            return Diurnal(self.duration_s, hourly_rps=(self.hourly_rps * f).tolist(), weekly=weekly)
        return Diurnal(self.duration_s, mean_rps=self.mean_rps * f, peak_to_mean=self.peak_to_mean,
                       peak_hour=self.peak_hour, weekly=weekly)

    def _params(self) -> dict:
        weekly = None if self.weekly is None else self.weekly.tolist()
        if self.hourly_rps is not None:
            return {"hourly_rps": self.hourly_rps.tolist(), "weekly": weekly}
        return {"mean_rps": self.mean_rps, "peak_to_mean": self.peak_to_mean,
                "peak_hour": self.peak_hour, "weekly": weekly, "shape_k": self.k}


# -- spike -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SpikeShape:
    """One spike: from `start_s` the rate rises linearly from the base to `peak_rps` over
    `ramp_s`, holds, and falls linearly back over `ramp_s`; `duration_s` is the whole spike,
    both ramps included (so ``2 * ramp_s <= duration_s``). Seconds from the trace's start."""

    start_s: float
    ramp_s: float
    peak_rps: float
    duration_s: float

    def __post_init__(self):
        nonneg_number("start_s", self.start_s)
        nonneg_number("ramp_s", self.ramp_s)
        nonneg_number("peak_rps", self.peak_rps)
        positive_number("duration_s", self.duration_s)
        if 2 * self.ramp_s > self.duration_s:
            raise ValueError(f"2 * ramp_s ({2 * self.ramp_s:g}) must be <= duration_s ({self.duration_s:g})")


class Spike(PiecewiseLinear):
    """A base rate with spikes (`SpikeShape`); exact NHPP.

    ``rate(t) = base_rps + Σ_spikes excess_i(t)``, where a spike's excess rises linearly from 0
    to ``peak_rps − base_rps`` over ``ramp_s``, holds, and falls back over ``ramp_s``:
    overlapping spikes add their excess over the base. ``peak_rps >= base_rps``. A spike may run
    past the end of the window (it is cut there). The rate is piecewise linear; ramps are
    thinned against tight bounds, flat parts are exact without thinning.
    """

    kind = "spike"

    def __init__(self, base_rps: float, spikes: Sequence[SpikeShape], duration_s: float):
        self.base_rps = nonneg_number("base_rps", base_rps)
        self.spikes = tuple(s if isinstance(s, SpikeShape) else SpikeShape(*s) for s in spikes)
        d = positive_number("duration_s", duration_s)
        for i, s in enumerate(self.spikes):
            if s.peak_rps < self.base_rps:
                raise ValueError(f"spikes[{i}].peak_rps ({s.peak_rps:g}) must be >= base_rps ({self.base_rps:g})")
            if s.start_s >= d:
                raise ValueError(f"spikes[{i}].start_s ({s.start_s:g}) must be < duration_s ({d:g})")
        if self.base_rps == 0 and not any(s.peak_rps > 0 for s in self.spikes):
            raise ValueError("the rate is zero everywhere: give base_rps > 0 or a spike with peak_rps > 0")
        knots = {0.0, d}
        for s in self.spikes:
            for x in (s.start_s, s.start_s + s.ramp_s, s.start_s + s.duration_s - s.ramp_s,
                      s.start_s + s.duration_s):
                knots.add(min(max(x, 0.0), d))
        edges = np.array(sorted(knots))
        a, b = edges[:-1], edges[1:]
        m = 0.5 * (a + b)
        r_left = np.full(a.size, self.base_rps)
        r_right = r_left.copy()
        for s in self.spikes:
            v, slope = self._excess(s, m)
            r_left += v + slope * (a - m)
            r_right += v + slope * (b - m)
        r_left, r_right = np.maximum(r_left, 0.0), np.maximum(r_right, 0.0)
        # flat parts: exactly the same value on both sides (sums above may differ by rounding)
        flat = np.isclose(r_left, r_right, rtol=1e-12, atol=0)
        r_right = np.where(flat, r_left, r_right)
        self._init_linear(edges, r_left, r_right, d)

    def _excess(self, s: SpikeShape, m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Value and slope of one spike's excess at points `m` strictly inside its phases."""
        ex = s.peak_rps - self.base_rps
        up_end, down_start, end = s.start_s + s.ramp_s, s.start_s + s.duration_s - s.ramp_s, s.start_s + s.duration_s
        rate = ex / s.ramp_s if s.ramp_s > 0 else 0.0
        up = (m >= s.start_s) & (m < up_end)
        hold = (m >= up_end) & (m < down_start)
        down = (m >= down_start) & (m < end)
        v = np.where(up, rate * (m - s.start_s), 0.0) + np.where(hold, ex, 0.0) \
            + np.where(down, rate * (end - m), 0.0)
        slope = np.where(up, rate, 0.0) - np.where(down, rate, 0.0)
        return v, slope

    def scaled(self, factor: float) -> "Spike":
        f = scale_factor(factor)
        return Spike(self.base_rps * f, [SpikeShape(s.start_s, s.ramp_s, s.peak_rps * f, s.duration_s)
                                         for s in self.spikes], self.duration_s)

    def _params(self) -> dict:
        return {"base_rps": self.base_rps,
                "spikes": [{"start_s": s.start_s, "ramp_s": s.ramp_s, "peak_rps": s.peak_rps,
                            "duration_s": s.duration_s} for s in self.spikes]}

    def __repr__(self) -> str:
        return f"Spike(base_rps={self.base_rps:g}, spikes={len(self.spikes)}, duration_s={self.duration_s:g})"


# -- ramp ------------------------------------------------------------------------------------------

class Ramp(PiecewiseLinear):
    """Rate rising (or falling) linearly from `start_rps` at t = 0 to `end_rps` at
    `duration_s`; exact NHPP (thinned against 64 tight pieces)."""

    kind = "ramp"

    def __init__(self, start_rps: float, end_rps: float, duration_s: float):
        self.start_rps = nonneg_number("start_rps", start_rps)
        self.end_rps = nonneg_number("end_rps", end_rps)
        if self.start_rps == 0 and self.end_rps == 0:
            raise ValueError("start_rps and end_rps are both 0: no traffic")
        d = positive_number("duration_s", duration_s)
        self._init_linear(np.array([0.0, d]), np.array([self.start_rps]), np.array([self.end_rps]), d)

    def scaled(self, factor: float) -> "Ramp":
        f = scale_factor(factor)
        return Ramp(self.start_rps * f, self.end_rps * f, self.duration_s)

    def _params(self) -> dict:
        return {"start_rps": self.start_rps, "end_rps": self.end_rps}


# -- MMPP ------------------------------------------------------------------------------------------

_SOJOURNS = 1024  # sojourns drawn per step of the state path; part of the stream's definition


class MMPP(ArrivalSource):
    """Markov-modulated Poisson process: Poisson at ``rates_rps[i]`` while in state i.

    The state stays for an exponential time of mean ``mean_sojourn_s[i]``, then jumps to one of
    the *other* states, uniformly. The embedded jump chain is then uniform over states, so the
    long-run fraction of time in state i (the stationary distribution of the continuous-time
    chain) is ``π_i = mean_sojourn_s[i] / Σ mean_sojourn_s`` (balance: the flow out of i,
    ``π_i / s_i``, is the same constant for every i, and each state receives ``1/(n−1)`` of the
    others' flow). The initial state is drawn from π and, sojourns being memoryless, the
    process is stationary from t = 0: ``E[N(a, b)] = stationary_rate() · (b − a)`` exactly.

    The state path comes from ``child_seed(seed, 0)``, the arrivals from ``child_seed(seed, 1)``:
    given the path, arrivals are the exact time rescaling of a piecewise-constant rate.
    """

    kind = "mmpp"

    def __init__(self, rates_rps: Sequence[float], mean_sojourn_s: Sequence[float], duration_s: float):
        self.rates_rps = rate_array("rates_rps", rates_rps)
        if self.rates_rps.size < 2:
            raise ValueError("an MMPP needs at least 2 states")
        try:
            self.mean_sojourn_s = np.array([positive_number(f"mean_sojourn_s[{i}]", v)
                                            for i, v in enumerate(mean_sojourn_s)])
        except TypeError:
            raise ValueError(f"mean_sojourn_s must be a list of numbers, got {mean_sojourn_s!r}") from None
        if self.mean_sojourn_s.size != self.rates_rps.size:
            raise ValueError("rates_rps and mean_sojourn_s must have the same length")
        self.duration_s = positive_number("duration_s", duration_s)

    def stationary_distribution(self) -> np.ndarray:
        """Long-run fraction of time in each state: ∝ mean sojourn (uniform jump chain)."""
        return self.mean_sojourn_s / self.mean_sojourn_s.sum()

    def generator_matrix(self) -> np.ndarray:
        """Q of the state chain (per s): leave i at rate 1/s_i, to each other state equally."""
        n = self.rates_rps.size
        out = 1.0 / self.mean_sojourn_s
        q = np.repeat((out / (n - 1))[:, None], n, axis=1)
        np.fill_diagonal(q, -out)
        return q

    def stationary_rate(self) -> float:
        """Long-run (and, from the stationary start, every instant's) expected rate, req/s."""
        return float(self.stationary_distribution() @ self.rates_rps)

    def _spans(self, rng: np.random.Generator) -> Iterator[Span]:
        n = self.rates_rps.size
        state = int(rng.choice(n, p=self.stationary_distribution()))
        t0 = 0.0
        while True:
            steps = rng.integers(1, n, size=_SOJOURNS)  # to one of the others, uniformly
            states = (state + np.concatenate(([0], np.cumsum(steps[:-1])))) % n
            state = int((states[-1] + steps[-1]) % n)
            d = rng.standard_exponential(_SOJOURNS) * self.mean_sojourn_s[states]
            ends = np.cumsum(d)
            starts = np.concatenate(([0.0], ends[:-1]))
            yield make_span(t0, starts, ends, self.rates_rps[states])
            t0 = t0 + float(ends[-1])

    def chunks(self, seed: np.random.SeedSequence, chunk_size: int = DEFAULT_CHUNK) -> Iterator[np.ndarray]:
        path = np.random.default_rng(child_seed(seed, 0))
        rng = np.random.default_rng(child_seed(seed, 1))
        return rechunk(rescaled_blocks(rng, self._spans(path), self.duration_s), chunk_size)

    def rate_at(self, t: np.ndarray) -> np.ndarray:
        """The stationary rate inside the window (the expected rate at any instant), else 0."""
        t = np.asarray(t, dtype=float)
        return np.where((t >= 0) & (t < self.duration_s), self.stationary_rate(), 0.0)

    def expected_count(self, start_s: float = 0.0, end_s: float | None = None) -> float:
        a = min(max(float(start_s), 0.0), self.duration_s)
        b = self.duration_s if end_s is None else min(max(float(end_s), 0.0), self.duration_s)
        return self.stationary_rate() * max(b - a, 0.0)

    def scaled(self, factor: float) -> "MMPP":
        """Every state's rate times `factor` (sojourns unchanged)."""
        return MMPP(self.rates_rps * scale_factor(factor), self.mean_sojourn_s, self.duration_s)

    def describe(self) -> dict:
        return {"kind": self.kind, "rates_rps": self.rates_rps.tolist(),
                "mean_sojourn_s": self.mean_sojourn_s.tolist(), "duration_s": self.duration_s,
                "stationary_rate_rps": self.stationary_rate(), "expected_count": self.expected_count()}

    def __repr__(self) -> str:
        rates = ", ".join(f"{r:g}" for r in self.rates_rps)
        soj = ", ".join(f"{s:g}" for s in self.mean_sojourn_s)
        return f"MMPP(rates_rps=[{rates}], mean_sojourn_s=[{soj}], duration_s={self.duration_s:g})"


# -- renewal ---------------------------------------------------------------------------------------

class Renewal(ArrivalSource):
    """Arrivals separated by i.i.d. gaps drawn from `gap` (seconds).

    The first arrival comes one gap after t = 0 (an ordinary renewal process, not a stationary
    one: with non-exponential gaps the first moments differ slightly from the long run). The
    gap distribution needs a finite mean > 0. `rate_factor` compresses time: gaps are divided by
    it, so the rate is ``rate_factor / mean gap`` (this is what `scaled` does).

    `expected_count` is the long-run value ``length / mean gap`` (elementary renewal theorem):
    exact for exponential gaps; otherwise off by a bounded amount (``(cv² − 1) / 2`` arrivals
    for a window from 0 with gaps of finite variance).
    """

    kind = "renewal"

    def __init__(self, gap: Distribution, duration_s: float, rate_factor: float = 1.0):
        if not isinstance(gap, Distribution):
            raise ValueError(f"gap must be a Distribution, got {gap!r}")
        mean = gap.mean()
        if not (math.isfinite(mean) and mean > 0):
            raise ValueError(f"the gap distribution needs a finite mean > 0, got {mean!r}")
        self.gap = gap
        self.duration_s = positive_number("duration_s", duration_s)
        self.rate_factor = positive_number("rate_factor", rate_factor)
        self.mean_gap_s = mean / self.rate_factor

    def _blocks(self, seed: np.random.SeedSequence) -> Iterator[np.ndarray]:
        rng = np.random.default_rng(seed)
        f = self.rate_factor
        return accumulate_gaps(lambda: self.gap.sample(rng, BLOCK) / f if f != 1.0 else self.gap.sample(rng, BLOCK),
                               self.duration_s)

    def chunks(self, seed: np.random.SeedSequence, chunk_size: int = DEFAULT_CHUNK) -> Iterator[np.ndarray]:
        return rechunk(self._blocks(seed), chunk_size)

    def rate_at(self, t: np.ndarray) -> np.ndarray:
        """The long-run rate ``1 / mean gap`` inside the window, else 0."""
        t = np.asarray(t, dtype=float)
        return np.where((t >= 0) & (t < self.duration_s), 1.0 / self.mean_gap_s, 0.0)

    def expected_count(self, start_s: float = 0.0, end_s: float | None = None) -> float:
        a = min(max(float(start_s), 0.0), self.duration_s)
        b = self.duration_s if end_s is None else min(max(float(end_s), 0.0), self.duration_s)
        return max(b - a, 0.0) / self.mean_gap_s

    def scaled(self, factor: float) -> "Renewal":
        """Gaps divided by `factor` (time compression; the gap shape is kept)."""
        return Renewal(self.gap, self.duration_s, self.rate_factor * scale_factor(factor))

    def describe(self) -> dict:
        return {"kind": self.kind, "gap_s": self.gap.to_spec(), "rate_factor": self.rate_factor,
                "mean_gap_s": self.mean_gap_s, "duration_s": self.duration_s,
                "expected_count": self.expected_count()}

    def __repr__(self) -> str:
        extra = f", rate_factor={self.rate_factor:g}" if self.rate_factor != 1.0 else ""
        return f"Renewal(gap={self.gap!r}{extra}, duration_s={self.duration_s:g})"

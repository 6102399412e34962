"""The exact engine behind the rate-driven generators: a non-homogeneous Poisson process (NHPP).

The window is cut into segments, each with an upper bound ``bound_j >= rate(t)`` (and a lower
bound ``floor_j <= rate(t)``). The piecewise-constant dominating rate has an exactly invertible
cumulative rate (piecewise linear), so a unit-rate Poisson process (cumulative sums of standard
exponentials) is mapped through its inverse to a Poisson process of rate ``bound(t)`` (time
rescaling, exact); each candidate is then kept with probability ``rate(t) / bound_j``
(Lewis-Shedler thinning, exact). A candidate whose uniform falls under ``floor_j / bound_j`` is
kept without evaluating the rate (a squeeze: same decision, fewer evaluations); on a segment
where the rate is constant (``floor_j == bound_j``) no uniform is drawn at all. Everything is
vectorised over fixed blocks of ``BLOCK`` exponentials, then re-cut with `rechunk`, so
`chunk_size` never changes the arrivals and memory stays flat for any duration (a periodic
rate keeps a table of one period).
"""
from __future__ import annotations

import math
from typing import Any, Callable, Iterator, NamedTuple, Sequence

import numpy as np

from .base import DEFAULT_CHUNK, ArrivalSource, rechunk

BLOCK = 65536
"""Exponentials (or gaps) drawn per step; part of the streams' definition (changing it changes
the arrivals, never their distribution)."""

SLACK = 1e-12
"""Relative widening of a computed bound (and narrowing of a floor) on a non-constant segment,
so rounding in the rate's evaluation can never push it over the bound. Any bound >= the rate
keeps thinning exact; this one costs a 1e-12 fraction of extra candidates."""

DAY_S = 86400.0
WEEK_S = 7 * DAY_S

RateFn = Callable[[np.ndarray, np.ndarray], np.ndarray]
"""``rate_fn(t, seg)``: rates (req/s) at times `t` (seconds from the start of the table's
period), `seg` being the index of the table segment that holds each time."""


# -- the engine: time rescaling of a piecewise-constant bound, then thinning -----------------------

class Span(NamedTuple):
    """A run of consecutive segments starting at absolute time `t0`; segment times are relative."""

    t0: float
    starts: np.ndarray   # segment starts (s, relative to t0)
    ends: np.ndarray     # segment ends
    bounds: np.ndarray   # upper bound of the rate on each segment (req/s, >= 0)
    inv: np.ndarray      # 1 / bounds (0 where the bound is 0)
    cum: np.ndarray      # cumulative bound at segment starts, len n + 1 (cum[0] = 0)
    floors: np.ndarray | None  # lower bound of the rate; None: the rate equals the bound everywhere
    thin: np.ndarray | None    # floors < bounds (segments that need thinning); None: none do
    rate_fn: RateFn | None


def make_span(t0: float, starts: np.ndarray, ends: np.ndarray, bounds: np.ndarray,
          floors: np.ndarray | None = None, rate_fn: RateFn | None = None) -> Span:
    widths = bounds * (ends - starts)
    cum = np.empty(bounds.size + 1)
    cum[0] = 0.0
    np.cumsum(widths, out=cum[1:])
    with np.errstate(over="ignore"):  # a subnormal bound: inf, on a segment of width ~0 no point reaches
        inv = np.divide(1.0, bounds, out=np.zeros_like(bounds), where=bounds > 0)
    thin = None
    if floors is not None:
        thin = floors < bounds
        if not thin.any():
            floors, thin = None, None
    return Span(t0, starts, ends, bounds, inv, cum, floors, thin, rate_fn)


def _map_piece(lam: np.ndarray, sp: Span, rng: np.random.Generator) -> np.ndarray:
    """Times (relative to sp.t0) of the kept candidates among unit-rate points `lam`.

    `lam` is sorted, in ``[0, sp.cum[-1])``: coordinates in cumulative-bound space measured
    from the span's start. Each maps to ``start_j + (lam - cum_j) / bound_j`` in the segment j
    with ``cum_j <= lam < cum_{j+1}``; segments of zero bound have zero width and get none.
    """
    cum = sp.cum
    n = lam.size
    last = sp.bounds.size - 1
    lo = min(int(np.searchsorted(cum, lam[0], side="right")) - 1, last)
    hi = min(int(np.searchsorted(cum, lam[-1], side="right")) - 1, last)
    if lo == hi:  # the common case: one segment (no gathers)
        t = sp.starts[lo] + (lam - cum[lo]) * sp.inv[lo]
        np.minimum(t, sp.ends[lo], out=t)
        if sp.thin is None or not sp.thin[lo]:
            return t
        u = rng.random(n) * sp.bounds[lo]
        keep = u < sp.floors[lo]
        undecided = np.flatnonzero(~keep)
        if undecided.size:
            keep[undecided] = u[undecided] < sp.rate_fn(t[undecided], np.full(undecided.size, lo))
        return t[keep]
    # segment of each point: counts of points before each inner boundary, then repeat
    pos = np.searchsorted(lam, cum[lo + 1:hi + 1], side="left")
    counts = np.diff(pos, prepend=0, append=n)
    seg = np.repeat(np.arange(lo, hi + 1), counts)
    t = sp.starts[seg] + (lam - cum[seg]) * sp.inv[seg]
    np.minimum(t, sp.ends[seg], out=t)
    if sp.thin is None:
        return t
    cand = np.flatnonzero(sp.thin[seg])
    if cand.size == 0:
        return t
    cseg = seg[cand]
    u = rng.random(cand.size) * sp.bounds[cseg]
    ok = u < sp.floors[cseg]
    undecided = np.flatnonzero(~ok)
    if undecided.size:
        ok[undecided] = u[undecided] < sp.rate_fn(t[cand[undecided]], cseg[undecided])
    keep = np.ones(n, dtype=bool)
    keep[cand] = ok
    return t[keep]


def rescaled_blocks(rng: np.random.Generator, spans: Iterator[Span], duration_s: float) -> Iterator[np.ndarray]:
    """Arrival times in ``[0, duration_s)`` of the thinned process over consecutive `spans`.

    One unit-rate Poisson process (blocks of ``BLOCK`` exponentials) runs through the spans'
    cumulative-bound space; its coordinates are re-based at each new block so they stay small.
    """
    pts = np.empty(0)
    i = 0          # next unused point
    off = 0.0      # coordinate of the current span's start, in the coordinates of `pts`
    for sp in spans:
        if sp.t0 >= duration_s:
            return
        end = off + sp.cum[-1]
        while True:
            if i == pts.size:  # draw the next block, re-based on the current span's start
                base = float(pts[-1]) - off if pts.size else 0.0
                pts = base + np.cumsum(rng.standard_exponential(BLOCK))
                i, off, end = 0, 0.0, sp.cum[-1]
            k = i + int(np.searchsorted(pts[i:], end, side="left"))
            if k > i:
                tw = _map_piece(pts[i:k] - off, sp, rng)
                if tw.size:
                    t = sp.t0 + tw
                    if t[-1] >= duration_s:
                        yield t[:np.searchsorted(t, duration_s, side="left")]
                        return
                    yield t
            i = k
            if k < pts.size:  # this span is used up
                off = end
                break


# -- validation helpers (programming errors: ValueError) -------------------------------------------

def positive_number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


def nonneg_number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return float(value)


def rate_array(name: str, values: Any, n: int | None = None) -> np.ndarray:
    try:
        arr = np.array([nonneg_number(f"{name}[{i}]", v) for i, v in enumerate(values)], dtype=float)
    except TypeError:
        raise ValueError(f"{name} must be a list of numbers, got {values!r}") from None
    if n is not None and arr.size != n:
        raise ValueError(f"{name} must have {n} values, got {arr.size}")
    if arr.size and not (arr > 0).any():
        raise ValueError(f"{name} must not be all zero")
    return arr


def scale_factor(factor: Any) -> float:
    return positive_number("factor", factor)


# -- the general NHPP ------------------------------------------------------------------------------

class _ScaledRate:
    """``factor * rate_fn`` (a picklable closure)."""

    def __init__(self, rate_fn: RateFn, factor: float):
        self.rate_fn, self.factor = rate_fn, factor

    def __call__(self, t: np.ndarray, seg: np.ndarray) -> np.ndarray:
        return self.factor * self.rate_fn(t, seg)


_GL_X, _GL_W = np.polynomial.legendre.leggauss(8)  # exact for polynomials of degree <= 15


class NHPP(ArrivalSource):
    """Exact non-homogeneous Poisson process for a rate given piecewise, by thinning.

    The rate is ``rate_fn(t, seg)`` (vectorised; `t` in seconds from the start of the period,
    `seg` the index of the segment ``[edges_s[seg], edges_s[seg+1])`` that holds `t`). On
    segment j it must satisfy ``floors_rps[j] <= rate <= bounds_rps[j]`` (checked at each
    segment's ends and middle). With `period_s` the table covers one period
    (``edges_s[-1] == period_s``) and repeats until `duration_s`; without, it covers the window
    (``edges_s[-1] == duration_s``).

    Method (exact; see the module docstring): a Poisson process at the piecewise-constant bound
    by time rescaling (its cumulative rate is piecewise linear, inverted exactly), thinned with
    probability ``rate(t) / bound_j`` (Lewis-Shedler). A segment with ``floor == bound`` has a
    constant rate and is not thinned. Efficiency is the ratio of mean rate to mean bound, so
    give tight bounds; correctness needs only that they hold.

    `expected_count` integrates the rate with 8-point Gauss-Legendre on each half segment (exact
    for polynomials of degree <= 15, ~1e-15 relative for smooth rates on short segments), so the
    rate must be smooth inside each segment: put steps and kinks on `edges_s` (checked).
    """

    kind = "nhpp"

    def __init__(self, rate_fn: RateFn, edges_s: Sequence[float], bounds_rps: Sequence[float],
                 duration_s: float, *, floors_rps: Sequence[float] | None = None,
                 period_s: float | None = None):
        self.duration_s = positive_number("duration_s", duration_s)
        edges = np.asarray(edges_s, dtype=float)
        bounds = np.asarray(bounds_rps, dtype=float)
        if edges.ndim != 1 or edges.size < 2 or bounds.shape != (edges.size - 1,):
            raise ValueError("edges_s needs n + 1 increasing values for n bounds_rps")
        if edges[0] != 0 or not np.all(np.diff(edges) > 0) or not np.all(np.isfinite(edges)):
            raise ValueError("edges_s must start at 0 and increase strictly")
        if not np.all(np.isfinite(bounds)) or np.any(bounds < 0) or not np.any(bounds > 0):
            raise ValueError("bounds_rps must be finite, >= 0 and not all zero")
        floors = np.zeros_like(bounds) if floors_rps is None else np.asarray(floors_rps, dtype=float)
        if floors.shape != bounds.shape or np.any(floors < 0) or np.any(floors > bounds):
            raise ValueError("floors_rps must be one value per segment with 0 <= floor <= bound")
        if period_s is None:
            if edges[-1] != self.duration_s:
                raise ValueError(f"edges_s must end at duration_s={self.duration_s:g} (or give period_s)")
            self.period_s = self.duration_s
            self.periodic = False
        else:
            self.period_s = positive_number("period_s", period_s)
            if edges[-1] != self.period_s:
                raise ValueError(f"edges_s must end at period_s={self.period_s:g}")
            self.periodic = True
        self._rate_fn = rate_fn
        self._edges = edges
        self._span = make_span(0.0, edges[:-1], edges[1:], bounds, floors, rate_fn)
        self._check_bounds()
        self._seg_int = self._segment_integrals()

    # -- construction helpers --------------------------------------------------------------------

    def _check_bounds(self) -> None:
        sp = self._span
        seg = np.arange(sp.bounds.size)
        for t in (sp.starts, 0.5 * (sp.starts + sp.ends), np.nextafter(sp.ends, -np.inf)):
            r = np.asarray(self._rate_fn(t, seg), dtype=float)
            floors = sp.bounds if sp.floors is None else sp.floors
            tol = 1e-9 * np.maximum(sp.bounds, 1e-300)
            if np.any(~np.isfinite(r)) or np.any(r > sp.bounds + tol) or np.any(r < floors - tol):
                j = int(np.argmax(~np.isfinite(r) | (r > sp.bounds + tol) | (r < floors - tol)))
                raise ValueError(f"rate {r[j]!r} at t={t[j]:g} s is outside the segment's "
                                 f"[floor, bound] = [{floors[j]:g}, {sp.bounds[j]:g}]")

    def _segment_integrals(self) -> np.ndarray:
        """∫ rate over each segment; refuses a rate that is not smooth inside a segment (its
        8-point rule disagrees with the rule on the two halves), as a break between edges
        would make `expected_count` wrong (the arrivals would still be exact)."""
        sp = self._span
        out = sp.bounds * (sp.ends - sp.starts)
        if sp.thin is not None:
            j = np.flatnonzero(sp.thin)
            a, b = sp.starts[j], sp.ends[j]
            whole = self._gl(a, b, j)
            m = 0.5 * (a + b)
            halves = self._gl(a, m, j) + self._gl(m, b, j)
            tiny = 1e-12 * sp.cum[-1] / sp.bounds.size  # rounding in (sub)normal values far below the mean
            bad = np.abs(whole - halves) > 1e-7 * sp.bounds[j] * (b - a) + tiny
            if bad.any():
                i = int(j[np.argmax(bad)])
                raise ValueError(f"the rate is not smooth on segment {i} [{sp.starts[i]:g}, {sp.ends[i]:g}) s: "
                                 "put its breaks (steps, kinks) on edges_s")
            out[j] = halves
        return out

    def _gl(self, a: np.ndarray, b: np.ndarray, seg: np.ndarray) -> np.ndarray:
        """∫_a^b rate on each segment (8-point Gauss-Legendre)."""
        half = 0.5 * (b - a)
        t = (0.5 * (a + b))[:, None] + half[:, None] * _GL_X[None, :]
        r = np.asarray(self._rate_fn(t.ravel(), np.repeat(seg, _GL_X.size)), dtype=float)
        return half * (r.reshape(t.shape) @ _GL_W)

    def _cumulative(self, x: float) -> float:
        """Expected arrivals in [0, x), 0 <= x <= duration_s."""
        periods = math.floor(x / self.period_s) if self.periodic else 0
        r = x - periods * self.period_s
        if r < 0:  # x / period rounded up to a whole number
            periods, r = periods - 1, r + self.period_s
        total = periods * float(self._seg_int.sum()) if periods else 0.0
        j = min(int(np.searchsorted(self._edges, r, side="right")) - 1, self._seg_int.size - 1)
        total += float(self._seg_int[:j].sum())
        a = self._edges[j]
        if r > a:
            sp = self._span
            if sp.thin is None or not sp.thin[j]:
                total += float(sp.bounds[j]) * (r - a)
            else:
                total += float(self._gl(np.array([a]), np.array([r]), np.array([j]))[0])
        return total

    # -- the interface ---------------------------------------------------------------------------

    def _spans(self) -> Iterator[Span]:
        sp = self._span
        if not self.periodic:
            yield sp
            return
        p = 0
        while True:
            yield sp._replace(t0=p * self.period_s)
            p += 1

    def chunks(self, seed: np.random.SeedSequence, chunk_size: int = DEFAULT_CHUNK) -> Iterator[np.ndarray]:
        rng = np.random.default_rng(seed)
        return rechunk(rescaled_blocks(rng, self._spans(), self.duration_s), chunk_size)

    def rate_at(self, t: np.ndarray) -> np.ndarray:
        """Rate (req/s) at absolute times `t` (s); 0 outside ``[0, duration_s)``."""
        t = np.asarray(t, dtype=float)
        inside = (t >= 0) & (t < self.duration_s)
        tw = np.where(inside, t, 0.0)
        if self.periodic:
            tw = np.mod(tw, self.period_s)
        seg = np.clip(np.searchsorted(self._edges, tw, side="right") - 1, 0, self._seg_int.size - 1)
        r = np.asarray(self._rate_fn(tw.ravel(), seg.ravel()), dtype=float).reshape(tw.shape)
        return np.where(inside, r, 0.0)

    def expected_count(self, start_s: float = 0.0, end_s: float | None = None) -> float:
        """Expected number of arrivals in ``[start_s, end_s)`` (default: the whole window)."""
        a = min(max(float(start_s), 0.0), self.duration_s)
        b = self.duration_s if end_s is None else min(max(float(end_s), 0.0), self.duration_s)
        return self._cumulative(b) - self._cumulative(a) if b > a else 0.0

    def scaled(self, factor: float) -> "NHPP":
        """The same process at `factor` times the rate (bounds and floors scale with it)."""
        f = scale_factor(factor)
        sp = self._span
        floors = sp.bounds if sp.floors is None else sp.floors
        return NHPP(_ScaledRate(self._rate_fn, f), self._edges, sp.bounds * f, self.duration_s,
                    floors_rps=floors * f, period_s=self.period_s if self.periodic else None)

    def acceptance(self) -> float:
        """Fraction of candidates kept over one table (the thinning's efficiency, in (0, 1])."""
        sp = self._span
        return float(self._seg_int.sum() / sp.cum[-1])

    def _params(self) -> dict:
        return {"segments": int(self._seg_int.size),
                "period_s": self.period_s if self.periodic else None}

    def describe(self) -> dict:
        return {"kind": self.kind, **self._params(), "duration_s": self.duration_s,
                "expected_count": self.expected_count()}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" if not isinstance(v, float) else f"{k}={v:g}"
                         for k, v in self._params().items())
        return f"{type(self).__name__}({args}, duration_s={self.duration_s:g})"


def _linear_table(edges: np.ndarray, r_left: np.ndarray, r_right: np.ndarray, max_pieces: int = 64):
    """Segments of a piecewise-linear rate (value `r_left` at each segment's start, `r_right`
    at its end), sloped ones cut into up to `max_pieces` pieces so the bound stays tight.

    Returns (edges, bounds, floors, r0, slope): on piece j the rate is
    ``r0[j] + slope[j] * (t - edges[j])``.
    """
    a, b = edges[:-1], edges[1:]
    top = np.maximum(r_left, r_right)
    delta = np.abs(r_right - r_left)
    pieces = np.where(delta > 0, np.clip(np.ceil(max_pieces * delta / np.where(top > 0, top, 1.0)),
                                         1, max_pieces), 1).astype(np.int64)
    seg = np.repeat(np.arange(a.size), pieces)
    first = np.repeat(np.cumsum(pieces) - pieces, pieces)
    k = np.arange(seg.size) - first  # piece number within its segment
    m = pieces[seg]
    length = b[seg] - a[seg]
    slope_parent = (r_right - r_left)[seg] / length
    start = a[seg] + length * k / m
    new_edges = np.append(start, b[-1])
    end = new_edges[1:]
    r0 = r_left[seg] + slope_parent * (start - a[seg])
    r1 = r_left[seg] + slope_parent * (end - a[seg])
    flat = (r_left == r_right)[seg]
    r0 = np.where(flat, r_left[seg], np.maximum(r0, 0.0))
    r1 = np.where(flat, r_left[seg], np.maximum(r1, 0.0))
    slope = np.where(flat, 0.0, slope_parent)
    bounds = np.where(flat, r0, np.maximum(r0, r1) * (1 + SLACK))
    floors = np.where(flat, r0, np.minimum(r0, r1) * (1 - SLACK))
    return new_edges, bounds, floors, r0, slope


class PiecewiseLinear(NHPP):
    """An NHPP whose rate is linear on each segment of a table (constant where flat)."""

    def _init_linear(self, edges: np.ndarray, r_left: np.ndarray, r_right: np.ndarray,
                     duration_s: float, period_s: float | None = None) -> None:
        new_edges, bounds, floors, self._r0, self._slope = _linear_table(edges, r_left, r_right)
        self._starts = new_edges[:-1]
        NHPP.__init__(self, self._linear_rate, new_edges, bounds, duration_s, floors_rps=floors,
                      period_s=period_s)

    def _linear_rate(self, t: np.ndarray, seg: np.ndarray) -> np.ndarray:
        return np.maximum(self._r0[seg] + self._slope[seg] * (t - self._starts[seg]), 0.0)

"""Fitting measured durations to distributions the simulator samples, and Lambda memory scaling.

`fit_samples` takes one sample of durations (one configuration, one phase) and chooses a spec:

1. Candidates, each by maximum likelihood: lognorm, gamma, weibull_min and expon with loc fixed
   at 0, and their shifted forms with loc free in [0, min(x) - delta] (delta = 1e-3 of
   median(x) - min(x), at most min(x) / 2: keeps the unbounded likelihood at loc -> min(x) out
   of reach). The shifted fits maximise the profile likelihood over loc (a log-spaced grid over
   min(x) - loc, then a bounded Brent search around the best point). Below `MIN_PARAMETRIC_N`
   (20) samples only the empirical distribution is offered.
2. Bimodality: the data "look bimodal" when a Gaussian KDE of log(x) (Scott's bandwidth) has at
   least two modes each holding >= 5 % of the mass, *and* a two-component lognormal mixture
   (EM on log x) beats the best unimodal candidate by BIC. Bimodal data are then never given a
   unimodal family: those candidates are rejected, the mixture competes alone.
3. Acceptance: a candidate is accepted when its Kolmogorov-Smirnov test does not reject at
   `KS_ALPHA` = 0.01. The p-value is the plain one with the parameters estimated from the same
   data (conservative: it rejects less often than a Lilliefors-corrected test). The
   Anderson-Darling statistic A^2 is computed and reported for every candidate but not used to
   decide (its critical values with estimated parameters are family-specific).
4. Selection by AIC among accepted candidates, then parsimony among nested families: while an
   accepted family nested in the pick (loc = 0 in a shifted form; shape = 1 of gamma or
   weibull_min for expon) is not rejected against it by a likelihood-ratio test at `LR_ALPHA` =
   0.01, take the nested one. (AIC alone gives expon data a gamma with a = 1.03 or lognorm data a
   0.1 ms shift about one time in six; with this rule about one in a hundred.)
5. Tail check: the chosen fit's p99 must be within `P99_TOL` = 5 % of the empirical p99, else
   it is dropped for the fallback. This is strict on purpose (tails are what the simulator is
   for): the empirical p99 itself has a sampling error of about 3 % at n = 5000 and 8 % at
   n = 500, so with few samples a correct family is often replaced by the fallback, which
   reproduces the measured tail instead (gamma data, a = 4, 40 seeds: replaced 75 % of the time
   at n = 40, 25 % at n = 400, 10 % at n = 1000, never at n = 5000). The bootstrap interval of
   the empirical p99 is reported next to both figures so that a reader can judge.
6. Fallback (no accepted candidate, or a p99 miss): with at least `MIN_TAIL_N` / (1 - `SPLICE_AT`)
   samples (1000), the measured values below the 95th percentile spliced to a generalized Pareto
   tail fitted by maximum likelihood to the values above it (Pickands-Balkema-de Haan; tail index
   c < 1 required, so the mean is finite); if that is not possible, fails KS, or misses p99 by
   more than 5 % in turn: the empirical distribution.

Quantiles: empirical ones are numpy's default (linear interpolation); their 95 % confidence
intervals are percentile bootstraps (`bootstrap` resamples, seeded by `rng_seed`). The "fitted"
quantiles of an empirical choice are those same figures (its ppf at 0.99 is one order statistic,
which in a long tail can sit several % from the interpolated one).

`fit_memory_scaling` fits how warm duration scales with Lambda memory (the simulator applies it:
`sim.profile.LambdaScaling`).

`fit_idle_effect` fits how warm duration depends on the idle time before a request
(`sim.config.IdleEffect`) and returns the samples carried to a rested unit, which `fit_samples`
then fits.

`fit_host_share` fits how concurrent work shares the host's CPUs (`sim.config.HostShare`) from
bursts of k simultaneous requests: the stretch of the median duration at k over k = 1.
`fit_init_idle` fits how much slower an INIT is when the host has run none for a while (its
``init_idle_s`` and ``init_idle_factor``), from INITs after host idle against back-to-back ones;
`HostShareFit.entry` puts it in the profile's ``host_share`` when the cores are identified.
`fit_way_in` fits the local gateway's way in (``way_in_ms``, ``way_in_pressure``) from pairs of
requests sent a few milliseconds apart, by simulating each pair on the fitted host.

`ColdRule` decides which requests after an idle period were cold starts of a black-box endpoint
(the ``http`` target), by comparing their latency with the warm requests of the same run.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field, replace
from typing import Sequence

import numpy as np
import scipy.stats as st
from scipy.optimize import brentq, least_squares, minimize, minimize_scalar

from sim.dists import parse_dist
from sim.dists_composite import dist_cdf

__all__ = ["FitReport", "Candidate", "fit_samples", "bootstrap_quantile_ci", "bimodality",
           "fit_memory_scaling", "fit_idle_effect", "IdleFit", "ColdRule", "fit_host_share", "fit_stretch",
           "HostShareFit", "StretchFit", "fit_init_idle", "InitIdleFit", "fit_way_in", "WayInFit",
           "LAMBDA_MB_PER_VCPU", "KS_ALPHA", "P99_TOL"]

FAMILIES = ("lognorm", "gamma", "weibull_min", "expon")
KS_ALPHA = 0.01
LR_ALPHA = 0.01
# family -> the families nested in it (a parameter at a fixed value: loc = 0, or shape = 1)
NESTED = {
    "shifted_lognorm": ("lognorm",),
    "shifted_gamma": ("gamma", "shifted_expon"),
    "shifted_weibull_min": ("weibull_min", "shifted_expon"),
    "shifted_expon": ("expon",),
    "gamma": ("expon",),
    "weibull_min": ("expon",),
}
P99_TOL = 0.05
MIN_PARAMETRIC_N = 20
SPLICE_AT = 0.95
MIN_TAIL_N = 50
MODE_MIN_MASS = 0.05
QUANTILES = (0.5, 0.99, 0.999)
LAMBDA_MB_PER_VCPU = 1769.0
LAMBDA_MAX_VCPU = 6.0


@dataclass(frozen=True)
class Candidate:
    """One candidate fit, accepted or not, and why."""

    family: str               # lognorm, shifted_gamma, mixture_lognorm2, spliced_genpareto, empirical, ...
    spec: dict | None         # None when the fit failed
    k: int | None             # free parameters (None for empirical and spliced: not comparable by AIC)
    loglik: float | None
    aic: float | None
    bic: float | None
    ks: float | None
    ks_p: float | None
    ad: float | None          # Anderson-Darling A^2 (reported, not used to decide)
    p50: float | None
    p99: float | None
    p999: float | None
    accepted: bool
    reason: str               # why accepted or rejected
    chosen: bool = False

    def row(self) -> dict:
        """A flat row for tables (no spec)."""
        return {k: getattr(self, k) for k in ("family", "k", "loglik", "aic", "bic", "ks", "ks_p", "ad",
                                              "p50", "p99", "p999", "accepted", "chosen", "reason")}


@dataclass(frozen=True)
class FitReport:
    """What `fit_samples` chose and everything it weighed. Durations in the sample's unit."""

    spec: dict
    family: str
    params: dict
    method: str                         # parametric | mixture | spliced | empirical
    n: int
    ks: float
    ks_p: float
    ad: float | None
    aic: float | None
    candidates: tuple[Candidate, ...]
    empirical: dict                     # {"p50": .., "p99": .., "p999": ..}
    empirical_ci: dict                  # {"p50": (lo, hi), ...}: bootstrap 95 % intervals (None without bootstrap)
    fitted: dict                        # {"p50": .., "p99": .., "p999": ..} of the chosen distribution
    bimodality: dict = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    @property
    def p99_miss(self) -> float:
        """Relative error of the fitted p99 against the empirical one."""
        return self.fitted["p99"] / self.empirical["p99"] - 1.0

    def table(self) -> list[dict]:
        """The candidate table as flat rows."""
        return [c.row() for c in self.candidates]

    def fit_meta(self) -> dict:
        """The ``fit: {...}`` mapping stored next to the spec in a profile."""
        beaten = [c.family for c in self.candidates if c.family != self.family and c.spec is not None]
        ci99, ci999 = self.empirical_ci.get("p99"), self.empirical_ci.get("p999")
        return {"n": self.n, "method": self.method, "family": self.family,
                "ks": _r(self.ks), "ks_p": _r(self.ks_p), "ad": _r(self.ad), "aic": _r(self.aic),
                "family_beaten": beaten,
                "p50_emp": _r(self.empirical["p50"]), "p50_fit": _r(self.fitted["p50"]),
                "p99_emp": _r(self.empirical["p99"]), "p99_fit": _r(self.fitted["p99"]),
                "p99_ci": [_r(v) for v in ci99] if ci99 else None,
                "p999_emp": _r(self.empirical["p999"]), "p999_fit": _r(self.fitted["p999"]),
                "p999_ci": [_r(v) for v in ci999] if ci999 else None}


def _r(v, digits: int = 6):
    if v is None:
        return None
    v = float(v)
    return float(f"{v:.{digits}g}") if math.isfinite(v) else None


# -- bootstrap ---------------------------------------------------------------------------------------

def bootstrap_quantile_ci(x: np.ndarray, qs: Sequence[float], *, resamples: int, rng: np.random.Generator,
                          level: float = 0.95) -> np.ndarray:
    """Percentile-bootstrap intervals of the empirical quantiles `qs`: an array (len(qs), 2)."""
    x = np.asarray(x, dtype=float)
    n = x.size
    out = np.empty((resamples, len(qs)))
    rows = max(1, 4_000_000 // n)
    for start in range(0, resamples, rows):
        m = min(rows, resamples - start)
        idx = rng.integers(0, n, size=(m, n))
        out[start:start + m] = np.quantile(x[idx], qs, axis=1).T
    a = (1 - level) / 2
    return np.quantile(out, [a, 1 - a], axis=0).T


# -- parametric candidates -----------------------------------------------------------------------------

def _fit_fixed_loc(gen, x: np.ndarray, loc: float) -> tuple[tuple, float]:
    """MLE of shape(s) and scale with loc fixed; returns (scipy params, log-likelihood)."""
    if gen is st.expon:
        params = (loc, float(np.mean(x) - loc))
    elif gen is st.weibull_min:
        c, scale = _weibull_mle(x - loc)
        params = (c, loc, scale)
    else:
        params = gen.fit(x, floc=loc)
    ll = float(np.sum(gen.logpdf(x, *params)))
    return params, ll if math.isfinite(ll) else -math.inf


def _weibull_mle(y: np.ndarray) -> tuple[float, float]:
    """Weibull (loc 0) MLE: the shape c solves sum(y^c ln y) / sum(y^c) - 1/c = mean(ln y) (the
    left side increases with c); then scale = mean(y^c)^(1/c). Returns (c, scale)."""
    ly = np.log(y)
    top, mean_ly = float(ly.max()), float(ly.mean())

    def score(c: float) -> float:
        w = np.exp(c * (ly - top))  # y^c scaled, to stay finite
        return float(np.dot(w, ly) / w.sum()) - 1.0 / c - mean_ly

    c = brentq(score, 1e-3, 1e3, xtol=1e-12, rtol=1e-12)
    scale = math.exp(top + math.log(np.mean(np.exp(c * (ly - top)))) / c)
    return c, scale


def _fit_shifted(gen, x: np.ndarray) -> tuple[tuple, float] | None:
    """MLE with loc free in [0, min(x) - delta], by profile likelihood over loc."""
    xmin = float(x.min())
    spread = float(np.median(x)) - xmin
    if xmin <= 0 or spread <= 0:
        return None
    if gen is st.expon:  # closed form: loc = min(x) (kept delta below it), scale = mean - loc
        loc = max(0.0, xmin - 1e-3 * spread)
        return _fit_fixed_loc(gen, x, loc)
    d_lo = min(1e-3 * spread, 0.5 * xmin)  # d = min(x) - loc, in [d_lo, min(x)]
    grid = np.geomspace(d_lo, xmin, 24)
    nll = {}

    def f(log_d: float) -> float:
        d = math.exp(log_d)
        _, ll = _fit_fixed_loc(gen, x, max(0.0, xmin - d))
        nll[log_d] = -ll
        return -ll

    vals = [f(math.log(d)) for d in grid]
    i = int(np.argmin(vals))
    lo, hi = math.log(grid[max(i - 1, 0)]), math.log(grid[min(i + 1, grid.size - 1)])
    if hi > lo:
        minimize_scalar(f, bounds=(lo, hi), method="bounded", options={"xatol": 1e-4})
    best = min(nll, key=nll.get)
    loc = max(0.0, xmin - math.exp(best))
    return _fit_fixed_loc(gen, x, loc)


def _spec(gen, params: tuple, shifted: bool) -> dict:
    names = [s.strip() for s in gen.shapes.split(",")] if gen.shapes else []
    shapes, loc, scale = params[:-2], float(params[-2]), float(params[-1])
    if gen is st.expon and not shifted:
        return {"dist": "expon", "mean": scale}
    spec = {"dist": gen.name, **{n: float(v) for n, v in zip(names, shapes)}, "scale": scale}
    if shifted:
        spec["loc"] = loc
    return spec


def _ad_statistic(cdf_sorted: np.ndarray) -> float:
    """Anderson-Darling A^2 from the fitted CDF at the sorted sample."""
    n = cdf_sorted.size
    f = np.clip(cdf_sorted, 1e-300, 1 - 1e-16)
    i = np.arange(1, n + 1)
    return float(-n - np.mean((2 * i - 1) * (np.log(f) + np.log1p(-f[::-1]))))


def _evaluate(family: str, spec: dict, k: int | None, ll: float | None, xs: np.ndarray) -> Candidate:
    """Goodness of fit and quantiles of one fitted spec against the sorted sample xs."""
    n = xs.size
    try:
        dist = parse_dist(spec)
    except Exception as exc:  # a fit outside the family's valid range: not a candidate
        return _failed(family, f"fit not a valid distribution: {exc}")
    cdf = dist_cdf(dist, xs)
    ks = st.kstest(xs, lambda v: dist_cdf(dist, v))
    if spec["dist"] == "empirical":  # the measured quantiles by definition (ppf(0.99) is an order statistic)
        q = np.quantile(xs, QUANTILES)
    else:
        q = dist.ppf(np.array(QUANTILES))
    aic = bic = None
    if k is not None and ll is not None and math.isfinite(ll):
        aic, bic = 2 * k - 2 * ll, k * math.log(n) - 2 * ll
    return Candidate(family, spec, k, ll, aic, bic, float(ks.statistic), float(ks.pvalue), _ad_statistic(cdf),
                     float(q[0]), float(q[1]), float(q[2]), accepted=True, reason="")


def _failed(family: str, reason: str) -> Candidate:
    return Candidate(family, None, None, None, None, None, None, None, None, None, None, None, False, reason)


def _unimodal_candidates(xs: np.ndarray) -> list[Candidate]:
    """The four families with loc = 0 and shifted, fitted to the sorted sample xs."""
    x = xs
    out = []
    for name in FAMILIES:
        gen = getattr(st, name)
        k0 = 1 if name == "expon" else 2
        for shifted in (False, True):
            family = f"shifted_{name}" if shifted else name
            if x.min() <= 0:
                out.append(_failed(family, "needs every sample > 0"))
                continue
            reason = "no spread above the minimum to shift"
            try:
                with warnings.catch_warnings(), np.errstate(all="ignore"):
                    warnings.simplefilter("ignore")
                    fitted = _fit_shifted(gen, x) if shifted else _fit_fixed_loc(gen, x, 0.0)
            except Exception as exc:  # scipy's optimisers give up on some samples
                fitted, reason = None, f"fit failed: {exc}"
            if fitted is None or not math.isfinite(fitted[1]):
                out.append(_failed(family, reason if fitted is None else "log-likelihood not finite"))
                continue
            params, ll = fitted
            out.append(_evaluate(family, _spec(gen, params, shifted), k0 + shifted, ll, xs))
    return out


# -- bimodality and the mixture ---------------------------------------------------------------------------

def _em_normal2(y: np.ndarray, split: float, iters: int = 1000, tol: float = 1e-10):
    """EM for a two-component normal mixture on y, started by splitting at `split`."""
    lo = y <= split
    w = np.array([lo.mean(), 1 - lo.mean()])
    mu = np.array([y[lo].mean(), y[~lo].mean()])
    floor = 1e-3 * max(float(y.std()), 1e-12)
    sd = np.array([max(y[lo].std(), floor), max(y[~lo].std(), floor)])
    prev = -math.inf
    for _ in range(iters):
        logp = np.log(w)[:, None] + st.norm.logpdf(y[None, :], mu[:, None], sd[:, None])
        ll_i = np.logaddexp(logp[0], logp[1])
        ll = float(ll_i.sum())
        r = np.exp(logp - ll_i)
        nk = r.sum(axis=1)
        if np.any(nk < 2):
            return None
        w = nk / y.size
        mu = (r * y).sum(axis=1) / nk
        sd = np.maximum(np.sqrt((r * (y - mu[:, None]) ** 2).sum(axis=1) / nk), floor)
        if ll - prev < tol * y.size:
            break
        prev = ll
    return w, mu, sd, ll


def bimodality(x: np.ndarray) -> dict:
    """Modes of a Gaussian KDE (Scott's bandwidth) of log x holding >= 5 % of the mass each."""
    y = np.log(x)
    if y.size > 20000:  # the KDE's shape does not need more
        y = np.sort(y)[np.linspace(0, y.size - 1, 20000).astype(int)]
    if np.ptp(y) <= 0:
        return {"modes": [], "masses": [], "antimode": None, "two_modes": False}
    grid = np.linspace(y.min(), y.max(), 512)
    dens = st.gaussian_kde(y)(grid)
    peaks = np.flatnonzero((dens[1:-1] > dens[:-2]) & (dens[1:-1] >= dens[2:])) + 1
    if dens[0] > dens[1]:
        peaks = np.r_[0, peaks]
    if dens[-1] > dens[-2]:
        peaks = np.r_[peaks, grid.size - 1]
    # split the grid at the density minimum between consecutive peaks; merge light modes away
    while True:
        cuts = [int(peaks[j] + np.argmin(dens[peaks[j]:peaks[j + 1] + 1])) for j in range(len(peaks) - 1)]
        edges = [0, *cuts, grid.size - 1]
        cum = np.concatenate([[0.0], np.cumsum((dens[1:] + dens[:-1]) / 2 * np.diff(grid))])
        masses = np.array([cum[edges[j + 1]] - cum[edges[j]] for j in range(len(peaks))]) / cum[-1]
        if len(peaks) <= 1 or masses.min() >= MODE_MIN_MASS:
            break
        peaks = np.delete(peaks, int(np.argmin(masses)))  # the lightest mode joins its neighbours
    antimode = float(np.exp(grid[cuts[int(np.argmax(masses[:-1] + masses[1:]))]])) if len(peaks) >= 2 else None
    return {"modes": np.exp(grid[peaks]).tolist(), "masses": masses.tolist(), "antimode": antimode,
            "two_modes": len(peaks) >= 2}


def _mixture_candidate(xs: np.ndarray, antimode: float) -> Candidate:
    y = np.log(xs)
    with np.errstate(all="ignore"):
        em = _em_normal2(y, math.log(antimode))
    if em is None:
        return _failed("mixture_lognorm2", "EM collapsed a component")
    w, mu, sd, ll_y = em
    order = np.argsort(mu)
    spec = {"dist": "mixture", "weights": [float(w[i]) for i in order],
            "components": [{"dist": "lognorm", "s": float(sd[i]), "scale": float(math.exp(mu[i]))} for i in order]}
    return _evaluate("mixture_lognorm2", spec, 5, ll_y - float(y.sum()), xs)


# -- fallbacks -----------------------------------------------------------------------------------------

def _spliced_candidate(xs: np.ndarray) -> Candidate:
    n = xs.size
    k = int(math.floor(SPLICE_AT * n))
    if n - k < MIN_TAIL_N:
        return _failed("spliced_genpareto", f"needs >= {MIN_TAIL_N} samples above the p{SPLICE_AT * 100:g} "
                                            f"(n >= {math.ceil(MIN_TAIL_N / (1 - SPLICE_AT))})")
    threshold = float(xs[k - 1])
    excess = xs[k:] - threshold
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            c, _, scale = st.genpareto.fit(excess, floc=0)
    except Exception as exc:
        return _failed("spliced_genpareto", f"tail fit failed: {exc}")
    if not (c < 1):
        return _failed("spliced_genpareto", f"tail index c = {c:.3g} >= 1 (infinite mean)")
    spec = {"dist": "spliced", "at": k / n, "body": {"dist": "empirical", "samples": xs[:k].tolist()},
            "tail": {"dist": "genpareto", "c": float(c), "loc": threshold, "scale": float(scale)}}
    return _evaluate("spliced_genpareto", spec, None, None, xs)


def _with(c: Candidate, accepted: bool, reason: str) -> Candidate:
    return replace(c, accepted=accepted, reason=reason)


def _simplest_nested(best: Candidate, accepted: list[Candidate]) -> Candidate:
    """Replace `best` by an accepted candidate nested in it while a likelihood-ratio test (chi-square
    with the difference in parameters as degrees of freedom) does not reject the smaller model at
    `LR_ALPHA`; among several such, the one with the lowest AIC."""
    by_family = {c.family: c for c in accepted}
    pick = best
    while True:
        subs = [by_family[f] for f in NESTED.get(pick.family, ()) if f in by_family]
        subs = [c for c in subs if st.chi2.sf(max(2 * (pick.loglik - c.loglik), 0.0), pick.k - c.k) >= LR_ALPHA]
        if not subs:
            return pick
        pick = min(subs, key=lambda c: c.aic)


def _ks_checked(c: Candidate) -> Candidate:
    ok = c.ks_p >= KS_ALPHA
    return _with(c, ok, f"KS p = {c.ks_p:.3g} {'>=' if ok else '<'} {KS_ALPHA:g}")


def _p99_missed(c: Candidate, emp99: float) -> bool:
    return abs(c.p99 / emp99 - 1.0) > P99_TOL


# -- the fit --------------------------------------------------------------------------------------------

def fit_samples(x: np.ndarray, *, rng_seed: int = 0, bootstrap: int = 200) -> FitReport:
    """Choose a distribution for the durations `x` (finite, >= 0); see the module docstring."""
    x = np.asarray(x, dtype=float).ravel()
    if x.size == 0:
        raise ValueError("no samples to fit")
    if not np.all(np.isfinite(x)) or x.min() < 0:
        raise ValueError("samples must be finite and >= 0")
    xs = np.sort(x)
    n = xs.size
    rng = np.random.default_rng(rng_seed)
    emp = np.quantile(xs, QUANTILES)
    empirical = dict(zip(("p50", "p99", "p999"), map(float, emp)))
    if bootstrap > 0 and n > 1:
        ci = bootstrap_quantile_ci(xs, QUANTILES, resamples=bootstrap, rng=rng)
        empirical_ci = {k: (float(lo), float(hi)) for k, (lo, hi) in zip(("p50", "p99", "p999"), ci)}
    else:
        empirical_ci = {"p50": None, "p99": None, "p999": None}
    notes: list[str] = []
    bim: dict = {}

    cands: list[Candidate] = []
    if n < MIN_PARAMETRIC_N or np.ptp(xs) == 0:
        notes.append(f"n = {n} < {MIN_PARAMETRIC_N} or no spread: empirical only")
    else:
        cands = _unimodal_candidates(xs)
        if xs[0] > 0:
            bim = bimodality(xs)
            bim["bimodal"] = False
            if bim["two_modes"]:
                mix = _mixture_candidate(xs, bim["antimode"])
                best_uni = min((c.bic for c in cands if c.bic is not None), default=math.inf)
                bim["bic_mixture"], bim["bic_unimodal"] = mix.bic, best_uni
                bim["bimodal"] = mix.bic is not None and mix.bic < best_uni
                if bim["bimodal"]:
                    cands = [_with(c, False, "data bimodal: no unimodal family") if c.spec else c for c in cands]
                elif mix.spec is not None:
                    mix = _with(mix, False, "KDE shows two modes but the mixture does not beat a single family by BIC")
                cands.append(mix)
        cands = [_ks_checked(c) if c.accepted else c for c in cands]

    chosen: Candidate | None = None
    accepted = [c for c in cands if c.accepted]
    if accepted:
        best = min(accepted, key=lambda c: c.aic)
        pick = _simplest_nested(best, accepted)
        miss = pick.p99 / empirical["p99"] - 1
        if _p99_missed(pick, empirical["p99"]):
            notes.append(f"{pick.family} (chosen by AIC) misses the empirical p99 by {miss:+.1%}")
            cands = [_with(c, False, f"{c.reason}; chosen by AIC but p99 off by {miss:+.1%}") if c is pick else c
                     for c in cands]
        else:
            chosen = pick
            why = "lowest AIC" if pick is best else (f"nested in {best.family} (lowest AIC), which a "
                                                      f"likelihood-ratio test at {LR_ALPHA:g} does not prefer")
            cands = [_with(c, True, f"{c.reason}; chosen: {why}") if c is pick else
                     _with(c, True, f"{c.reason}; AIC {c.aic - pick.aic:+.1f} vs chosen") if c.accepted else c
                     for c in cands]
    elif cands:
        notes.append("no parametric candidate passes KS")

    if chosen is None and n >= MIN_PARAMETRIC_N:
        sp = _spliced_candidate(xs)
        if sp.spec is not None:
            sp = _ks_checked(sp)
            if sp.accepted and _p99_missed(sp, empirical["p99"]):
                sp = _with(sp, False, f"{sp.reason}; p99 off by {sp.p99 / empirical['p99'] - 1:+.1%}")
            elif sp.accepted:
                sp = _with(sp, True, f"{sp.reason}; chosen as fallback: empirical body, generalized Pareto "
                                     f"tail above p{SPLICE_AT * 100:g}")
                chosen = sp
        cands.append(sp)
    emp_c = _evaluate("empirical", {"dist": "empirical", "samples": xs.tolist()}, None, None, xs)
    if chosen is None:
        chosen = emp_c = _with(emp_c, True, "chosen as fallback: the measured values, resampled")
    else:
        emp_c = _with(emp_c, False, "not needed")
    cands.append(emp_c)
    cands = [replace(c, chosen=True) if c.family == chosen.family else c for c in cands]
    chosen = next(c for c in cands if c.chosen)

    method = ("empirical" if chosen.family == "empirical" else "spliced" if chosen.family.startswith("spliced")
              else "mixture" if chosen.family.startswith("mixture") else "parametric")
    spec = chosen.spec
    if method == "empirical":
        params: dict = {}
    elif method == "spliced":
        params = {"at": spec["at"], "tail": spec["tail"]}
    else:
        params = {k: v for k, v in spec.items() if k != "dist"}
    return FitReport(spec=spec, family=chosen.family, params=params, method=method, n=n,
                     ks=chosen.ks, ks_p=chosen.ks_p, ad=chosen.ad, aic=chosen.aic, candidates=tuple(cands),
                     empirical=empirical, empirical_ci=empirical_ci,
                     fitted={"p50": chosen.p50, "p99": chosen.p99, "p999": chosen.p999},
                     bimodality=bim, notes=tuple(notes))


# -- Lambda memory scaling ------------------------------------------------------------------------------

def cpu_share(memory_mb) -> np.ndarray:
    """Lambda's CPU share in vCPU: memory / 1769 MB, at most 6."""
    return np.minimum(np.asarray(memory_mb, dtype=float) / LAMBDA_MB_PER_VCPU, LAMBDA_MAX_VCPU)


def _ls_fit(sizes: np.ndarray, t: np.ndarray, cap: float = LAMBDA_MAX_VCPU) -> dict:
    share = np.minimum(sizes / LAMBDA_MB_PER_VCPU, cap)
    design = np.column_stack([np.ones_like(share), 1.0 / share])
    (a, b), *_ = np.linalg.lstsq(design, t, rcond=None)
    fit = a + b / share
    rel = (t - fit) / t
    return {"a_ms": float(a), "b_ms": float(b),
            "residuals": {"memory_mb": [int(m) for m in sizes], "observed_ms": t.tolist(), "fitted_ms": fit.tolist(),
                          "residual_ms": (t - fit).tolist(), "max_abs_rel": float(np.max(np.abs(rel))),
                          "dof": int(t.size - 2)}}


def fit_memory_scaling(memory_mb: Sequence[int], warm_samples: Sequence[np.ndarray]) -> dict:
    """How warm duration (ms) scales with Lambda memory, from the measured sizes.

    Records the measured per-size medians (`points`): the simulator interpolates between them,
    piecewise linearly in 1/share (exact at the measured sizes). Also fits the summary model
    t(m) = a + b / s(m), s(m) = min(m / 1769, cap) vCPU by ordinary least squares on the medians
    (and separately the p99s), with `cap` the number of vCPUs the workload can use, chosen among
    1..6 by the smallest squared error (a single-threaded model stops speeding up at 1 vCPU); the
    simulator uses it only to extrapolate, when a scenario allows it. The residuals show how well
    it holds (CPU-quota throttling at small sizes is not of this form).
    """
    if len(memory_mb) != len(warm_samples):
        raise ValueError("one sample array per memory size")
    sizes = np.asarray(memory_mb, dtype=float)
    if np.unique(sizes).size < 2:
        raise ValueError("memory scaling needs at least two distinct memory sizes")
    order = np.argsort(sizes)
    sizes = sizes[order]
    samples = [np.asarray(warm_samples[i], dtype=float) for i in order]
    med = np.array([np.median(s) for s in samples])
    p99 = np.array([np.quantile(s, 0.99) for s in samples])
    fits = {cap: _ls_fit(sizes, med, cap) for cap in range(1, int(LAMBDA_MAX_VCPU) + 1)}
    cap = min(fits, key=lambda c: (float(np.sum(np.square(fits[c]["residuals"]["residual_ms"]))), -c))
    main, tail = fits[cap], _ls_fit(sizes, p99, cap)
    return {"model": "a + b/share", "statistic": "median", "a_ms": main["a_ms"], "b_ms": main["b_ms"],
            "share_per_mb": 1.0 / LAMBDA_MB_PER_VCPU, "share_max_vcpu": float(cap),
            "measured_mb": [int(sizes[0]), int(sizes[-1])],
            "points": [[int(m), float(t)] for m, t in zip(sizes, med)], "residuals": main["residuals"],
            "p99": {"a_ms": tail["a_ms"], "b_ms": tail["b_ms"], "residuals": tail["residuals"]}}


# -- idle effect --------------------------------------------------------------------------------------

MIN_IDLE_N = 40
IDLE_MIN_EFFECT = 0.03
IDLE_Z = 3.0
REST_FACTOR = 0.9
MIN_REST_N = 100


@dataclass
class IdleFit:
    """`hot_ratio` and `tau_ms` (None when no effect is identified, `reason` says why), the
    samples carried to a rested unit (`rested_ms`, the input itself when there is no effect),
    what the fit saw (`meta`: figures and binned medians, for the profile), and the samples it
    used (`idle_s`, `x_ms`, for the plot)."""

    hot_ratio: float | None
    tau_ms: float | None
    rested_ms: np.ndarray
    meta: dict
    idle_s: np.ndarray
    x_ms: np.ndarray
    reason: str | None = None


def _idle_bins(idle_s: np.ndarray, x: np.ndarray, model) -> list[dict]:
    edges = np.geomspace(max(idle_s.min(), 1e-5), idle_s.max() * 1.000001, 9)
    out = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        m = (idle_s >= lo) & (idle_s < hi)
        if m.sum() >= 3:
            mid = math.sqrt(lo * hi)
            out.append({"idle_ms": [_r(lo * 1000), _r(hi * 1000)], "n": int(m.sum()),
                        "median_ms": _r(float(np.median(x[m]))),
                        "fitted_ms": _r(float(model(np.array([mid]))[0])) if model is not None else None})
    return out


def fit_idle_effect(idle_s: np.ndarray, x: np.ndarray) -> IdleFit:
    """How duration `x` (ms) depends on the idle time `idle_s` (s) of the unit before each request.

    Model (`sim.config.IdleEffect`): x = rested * (1 - (1 - hot_ratio) * exp(-idle / tau)), the
    rested time a random variable. Fitted on log(x) by robust least squares (soft-L1 loss, scale
    0.1, so the tail does not pull the curve), giving log(median rested), hot_ratio and tau. The
    effect is kept only when it is identified: at least `MIN_IDLE_N` samples, idle times spread
    over more than a decade (10th percentile <= 1/10 of the 90th), tau inside the idle times
    measured, |1 - hot_ratio| >= `IDLE_MIN_EFFECT` (3 %) and more than `IDLE_Z` (3) standard errors
    from 0 (errors from the Jacobian at the solution). Otherwise no effect, with the reason.
    `rested_ms`: the samples whose factor is within 10 % of 1 (`REST_FACTOR`), each divided by
    its factor, or all of them so divided when fewer than `MIN_REST_N` (100) are: where enough
    requests reached a rested unit (the calibration's pauses make half of them do), the rested
    distribution, its tail above all, is measured rather than carried over from hot requests
    through the fitted curve. Samples without an idle time are left out; with no effect
    `rested_ms` is every finite sample of `x`.
    """
    idle_s = np.asarray(idle_s, dtype=float)
    x_all = np.asarray(x, dtype=float)
    ok = np.isfinite(idle_s) & np.isfinite(x_all) & (idle_s >= 0) & (x_all > 0)
    idle_s, x = idle_s[ok], x_all[ok]
    meta: dict = {"n": int(x.size)}

    def none(reason: str) -> IdleFit:
        if x.size and idle_s.max() > 0:
            meta["bins"] = _idle_bins(idle_s, x, None)
        return IdleFit(None, None, x_all[np.isfinite(x_all)], {**meta, "reason": reason}, idle_s, x, reason)

    if x.size < MIN_IDLE_N:
        return none(f"{x.size} samples with an idle time (at least {MIN_IDLE_N} needed)")
    q10, q90 = np.quantile(idle_s, [0.1, 0.9])
    meta["idle_ms_p10_p90"] = [_r(q10 * 1000), _r(q90 * 1000)]
    if not q10 <= 0.1 * q90:
        return none(f"idle times do not vary enough (10th to 90th percentile {q10 * 1000:.3g} to {q90 * 1000:.3g} ms; "
                    "measure with spread pauses: calibrate --warm-gap > 0)")
    y = np.log(x)
    late = idle_s >= np.quantile(idle_s, 0.75)
    tau_lo, tau_hi = max(float(idle_s.min()), 1e-5), float(idle_s.max())

    def resid(p):
        b0, c, log_tau = p
        return y - b0 - np.log1p(-c * np.exp(-idle_s / math.exp(log_tau)))

    p0 = [float(np.median(y[late])), 0.3, math.log(math.sqrt(tau_lo * tau_hi))]
    sol = least_squares(resid, p0, bounds=([-np.inf, -9.0, math.log(1e-6)], [np.inf, 0.999, math.log(600.0)]),
                        loss="soft_l1", f_scale=0.1)
    b0, c, log_tau = sol.x
    tau = math.exp(log_tau)
    # Standard errors: Gauss-Newton covariance with the plain Jacobian at the solution and a
    # robust residual scale (1.4826 MAD), as the loss is robust.
    e = np.exp(-idle_s / tau)
    d = 1.0 - c * e
    jac = np.column_stack([-np.ones_like(e), e / d, c * (idle_s / tau) * e / d])
    r = resid(sol.x)
    scale2 = (1.4826 * float(np.median(np.abs(r - np.median(r))))) ** 2
    try:
        cov = np.linalg.inv(jac.T @ jac) * scale2
        se_c, se_log_tau = math.sqrt(cov[1, 1]), math.sqrt(cov[2, 2])
    except (np.linalg.LinAlgError, ValueError):
        se_c = se_log_tau = math.inf
    meta.update(hot_ratio=_r(1.0 - c), hot_ratio_se=_r(se_c), tau_ms=_r(tau * 1000), tau_rel_se=_r(se_log_tau),
                rested_median_ms=_r(math.exp(b0)))

    def model(g):
        return math.exp(b0) * (1.0 - c * np.exp(-g / tau))

    meta["bins"] = _idle_bins(idle_s, x, model)
    if not tau_lo <= tau <= tau_hi:
        return none(f"tau {tau * 1000:.3g} ms is outside the idle times measured ({tau_lo * 1000:.3g} to "
                    f"{tau_hi * 1000:.3g} ms)")
    if abs(c) < IDLE_MIN_EFFECT or abs(c) <= IDLE_Z * se_c:
        return none(f"no clear effect (hot_ratio {1 - c:.3f} +- {se_c:.3f})")
    near = d >= REST_FACTOR if c > 0 else d <= 1.0 / REST_FACTOR  # d: each sample's factor
    rested = x[near] / d[near] if near.sum() >= MIN_REST_N else x / d
    meta["rested_from"] = f"{rested.size} samples with factor within 10 % of 1" if rested.size < x.size \
        else "every sample"
    return IdleFit(1.0 - c, tau * 1000.0, rested, meta, idle_s, x)


# -- cold starts of a black box ------------------------------------------------------------------------

COLD_K = 3.0
COLD_MIN_EXTRA_MS = 20.0
MIN_COLD_REFERENCE_N = 20


@dataclass(frozen=True)
class ColdRule:
    """When a request sent after an idle period counts as a cold start of a black-box endpoint
    (the ``http`` target, where nothing but client-side latency is seen).

    From the ok warm requests of the same run (client-side ms; at least `MIN_COLD_REFERENCE_N`):
    median m, 99th percentile p99 and 99.9th percentile p999 (numpy's linear interpolation). A
    request is a cold start when its latency x satisfies

        x > threshold = max(p999, m + COLD_K * (p99 - m), m + COLD_MIN_EXTRA_MS)

    with COLD_K = 3 and COLD_MIN_EXTRA_MS = 20 ms; its extra latency (what the cold start added)
    is x - m. Why these three terms:

    - p999: a warm request is above it one time in a thousand by definition;
    - m + 3 (p99 - m): far out in any warm tail of the usual shapes: a lognormal warm time with
      s = 0.5 exceeds it with probability ~3e-5, an exponential tail above a floor ~4e-6. It
      scales with the endpoint's own spread, so a slow, noisy model does not need a new constant;
    - m + 20 ms: where the warm distribution is tight (a few ms on loopback), what an idle
      period alone adds on a platform that kept the instance (CPU sleep states, a proxy reopening
      its upstream connection, the first request on a new connection) is a few ms, not a cold
      start. A cold start on the platforms measured (a Lambda environment, a Knative or
      OpenFaaS pod scheduled and started from zero) adds hundreds of ms to seconds, so the rule
      errs on the side of *not* calling a request cold: a cold start shorter than the threshold
      is missed, not invented.

    `n`: the warm requests it was computed from."""

    median_ms: float
    p99_ms: float
    p999_ms: float
    threshold_ms: float
    n: int

    @classmethod
    def from_warm(cls, warm_ms) -> "ColdRule":
        """The rule for the warm latencies `warm_ms` (ms, finite); ValueError with fewer than
        `MIN_COLD_REFERENCE_N`."""
        x = np.asarray(warm_ms, dtype=float).ravel()
        x = x[np.isfinite(x)]
        if x.size < MIN_COLD_REFERENCE_N:
            raise ValueError(f"detecting cold starts needs at least {MIN_COLD_REFERENCE_N} ok warm requests "
                             f"of the same run to compare with, got {x.size}")
        m, p99, p999 = (float(v) for v in np.quantile(x, [0.5, 0.99, 0.999]))
        return cls(m, p99, p999, max(p999, m + COLD_K * (p99 - m), m + COLD_MIN_EXTRA_MS), int(x.size))

    def is_cold(self, client_ms: float) -> bool:
        return client_ms > self.threshold_ms

    def extra_ms(self, client_ms: float) -> float:
        """What a cold start added: the latency minus the warm median (ms)."""
        return client_ms - self.median_ms

    def describe(self) -> dict:
        return {"rule": f"cold when latency > max(warm p99.9, warm median + {COLD_K:g} x (warm p99 - warm median), "
                        f"warm median + {COLD_MIN_EXTRA_MS:g} ms); extra = latency - warm median",
                "warm_n": self.n, "warm_median_ms": _r(self.median_ms), "warm_p99_ms": _r(self.p99_ms),
                "warm_p999_ms": _r(self.p999_ms), "threshold_ms": _r(self.threshold_ms)}


# -- host share (bursts of simultaneous requests) ------------------------------------------------------

MIN_BURST_N = 3
HOST_MIN_STRETCH = 0.10
HOST_ALPHA = 0.01
STRETCH_LOSS_SCALE = 0.1  # fit_stretch's soft-L1 scale, in log duration
CONTENTION_MIN = 0.02
"""The smallest contention `fit_stretch` keeps: below it (a 2 % stretch per other job, within
the noise of a burst's median) the plain knee is fitted instead."""
INIT_CORES = 1.0
"""The convention that fixes the unit of `HostShare.cores` for Lambda: an INIT (a fresh Python
process importing the handler and loading the model) is single-threaded, so it uses one core
when alone; `cores` is then the host's capacity in INITs run at full speed."""


@dataclass
class StretchFit:
    """How one kind of job (INIT, or warm work) stretches when k of them start together:
    `m` = cores / demand (None when not identified, `reason` says why), `points` per k (n,
    median, stretch against the fitted duration alone `base_ms`, the rule's p-value, the fitted
    stretch), and the samples by k (`samples`, for the plot)."""

    m: float | None
    points: list[dict]
    samples: dict[int, np.ndarray]
    reason: str | None = None
    rms_log: float | None = None
    base_ms: float | None = None
    """The fitted duration alone (ms), the reference of the points' stretch."""
    c: float = 0.0
    """The contention: the stretch each other job adds, whether or not cores are free (0: none)."""
    note: str | None = None

    def meta(self) -> dict:
        out = {"m": _r(self.m), "base_ms": _r(self.base_ms), "points": self.points}
        if self.c:
            out["contention"] = _r(self.c)
        if self.note is not None:
            out["note"] = self.note
        if self.rms_log is not None:
            out["rms_log_residual"] = _r(self.rms_log)
        if self.reason is not None:
            out["reason"] = self.reason
        return out


def stretch_model(k, m: float, c: float = 0.0) -> np.ndarray:
    """Equal jobs started together, each needing `cap` cores, sharing `cores` (m = cores / cap)
    by processor sharing, each also slowed by a contention c per other job (`sim.config.HostShare`):
    each takes max(1, k / m, 1 + c (k - 1)) times as long as alone."""
    k = np.asarray(k, dtype=float)
    return np.maximum(np.maximum(1.0, k / m), 1.0 + c * (k - 1.0))


def _clearly_longer(durations: np.ndarray, reference: np.ndarray) -> tuple[float, bool]:
    """(p, longer): a one-sided Mann-Whitney test that `durations` exceed `reference`, and
    whether they are clearly longer: median ratio >= 1 + `HOST_MIN_STRETCH` and p < `HOST_ALPHA`."""
    p = float(st.mannwhitneyu(durations, reference, alternative="greater").pvalue)
    ratio = float(np.median(durations)) / float(np.median(reference))
    return p, ratio >= 1.0 + HOST_MIN_STRETCH and p < HOST_ALPHA


def _positive(values: Sequence[float]) -> np.ndarray:
    """The finite values > 0 of `values`, as a flat float array."""
    v = np.asarray(values, dtype=float).ravel()
    return v[np.isfinite(v) & (v > 0)]


def fit_stretch(samples: dict[int, Sequence[float]], contention: bool = False) -> StretchFit:
    """m = cores / demand from durations (ms) of jobs measured in bursts of k (k -> durations);
    with `contention`, also the contention c (`stretch_model`).

    Model: log d = log b + log stretch_model(k, m[, c]) + noise, for every duration d measured at
    k, with b (the duration alone, ms), m (and c) fitted, by robust least squares (soft-L1 loss,
    scale `STRETCH_LOSS_SCALE` = 0.1 in log: a duration more than ~10 % off the curve weighs
    less) from several starting points, m bounded to [1, 4 * max k], c to [0, 2]. Every burst
    size informs b (the unstretched ones all measure it), not only the few durations at k = 1,
    and the largest sizes, which are past the knee, pin m. (m below 1, a job that cannot get its
    demand even alone, stretches k = 1 too: relative to it every k then stretches by k, as at m =
    1, so m is taken >= 1.) A contention below `CONTENTION_MIN` is taken as none (the knee alone
    is fitted). With contention the knee k / m may bind at no measured k (a stretch linear from k
    = 2): the data then bound m from below only, and m is the bound (the largest demand that
    changes no fitted point; a note says so). Each point reports its median, its stretch (median
    / b) and the fitted stretch.
    **Identified** when some k > 1 shows a stretch clearly above noise: median_k / median_1 >=
    1 + `HOST_MIN_STRETCH` (10 %) *and* a one-sided Mann-Whitney test that the durations at k
    exceed those at k = 1 rejects at `HOST_ALPHA` (0.01); each k needs `MIN_BURST_N` (3)
    durations, k = 1 too. Otherwise m is None and `reason` says why (no stretch seen means m >=
    max k: the demand is not identified).
    """
    data = {int(k): _positive(samples[k]) for k in sorted(samples, key=int)}
    if 1 not in data or data[1].size < MIN_BURST_N:
        return StretchFit(None, [], data, f"at least {MIN_BURST_N} durations at k = 1 are needed (the reference)")
    used = {k: v for k, v in data.items() if v.size >= MIN_BURST_N}
    if len(used) < 2:
        return StretchFit(None, [], data, f"no burst size above 1 with at least {MIN_BURST_N} durations")
    ref = float(np.median(used[1]))
    k_obs = np.concatenate([np.full(v.size, float(k)) for k, v in used.items()])
    log_d = np.log(np.concatenate(list(used.values())))
    hi = math.log(4.0 * max(used))

    def residuals(p: np.ndarray) -> np.ndarray:
        return log_d - p[0] - np.log(stretch_model(k_obs, math.exp(p[1]), p[2] if p.size > 2 else 0.0))

    def fit(with_c: bool):
        best = None
        for m0 in (1.05, 1.5, 2.5, 4.0, 0.5 * max(used), 2.0 * max(used)):
            lm0 = min(max(math.log(m0), 1e-9), hi - 1e-9)
            for c0 in ((0.05, 0.3) if with_c else (None,)):
                x0, lo, up = [math.log(ref), lm0], [-np.inf, 0.0], [np.inf, hi]
                if with_c:
                    x0, lo, up = x0 + [c0], lo + [0.0], up + [2.0]
                res = least_squares(residuals, x0, bounds=(lo, up), loss="soft_l1", f_scale=STRETCH_LOSS_SCALE)
                if best is None or res.cost < best.cost:
                    best = res
        return best

    best = fit(False)
    c, note = 0.0, None
    if contention:
        with_c = fit(True)
        if with_c.x[2] >= CONTENTION_MIN:
            best, c = with_c, float(with_c.x[2])
    base, m = math.exp(best.x[0]), math.exp(best.x[1])
    if c:
        bound = max(max(k / (1.0 + c * (k - 1.0)) for k in used), 1.0)
        if m > bound:
            m = bound
            note = (f"m = {bound:.4g}, its lower bound: the knee k / m binds at no measured k (the stretch is the "
                    f"contention's, 1 + {c:.3g} (k - 1)); a larger m changes no fitted point")
    rms = math.sqrt(float(np.mean(residuals(np.array([best.x[0], math.log(m), c])) ** 2)))
    points, clear = [], []
    for k, v in used.items():
        med = float(np.median(v))
        p = None
        if k > 1:
            p, longer = _clearly_longer(v, used[1])
            if longer:
                clear.append(k)
        points.append({"k": k, "n": int(v.size), "median_ms": _r(med), "stretch": _r(med / base),
                       "p_value": _r(p), "fitted": _r(float(stretch_model(k, m, c)))})
    if not clear:
        top = max((pt for pt in points if pt["k"] > 1), key=lambda pt: pt["median_ms"])
        return StretchFit(None, points, data,
                          f"no burst size shows a stretch clearly above noise (largest: x{top['median_ms'] / ref:.3g} "
                          f"at k = {top['k']}, p = {top['p_value']:.2g}; the rule: >= x{1 + HOST_MIN_STRETCH:g} over "
                          f"k = 1 and Mann-Whitney p < {HOST_ALPHA:g}): the demand is not identified", rms, base)
    return StretchFit(m, points, data, None, rms, base, c, note)


@dataclass(frozen=True)
class InitIdleFit:
    """`fit_init_idle`'s answer: the shortest host idle measured before an INIT (`idle_s`, s),
    the medians (ms) and counts of the INITs after it and back to back, their ratio `factor`
    and the test's `p_value` (None with too few durations); identified when `reason` is None."""

    idle_s: float | None
    n_idle: int
    n_reference: int
    median_idle_ms: float | None
    median_reference_ms: float | None
    factor: float | None = None
    p_value: float | None = None
    reason: str | None = None

    def meta(self) -> dict:
        """The figures for ``host_share.fit.init_idle``."""
        out = {"rule": f"init_idle_factor = median INIT after host idle / median INIT back to back, identified "
                       f"when >= x{1 + HOST_MIN_STRETCH:g} and a one-sided Mann-Whitney test rejects at "
                       f"{HOST_ALPHA:g} (at least {MIN_BURST_N} of each); init_idle_s = the shortest idle measured",
               "column": "init_ms (cold_idle rows against cold rows)", "idle_s": _r(self.idle_s),
               "n_idle": self.n_idle, "n_reference": self.n_reference, "median_idle_ms": _r(self.median_idle_ms),
               "median_reference_ms": _r(self.median_reference_ms), "factor": _r(self.factor),
               "p_value": _r(self.p_value)}
        if self.reason is not None:
            out["reason"] = self.reason
        return out


def fit_init_idle(idle_ms: Sequence[float], reference_ms: Sequence[float], idle_s: float | None) -> InitIdleFit:
    """How much slower an INIT is when it starts after the host has run none for a while
    (`sim.config.HostShare`'s ``init_idle_s`` and ``init_idle_factor``): `idle_ms` are Init
    Durations (ms) measured after at least `idle_s` (s, the shortest idle measured) of host idle
    (the campaign's cold_idle phase), `reference_ms` those of INITs run back to back (its cold
    phase). factor = median(idle_ms) / median(reference_ms). **Identified** when both have at
    least `MIN_BURST_N` (3) durations > 0, factor >= 1 + `HOST_MIN_STRETCH` (10 %) and a
    one-sided Mann-Whitney test that the idle ones are longer rejects at `HOST_ALPHA` (0.01),
    the rule of `fit_stretch`; otherwise `reason` says why (the figures are kept)."""
    idle, ref = _positive(idle_ms), _positive(reference_ms)
    med_idle = float(np.median(idle)) if idle.size else None
    med_ref = float(np.median(ref)) if ref.size else None
    if idle.size < MIN_BURST_N or ref.size < MIN_BURST_N:
        return InitIdleFit(idle_s, int(idle.size), int(ref.size), med_idle, med_ref,
                           reason=f"at least {MIN_BURST_N} Init Durations are needed after host idle (cold_idle rows: "
                                  f"{idle.size}) and back to back (cold rows: {ref.size})")
    factor = med_idle / med_ref
    p, longer = _clearly_longer(idle, ref)
    reason = None
    if not longer:
        after = f" after {idle_s:g} s idle" if idle_s is not None else ""
        reason = (f"no slowdown clearly above noise{after} (x{factor:.3g}, p = {p:.2g}; the rule: "
                  f">= x{1 + HOST_MIN_STRETCH:g} over back to back and Mann-Whitney p < {HOST_ALPHA:g})")
    return InitIdleFit(idle_s, int(idle.size), int(ref.size), med_idle, med_ref, factor, p, reason)


WAY_IN_MAX_MS = 4.0
"""The longest way in `fit_way_in` considers (ms)."""
WAY_IN_MAX_PRESSURE = 12.0
"""The largest pressure `fit_way_in` considers."""


@dataclass(frozen=True)
class WayInFit:
    """`fit_way_in`'s answer: the way in's work alone (`way_in_ms`) and its `pressure` (both None
    when not identified, `reason` says why), the reference duration `base_ms` (A alone), and
    per nominal offset a point: pairs, median actual offset, A's median duration, its stretch
    over `base_ms`, the rule's p-value and the fitted duration."""

    way_in_ms: float | None
    pressure: float | None
    base_ms: float | None
    points: list[dict]
    reason: str | None = None
    rms_log: float | None = None
    note: str | None = None

    def meta(self) -> dict:
        """The figures for ``host_share.fit.way_in``."""
        out = {"model": "request A, then B sent offset ms later, each with its way in then its invocation as jobs "
                        "on the fitted host (sim.platforms.host); A's duration against the offset",
               "rule": f"identified when some offset's A durations are >= x{1 + HOST_MIN_STRETCH:g} the reference's "
                       f"(the largest offset, A alone) and a one-sided Mann-Whitney test rejects at {HOST_ALPHA:g} "
                       f"(at least {MIN_BURST_N} pairs per offset)",
               "column": "server_ms of A (pairs rows, even seq)",
               "way_in_ms": _r(self.way_in_ms), "pressure": _r(self.pressure), "base_ms": _r(self.base_ms),
               "points": self.points}
        if self.rms_log is not None:
            out["rms_log_residual"] = _r(self.rms_log)
        for key in ("note", "reason"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        return out


def _pair_a_ms(share, way_in_ms: float, pressure: float, offset_ms: float, base_ms: float) -> float:
    """A's invocation (ms) in a pair on the host `share` (`sim.config.HostShare`): A at 0, B at
    `offset_ms` (before A when negative), each a way in of `way_in_ms` (none at 0) then an
    invocation of `base_ms`, exactly as `sim.platforms.lambda_` submits them."""
    import simpy

    from sim.platforms.host import Host
    from sim.platforms.lambda_ import WAY_IN_CORES

    c = share.work_contention
    phases = ((way_in_ms, WAY_IN_CORES, None, c, pressure),) if way_in_ms > 0.0 else ()
    phases += ((base_ms, share.work_cores, None, c),)
    env = simpy.Environment()
    host = Host(env, share.cores)
    got: list[float] = []
    a_s, b_s = max(-offset_ms, 0.0) / 1000.0, max(offset_ms, 0.0) / 1000.0  # B may have left first
    env.timeout(a_s).callbacks.append(lambda _: host.submit(phases, lambda job: got.append(job.durations_ms[-1])))
    env.timeout(b_s).callbacks.append(lambda _: host.submit(phases, lambda job: None))
    env.run()
    return got[0]


def fit_way_in(nominal_ms: Sequence[float], offset_ms: Sequence[float], a_ms: Sequence[float], share
               ) -> WayInFit:
    """The way in (`sim.config.HostShare`'s ``way_in_ms`` and ``way_in_pressure``) from pairs:
    request A, then B sent `offset_ms` (actual, ms; negative when B left first) after it,
    `nominal_ms` the offset asked for (the pairs are grouped by it), `a_ms` A's duration
    (server_ms), on a host whose cores, work_cores and contention are `share`'s (fitted from the
    bursts; its own way in is ignored).

    The reference, A alone, is the median A at the largest nominal offset (the offsets must reach
    past A's way in and invocation: B then finds A done). Model: every pair is A then B, each
    its way in (``way_in_ms`` alone on one core, pressing on the invocations with ``pressure``)
    then its invocation of the reference's length, simulated on the host (`_pair_a_ms`, the
    Lambda model's own jobs) at the offset's median actual offset. Fitted: least squares on log
    A's median per offset, over a grid (0 to `WAY_IN_MAX_MS` by 0.1 ms, 0 to
    `WAY_IN_MAX_PRESSURE` by 0.25), then refined (Nelder-Mead). The pressure acts through the
    invocations' contention: on a host without one it is not identified and stays 1 (a note
    says so; only ``way_in_ms`` is fitted). **Identified** when some offset shows A clearly
    longer than the reference (the rule of `fit_stretch`: >= x1.1 and a one-sided Mann-Whitney p
    < 0.01, each offset with at least `MIN_BURST_N` pairs); otherwise `reason` says why. A fit
    at the edge of the grid has a note."""
    nominal = np.asarray(nominal_ms, dtype=float)
    offset = np.asarray(offset_ms, dtype=float)
    a = np.asarray(a_ms, dtype=float)
    keep = np.isfinite(nominal) & np.isfinite(offset) & np.isfinite(a) & (a > 0)
    nominal, offset, a = nominal[keep], offset[keep], a[keep]
    levels = [lv for lv in np.unique(nominal) if np.sum(nominal == lv) >= MIN_BURST_N]
    if len(levels) < 2:
        return WayInFit(None, None, None, [], f"at least two offsets with {MIN_BURST_N} pairs each are needed "
                                              f"(got {len(levels)})")
    ref = a[nominal == levels[-1]]
    base = float(np.median(ref))
    offs = [float(np.median(offset[nominal == lv])) for lv in levels]
    meds = np.array([float(np.median(a[nominal == lv])) for lv in levels])
    points, clear = [], False
    for lv, off, med in zip(levels, offs, meds):
        v = a[nominal == lv]
        p = None
        if lv != levels[-1]:
            p, longer = _clearly_longer(v, ref)
            clear = clear or longer
        points.append({"offset_ms": _r(float(lv)), "n": int(v.size), "actual_offset_ms": _r(off),
                       "median_ms": _r(med), "stretch": _r(med / base), "p_value": _r(p)})
    if not clear:
        top = max(points[:-1], key=lambda pt: pt["median_ms"])
        return WayInFit(None, None, base, points,
                        f"no offset shows A clearly slower than alone (largest: x{top['stretch']:.3g} at "
                        f"{top['offset_ms']:g} ms, p = {top['p_value']:.2g}; the rule: >= x{1 + HOST_MIN_STRETCH:g} "
                        f"and Mann-Whitney p < {HOST_ALPHA:g}): no way in identified")
    log_meds = np.log(meds)

    def loss(x) -> float:
        w = min(max(float(x[0]), 0.0), WAY_IN_MAX_MS)
        pr = min(max(float(x[1]), 0.0), WAY_IN_MAX_PRESSURE)
        pred = np.array([_pair_a_ms(share, w, pr, off, base) for off in offs])
        return float(np.sum((np.log(pred) - log_meds) ** 2))

    pressed = share.work_contention > 0.0  # without contention the pressure changes nothing: kept at 1
    grid = [(w, pr) for w in np.arange(0.0, WAY_IN_MAX_MS + 1e-9, 0.1)
            for pr in (np.arange(0.0, WAY_IN_MAX_PRESSURE + 1e-9, 0.25) if w > 0 and pressed else (1.0,))]
    start = min(grid, key=loss)
    start_loss = loss(start)
    if pressed:
        res = minimize(loss, np.array(start), method="Nelder-Mead",
                       options={"xatol": 0.005, "fatol": 1e-9,
                                "initial_simplex": [start, (start[0] + 0.1, start[1]), (start[0], start[1] + 0.25)]})
    else:
        res = minimize_scalar(lambda w: loss((w, 1.0)), bounds=(max(start[0] - 0.1, 0.0), start[0] + 0.1),
                              method="bounded")
        res.x = np.array([res.x, 1.0])
    x, best_loss = (res.x, res.fun) if res.fun <= start_loss else (np.array(start), start_loss)
    w = min(max(float(x[0]), 0.0), WAY_IN_MAX_MS)  # (the loss clips the same way)
    pr = min(max(float(x[1]), 0.0), WAY_IN_MAX_PRESSURE)
    fitted = [_pair_a_ms(share, w, pr, off, base) for off in offs]
    for pt, f in zip(points, fitted):
        pt["fitted_ms"] = _r(f)
    rms = math.sqrt(best_loss / len(offs))
    note = None if pressed else ("the host has no contention: a way in slows invocations through the cores alone, "
                                 "and its pressure, which acts through the contention, is not identified (1)")
    if w >= WAY_IN_MAX_MS - 0.05 or pr >= WAY_IN_MAX_PRESSURE - 0.125:
        note = (f"at the edge of the search (way_in_ms <= {WAY_IN_MAX_MS:g}, pressure <= {WAY_IN_MAX_PRESSURE:g}): "
                "the effect may be larger than the model can say")
    if w == 0.0:
        return WayInFit(None, None, base, points, "the best fit has no way in (the slowdown is the invocations' "
                                                  "contention alone)", rms)
    return WayInFit(w, pr, base, points, None, rms, note)


@dataclass
class HostShareFit:
    """`fit_host_share`'s answer: `cores`, `init_cores`, `work_cores`, `work_contention` (cores
    None: not identified, `reason` says why), the two stretch fits, the INIT-after-idle fit
    `init_idle` (None: no cold_idle measured; set by the caller, `fit_init_idle`), and the
    profile's mapping (`entry`)."""

    cores: float | None
    init_cores: float
    work_cores: float
    init: StretchFit | None
    work: StretchFit | None
    reason: str | None = None
    notes: tuple[str, ...] = ()
    init_idle: InitIdleFit | None = None
    work_contention: float = 0.0
    way_in: WayInFit | None = None
    """The way in from pairs (None: none measured; set by the caller, `fit_way_in`)."""

    def _init_idle(self) -> tuple[dict, dict]:
        """(the entry's ``init_idle_s`` and ``init_idle_factor`` or nothing, ``fit.init_idle``):
        the keys only when the INIT slowdown and the cores are both identified."""
        meta = self.init_idle.meta()
        if self.init_idle.reason is not None:
            return {}, meta
        if self.cores is None:
            return {}, {**meta, "reason": "identified, but not given: the host's cores are not (init_idle_s and "
                                          "init_idle_factor apply within a host share)"}
        return {"init_idle_s": _r(self.init_idle.idle_s), "init_idle_factor": _r(self.init_idle.factor)}, meta

    def entry(self) -> dict:
        """The profile entry's ``host_share`` (``{cores, init_cores, work_cores, work_contention,
        way_in_ms, way_in_pressure, init_idle_s, init_idle_factor, fit}``, work_contention only
        when not 0, the way in and the two init_idle keys only when identified)."""
        fit: dict = {"model": "stretch(k) = max(1, k * demand / cores, 1 + contention * (k - 1)) for k equal jobs "
                              "started together (contention: warm work only)",
                     "rule": f"identified when some k shows median stretch >= x{1 + HOST_MIN_STRETCH:g} over k = 1 "
                             f"and a one-sided Mann-Whitney test rejects at {HOST_ALPHA:g} "
                             f"(at least {MIN_BURST_N} durations per k)"}
        if self.init is not None:
            fit["init"] = {"column": "init_ms (cold bursts)", **self.init.meta()}
        if self.work is not None:
            fit["work"] = {"column": "server_ms (warm bursts)", **self.work.meta()}
        if self.notes:
            fit["notes"] = list(self.notes)
        if self.reason is not None:
            fit["reason"] = self.reason
        keys: dict = {}
        if self.init_idle is not None:
            keys, fit["init_idle"] = self._init_idle()
        if self.cores is None:
            return {"cores": None, "fit": fit}
        contention = {"work_contention": _r(self.work_contention)} if self.work_contention else {}
        if self.way_in is not None:
            fit["way_in"] = self.way_in.meta()
            if self.way_in.reason is None:
                contention.update(way_in_ms=_r(self.way_in.way_in_ms), way_in_pressure=_r(self.way_in.pressure))
        return {"cores": _r(self.cores), "init_cores": _r(self.init_cores), "work_cores": _r(self.work_cores),
                **contention, **keys, "fit": fit}


def fit_host_share(init_ms: dict[int, Sequence[float]] | None, work_ms: dict[int, Sequence[float]] | None
                   ) -> HostShareFit:
    """The host share (`sim.config.HostShare`) from bursts: `init_ms` maps k to the Init
    Durations of cold bursts of k (Lambda; None for a server), `work_ms` k to the durations of
    warm bursts of k. Each is fitted by `fit_stretch` (m = cores / demand).

    Lambda (`init_ms` given): the convention `INIT_CORES` = 1 (an INIT is single-threaded:
    Python's imports and the model load) fixes the unit, so cores = m_init and work_cores =
    m_init / m_work. INIT must be identified (else cores is None). The warm work is fitted with
    contention (`fit_stretch`), INIT without (its bursts show a knee: none at k = 2). When the
    warm work is not identified (no stretch seen up to the largest k, K), work_cores = m_init /
    K: the largest demand that predicts no stretch up to K, as measured (a note says so). Server
    (`init_ms` None): each worker's request is the unit, work_cores = 1 and cores = m_work (None
    when not identified)."""
    init = fit_stretch(init_ms) if init_ms else None
    work = fit_stretch(work_ms, contention=True) if work_ms else None
    if init_ms is None:
        if work is None:
            return HostShareFit(None, INIT_CORES, 1.0, None, None, "no warm bursts measured")
        if work.m is None:
            return HostShareFit(None, INIT_CORES, 1.0, None, work, f"work: {work.reason}")
        return HostShareFit(work.m, INIT_CORES, 1.0, None, work,
                            notes=("work_cores = 1: each request in a worker is the unit; cores = m_work",),
                            work_contention=work.c)
    if init is None or init.m is None:
        return HostShareFit(None, INIT_CORES, 1.0, init, work,
                            f"INIT: {init.reason if init is not None else 'no cold bursts measured'}")
    notes = [f"init_cores = {INIT_CORES:g} by convention: an INIT is single-threaded (Python's imports and the "
             "model load), so cores = m_init is the host's capacity in INITs at full speed"]
    if work is not None and work.m is not None:
        work_cores = init.m / work.m
        notes.append("work_cores = m_init / m_work")
    elif work is not None and work.points:
        k_max = max(pt["k"] for pt in work.points)
        work_cores = init.m / k_max
        notes.append(f"work_cores = m_init / {k_max}: an upper bound, the largest demand that predicts no stretch "
                     f"up to k = {k_max} as measured (warm work not identified: {work.reason})")
    else:
        work_cores = 1.0
        notes.append("work_cores = 1: no warm bursts measured (a default, not a measurement)")
    contention = work.c if work is not None and work.m is not None else 0.0
    return HostShareFit(init.m, INIT_CORES, work_cores, init, work, notes=tuple(notes), work_contention=contention)

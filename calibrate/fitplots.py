"""Diagnostic plots of one fit: histogram with the fitted density, QQ plot, and the tail.

One PNG, three panels:
1. histogram of the measurements (density scale, x up to the empirical p99.9 so a long tail does
   not squash the body) with the chosen distribution's PDF (an empirical choice has none; a
   spliced one has it above the splice point only);
2. QQ plot: measured quantiles against the chosen distribution's, at plotting positions
   (i - 0.5) / n (at most 2000 of them, every one of the top 200 kept), log-log, with y = x;
3. empirical and fitted survival function 1 - CDF, log-log (a power-law tail is a straight line),
   with p99 and p99.9 marked.

`plot_idle` draws an idle-effect fit (`calibrate.fit.fit_idle_effect`): each warm request's
duration against the idle time before it (log x), the medians per bin, and the fitted curve.

`plot_host_share` draws a host-share fit (`calibrate.fit.fit_host_share`): each burst
duration over the median at k = 1 against k (INIT of cold bursts, warm work), the medians, and
the fitted curves max(1, k / m).

Drawn with matplotlib's Agg canvas directly (no pyplot, no global state), written atomically.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from sim.atomic import atomic_path
from sim.dists import parse_dist
from sim.dists_composite import dist_cdf, dist_pdf

from .fit import FitReport, HostShareFit, IdleFit, stretch_model

__all__ = ["plot_fit", "plot_idle", "plot_host_share"]


def _qq_positions(n: int) -> np.ndarray:
    idx = np.unique(np.concatenate([np.linspace(0, n - 1, min(n, 2000)).astype(int), np.arange(max(0, n - 200), n)]))
    return idx


LOG_SPAN = 3.0  # `plot_fit`'s QQ and tail panels use log axes when max / min is at least this


def plot_fit(x: np.ndarray, report: FitReport, path: str | Path, title: str) -> Path:
    """Write the three-panel diagnostic PNG of `report` (fitted to `x`) to `path`; returns it."""
    path = Path(path)
    xs = np.sort(np.asarray(x, dtype=float).ravel())
    n = xs.size
    dist = parse_dist(report.spec)
    label = f"{report.family} ({report.method})"

    fig = Figure(figsize=(15, 4.6), layout="constrained")
    FigureCanvasAgg(fig)
    ax_h, ax_q, ax_s = fig.subplots(1, 3)

    # Up to the empirical p99.9 (the rest would squeeze the body into a few bins), except where
    # fewer than 1000 values make the p99.9 an interpolation below the largest.
    cut = n >= 1000
    hi = max(report.empirical["p999"], xs[0] * 1.0001) if cut else max(xs[-1], xs[0] * 1.0001)
    body = xs[xs <= hi]
    ax_h.hist(body, bins=min(100, max(10, int(np.sqrt(body.size)))), density=True, color="0.75",
              edgecolor="0.6", label="measured")
    grid = np.linspace(xs[0], hi, 600)
    pdf = dist_pdf(dist, grid) * (n / body.size)  # the histogram is normalised over the shown part
    if np.isfinite(pdf).any():
        ax_h.plot(grid, pdf, color="C0", lw=1.8, label=f"fitted PDF: {label}")
    else:
        ax_h.plot([], [], " ", label=f"{label}: no PDF")
    ax_h.set_xlabel("duration (up to the empirical p99.9)" if cut else "duration")
    ax_h.set_ylabel("density")
    ax_h.set_title("histogram and fitted PDF")
    ax_h.legend(fontsize=8)

    idx = _qq_positions(n)
    theo = dist.ppf((idx + 0.5) / n)
    ax_q.plot(theo, xs[idx], ".", ms=3, color="C0")
    lo_q = max(min(theo.min(), xs[0]), 1e-9)
    hi_q = max(theo.max(), xs[-1])
    ax_q.plot([lo_q, hi_q], [lo_q, hi_q], color="C3", lw=1, label="y = x")
    # Log axes where the values span a factor of LOG_SPAN or more: over a narrower range (a few
    # cold starts) a log axis has only minor ticks, whose labels overlap and collapse the layout.
    wide = xs[0] > 0 and xs[-1] / xs[0] >= LOG_SPAN
    if wide and theo.min() > 0:
        ax_q.set_xscale("log")
        ax_q.set_yscale("log")
    ax_q.set_xlabel(f"fitted quantile ({report.family})")
    ax_q.set_ylabel("measured quantile")
    ax_q.set_title("QQ plot")
    ax_q.legend(fontsize=8)

    surv_emp = (n - np.arange(n)) / n  # P(X >= x_(i)), down to 1/n
    ax_s.step(xs, surv_emp, where="post", color="0.3", lw=1.2, label="measured")
    top = min(max(xs[-1], float(dist.ppf(np.array([0.9999]))[0])), 10 * xs[-1])
    sgrid = np.geomspace(xs[0], top, 2000) if wide else np.linspace(xs[0], top, 2000)
    ax_s.plot(sgrid, 1.0 - dist_cdf(dist, sgrid), color="C0", lw=1.5, label=f"fitted: {label}")
    bottom = max(0.2 / n, 1e-7)
    for q, name in ((1e-2, "p99"), (1e-3, "p99.9")):
        if q >= bottom:  # (a label below the axes would collapse the layout)
            ax_s.axhline(q, color="0.7", lw=0.8, ls="--")
            ax_s.text(sgrid[-1], q, name, ha="right", va="bottom", fontsize=8, color="0.4")
    ax_s.set_yscale("log")
    if wide:
        ax_s.set_xscale("log")
    ax_s.set_ylim(bottom, 1.5)
    ax_s.set_xlabel("duration")
    ax_s.set_ylabel("1 - CDF")
    ax_s.set_title("tail: empirical vs fitted")
    ax_s.legend(fontsize=8)

    fig.suptitle(f"{title} — {label}, n={n}, KS {report.ks:.3g} (p {report.ks_p:.2g}), "
                 f"p99 {report.empirical['p99']:.4g} measured vs {report.fitted['p99']:.4g} fitted", fontsize=10)

    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    return path


def plot_idle(fit: IdleFit, path: str | Path, title: str) -> Path:
    """Write the idle-effect PNG of `fit` to `path`; returns it."""
    path = Path(path)
    fig = Figure(figsize=(8, 4.6), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    idle_ms = np.maximum(fit.idle_s * 1000.0, 1e-3)
    ax.plot(idle_ms, fit.x_ms, ".", ms=3, color="0.6", label="warm requests")
    bins = fit.meta.get("bins", [])
    if bins:
        mids = [np.sqrt(b["idle_ms"][0] * b["idle_ms"][1]) for b in bins]
        ax.plot(mids, [b["median_ms"] for b in bins], "o", color="C1", label="median per bin")
    if fit.hot_ratio is not None:
        grid = np.geomspace(idle_ms.min(), idle_ms.max(), 300)
        rested = fit.meta["rested_median_ms"]
        curve = rested * (1.0 - (1.0 - fit.hot_ratio) * np.exp(-grid / fit.tau_ms))
        ax.plot(grid, curve, color="C0", lw=1.8,
                label=f"fitted median: hot_ratio {fit.hot_ratio:.3f}, tau {fit.tau_ms:.3g} ms")
        head = "fitted"
    else:
        head = f"no effect kept: {fit.reason}"
    ax.set_xscale("log")
    ax.set_ylim(0, float(np.quantile(fit.x_ms, 0.995)) * 1.1)
    ax.set_xlabel("idle time before the request (ms)")
    ax.set_ylabel("duration (ms)")
    ax.legend(fontsize=8)
    fig.suptitle(f"{title} — idle effect, n={fit.x_ms.size}: {head}", fontsize=10)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    return path


def plot_host_share(fit: HostShareFit, path: str | Path, title: str) -> Path:
    """Write the stretch-against-k PNG of a host-share fit to `path`; returns it. With a way in
    fitted from pairs (identified or not), a second panel: A's median duration against the
    offset of B, measured and fitted (`calibrate.fit.fit_way_in`)."""
    path = Path(path)
    way = fit.way_in if fit.way_in is not None and fit.way_in.points else None
    fig = Figure(figsize=(12, 4.6) if way else (7, 4.6), layout="constrained")
    FigureCanvasAgg(fig)
    ax, *rest = fig.subplots(1, 2 if way else 1, squeeze=False)[0]
    if way is not None:
        _plot_way_in(rest[0], way)
    k_max = 1
    for i, (name, sf) in enumerate((("INIT (cold bursts)", fit.init), ("warm work", fit.work))):
        if sf is None or not sf.points:
            continue
        color = f"C{i}"
        base = sf.base_ms
        for k, v in sf.samples.items():
            if v.size:
                jitter = (np.arange(v.size) / max(v.size - 1, 1) - 0.5) * 0.12 + (i - 0.5) * 0.08
                ax.plot(k + jitter, v / base, ".", color=color, alpha=0.35, ms=4)
                k_max = max(k_max, k)
        ks = [pt["k"] for pt in sf.points]
        ax.plot(ks, [pt["stretch"] for pt in sf.points], "o", color=color, ms=8, mfc="none", mew=1.8,
                label=f"{name}: median stretch")
        if sf.m is not None:
            grid = np.linspace(1, max(ks), 200)
            law = f"max(1, k / {sf.m:.3g})" if not sf.c else f"max(1, k / {sf.m:.3g}, 1 + {sf.c:.3g} (k - 1))"
            ax.plot(grid, stretch_model(grid, sf.m, sf.c), "-", color=color, lw=1.6, label=f"{name}: {law}")
        else:
            ax.plot([], [], " ", label=f"{name}: not identified")
    ax.axhline(1.0, color="grey", lw=0.6, ls=":")
    ax.set_xticks(range(1, k_max + 1))
    ax.set_xlabel("requests started together (k)")
    ax.set_ylabel("duration / fitted duration alone")
    share = ("not identified" if fit.cores is None else
             f"cores {fit.cores:.3g}, init_cores {fit.init_cores:g}, work_cores {fit.work_cores:.3g}"
             + (f", work_contention {fit.work_contention:.3g}" if fit.work_contention else ""))
    ax.set_title(f"{title}\n{share}", fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    return path


def _plot_way_in(ax, way) -> None:
    offs = [pt["actual_offset_ms"] for pt in way.points]
    ax.plot(offs, [pt["median_ms"] for pt in way.points], "o", color="C2", ms=7, mfc="none", mew=1.8,
            label="A's median duration (measured)")
    if way.reason is None:
        ax.plot(offs, [pt["fitted_ms"] for pt in way.points], "-", color="C2", lw=1.6,
                label=f"fitted: way_in_ms {way.way_in_ms:.3g}, pressure {way.pressure:.3g}")
    else:
        ax.plot([], [], " ", label="way in: not identified")
    ax.axhline(way.base_ms, color="grey", lw=0.6, ls=":", label="A alone (the largest offset)")
    ax.set_xlabel("B sent after A (ms)")
    ax.set_ylabel("A's duration (ms)")
    ax.set_title("way in: pairs of requests", fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)

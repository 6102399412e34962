"""Presenting results: the comparison table, and plots (latency CDF overlay, instances over time).

Every platform kind (lambda, ec2, k8s-function, container-service) reads the same Result keys, so
all of them sit side by side in one table and one plot; "instances" are Lambda environments, EC2
instances, pods, or container instances. Reports read finished results only; nothing here
simulates.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
from rich.table import Table

from sim.run import PlatformResult
from traces.stats import GAP_EDGES_S, TraceStats

from .outputs import atomic_path


def _ms(v) -> str:
    if v is None:
        return "-"
    return f"{v:,.0f}" if v >= 100 else f"{v:,.1f}"


def _usd(v) -> str:
    if v is None:
        return "-"
    if v >= 100:
        return f"{v:,.0f}"
    if v >= 1:
        return f"{v:,.2f}"
    return f"{v:.4f}"


def comparison_table(results: Sequence[PlatformResult], title: str | None = None) -> Table:
    """One row per platform, whatever its kind: requests, rejected, cold starts, p50/p95/p99,
    instances (mean), cost."""
    t = Table(title=title, title_justify="left")
    for col, just in (("platform", "left"), ("kind", "left"), ("requests", "right"), ("rejected", "right"),
                      ("timeouts", "right"), ("cold starts", "right"), ("p50 ms", "right"), ("p95 ms", "right"),
                      ("p99 ms", "right"), ("instances", "right"), ("cost $", "right"), ("$ / M req", "right")):
        t.add_column(col, justify=just)
    for r in results:
        s = r.summary
        lat = s["latency_ms"]
        cold = f"{s['cold_starts']:,} ({100 * s['cold_start_fraction']:.2f}%)"
        t.add_row(s["platform"], s["kind"], f"{s['requests']:,}", f"{s['rejected']:,}", f"{s['timeouts']:,}", cold,
                  _ms(lat["p50"]), _ms(lat["p95"]), _ms(lat["p99"]), f"{s['instances']['mean']:.1f}",
                  _usd(s["cost_usd"]["total"]), _usd(s["cost_per_million_usd"]))
    return t


def plot_latency_cdf(results: Sequence[PlatformResult], path: str | Path, title: str = "") -> Path:
    """Latency CDF of completed requests, one line per platform, log-scaled latency."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    qs = np.concatenate([np.linspace(0, 0.99, 400), 1 - np.logspace(-2, -4, 100)])
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for r in results:
        if r.histogram.count == 0:
            continue
        x = r.histogram.quantiles(qs)
        ax.plot(x, qs, label=r.summary["platform"], drawstyle="steps-post")
    ax.set_xscale("log")
    ax.set_xlabel("latency (ms, log scale)")
    ax.set_ylabel("fraction of completed requests")
    ax.axhline(0.99, color="grey", lw=0.6, ls=":")
    ax.text(ax.get_xlim()[0], 0.99, " p99", va="bottom", fontsize=8, color="grey")
    ax.set_title(title or "Latency CDF")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    return _save(fig, path)


def plot_instances(results: Sequence[PlatformResult], path: str | Path, title: str = "") -> Path:
    """Time-averaged instances (Lambda environments, EC2 instances, pods, container instances) per
    minute, and per-minute p99."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(8, 6), sharex=True)
    for r in results:
        s = r.series
        hours = (s["start_s"] - s["start_s"].iloc[0]) / 3600.0
        ax1.plot(hours, s["instances"], label=r.summary["platform"], lw=1)
        ax2.plot(hours, s["p99_ms"], label=r.summary["platform"], lw=1)
    ax1.set_ylabel("instances / environments\n(mean per minute)")
    ax1.set_title(title or "Instances over time")
    ax1.grid(True, alpha=0.3)
    ax1.legend(fontsize=8)
    ax2.set_yscale("log")
    ax2.set_ylabel("p99 latency per minute (ms)")
    ax2.set_xlabel("hours after warm-up")
    ax2.grid(True, which="both", alpha=0.3)
    return _save(fig, path)


def plot_trace(stats: TraceStats, path: str | Path, title: str = "") -> Path:
    """Rate over time (per minute) and the histogram of gaps between arrivals."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(8, 6.5))
    per_min = stats.per_minute() / 60.0
    hours = np.arange(per_min.size) / 60.0
    if hours.size and hours[-1] > 72:
        ax1.plot(hours / 24.0, per_min, lw=0.6)
        ax1.set_xlabel("days")
    else:
        ax1.plot(hours, per_min, lw=0.8)
        ax1.set_xlabel("hours")
    ax1.axhline(stats.mean_rps, color="grey", ls=":", lw=0.8, label=f"mean {stats.mean_rps:.3g} req/s")
    ax1.set_ylim(bottom=0)
    ax1.set_ylabel("arrivals per second\n(per-minute mean)")
    ax1.set_title(title or "Arrival rate")
    ax1.legend(fontsize=8)
    ax1.grid(True, alpha=0.3)
    inner = stats.gap_counts[1:-1]
    centers = np.sqrt(GAP_EDGES_S[:-1] * GAP_EDGES_S[1:])
    if inner.sum():
        nz = np.flatnonzero(inner)
        lo, hi = nz[0], nz[-1] + 1
        ax2.bar(centers[lo:hi], inner[lo:hi] / inner.sum(), width=np.diff(GAP_EDGES_S)[lo:hi], align="center")
    ax2.set_xscale("log")
    ax2.set_xlabel("gap between consecutive arrivals (s, log scale)")
    ax2.set_ylabel("fraction of gaps")
    ax2.grid(True, which="both", alpha=0.3)
    return _save(fig, path)


def _save(fig, path: str | Path) -> Path:
    import matplotlib.pyplot as plt

    path = Path(path)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    return path

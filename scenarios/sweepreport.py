"""Plots and a self-contained HTML report of a finished sweep (`scenarios.sweeprun`).

`sweep_plots(out_dir)` reads the sweep's table (``points/``) and the points' extras (latency
histograms, per-minute series) and writes PNGs into ``out_dir/plots/``:

- ``cost_vs_load.png``: total cost against the swept load per platform (thin), the best row of
  each platform kind per load (thick: Lambda, EC2, k8s function, container service, as present),
  the break-even load of one pair of kinds marked (`pair`: by default Lambda and EC2 when both
  are there, else the two kinds of a sweep that has exactly two); only when the load was swept
  over at least two values;
- ``p99_vs_cost.png`` (at the highest load when the load was swept: costs at different loads do not
  compete): every ok row (colour by kind), the Pareto frontier as a step line, the SLO's
  p99 bound when there is one;
- ``latency_cdf.png``: the latency CDF of every frontier row, from its histogram;
- ``sensitivity.png``: cost, p99 and cold starts against every swept number other than the
  load (at the highest load), a line per platform and combination of the other parameters;
- ``instances.png``: instances (per-minute mean) over simulated time of one point, one line per
  platform: by default the cheapest row meeting the SLO, else the cheapest frontier row.

`write_report(out_dir, scenario)` writes ``out_dir/report.html``: the plots embedded as base64
data URIs (no external resource), a summary, the full table, and where the scenario, profile and
prices came from. Only ok rows are plotted; nothing here simulates. Every file is written
atomically.
"""
from __future__ import annotations

import base64
import hashlib
import html
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sim.atomic import write_text
from sim.config import ContainerServiceConfig, K8sFunctionConfig

from .analysis import (DEFAULT_PAIR, break_even, cheapest_meeting, cheapest_per_kind, kind_pairs, kinds_in,
                       pareto_frontier, sensitivity_summary)
from .loader import Scenario
from .report import _save
from .sweeprun import point_extras_file, read_point_extras, read_points

__all__ = ["answers", "figure_html", "html_page", "sweep_plots", "write_report"]

COST, P99, LOAD = "cost_usd.total", "latency_ms.p99", "param.trace.rate_rps"
_KIND_COLOURS = {"lambda": "tab:orange", "ec2": "tab:blue", "k8s-function": "tab:green",
                 "container-service": "tab:purple"}
_KIND_LABELS = {"lambda": "Lambda", "ec2": "EC2", "k8s-function": "k8s function",
                "container-service": "container service"}
_QS = np.concatenate([np.linspace(0, 0.99, 400), 1 - np.logspace(-2, -4, 100)])


def sweep_plots(out_dir: str | Path, table: pd.DataFrame | None = None, *, load: str = LOAD,
                slo: Any = None, instances_point: int | None = None,
                pair: tuple[str, str] | None = None) -> list[Path]:
    """Write the sweep's plots into ``out_dir/plots/`` (see the module docstring); their paths.

    `table` defaults to the finished points in `out_dir`; `slo` (a `scenarios.sweep.SLO` or a
    dict of bounds, see `cheapest_meeting`) draws the p99 bound and picks the instances point;
    `instances_point` (a ``point`` index) overrides that choice; `pair` (two kinds) is the
    break-even marked on the cost plot (see the module docstring). No ok row: no plot."""
    out = Path(out_dir)
    table = read_points(out) if table is None else table
    ok = _ok_rows(table)
    if ok.empty:
        return []
    _agg()
    plots_dir = out / "plots"
    # With the load swept, the frontier (and the default instances point) are those of the
    # highest load: costs at different loads do not compete.
    at_load = _at_top_load(ok, load)
    frontier = pareto_frontier(at_load)
    extras = _Extras(out)
    paths = []
    if load in ok.columns and pd.to_numeric(ok[load], errors="coerce").nunique() >= 2:
        paths.append(_cost_vs_load(ok, load, plots_dir / "cost_vs_load.png", pair))
    paths.append(_p99_vs_cost(at_load, frontier, slo, plots_dir / "p99_vs_cost.png"))
    cdf = _latency_cdf(frontier, extras, plots_dir / "latency_cdf.png")
    if cdf is not None:
        paths.append(cdf)
    sens = _sensitivity_plot(at_load, _swept_numbers(at_load, load), plots_dir / "sensitivity.png")
    if sens is not None:
        paths.append(sens)
    point = instances_point if instances_point is not None else _default_point(at_load, frontier, slo)
    inst = _instances(ok, point, extras, plots_dir / "instances.png") if point is not None else None
    if inst is not None:
        paths.append(inst)
    return paths


def write_report(out_dir: str | Path, scenario: Scenario, *, table: pd.DataFrame | None = None,
                 plots: list[Path] | None = None, pricing_path: str | Path | None = None) -> Path:
    """Write ``out_dir/report.html`` (self-contained: plots as data URIs) and return its path.

    `table` defaults to the finished points in `out_dir`; `plots` to `sweep_plots` of it (with the
    scenario's SLO); `pricing_path` is the pricing file the sweep used when it was not the
    scenario's (a ``--pricing`` option)."""
    from .sweep import parse_sweep

    out = Path(out_dir)
    table = read_points(out) if table is None else table
    spec = parse_sweep(scenario)
    if plots is None:
        plots = sweep_plots(out, table, slo=spec.slo)
    title = f"servesim sweep: {scenario.name}"
    images = "\n".join(figure_html(p) for p in plots)
    body = [
        f"<h1>{html.escape(title)}</h1>",
        "<h2>Summary</h2>", _summary(table, spec),
        "<h2>Plots</h2>", images or "<p>no plot (no ok row)</p>",
        "<h2>Table</h2>",
        '<div class="wide">' + table.to_html(index=False, escape=True, na_rep="", border=0, classes="sweep")
        + "</div>" if not table.empty else "<p>no finished point</p>",
        "<h2>Provenance</h2>", _provenance(scenario, pricing_path),
    ]
    return write_text(out / "report.html", html_page(title, body))


def figure_html(path: str | Path, caption: str | None = None) -> str:
    """A PNG as an HTML figure with the image inline (a base64 data URI); caption: its file name."""
    path = Path(path)
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return (f'<figure><img alt="{html.escape(path.stem)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{html.escape(caption or path.name)}</figcaption></figure>")


def html_page(title: str, body: list[str]) -> str:
    """A self-contained page (the report's style inline) around the `body` fragments."""
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(title)}</title><style>{_CSS}</style></head>\n<body>\n"
            + "\n".join(body) + "\n</body></html>\n")


# --- plots ------------------------------------------------------------------------------------

def _agg():
    import matplotlib

    matplotlib.use("Agg")


def _plotted_pair(ok: pd.DataFrame, pair: tuple[str, str] | None) -> tuple[str, str] | None:
    """The pair of kinds whose break-even the cost plot marks (see the module docstring)."""
    if pair is not None:
        return tuple(pair)
    kinds = kinds_in(ok)
    if set(DEFAULT_PAIR) <= set(kinds):
        return DEFAULT_PAIR
    return tuple(kinds) if len(kinds) == 2 else None


def _kind_label(kind: str) -> str:
    return _KIND_LABELS.get(kind, str(kind))


def _cost_vs_load(ok: pd.DataFrame, load: str, path: Path, pair: tuple[str, str] | None = None) -> Path:
    import matplotlib.pyplot as plt

    rows = ok.assign(__x=_num(ok, load), __c=_num(ok, COST)).dropna(subset=["__x", "__c"])
    others = [c for c in rows.columns if c.startswith("param.") and c != load]
    fig, ax = plt.subplots(figsize=(8, 5))
    for keys, g in rows.groupby(["platform", *others], dropna=False, sort=True):
        g = g.sort_values("__x")
        ax.plot(g["__x"], g["__c"], lw=0.7, alpha=0.45, marker=".", ms=3,
                color=_KIND_COLOURS.get(g["kind"].iloc[0], "grey"))
    for kind in kinds_in(rows):
        best = rows[rows["kind"] == kind].groupby("__x")["__c"].min()
        if not best.empty:
            ax.plot(best.index, best.to_numpy(), lw=2.6, color=_KIND_COLOURS.get(kind, "grey"),
                    label=f"best {_kind_label(kind)}")
    pair = _plotted_pair(ok, pair) if "kind" in ok.columns else None
    if pair is not None and P99 in ok.columns:
        be = break_even(ok, load=load, kinds=pair)
        if be is not None:
            note = "" if set(ok["kind"]) == set(pair) else f" ({_kind_label(pair[0])} / {_kind_label(pair[1])})"
            ax.axvline(be["load"], color="black", ls="--", lw=1)
            ax.annotate(f" break-even {be['load']:.3g}{note}", (be["load"], 0.95), xycoords=("data", "axes fraction"),
                        fontsize=8, va="top")
    _log_if_wide(ax, "x", rows["__x"])
    _log_if_wide(ax, "y", rows["__c"])
    ax.set_xlabel(load.removeprefix("param."))
    ax.set_ylabel("total cost (USD over the simulated window)")
    ax.set_title("Cost against load (thin: every platform configuration)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def _p99_vs_cost(ok: pd.DataFrame, frontier: pd.DataFrame, slo: Any, path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    groups = [(kind, ok[ok["kind"] == kind]) for kind in kinds_in(ok)] if "kind" in ok.columns else [("rows", ok)]
    for kind, g in groups:
        ax.scatter(_num(g, COST), _num(g, P99), s=18, label=str(kind), color=_KIND_COLOURS.get(kind), alpha=0.8)
    if not frontier.empty:
        ax.plot(_num(frontier, COST), _num(frontier, P99), drawstyle="steps-post", color="black", lw=1.2,
                label="Pareto frontier")
    bound = _slo_p99(slo)
    if bound is not None:
        ax.axhline(bound, color="red", ls=":", lw=1, label=f"SLO p99 {bound:g} ms")
    _log_if_wide(ax, "y", _num(ok, P99))
    _log_if_wide(ax, "x", _num(ok, COST))
    ax.set_xlabel("total cost (USD over the simulated window)")
    ax.set_ylabel("p99 latency (ms)")
    ax.set_title("p99 latency against cost")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def _sensitivity_plot(ok: pd.DataFrame, params: list[str], path: Path) -> Path | None:
    """Per swept number (a row of panels): cost, p99 and cold starts against it, a line per series
    (platform and the other parameters)."""
    import matplotlib.pyplot as plt

    if not params:
        return None
    metrics = [m for m in _SENSITIVITY_METRICS if m[0] in ok.columns]
    fig, axes = plt.subplots(len(params), len(metrics), figsize=(4.2 * len(metrics), 3.4 * len(params)),
                             squeeze=False)
    for r, param in enumerate(params):
        rows = ok[ok[param].notna()]
        others = [c for c in _params(rows) if c != param]
        for keys, g in rows.groupby(["platform", *others], dropna=False, sort=True):
            g = g.assign(__x=_num(g, param)).sort_values("__x")
            keys = keys if isinstance(keys, tuple) else (keys,)
            label = ", ".join([str(keys[0]), *(f"{c.removeprefix('param.')}={v}" for c, v in zip(others, keys[1:])
                                               if pd.notna(v))])
            for c, (m, _, _) in enumerate(metrics):
                axes[r][c].plot(g["__x"], _num(g, m), marker="o", ms=3, lw=1, label=label)
        for c, (m, name, _) in enumerate(metrics):
            ax = axes[r][c]
            if not (_num(rows, m).fillna(0) != 0).any():
                ax.text(0.5, 0.5, f"no {name}" if m == "cold_start_fraction" else "all zero", ha="center",
                        va="center", transform=ax.transAxes, color="grey")
            ax.set_xlabel(param.removeprefix("param."))
            ax.set_ylabel(name + (" (fraction)" if m == "cold_start_fraction" else " (USD)" if m == COST else " (ms)"))
            ax.grid(True, alpha=0.3)
        axes[r][0].legend(fontsize=6)
    fig.suptitle("Sensitivity" + (" (at the highest load)" if LOAD in ok.columns else ""), fontsize=11)
    fig.tight_layout()
    return _save(fig, path)


def _latency_cdf(frontier: pd.DataFrame, extras: "_Extras", path: Path) -> Path | None:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    lines = 0
    for _, row in frontier.iterrows():
        hist = extras.get(row["point"], row["platform"], "histogram")
        if hist is None or hist.count == 0:
            continue
        ax.plot(hist.quantiles(_QS), _QS, drawstyle="steps-post", lw=1, label=_label(row))
        lines += 1
    if not lines:
        plt.close(fig)
        return None
    ax.set_xscale("log")
    ax.set_xlabel("latency (ms, log scale)")
    ax.set_ylabel("fraction of completed requests")
    ax.axhline(0.99, color="grey", lw=0.6, ls=":")
    ax.set_title("Latency CDF of the Pareto frontier")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    return _save(fig, path)


def _instances(ok: pd.DataFrame, point: int, extras: "_Extras", path: Path) -> Path | None:
    import matplotlib.pyplot as plt

    rows = ok[ok["point"] == point]
    fig, ax = plt.subplots(figsize=(8, 4.5))
    lines = 0
    for _, row in rows.iterrows():
        series = extras.get(point, row["platform"], "series")
        if series is None or series.empty:
            continue
        ax.plot(series["start_s"] / 60.0, series["instances"], lw=1.2, label=f"{row['platform']} ({row['kind']})")
        lines += 1
    if not lines:
        plt.close(fig)
        return None
    params = ", ".join(f"{c.removeprefix('param.')}={rows.iloc[0][c]}" for c in _params(rows)
                       if pd.notna(rows.iloc[0][c]))
    ax.set_xlabel("simulated time (min)")
    ax.set_ylabel("instances / environments\n(mean per minute)")
    ax.set_title(f"Instances over time: point {point}" + (f" ({params})" if params else ""), fontsize=10)
    ax.set_ylim(bottom=0)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def _default_point(ok: pd.DataFrame, frontier: pd.DataFrame, slo: Any) -> int | None:
    """The point of the cheapest row meeting `slo`, else of the cheapest frontier row."""
    if slo is not None:
        best = cheapest_meeting(ok, slo)
        if best is not None:
            return int(best["point"])
    return int(frontier.iloc[0]["point"]) if not frontier.empty else None


class _Extras:
    """The points' extras, read once each; None for a point or platform without them."""

    def __init__(self, out: Path):
        self.out, self._cache = out, {}

    def get(self, point, platform: str, what: str):
        point = int(point)
        if point not in self._cache:
            f = point_extras_file(self.out, point)
            self._cache[point] = read_point_extras(self.out, point) if f.exists() else {}
        return self._cache[point].get(platform, {}).get(what)


# --- report -------------------------------------------------------------------------------------

_CSS = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}
figure{display:inline-block;margin:0.5em}figure img{max-width:100%;border:1px solid #ddd}
figcaption{font-size:0.8em;color:#666}
table.sweep{border-collapse:collapse;font-size:0.75em}
table.sweep th,table.sweep td{border:1px solid #ccc;padding:2px 5px;text-align:right}
div.wide{overflow-x:auto}dt{font-weight:bold}dd{margin:0 0 0.4em 1.5em}code{font-size:0.9em}
"""


def _summary(table: pd.DataFrame, spec) -> str:
    return _dl(answers(table, spec))


def answers(table: pd.DataFrame, spec, load: str = LOAD,
            pairs: list[tuple[str, str]] | None = None) -> list[tuple[str, str]]:
    """The sweep's answer as (heading, text) pairs, for the command's output and the report:
    points and failures, the cheapest configuration meeting the SLO and the cheapest of each
    platform kind (per load when the load is swept: costs at different loads do not compete;
    the latter only with two kinds or more), the break-even load of each pair of kinds in
    `pairs` (default: every pair of the kinds present, Lambda and EC2 first, headed "break-even
    load" as before; the others "break-even load <a> vs <b>"), and the sensitivity of cost, p99
    and cold starts to every other swept number (at the highest load)."""
    ok = _ok_rows(table)
    failed = table[table["status"] == "error"] if "status" in table.columns else table.iloc[0:0]
    runs = sum(len(p.runs) for p in spec.points if p.runs is not None)
    items = [("points", f"{len(spec.points)} in the sweep, {runs} distinct platform configurations to simulate, "
                        f"{len(ok)} simulated ok"),
             ("failures", f"{len(failed)} failed" if not failed.empty else "none")]
    for _, row in failed.iterrows():
        items.append((f"point {row['point']} {row.get('platform', '')} failed", str(row["error"])))
    if spec.slo is not None:
        slo = ", ".join(f"{k}={v}" for k, v in vars(spec.slo).items() if v is not None)
        # Costs at different loads do not compete: with the load swept, the answer is per load.
        groups = list(ok.groupby(load, sort=True)) if load in ok.columns else [(None, ok)]
        for value, group in groups:
            best = cheapest_meeting(group, spec.slo) if not group.empty else None
            at = "" if value is None else f" at {value:g} req/s"
            items.append((f"cheapest meeting the SLO ({slo}){at}", "none" if best is None else
                          f"{_label(best)}: cost {best[COST]:.4g} USD, p99 {best[P99]:.4g} ms"))
    items.extend(_per_kind_items(ok, load))
    if load in ok.columns:
        items.extend(_break_even_items(ok, load, pairs))
    items.extend(_sensitivity_items(_at_top_load(ok, load), load))
    return items


def _per_kind_items(ok: pd.DataFrame, load: str) -> list[tuple[str, str]]:
    """The cheapest row of each kind, per load when the load is swept; nothing with one kind."""
    if "kind" not in ok.columns or len(kinds_in(ok)) < 2:
        return []
    items = []
    for value, group in list(ok.groupby(load, sort=True)) if load in ok.columns else [(None, ok)]:
        best = cheapest_per_kind(group)
        at = "" if value is None else f" at {value:g} req/s"
        items.append((f"cheapest of each kind{at}", "; ".join(
            f"{row['kind']}: {row['platform']} cost {row[COST]:.4g} USD, p99 {_fmt(row.get(P99), '{:.4g}')} ms"
            for _, row in best.iterrows())))
    return items


def _break_even_items(ok: pd.DataFrame, load: str, pairs: list[tuple[str, str]] | None) -> list[tuple[str, str]]:
    kinds = kinds_in(ok)
    if pairs is None:
        pairs = kind_pairs(kinds)
        if not pairs:
            return [("break-even load", "not defined: the sweep has one platform kind" +
                     (f" ({kinds[0]})" if kinds else ""))]
    items = []
    for a, b in pairs:
        heading = "break-even load" if (a, b) == DEFAULT_PAIR else f"break-even load {a} vs {b}"
        be = break_even(ok, load=load, kinds=(a, b)) if {a, b} <= set(kinds) else None
        if be is None:
            items.append((heading, "none in the swept range (one kind is cheaper everywhere)"))
            continue
        names = ("Lambda", "EC2") if (a, b) == DEFAULT_PAIR else (a, b)
        items.append((heading, f"{be['load']:.4g} req/s (cheaper below: {be['below']}; p99 there: {names[0]} "
                      f"{be[f'{a}_latency_p99']:.4g} ms, {names[1]} {be[f'{b}_latency_p99']:.4g} ms)"))
    return items


def _fmt(v: Any, fmt: str) -> str:
    return "-" if v is None or pd.isna(v) else fmt.format(v)


_SENSITIVITY_METRICS = ((COST, "cost", "{:.4g} USD"), (P99, "p99", "{:.4g} ms"),
                        ("cold_start_fraction", "cold starts", "{:.3g}"))


def _sensitivity_items(ok: pd.DataFrame, load: str) -> list[tuple[str, str]]:
    """One line per series of every swept numeric parameter other than the load."""
    items = []
    for param in _swept_numbers(ok, load):
        s = sensitivity_summary(ok, param)
        for _, row in s.iterrows():
            others = ", ".join(f"{c.removeprefix('param.')}={row[c]}" for c in s.columns
                               if c.startswith("param.") and pd.notna(row[c]))
            changes = []
            for m, name, fmt in _SENSITIVITY_METRICS:
                a, b = row.get(f"{m}@from"), row.get(f"{m}@to")
                if a is None or pd.isna(a) or (m == "cold_start_fraction" and a == b == 0):
                    continue
                change = row.get(f"{m}.relative_change")
                pct = f" ({change:+.1%})" if pd.notna(change) else ""
                changes.append(f"{name} {fmt.format(a)} → {fmt.format(b)}{pct}")
            items.append((f"sensitivity to {param.removeprefix('param.')} {row['from']:g} → {row['to']:g}",
                          f"{row['platform']}" + (f" ({others})" if others else "") + ": " + "; ".join(changes)))
    return items


def _swept_numbers(ok: pd.DataFrame, load: str) -> list[str]:
    """The ``param.*`` columns of swept numbers (two values or more among the ok rows), load aside."""
    out = []
    for col in _params(ok):
        if col == load:
            continue
        given = ok[col].dropna()
        values = pd.to_numeric(given, errors="coerce")
        if not given.empty and values.notna().all() and values.nunique() >= 2:
            out.append(col)
    return out


def _at_top_load(ok: pd.DataFrame, load: str) -> pd.DataFrame:
    """The rows at the highest load when the load was swept (over two values or more), else all."""
    if load in ok.columns and _num(ok, load).nunique() >= 2:
        return ok[_num(ok, load) == _num(ok, load).max()]
    return ok


def _provenance(scenario: Scenario, pricing_path: str | Path | None) -> str:
    items = []
    if scenario.path is not None:
        items.append(("scenario", f"{scenario.path} (sha256 {_sha256(scenario.path)})"))
    else:
        items.append(("scenario", f"{scenario.name} (built from a mapping, no file)"))
    profile = scenario.raw.get("profile")
    if profile:
        p = Path(str(profile)).expanduser()
        if not p.is_absolute() and scenario.path is not None:
            p = scenario.path.parent / p
        items.append(("profile", f"{p} (sha256 {_sha256(p)})" if p.is_file() else str(p)))
    pricing = pricing_path or scenario.pricing_path
    items.append(("prices", f"{pricing} (sha256 {_sha256(Path(pricing))})" if pricing else "shipped us-east-1 prices"))
    if any(isinstance(p, (K8sFunctionConfig, ContainerServiceConfig)) for p in scenario.platforms):
        presets = scenario.presets_path
        items.append(("platform presets", f"{presets} (sha256 {_sha256(presets)})" if presets
                      else "shipped sim/data/platform-presets.yaml"))
    try:
        version = metadata.version("servesim")
    except metadata.PackageNotFoundError:
        version = "unknown (not installed)"
    items.append(("servesim version", version))
    return _dl(items)


def _dl(items: list[tuple[str, str]]) -> str:
    return "<dl>" + "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd>" for k, v in items) + "</dl>"


def _sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


# --- helpers ----------------------------------------------------------------------------------

def _ok_rows(table: pd.DataFrame) -> pd.DataFrame:
    if table.empty or COST not in table.columns:
        return table.iloc[0:0]
    return table[table["status"] == "ok"] if "status" in table.columns else table


def _num(df: pd.DataFrame, col: str) -> pd.Series:
    return pd.to_numeric(df[col], errors="coerce")


def _params(df) -> list[str]:
    return [c for c in (df.columns if isinstance(df, pd.DataFrame) else df.index) if str(c).startswith("param.")]


def _label(row: pd.Series) -> str:
    params = ", ".join(f"{c.removeprefix('param.')}={row[c]}" for c in _params(row) if pd.notna(row[c]))
    return f"point {row['point']} {row['platform']}" + (f" ({params})" if params else "")


def _slo_p99(slo: Any) -> float | None:
    bound = slo.get("p99_ms") if isinstance(slo, dict) else getattr(slo, "p99_ms", None)
    return float(bound) if bound is not None else None


def _log_if_wide(ax, axis: str, values: pd.Series) -> None:
    """Log scale when the positive values span more than two decades."""
    v = pd.to_numeric(values, errors="coerce").dropna()
    if len(v) and (v > 0).all() and v.max() / v.min() > 100:
        (ax.set_xscale if axis == "x" else ax.set_yscale)("log")

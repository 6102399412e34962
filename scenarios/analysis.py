"""Reading a sweep's results table: Pareto frontier, cheapest point meeting an SLO, the cheapest
row of each platform kind, the break-even load between two kinds (Lambda and EC2 by default), and
per-parameter sensitivity.

The table has one row per (point, platform): ``point``, ``param.<path>`` per swept parameter, the
platform's summary flattened with dots (``platform``, ``kind``, ``requests``, ``rejected``,
``latency_ms.p99``, ``cost_usd.total``, ``cost_per_million_usd``, ...), ``engine``, ``seed``,
``status`` and ``error``. Everything here is a pure function of that table; nothing simulates.

Assumptions, shared by every function:
  * only rows whose ``status`` is ``"ok"`` count (a table without a ``status`` column is all ok);
  * metric columns are read as numbers, anything unreadable (None, text) as NaN, and a row with a
    NaN cost or latency where one is needed is left out;
  * a missing column is a ValueError naming it and listing the columns the table has.
Costs are in USD over the simulated window, latencies in ms, loads in whatever unit the swept
parameter has (req/s for ``param.trace.rate_rps``).
"""
from __future__ import annotations

import math
from typing import Any, Mapping

import numpy as np
import pandas as pd

#: SLO dict keys that bound a latency quantile (ms), and the summary column each one reads.
SLO_LATENCY_KEYS = {f"{q}_ms": f"latency_ms.{q}" for q in ("mean", "p50", "p90", "p95", "p99", "p999", "max")}
#: SLO dict key bounding rejected / requests (a fraction in [0, 1]).
SLO_REJECTED_KEY = "max_rejected_fraction"

_TIE = "__tie"

#: The platform kinds in the order reports show them (``kind`` column); other kinds follow, sorted.
KINDS = ("lambda", "ec2", "k8s-function", "container-service")
#: The pair `break_even` compares unless told otherwise.
DEFAULT_PAIR = ("lambda", "ec2")


def kinds_in(df: pd.DataFrame) -> list[str]:
    """The kinds of the ok rows of `df`, in `KINDS` order, unknown kinds after them (sorted)."""
    if "kind" not in df.columns:
        return []
    present = set(_ok(df)["kind"].dropna().astype(str))
    return [k for k in KINDS if k in present] + sorted(present - set(KINDS))


def kind_pairs(kinds: list[str]) -> list[tuple[str, str]]:
    """Every pair of `kinds` for `break_even`, in order: (kinds[i], kinds[j]) for i < j, so with
    `KINDS` order the default pair (lambda, ec2) comes first when both are there."""
    return [(a, b) for i, a in enumerate(kinds) for b in kinds[i + 1:]]


def cheapest_per_kind(df: pd.DataFrame, cost: str = "cost_usd.total", latency: str = "latency_ms.p99"
                      ) -> pd.DataFrame:
    """The cheapest ok row of each kind (ties: lower `latency`, then lower ``point``), one row per
    kind in `kinds_in` order, the original index kept. Rows with a NaN cost are left out. Costs
    at different loads do not compete: call it on the rows of one load."""
    _require(df, cost, "kind")
    rows = _ok(df)
    rows = rows[_num(rows, cost).notna()]
    by = [cost, latency] if latency in rows.columns else [cost]
    best = [_sorted(rows[rows["kind"] == kind], by).iloc[:1] for kind in kinds_in(rows)]
    return pd.concat(best) if best else rows.iloc[0:0]


def flatten_summary(summary: Mapping, prefix: str = "") -> dict:
    """Nested mappings as one flat dict with dotted keys: ``{"a": {"b": 1}} -> {"a.b": 1}``.

    Values that are not mappings (numbers, strings, None, lists, arrays) are kept as they are; an
    empty nested mapping contributes no key. `prefix` is put in front of every key (``"x"`` gives
    ``"x.a.b"``).
    """
    out: dict = {}
    for key, value in summary.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping):
            out.update(flatten_summary(value, name))
        else:
            out[name] = value
    return out


def pareto_frontier(df: pd.DataFrame, cost: str = "cost_usd.total",
                    latency: str = "latency_ms.p99") -> pd.DataFrame:
    """The ok rows that no other ok row dominates on (`cost`, `latency`), both lower-is-better.

    Row a dominates row b when a is no worse on both and strictly better on one, so rows with the
    same (cost, latency) do not dominate each other and are all kept. Rows with a NaN cost or
    latency are left out. The result keeps every column and the original index, sorted by cost,
    then latency, then ``point`` (or the index when there is no ``point`` column).
    """
    _require(df, cost, latency)
    rows = _ok(df)
    c, lat = _num(rows, cost), _num(rows, latency)
    rows = _sorted(rows[c.notna() & lat.notna()], [cost, latency])
    cs, ls = _num(rows, cost).to_numpy(float), _num(rows, latency).to_numpy(float)
    keep = []
    best_lat = math.inf
    last: tuple[float, float] | None = None
    for i, point in enumerate(zip(cs, ls)):
        if point[1] < best_lat:
            best_lat, last = point[1], point
            keep.append(i)
        elif point == last:          # a tie with the last frontier point: neither dominates
            keep.append(i)
    return rows.iloc[keep]


def cheapest_meeting(df: pd.DataFrame, slo: Any, cost: str = "cost_usd.total",
                     latency: str = "latency_ms.p99") -> pd.Series | None:
    """The cheapest ok row that meets `slo`, or None when no row does.

    `slo` is either an object with a ``met(row)`` method, called with each ok row as a dict of the
    table's flat (dotted) columns, or a plain dict of bounds, all of which must hold:
      * ``p99_ms`` (likewise ``mean_ms``, ``p50_ms``, ``p90_ms``, ``p95_ms``, ``p999_ms``,
        ``max_ms``): ``latency_ms.p99 <= value`` (ms);
      * ``max_rejected_fraction``: ``rejected / requests <= value``.
    A bound of None is no bound. A row whose figure is missing (NaN latency) does not meet a bound
    on it; zero requests is a rejected fraction of 0. Both as `scenarios.sweep.SLO.met`. Rows with a NaN cost are left out. Ties on cost go to the lower
    `latency` (when that column exists), then to the lower ``point`` (or index).
    """
    _require(df, cost)
    rows = _ok(df)
    rows = rows[_num(rows, cost).notna()]
    rows = rows[_meets(rows, slo)]
    if rows.empty:
        return None
    by = [cost, latency] if latency in rows.columns else [cost]
    return _sorted(rows, by).iloc[0]


def break_even(df: pd.DataFrame, load: str = "param.trace.rate_rps", cost: str = "cost_usd.total",
               latency: str = "latency_ms.p99", kinds: tuple[str, str] = DEFAULT_PAIR) -> dict | None:
    """The load at which the cheaper of two platform kinds changes, or None if it never does.

    `kinds` is the pair (a, b) compared, by default ("lambda", "ec2"); any two values of the
    ``kind`` column will do (``("k8s-function", "container-service")``). What follows says Lambda
    and EC2 for a and b. At each load value the best Lambda row and the best EC2 row (``kind``
    column) are the cheapest ok rows of that kind (ties: lower `latency`, then lower ``point``);
    loads where only one kind has an ok row are skipped. With d(load) = ec2_cost - lambda_cost
    over the loads in increasing order, a crossing is where d changes sign (d > 0: Lambda
    cheaper). Between consecutive loads x0 < x1 with d0, d1 of opposite signs, the crossing is
    the linear interpolation
    x = x0 + (x1 - x0) * d0 / (d0 - d1), linear on the load axis as given (a sweep on a log grid
    is still interpolated linearly in load); an exact tie d = 0 at a load between a sign change is
    the crossing itself (the first such load when several tie in a row). A d that touches 0 and
    returns to the same sign is not a crossing.

    Returns the FIRST crossing as ``{"load", "lambda_cost", "ec2_cost", "lambda_latency_p99",
    "ec2_latency_p99", "below", "lambda_point", "ec2_point", "between", "crossings"}``: costs
    and latencies are interpolated at the crossing like the load; ``below`` is the kind cheaper
    just below it (``"lambda"`` or ``"ec2"``); ``between`` is the pair of grid loads (x0, x1)
    bracketing it (equal for an exact tie); ``lambda_point``/``ec2_point`` are the ``point``
    values (or index labels) of the best rows at x0 and at x1; ``crossings`` lists the loads of
    all crossings in increasing order. For another pair the keys are named after its kinds the same
    way (``"k8s-function_cost"``, ``"container-service_point"``, ...), ``below`` is one of the
    two, and ``"kinds"`` is the pair (present for the default pair too). None when one kind is
    cheaper (or tied) at every load, or when fewer than two loads have both kinds.
    """
    _require(df, load, cost, latency, "kind")
    a_kind, b_kind = kinds
    if a_kind == b_kind:
        raise ValueError(f"break_even compares two different kinds, got {kinds!r}")
    rows = _ok(df)
    rows = rows[_num(rows, cost).notna() & _num(rows, load).notna()]
    best = {}
    for kind in kinds:
        k = _sorted(rows[rows["kind"] == kind], [cost, latency])
        k = k.assign(**{_TIE: _point(k)})
        k = k.assign(__load=_num(k, load)).drop_duplicates("__load", keep="first").set_index("__load")
        best[kind] = k
    loads = best[a_kind].index.intersection(best[b_kind].index).sort_values()
    if len(loads) < 2:
        return None
    ra, rb = best[a_kind].loc[loads], best[b_kind].loc[loads]
    x = loads.to_numpy(dtype=float)
    ac, bc = _num(ra, cost).to_numpy(float), _num(rb, cost).to_numpy(float)
    al, bl = _num(ra, latency).to_numpy(float), _num(rb, latency).to_numpy(float)
    d = bc - ac

    found = []          # (i0, i1, t): crossing between loads i0 and i1 at fraction t of the gap
    prev = None         # index of the last load with d != 0
    for i, di in enumerate(d):
        if di == 0:
            continue
        if prev is not None and np.sign(di) != np.sign(d[prev]):
            if i - prev > 1:                       # exact tie(s) in between: the first tied load
                found.append((prev + 1, prev + 1, 0.0))
            else:
                found.append((prev, i, d[prev] / (d[prev] - di)))
        prev = i
    if not found:
        return None

    def at(v: np.ndarray, i0: int, i1: int, t: float) -> float:
        return float(v[i0] + t * (v[i1] - v[i0])) if i1 != i0 else float(v[i0])

    crossings = [at(x, *f) for f in found]
    i0, i1, t = found[0]
    before = i0 - 1 if i0 == i1 else i0            # the last load below the crossing
    a, b = a_kind, b_kind
    return {
        "load": crossings[0],
        f"{a}_cost": at(ac, i0, i1, t),
        f"{b}_cost": at(bc, i0, i1, t),
        f"{a}_latency_p99": at(al, i0, i1, t),
        f"{b}_latency_p99": at(bl, i0, i1, t),
        "below": a if d[before] > 0 else b,
        f"{a}_point": (ra[_TIE].iloc[i0], ra[_TIE].iloc[i1]),
        f"{b}_point": (rb[_TIE].iloc[i0], rb[_TIE].iloc[i1]),
        "between": (float(x[i0]), float(x[i1])),
        "crossings": crossings,
        "kinds": (a, b),
    }


def sensitivity(df: pd.DataFrame, param: str, metric: str = "cost_usd.total") -> pd.DataFrame:
    """How `metric` moves with the swept parameter `param`, per platform.

    The ok rows where `param` is set (a Lambda parameter is empty on EC2 rows, and those rows are
    left out) are grouped by ``platform`` and every other ``param.*`` column (so a second swept
    parameter gives separate series); within a series the values of `param` are sorted ascending
    and the first (smallest) one is the base. Columns: ``platform``, the other parameters, `param`,
    `metric`, ``relative_change`` = metric / base metric - 1, and ``elasticity`` =
    relative_change / (value / base value - 1), the elasticity of the metric against the
    parameter over the arc from the base. ``elasticity`` is NaN at the base, for a parameter that
    is not numeric, or when the base value is 0; ``relative_change`` is NaN when the base metric
    is 0 or NaN. Several ok rows for one platform at the same parameters (replications with
    different seeds, say) are a ValueError: average or pick them first.
    """
    _require(df, param, metric, "platform")
    rows = _ok(df)
    rows = rows[rows[param].notna()]
    others = [c for c in rows.columns if c.startswith("param.") and c != param]
    keys = ["platform", *others]
    dup = rows.duplicated([*keys, param], keep=False)
    if dup.any():
        first = rows[dup].iloc[0]
        raise ValueError(f"several ok rows for platform {first['platform']!r} at {param}={first[param]!r} "
                         "with the same other parameters; average or pick them before sensitivity")
    out = rows[[*keys, param]].copy()
    out[metric] = _num(rows, metric)
    out = out.sort_values([*keys, param], kind="mergesort")
    groups = out.groupby(keys, dropna=False, sort=False)
    base_m = groups[metric].transform(lambda s: s.iloc[0])
    out["relative_change"] = (out[metric] / base_m.where(base_m != 0)) - 1.0
    if pd.api.types.is_numeric_dtype(out[param]):
        value = out[param].astype(float)
        base_v = groups[param].transform(lambda s: s.iloc[0]).astype(float)
        p_change = value / base_v.where(base_v != 0) - 1.0
        out["elasticity"] = out["relative_change"] / p_change.where(p_change != 0)
    else:
        out["elasticity"] = np.nan
    return out.reset_index(drop=True)


# --- helpers ----------------------------------------------------------------------------------

def _require(df: pd.DataFrame, *columns: str) -> None:
    if not isinstance(df, pd.DataFrame):
        raise ValueError(f"expected a pandas DataFrame, got {type(df).__name__}")
    for col in columns:
        if col not in df.columns:
            raise ValueError(f"column {col!r} not in the table; it has: {', '.join(map(str, df.columns))}")


def _ok(df: pd.DataFrame) -> pd.DataFrame:
    return df[df["status"] == "ok"] if "status" in df.columns else df


def _num(df: pd.DataFrame, col: str) -> pd.Series:
    return pd.to_numeric(df[col], errors="coerce")


def _point(df: pd.DataFrame) -> pd.Series:
    return df["point"] if "point" in df.columns else pd.Series(df.index, index=df.index)


def _sorted(rows: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """`rows` sorted by the numeric columns `by` (NaN last), then by point (or index)."""
    keys = pd.DataFrame({f"k{i}": _num(rows, c).to_numpy() for i, c in enumerate(by)})
    keys["tie"] = _point(rows).to_numpy()
    keys = keys.sort_values(list(keys.columns), kind="mergesort", na_position="last")
    return rows.iloc[keys.index.to_numpy()]


def _meets(rows: pd.DataFrame, slo: Any) -> pd.Series:
    """A boolean mask of the rows meeting `slo` (see `cheapest_meeting`)."""
    if hasattr(slo, "met"):
        return pd.Series([bool(slo.met(r)) for r in rows.to_dict("records")], index=rows.index, dtype=bool)
    if not isinstance(slo, Mapping):
        raise ValueError(f"an SLO is an object with .met(row) or a dict of bounds, got {type(slo).__name__}")
    mask = pd.Series(True, index=rows.index)
    for key, bound in slo.items():
        if bound is None:
            continue
        if key in SLO_LATENCY_KEYS:
            col = SLO_LATENCY_KEYS[key]
            _require(rows, col)
            mask &= _num(rows, col) <= bound
        elif key == SLO_REJECTED_KEY:
            _require(rows, "rejected", "requests")
            requests = _num(rows, "requests")
            fraction = (_num(rows, "rejected") / requests.where(requests > 0)).mask(requests == 0, 0.0)
            mask &= fraction <= bound
        else:
            known = ", ".join([*SLO_LATENCY_KEYS, SLO_REJECTED_KEY])
            raise ValueError(f"unknown SLO bound {key!r}; known: {known}")
    return mask


def sensitivity_summary(df: pd.DataFrame, param: str,
                        metrics: tuple[str, ...] = ("cost_usd.total", "latency_ms.p99", "cold_start_fraction")
                        ) -> pd.DataFrame:
    """Per series of `sensitivity` (platform and the other swept parameters), each metric at the
    smallest and at the largest value of `param`: columns ``platform``, the other parameters,
    ``from``, ``to``, and per metric ``<metric>@from``, ``<metric>@to`` and
    ``<metric>.relative_change`` (to / from - 1, NaN when the base is 0 or missing). Metrics the
    table lacks are left out; series with a single value of `param` are too."""
    present = [m for m in metrics if m in df.columns]
    if not present:
        raise ValueError(f"none of the metrics {', '.join(metrics)} in the table")
    out = None
    for m in present:
        s = sensitivity(df, param, m)
        keys = [c for c in s.columns if c == "platform" or (c.startswith("param.") and c != param)]
        g = s.groupby(keys, dropna=False, sort=False)
        part = g.agg(**{"from": (param, "first"), "to": (param, "last"), f"{m}@from": (m, "first"),
                        f"{m}@to": (m, "last"), "__n": (param, "size")}).reset_index()
        base = part[f"{m}@from"]
        part[f"{m}.relative_change"] = part[f"{m}@to"] / base.where(base != 0) - 1.0
        out = part if out is None else out.merge(part.drop(columns=["from", "to", "__n"]), on=keys, how="left")
    return out[out["__n"] > 1].drop(columns="__n").reset_index(drop=True)

"""Sweep analysis on hand-built results tables whose answers are known exactly (no simulation).

The break-even tables: Lambda costs 0.5 * load USD (the best of several memory sizes), EC2
10 * ceil(load / 40) USD, so d = ec2 - lambda = 10 - 0.5 * load up to 40 and < 0 beyond: the one
crossing is at load 20, Lambda cheaper below. A second EC2 bill, 25 * ceil(load / 40) - 15, crosses
four times: 20 and 70 (inside its steps) and 40 + 10/24.5, 80 + 5/24.5 (at its jumps).
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from scenarios.analysis import (KINDS, break_even, cheapest_meeting, cheapest_per_kind, flatten_summary, kind_pairs,
                                kinds_in, pareto_frontier, sensitivity, sensitivity_summary)

EXACT = dict(rel=1e-12, abs=1e-12)
LOAD = "param.trace.rate_rps"


def _row(point, kind, load, cost, p99, *, memory=None, status="ok", platform=None):
    return {"point": point, LOAD: load, "param.lambda.memory_mb": memory,
            "platform": platform or (f"lambda-{memory}" if kind == "lambda" else "ec2-c6i"),
            "kind": kind, "requests": 1000, "rejected": 0, "latency_ms.p99": p99, "cost_usd.total": cost,
            "status": status, "error": None if status == "ok" else "boom"}


def _break_even_table(loads, ec2_cost, lambda_cost=lambda x: 0.5 * x):
    """Per load: Lambda at 512 / 1024 / 2048 MB (1024 is cheapest), one EC2 row, one error row."""
    rows, p = [], 0
    for x in loads:
        for memory, extra, p99 in ((512, 1.0, 200.0), (1024, 0.0, 100.0), (2048, 3.0, 50.0)):
            rows.append(_row(p, "lambda", x, lambda_cost(x) + extra, p99, memory=memory))
            p += 1
        rows.append(_row(p, "ec2", x, ec2_cost(x), 80.0))
        rows.append(_row(p + 1, "lambda", x, 0.0, 1.0, memory=128, status="error"))   # never counts
        p += 2
    return pd.DataFrame(rows)


def _step(x):
    return 10.0 * math.ceil(x / 40)


def _step2(x):
    return 25.0 * math.ceil(x / 40) - 15.0


def _point_of(df, load, kind, memory=None):
    sel = (df[LOAD] == load) & (df["kind"] == kind) & (df["status"] == "ok")
    if memory is not None:
        sel &= df["param.lambda.memory_mb"] == memory
    (p,) = df.loc[sel, "point"]
    return p


# --- flatten_summary --------------------------------------------------------------------------

def test_flatten_summary_nested():
    summary = {"platform": "lam", "requests": 10, "latency_ms": {"p50": 1.0, "p99": 2.0},
               "instances": {"mean": 1.5, "deep": {"hist": [1, 2]}}, "empty": {},
               "cost_per_million_usd": None}
    assert flatten_summary(summary) == {"platform": "lam", "requests": 10, "latency_ms.p50": 1.0,
                                        "latency_ms.p99": 2.0, "instances.mean": 1.5,
                                        "instances.deep.hist": [1, 2], "cost_per_million_usd": None}
    arr = np.arange(3)
    flat = flatten_summary({"a": {"b": arr}}, prefix="s")
    assert list(flat) == ["s.a.b"] and flat["s.a.b"] is arr


# --- break_even -------------------------------------------------------------------------------

def test_break_even_exact_tie_on_grid():
    df = _break_even_table(range(1, 101), _step)
    be = break_even(df)
    assert be["load"] == 20.0 and be["between"] == (20.0, 20.0)
    assert be["lambda_cost"] == 10.0 and be["ec2_cost"] == 10.0
    assert be["lambda_latency_p99"] == 100.0 and be["ec2_latency_p99"] == 80.0   # 1024 MB row, not 2048
    assert be["below"] == "lambda"
    assert be["crossings"] == [20.0]
    lp = _point_of(df, 20, "lambda", 1024)
    assert be["lambda_point"] == (lp, lp)
    assert be["ec2_point"] == (_point_of(df, 20, "ec2"),) * 2


def test_break_even_interpolates_between_19_and_21():
    df = _break_even_table(range(1, 101, 2), _step)          # odd loads: 19 and 21, no 20
    be = break_even(df)
    # d(19) = 10 - 9.5 = 0.5, d(21) = 10 - 10.5 = -0.5: halfway, exactly 20
    assert be["load"] == 20.0 and be["between"] == (19.0, 21.0)
    assert be["lambda_cost"] == 10.0 and be["ec2_cost"] == 10.0
    assert be["below"] == "lambda" and be["crossings"] == [20.0]
    assert be["lambda_point"] == (_point_of(df, 19, "lambda", 1024), _point_of(df, 21, "lambda", 1024))
    assert be["ec2_point"] == (_point_of(df, 19, "ec2"), _point_of(df, 21, "ec2"))


def test_break_even_coarse_grid_still_exact_where_both_linear():
    be = break_even(_break_even_table([10, 30, 50, 70, 90], _step))
    # d(10) = 5, d(30) = -5
    assert be["load"] == 20.0 and be["between"] == (10.0, 30.0) and be["crossings"] == [20.0]


def test_break_even_linear_interpolation_by_hand():
    # Lambda 2.5 and 22.5 USD (x^2/40), EC2 flat 10 USD at loads 10 and 30: d = 7.5, -12.5, so the
    # crossing is 10 + 20 * 7.5 / 20 = 17.5 (the true x^2/40 = 10 crossing, 20, is not on the grid)
    df = pd.DataFrame([_row(0, "lambda", 10, 2.5, 100.0, memory=1024), _row(1, "ec2", 10, 10.0, 50.0),
                       _row(2, "lambda", 30, 22.5, 200.0, memory=1024), _row(3, "ec2", 30, 10.0, 70.0)])
    be = break_even(df)
    assert be["load"] == 17.5
    assert be["lambda_cost"] == 10.0 and be["ec2_cost"] == 10.0                  # 2.5 + 0.375 * 20
    assert be["lambda_latency_p99"] == 137.5 and be["ec2_latency_p99"] == 57.5   # 100 + 0.375 * 100, 50 + 0.375 * 20
    assert be["below"] == "lambda" and be["lambda_point"] == (0, 2) and be["ec2_point"] == (1, 3)


def test_break_even_several_crossings_first_returned():
    be = break_even(_break_even_table(range(1, 101), _step2))
    # steps 10 (<= 40), 35 (41..80), 60 (81..): ties at 20 and 70, jumps 40->41 (d -10 -> 14.5)
    # and 80->81 (d -5 -> 19.5)
    assert be["load"] == 20.0 and be["below"] == "lambda"
    assert be["crossings"] == pytest.approx([20.0, 40 + 10 / 24.5, 70.0, 80 + 5 / 24.5], **EXACT)


def test_break_even_ec2_cheaper_below():
    be = break_even(_break_even_table([10, 30], lambda x: 0.5 * x, lambda_cost=lambda x: 10.0))
    assert be["load"] == 20.0 and be["below"] == "ec2"


def test_break_even_none_without_a_flip():
    assert break_even(_break_even_table(range(1, 101), _step, lambda_cost=lambda x: 0.5 * x + 100)) is None
    # d = 1, 0, 1: touches zero without changing sign
    assert break_even(_break_even_table([10, 20, 30], lambda x: 10.0 + abs(x - 20) / 10,
                                        lambda_cost=lambda x: 10.0)) is None
    assert break_even(_break_even_table([10], _step)) is None


def test_break_even_other_cost_column():
    df = _break_even_table(range(1, 101, 2), _step)
    df["cost_per_million_usd"] = df["cost_usd.total"] * 2
    be = break_even(df, cost="cost_per_million_usd")
    assert be["load"] == 20.0 and be["lambda_cost"] == 20.0


# --- pareto_frontier --------------------------------------------------------------------------

def _pareto_table():
    pts = [(1, 100), (2, 50), (2, 50), (2, 60), (3, 50), (4, 20), (5, 30), (0.5, math.nan), (0.1, 1),
           (1, 100), (6, 10)]
    rows = [_row(i, "lambda", 1, c, lat, memory=128) for i, (c, lat) in enumerate(pts)]
    rows[8]["status"] = "error"
    return pd.DataFrame(rows)


def test_pareto_exact_frontier():
    front = pareto_frontier(_pareto_table())
    # 3 dominated by 1 (same cost), 4 by 1 (same latency), 6 by 5; 7 has no latency; 8 is an error;
    # 0/9 and 1/2 are ties, all kept
    assert list(front["point"]) == [0, 9, 1, 2, 5, 10]
    assert list(front.index) == [0, 9, 1, 2, 5, 10]
    assert list(front.columns) == list(_pareto_table().columns)


# --- cheapest_meeting -------------------------------------------------------------------------

def _slo_table():
    spec = [  # point, kind, cost, p99, rejected, requests, status
        (0, "lambda", 1.0, 500.0, 0, 1000, "ok"),
        (1, "lambda", 2.0, 250.0, 50, 1000, "ok"),
        (2, "ec2", 3.0, 290.0, 5, 1000, "ok"),
        (3, "lambda", 3.0, 280.0, 10, 1000, "ok"),
        (4, "lambda", 0.5, 100.0, 0, 1000, "error"),
        (5, "ec2", 3.0, 280.0, 0, 1000, "ok"),
        (6, "lambda", 0.8, math.nan, 0, 0, "ok"),
    ]
    return pd.DataFrame([{**_row(p, k, 1, c, lat, memory=128), "rejected": rej, "requests": req, "status": st}
                         for p, k, c, lat, rej, req, st in spec])


@pytest.mark.parametrize("slo, point", [
    ({"p99_ms": 300}, 1),                                  # 6 has no p99, 4 is an error
    ({"p99_ms": 300, "max_rejected_fraction": 0.01}, 3),   # 2, 3, 5 meet; 3 and 5 tie on cost and p99 -> point 3
    ({"max_rejected_fraction": 0.0}, 6),                   # 6 has zero requests: fraction 0
    ({"p99_ms": 1000, "max_rejected_fraction": 0.0}, 0),   # ... but no p99
    ({"p99_ms": None}, 6),                                 # no bound: the cheapest ok row
])
def test_cheapest_meeting_dict(slo, point):
    assert cheapest_meeting(_slo_table(), slo)["point"] == point


def test_cheapest_meeting_ties_on_cost_go_to_lower_latency():
    df = _slo_table()
    df.loc[df["point"] == 3, "latency_ms.p99"] = 295.0
    assert cheapest_meeting(df, {"p99_ms": 300, "max_rejected_fraction": 0.01})["point"] == 5


def test_cheapest_meeting_none():
    assert cheapest_meeting(_slo_table(), {"p99_ms": 50}) is None


def test_cheapest_meeting_object_slo():
    class EC2Only:
        def met(self, row):
            return row["kind"] == "ec2" and row["latency_ms.p99"] <= 300

    assert cheapest_meeting(_slo_table(), EC2Only())["point"] == 5          # 2 and 5 cost 3; 5 is faster


@pytest.mark.parametrize("bounds", [{"p99_ms": 300}, {"p99_ms": 300, "max_rejected_fraction": 0.01},
                                    {"max_rejected_fraction": 0.0}, {"p99_ms": 1000, "max_rejected_fraction": 0.0},
                                    {"p99_ms": 50}])
def test_cheapest_meeting_dict_agrees_with_sweep_slo(bounds):
    from scenarios.sweep import SLO

    by_dict, by_slo = cheapest_meeting(_slo_table(), bounds), cheapest_meeting(_slo_table(), SLO(**bounds))
    assert (by_dict is None and by_slo is None) or by_dict["point"] == by_slo["point"]


def test_cheapest_meeting_unknown_bound():
    with pytest.raises(ValueError, match="p42_ms"):
        cheapest_meeting(_slo_table(), {"p42_ms": 1})


# --- sensitivity ------------------------------------------------------------------------------

def test_sensitivity_table():
    param = "param.lambda.keep_alive_s"
    rows = [{"point": i, param: ka, "platform": plat, "kind": "lambda", "cost_usd.total": c, "status": st}
            for i, (plat, ka, c, st) in enumerate([
                ("lam", 300, 12.0, "ok"), ("lam", 60, 10.0, "ok"), ("lam", 600, 15.0, "ok"),
                ("arm", 60, 20.0, "ok"), ("arm", 300, 20.0, "ok"), ("arm", 600, 10.0, "ok"),
                ("arm", 900, 0.0, "error"), ("ec2", None, 7.0, "ok")])]
    out = sensitivity(pd.DataFrame(rows), param)
    assert list(out.columns) == ["platform", param, "cost_usd.total", "relative_change", "elasticity"]
    assert list(out["platform"]) == ["arm"] * 3 + ["lam"] * 3          # ec2 has no keep-alive
    assert list(out[param]) == [60, 300, 600] * 2
    assert out["relative_change"].tolist() == pytest.approx([0, 0, -0.5, 0, 0.2, 0.5], **EXACT)
    # elasticity: relative change / (keep_alive / 60 - 1) = / 4 and / 9
    el = out["elasticity"].tolist()
    assert math.isnan(el[0]) and math.isnan(el[3])
    assert [el[1], el[2], el[4], el[5]] == pytest.approx([0, -0.5 / 9, 0.05, 0.5 / 9], **EXACT)


def test_sensitivity_separates_other_parameters_and_refuses_duplicates():
    rows = [{"point": i, "param.a": a, "param.b": b, "platform": "p", "cost_usd.total": c, "status": "ok"}
            for i, (a, b, c) in enumerate([(1, 0, 1.0), (2, 0, 3.0), (1, 1, 2.0), (2, 1, 2.0)])]
    out = sensitivity(pd.DataFrame(rows), "param.a")
    assert list(out["param.b"]) == [0, 0, 1, 1]
    assert out["relative_change"].tolist() == [0.0, 2.0, 0.0, 0.0]
    assert out["elasticity"].tolist()[1] == 2.0
    with pytest.raises(ValueError, match="several ok rows"):
        sensitivity(pd.DataFrame(rows).drop(columns="param.b"), "param.a")   # two rows per value of a


def test_sensitivity_summary_from_smallest_to_largest_value_per_series():
    rows = [{"point": i, "param.a": a, "param.b": b, "platform": "p", "cost_usd.total": c, "latency_ms.p99": l,
             "status": "ok"}
            for i, (a, b, c, l) in enumerate([(2, 0, 3.0, 10.0), (1, 0, 1.0, 20.0), (3, 0, 4.0, 5.0),
                                              (1, 1, 2.0, 0.0), (3, 1, 2.0, 8.0), (1, 2, 9.0, 9.0)])]
    out = sensitivity_summary(pd.DataFrame(rows), "param.a")
    assert list(out["param.b"]) == [0, 1]                      # b=2 has one value of a: no series
    assert list(out["from"]) == [1, 1] and list(out["to"]) == [3, 3]
    assert out["cost_usd.total@from"].tolist() == [1.0, 2.0] and out["cost_usd.total@to"].tolist() == [4.0, 2.0]
    assert out["cost_usd.total.relative_change"].tolist() == [3.0, 0.0]
    assert out["latency_ms.p99.relative_change"].iloc[0] == -0.75
    assert math.isnan(out["latency_ms.p99.relative_change"].iloc[1])   # base 0
    assert "cold_start_fraction@from" not in out.columns               # not in the table: left out
    with pytest.raises(ValueError, match="none of the metrics"):
        sensitivity_summary(pd.DataFrame(rows), "param.a", metrics=("queueing.x",))


# --- other kinds ------------------------------------------------------------------------------

def _four_kinds_table(loads):
    """The break-even table with its kinds renamed: lambda -> container-service, ec2 ->
    k8s-function, plus a Lambda row at 100 + load and an EC2 row at 1000 (never the cheapest)."""
    df = _break_even_table(loads, _step)
    df["kind"] = df["kind"].map({"lambda": "container-service", "ec2": "k8s-function"})
    extra, p = [], int(df["point"].max()) + 1
    for x in loads:
        extra.append(_row(p, "lambda", x, 100.0 + x, 60.0, memory=1024, platform="fn"))
        extra.append(_row(p + 1, "ec2", x, 1000.0, 40.0))
        p += 2
    return pd.concat([df, pd.DataFrame(extra)], ignore_index=True)


def test_break_even_between_any_two_kinds():
    df = _four_kinds_table(range(1, 101, 2))
    be = break_even(df, kinds=("container-service", "k8s-function"))
    # The same numbers as test_break_even_interpolates_between_19_and_21, keys named by the kinds.
    assert be["load"] == 20.0 and be["between"] == (19.0, 21.0) and be["crossings"] == [20.0]
    assert be["container-service_cost"] == 10.0 and be["k8s-function_cost"] == 10.0
    assert be["container-service_latency_p99"] == 100.0 and be["k8s-function_latency_p99"] == 80.0
    assert be["below"] == "container-service" and be["kinds"] == ("container-service", "k8s-function")
    assert be["k8s-function_point"] == (_point_of(df, 19, "k8s-function"), _point_of(df, 21, "k8s-function"))
    # The other way round: the same load, the sign of d flipped, the same kind cheaper below.
    back = break_even(df, kinds=("k8s-function", "container-service"))
    assert back["load"] == 20.0 and back["below"] == "container-service"
    # The default pair is Lambda and EC2 (no crossing here: Lambda is always the cheaper).
    assert break_even(df) is None
    assert break_even(df.assign(kind=df["kind"].replace({"lambda": "x"})), kinds=("lambda", "ec2")) is None
    with pytest.raises(ValueError, match="two different kinds"):
        break_even(df, kinds=("ec2", "ec2"))


def test_default_pair_keys_unchanged():
    be = break_even(_break_even_table(range(1, 101), _step))
    assert set(be) == {"load", "lambda_cost", "ec2_cost", "lambda_latency_p99", "ec2_latency_p99", "below",
                       "lambda_point", "ec2_point", "between", "crossings", "kinds"}
    assert be["kinds"] == ("lambda", "ec2")


def test_kinds_in_order_pairs_and_cheapest_per_kind():
    df = _four_kinds_table([10, 30])
    assert kinds_in(df) == list(KINDS) == ["lambda", "ec2", "k8s-function", "container-service"]
    assert kinds_in(df.assign(kind=df["kind"].replace({"ec2": "zz-other"}))) == [
        "lambda", "k8s-function", "container-service", "zz-other"]
    assert kind_pairs(["lambda", "ec2", "k8s-function"]) == [("lambda", "ec2"), ("lambda", "k8s-function"),
                                                             ("ec2", "k8s-function")]
    best = cheapest_per_kind(df[df[LOAD] == 30])
    assert list(best["kind"]) == list(KINDS)
    assert list(best["cost_usd.total"]) == [130.0, 1000.0, 10.0, 15.0]
    assert best.iloc[3]["point"] == _point_of(df, 30, "container-service", 1024)   # not the error row at 0 USD
    assert cheapest_per_kind(df.iloc[0:0]).empty


# --- missing columns --------------------------------------------------------------------------

@pytest.mark.parametrize("call, column", [
    (lambda df: pareto_frontier(df.drop(columns="latency_ms.p99")), "latency_ms.p99"),
    (lambda df: pareto_frontier(df, cost="cost_usd.compute"), "cost_usd.compute"),
    (lambda df: cheapest_meeting(df.drop(columns="latency_ms.p99"), {"p99_ms": 300}), "latency_ms.p99"),
    (lambda df: cheapest_meeting(df.drop(columns="rejected"), {"max_rejected_fraction": 0.1}), "rejected"),
    (lambda df: break_even(df.drop(columns="kind")), "kind"),
    (lambda df: break_even(df, load="param.trace.peak_rps"), "param.trace.peak_rps"),
    (lambda df: sensitivity(df, "param.lambda.keep_alive_s"), "param.lambda.keep_alive_s"),
])
def test_missing_column_named(call, column):
    df = _break_even_table([10, 30], _step)
    with pytest.raises(ValueError, match=f"column '{column}' not in the table; it has: point, {LOAD},"):
        call(df)

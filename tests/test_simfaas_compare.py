"""servesim against the peer simulator SimFaaS (benchmarks/bench_simfaas.py), and that benchmark's statistics.

The agreement check: on SimFaaS's own default case (Poisson 0.9 req/s, exponential warm 1.991 s /
cold 2.244 s, keep-alive 600 s), ~100,000 requests each, servesim's cold-start probability and
time-average instance count are within 3 combined standard errors of SimFaaS's (batch means, or
replications when the batches are correlated; see the benchmark's docstring).
"""
from __future__ import annotations

import importlib.util
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks" / "bench_simfaas.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_simfaas", BENCH)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up there
    try:
        spec.loader.exec_module(mod)
        yield mod
    finally:
        sys.modules.pop(spec.name, None)


def test_simfaas_default_case_agrees(bench):
    pytest.importorskip("simfaas")
    res = bench.compare("default", requests=100_000, engines=["simpy"], seed=1)
    ref, ours = res["simulators"]
    assert ours["engine"] == "simpy"
    # both simulated about 100k requests (a Poisson count: within 5 sd)
    for s in (ref, ours):
        assert abs(s["speed"]["requests_simulated"] - 100_000) < 5 * math.sqrt(100_000)
    # no request hit servesim's 900 s timeout, none throttled: the limits do not bind
    assert all(r["timeouts"] == 0 and r["rejected"] == 0 for r in ours["runs"])
    assert all(r["rejected"] == 0 for r in ref["runs"])
    a, b = ours["figures"], ref["figures"]
    for fig, se_key in (("p_cold", "p_cold_se"), ("instances_mean", "instances_se")):
        se = math.hypot(a[se_key], b[se_key])
        assert se > 0
        assert abs(a[fig] - b[fig]) <= 3 * se, (fig, a, b)
        assert res["agreement"]["simpy"][fig]["agree"]
    # the SEs are meaningful: a few percent of the figures, not 0 and not huge
    f = ours["figures"]
    assert 0.01 < f["p_cold_se"] / f["p_cold"] < 0.3
    assert 0.001 < f["instances_se"] / f["instances_mean"] < 0.05


def test_unavailable_engine_is_skipped(bench, monkeypatch):
    pytest.importorskip("simfaas")
    monkeypatch.setattr(bench, "ENGINES", ("auto", "simpy"))
    res = bench.compare("default", requests=2_000, engines=["simpy", "fast"], seed=3, replications=0)
    assert "fast" in res["skipped_engines"]
    assert [s["engine"] for s in res["simulators"]] == [None, "simpy"]
    assert set(res["agreement"]) == {"simpy"}


def test_short_batches_switch_to_replications(bench):
    # 2,000 requests at 100 req/s: batches of 9 s, far shorter than 5 keep-alives of 600 s.
    pytest.importorskip("simfaas")
    res = bench.compare("high-load", requests=2_000, engines=["simpy"], seed=1, replications=3)
    assert res["se_method"].startswith("independent replications") and res["se_reliable"]
    assert any("keep-alives" in why for why in res["batch_problems"])
    for s in res["simulators"]:
        assert len(s["runs"]) == 3
        n = np.array([r["instances_mean"] for r in s["runs"]])
        assert s["figures"]["instances_mean"] == pytest.approx(n.mean())
        assert s["figures"]["instances_se"] == pytest.approx(n.std(ddof=1) / math.sqrt(3))


def test_ratio_batch_se_matches_binomial_theory(bench):
    # 20 independent batches of N requests, each cold with probability p: SE = sqrt(p(1-p)/(20N)).
    # The batch-means estimate has 19 degrees of freedom (relative sd ~ 16 %): within 50 %.
    rng = np.random.default_rng(11)
    p, n = 0.01, 5_000
    den = np.full(20, n)
    num = rng.binomial(n, p, size=20)
    theory = math.sqrt(p * (1 - p) / (20 * n))
    assert bench.ratio_batch_se(num, den) == pytest.approx(theory, rel=0.5)


def test_batch_independence_check(bench):
    rng = np.random.default_rng(5)
    iid = rng.normal(size=20)
    assert bench.batch_problem(bench.lag1(iid), bench.mean_batch_se(iid)) is None
    ar = np.zeros(20)  # strongly autocorrelated batches: AR(1) with phi = 0.95
    for i in range(1, 20):
        ar[i] = 0.95 * ar[i - 1] + rng.normal()
    assert "correlated" in bench.batch_problem(bench.lag1(ar), bench.mean_batch_se(ar))
    flat = np.full(20, 245.0)  # a figure that never moved (an instance pool that did not change)
    assert "no variation" in bench.batch_problem(bench.lag1(flat), bench.mean_batch_se(flat))


def test_agreement_criterion(bench):
    ag = bench.agreement(1.0, 0.3, 2.0, 0.4)
    assert ag["combined_se"] == pytest.approx(0.5)
    assert ag["z"] == pytest.approx(2.0) and ag["agree"]
    assert not bench.agreement(1.0, 0.3, 2.6, 0.4)["agree"]


def test_cli_writes_json(tmp_path):
    pytest.importorskip("simfaas")
    out = tmp_path / "r" / "simfaas.json"
    proc = subprocess.run([sys.executable, str(BENCH), "--requests", "2000", "--cases", "default",
                           "--engines", "simpy", "--replications", "0", "--out", str(out)],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "VERDICT" in proc.stdout and "hypoexponential" in proc.stdout
    doc = json.loads(out.read_text())
    (res,) = doc["results"]
    assert res["case"]["name"] == "default"
    assert [s["name"].split()[0] for s in res["simulators"]] == ["SimFaaS", "servesim"]
    assert not list(out.parent.glob(".*.tmp"))

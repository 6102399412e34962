"""Distribution fitting, memory scaling, profiles from measurement tables, diagnostic plots.

Tolerances (n = 5000 per sample): shape and scale parameters within 5 % relative, which is at
least 3 standard deviations of the estimators here (measured over 30 seeds: 0.7-1.5 %); for the
shifted lognorm, whose three parameters trade off against each other, 8 % for s and scale
(sd 1.6-2 %) and 3 % for loc (sd 0.7 %). Seeds are fixed; over 20 seeds the right family is
chosen 19-20 times out of 20 for every family (the misses are gamma/weibull with shape ~1 on
expon data, a shifted weibull, or a fallback when the empirical p99 is noisy).
"""
from __future__ import annotations

import copy
import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import scipy.stats as st
from scipy.integrate import quad

from calibrate.fit import (
    KS_ALPHA,
    P99_TOL,
    bootstrap_quantile_ci,
    cpu_share,
    fit_memory_scaling,
    fit_samples,
)
from calibrate.fitplots import plot_fit
from calibrate.profiles import fit_measurements, profile_from_table, table_sha256, write_profile
from calibrate.table import COLUMNS
from sim.dists import Empirical, parse_dist
from sim.dists_composite import Mixture, Spliced
from sim.errors import ConfigError
from sim.profile import _lambda_scalings, load_profile

N = 5000
UNIMODAL = ("lognorm", "gamma", "weibull_min", "expon")


def draw(dist, n=N, seed=0):
    return dist.rvs(n, random_state=np.random.default_rng(seed))


def bimodal_sample(n=N, seed=0):
    rng = np.random.default_rng(seed)
    low = rng.random(n) < 0.3
    return np.where(low, st.lognorm(0.15, scale=20).rvs(n, random_state=rng),
                    st.lognorm(0.1, scale=60).rvs(n, random_state=rng))


def heavy_tail_sample(n, seed):
    """A lognormal body with a generalized Pareto tail (c = 0.6) above its p95, density continuous."""
    body = st.lognorm(0.15, scale=50)
    thr = body.ppf(0.95)
    tail = st.genpareto(0.6, loc=thr, scale=2 * 0.05 / body.pdf(thr))
    u = np.random.default_rng(seed).random(n)
    return np.where(u < 0.95, body.ppf(np.minimum(u, 0.95)), tail.ppf(np.clip((u - 0.95) / 0.05, 0, 1)))


# -- families and parameters ----------------------------------------------------------------------

@pytest.mark.parametrize("family, dist, expected, rtol", [
    ("lognorm", st.lognorm(0.5, scale=40), {"s": 0.5, "scale": 40}, {"s": 0.05, "scale": 0.05}),
    ("gamma", st.gamma(3, scale=10), {"a": 3, "scale": 10}, {"a": 0.05, "scale": 0.05}),
    ("weibull_min", st.weibull_min(1.5, scale=30), {"c": 1.5, "scale": 30}, {"c": 0.05, "scale": 0.05}),
    ("expon", st.expon(scale=20), {"mean": 20}, {"mean": 0.05}),
    ("shifted_lognorm", st.lognorm(0.6, loc=25, scale=15), {"s": 0.6, "scale": 15, "loc": 25},
     {"s": 0.08, "scale": 0.08, "loc": 0.03}),
])
def test_recovers_family_and_parameters(family, dist, expected, rtol):
    x = draw(dist)
    rep = fit_samples(x, bootstrap=50)
    assert rep.family == family and rep.method == "parametric", rep.table()
    assert set(rep.params) == set(expected)
    for name, true in expected.items():
        assert rep.params[name] == pytest.approx(true, rel=rtol[name]), name
    assert rep.ks_p >= KS_ALPHA
    assert abs(rep.p99_miss) <= P99_TOL
    # the spec loads with the simulator's own parser and is the same distribution
    d = parse_dist(rep.spec)
    assert d.ppf(np.array([0.5]))[0] == pytest.approx(rep.fitted["p50"])
    assert d.mean() == pytest.approx(dist.mean(), rel=0.05)


def test_expon_spec_uses_the_simulators_mean_form():
    rep = fit_samples(draw(st.expon(scale=20)), bootstrap=0)
    assert rep.spec["dist"] == "expon" and set(rep.spec) == {"dist", "mean"}


def test_candidate_table_lists_every_family_with_reasons():
    rep = fit_samples(draw(st.gamma(3, scale=10)), bootstrap=0)
    fams = [c["family"] for c in rep.table()]
    for f in UNIMODAL:
        assert f in fams and f"shifted_{f}" in fams
    assert fams[-1] == "empirical"
    for row in rep.table():
        assert row["reason"], row
        if row["family"] != "empirical":
            assert row["aic"] is not None and row["ks"] is not None and row["p99"] is not None
    chosen = [r for r in rep.table() if r["chosen"]]
    assert len(chosen) == 1 and chosen[0]["family"] == "gamma" and "chosen: lowest AIC" in chosen[0]["reason"]


def test_fit_meta_has_the_profile_keys():
    rep = fit_samples(draw(st.lognorm(0.5, scale=40)), bootstrap=100)
    meta = rep.fit_meta()
    for key in ("n", "ks", "aic", "family_beaten", "p99_emp", "p99_fit", "p99_ci", "p999_emp", "p999_fit", "method"):
        assert key in meta
    assert meta["n"] == N and meta["method"] == "parametric" and "gamma" in meta["family_beaten"]
    lo, hi = meta["p99_ci"]
    assert lo <= meta["p99_emp"] <= hi
    json.dumps(meta, allow_nan=False)


# -- bimodal data and heavy tails ----------------------------------------------------------------------

def test_bimodal_data_get_a_mixture_not_a_unimodal_family():
    x = bimodal_sample()
    rep = fit_samples(x, bootstrap=50)
    assert rep.bimodality["bimodal"]
    assert rep.method in ("mixture", "spliced", "empirical")
    assert rep.family not in UNIMODAL and not rep.family.startswith("shifted_")
    assert rep.method == "mixture"
    assert rep.params["weights"] == pytest.approx([0.3, 0.7], abs=0.02)
    scales = [c["scale"] for c in rep.params["components"]]
    assert scales == pytest.approx([20, 60], rel=0.02)
    assert abs(rep.fitted["p99"] / rep.empirical["p99"] - 1) <= P99_TOL
    for c in rep.candidates:
        if c.family in UNIMODAL or c.family.startswith("shifted_"):
            assert not c.accepted and "bimodal" in c.reason
    # the simulator will get it once sim/dists.py knows "mixture"; calibrate's parser reads it now
    assert isinstance(parse_dist(rep.spec), Mixture)


def test_unimodal_data_are_not_called_bimodal():
    for dist in (st.lognorm(0.5, scale=40), st.gamma(3, scale=10), st.expon(scale=20)):
        rep = fit_samples(draw(dist, seed=3), bootstrap=0)
        assert not rep.bimodality.get("bimodal"), rep.bimodality


def test_heavy_tail_falls_back_and_keeps_p99():
    x = heavy_tail_sample(N, seed=5)
    rep = fit_samples(x, bootstrap=50)
    emp99 = rep.empirical["p99"]
    parametric = [c for c in rep.candidates if c.k is not None and c.spec is not None]
    assert len(parametric) == 8
    assert all(abs(c.p99 / emp99 - 1) > P99_TOL for c in parametric)  # every family misses p99
    assert rep.method in ("spliced", "empirical")
    assert abs(rep.fitted["p99"] / emp99 - 1) <= P99_TOL
    assert rep.method == "spliced"
    dist = parse_dist(rep.spec)
    assert isinstance(dist, Spliced) and rep.spec["tail"]["dist"] == "genpareto"
    assert dist.ppf(np.array([0.99]))[0] == pytest.approx(rep.fitted["p99"])


def test_a_fit_that_passes_ks_but_misses_p99_is_replaced():
    x = heavy_tail_sample(1000, seed=4)
    rep = fit_samples(x, bootstrap=50)
    missed = [c for c in rep.candidates if "chosen by AIC but p99 off" in c.reason]
    assert len(missed) == 1 and missed[0].ks_p >= KS_ALPHA
    assert rep.method in ("spliced", "empirical")
    assert abs(rep.fitted["p99"] / rep.empirical["p99"] - 1) <= P99_TOL


def test_small_samples_are_empirical():
    x = draw(st.lognorm(0.5, scale=40), n=12)
    rep = fit_samples(x)
    assert rep.method == "empirical" and parse_dist(rep.spec) == Empirical(x)


def test_bad_samples_are_refused():
    with pytest.raises(ValueError):
        fit_samples(np.array([]))
    with pytest.raises(ValueError):
        fit_samples(np.array([1.0, -2.0, 3.0]))
    with pytest.raises(ValueError):
        fit_samples(np.array([1.0, np.nan]))


# -- bootstrap ------------------------------------------------------------------------------------------

def test_bootstrap_intervals_cover_the_true_p99():
    dist = st.lognorm(0.5, scale=40)
    true = dist.ppf([0.5, 0.99])
    covered = np.zeros(2)
    reps = 100
    for seed in range(reps):
        rng = np.random.default_rng(seed)
        ci = bootstrap_quantile_ci(dist.rvs(1000, random_state=rng), [0.5, 0.99], resamples=200, rng=rng)
        covered += (ci[:, 0] <= true) & (true <= ci[:, 1])
    # nominal 95 %; the percentile bootstrap of a quantile runs a little under it (93 % here)
    assert np.all(covered / reps >= 0.85), covered / reps


def test_fit_report_interval_covers_known_lognormal_p99():
    dist = st.lognorm(0.5, scale=40)
    rep = fit_samples(draw(dist, seed=11), bootstrap=200)
    lo, hi = rep.empirical_ci["p99"]
    assert lo <= dist.ppf(0.99) <= hi and lo < rep.empirical["p99"] < hi


# -- the new distribution families ------------------------------------------------------------------------

MIX_SPEC = {"dist": "mixture", "weights": [0.3, 0.7],
            "components": [{"dist": "lognorm", "s": 0.15, "scale": 20}, {"dist": "lognorm", "s": 0.1, "scale": 60}]}


def test_mixture_ppf_is_accurate_and_sampling_is_inverse_transform():
    for spec in (MIX_SPEC, {"dist": "mixture", "weights": [0.05, 0.95],
                            "components": [{"dist": "expon", "mean": 200},
                                           {"dist": "gamma", "a": 5, "scale": 2, "loc": 3}]}):
        m = parse_dist(spec)
        u = np.concatenate([np.random.default_rng(0).random(5000),
                            1 / (1 + np.exp(-np.linspace(-30, 30, 601))), [0.0, 1e-300, 1 - 2 ** -53]])
        exact = m._bisect(u)
        got = m.ppf(u)
        pos = exact > 0
        assert np.max(np.abs(got[pos] - exact[pos]) / exact[pos]) < 1e-7
        assert np.all(np.diff(m.ppf(np.sort(u))) >= 0)
        rng1, rng2 = np.random.default_rng(5), np.random.default_rng(5)
        assert np.array_equal(m.sample(rng1, 1000), m.ppf(rng2.random(1000)))
        mean_numeric = quad(lambda v: v * m.pdf(v), 0, np.inf, limit=400)[0]
        assert m.mean() == pytest.approx(mean_numeric, rel=1e-6)
        assert parse_dist(m.to_spec()).to_spec() == m.to_spec()


def test_spliced_distribution():
    body = Empirical([1.0, 2.0, 3.0, 4.0])
    tail = parse_dist({"dist": "genpareto", "c": 0.2, "loc": 4.5, "scale": 2.0})
    s = Spliced(body, tail, 0.8)
    u = np.array([0.0, 0.1, 0.5, 0.79, 0.8, 0.9, 0.99])
    got = s.ppf(u)
    assert got[:4].tolist() == [1.0, 1.0, 3.0, 4.0]
    assert got[4] == pytest.approx(4.5)
    assert got[5] == pytest.approx(st.genpareto(0.2, loc=4.5, scale=2).ppf(0.5))
    assert s.mean() == pytest.approx(0.8 * 2.5 + 0.2 * (4.5 + 2 / 0.8))
    assert np.allclose(s.cdf(got[4:]), u[4:])
    spec = s.to_spec()
    assert spec == {"dist": "spliced", "at": 0.8, "body": {"dist": "empirical", "samples": [1.0, 2.0, 3.0, 4.0]},
                    "tail": {"dist": "genpareto", "c": 0.2, "loc": 4.5, "scale": 2.0}}
    assert parse_dist(spec).to_spec() == spec


@pytest.mark.parametrize("spec, where", [
    ({**MIX_SPEC, "weights": [0.3, 0.6]}, "sum to 1"),
    ({**MIX_SPEC, "weights": [0.3]}, "as many weights"),
    ({**MIX_SPEC, "components": [{"dist": "empirical", "samples": [1, 2]}, MIX_SPEC["components"][1]]},
     "continuous parametric"),
    ({**MIX_SPEC, "extra": 1}, "extra"),
    ({"dist": "spliced", "at": 0.9, "body": {"dist": "empirical", "samples": [1, 9]},
      "tail": {"dist": "genpareto", "c": 0.1, "loc": 5, "scale": 1}}, "above the tail"),
    ({"dist": "spliced", "at": 1.5, "body": {"dist": "empirical", "samples": [1]},
      "tail": {"dist": "genpareto", "c": 0.1, "loc": 5, "scale": 1}}, "(0, 1)"),
    ({"dist": "spliced", "at": 0.9, "body": {"dist": "empirical", "samples": [1]},
      "tail": {"dist": "genpareto", "c": 1.2, "loc": 5, "scale": 1}}, "finite mean"),
])
def test_bad_extra_specs_name_the_problem(spec, where):
    with pytest.raises(ConfigError) as err:
        parse_dist(spec, source="prof.json", key="lambda[0].warm_ms")
    assert where in str(err.value) and "prof.json" in str(err.value)


# -- memory scaling ---------------------------------------------------------------------------------------

def _scaling_samples(sizes, a, b, n=1001, s=0.1, seed=None):
    """Lognormal samples whose median is exactly a + b / share (symmetric normal scores), or random."""
    z = st.norm.ppf((np.arange(n) + 0.5) / n) if seed is None else np.random.default_rng(seed).standard_normal(n)
    return [(a + b / cpu_share(m)) * np.exp(s * z) for m in sizes]


def test_memory_scaling_recovers_a_and_b_and_refuses_extrapolation():
    sizes = [512, 1024, 1769, 3008]
    sc = fit_memory_scaling(sizes, _scaling_samples(sizes, 5.0, 40.0))
    assert sc["model"] == "a + b/share" and sc["measured_mb"] == [512, 3008]
    assert sc["share_per_mb"] == pytest.approx(1 / 1769)
    assert sc["a_ms"] == pytest.approx(5.0, rel=1e-9) and sc["b_ms"] == pytest.approx(40.0, rel=1e-9)
    assert sc["residuals"]["max_abs_rel"] < 1e-9 and sc["residuals"]["dof"] == 2
    assert sc["p99"]["a_ms"] > 5 and sc["p99"]["b_ms"] > 40  # the p99 curve sits above the median's
    t = lambda m: 5.0 + 40.0 / cpu_share(m)  # noqa: E731
    # The simulator reads it (sim.profile.LambdaScaling) and applies it; the loader refuses
    # extrapolation (tests/test_loader.py).
    scaling = _lambda_scalings({"x86_64": sc}, "p.json")["x86_64"]
    assert scaling.factor(1024, 2048) == pytest.approx(t(2048) / t(1024))
    assert scaling.factor(1024, 1024) == 1.0
    assert scaling.within(2048) and not scaling.within(4096) and not scaling.within(256)
    json.dumps(sc, allow_nan=False)


def test_memory_scaling_from_noisy_samples():
    sizes = [512, 1024, 2048, 3008]
    sc = fit_memory_scaling(sizes, _scaling_samples(sizes, 8.0, 30.0, n=4000, seed=2))
    assert sc["a_ms"] == pytest.approx(8.0, abs=1.0) and sc["b_ms"] == pytest.approx(30.0, rel=0.05)
    assert sc["residuals"]["max_abs_rel"] < 0.02
    with pytest.raises(ValueError, match="two distinct"):
        fit_memory_scaling([1024, 1024], _scaling_samples([1024, 1024], 8.0, 30.0))


# -- profiles from a measurement table ------------------------------------------------------------------------

LAMBDA_A, LAMBDA_B = 4.0, 30.0


def synthetic_table(seed=0) -> pd.DataFrame:
    """Two Lambda sizes (and a third for scaling) and one local server, with the table's columns."""
    rng = np.random.default_rng(seed)
    rows: list[dict] = []
    t0 = 1_790_000_000.0
    base = {"run_id": "r1", "model": "mobilenetv2", "model_sha256": "ab" * 32, "status": "ok"}

    def add(**kw):
        rows.append({**base, **kw})

    for mem in (1024, 2048, 3008):
        cfg = {"target": "local-lambda", "config": f"memory_mb={mem},architecture=x86_64", "memory_mb": mem,
               "architecture": "x86_64", "concurrency": 1}
        med = LAMBDA_A + LAMBDA_B / (mem / 1769)
        for i, v in enumerate(st.lognorm(0.2, scale=med).rvs(400, random_state=rng)):
            add(**cfg, phase="warm", seq=i, send_s=t0 + i, server_ms=v, client_ms=v + 2, billed_ms=np.ceil(v),
                max_memory_mb=150.0 + mem / 100)
        for i, v in enumerate(st.lognorm(0.2, scale=300).rvs(40, random_state=rng)):
            add(**cfg, phase="cold", seq=i, send_s=t0 + 1000 + i, server_ms=med, client_ms=v + med + 5, init_ms=v,
                max_memory_mb=150.0)
        for i in range(7):  # throttled at the top load level: counted, not fitted
            add(**{**cfg, "concurrency": 64}, phase="load", level=64.0, seq=i, send_s=t0 + 2000 + i, status="throttled",
                error="429")
    srv = {"target": "local-server", "config": "workers=2,cpus=2", "workers": 2, "cpus": 2.0}
    for i, v in enumerate(st.gamma(4, scale=2.5).rvs(400, random_state=rng)):
        add(**srv, phase="warm", concurrency=1, seq=i, send_s=t0 + 3000 + i * 0.05, client_ms=v, server_ms=v - 1)
    for i, v in enumerate([1500.0, 1620.0, 1580.0, 1710.0, 1490.0]):
        add(**srv, phase="cold", concurrency=1, seq=i, send_s=t0 + 4000 + i, init_ms=v, client_ms=12.0)
    # closed loop: c clients back to back; two workers at 10 ms saturate at 200 req/s
    for c in (1, 2, 4, 8):
        lat_ms = 10.0 * max(1.0, c / 2)
        seq = 0
        for client in range(c):
            for k in range(100):
                add(**srv, phase="load", level=float(c), concurrency=c, seq=seq,
                    send_s=t0 + 5000 + 100 * c + k * lat_ms / 1000, client_ms=lat_ms * (1 + 0.01 * (k % 5)))
                seq += 1
    for i in range(3):
        add(**srv, phase="load", level=8.0, concurrency=8, seq=900 + i, send_s=t0 + 5900, status="error",
            error="HTTP 500")
    return pd.DataFrame(rows, columns=COLUMNS.names)


def loadable(profile: dict) -> dict:
    """The profile without `lambda_scaling`, which sim/profile.py does not accept yet."""
    p = copy.deepcopy(profile)
    p.pop("lambda_scaling", None)
    return p


def test_profile_from_table_loads_in_the_simulator(tmp_path):
    df = synthetic_table()
    prof = profile_from_table(df)
    path = write_profile(loadable(prof), tmp_path / "profile.json")
    loaded = load_profile(path)
    assert loaded.model.name == "mobilenetv2" and loaded.model.sha256 == "ab" * 32
    assert loaded.measured.target == "local-lambda+local-server"
    assert loaded.measured.table_sha256 == table_sha256(df) and loaded.measured.at.startswith("2026-")
    assert [(e.memory_mb, e.architecture) for e in loaded.lambdas] == [(1024, "x86_64"), (2048, "x86_64"),
                                                                       (3008, "x86_64")]
    for e in loaded.lambdas:
        med = LAMBDA_A + LAMBDA_B / (e.memory_mb / 1769)
        assert e.warm_ms.ppf(np.array([0.5]))[0] == pytest.approx(med, rel=0.05)
        assert e.cold_init_ms.ppf(np.array([0.5]))[0] == pytest.approx(300, rel=0.1)
        assert e.max_memory_mb == pytest.approx(150.0 + e.memory_mb / 100)
        assert e.fit["warm_ms"]["column"] == "server_ms" and e.fit["warm_ms"]["n"] == 400
        assert e.fit["warm_ms"]["status"]["load"]["throttled"] == 7
        assert e.fit["cold_init_ms"]["n"] == 40
    server = loaded.server_entry("local-2vcpu", 2)
    assert server is not None
    assert server.service_ms.mean() == pytest.approx(10.0, rel=0.1)
    assert server.boot_s.mean() == pytest.approx(np.mean([1.5, 1.62, 1.58, 1.71, 1.49]), rel=1e-9)
    assert [p.concurrency for p in server.throughput] == [1, 2, 4, 8]
    assert [p.rps for p in server.throughput] == pytest.approx([100, 200, 200, 200], rel=0.05)
    assert server.fit["service_ms"]["knee"]["concurrency"] == 2
    assert server.fit["service_ms"]["status"]["load"] == {"ok": 1500, "throttled": 0, "error": 3, "timeout": 0}
    scaling = prof["lambda_scaling"]["x86_64"]
    assert scaling["measured_mb"] == [1024, 3008]
    assert scaling["a_ms"] == pytest.approx(LAMBDA_A, abs=1.5) and scaling["b_ms"] == pytest.approx(LAMBDA_B, rel=0.1)


def test_profile_with_lambda_scaling_loads_in_the_simulator(tmp_path):
    path = write_profile(profile_from_table(synthetic_table()), tmp_path / "profile.json")
    prof = load_profile(path)
    assert prof.lambda_scaling["x86_64"].measured_mb == (1024, 3008)


def test_fit_measurements_from_a_parquet_folder_with_plots(tmp_path):
    df = synthetic_table()
    folder = tmp_path / "measurements.parquet"
    folder.mkdir()
    pq.write_table(pa.Table.from_pandas(df, schema=COLUMNS, preserve_index=False), folder / "part-00000.parquet")
    (folder / "_campaign.json").write_text(json.dumps({"host": "box", "versions": {"onnxruntime": "1.20"}}))
    out, plots = tmp_path / "profile.json", tmp_path / "plots"
    prof = fit_measurements(folder, out, plots_dir=plots)
    assert json.loads(out.read_text()) == json.loads(json.dumps(prof))
    assert prof["measured"]["host"] == "box" and prof["measured"]["versions"] == {"onnxruntime": "1.20"}
    assert prof["measured"]["table_sha256"] == table_sha256(df, folder) != table_sha256(df)
    assert table_sha256(pd.read_parquet(folder)) == table_sha256(df)  # canonical bytes survive the round trip
    pngs = sorted(p.name for p in plots.iterdir())
    assert "lambda-1024mb-x86_64-warm_ms.png" in pngs and "server-local-2vcpu-w2-boot_s.png" in pngs
    # Per Lambda entry warm_ms, cold_init_ms and the idle-effect plot; the server: service_ms, boot_s, idle.
    assert "server-local-2vcpu-w2-idle_effect.png" in pngs
    assert len(pngs) == 3 * 3 + 3
    for p in plots.iterdir():
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not [p for p in tmp_path.rglob("*.tmp")]
    load_profile(write_profile(loadable(prof), tmp_path / "p2.json"))


def test_table_errors_name_the_problem():
    df = synthetic_table()
    with pytest.raises(ConfigError, match="missing: cpus"):
        profile_from_table(df.drop(columns=["cpus"]), source_path="t.parquet")
    two = df.copy()
    two.loc[two.index[:5], "model"] = "other"
    with pytest.raises(ConfigError, match="one model"):
        profile_from_table(two)
    no_warm = df[~((df["memory_mb"] == 1024) & (df["phase"] == "warm"))]
    with pytest.raises(ConfigError, match="lambda-1024mb-x86_64-warm_ms"):
        profile_from_table(no_warm)


def test_table_sha256_ignores_row_order():
    df = synthetic_table()
    assert table_sha256(df) == table_sha256(df.sample(frac=1.0, random_state=1))
    changed = df.copy()
    changed.loc[changed.index[0], "server_ms"] += 1e-9
    assert table_sha256(changed) != table_sha256(df)


# -- plots ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["parametric", "mixture", "spliced", "empirical"])
def test_plot_fit_writes_a_png(tmp_path, kind):
    x = {"parametric": lambda: draw(st.gamma(3, scale=10), n=2000), "mixture": lambda: bimodal_sample(2000),
         "spliced": lambda: heavy_tail_sample(N, seed=5), "empirical": lambda: draw(st.expon(scale=3), n=15)}[kind]()
    rep = fit_samples(x, bootstrap=0)
    assert rep.method == kind
    path = plot_fit(x, rep, tmp_path / "sub" / f"{kind}.png", f"test {kind}")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000
    assert [p.name for p in path.parent.iterdir()] == [f"{kind}.png"]


@pytest.mark.parametrize("x", [[122.63, 143.66], [2.01, 2.05, 2.1, 2.4, 2.2]], ids=["two cold starts", "narrow range"])
def test_plot_fit_of_few_values_lays_out_without_warning(tmp_path, x):
    """Two cold starts put the tail panel's p99 labels two decades below its axes, and a narrow
    range gave log axes only overlapping minor tick labels: matplotlib then warned that the
    layout collapsed. Now every value is in the histogram and the panels lay out."""
    import warnings

    from matplotlib.figure import Figure

    x = np.asarray(x)
    rep = fit_samples(x, bootstrap=0)
    seen = {}
    real_savefig = Figure.savefig

    def savefig(fig, *args, **kwargs):
        seen["fig"] = fig
        return real_savefig(fig, *args, **kwargs)

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(Figure, "savefig", savefig)
            plot_fit(x, rep, tmp_path / "few.png", "few")
    ax_h, ax_q, ax_s = seen["fig"].axes[:3]
    assert sum(p.get_height() > 0 for p in ax_h.patches) >= 2  # the largest value is in the histogram
    assert ax_q.get_xscale() == ax_s.get_xscale() == "linear"
    assert all(t.get_position()[1] >= ax_s.get_ylim()[0] for t in ax_s.texts)

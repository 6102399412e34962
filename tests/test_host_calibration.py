"""Host share: bursts of simultaneous requests measured on the real local targets, the fit
(`calibrate.fit.fit_host_share`), the profile's ``host_share``, scenarios' ``host`` and the
host share validation predicts with. Real processes bind 127.0.0.1 and are all stopped."""
from __future__ import annotations

import copy
import json
import time
from pathlib import Path

import numpy as np
import pytest
from test_campaign import no_process_left, tiny_model  # noqa: F401 - fixtures

from calibrate.fit import HOST_MIN_STRETCH, fit_host_share, fit_stretch, stretch_model
from sim.config import HostShare
from sim.errors import ConfigError
from sim.profile import SCHEMA, load_profile

# -- the fit on synthetic bursts ---------------------------------------------------------------------


def bursts(m: float, base_ms: float, ks=(1, 2, 4), n_bursts: int = 5, noise: float = 0.03, seed: int = 0) -> dict:
    """Durations of bursts of k equal jobs sharing the host (m = cores / demand), lognormal noise."""
    rng = np.random.default_rng(seed)
    return {k: base_ms * float(stretch_model(k, m)) * np.exp(rng.normal(0, noise, k * n_bursts)) for k in ks}


@pytest.mark.parametrize("m", [1.2, 1.7, 2.5, 3.2])
def test_fit_recovers_cores_over_demand(m):
    f = fit_stretch(bursts(m, 150.0))
    assert f.reason is None and f.m == pytest.approx(m, rel=0.06)
    assert [p["k"] for p in f.points] == [1, 2, 4] and f.points[0]["stretch"] == pytest.approx(1.0, rel=0.05)
    assert f.base_ms == pytest.approx(150.0, rel=0.03)


def test_base_from_every_unstretched_size_not_only_k_one():
    # m = 2.5: k = 1 and 2 are unstretched, 4 and 8 past the knee. Three of the five durations at
    # k = 1 came out slow (host noise), so their median is 27 % high; the twelve at k = 2 measure
    # the same duration alone. Stretches taken over the median at k = 1 would read m = 3.2.
    data = bursts(2.5, 150.0, ks=(2, 4, 8), n_bursts=6, noise=0.02, seed=7)
    data[1] = np.array([148.0, 152.0, 190.0, 195.0, 200.0])
    f = fit_stretch(data)
    assert f.m == pytest.approx(2.5, rel=0.06) and f.base_ms == pytest.approx(150.0, rel=0.04)
    assert [p["fitted"] for p in f.points] == pytest.approx([1.0, 1.0, 1.6, 3.2], rel=0.06)


def test_below_one_core_per_job_looks_like_one():
    # A job that cannot get its demand even alone stretches k = 1 too: relative to it, m = 1.
    data = {k: 150.0 * k * np.ones(k * 5) for k in (1, 2, 4)}
    assert fit_stretch(data).m == pytest.approx(1.0, rel=1e-3)


def test_lambda_convention_init_cores_one():
    fit = fit_host_share(bursts(1.7, 150.0, seed=1), bursts(3.4, 2.0, seed=2))
    assert fit.cores == pytest.approx(1.7, rel=0.06) and fit.init_cores == 1.0
    assert fit.work_cores == pytest.approx(0.5, rel=0.1)  # m_init / m_work
    entry = fit.entry()
    assert set(entry) == {"cores", "init_cores", "work_cores", "fit"}
    assert entry["fit"]["init"]["m"] == pytest.approx(fit.cores, rel=1e-5) and "rule" in entry["fit"]
    HostShare(entry["cores"], entry["init_cores"], entry["work_cores"])  # a valid HostShare


def test_no_stretch_is_not_identified():
    flat = bursts(100.0, 150.0, seed=3)  # each job alone on its core: no stretch at any k
    f = fit_stretch(flat)
    assert f.m is None and "clearly above noise" in f.reason
    server = fit_host_share(None, flat)
    assert server.cores is None and server.entry() == {"cores": None, "fit": server.entry()["fit"]}
    assert "reason" in server.entry()["fit"]
    lam = fit_host_share(flat, bursts(1.0, 2.0))
    assert lam.cores is None and lam.reason.startswith("INIT:")
    # A stretch below the 10 % floor is noise, however significant.
    small = {k: v * (1.0 + (HOST_MIN_STRETCH / 2) * (k > 1)) for k, v in flat.items()}
    assert fit_stretch(small).m is None


def test_warm_work_not_identified_gives_the_bound():
    fit = fit_host_share(bursts(2.0, 150.0, seed=4), bursts(100.0, 2.0, seed=5))
    assert fit.cores == pytest.approx(2.0, rel=0.06)
    assert fit.work_cores == pytest.approx(fit.cores / 4)  # the largest demand with no stretch up to k = 4
    assert any("upper bound" in n for n in fit.notes)


def test_server_fit_and_too_few_bursts():
    fit = fit_host_share(None, bursts(1.6, 3.0, ks=(1, 2), n_bursts=8, seed=6))
    assert fit.cores == pytest.approx(1.6, rel=0.08) and fit.work_cores == 1.0
    assert fit_stretch({1: [1.0, 1.1], 2: [2.0] * 4}).reason.startswith("at least 3")
    assert fit_stretch({1: [1.0, 1.1, 1.0]}).m is None


# -- profile and scenarios ---------------------------------------------------------------------------

PROFILE = {
    "schema": SCHEMA,
    "model": {"name": "tiny"},
    "measured": {"target": "local-lambda+local-server"},
    "lambda": [{"memory_mb": 1024, "architecture": "x86_64", "warm_ms": {"dist": "expon", "mean": 3},
                "cold_init_ms": 150,
                "host_share": {"cores": 1.7, "init_cores": 1, "work_cores": 0.6, "fit": {"init": {"m": 1.7}}}},
               {"memory_mb": 2048, "architecture": "x86_64", "warm_ms": 2, "cold_init_ms": 140,
                "host_share": {"cores": None, "fit": {"reason": "no burst size shows a stretch"}}}],
    "server": [{"instance_type": "c6i.large", "workers": 2, "service_ms": 3,
                "host_share": {"cores": 1.8}}],
}


def write_profile(tmp_path: Path, data=PROFILE) -> Path:
    path = tmp_path / "p.json"
    path.write_text(json.dumps(data))
    return path


def test_profile_host_share_round_trip(tmp_path):
    prof = load_profile(write_profile(tmp_path))
    a, b = prof.lambdas
    assert a.host == HostShare(1.7, 1.0, 0.6) and a.fit["host_share"] == {"init": {"m": 1.7}}
    assert b.host is None and b.fit["host_share"]["reason"].startswith("no burst")
    assert prof.servers[0].host == HostShare(1.8, 1.0, 1.0)
    old = copy.deepcopy(PROFILE)
    for e in old["lambda"] + old["server"]:
        del e["host_share"]
    assert all(e.host is None for e in load_profile(write_profile(tmp_path, old)).lambdas)


@pytest.mark.parametrize("share, key, expected", [
    ({"cores": 0}, "lambda[0].host_share.cores", "a number > 0"),
    ({"cores": "two"}, "lambda[0].host_share.cores", "a number > 0"),
    ({"init_cores": 1}, "lambda[0].host_share.cores", "this key is required"),
    ({"cores": 2, "work_core": 1}, "lambda[0].host_share.work_core", "did you mean 'work_cores'"),
    ({"cores": None, "work_cores": 1}, "lambda[0].host_share.work_cores", "no value when cores is null"),
    ({"cores": 2, "fit": 3}, "lambda[0].host_share.fit", "a mapping"),
    ([2], "lambda[0].host_share", "a mapping"),
])
def test_profile_host_share_errors_name_file_and_key(tmp_path, share, key, expected):
    bad = copy.deepcopy(PROFILE)
    bad["lambda"][0]["host_share"] = share
    path = write_profile(tmp_path, bad)
    with pytest.raises(ConfigError) as e:
        load_profile(path)
    assert str(path) in str(e.value) and key in str(e.value) and expected in str(e.value)


SCENARIO = """\
name: host
trace: {kind: poisson, rate_rps: 5, duration: 1m}
profile: p.json
platforms:
  - {name: fn, kind: lambda, memory_mb: 1024, host: profile}
  - {name: fn-inline, kind: lambda, memory_mb: 1024, host: {cores: 2, work_cores: 0.5}}
  - {name: fn-none, kind: lambda, memory_mb: 1024}
  - {name: srv, kind: ec2, instance_type: c6i.large, workers_per_instance: 2, host: profile}
  - {name: srv-null, kind: ec2, instance_type: c6i.large, workers_per_instance: 2, host: null}
"""


def load(tmp_path, text):
    from scenarios.loader import load_scenario

    write_profile(tmp_path)
    path = tmp_path / "s.yaml"
    path.write_text(text)
    return load_scenario(path)


def test_scenario_host_keys(tmp_path):
    s = load(tmp_path, SCENARIO)
    hosts = {p.name: p.host for p in s.platforms}
    assert hosts == {"fn": HostShare(1.7, 1.0, 0.6), "fn-inline": HostShare(2.0, 1.0, 0.5), "fn-none": None,
                     "srv": HostShare(1.8, 1.0, 1.0), "srv-null": None}


def test_scenario_host_is_sweepable(tmp_path):
    from scenarios.sweep import parse_sweep, point_scenario

    s = load(tmp_path, SCENARIO + "sweep:\n  grid:\n    platforms.fn-none.host.cores: [1, 2]\n    platforms.fn.host: [profile, none]\n")
    points = parse_sweep(s).points
    assert len(points) == 4
    got = set()
    for pt in points:
        p = {x.name: x.host for x in point_scenario(s, pt).platforms}
        got.add((p["fn-none"].cores, p["fn"]))
    assert got == {(1.0, HostShare(1.7, 1.0, 0.6)), (1.0, None), (2.0, HostShare(1.7, 1.0, 0.6)), (2.0, None)}


@pytest.mark.parametrize("host, memory, expected", [
    ("prof", 1024, "'profile', 'none' (or null), or a mapping"),
    ("profile", 2048, "its host share was not identified: no burst size shows a stretch"),
    ("profile", 4096, "'profile' only when the service times come from a profile entry"),
    ("{cores: -1}", 1024, "a number > 0"),
    ("{cores: 2, fit: {}}", 1024, "valid keys here: cores, init_cores, work_cores"),
])
def test_scenario_host_errors(tmp_path, host, memory, expected):
    text = (f"name: bad\ntrace: {{kind: poisson, rate_rps: 5, duration: 1m}}\nprofile: p.json\nplatforms:\n"
            f"  - {{name: fn, kind: lambda, memory_mb: {memory}, host: {host}, service: {{warm_ms: 2, cold_init_ms: 9}}}}\n")
    with pytest.raises(ConfigError) as e:
        load(tmp_path, text)
    assert "platforms[0].host" in str(e.value) and expected in str(e.value), str(e.value)


def test_validation_uses_the_profile_host_share_for_local_targets_only(tmp_path):
    from calibrate.validate import host_share_for

    s = load(tmp_path, SCENARIO)
    prof = load_profile(tmp_path / "p.json")
    fn_none, srv_null = s.platforms[2], s.platforms[4]
    p, rec = host_share_for(fn_none, prof, "local-lambda", s)
    assert p.host == HostShare(1.7, 1.0, 0.6) and rec["source"] == "profile" and rec["cores"] == 1.7
    p, rec = host_share_for(srv_null, prof, "local-server", s)
    assert p.host == HostShare(1.8, 1.0, 1.0)
    p, rec = host_share_for(s.platforms[1], prof, "local-lambda", s)  # the scenario's own wins
    assert p.host == HostShare(2.0, 1.0, 0.5) and rec["source"] == "scenario"
    for kind in ("aws-lambda", "http"):
        p, rec = host_share_for(s.platforms[0], prof, kind, s)
        assert p.host is None and rec["source"] == "none" and "dropped" in rec["note"]


# -- the burst phase against the real local targets ---------------------------------------------------

HOST = {"usable_cpus": 2}
SIZES = dict(quick=True, progress=False, echo=lambda s: None, n_cold=0, n_warm=1, load_levels=[1], level_s=0.5)


def test_burst_phase_local_server(tmp_path, tiny_model):
    pytest.importorskip("gunicorn")
    from calibrate.campaign import run_campaign
    from calibrate.profiles import fit_measurements
    from calibrate.targets import LocalServerTarget
    from calibrate.writer import CAMPAIGN_FILE, unit_key

    out = tmp_path / "server.parquet"
    target = LocalServerTarget(tiny_model, [2], cpus=2)
    t0 = time.perf_counter()
    summary = run_campaign(target, out, host=HOST, burst_sizes=[1, 2, 4], bursts=3, **SIZES)
    took = time.perf_counter() - t0
    import pandas as pd

    df = pd.read_parquet(out)
    b = df[df.phase == "burst"]
    assert sorted(b.level.unique()) == [1.0, 2.0]  # k = 4 > 2 workers is not a burst of this server
    assert (b.status == "ok").all() and (b.level == b.concurrency).all() and b.init_ms.isna().all()
    assert (b.groupby("level").size() == pd.Series({1.0: 3, 2.0: 6})).all()
    meta = json.loads((out / CAMPAIGN_FILE).read_text())
    assert {unit_key("workers=2,cpus=2", "burst", k) for k in (1, 2)} <= set(meta["units"])
    assert set(summary.burst["workers=2,cpus=2"]) == {1, 2}
    # The two of a burst were sent together.
    for _, g in b[b.level == 2].groupby(b.seq // 2):
        assert np.ptp(g.send_s) < 0.05
    # Resumed: nothing measured again.
    again = run_campaign(target, out, host=HOST, resume=True, burst_sizes=[1, 2, 4], bursts=3, **SIZES)
    assert again.units_measured == [] and set(again.burst["workers=2,cpus=2"]) == {1, 2}
    prof = fit_measurements(out, tmp_path / "p.json", plots_dir=tmp_path / "plots")
    share = prof["server"][0]["host_share"]
    assert "fit" in share and [p["k"] for p in share["fit"]["work"]["points"]] == [1, 2]
    assert (tmp_path / "plots" / "server-local-2vcpu-w2-host_share.png").stat().st_size > 1000
    load_profile(tmp_path / "p.json")
    assert took < 25, took


def test_cold_bursts_local_lambda(tmp_path, tiny_model):
    from calibrate.campaign import run_campaign
    from calibrate.profiles import fit_measurements
    from calibrate.targets import LocalLambdaTarget
    from deploy.rie import rie_path
    from sim.errors import ServesimError

    try:
        rie = rie_path()
    except ServesimError as exc:
        pytest.skip(f"the Lambda Runtime Interface Emulator is not installed: {exc}")
    import pandas as pd

    out = tmp_path / "lambda.parquet"
    t0 = time.perf_counter()
    run_campaign(LocalLambdaTarget(tiny_model, [1024], rie=rie), out, host=HOST, burst_sizes=[1, 2], bursts=3,
                 **{**SIZES, "n_cold": 1})
    took = time.perf_counter() - t0
    df = pd.read_parquet(out)
    b = df[df.phase == "burst"]
    assert (b.status == "ok").all(), b[b.status != "ok"].error.unique()
    cold, warm = b[b.init_ms.notna()], b[b.init_ms.isna()]
    assert (cold.groupby("level").size() == pd.Series({1.0: 3, 2.0: 6})).all()
    assert (cold.init_ms > 0).all() and (cold.level == cold.concurrency).all()
    assert (warm.groupby("level").size() == pd.Series({1.0: 3, 2.0: 6})).all() and warm.server_ms.notna().all()
    prof = fit_measurements(out, tmp_path / "p.json", plots_dir=tmp_path / "plots")
    share = prof["lambda"][0]["host_share"]
    assert (tmp_path / "plots" / "lambda-1024mb-x86_64-host_share.png").exists()
    assert [p["k"] for p in share["fit"]["init"]["points"]] == [1, 2]
    assert took < 30, took

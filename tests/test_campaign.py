"""Measurement campaigns against the real local targets (gunicorn + the app; the Lambda gateway
over AWS's runtime emulator): no mocks. Quick sizes keep the whole file under a minute or so.

After every test no process it started may be left (the ManagedProcess registry is empty and
the test process has no live child)."""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pd = pytest.importorskip("pandas")
pa = pytest.importorskip("pyarrow")
psutil = pytest.importorskip("psutil")
pytest.importorskip("onnxruntime")
pytest.importorskip("gunicorn")

import pyarrow.dataset as ds  # noqa: E402
from modelhelp import write_tiny_model  # noqa: E402

from calibrate.campaign import LevelResult, knee_of, knee_reached, parse_list, run_campaign, settings_for  # noqa: E402
from calibrate.host import HOST_KEYS, check_host, warnings  # noqa: E402
from calibrate.table import COLUMNS, SCHEMA_VERSION  # noqa: E402
from calibrate.targets import HttpTarget, LocalLambdaTarget, LocalServerTarget  # noqa: E402
from calibrate.writer import CAMPAIGN_FILE, TableWriter, unit_key  # noqa: E402
from deploy.local_server import LocalServer  # noqa: E402
from deploy.procs import live_processes  # noqa: E402
from sim.errors import ServesimError  # noqa: E402

QUICK = dict(quick=True, progress=False, echo=lambda s: None, bursts=0, pairs=0)  # bursts: tests/test_host_calibration.py


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    return write_tiny_model(tmp_path_factory.mktemp("model") / "tiny.onnx")


@pytest.fixture(scope="session")
def rie():
    from deploy.rie import rie_path

    try:
        return rie_path()
    except ServesimError as exc:
        pytest.skip(f"the Lambda Runtime Interface Emulator is not installed (make rie): {exc}")


@pytest.fixture(scope="session")
def host() -> dict:
    return check_host()


@pytest.fixture(autouse=True)
def no_process_left():
    yield
    assert live_processes() == []
    deadline = time.monotonic() + 5.0
    while True:
        children = [p for p in psutil.Process().children(recursive=True)
                    if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
        if not children or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert children == []


def read_table(path: Path) -> pd.DataFrame:
    return pd.read_parquet(path)


def check_valid_table(path: Path, *, target: str, n_cold: int, n_warm: int) -> pd.DataFrame:
    """The checks every campaign's table passes."""
    schema = ds.dataset(path, format="parquet").schema
    assert schema.names == COLUMNS.names
    assert [schema.field(n).type for n in schema.names] == [COLUMNS.field(n).type for n in COLUMNS.names]
    df = read_table(path)
    assert set(df.phase) == {"cold", "warm", "load"}
    assert (df.status == "ok").all(), df[df.status != "ok"].error.unique()
    assert (df.target == target).all() and df.run_id.nunique() == 1
    assert (df.client_ms > 0).all()
    cold, warm, load = (df[df.phase == p] for p in ("cold", "warm", "load"))
    assert len(cold) == n_cold and cold.init_ms.notna().all() and (cold.init_ms > 0).all()
    assert len(warm) == n_warm and warm.server_ms.notna().all() and warm.init_ms.isna().all()
    assert (cold.concurrency == 1).all() and (warm.concurrency == 1).all()
    assert (load.level == load.concurrency).all() and load.level.notna().all()
    assert cold.level.isna().all() and warm.level.isna().all()
    # Every unit once: seq is 0..n-1 within each (config, phase, level).
    for _, unit in df.groupby(["config", "phase", df.level.fillna(-1)]):
        assert sorted(unit.seq) == list(range(len(unit)))
    meta = json.loads((path / CAMPAIGN_FILE).read_text())
    assert meta["schema"] == SCHEMA_VERSION and meta["finished"] and meta["target"] == target
    assert set(meta["host"]) == set(HOST_KEYS)
    keys = {unit_key(c, p, lv) for c, p, lv in df[["config", "phase", "level"]].itertuples(index=False)}
    assert keys == set(meta["units"])
    return df


# ---- host checks ----------------------------------------------------------------------------

def test_host_checks_have_the_documented_keys(host):
    assert set(host) == set(HOST_KEYS)
    assert 1 <= host["usable_cpus"] <= host["os_cpus"]
    assert host["scaling_ratio"] > 0.5 and host["scaling_one_work"] > 0
    assert 0 <= host["noise_cv"] < 5
    assert isinstance(host["cgroup_available"], bool)
    if host["cgroup_available"]:
        assert host["quota_vcpus_measured"] is not None and host["quota_vcpus_measured"] < 1.0
    assert all(isinstance(w, str) for w in warnings(host))
    json.dumps(host)


def test_warnings_are_loud_when_the_host_is_noisy():
    quiet = {"usable_cpus": 2, "scaling_ratio": 1.95, "noise_cv": 0.02, "loadavg": [0.1, 0.1, 0.1],
             "cgroup_available": True, "quota_holds": True}
    assert warnings(quiet) == []
    shared = warnings({**quiet, "scaling_ratio": 1.3})
    assert len(shared) == 1 and shared[0].startswith("NOISY HOST") and "1.30x" in shared[0]
    assert warnings({**quiet, "usable_cpus": 1, "scaling_ratio": 1.0}) == []  # one CPU cannot scale
    assert any("NOISY HOST" in w and "25%" in w for w in warnings({**quiet, "noise_cv": 0.25}))
    assert any("NOT enforced" in w for w in warnings({**quiet, "cgroup_available": False}))


# ---- settings and helpers -------------------------------------------------------------------

def test_parse_list():
    assert parse_list("512,1024,2048") == [512, 1024, 2048]
    assert parse_list(" 2 ") == [2]
    for bad in ("", "512,", "a,b", "0", "-1", "512,512", "1.5"):
        with pytest.raises(ServesimError):
            parse_list(bad, "--memory-mb")


def test_quick_settings_and_overrides():
    q = settings_for(True)
    assert (q.n_cold, q.n_warm, q.load_levels, q.level_s) == (3, 50, (1, 2), 2.0)
    assert settings_for(True, n_warm=7, load_levels=[1, 3]).load_levels == (1, 3)
    with pytest.raises(ServesimError):
        settings_for(True, load_levels=[2, 1])


def test_knee():
    def curve(*tputs, p99=(1.0,) * 10):
        return [LevelResult(2**i, 100, 100, 1.0, t, 1.0, p) for i, (t, p) in enumerate(zip(tputs, p99))]

    assert not knee_reached(curve(100))
    assert not knee_reached(curve(100, 190))
    assert knee_reached(curve(100, 190, 195))  # grew 2.6 % < 5 %
    assert knee_of(curve(100, 190, 195)) == 2
    assert knee_of(curve(100, 100)) == 1
    assert knee_of(curve(100, 190)) is None  # still growing: no knee seen
    assert knee_reached(curve(100, 190, p99=(1.0, 20.0)))  # p99 exploded
    assert knee_reached([LevelResult(1, 10, 2, 1.0, 2.0, 1.0, 1.0)])  # mostly failures


# ---- the table writer -----------------------------------------------------------------------

def _rows(config, phase, level, n, start=0):
    return [{"run_id": "r", "target": "t", "model": "m", "config": config, "phase": phase, "level": level,
             "concurrency": 1, "seq": start + i, "send_s": 1.0 + i, "client_ms": 2.0, "status": "ok"}
            for i in range(n)]


def test_writer_keeps_partial_units_until_resume_then_drops_them(tmp_path):
    out = tmp_path / "m.parquet"
    session = {"host": {}, "settings": {}}
    with TableWriter(out, "run-1", flush_rows=2) as w:
        w.start(target="t", model="m", model_sha256="abc", session=session)
        w.append(_rows("c", "cold", None, 3))
        w.end_unit(unit_key("c", "cold"), {"n": 3}, rows=3)
        w.append(_rows("c", "warm", None, 3))  # 2 rows flushed at once, 1 buffered...
        assert len(w.parts()) == 3
    # ... and written on exit, as an interrupted campaign leaves it: every row readable.
    assert len(read_table(out)) == 6
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary file left
    with pytest.raises(ServesimError, match="--resume"):
        TableWriter(out, "run-2")
    w2 = TableWriter(out, "run-2", resume=True)
    assert w2.run_id == "run-1" and w2.done_units() == {unit_key("c", "cold")}
    with pytest.raises(ServesimError, match="target"):
        w2.start(target="other", model="m", model_sha256="abc", session=session)
    with TableWriter(out, "run-2", resume=True) as w2:
        w2.start(target="t", model="m", model_sha256="abc", session=session)
        assert len(read_table(out)) == 3  # the unfinished warm unit's parts are gone
        w2.append(_rows("c", "warm", None, 3))
        w2.end_unit(unit_key("c", "warm"), {}, rows=3)
        w2.finish()
    df = read_table(out)
    assert len(df) == 6 and sorted(df[df.phase == "warm"].seq) == [0, 1, 2]
    meta = json.loads((out / CAMPAIGN_FILE).read_text())
    assert len(meta["sessions"]) == 2 and meta["finished"] and set(meta["units"]) == {"c|cold|", "c|warm|"}
    with pytest.raises(ValueError, match="not columns"):
        w2.append([{"config": "c", "phase": "warm", "bogus": 1}])


# ---- campaigns against the real local targets ----------------------------------------------

def test_quick_local_server_campaign(tmp_path, tiny_model, host):
    out = tmp_path / "server.parquet"
    parts_after_unit = []
    target = LocalServerTarget(tiny_model, [1], cpus=1)
    t0 = time.perf_counter()
    summary = run_campaign(target, out, host=host, on_unit=lambda key, info: parts_after_unit.append(
        len(list(out.glob("part-*.parquet")))), **QUICK)
    took = time.perf_counter() - t0
    df = check_valid_table(out, target="local-server", n_cold=3, n_warm=50)
    # The table grew as the campaign went: a new part after each unit.
    assert len(parts_after_unit) == len(summary.units_measured) >= 3
    assert all(b > a for a, b in zip(parts_after_unit, parts_after_unit[1:])) and parts_after_unit[0] >= 1
    assert (df.workers == 1).all() and (df.cpus == 1.0).all() and (df.config == "workers=1,cpus=1").all()
    assert df.limit.isin(["cgroup 1 vCPU", "affinity 1 CPU"]).all()
    cold = df[df.phase == "cold"]
    assert (cold.max_memory_mb > 10).all() and df.billed_ms.isna().all()
    assert summary.rows == len(df) and summary.units_skipped == []
    assert set(summary.load["workers=1,cpus=1"][0].__dict__) >= {"throughput_rps", "p50_ms", "p99_ms"}
    assert took < 60, took
    # An existing table is refused without --resume, and left as it was.
    before = sorted(p.name for p in out.iterdir())
    with pytest.raises(ServesimError, match="--resume"):
        run_campaign(target, out, host=host, **QUICK)
    assert sorted(p.name for p in out.iterdir()) == before


def test_quick_local_lambda_campaign(tmp_path, tiny_model, rie, host):
    out = tmp_path / "lambda.parquet"
    summary = run_campaign(LocalLambdaTarget(tiny_model, [1024], rie=rie), out, host=host, **QUICK)
    df = check_valid_table(out, target="local-lambda", n_cold=3, n_warm=50)
    assert (df.memory_mb == 1024).all() and df.architecture.notna().all() and df.workers.isna().all()
    assert df.billed_ms.notna().all() and (df.billed_ms >= np.floor(df.server_ms)).all()
    assert df.max_memory_mb.notna().all() and (df.max_memory_mb > 10).all()
    assert df.limit.str.contains("vCPU").all()
    # A cold start's client time holds the environment's start, its init and its invocation.
    cold = df[df.phase == "cold"]
    assert (cold.client_ms > cold.init_ms + cold.server_ms).all()
    assert df[df.phase == "warm"].init_ms.isna().all()
    assert summary.knee.keys() == summary.load.keys() == {df.config.iloc[0]}


def test_interrupted_campaign_keeps_its_rows_and_resumes(tmp_path, tiny_model, host):
    out = tmp_path / "resumed.parquet"
    sizes = dict(n_cold=2, n_warm=20, load_levels=[1, 2], level_s=0.5)
    target = LocalServerTarget(tiny_model, [1, 2])
    first_units = []

    def interrupt_after_warm(key, info):
        first_units.append(key)
        if key.endswith("|warm|"):  # the server of the warm phase is up: Ctrl-C must stop it
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_campaign(target, out, host=host, on_unit=interrupt_after_warm, **sizes, **QUICK)
    assert live_processes() == []
    assert first_units == ["workers=1|cold|", "workers=1|warm|"]
    kept = read_table(out)
    assert len(kept) == 22 and set(kept.phase) == {"cold", "warm"}
    assert json.loads((out / CAMPAIGN_FILE).read_text())["finished"] is None

    resumed_at = time.time()
    second_units = []
    summary = run_campaign(target, out, resume=True, host=host,
                           on_unit=lambda key, info: second_units.append(key), **sizes, **QUICK)
    assert not set(first_units) & set(second_units)  # no unit measured twice
    assert summary.units_skipped[:2] == first_units
    df = read_table(out)
    assert df.run_id.nunique() == 1 and summary.run_id == df.run_id.iloc[0]
    old = df[df.config == "workers=1"][lambda d: d.phase != "load"]
    assert (old.send_s < resumed_at).all()  # kept, not measured again
    assert (df[df.phase == "load"].send_s > resumed_at).all()
    for cfg in ("workers=1", "workers=2"):
        part = df[df.config == cfg]
        assert (part.phase == "cold").sum() == 2 and (part.phase == "warm").sum() == 20
        assert set(part[part.phase == "load"].level) <= {1.0, 2.0}
    for _, unit in df.groupby(["config", "phase", df.level.fillna(-1)]):
        assert sorted(unit.seq) == list(range(len(unit)))
    meta = json.loads((out / CAMPAIGN_FILE).read_text())
    assert len(meta["sessions"]) == 2 and meta["finished"]
    # A finished campaign resumed again measures nothing.
    again = run_campaign(target, out, resume=True, host=host, **sizes, **QUICK)
    assert again.units_measured == [] and again.rows == 0 and len(read_table(out)) == len(df)


def test_http_target_is_measured_as_a_black_box(tmp_path, tiny_model, host):
    out = tmp_path / "http.parquet"
    with LocalServer(tiny_model, workers=1) as server:
        target = HttpTarget(server.url + "/predict", model=tiny_model)
        summary = run_campaign(target, out, host=host, n_warm=10, load_levels=[1], level_s=0.3, **QUICK)
    df = read_table(out)
    assert set(df.phase) == {"warm", "load"} and (df.status == "ok").all()
    assert df.server_ms.isna().all() and df.init_ms.isna().all() and (df.target == "http").all()
    assert summary.cold == {} and len(summary.load[f"label=predict,url={server.url}/predict"]) == 1

"""Validation: the open-loop replay (against a slow HTTP server started here), the comparison's
arithmetic, the refusals that keep a check from fulfilling itself, and `servesim validate`
end to end against the real local targets (gunicorn; the Lambda gateway over AWS's runtime
emulator) with a profile from a separate quick calibration of a tiny model."""
from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from calibrate.replay import replay
from calibrate.targets import Endpoint, _parse_black_box
from calibrate.validate import (Validation, check_thresholds, compare, error_pct, measured_frame, parse_thresholds,
                                window_offsets)
from scenarios.loader import load_scenario, scenario_from_dict
from sim.errors import ServesimError


# -- a slow server -------------------------------------------------------------------------------

class _Slow(BaseHTTPRequestHandler):
    delay_s = 0.2
    stall_until = 0.0  # perf_counter time before which every answer waits (a stall)

    def do_POST(self):  # noqa: N802 - http.server's name
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        time.sleep(max(self.delay_s, self.stall_until - time.perf_counter()))
        body = b'{"ok": true}'
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def slow_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Slow)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/predict"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_replay_sends_on_time_whatever_the_answers_take(slow_server):
    """20 req/s against a server answering in 200 ms: a closed loop of one client would send 5
    req/s; the replay sends each at its time, 4 or more in flight."""
    offsets = np.arange(40) * 0.05
    endpoint = Endpoint(slow_server, [b"{}"], _parse_black_box)
    t0 = time.perf_counter()
    r = replay(endpoint, offsets)
    took = time.perf_counter() - t0
    assert all(s is not None and s.status == "ok" for s in r.samples)
    assert r.in_flight.max() >= 4 and r.senders >= 4
    lag = r.lag_summary()
    assert lag["n"] == 40 and lag["p50_ms"] < 10 and lag["max_ms"] < 100, lag
    sends = np.array([s.send_s for s in r.samples]) - r.start_wall
    np.testing.assert_allclose(sends, offsets, atol=0.1)
    assert took < 0.25 + 2.0 + 0.2 + 1.0
    assert all(0.19 < s.client_ms / 1000 < 1.0 for s in r.samples)


def test_replay_has_no_coordinated_omission(slow_server):
    """The server stalls for 1 s: the requests due meanwhile are still sent on time, and their
    latencies show the stall (a closed-loop client would have sent none of them)."""
    _Slow.stall_until = time.perf_counter() + 0.25 + 1.0   # from the replay's start to 1 s in
    try:
        offsets = np.arange(30) * 0.05
        r = replay(Endpoint(slow_server, [b"{}"], _parse_black_box), offsets)
    finally:
        _Slow.stall_until = 0.0
    lat = np.array([s.client_ms for s in r.samples])
    sends = np.array([s.send_s for s in r.samples]) - r.start_wall
    np.testing.assert_allclose(sends, offsets, atol=0.1)
    assert lat[0] > 900 and lat[10] > 400 and lat[-1] < 400   # waited out the stall, then normal
    assert r.in_flight.max() >= 15


def test_replay_refuses_bad_offsets():
    with pytest.raises(ValueError, match="non-decreasing"):
        replay(Endpoint("http://127.0.0.1:9/", [b"{}"], _parse_black_box), np.array([1.0, 0.5]))


# -- arithmetic ----------------------------------------------------------------------------------

def test_error_pct_and_thresholds():
    assert error_pct(100.0, 105.0) == pytest.approx(5.0) and error_pct(0.0, 0.0) == 0.0
    assert error_pct(0.0, 1.0) is None and error_pct(None, 1.0) is None
    assert parse_thresholds("p50=5, p99=10,cold_starts=10") == {"p50": 5.0, "p99": 10.0, "cold_starts": 10.0}
    assert parse_thresholds(None) == {}
    for bad, msg in (("p42=5", "metric among"), ("p50", "metric among"), ("p50=-1", "percentage >= 0"),
                     ("p50=x", "percentage >= 0")):
        with pytest.raises(ServesimError, match=msg):
            parse_thresholds(bad)
    v = Validation([{"metric": "p50", "measured": 10.0, "predicted": 10.4, "error_pct": 4.0, "note": ""},
                    {"metric": "p99", "measured": 20.0, "predicted": 23.0, "error_pct": 15.0, "note": ""},
                    {"metric": "cold_starts", "measured": 0.0, "predicted": 0.0, "error_pct": 0.0, "note": ""},
                    {"metric": "rejections", "measured": 0.0, "predicted": 2.0, "error_pct": None, "note": ""}],
                   10, 60.0, "local-lambda", "l", {}, Path("."))
    assert check_thresholds(v, {"p50": 5, "cold_starts": 10}) == []
    assert check_thresholds(v, {"p99": 10}) == ["p99: error +15.0 % exceeds 10 %"]
    assert check_thresholds(v, {"rejections": 10})[0].startswith("rejections: no error could be computed")


def test_comparison_by_hand():
    """A Lambda window measured and predicted by hand: percentiles, cold starts, GB-s and cost."""
    from sim.config import LambdaConfig, LambdaService
    from sim.dists import Constant
    from sim.pricing import load_pricing

    cfg = LambdaConfig("l", LambdaService(Constant(10.0), Constant(100.0)), memory_mb=2048)
    rows = [{"offset_s": float(i), "status": "ok", "client_ms": 15.0, "server_ms": 10.0,
             "init_ms": 100.0 if i == 0 else None, "billed_ms": 110.0 if i == 0 else 10.0} for i in range(10)]
    rows.append({"offset_s": 10.0, "status": "throttled", "client_ms": 1.0, "server_ms": None, "init_ms": None,
                 "billed_ms": None})
    measured = measured_frame(rows, lambda_like=True)
    assert measured["cold"].tolist() == [True] + [False] * 10
    assert measured["latency_ms"].iloc[0] == 110.0
    predicted = pd.DataFrame({"arrival_s": np.arange(11.0), "status": ["ok"] * 11, "cold": [True, True] + [False] * 9,
                              "latency_ms": [110.0, 110.0] + [10.0] * 9, "work_ms": [10.0] * 11,
                              "init_ms": [100.0, 100.0] + [0.0] * 9})
    pricing = load_pricing()
    out = {r["metric"]: r for r in compare(measured, predicted, cfg, pricing, 60.0, {}, True)}
    assert out["p50"]["measured"] == out["p50"]["predicted"] == 10.0
    assert out["cold_starts"]["measured"] == 1 and out["cold_starts"]["predicted"] == 2
    assert out["cold_starts"]["error_pct"] == pytest.approx(100.0)
    assert out["rejections"]["measured"] == 1 and out["rejections"]["predicted"] == 0
    # GB-s: measured (110 + 9 x 10) ms x 2 GB = 0.4; predicted (2 x 110 + 9 x 10) ms x 2 GB = 0.62
    assert out["billed_gb_s"]["measured"] == pytest.approx(0.4) and out["billed_gb_s"]["predicted"] == pytest.approx(0.62)
    arch = pricing.lambda_arch("x86_64")
    per_gb_s, per_req = arch.tiers[0].usd_per_gb_s, pricing.lambda_.usd_per_request
    assert out["cost_usd"]["measured"] == pytest.approx(0.4 * per_gb_s + 10 * per_req, rel=1e-12)
    assert out["cost_usd"]["predicted"] == pytest.approx(0.62 * per_gb_s + 11 * per_req, rel=1e-12)


def test_the_window_is_what_simulate_replays(tmp_path):
    from sim.run import simulate_one
    from sim.pricing import load_pricing

    sc = scenario_from_dict({"name": "w", "seed": 5, "trace": {"kind": "poisson", "rate_rps": 20, "duration": "10m"},
                             "platforms": [{"name": "l", "kind": "lambda",
                                            "service": {"warm_ms": 10, "cold_init_ms": 100}}]}, source="w")
    offsets = window_offsets(sc, 60.0, 30.0)
    records = []
    simulate_one(sc.platforms[0], sc.trace, pricing=load_pricing(), seed=5, record_sink=records.append)
    arrivals = pd.concat(records)["arrival_s"].to_numpy()
    expected = arrivals[(arrivals >= 60) & (arrivals < 90)] - 60
    np.testing.assert_array_equal(offsets, expected)
    with pytest.raises(ServesimError, match="not inside the trace"):
        window_offsets(sc, 600.0, 10.0)


# -- end to end against the real local targets ---------------------------------------------------

@pytest.fixture(scope="module")
def calibrated(tmp_path_factory):
    """A tiny model, a quick separate calibration of it on both local targets, its profile, and
    a scenario using that profile."""
    pytest.importorskip("onnxruntime")
    pytest.importorskip("gunicorn")
    from modelhelp import write_tiny_model

    from calibrate.campaign import run_campaign
    from calibrate.profiles import fit_measurements
    from calibrate.targets import LocalLambdaTarget, LocalServerTarget
    from deploy.rie import rie_path

    try:
        rie_path()
    except ServesimError as exc:
        pytest.skip(f"the Lambda Runtime Interface Emulator is not installed (make rie): {exc}")
    tmp = tmp_path_factory.mktemp("validate")
    model = write_tiny_model(tmp / "tiny.onnx")
    quiet = dict(quick=True, progress=False, echo=lambda s: None, n_cold=5, n_warm=100, load_levels=[], bursts=0,
                 pairs=0)  # the host share: test_host_calibration, test_demo
    run_campaign(LocalLambdaTarget(model, [1024]), tmp / "lambda.parquet", **quiet)
    run_campaign(LocalServerTarget(model, [1], cpus=2, instance_type="c6i.large"), tmp / "server.parquet", **quiet)
    fit_measurements([tmp / "lambda.parquet", tmp / "server.parquet"], tmp / "tiny.json")
    scenario = tmp / "v.yaml"
    scenario.write_text(
        "name: v\nseed: 3\n"
        "trace: {kind: spike, base_rps: 2, spikes: [{start_s: 8, ramp_s: 0, peak_rps: 12, duration_s: 4}], "
        "duration: 10m}\n"
        f"profile: {tmp / 'tiny.json'}\n"
        "platforms:\n"
        "  - {name: fn, kind: lambda, memory_mb: 1024, keep_alive_s: 60}\n"
        "  - {name: vm, kind: ec2, instance_type: c6i.large, instances: 1, workers_per_instance: 1}\n")
    return model, scenario, tmp


@pytest.mark.parametrize("target", ["local-lambda", "local-server"])
def test_validate_end_to_end(calibrated, target, tmp_path):
    import cli
    from deploy.procs import live_processes

    model, scenario, _ = calibrated
    out = tmp_path / "v"
    result = CliRunner().invoke(cli.main, ["validate", str(scenario), "--target", target, "--duration", "15s",
                                           "--model", str(model), "--out", str(out), "--no-progress",
                                           "--max-error", "p50=1000"])
    assert result.exit_code == 0, result.output
    assert "client send lag" in result.output and "p99" in result.output
    table = pd.read_parquet(out / "replay.parquet")
    n = len(window_offsets(load_scenario(scenario), 0.0, 15.0))
    assert len(table) == n and (table["phase"] == "replay").all() and sorted(table["seq"]) == list(range(n))
    assert (table["status"] == "ok").all(), table["error"].unique()
    meta = json.loads((out / "validation.json").read_text())
    rows = {r["metric"]: r for r in meta["comparison"]}
    assert meta["replay"]["table_sha256"] != meta["profile"]["table_sha256"]
    assert meta["replay"]["client_lag"]["p99_ms"] < 50
    assert rows["p50"]["error_pct"] is not None
    if target == "local-lambda":
        assert rows["cold_starts"]["measured"] >= 1 and rows["billed_gb_s"]["measured"] > 0
        assert table["billed_ms"].notna().all()
    else:
        assert rows["cold_starts"]["measured"] == 0 and rows["instance_s"]["measured"] == 15.0
    assert {p.name for p in (out / "plots").iterdir()} == {"latency_cdf.png", "per_minute.png"}
    assert live_processes() == []
    # An impossible limit fails with exit code 3, naming the metric.
    again = CliRunner().invoke(cli.main, ["validate", str(scenario), "--target", target, "--duration", "3s",
                                          "--model", str(model), "--out", str(tmp_path / "v2"), "--no-progress",
                                          "--max-error", "p50=0,p99=0"])
    assert again.exit_code == 3 and "exceeds 0 %" in again.output
    same = CliRunner().invoke(cli.main, ["validate", str(scenario), "--target", target, "--duration", "3s",
                                         "--model", str(model), "--out", str(out), "--no-progress"])
    assert same.exit_code == 2 and "already holds a replay" in same.output


def test_no_self_fulfilling_checks(calibrated, tmp_path):
    from calibrate.validate import validate

    model, scenario, tmp = calibrated
    text = scenario.read_text()
    inline = tmp_path / "inline.yaml"
    inline.write_text(text.replace("{name: fn, kind: lambda, memory_mb: 1024, keep_alive_s: 60}",
                                   "{name: fn, kind: lambda, memory_mb: 1024, service: {warm_ms: 1, cold_init_ms: 50}}"))
    with pytest.raises(ServesimError, match="not from a calibration profile"):
        validate(load_scenario(inline), "local-lambda", tmp_path / "o1", duration_s=2, model=str(model),
                 progress=False)
    profile = json.loads((tmp / "tiny.json").read_text())
    profile["measured"]["at"] = "2999-01-01T00:00:00Z"
    (tmp_path / "future.json").write_text(json.dumps(profile))
    future = tmp_path / "future.yaml"
    future.write_text(text.replace(str(tmp / "tiny.json"), str(tmp_path / "future.json")))
    with pytest.raises(ServesimError, match="separate, earlier calibration"):
        validate(load_scenario(future), "local-lambda", tmp_path / "o2", duration_s=2, model=str(model),
                 progress=False)
    import onnx
    from onnx import numpy_helper

    m = onnx.load(str(model))  # another model: the same graph, other weights
    m.graph.initializer[0].CopyFrom(numpy_helper.from_array(numpy_helper.to_array(m.graph.initializer[0]) + 1, "W"))
    other = tmp_path / "other.onnx"
    onnx.save(m, str(other))
    with pytest.raises(ServesimError, match="not the one the profile"):
        validate(load_scenario(scenario), "local-server", tmp_path / "o3", duration_s=2, model=str(other),
                 progress=False)
    with pytest.raises(ServesimError, match="kind ec2, and the scenario has none"):
        only = tmp_path / "only.yaml"
        only.write_text(text.split("  - {name: vm")[0])
        validate(load_scenario(only), "local-server", tmp_path / "o4", duration_s=2, model=str(model), progress=False)

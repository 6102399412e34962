"""The `servesim` command line, driven in-process with click's CliRunner: help, the table, --json
(every DESIGN.md Result key, determinism), --records, --plot, --out, and user errors (exit 2, one
message on stderr naming the file and key path, no traceback)."""
from __future__ import annotations

import inspect
import json
import math
import os
import re
import textwrap
from pathlib import Path

import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

from cli import main

EXAMPLES = Path(__file__).resolve().parent.parent / "scenarios" / "examples"

PLATFORMS = ("lam-1g", "box-c6i")

SCENARIO = textwrap.dedent("""\
    name: cli-tiny
    seed: 3
    warmup_s: 1m
    trace: {kind: poisson, rate_rps: 20, duration: 10m}
    platforms:
      - name: lam-1g
        kind: lambda
        memory_mb: 1024
        service:
          warm_ms: {dist: lognorm, s: 0.25, scale: 14}
          cold_init_ms: {dist: lognorm, s: 0.3, scale: 1000}
      - name: box-c6i
        kind: ec2
        instance_type: c6i.large
        instances: 1
        workers_per_instance: 2
        service:
          service_ms: {dist: lognorm, s: 0.25, scale: 7}
    """)

# DESIGN.md, "Result".
RESULT_KEYS = ("platform", "kind", "requests", "completed", "rejected", "cold_starts", "cold_start_fraction",
               "latency_ms", "instances", "utilization", "cost_usd", "cost_per_million_usd", "horizon_s", "engine")
NESTED_KEYS = {
    "latency_ms": ("mean", "p50", "p90", "p95", "p99", "p999", "max"),
    "instances": ("mean", "max"),
    "cost_usd": ("total", "compute", "requests", "provisioned", "load_balancer", "other"),
}


def _runner() -> CliRunner:
    """stderr apart from stdout: click >= 8.2 always keeps `result.stderr`; 8.1 needs mix_stderr=False."""
    if "mix_stderr" in inspect.signature(CliRunner.__init__).parameters:
        return CliRunner(mix_stderr=False)
    return CliRunner()


def invoke(*args: str):
    return _runner().invoke(main, [str(a) for a in args], prog_name="servesim")


def ok(result):
    assert result.exit_code == 0, (result.exit_code, result.output, result.exception)
    return result


def strict_json(text: str):
    """JSON as the standard has it (no NaN / Infinity)."""
    def refuse(name):
        raise ValueError(f"not valid JSON: {name}")
    return json.loads(text, parse_constant=refuse)


@pytest.fixture(scope="module")
def scenario_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("scenario") / "tiny.yaml"
    path.write_text(SCENARIO)
    return path


@pytest.fixture(scope="module")
def full_run(scenario_file, tmp_path_factory):
    """One run with every output: --json --records --plot --out."""
    base = tmp_path_factory.mktemp("outputs")
    paths = {"records": base / "rec" / "requests.parquet", "plot": base / "plots", "out": base / "out"}
    result = ok(invoke("simulate", scenario_file, "--json", "--no-progress", "--records", paths["records"],
                       "--plot", paths["plot"], "--out", paths["out"]))
    return result, paths


# -- help ------------------------------------------------------------------------------------------

def test_group_help_shows_an_example():
    result = ok(invoke("--help"))
    assert "Usage: servesim" in result.output
    assert "simulate" in result.output
    assert "servesim simulate scenarios/examples/classifier-50rps.yaml" in result.output


def test_simulate_help_shows_examples_and_options():
    result = ok(invoke("simulate", "--help"))
    out = result.output
    assert "Usage: servesim simulate" in out
    assert "servesim simulate my.yaml --json --plot plots/ --records requests.parquet" in out
    for option in ("--json", "--records", "--plot", "--out", "--pricing", "--progress / --no-progress"):
        assert option in out


# -- the table -------------------------------------------------------------------------------------

def test_table_has_one_row_per_platform(scenario_file):
    result = ok(invoke("simulate", scenario_file))
    out = result.stdout
    assert "cli-tiny" in out  # the title
    for name in PLATFORMS:
        rows = [line for line in out.splitlines() if re.match(rf"^\W*{re.escape(name)}\s", line)]
        assert len(rows) == 1, (name, out)
    assert "lambda" in out and "ec2" in out
    assert result.stderr == ""


# -- --json ----------------------------------------------------------------------------------------

def test_json_has_every_result_key(scenario_file):
    result = ok(invoke("simulate", scenario_file, "--json"))
    data = strict_json(result.stdout)
    assert isinstance(data, list)
    assert [d["platform"] for d in data] == list(PLATFORMS)
    assert [d["kind"] for d in data] == ["lambda", "ec2"]
    for d in data:
        for key in RESULT_KEYS:
            assert key in d, key
        for key, sub in NESTED_KEYS.items():
            for k in sub:
                assert k in d[key], f"{key}.{k}"
        assert d["requests"] > 0
        assert d["requests"] == d["completed"] + d["rejected"] + d["timeouts"]
        cfg_kind = {"lambda": "fast", "ec2": None}[d["kind"]]
        assert d["engine"] in ("fast", "simpy") and (cfg_kind is None or d["engine"] == cfg_kind)  # auto: fast if it can
        assert d["horizon_s"] == pytest.approx(540.0, abs=1.0)  # 10 min trace - 1 min warm-up
        assert d["cost_usd"]["total"] > 0
    # same arrivals for every platform
    assert data[0]["requests"] == data[1]["requests"]


def test_json_is_deterministic(scenario_file):
    first = ok(invoke("simulate", scenario_file, "--json")).stdout
    second = ok(invoke("simulate", scenario_file, "--json")).stdout
    assert first == second


# -- --records -------------------------------------------------------------------------------------

def test_records_one_row_per_request(full_run):
    result, paths = full_run
    summaries = strict_json(result.stdout)
    path = paths["records"]
    assert path.is_file()
    df = pd.read_parquet(path)
    assert {"platform", "request", "arrival_s", "status", "cold", "latency_ms", "in_window"} <= set(df.columns)
    assert set(df["platform"]) == set(PLATFORMS)
    # warm-up requests are recorded but not counted in the summary
    assert (~df["in_window"]).any()
    for s in summaries:
        mine = df[df["platform"] == s["platform"]]
        assert int(mine["in_window"].sum()) == s["requests"]
        window = mine[mine["in_window"]]
        assert int((window["status"] == "ok").sum()) == s["completed"]
        assert int(window["cold"].sum()) == s["cold_starts"]
    # every platform saw the same arrivals
    a, b = (df[df["platform"] == p]["arrival_s"].to_numpy() for p in PLATFORMS)
    assert (a == b).all()


def test_no_temp_files_left(full_run):
    _, paths = full_run
    for folder in (paths["records"].parent, paths["plot"], paths["out"]):
        leftovers = [p.name for p in folder.iterdir() if p.name.startswith(".")]
        assert leftovers == [], folder


# -- --plot ----------------------------------------------------------------------------------------

def test_plots_are_png(full_run):
    _, paths = full_run
    for name in ("latency-cdf.png", "instances.png"):
        p = paths["plot"] / name
        assert p.is_file(), name
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name


# -- --out -----------------------------------------------------------------------------------------

def test_out_folder(full_run, scenario_file):
    result, paths = full_run
    out = paths["out"]
    for name in ("results.json", "series.csv", "scenario.resolved.yaml"):
        assert (out / name).is_file(), name
    assert strict_json((out / "results.json").read_text()) == strict_json(result.stdout)

    series = pd.read_csv(out / "series.csv")
    assert set(series["platform"]) == set(PLATFORMS)
    for s in strict_json(result.stdout):
        mine = series[series["platform"] == s["platform"]]
        # one row per minute of the measured window (which ends at the later of the trace's end
        # and the last completion), arrivals counted by arrival minute
        assert len(mine) == math.ceil(s["horizon_s"] / 60) >= 9
        assert mine["start_s"].iloc[0] == 60.0
        assert int(mine["arrivals"].sum()) == s["requests"]

    resolved = yaml.safe_load((out / "scenario.resolved.yaml").read_text())
    assert resolved["name"] == "cli-tiny"
    assert resolved["platforms"] == yaml.safe_load(scenario_file.read_text())["platforms"]
    assert [p["name"] for p in resolved["_resolved"]["platforms"]] == list(PLATFORMS)
    assert resolved["_resolved"]["platforms"][0]["keep_alive_s"] == 360.0  # defaults filled in


def test_output_files_respect_umask(full_run):
    """Outputs are ordinary files (not the 0600 of a bare mkstemp): readable as the umask allows."""
    _, paths = full_run
    mask = os.umask(0)
    os.umask(mask)
    expected = 0o666 & ~mask
    for p in (paths["records"], paths["plot"] / "instances.png", paths["out"] / "results.json"):
        assert p.stat().st_mode & 0o777 == expected, p


# -- user errors -----------------------------------------------------------------------------------

def _lambda_without_service(text: str) -> str:
    block = ("    service:\n      warm_ms: {dist: lognorm, s: 0.25, scale: 14}\n"
             "      cold_init_ms: {dist: lognorm, s: 0.3, scale: 1000}\n")
    assert block in text
    return text.replace(block, "")


BAD = {
    "unknown-key": (lambda t: t.replace("platforms:", "platfroms:"), ["platfroms", "did you mean 'platforms'"]),
    "negative-rate": (lambda t: t.replace("rate_rps: 20", "rate_rps: -5"), ["trace.rate_rps", "-5"]),
    "unknown-family": (lambda t: t.replace("dist: lognorm, s: 0.25, scale: 14", "dist: lognormal, s: 0.25, scale: 14"),
                       ["platforms[0].service.warm_ms", "lognormal"]),
    "yaml-syntax": (lambda t: t.replace("trace: {kind: poisson,", "trace: {kind: poisson"),
                    ["line 4", "valid YAML"]),
    "lambda-no-service": (_lambda_without_service, ["platforms[0]", "lam-1g", "service", "profile"]),
    "engine-unknown": (lambda t: t.replace("warmup_s: 1m\n", "warmup_s: 1m\nengine: turbo\n"),
                       ["engine", "turbo", "simpy", "fast"]),
}


def assert_user_error(result, *needles: str) -> None:
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    assert isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    err = result.stderr
    assert err.startswith("servesim: error: "), err
    assert len(err.strip().splitlines()) == 1, err
    for needle in needles:
        assert needle in err, (needle, err)


@pytest.mark.parametrize("case", list(BAD))
def test_bad_scenario(tmp_path, case):
    edit, needles = BAD[case]
    bad = edit(SCENARIO)
    assert bad != SCENARIO
    path = tmp_path / f"{case}.yaml"
    path.write_text(bad)
    assert_user_error(invoke("simulate", path), str(path), *needles)


def test_missing_scenario_file(tmp_path):
    path = tmp_path / "nope.yaml"
    assert_user_error(invoke("simulate", path), str(path), "existing scenario file")


def test_missing_pricing_file(scenario_file, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert_user_error(invoke("simulate", scenario_file, "--pricing", "nope.yaml"), "nope.yaml", "price file")


def test_error_writes_no_outputs(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(SCENARIO.replace("rate_rps: 20", "rate_rps: -5"))
    out = tmp_path / "out"
    assert_user_error(invoke("simulate", path, "--out", out, "--records", tmp_path / "r.parquet",
                             "--plot", tmp_path / "plots"), "trace.rate_rps")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.yaml"]


# -- an example scenario, end to end ---------------------------------------------------------------

@pytest.mark.slow
def test_example_scenario_runs(tmp_path):
    src = EXAMPLES / "classifier-5rps.yaml"  # run in place: it names the shipped profile by a relative path
    names = [p["name"] for p in yaml.safe_load(src.read_text())["platforms"]]
    data = strict_json(ok(invoke("simulate", src, "--json", "--no-progress")).stdout)
    assert [d["platform"] for d in data] == names
    for d in data:
        assert d["requests"] == d["completed"] + d["rejected"] + d["timeouts"]
        assert d["requests"] > 0.95 * 5 * (24 * 3600 - 600)
        assert d["latency_ms"]["p99"] is not None


# -- calibrate http: the cold-start options ---------------------------------------------------------

def test_calibrate_help_shows_the_http_cold_start_options():
    out = CliRunner().invoke(main, ["calibrate", "--help"]).output
    for needle in ("--idle-s", "--label", "--header", "servesim calibrate http --url"):
        assert needle in out, needle


@pytest.mark.parametrize("args,needle", [
    (["--cold", "3"], "--cold needs --idle-s"),
    (["--idle-s", "0"], "--idle-s must be > 0"),
    (["--idle-s", "5", "--label", "has space"], "label 'has space'"),
    (["--header", "no-colon"], "expected 'Name: value'"),
])
def test_calibrate_http_refuses_bad_cold_start_options(tmp_path, args, needle):
    pytest.importorskip("onnxruntime")
    body = tmp_path / "body.json"
    body.write_text("{}")
    out = tmp_path / "t"
    result = CliRunner().invoke(main, ["calibrate", "http", "--url", "http://127.0.0.1:9/x", "--body", str(body),
                                       "--out", str(out), *args])
    assert result.exit_code == 2 and needle in result.output + (result.stderr or ""), result.output
    assert not out.exists()


def test_http_options_are_refused_for_other_targets(tmp_path):
    pytest.importorskip("onnxruntime")
    result = CliRunner().invoke(main, ["calibrate", "local-server", "--model", "x", "--idle-s", "5",
                                       "--out", str(tmp_path / "t")])
    assert result.exit_code == 2 and "for the http target only" in result.output + (result.stderr or "")

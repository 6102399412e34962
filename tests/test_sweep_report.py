"""A sweep's plots and its self-contained HTML report, checked as files and in real headless Chromium."""
from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess

import numpy as np
import pytest
from click.testing import CliRunner

from scenarios.loader import load_scenario
from scenarios.sweep import parse_sweep
from scenarios.sweepreport import sweep_plots, write_report
from scenarios.sweeprun import run_sweep
from test_sweep_run import SCENARIO as _RUN_SCENARIO

SCENARIO = _RUN_SCENARIO.replace("duration: 6m", "duration: 4m")  # the runner tests' sweep, shorter
PLOTS = ["cost_vs_load.png", "p99_vs_cost.png", "latency_cdf.png", "sensitivity.png", "instances.png"]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def sweep_out(tmp_path_factory):
    """(scenario, out folder, table, plots, report path) of one small serial sweep."""
    tmp = tmp_path_factory.mktemp("sweep")
    path = tmp / "sweep.yaml"
    path.write_text(SCENARIO)
    sc = load_scenario(path)
    out = tmp / "out"
    table = run_sweep(sc, out, executor="serial", progress=False)
    plots = sweep_plots(out, table, slo=parse_sweep(sc).slo)
    report = write_report(out, sc, table=table, plots=plots)
    return sc, out, table, plots, report


def test_every_plot_is_a_png(sweep_out):
    _, out, table, plots, _ = sweep_out
    assert (table["status"] == "ok").all() and len(table) == 6 + 3  # Lambda at 6 points, the VM at 3 loads
    assert [p.name for p in plots] == PLOTS
    for p in plots:
        assert p.parent == out / "plots" and p.read_bytes()[:8] == PNG_MAGIC and p.stat().st_size > 5000
    assert not list((out / "plots").glob(".*.tmp"))  # written atomically, no leftovers


def test_the_table_is_read_from_the_folder_and_a_point_can_be_chosen(sweep_out):
    _, out, _, plots, _ = sweep_out
    again = sweep_plots(out, instances_point=5)
    assert [p.name for p in again] == PLOTS


def test_report_is_self_contained(sweep_out):
    sc, out, table, plots, report = sweep_out
    assert report == out / "report.html"
    text = report.read_text(encoding="utf-8")
    assert "<title>servesim sweep: tiny-sweep</title>" in text and "<h1>servesim sweep: tiny-sweep</h1>" in text
    assert 'src="http' not in text and "<link" not in text and "url(" not in text and "<script" not in text
    assert text.count('src="data:image/png;base64,') == len(plots)
    assert len(re.findall(r"<tr\b", text)) == len(table) + 1  # header + one row per (point, platform)
    assert "cost_usd.total" in text and "cheapest meeting the SLO" in text and "break-even load" in text
    assert "sensitivity to lambda.memory_mb 512 → 1024" in text
    import hashlib
    import importlib.metadata

    assert hashlib.sha256(sc.path.read_bytes()).hexdigest() in text
    assert "shipped us-east-1 prices" in text
    assert importlib.metadata.version("servesim") in text


def test_cli_sweep_writes_plots_and_report(tmp_path):
    import cli

    scenario = tmp_path / "s.yaml"
    scenario.write_text(SCENARIO.replace("[1, 4, 16]", "[1, 4]"))
    out = tmp_path / "o"
    args = ["sweep", str(scenario), "--out", str(out), "--executor", "serial", "--no-progress"]
    result = CliRunner().invoke(cli.main, args)
    assert result.exit_code == 0, result.output
    assert "points: 4 in the sweep, 6 distinct platform configurations to simulate, 6 simulated ok" in result.output
    assert "Pareto frontier" in result.output
    assert f"in {out / 'plots'}" in result.output and not (out / "report.html").exists()
    result = CliRunner().invoke(cli.main, [*args, "--report"])
    assert result.exit_code == 0, result.output
    assert f"report: {out / 'report.html'}" in result.output and (out / "report.html").exists()
    assert "--report" in CliRunner().invoke(cli.main, ["sweep", "--help"]).output


def _chromium(*args: str, timeout_s: float = 60) -> str:
    """Run headless Chromium with `args`; its stdout. The whole process group is killed afterwards."""
    exe = shutil.which("chromium")
    proc = subprocess.Popen([exe, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                             "--no-first-run", "--no-default-browser-check", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=timeout_s)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # helpers (zygote, renderer) share the group
        except ProcessLookupError:
            pass
        proc.wait()
    assert proc.returncode == 0, stderr[-2000:]
    return stdout


def test_report_renders_in_headless_chromium(sweep_out, tmp_path):
    if shutil.which("chromium") is None:
        pytest.skip("Chromium is not installed (expected at /usr/bin/chromium, Debian package 'chromium')")
    _, _, table, plots, report = sweep_out
    profile = ["--user-data-dir=" + str(tmp_path / "profile")]
    dom = _chromium(*profile, "--dump-dom", report.as_uri())
    assert "servesim sweep: tiny-sweep" in dom
    images = re.findall(r"<img\b[^>]*>", dom)
    assert len(images) == len(plots)
    assert all('src="data:image/png;base64,' in i for i in images)
    assert len(re.findall(r"<tr\b", dom)) == len(table) + 1

    shot = tmp_path / "shot.png"
    _chromium(*profile, f"--screenshot={shot}", "--window-size=1200,2000", report.as_uri())
    assert shot.read_bytes()[:8] == PNG_MAGIC
    from PIL import Image

    pixels = np.asarray(Image.open(shot).convert("RGB")).reshape(-1, 3)
    assert len(np.unique(pixels, axis=0)) >= 2  # not blank


def test_break_even_is_drawn_and_missing_extras_skip_their_plots(sweep_out, tmp_path):
    """A hand-made table (no point extras on disk): Lambda cheaper at 1 req/s, EC2 at 16 req/s."""
    import pandas as pd

    sc = sweep_out[0]
    rows = [{"point": i, "param.trace.rate_rps": load, "platform": name, "kind": kind, "cost_usd.total": cost,
             "latency_ms.p99": 80.0, "requests": 100, "rejected": 0, "status": "ok", "error": None}
            for i, load in enumerate([1, 4, 16])
            for name, kind, cost in (("lam", "lambda", 0.01 * load), ("vm", "ec2", 0.08))]
    table = pd.DataFrame(rows)
    plots = sweep_plots(tmp_path, table, slo={"p99_ms": 300})
    assert [p.name for p in plots] == ["cost_vs_load.png", "p99_vs_cost.png"]  # no histograms/series to plot
    text = write_report(tmp_path, sc, table=table, plots=plots).read_text()
    assert "break-even load</dt><dd>8 req/s (cheaper below: lambda" in text
    assert text.count('src="data:image/png;base64,') == 2


def test_answers_show_every_kind_and_each_pair_break_even(tmp_path):
    """A hand-made table of three kinds: the cheapest of each kind per load, a break-even line per
    pair (Lambda and EC2 headed as before), and plots that draw every kind."""
    import types

    import pandas as pd

    from scenarios.sweepreport import answers

    bills = (("lam", "lambda", lambda x: 0.01 * x), ("vm", "ec2", lambda x: 0.08),
             ("faas", "k8s-function", lambda x: 0.12), ("run", "container-service", lambda x: 0.005 * x + 0.02))
    rows = [{"point": i, "param.trace.rate_rps": load, "platform": name, "kind": kind, "cost_usd.total": bill(load),
             "latency_ms.p99": 80.0, "requests": 100, "rejected": 0, "status": "ok", "error": None}
            for i, load in enumerate([1, 4, 16]) for name, kind, bill in bills]
    table = pd.DataFrame(rows)
    spec = types.SimpleNamespace(points=(), slo=None)
    said = dict(answers(table, spec))
    assert said["cheapest of each kind at 16 req/s"] == (
        "lambda: lam cost 0.16 USD, p99 80 ms; ec2: vm cost 0.08 USD, p99 80 ms; "
        "k8s-function: faas cost 0.12 USD, p99 80 ms; container-service: run cost 0.1 USD, p99 80 ms")
    assert said["break-even load"].startswith("8 req/s (cheaper below: lambda; p99 there: Lambda 80 ms, EC2 80 ms)")
    # lambda 0.01x against container-service 0.005x + 0.02: equal at 4 req/s.
    assert said["break-even load lambda vs container-service"].startswith("4 req/s (cheaper below: lambda")
    assert said["break-even load ec2 vs k8s-function"] == "none in the swept range (one kind is cheaper everywhere)"
    assert len([k for k in said if k.startswith("break-even load")]) == 6
    only = dict(answers(table[table["kind"] == "ec2"], spec))
    assert only["break-even load"] == "not defined: the sweep has one platform kind (ec2)"
    assert not any(k.startswith("cheapest of each kind") for k in only)
    # The pairs can be chosen.
    chosen = dict(answers(table, spec, pairs=[("k8s-function", "container-service")]))
    assert [k for k in chosen if k.startswith("break-even")] == ["break-even load k8s-function vs container-service"]
    plots = sweep_plots(tmp_path, table)
    assert [p.name for p in plots] == ["cost_vs_load.png", "p99_vs_cost.png"]
    assert sweep_plots(tmp_path / "pair", table, pair=("ec2", "container-service"))[0].exists()

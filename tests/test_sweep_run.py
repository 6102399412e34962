"""Running sweeps: every executor gives the same table, failures are rows, interrupted sweeps resume.

The Dask test starts a real LocalCluster (worker processes on 127.0.0.1) and stops it.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from scenarios.loader import load_scenario
from scenarios.sweeprun import read_points, run_sweep
from sim.errors import ServesimError

SCENARIO = """\
name: tiny-sweep
seed: 3
warmup_s: 30s
trace: {kind: poisson, rate_rps: 2, duration: 6m}
platforms:
  - name: lam
    kind: lambda
    memory_mb: 1024
    service:
      warm_ms: {dist: lognorm, s: 0.3, scale: 40}
      cold_init_ms: {dist: constant, value: 400}
  - name: vm
    kind: ec2
    instance_type: c6i.large
    instances: 1
    workers_per_instance: 2
    service:
      service_ms: {dist: lognorm, s: 0.3, scale: 40}
sweep:
  grid:
    trace.rate_rps: [1, 4, 16]
    lambda.memory_mb: [512, 1024]
  slo: {p99_ms: 300}
"""


@pytest.fixture
def scenario_file(tmp_path) -> Path:
    p = tmp_path / "sweep.yaml"
    p.write_text(SCENARIO)
    return p


def _sorted(df: pd.DataFrame) -> pd.DataFrame:
    return df.sort_values(["point", "platform"], kind="stable").reset_index(drop=True)


def test_serial_processes_and_dask_give_identical_tables(scenario_file, tmp_path):
    pytest.importorskip("distributed")
    sc = load_scenario(scenario_file)
    serial = run_sweep(sc, tmp_path / "serial", executor="serial", progress=False)
    processes = run_sweep(sc, tmp_path / "processes", executor="processes", workers=2, progress=False)
    dask = run_sweep(sc, tmp_path / "dask", executor="dask", workers=2, progress=False)
    # 6 points; Lambda differs at each (rate x memory), the VM only with the rate: 6 + 3 rows.
    assert len(serial) == 6 + 3 and (serial["status"] == "ok").all()
    assert sorted(serial["param.trace.rate_rps"].unique()) == [1, 4, 16]
    vm = serial[serial["platform"] == "vm"]
    assert list(vm["point"]) == [0, 2, 4] and vm["param.lambda.memory_mb"].isna().all()
    for other in (processes, dask):
        pd.testing.assert_frame_equal(_sorted(serial), _sorted(other), check_exact=True)
    on_disk = pd.read_parquet(tmp_path / "serial" / "sweep.parquet")
    pd.testing.assert_frame_equal(_sorted(on_disk), _sorted(serial), check_exact=True)


def test_a_failing_point_is_reported_and_the_others_complete(scenario_file, tmp_path):
    text = scenario_file.read_text().replace("lambda.memory_mb: [512, 1024]", "lambda.memory_mb: [512, 99999]")
    scenario_file.write_text(text)
    table = run_sweep(load_scenario(scenario_file), tmp_path / "out", executor="serial", progress=False)
    failed = table[table["status"] == "error"]
    assert sorted(failed["point"]) == [1, 3, 5] and (failed["platform"] == "lam").all()
    assert failed["error"].str.contains("memory_mb").all() and failed["error"].str.contains("sweep point").all()
    ok = table[table["status"] == "ok"]
    assert (ok.groupby("point").size() == 2).all() and sorted(ok["point"].unique()) == [0, 2, 4]


def test_an_interrupted_sweep_resumes_where_it_stopped(scenario_file, tmp_path):
    sc = load_scenario(scenario_file)
    out = tmp_path / "out"
    seen = []

    def stop_after_two(index):
        seen.append(index)
        if len(seen) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_sweep(sc, out, executor="serial", progress=False, on_point=stop_after_two)
    assert sorted(read_points(out)["point"].unique()) == sorted(seen)
    resumed = []
    table = run_sweep(sc, out, executor="serial", progress=False, on_point=resumed.append)
    assert sorted(resumed) == sorted(set(range(6)) - set(seen))  # finished points are not run again
    straight = run_sweep(sc, tmp_path / "straight", executor="serial", progress=False)
    pd.testing.assert_frame_equal(_sorted(table), _sorted(straight), check_exact=True)


def test_a_folder_of_another_sweep_is_refused(scenario_file, tmp_path):
    out = tmp_path / "out"
    run_sweep(load_scenario(scenario_file), out, executor="serial", progress=False)
    scenario_file.write_text(scenario_file.read_text().replace("seed: 3", "seed: 4"))
    with pytest.raises(ServesimError, match="another sweep"):
        run_sweep(load_scenario(scenario_file), out, executor="serial", progress=False)


def test_cli_sweep_prints_the_answer(scenario_file, tmp_path):
    import cli

    result = CliRunner().invoke(cli.main, ["sweep", str(scenario_file), "--out", str(tmp_path / "o"),
                                           "--executor", "serial", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "points: 6 in the sweep, 9 distinct platform configurations to simulate, 9 simulated ok" in result.output
    assert "failures: none" in result.output
    assert "Pareto frontier (cost against p99) at 4 req/s:" in result.output
    assert "cheapest meeting the SLO (p99_ms=300.0) at 16 req/s:" in result.output
    assert "break-even load:" in result.output
    assert "sensitivity to lambda.memory_mb 512 → 1024: lam (trace.rate_rps=16): cost" in result.output
    assert (tmp_path / "o" / "sweep.csv").exists()
    bad = CliRunner().invoke(cli.main, ["sweep", str(scenario_file), "--out", str(tmp_path / "o"), "--executor",
                                        "threads"])
    assert bad.exit_code == 2


@pytest.mark.parametrize("name", sorted(p.name for p in (Path(__file__).resolve().parents[1] / "scenarios" / "examples")
                                        .glob("sweep-*.yaml")))
def test_example_sweeps_load_and_every_point_builds(name):
    from scenarios.sweep import parse_sweep, point_scenario

    sc = load_scenario(Path(__file__).resolve().parents[1] / "scenarios" / "examples" / name)
    spec = parse_sweep(sc)
    assert len(spec.points) >= 8 and spec.slo is not None
    for point in spec.points:
        built = point_scenario(sc, point)
        assert [p.name for p in built.platforms] == [p.name for p in sc.platforms]

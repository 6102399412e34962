"""The ``sweep:`` block: parsed eagerly into ordered points, each point applied to a copy of the
scenario and validated on its own; every mistake is a ConfigError naming the file and the key."""
from __future__ import annotations

import copy
import textwrap
from pathlib import Path

import pytest

from scenarios.loader import load_scenario, scenario_from_dict
from scenarios.sweep import SLO, SweepPoint, apply_point, parse_sweep, point_scenario
from sim.errors import ConfigError

BASE = """\
name: sweepy
seed: 7
warmup_s: 1m
trace: {kind: poisson, rate_rps: 5, duration: 1h}
platforms:
  - name: lambda-1g
    kind: lambda
    memory_mb: 1024
    service: {warm_ms: {dist: lognorm, s: 0.25, scale: 40}, cold_init_ms: 800}
  - name: lambda-3g
    kind: lambda
    memory_mb: 3008
    service: {warm_ms: {dist: lognorm, s: 0.25, scale: 20}, cold_init_ms: 800}
  - name: ec2-1x
    kind: ec2
    instance_type: c6i.large
    instances: 1
    workers_per_instance: 2
    request_kb: 100
    service: {service_ms: {dist: expon, mean: 12}}
"""


def scenario(tmp_path: Path, sweep: str, base: str = BASE):
    path = tmp_path / "scn.yaml"
    path.write_text(base + textwrap.dedent(sweep))
    return load_scenario(path)


def params(spec) -> list[dict]:
    return [p.params for p in spec.points]


# -- expansion -------------------------------------------------------------------------------------

def test_grid_is_a_product_in_written_order_last_key_fastest(tmp_path):
    s = scenario(tmp_path, """\
        sweep:
          grid:
            lambda.memory_mb: [512, 1024, 2048]
            trace.rate_rps: [1, 10]
        """)
    spec = parse_sweep(s)
    assert spec.paths == ("lambda.memory_mb", "trace.rate_rps")
    assert params(spec) == [{"lambda.memory_mb": m, "trace.rate_rps": r} for m in (512, 1024, 2048) for r in (1, 10)]
    assert [p.index for p in spec.points] == list(range(6))
    assert spec.points[3].label() == "lambda.memory_mb=1024, trace.rate_rps=10"
    assert spec.slo is None


def test_zip_takes_lists_together(tmp_path):
    s = scenario(tmp_path, """\
        sweep:
          zip:
            ec2.instances: [1, 2, 4]
            ec2.instance_type: [c6i.large, c6i.large, c6i.xlarge]
        """)
    spec = parse_sweep(s)
    assert params(spec) == [{"ec2.instances": 1, "ec2.instance_type": "c6i.large"},
                            {"ec2.instances": 2, "ec2.instance_type": "c6i.large"},
                            {"ec2.instances": 4, "ec2.instance_type": "c6i.xlarge"}]


def test_grid_times_zip_grid_slowest_then_zip(tmp_path):
    s = scenario(tmp_path, """\
        sweep:
          grid: {lambda.memory_mb: [512, 2048]}
          zip: {ec2.instances: [1, 2, 4], seed: [1, 2, 3]}
          slo: {p99_ms: 300, max_rejected_fraction: 0}
        """)
    spec = parse_sweep(s)
    assert spec.paths == ("lambda.memory_mb", "ec2.instances", "seed")
    assert params(spec) == [{"lambda.memory_mb": m, "ec2.instances": n, "seed": sd}
                            for m in (512, 2048) for n, sd in ((1, 1), (2, 2), (4, 3))]
    assert list(spec.points[0].params) == ["lambda.memory_mb", "ec2.instances", "seed"]
    assert spec.slo == SLO(p99_ms=300.0, max_rejected_fraction=0.0)


# -- applying points -------------------------------------------------------------------------------

def test_every_path_kind_sets_the_right_platforms_only(tmp_path):
    s = scenario(tmp_path, """\
        sweep:
          grid:
            lambda.keep_alive_s: [60]
            ec2.autoscaling.max: [6]
            ec2.instances: [3]
            platforms.lambda-3g.memory_mb: [2048]
            trace.rate_rps: [50]
            trace.scale: [0.5]
            seed: [11]
            warmup_s: [2m]
          zip:
            ec2.autoscaling.min: [2]
            ec2.autoscaling.target: [0.5]
            ec2.autoscaling.boot_s: [90]
        """)
    raw_before = copy.deepcopy(s.raw)
    (point,) = parse_sweep(s).points
    data = apply_point(s.raw, point, source="x")
    assert "sweep" not in data
    lam1, lam3, ec2 = data["platforms"]
    assert lam1["keep_alive_s"] == lam3["keep_alive_s"] == 60 and "keep_alive_s" not in ec2
    assert (lam1["memory_mb"], lam3["memory_mb"]) == (1024, 2048)
    assert ec2["autoscaling"] == {"max": 6, "min": 2, "target": 0.5, "boot_s": 90}
    assert "autoscaling" not in lam1 and "autoscaling" not in lam3
    assert data["trace"] == {"kind": "poisson", "rate_rps": 50, "duration": "1h", "scale": 0.5}
    assert (data["seed"], data["warmup_s"]) == (11, "2m")

    ps = point_scenario(s, point)
    l1, l3, e = ps.platforms
    assert (l1.memory_mb, l3.memory_mb) == (1024, 2048)
    assert l1.keep_alive_s == l3.keep_alive_s == 60.0
    assert (e.autoscaling.min_instances, e.autoscaling.max_instances, e.autoscaling.target) == (2, 6, 0.5)
    assert e.instances == e.autoscaling.initial_instances == 3
    assert (ps.trace.source.rate_rps, ps.trace.factor) == (50.0, 0.5)
    assert (ps.seed, ps.warmup_s, ps.sweep, ps.name) == (11, 120.0, None, "sweepy")
    assert s.raw == raw_before  # the base scenario is not touched
    assert s.platforms[1].memory_mb == 3008


def test_each_platform_configuration_is_simulated_once_at_its_first_point(tmp_path):
    s = scenario(tmp_path, """\
        sweep:
          grid:
            trace.rate_rps: [1, 10]
            lambda.memory_mb: [512, 2048]
            platforms.lambda-3g.keep_alive_s: [60, 600]
            ec2.instances: [1, 2]
        """)
    spec = parse_sweep(s)
    runs = [p.runs for p in spec.points]
    assert len(runs) == 16
    trace, lam, ka, ec2 = "trace.rate_rps", "lambda.memory_mb", "platforms.lambda-3g.keep_alive_s", "ec2.instances"
    # lambda-1g sees the rate and the memory; lambda-3g also its keep-alive; ec2-1x the rate and its fleet.
    assert runs[0] == {"lambda-1g": (trace, lam), "lambda-3g": (trace, lam, ka), "ec2-1x": (trace, ec2)}
    assert runs[1] == {"ec2-1x": (trace, ec2)}                    # only the fleet changed
    assert runs[2] == {"lambda-3g": (trace, lam, ka)}             # only lambda-3g's keep-alive changed
    assert runs[3] == {}                                          # nothing new
    counts = {name: sum(name in r for r in runs) for name in ("lambda-1g", "lambda-3g", "ec2-1x")}
    assert counts == {"lambda-1g": 2 * 2, "lambda-3g": 2 * 2 * 2, "ec2-1x": 2 * 2}


def test_a_swept_seed_or_warmup_applies_to_every_platform(tmp_path):
    s = scenario(tmp_path, """\
        sweep:
          grid: {seed: [1, 2], lambda.memory_mb: [512, 1024]}
        """)
    runs = [p.runs for p in parse_sweep(s).points]
    assert runs[0]["ec2-1x"] == ("seed",) and "ec2-1x" not in runs[1] and runs[2]["ec2-1x"] == ("seed",)
    assert all(set(r) >= {"lambda-1g", "lambda-3g"} for r in runs)


def test_points_keep_the_scenario_seed_and_do_not_share_state(tmp_path):
    s = scenario(tmp_path, """\
        sweep:
          grid: {ec2.service.service_ms: [{dist: constant, value: 5}, {dist: constant, value: 9}]}
        """)
    raw_before = copy.deepcopy(s.raw)
    a, b = (point_scenario(s, p) for p in parse_sweep(s).points)
    assert a.seed == b.seed == 7
    assert (a.platforms[2].service.service_ms.mean(), b.platforms[2].service.service_ms.mean()) == (5, 9)
    assert a.raw["platforms"][2]["service"] is not b.raw["platforms"][2]["service"]
    assert s.raw == raw_before and s.sweep is not None


def test_scenario_from_a_mapping_resolves_against_the_current_directory():
    data = {"name": "m", "trace": {"kind": "poisson", "rate_rps": 1, "duration": 60},
            "platforms": [{"name": "l", "kind": "lambda",
                           "service": {"warm_ms": 10, "cold_init_ms": 100}}],
            "sweep": {"grid": {"lambda.memory_mb": [256]}}}
    s = scenario_from_dict(data)
    (point,) = parse_sweep(s).points
    ps = point_scenario(s, point)
    assert ps.platforms[0].memory_mb == 256 and ps.path is None
    assert data["platforms"][0].get("memory_mb") is None


# -- errors ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("sweep, key, expected", [
    ("sweep: {grid: {lambda.memory_mb: [512]}, gird: {}}", "sweep.gird", "a known key"),
    ("sweep: {slo: {p99_ms: 300}}", "sweep", "grid: (a cartesian product) and/or zip:"),
    ("sweep: {grid: {}}", "sweep.grid", "a non-empty mapping"),
    ("sweep: {grid: {lambda.memory_mb: []}}", "sweep.grid.lambda.memory_mb", "a non-empty list"),
    ("sweep: {zip: {lambda.memory_mb: 512}}", "sweep.zip.lambda.memory_mb", "a non-empty list"),
    ("sweep: {grid: {lambda.memory_mb: [[512]]}}", "sweep.grid.lambda.memory_mb", "scalars"),
    ("sweep: {zip: {ec2.instances: [1, 2], ec2.instance_type: [c6i.large]}}",
     "sweep.zip.ec2.instance_type", "a list of 2 values, as long as sweep.zip.ec2.instances"),
    ("sweep: {grid: {platforms.lambda-9g.memory_mb: [512]}}", "sweep.grid.platforms.lambda-9g.memory_mb",
     "the name of a platform of the scenario (it has: lambda-1g, lambda-3g, ec2-1x)"),
    ("sweep: {grid: {platforms.lambda-1g: [512]}}", "sweep.grid.platforms.lambda-1g", "platforms.<name>.<key>"),
    ("sweep: {grid: {memory_mb: [512]}}", "sweep.grid.memory_mb", "a parameter path starting with lambda."),
    ("sweep: {grid: {lambda..memory_mb: [512]}}", "sweep.grid.lambda..memory_mb", "dot-separated keys"),
    ("sweep: {grid: {lambda.kind: [ec2]}}", "sweep.grid.lambda.kind", "other than name and kind"),
    ("sweep: {grid: {seed.x: [1]}}", "sweep.grid.seed.x", "'seed' alone"),
    ("sweep: {grid: {trace: [1]}}", "sweep.grid.trace", "a key of the trace"),
    ("sweep: {grid: {lambda.memory_mb.x: [1]}}", "sweep.grid.lambda.memory_mb.x", "a path through mappings only"),
    ("sweep: {grid: {lambda.memory_mb: [512]}, zip: {lambda.memory_mb: [1024]}}", "sweep.zip.lambda.memory_mb",
     "a path not also in sweep.grid"),
    ("sweep: {grid: {lambda.memory_mb: [512], platforms.lambda-3g.memory_mb: [1024]}}",
     "sweep.grid.platforms.lambda-3g.memory_mb", "(sweep.grid.lambda.memory_mb sets it too)"),
    ("sweep: {grid: {ec2.autoscaling: [{min: 1, max: 2, target: 0.5}], ec2.autoscaling.max: [3]}}",
     "sweep.grid.ec2.autoscaling.max", "sets it too"),
    ("sweep: {grid: {seed: [1]}, slo: {p99: 300}}", "sweep.slo.p99", "did you mean 'p99_ms'"),
    ("sweep: {grid: {seed: [1]}, slo: {p99_ms: 0}}", "sweep.slo.p99_ms", "a number of milliseconds > 0"),
    ("sweep: {grid: {seed: [1]}, slo: {p95_ms: fast}}", "sweep.slo.p95_ms", "a number of milliseconds > 0"),
    ("sweep: {grid: {seed: [1]}, slo: {max_rejected_fraction: 1.5}}", "sweep.slo.max_rejected_fraction",
     "a fraction from 0 to 1"),
    ("sweep: {grid: {seed: [1]}, slo: {}}", "sweep.slo", "at least one of p50_ms"),
])
def test_bad_sweep_blocks_name_the_file_and_key(tmp_path, sweep, key, expected):
    s = scenario(tmp_path, sweep + "\n")
    with pytest.raises(ConfigError) as err:
        parse_sweep(s)
    assert err.value.source == str(tmp_path / "scn.yaml")
    assert err.value.key == key
    assert expected in err.value.expected
    assert str(tmp_path / "scn.yaml") in str(err.value) and key in str(err.value)


def test_a_path_matching_no_platform(tmp_path):
    lambdas_only = BASE.split("  - name: ec2-1x")[0]
    s = scenario(tmp_path, "sweep: {grid: {ec2.instances: [1, 2]}}\n", base=lambdas_only)
    with pytest.raises(ConfigError, match=r"sweep\.grid\.ec2\.instances: expected a path that matches a platform: "
                                          r"the scenario has no platform of kind ec2"):
        parse_sweep(s)


def test_no_sweep_block(tmp_path):
    s = scenario(tmp_path, "")
    with pytest.raises(ConfigError, match=r"scn\.yaml: sweep: expected a sweep: block"):
        parse_sweep(s)


def test_an_invalid_value_fails_as_that_points_error(tmp_path):
    s = scenario(tmp_path, "sweep: {grid: {lambda.memory_mb: [1024, -5]}}\n")
    good, bad = parse_sweep(s).points  # values are not checked eagerly
    assert point_scenario(s, good).platforms[0].memory_mb == 1024
    with pytest.raises(ConfigError) as err:
        point_scenario(s, bad)
    assert err.value.source == f"{tmp_path / 'scn.yaml'} (sweep point 1: lambda.memory_mb=-5)"
    assert err.value.key == "platforms[0].memory_mb"
    assert "sweep point 1" in str(err.value)


def test_label_shows_mappings_and_strings():
    point = SweepPoint(0, {"ec2.instance_type": "c6i.large", "ec2.service.service_ms": {"dist": "expon", "mean": 9}})
    assert point.label() == "ec2.instance_type=c6i.large, ec2.service.service_ms={dist: expon, mean: 9}"


# -- SLO -------------------------------------------------------------------------------------------

def summary(requests=1000, rejected=0, **latency):
    lat = {"mean": 10.0, "p50": 10.0, "p90": 20.0, "p95": 30.0, "p99": 100.0, "p999": 400.0, "max": 500.0}
    lat.update(latency)
    return {"requests": requests, "rejected": rejected, "latency_ms": lat}


def test_slo_met():
    assert SLO().met(summary())
    assert SLO(p99_ms=100).met(summary())          # the bound is inclusive
    assert not SLO(p99_ms=99.9).met(summary())
    assert SLO(p50_ms=10, p95_ms=30, p999_ms=400).met(summary())
    assert not SLO(p999_ms=300).met(summary())
    assert not SLO(p50_ms=5).met(summary())
    assert SLO(max_rejected_fraction=0.01).met(summary(rejected=10))
    assert not SLO(max_rejected_fraction=0.01).met(summary(rejected=11))
    assert not SLO(max_rejected_fraction=0).met(summary(rejected=1))
    assert SLO(max_rejected_fraction=0).met(summary(requests=0, rejected=0))


def test_slo_with_no_completed_requests_fails_latency_bounds_only():
    empty = summary(requests=10, rejected=10, **{k: None for k in ("mean", "p50", "p90", "p95", "p99", "p999", "max")})
    assert not SLO(p99_ms=1e9).met(empty)
    assert SLO(max_rejected_fraction=1).met(empty)


def test_slo_on_flattened_rows_of_a_sweep_table():
    row = {"requests": 1000, "rejected": 5, "latency_ms.p50": 10.0, "latency_ms.p99": 100.0}
    assert SLO(p99_ms=100, max_rejected_fraction=0.005).met(row)
    assert not SLO(p99_ms=99).met(row)
    assert not SLO(p95_ms=1e9).met(row)  # a bound on a figure the row lacks is not met
    error_row = {"requests": float("nan"), "rejected": float("nan"), "latency_ms.p99": float("nan")}
    assert not SLO(p99_ms=1e9).met(error_row)
    assert not SLO(max_rejected_fraction=1).met(error_row)

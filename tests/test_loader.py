"""Scenario loading: good files become typed, frozen configuration; every mistake is a ConfigError
naming the file, the key path and what was expected."""
from __future__ import annotations

import copy
import dataclasses
import json
import textwrap
from pathlib import Path

import pytest
import yaml

from scenarios import loader
from scenarios.loader import Scenario, load_scenario, scenario_from_dict
from sim.config import AutoscalingConfig, EC2Config, LambdaConfig
from sim.dists import Constant, Exponential, ScipyDist
from sim.errors import ConfigError
from sim.profile import SCHEMA
from traces.poisson import Poisson

GOOD = """\
name: inline
seed: 7
warmup_s: 10m
engine: simpy
trace: {kind: poisson, rate_rps: 5, duration: 1h}
platforms:
  - name: lambda-2g
    kind: lambda
    memory_mb: 2048
    architecture: arm64
    keep_alive_s: {dist: expon, mean: 300}
    reuse: newest
    provisioned_concurrency: 2
    init_billed: false
    timeout_s: 30s
    service:
      warm_ms: {dist: lognorm, s: 0.3, scale: 40}
      cold_init_ms: 800
  - name: ec2
    kind: ec2
    instance_type: c6i.xlarge
    instances: 3
    workers_per_instance: 4
    load_balancer: shared_queue
    request_timeout_s: 2m
    autoscaling: {min: 2, max: 8, target: 0.6, boot_s: 90s, cooldown_s: 1e2}
    service: {service_ms: {dist: expon, mean: 12}}
sweep:
  lambda-2g.memory_mb: [1024, 2048]
"""


def write(tmp_path: Path, text: str, name: str = "scn.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def defaults(cls) -> dict:
    return {f.name: f.default for f in dataclasses.fields(cls) if f.default is not dataclasses.MISSING}


# -- good scenarios --------------------------------------------------------------------------------

def test_good_inline_scenario(tmp_path):
    before = sorted(tmp_path.iterdir())
    path = write(tmp_path, GOOD)
    s = load_scenario(path)
    assert isinstance(s, Scenario)
    assert (s.name, s.seed, s.warmup_s, s.engine) == ("inline", 7, 600.0, "simpy")
    assert s.path == path.absolute() and s.pricing_path is None
    assert isinstance(s.trace, Poisson) and (s.trace.rate_rps, s.trace.duration_s) == (5.0, 3600.0)
    lam, ec2 = s.platforms
    assert isinstance(lam, LambdaConfig) and isinstance(ec2, EC2Config)
    assert (lam.memory_mb, lam.architecture, lam.reuse, lam.provisioned_concurrency) == (2048, "arm64", "newest", 2)
    assert lam.keep_alive_s == Exponential(300) and lam.init_billed is False and lam.timeout_s == 30.0
    assert lam.service.warm_ms == ScipyDist("lognorm", {"s": 0.3, "scale": 40})
    assert lam.service.cold_init_ms == Constant(800)
    assert lam.concurrency_limit == defaults(LambdaConfig)["concurrency_limit"]
    assert (ec2.instance_type, ec2.workers_per_instance, ec2.load_balancer) == ("c6i.xlarge", 4, "shared_queue")
    assert ec2.request_timeout_s == 120.0 and ec2.queue_limit == defaults(EC2Config)["queue_limit"]
    a = ec2.autoscaling
    assert (a.min_instances, a.max_instances, a.target, a.cooldown_s) == (2, 8, 0.6, 100.0)
    assert a.boot_s == Constant(90) and a.initial_instances == 3 == ec2.instances
    assert a.metric_period_s == defaults(AutoscalingConfig)["metric_period_s"]
    assert s.sweep == {"lambda-2g.memory_mb": [1024, 2048]}
    assert s.raw["name"] == "inline"
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.seed = 3  # type: ignore[misc]
    # building a scenario has no side effects: the folder holds just what the test wrote
    assert sorted(tmp_path.iterdir()) == sorted(before + [path])


def test_minimal_scenario_takes_dataclass_defaults(tmp_path):
    s = load_scenario(write(tmp_path, """\
        name: min
        trace: {kind: list, times: [0, 1, 2]}
        platforms:
          - {name: f, kind: lambda, service: {warm_ms: 10, cold_init_ms: 100}}
          - {name: s, kind: ec2, service: {service_ms: 10}}
        """))
    assert (s.seed, s.warmup_s, s.engine, s.sweep) == (0, 0.0, "auto", None)
    lam, ec2 = s.platforms
    for cfg, cls in ((lam, LambdaConfig), (ec2, EC2Config)):
        for name, value in defaults(cls).items():
            assert getattr(cfg, name) == value, name


def test_loader_knows_every_dataclass_field():
    names = {f.name for f in dataclasses.fields(LambdaConfig)}
    assert names == set(loader._LAMBDA) | {"name", "service", "host"}
    names = {f.name for f in dataclasses.fields(EC2Config)}
    assert names == set(loader._EC2) | {"name", "service", "autoscaling", "host"}
    names = {f.name for f in dataclasses.fields(AutoscalingConfig)}
    assert names == {loader._AUTOSCALING_FIELDS.get(k, k) for k in loader._AUTOSCALING}


PROFILE = {
    "schema": SCHEMA,
    "model": {"name": "mobilenetv2"},
    "measured": {"target": "local-lambda"},
    "lambda": [{"memory_mb": 1024, "architecture": "x86_64", "warm_ms": {"dist": "expon", "mean": 30},
                "cold_init_ms": {"dist": "constant", "value": 900, "fit": {"n": 20}}},
               {"memory_mb": 2048, "architecture": "x86_64", "warm_ms": 15, "cold_init_ms": 700}],
    "server": [{"instance_type": "c6i.large", "workers": 2, "service_ms": {"dist": "expon", "mean": 8},
                "boot_s": {"dist": "constant", "value": 75}}],
}

FROM_PROFILE = """\
name: profiled
trace: {kind: poisson, rate_rps: 5, duration: 10m}
profile: profiles/p.json
platforms:
  - {name: fn, kind: lambda, memory_mb: 1024}
  - {name: fn-own-warm, kind: lambda, memory_mb: 2048, service: {warm_ms: 11}}
  - name: fleet
    kind: ec2
    instance_type: c6i.large
    workers_per_instance: 2
    autoscaling: {min: 1, max: 4, target: 20, metric: requests_per_instance}
"""


def write_profile(tmp_path: Path, data: dict = PROFILE) -> Path:
    (tmp_path / "profiles").mkdir(exist_ok=True)
    path = tmp_path / "profiles" / "p.json"
    path.write_text(json.dumps(data))
    return path


def test_services_resolved_from_profile(tmp_path):
    write_profile(tmp_path)
    s = load_scenario(write(tmp_path, FROM_PROFILE))
    fn, own, fleet = s.platforms
    assert fn.service.warm_ms == Exponential(30) and fn.service.cold_init_ms == Constant(900)
    assert own.service.warm_ms == Constant(11) and own.service.cold_init_ms == Constant(700)  # inline key wins
    assert fleet.service.service_ms == Exponential(8)
    assert fleet.autoscaling.boot_s == Constant(75)  # the profile's boot time
    assert fleet.autoscaling.initial_instances == 1 == fleet.instances  # min by default


def test_cold_init_scale_scales_the_measured_or_inline_init_only(tmp_path):
    write_profile(tmp_path)
    text = FROM_PROFILE.replace("kind: lambda,", "kind: lambda, cold_init_scale: 2.5,")
    fn, own, _ = load_scenario(write(tmp_path, text)).platforms
    assert fn.service.cold_init_ms.mean() == 2.5 * 900 and own.service.cold_init_ms.mean() == 2.5 * 700
    assert fn.service.warm_ms == Exponential(30) and own.service.warm_ms == Constant(11)


def test_scenario_from_dict_resolves_against_base_dir(tmp_path):
    write_profile(tmp_path)
    data = yaml.safe_load(FROM_PROFILE)
    s = scenario_from_dict(data, source="api", base_dir=tmp_path)
    assert s.path is None and len(s.platforms) == 3
    data["platforms"][0]["memroy_mb"] = 1
    with pytest.raises(ConfigError, match=r"^api: platforms\[0\]\.memroy_mb: .*did you mean 'memory_mb'"):
        scenario_from_dict(data, source="api", base_dir=tmp_path)


def test_pricing_path_relative_to_scenario(tmp_path):
    (tmp_path / "prices.yaml").write_text("{}\n")
    s = load_scenario(write(tmp_path, GOOD + "pricing: prices.yaml\n"))
    assert s.pricing_path == (tmp_path / "prices.yaml").absolute()


# -- bad scenarios ---------------------------------------------------------------------------------

def edit(text: str, old: str, new: str) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


BAD = [
    # (edit of GOOD, key path, expectation)
    (("seed: 7", "sed: 7"), "sed", "did you mean 'seed'"),
    (("memory_mb: 2048", "memory: 2048"), "platforms[0].memory", "did you mean 'memory_mb'"),
    (("cooldown_s: 1e2", "cooldwn_s: 1e2"), "platforms[1].autoscaling.cooldwn_s", "did you mean 'cooldown_s'"),
    (("cold_init_ms: 800", "cold_start_ms: 800"), "platforms[0].service.cold_start_ms", "did you mean 'cold_init_ms'"),
    (("rate_rps: 5", "rate_rps: -5"), "trace.rate_rps", "a number > 0"),
    (("dist: lognorm", "dist: lognormal"), "platforms[0].service.warm_ms", "not a continuous distribution"),
    (("memory_mb: 2048", "memory_mb: big"), "platforms[0].memory_mb", "an integer from 128 to 10240"),
    (("memory_mb: 2048", "memory_mb: 64"), "platforms[0].memory_mb", "an integer from 128 to 10240"),
    (("init_billed: false", "init_billed: 'no'"), "platforms[0].init_billed", "true or false"),
    (("seed: 7", "seed: -1"), "seed", "an integer >= 0"),
    (("seed: 7", "seed: 1.5"), "seed", "an integer >= 0"),
    (("reuse: newest", "reuse: lru"), "platforms[0].reuse", "one of mru, newest, random"),
    (("instances: 3", "instances: [3]"), "platforms[1].instances", "an integer >= 1"),
    (("timeout_s: 30s", "timeout_s: 20m"), "platforms[0].timeout_s", "from 1 s to 900 s"),
    (("provisioned_concurrency: 2", "provisioned_concurrency: 2\n    concurrency_limit: 1"),
     "platforms[0].provisioned_concurrency", "at most concurrency_limit (1)"),
    (("min: 2, max: 8", "min: 9, max: 8"), "platforms[1].autoscaling.max", "at least min (9)"),
    (("target: 0.6", "target: 60"), "platforms[1].autoscaling.target", "fraction in (0, 1]"),
    (("min: 2,", "min: 2, initial: 4,"), "platforms[1].autoscaling.initial", "the same as platforms[1].instances"),
    (("instances: 3", "instances: 9"), "platforms[1].instances", "from min (2) to max (8)"),
    ((", boot_s: 90s", ""), "platforms[1].autoscaling.boot_s", "a boot time in seconds"),
    (("engine: simpy", "engine: turbo"), "engine", "auto, simpy"),
    (("name: ec2", "name: lambda-2g"), "platforms[1].name", "a unique platform name (platforms[0]"),
    (("kind: ec2", "kind: vm"), "platforms[1].kind", "one of lambda, ec2"),
    (("warmup_s: 10m", "warmup_s: 2h"), "warmup_s", "shorter than the trace (3600 s)"),
    (("keep_alive_s: {dist: expon, mean: 300}", "keep_alive_s: [300]"), "platforms[0].keep_alive_s", "a duration"),
    (("sweep:\n  lambda-2g.memory_mb: [1024, 2048]", "sweep: [1, 2]"), "sweep", "a mapping"),
    (("    service: {service_ms: {dist: expon, mean: 12}}\n", ""), "platforms[1]",
     "service times for platform 'ec2': an inline service: {service_ms: {dist: ...}}"),
    (("name: inline\n", ""), "name", "required"),
    (("memory_mb: 2048", "memory_mb: 2048\n    cold_init_scale: 0"), "platforms[0].cold_init_scale", "a number > 0"),
]


@pytest.mark.parametrize("change,key,expected", BAD, ids=[b[1] + ":" + b[2][:20] for b in BAD])
def test_bad_scenarios_name_file_key_and_expectation(tmp_path, change, key, expected):
    path = write(tmp_path, edit(GOOD, *change), "my-scenario.yaml")
    with pytest.raises(ConfigError) as err:
        load_scenario(path)
    msg = str(err.value)
    assert msg.startswith(f"{path}: {key}: expected "), msg
    assert expected in msg, msg


def test_no_matching_profile_entry_lists_the_entries(tmp_path):
    write_profile(tmp_path)
    path = write(tmp_path, edit(FROM_PROFILE, "workers_per_instance: 2", "workers_per_instance: 4"))
    with pytest.raises(ConfigError) as err:
        load_scenario(path)
    msg = str(err.value)
    assert msg.startswith(f"{path}: platforms[2]: expected an entry for instance_type=c6i.large, workers=4")
    assert "lambda 1024 MB x86_64; lambda 2048 MB x86_64; server c6i.large with 2 workers" in msg
    path = write(tmp_path, edit(FROM_PROFILE, "memory_mb: 1024}", "memory_mb: 1024, architecture: arm64}"))
    with pytest.raises(ConfigError, match=r"platforms\[0\]: expected an entry for memory_mb=1024, architecture=arm64"):
        load_scenario(path)


def test_profile_without_boot_time_needs_boot_s(tmp_path):
    data = copy.deepcopy(PROFILE)
    del data["server"][0]["boot_s"]
    write_profile(tmp_path, data)
    with pytest.raises(ConfigError, match=r"platforms\[2\]\.autoscaling\.boot_s: expected a boot time"):
        load_scenario(write(tmp_path, FROM_PROFILE))


def test_errors_inside_the_profile_name_the_profile(tmp_path):
    data = copy.deepcopy(PROFILE)
    data["lambda"][0]["warm_ms"] = {"dist": "lognorm", "s": "wide", "scale": 3}
    write_profile(tmp_path, data)
    with pytest.raises(ConfigError, match=r"p\.json: lambda\[0\]\.warm_ms\.s: expected a number"):
        load_scenario(write(tmp_path, FROM_PROFILE))
    with pytest.raises(ConfigError, match=r"scn\.yaml: profile: expected an existing file"):
        load_scenario(write(tmp_path, edit(FROM_PROFILE, "profiles/p.json", "p.json")))


@pytest.mark.parametrize("text,where,expected", [
    ("name: x\nplatforms: [\n  {name: a\n", "line ", "valid YAML"),
    ("name: x\n  bad: indent\n", "line 2", "valid YAML"),
    ("name: x\nname: y\n", "line 2", "repeated key 'name'"),
    ("- just\n- a list\n", "", "a YAML mapping"),
    ("", "", "a YAML mapping"),
])
def test_unreadable_yaml(tmp_path, text, where, expected):
    path = write(tmp_path, text, "broken.yaml")
    with pytest.raises(ConfigError) as err:
        load_scenario(path)
    msg = str(err.value)
    assert msg.startswith(f"{path}: {where}") and expected in msg, msg


def test_missing_scenario_file(tmp_path):
    with pytest.raises(ConfigError, match="nope.yaml: expected an existing scenario file"):
        load_scenario(tmp_path / "nope.yaml")


def test_empty_platform_list_and_bad_trace_file(tmp_path):
    with pytest.raises(ConfigError, match="platforms: expected a non-empty list"):
        load_scenario(write(tmp_path, "name: x\ntrace: {kind: list, times: [1]}\nplatforms: []\n"))
    (tmp_path / "t.csv").write_text("t\n1\n0.5\n2\n")
    text = edit(GOOD, "{kind: poisson, rate_rps: 5, duration: 1h}", "{kind: file, path: t.csv}")
    path = write(tmp_path, edit(text, "warmup_s: 10m", "warmup_s: 0"))
    s = load_scenario(path)
    with pytest.raises(ConfigError, match=r"t\.csv: line 3, column 't': expected timestamps sorted"):
        s.trace.arrivals(None)


def test_profile_memory_scaling_interpolates_and_refuses_extrapolation(tmp_path):
    prof = dict(PROFILE, lambda_scaling={"x86_64": {"model": "a + b/share", "a_ms": 2.0, "b_ms": 10.0,
                                                    "measured_mb": [1024, 2048]}})
    (tmp_path / "p.json").write_text(json.dumps(prof))

    def scenario(memory, extra=""):
        f = tmp_path / f"s{memory}.yaml"
        f.write_text(f"name: s\nprofile: p.json\ntrace: {{kind: poisson, rate_rps: 1, duration: 60}}\n"
                     f"platforms:\n  - {{name: l, kind: lambda, memory_mb: {memory}{extra}}}\n")
        return f

    cfg = load_scenario(scenario(1536)).platforms[0]
    # Nearest measured entry is 1024 MB (ties go to the smaller); t(m) = 2 + 10 / (m/1769).
    t = lambda m: 2.0 + 10.0 / (m / 1769.0)  # noqa: E731
    assert cfg.service.warm_ms.mean() == pytest.approx(30.0 * t(1536) / t(1024))
    assert cfg.service.cold_init_ms.mean() == 900
    assert "interpolated from the 1024 MB measurement" in cfg.service.interpolated
    assert load_scenario(scenario(2048)).platforms[0].service.interpolated is None  # measured: as is
    with pytest.raises(ConfigError, match=r"platforms\[0\]\.memory_mb: expected a memory size within the "
                                          r"profile's measured range 1024-2048 MB"):
        load_scenario(scenario(3008))
    cfg = load_scenario(scenario(3008, ", allow_extrapolation: true")).platforms[0]
    assert "EXTRAPOLATED" in cfg.service.interpolated


def test_memory_scaling_interpolates_between_measured_sizes_in_inverse_share():
    from sim.profile import LambdaScaling

    s = LambdaScaling(a_ms=-5.0, b_ms=1.0, measured_mb=(512, 3008), max_share=1.0,
                      points=((512, 85.0), (1024, 13.6), (1769, 13.5), (3008, 13.6)))
    assert [s.duration_ms(m) for m in (512, 1024, 1769, 3008)] == [85.0, 13.6, 13.5, 13.6]  # exact where measured
    x = lambda m: 1769.0 / m  # noqa: E731  (1/share)
    w = (x(768) - x(1024)) / (x(512) - x(1024))
    assert s.duration_ms(768) == pytest.approx(13.6 + w * (85.0 - 13.6))
    assert s.duration_ms(4096) == pytest.approx(-5.0 + 1.0 / 1.0)  # outside: the a + b/share model

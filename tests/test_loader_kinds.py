"""Scenario files with the two new platform kinds, k8s-function and container-service: every key,
the defaults taken from the platform presets, overrides, and every mistake a ConfigError naming
the file, the key path and what was expected."""
from __future__ import annotations

import dataclasses
import json
import textwrap
from pathlib import Path

import pytest

from scenarios import loader
from scenarios.loader import KNATIVE_MAX_REPLICAS, load_scenario
from sim.config import (AutoscalingConfig, ContainerServiceConfig, K8sFunctionConfig, KnativeKpa, OpenFaasRps,
                        PodService)
from sim.dists import Constant, Exponential, ScipyDist
from sim.errors import ConfigError
from sim.presets import load_presets
from sim.profile import SCHEMA

PRESETS = load_presets()

GOOD = """\
name: kinds
trace: {kind: poisson, rate_rps: 5, duration: 1h}
platforms:
  - name: faas
    kind: k8s-function
    autoscaler: {kind: openfaas-rps, threshold_rps: 7.5, for_s: 10s, group_wait_s: 3, scale_factor_pct: 25}
    min_replicas: 2
    max_replicas: 6
    concurrency: 4
    pod_start_s: {dist: expon, mean: 5}
    node_instance_type: c6i.xlarge
    pods_per_node: 3
    nodes: 2
    control_plane: none
    queue_limit: 50
    request_timeout_s: 30s
    service: {service_ms: {dist: lognorm, s: 0.3, scale: 40}}
  - name: run
    kind: container-service
    preset: cloud-run
    billing: instance
    concurrency: 20
    min_instances: 1
    max_instances: 30
    vcpu: 2
    memory_gb: 4
    scaling: {metric: concurrency, target: 10, idle_timeout_s: 5m, stable_window_s: 30s, tick_s: 1}
    start_s: 3.5
    queue_limit: 200
    request_timeout_s: 2m
    service: {service_ms: {dist: expon, mean: 12}}
"""


def write(tmp_path: Path, text: str, name: str = "scn.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def edit(text: str, old: str, new: str) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


def one(tmp_path: Path, platform: str):
    """The one platform of a scenario whose platforms: list is `platform` (YAML, one item)."""
    text = "name: one\ntrace: {kind: poisson, rate_rps: 5, duration: 1h}\nplatforms:\n" + textwrap.indent(
        textwrap.dedent(platform), "  ")
    (cfg,) = load_scenario(write(tmp_path, text)).platforms
    return cfg


FAAS = """\
- name: f
  kind: k8s-function
  autoscaler: {kind: openfaas-rps}
  pod_start_s: 5
  service: {service_ms: 20}
"""
KNATIVE = FAAS.replace("openfaas-rps", "knative-kpa")
RUN = """\
- name: r
  kind: container-service
  preset: cloud-run
  start_s: 2
  service: {service_ms: 20}
"""


# -- good scenarios ---------------------------------------------------------------------------------

def test_every_key_of_both_kinds(tmp_path):
    s = load_scenario(write(tmp_path, GOOD))
    faas, run = s.platforms
    assert isinstance(faas, K8sFunctionConfig) and isinstance(run, ContainerServiceConfig)
    assert faas == K8sFunctionConfig(
        name="faas", service=PodService(ScipyDist("lognorm", {"s": 0.3, "scale": 40})), pod_start_s=Exponential(5),
        autoscaler=dataclasses.replace(PRESETS.openfaas, threshold_rps=7.5, for_s=10.0, group_wait_s=3.0,
                                       scale_factor_pct=25.0),
        control_plane_usd_per_hour=0.0, min_replicas=2, max_replicas=6, concurrency=4,
        node_instance_type="c6i.xlarge", pods_per_node=3, nodes=2, control_plane="none", queue_limit=50,
        request_timeout_s=30.0)
    preset = PRESETS.container("cloud-run")
    kpa = dataclasses.replace(PRESETS.knative, **{**preset.kpa_overrides, "target": 10.0, "stable_window_s": 30.0,
                                                  "tick_s": 1.0, "scale_to_zero": False})
    assert run.scaling.metric == "concurrency" and run.scaling.kpa == kpa and run.scaling.tracking is None
    assert run.scaling.idle_timeout_s == 300.0
    assert run.prices == preset.prices("instance") and run.start_s == Constant(3.5)
    assert (run.concurrency, run.min_instances, run.max_instances, run.vcpu, run.memory_gb) == (20, 1, 30, 2.0, 4.0)
    assert (run.queue_limit, run.request_timeout_s, run.service.service_ms) == (200, 120.0, Exponential(12))
    assert s.presets_path is None


def test_k8s_function_defaults_come_from_the_presets_and_the_dataclass(tmp_path):
    cfg = one(tmp_path, FAAS)
    assert cfg.autoscaler == PRESETS.openfaas and isinstance(cfg.autoscaler, OpenFaasRps)
    assert (cfg.min_replicas, cfg.max_replicas) == PRESETS.openfaas_replicas
    assert cfg.control_plane == "eks" and cfg.control_plane_usd_per_hour == PRESETS.control_plane_usd_per_hour("eks")
    fixed = {f.name: f.default for f in dataclasses.fields(K8sFunctionConfig)
             if f.default is not dataclasses.MISSING and f.name not in ("min_replicas", "max_replicas")}
    for name, value in fixed.items():
        assert getattr(cfg, name) == value, name
    assert cfg.pod_start_s == Constant(5) and cfg.service.service_ms == Constant(20)


def test_knative_scales_to_zero_by_default_and_follows_min_replicas(tmp_path):
    cfg = one(tmp_path, KNATIVE)
    assert isinstance(cfg.autoscaler, KnativeKpa)
    assert (cfg.min_replicas, cfg.max_replicas) == (0, KNATIVE_MAX_REPLICAS)
    assert cfg.autoscaler == dataclasses.replace(PRESETS.knative, scale_to_zero=True)
    cfg = one(tmp_path, KNATIVE + "  min_replicas: 2\n")
    assert cfg.min_replicas == 2 and cfg.autoscaler.scale_to_zero is False
    cfg = one(tmp_path, KNATIVE.replace("knative-kpa}", "knative-kpa, scale_to_zero: false, target: 10}"))
    assert cfg.min_replicas == 1 and cfg.autoscaler.scale_to_zero is False and cfg.autoscaler.target == 10.0


def test_a_fixed_node_pool_bounds_the_default_max_replicas(tmp_path):
    cfg = one(tmp_path, KNATIVE + "  nodes: 3\n  pods_per_node: 2\n")
    assert cfg.max_replicas == 6 and cfg.nodes == 3
    cfg = one(tmp_path, FAAS + "  nodes: 10\n")
    assert cfg.max_replicas == PRESETS.openfaas_replicas[1]


def test_container_service_defaults_come_from_its_preset(tmp_path):
    cfg = one(tmp_path, RUN)
    preset = PRESETS.container("cloud-run")
    for name in ("concurrency", "min_instances", "max_instances", "vcpu", "memory_gb"):
        assert getattr(cfg, name) == preset.defaults[name], name
    assert cfg.prices == preset.prices() and cfg.prices.billing == preset.default_billing
    assert cfg.scaling.metric == preset.defaults["scaling_metric"] == "concurrency"
    # target: concurrent requests per instance, by default the instance's concurrency; the
    # autoscaler aims at target * target_utilization (the preset's).
    assert cfg.scaling.kpa == dataclasses.replace(PRESETS.knative, **preset.kpa_overrides,
                                                  target=float(preset.defaults["concurrency"]),
                                                  scale_to_zero=preset.defaults["min_instances"] == 0)
    assert cfg.scaling.idle_timeout_s == preset.defaults["idle_timeout_s"]
    assert (cfg.queue_limit, cfg.request_timeout_s) == (10000, 300.0)  # the dataclass defaults
    none = one(tmp_path, RUN + "  scaling: {idle_timeout_s: null}\n")
    assert none.scaling.idle_timeout_s is None


def test_cpu_scaling_is_target_tracking_like_ec2(tmp_path):
    cfg = one(tmp_path, """\
        - name: tasks
          kind: container-service
          preset: fargate
          min_instances: 2
          max_instances: 9
          start_s: {dist: expon, mean: 40}
          scaling: {target: 0.7, metric_period_s: 1m, scale_out_periods: 2, scale_in_periods: 10,
                    scale_in_ratio: 0.8, cooldown_s: 2m}
          service: {service_ms: 30}
        """)
    assert cfg.scaling.metric == "cpu" == PRESETS.container("fargate").defaults["scaling_metric"]
    assert cfg.scaling.kpa is None
    assert cfg.scaling.tracking == AutoscalingConfig(
        min_instances=2, max_instances=9, target=0.7, boot_s=Exponential(40), metric="cpu", metric_period_s=60.0,
        scale_out_periods=2, scale_in_periods=10, scale_in_ratio=0.8, cooldown_s=120.0, initial_instances=2)


def http_profile(tmp_path: Path, start: bool = True) -> Path:
    entry = {"label": "gw", "url": "http://127.0.0.1:8080/function/m", "service_ms": {"dist": "expon", "mean": 9}}
    if start:
        entry["start_s"] = {"dist": "constant", "value": 4}
    data = {"schema": SCHEMA, "model": {"name": "m"}, "measured": {"target": "http"}, "http": [entry],
            "server": [{"instance_type": "c6i.large", "workers": 2, "service_ms": {"dist": "expon", "mean": 15}}]}
    path = tmp_path / "p.json"
    path.write_text(json.dumps(data))
    return path


def with_profile(tmp_path: Path, platform: str):
    http_profile(tmp_path)
    text = ("name: one\nprofile: p.json\ntrace: {kind: poisson, rate_rps: 5, duration: 1h}\nplatforms:\n"
            + textwrap.indent(textwrap.dedent(platform), "  "))
    (cfg,) = load_scenario(write(tmp_path, text)).platforms
    return cfg


def test_service_and_start_times_from_a_profile(tmp_path):
    bare_faas = "- {name: f, kind: k8s-function, autoscaler: {kind: openfaas-rps}, profile_entry: gw}\n"
    cfg = with_profile(tmp_path, bare_faas)
    assert cfg.service.service_ms == Exponential(9) and cfg.pod_start_s == Constant(4)
    cfg = with_profile(tmp_path, bare_faas.replace("}\n", ", pod_start_s: 7, service: {service_ms: 3}}\n"))
    assert cfg.service.service_ms == Constant(3) and cfg.pod_start_s == Constant(7)  # inline wins
    run = with_profile(tmp_path, "- {name: r, kind: container-service, preset: cloud-run, profile_entry: gw}\n")
    assert run.service.service_ms == Exponential(9) and run.start_s == Constant(4)
    # Without profile_entry: service_ms from the server entry (node_instance_type, workers = concurrency).
    cfg = with_profile(tmp_path, "- {name: f, kind: k8s-function, autoscaler: {kind: openfaas-rps}, concurrency: 2, "
                                 "pod_start_s: 6}\n")
    assert cfg.service.service_ms == Exponential(15) and cfg.pod_start_s == Constant(6)


def test_the_presets_file_is_relative_to_the_scenario_and_read_only_when_needed(tmp_path, monkeypatch):
    import sim.presets

    (tmp_path / "mine.yaml").write_text("whatever")
    seen = []
    monkeypatch.setattr(sim.presets, "load_presets", lambda path=None: seen.append(path) or PRESETS)
    text = "name: p\npresets: mine.yaml\ntrace: {kind: poisson, rate_rps: 5, duration: 1h}\nplatforms:\n"
    s = load_scenario(write(tmp_path, text + textwrap.indent(RUN + FAAS, "  ")))
    assert seen == [tmp_path / "mine.yaml"] and s.presets_path == tmp_path / "mine.yaml"  # read once
    seen.clear()
    load_scenario(write(tmp_path, text + "  - {name: l, kind: lambda, service: {warm_ms: 5, cold_init_ms: 50}}\n"))
    assert seen == []
    with pytest.raises(ConfigError, match=r"scn\.yaml: presets: expected an existing file: a platform presets file"):
        load_scenario(write(tmp_path, text.replace("mine.yaml", "nope.yaml") + textwrap.indent(RUN, "  ")))


def test_a_bad_presets_file_is_named(tmp_path):
    (tmp_path / "mine.yaml").write_text("schema: servesim.presets/0\n")
    text = "name: p\npresets: mine.yaml\ntrace: {kind: poisson, rate_rps: 5, duration: 1h}\nplatforms:\n"
    with pytest.raises(ConfigError, match=r"mine\.yaml: schema: expected"):
        load_scenario(write(tmp_path, text + textwrap.indent(RUN, "  ")))


def test_loader_knows_every_dataclass_field():
    resolved = {"name", "service", "autoscaler", "control_plane_usd_per_hour"}
    assert {f.name for f in dataclasses.fields(K8sFunctionConfig)} == set(loader._K8S) | resolved
    resolved = {"name", "service", "prices", "scaling"}
    assert {f.name for f in dataclasses.fields(ContainerServiceConfig)} == set(loader._CONTAINER) | resolved
    assert {f.name for f in dataclasses.fields(OpenFaasRps)} == set(loader._OPENFAAS)
    assert {f.name for f in dataclasses.fields(KnativeKpa)} == set(loader._KPA)


# -- bad scenarios ----------------------------------------------------------------------------------

BAD = [
    # (edit of GOOD, key path, expectation)
    (("kind: k8s-function", "kind: k8s"), "platforms[0].kind", "one of lambda, ec2, k8s-function, container-service"),
    (("    min_replicas: 2\n", "    min_replica: 2\n"), "platforms[0].min_replica", "did you mean 'min_replicas'"),
    (("    autoscaler: {kind: openfaas-rps, threshold_rps: 7.5, for_s: 10s, group_wait_s: 3, "
      "scale_factor_pct: 25}\n", ""),
     "platforms[0].autoscaler", "this key is required"),
    (("kind: openfaas-rps,", "kind: hpa,"), "platforms[0].autoscaler.kind", "one of openfaas-rps, knative-kpa"),
    (("threshold_rps: 7.5", "target: 7.5"), "platforms[0].autoscaler.target",
     "valid keys here: kind, threshold_rps"),
    (("threshold_rps: 7.5", "threshold_rps: 0"), "platforms[0].autoscaler.threshold_rps", "a number > 0"),
    (("scale_factor_pct: 25", "scale_factor_pct: 250"), "platforms[0].autoscaler.scale_factor_pct", "<= 100"),
    (("for_s: 10s", "for_s: soon"), "platforms[0].autoscaler.for_s", "duration"),
    (("min_replicas: 2", "min_replicas: 0"), "platforms[0].min_replicas",
     "OpenFaaS CE never scales a function to zero"),
    (("max_replicas: 6", "max_replicas: 1"), "platforms[0].max_replicas", "at least min_replicas (2)"),
    (("nodes: 2", "nodes: 1"), "platforms[0].nodes",
     "at least 2 nodes: nodes * pods_per_node (3) must hold max_replicas (6)"),
    (("concurrency: 4", "concurrency: 0"), "platforms[0].concurrency", "an integer >= 1"),
    (("pods_per_node: 3", "pods_per_node: two"), "platforms[0].pods_per_node", "an integer >= 1"),
    (("control_plane: none", "control_plane: gke"), "platforms[0].control_plane", "one of eks, none"),
    (("    pod_start_s: {dist: expon, mean: 5}\n", ""), "platforms[0].pod_start_s",
     "a start time in seconds (a duration or a distribution) for platform 'faas': this key is required"),
    (("pod_start_s: {dist: expon, mean: 5}", "pod_start_s: {dist: expon}"), "platforms[0].pod_start_s.mean",
     "a number (expon needs 'mean')"),
    (("    service: {service_ms: {dist: lognorm, s: 0.3, scale: 40}}\n", ""), "platforms[0].service",
     "service times for platform 'faas': an inline service: {service_ms: {dist: ...}}"),
    (("service: {service_ms: {dist: lognorm", "service: {warm_ms: {dist: lognorm"), "platforms[0].service.warm_ms",
     "valid keys here: service_ms"),
    (("request_timeout_s: 30s", "request_timeout_s: 0"), "platforms[0].request_timeout_s", "duration"),
    (("queue_limit: 50", "queue_limit: -1"), "platforms[0].queue_limit", "an integer >= 0"),
    (("    pod_start_s: {dist: expon, mean: 5}\n", "    profile_entry: gw\n    pod_start_s: 5\n"),
     "platforms[0].profile_entry", "a top-level 'profile:' holding the http entry 'gw'"),
    (("    preset: cloud-run\n", ""), "platforms[1].preset", "this key is required): one of fargate, cloud-run"),
    (("preset: cloud-run", "preset: lambda"), "platforms[1].preset", "one of fargate, cloud-run, gcf2"),
    (("billing: instance", "billing: execution"), "platforms[1].billing",
     "a billing mode of preset cloud-run: one of request, instance"),
    (("billing: instance", "billing: hourly"), "platforms[1].billing", "one of instance, request, execution"),
    (("max_instances: 30", "max_instances: 0"), "platforms[1].max_instances", "an integer >= 1"),
    (("min_instances: 1", "min_instances: 40"), "platforms[1].max_instances", "at least min_instances (40)"),
    (("vcpu: 2", "vcpu: 0"), "platforms[1].vcpu", "a number > 0"),
    (("memory_gb: 4", "memory_gb: lots"), "platforms[1].memory_gb", "a number > 0"),
    (("target: 10", "target: 25"), "platforms[1].scaling.target", "a number >= 1 and <= 20"),
    (("metric: concurrency", "metric: rps"), "platforms[1].scaling.metric", "one of concurrency, cpu"),
    (("tick_s: 1", "cooldown_s: 1"), "platforms[1].scaling.cooldown_s", "a key of scaling metric concurrency"),
    (("tick_s: 1", "tik_s: 1"), "platforms[1].scaling.tik_s", "did you mean 'tick_s'"),
    (("stable_window_s: 30s", "stable_window_s: 2s"), "platforms[1].scaling.stable_window_s", "from 6 s to 3600 s"),
    (("metric: concurrency, target: 10, idle_timeout_s: 5m, stable_window_s: 30s, tick_s: 1",
      "metric: cpu, target: 10"), "platforms[1].scaling.target", "a number > 0 and <= 1"),
    (("    start_s: 3.5\n", ""), "platforms[1].start_s", "a start time in seconds"),
    (("idle_timeout_s: 5m", "idle_timeout_s: -5"), "platforms[1].scaling.idle_timeout_s", "duration"),
]


def _bad_cases():
    cases = list(BAD)
    # Several edits at once.
    cases.append(((("min_instances: 1", "min_instances: 0"),
                   ("metric: concurrency, target: 10, idle_timeout_s: 5m, stable_window_s: 30s, tick_s: 1",
                    "metric: cpu, target: 0.5")), "platforms[1].min_instances",
                  "min_instances >= 1 with scaling metric cpu (target tracking on CPU cannot scale from zero"))
    cases.append(((("metric: concurrency, target: 10, idle_timeout_s: 5m, stable_window_s: 30s, tick_s: 1",
                    "metric: cpu"),), "platforms[1].scaling.target", "required with metric cpu"))
    cases.append(((("scaling: {metric", "scaling: [{metric"), ("tick_s: 1}", "tick_s: 1}]")),
                  "platforms[1].scaling", "a mapping such as"))
    return cases


@pytest.mark.parametrize("change,key,expected", _bad_cases(), ids=[f"{c[1]}:{c[2][:20]}" for c in _bad_cases()])
def test_bad_scenarios_name_file_key_and_expectation(tmp_path, change, key, expected):
    text = GOOD
    for old, new in (change if isinstance(change[0], tuple) else (change,)):
        text = edit(text, old, new)
    path = write(tmp_path, text, "my-scenario.yaml")
    with pytest.raises(ConfigError) as err:
        load_scenario(path)
    msg = str(err.value)
    assert msg.startswith(f"{path}: {key}: expected "), msg
    assert expected in msg, msg


def test_knative_scale_to_zero_must_agree_with_min_replicas(tmp_path):
    with pytest.raises(ConfigError, match=r"platforms\[0\]\.autoscaler\.scale_to_zero: expected false, as "
                                          r"min_replicas is 2"):
        one(tmp_path, KNATIVE.replace("knative-kpa}", "knative-kpa, scale_to_zero: true}") + "  min_replicas: 2\n")
    with pytest.raises(ConfigError, match=r"platforms\[0\]\.autoscaler\.scale_to_zero: expected true"):
        one(tmp_path, KNATIVE.replace("knative-kpa}", "knative-kpa, scale_to_zero: false}") + "  min_replicas: 0\n")
    with pytest.raises(ConfigError, match=r"platforms\[0\]\.autoscaler\.panic_threshold_pct: expected a number >= 110"):
        one(tmp_path, KNATIVE.replace("knative-kpa}", "knative-kpa, panic_threshold_pct: 50}"))
    with pytest.raises(ConfigError, match=r"platforms\[0\]\.min_replicas: expected at most max_replicas \(20: its "
                                          r"default, or set it\), got 25"):
        one(tmp_path, KNATIVE + "  min_replicas: 25\n")


def test_fargate_defaults_to_cpu_scaling_which_needs_a_target(tmp_path):
    run = RUN.replace("cloud-run", "fargate")
    with pytest.raises(ConfigError, match=r"platforms\[0\]\.scaling\.target: expected a busy-slot fraction in "
                                          r"\(0, 1\] \(required with metric cpu\)"):
        one(tmp_path, run)
    with pytest.raises(ConfigError, match=r"platforms\[0\]\.scaling\.metric: expected min_instances >= 1 with "
                                          r"scaling metric cpu"):
        one(tmp_path, RUN + "  scaling: {metric: cpu, target: 0.5}\n")  # cloud-run: min_instances 0 by default
    with pytest.raises(ConfigError, match=r"platforms\[0\]\.scaling\.stable_window_s: expected a key of scaling "
                                          r"metric cpu"):
        one(tmp_path, run + "  scaling: {target: 0.5, stable_window_s: 60}\n")


def test_profile_errors_say_what_is_missing(tmp_path):
    with pytest.raises(ConfigError, match=r"platforms\[0\]\.profile_entry: expected the label of an http entry of "
                                          r"the profile .*p\.json \(it has: .*\), got 'nope'"):
        with_profile(tmp_path, "- {name: r, kind: container-service, preset: cloud-run, profile_entry: nope}\n")
    http_profile(tmp_path, start=False)
    text = ("name: one\nprofile: p.json\ntrace: {kind: poisson, rate_rps: 5, duration: 1h}\nplatforms:\n"
            "  - {name: r, kind: container-service, preset: cloud-run, profile_entry: gw}\n")
    with pytest.raises(ConfigError, match=r"platforms\[0\]\.start_s: expected a start time .* for platform 'r': "
                                          r"this key is required \(the profile's http entry 'gw' has no start_s\)"):
        load_scenario(write(tmp_path, text))
    with pytest.raises(ConfigError, match=r"platforms\[0\]\.pod_start_s: expected .*service_ms comes from the "
                                          r"profile's server entry, which has no pod start"):
        with_profile(tmp_path, "- {name: f, kind: k8s-function, autoscaler: {kind: openfaas-rps}, concurrency: 2}\n")
    with pytest.raises(ConfigError, match=r"platforms\[0\]\.service: expected service times for platform 'f': .*"
                                          r"or a server entry of the profile for instance_type=c6i.large, workers=3"):
        with_profile(tmp_path, "- {name: f, kind: k8s-function, autoscaler: {kind: openfaas-rps}, concurrency: 3, "
                               "pod_start_s: 5}\n")


def test_engine_fast_refuses_the_new_kinds(tmp_path):
    text = "name: e\nengine: fast\ntrace: {kind: poisson, rate_rps: 5, duration: 1h}\nplatforms:\n"
    with pytest.raises(ConfigError, match=r"scn\.yaml: engine: expected an engine that models platforms\[0\]"):
        load_scenario(write(tmp_path, text + textwrap.indent(FAAS, "  ")))

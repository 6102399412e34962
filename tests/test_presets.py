"""The packaged platform presets, and user presets files that are wrong."""
from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest
import yaml
from simhelp import delete_key, set_key

from sim.config import ContainerPrices, KnativeKpa, OpenFaasRps
from sim.errors import ConfigError
from sim.presets import PACKAGED_PRESETS, load_presets

PACKAGED = Path(__file__).resolve().parents[1] / "sim" / "data" / PACKAGED_PRESETS
PRESETS = ("fargate", "cloud-run", "gcf2", "azure-consumption", "azure-flex")


@pytest.fixture(scope="module")
def doc():
    return yaml.safe_load(PACKAGED.read_text())


@pytest.fixture(scope="module")
def presets():
    return load_presets()


def test_autoscaler_defaults(presets):
    assert presets.openfaas == OpenFaasRps(threshold_rps=5, rate_window_s=10, for_s=5, eval_interval_s=15,
                                           group_wait_s=5, repeat_interval_s=30, scale_factor_pct=10)
    assert presets.openfaas_replicas == (1, 5)
    assert presets.knative == KnativeKpa(target=100, target_utilization=0.70, stable_window_s=60,
                                         panic_window_pct=10, panic_threshold_pct=200, max_scale_up_rate=1000,
                                         max_scale_down_rate=2, scale_to_zero_grace_s=30, tick_s=2,
                                         scale_to_zero=True)


def test_control_planes(presets):
    assert presets.control_planes == {"eks": 0.10, "none": 0.0}
    assert presets.control_plane_usd_per_hour("eks") == 0.10
    with pytest.raises(ValueError, match="'gke'.*eks, none"):
        presets.control_plane_usd_per_hour("gke")


def test_container_prices(presets):
    assert set(presets.containers) == set(PRESETS)
    fargate = presets.container("fargate").prices()
    assert fargate == ContainerPrices(preset="fargate", usd_per_vcpu_s=0.04048 / 3600,
                                      usd_per_gb_s=0.004445 / 3600, usd_per_request=0.0, billing="instance",
                                      increment_s=1, minimum_s=60, memory_increment_gb=0)
    run = presets.container("cloud-run")
    assert run.default_billing == "request"
    assert run.prices() == run.prices("request") == ContainerPrices(
        preset="cloud-run", usd_per_vcpu_s=0.000024, usd_per_gb_s=0.0000025, usd_per_request=0.0000004,
        billing="request", increment_s=0.1)
    assert run.prices("instance") == ContainerPrices(preset="cloud-run", usd_per_vcpu_s=0.000018,
                                                     usd_per_gb_s=0.000002, usd_per_request=0.0,
                                                     billing="instance", increment_s=0.1)
    gcf2 = presets.container("gcf2").prices()
    assert (gcf2.usd_per_vcpu_s, gcf2.usd_per_gb_s, gcf2.usd_per_request) == (0.000024, 0.0000025, 0.0000004)
    azure = presets.container("azure-consumption").prices()
    assert azure == ContainerPrices(preset="azure-consumption", usd_per_vcpu_s=0.0, usd_per_gb_s=0.000016,
                                    usd_per_request=0.0000002, billing="execution", increment_s=0.001,
                                    minimum_s=0.1, memory_increment_gb=128 / 1024)
    flex = presets.container("azure-flex").prices()
    assert flex == ContainerPrices(preset="azure-flex", usd_per_vcpu_s=0.0, usd_per_gb_s=0.000026,
                                   usd_per_request=0.0000004, billing="request", increment_s=0.1, minimum_s=1.0)


def test_container_defaults_and_overrides(presets):
    run = presets.container("cloud-run")
    assert run.defaults == {"concurrency": 80, "min_instances": 0, "max_instances": 100, "vcpu": 1.0,
                            "memory_gb": 0.5, "scaling_metric": "concurrency", "idle_timeout_s": 900.0}
    assert run.kpa_overrides == {"target_utilization": 0.6, "stable_window_s": 60.0}
    assert presets.container("gcf2").defaults["concurrency"] == 1
    assert presets.container("azure-flex").defaults["concurrency"] == 16
    assert presets.container("fargate").defaults["scaling_metric"] == "cpu"
    assert presets.container("fargate").defaults["idle_timeout_s"] is None
    for name in PRESETS:
        preset = presets.container(name)
        assert set(preset.defaults) == {"concurrency", "min_instances", "max_instances", "vcpu", "memory_gb",
                                        "scaling_metric", "idle_timeout_s"}
        assert set(preset.kpa_overrides) <= {f for f in KnativeKpa.__dataclass_fields__}
        assert preset.assumptions and all(isinstance(s, str) and s.strip() for s in preset.assumptions)
        assert preset.default_billing in preset.billing_modes


def test_unknown_names_list_known(presets):
    with pytest.raises(ValueError, match="'lightsail'.*fargate.*cloud-run"):
        presets.container("lightsail")
    with pytest.raises(ValueError, match="'execution'.*instance"):
        presets.container("fargate").prices("execution")


def test_every_figure_cites_source_and_date(presets):
    rows = presets.sources()
    keys = {r["key"] for r in rows}
    assert "control_planes.eks.usd_per_hour" in keys
    assert "autoscalers.knative-kpa.scale_to_zero" in keys
    assert "container_services.azure-consumption.billing_modes.execution.memory_increment_gb" in keys
    assert "container_services.azure-flex.not_applied.always_ready_baseline_usd_per_gb_s" in keys
    # 6 price figures per billing mode, 6 cited defaults (7 with idle_timeout_s) per preset
    n_modes = sum(len(presets.container(n).billing_modes) for n in PRESETS)
    assert sum(".billing_modes." in k for k in keys) == 6 * n_modes
    for r in rows:
        assert set(r) == {"key", "value", "unit", "source", "date"}
        assert r["source"].strip() and r["unit"].strip()
        assert re.fullmatch(r"\d{4}-\d{2}(-\d{2})?|2026-11-23 compilation", r["date"]), r
    assert len(keys) == len(rows)  # no figure cited twice


def test_user_file_same_as_packaged_and_not_cached(tmp_path, doc, presets):
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(doc))
    mine = load_presets(path)
    assert mine.file == str(path)
    assert (mine.openfaas, mine.knative, mine.control_planes, mine.containers) == (
        presets.openfaas, presets.knative, presets.control_planes, presets.containers)
    changed = copy.deepcopy(doc)
    changed["control_planes"]["eks"]["usd_per_hour"]["value"] = 0.6
    path.write_text(yaml.safe_dump(changed))
    assert load_presets(path).control_plane_usd_per_hour("eks") == 0.6



FARGATE = ["container_services", "fargate"]
FARGATE_PRICES = FARGATE + ["billing_modes", "instance"]
KPA = ["autoscalers", "knative-kpa"]


def _rename_mode(d):
    modes = d["container_services"]["fargate"]["billing_modes"]
    modes["hourly"] = modes.pop("instance")


@pytest.mark.parametrize("mutate, key, expected", [
    (delete_key(KPA + ["tick_s"]), "autoscalers.knative-kpa.tick_s", "key is missing"),
    (delete_key(FARGATE_PRICES + ["minimum_s", "source"]),
     "container_services.fargate.billing_modes.instance.minimum_s.source", "key is missing"),
    (set_key(FARGATE_PRICES + ["usd_per_vcpu_s", "value"], -1.0e-5),
     "container_services.fargate.billing_modes.instance.usd_per_vcpu_s.value", "a number >= 0"),
    (_rename_mode, "container_services.fargate.billing_modes.hourly", "a billing mode: instance, request, execution"),
    (set_key(FARGATE + ["default_billing"], "request"), "container_services.fargate.default_billing",
     "one of this preset's billing modes: instance"),
    (set_key(FARGATE + ["billing_modes"], {}), "container_services.fargate.billing_modes", "at least one billing mode"),
    (set_key(FARGATE + ["defaults", "scaling_metric"], "memory"), "container_services.fargate.defaults.scaling_metric",
     "one of: concurrency, cpu"),
    (set_key(FARGATE + ["defaults", "concurrency", "value"], 2.5),
     "container_services.fargate.defaults.concurrency.value", "a whole number"),
    (set_key(FARGATE + ["defaults", "max_instances", "value"], 0),
     "container_services.fargate.defaults.max_instances.value", "a positive number"),
    (set_key(FARGATE + ["defaults", "cpu"], 1), "container_services.fargate.defaults.cpu", "did you mean 'vcpu'?"),
    (set_key(FARGATE + ["kpa"], {"window_s": 60}), "container_services.fargate.kpa.window_s", "a known key"),
    (set_key(["container_services", "cloud-run", "kpa", "target_utilization", "value"], 60),
     "container_services.cloud-run.kpa.target_utilization.value", "a fraction in (0, 1]"),
    (set_key(FARGATE + ["assumptions"], "none"), "container_services.fargate.assumptions", "a list of sentences"),
    (set_key(KPA + ["scale_to_zero", "value"], "yes"), "autoscalers.knative-kpa.scale_to_zero.value", "true or false"),
    (set_key(KPA + ["max_scale_down_rate", "value"], 1), "autoscalers.knative-kpa.max_scale_down_rate.value",
     "a ratio greater than 1"),
    (set_key(["autoscalers", "openfaas-rps", "min_replicas", "value"], 9),
     "autoscalers.openfaas-rps.max_replicas.value", "at least min_replicas (9)"),
    (set_key(["autoscalers", "openfaas-rps", "threshold_rps", "value"], 0),
     "autoscalers.openfaas-rps.threshold_rps.value", "a positive number"),
    (set_key(["control_planes", "none"], 0.1), "control_planes.none", "or 0 for a free control plane"),
    (delete_key(["control_planes", "eks", "usd_per_hour", "date"]), "control_planes.eks.usd_per_hour.date",
     "key is missing"),
    (set_key(["schema"], "servesim.presets/2"), "schema", "'servesim.presets/1'"),
    (delete_key(["autoscalers"]), "autoscalers", "key is missing"),
])
def test_bad_presets_file(tmp_path, doc, mutate, key, expected):
    bad = copy.deepcopy(doc)
    mutate(bad)
    path = tmp_path / "bad-presets.yaml"
    path.write_text(yaml.safe_dump(bad))
    with pytest.raises(ConfigError) as err:
        load_presets(path)
    msg = str(err.value)
    assert (err.value.source, err.value.key) == (str(path), key), msg
    assert msg.startswith(f"{path}: {key}: expected"), msg
    assert expected in msg, msg


def test_not_yaml_or_missing(tmp_path):
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError, match=re.escape(str(missing))):
        load_presets(missing)
    broken = tmp_path / "broken.yaml"
    broken.write_text("schema: [unclosed\n")
    with pytest.raises(ConfigError, match="valid YAML"):
        load_presets(broken)

"""Platform presets: control-plane fees, autoscaler defaults and container-service prices.

The packaged file `sim/data/platform-presets.yaml` (``schema: servesim.presets/1``) holds, each
with its unit, source and as-of date: the Kubernetes control-plane fee (`control_planes`), the
defaults of OpenFaaS CE's alert-based scaling and of Knative's KPA (`autoscalers`), and one
preset per container service (`container_services`: Fargate, Cloud Run, Cloud Run functions /
GCF 2nd gen, Azure Functions Consumption and Flex Consumption) with its billing modes, defaults,
KPA overrides and stated assumptions. A user can pass their own file of the same schema. Every
value is validated on load; a mistake raises `ConfigError` naming the file, the key path and
what was expected. Figures live only in the data file, never here.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Mapping

from .config import (BILLING_MODES, CONTAINER_SCALING_METRICS, ContainerPrices, KnativeKpa,
                     OpenFaasRps)
from .errors import check_keys
from .pricing import Citation, _Reader, citation_rows, read_data_file

SCHEMA = "servesim.presets/1"
PACKAGED_PRESETS = "platform-presets.yaml"

_OPENFAAS_FIELDS = tuple(f.name for f in fields(OpenFaasRps))
_KPA_FIELDS = tuple(f.name for f in fields(KnativeKpa))
_PRICE_FIELDS = ("usd_per_vcpu_s", "usd_per_gb_s", "usd_per_request", "increment_s", "minimum_s",
                 "memory_increment_gb")
_INT_DEFAULTS = ("concurrency", "min_instances", "max_instances")
_DEFAULT_KEYS = _INT_DEFAULTS + ("vcpu", "memory_gb", "scaling_metric", "idle_timeout_s")
_NOT_APPLIED = "not_applied"


@dataclass(frozen=True)
class ContainerPreset:
    """One container-service preset (`container_services.<name>` of the presets file).

    billing_modes: billing mode (instance, request, execution) -> its prices; default_billing:
    the mode used when the scenario names none. defaults: concurrency, min_instances,
    max_instances, vcpu, memory_gb, scaling_metric (concurrency|cpu), idle_timeout_s (s, None:
    the autoscaler decides). kpa_overrides: fields of `KnativeKpa` that differ from the Knative
    defaults for this service's concurrency scaling. assumptions: plain sentences with sources.
    """

    name: str
    default_billing: str
    billing_modes: Mapping[str, ContainerPrices]
    defaults: Mapping[str, Any]
    kpa_overrides: Mapping[str, Any]
    assumptions: tuple[str, ...]

    def prices(self, billing: str | None = None) -> ContainerPrices:
        """Prices of billing mode `billing` (None: the default); ValueError listing the modes."""
        mode = self.default_billing if billing is None else billing
        try:
            return self.billing_modes[mode]
        except KeyError:
            raise ValueError(f"billing mode {mode!r} is not offered by preset {self.name!r}; "
                             f"expected one of: {', '.join(self.billing_modes)}") from None


@dataclass(frozen=True)
class Presets:
    """Everything in one presets file. `file` is where it was read from."""

    file: str
    openfaas: OpenFaasRps
    openfaas_replicas: tuple[int, int]
    """Default (min_replicas, max_replicas) of an OpenFaaS function."""
    knative: KnativeKpa
    control_planes: Mapping[str, float]
    """Control plane name -> USD per hour."""
    containers: Mapping[str, ContainerPreset]
    citations: tuple[Citation, ...]

    def container(self, name: str) -> ContainerPreset:
        """The container preset `name`; ValueError listing the known presets."""
        try:
            return self.containers[name]
        except KeyError:
            raise ValueError(f"unknown container preset {name!r}; expected one of: "
                             f"{', '.join(self.containers)}") from None

    def control_plane_usd_per_hour(self, name: str) -> float:
        """Fee of control plane `name` (USD per hour); ValueError listing the known ones."""
        try:
            return self.control_planes[name]
        except KeyError:
            raise ValueError(f"unknown control plane {name!r}; expected one of: "
                             f"{', '.join(self.control_planes)}") from None

    def sources(self) -> list[dict[str, Any]]:
        """One row per figure: key, value, unit, source, date (loads straight into pandas)."""
        return citation_rows(self.citations)


def load_presets(path: str | Path | None = None) -> Presets:
    """Read and validate a presets file; None reads the packaged one. Not cached."""
    source, doc = read_data_file(path, PACKAGED_PRESETS, "presets file (YAML)")
    return _PresetReader(source).presets(doc)


class _PresetReader(_Reader):
    """Validates one parsed presets file, collecting citations (helpers from sim.pricing)."""

    def keys(self, obj: Mapping[str, Any], allowed, key: str) -> None:
        check_keys(obj, allowed, source=self.source, key=key)

    def flag(self, parent: Mapping[str, Any], name: str, key: str) -> bool:
        """A {value: true|false, unit, source, date} record; cited as 1.0 / 0.0."""
        path = f"{key}.{name}"
        rec = self.mapping(self.get(parent, name, key), path)
        value = self.get(rec, "value", path)
        if not isinstance(value, bool):
            raise self.fail(f"{path}.value", "true or false", value)
        unit = self.string(self.get(rec, "unit", path), f"{path}.unit")
        src = self.string(self.get(rec, "source", path), f"{path}.source")
        date = self.string(self.get(rec, "date", path), f"{path}.date")
        self.citations.append(Citation(path, float(value), unit, src, date))
        return value

    def whole(self, parent: Mapping[str, Any], name: str, key: str, *, positive: bool) -> int:
        value = self.quantity(parent, name, key, positive=positive)
        if value != int(value):
            raise self.fail(f"{key}.{name}.value", "a whole number", value)
        return int(value)

    def not_applied(self, parent: Mapping[str, Any], key: str) -> None:
        """Figures recorded for reference only (free grants, unmodelled prices): cited, not used."""
        if _NOT_APPLIED in parent:
            path = f"{key}.{_NOT_APPLIED}"
            for name in self.mapping(parent[_NOT_APPLIED], path):
                self.quantity(parent[_NOT_APPLIED], str(name), path)

    def presets(self, doc: Any) -> Presets:
        doc = self.mapping(doc, "")
        schema = doc.get("schema")
        if schema != SCHEMA:
            raise self.fail("schema", repr(SCHEMA), schema)
        self.keys(doc, ("schema", "control_planes", "autoscalers", "container_services"), "")
        control_planes = self.control_planes(self.mapping(self.get(doc, "control_planes", ""), "control_planes"))
        autoscalers = self.mapping(self.get(doc, "autoscalers", ""), "autoscalers")
        self.keys(autoscalers, ("openfaas-rps", "knative-kpa"), "autoscalers")
        openfaas, replicas = self.openfaas(autoscalers)
        knative = self.knative(autoscalers)
        services = self.mapping(self.get(doc, "container_services", ""), "container_services")
        containers = {str(name): self.container(str(name), spec) for name, spec in services.items()}
        return Presets(file=self.source, openfaas=openfaas, openfaas_replicas=replicas, knative=knative,
                       control_planes=control_planes, containers=containers, citations=tuple(self.citations))

    def control_planes(self, planes: Mapping[str, Any]) -> dict[str, float]:
        out = {}
        for name, spec in planes.items():
            key = f"control_planes.{name}"
            if spec == 0 and not isinstance(spec, bool):
                out[str(name)] = 0.0
                continue
            if not isinstance(spec, Mapping):
                raise self.fail(key, "a mapping with usd_per_hour, or 0 for a free control plane", spec)
            self.keys(spec, ("usd_per_hour", _NOT_APPLIED), key)
            out[str(name)] = self.quantity(spec, "usd_per_hour", key)
            self.not_applied(spec, key)
        return out

    def openfaas(self, autoscalers: Mapping[str, Any]) -> tuple[OpenFaasRps, tuple[int, int]]:
        key = "autoscalers.openfaas-rps"
        spec = self.mapping(self.get(autoscalers, "openfaas-rps", "autoscalers"), key)
        self.keys(spec, _OPENFAAS_FIELDS + ("min_replicas", "max_replicas", _NOT_APPLIED), key)
        positive = {"threshold_rps", "rate_window_s", "eval_interval_s", "repeat_interval_s", "scale_factor_pct"}
        values = {name: self.quantity(spec, name, key, positive=name in positive) for name in _OPENFAAS_FIELDS}
        low = self.whole(spec, "min_replicas", key, positive=True)
        high = self.whole(spec, "max_replicas", key, positive=True)
        if high < low:
            raise self.fail(f"{key}.max_replicas.value", f"at least min_replicas ({low})", high)
        self.not_applied(spec, key)
        return OpenFaasRps(**values), (low, high)

    def kpa_value(self, spec: Mapping[str, Any], name: str, key: str) -> Any:
        if name == "scale_to_zero":
            return self.flag(spec, name, key)
        value = self.quantity(spec, name, key, positive=name != "scale_to_zero_grace_s")
        if name in ("max_scale_up_rate", "max_scale_down_rate") and value <= 1:
            raise self.fail(f"{key}.{name}.value", "a ratio greater than 1", value)
        if name == "target_utilization" and value > 1:
            raise self.fail(f"{key}.{name}.value", "a fraction in (0, 1]", value)
        return value

    def knative(self, autoscalers: Mapping[str, Any]) -> KnativeKpa:
        key = "autoscalers.knative-kpa"
        spec = self.mapping(self.get(autoscalers, "knative-kpa", "autoscalers"), key)
        self.keys(spec, _KPA_FIELDS, key)
        return KnativeKpa(**{name: self.kpa_value(spec, name, key) for name in _KPA_FIELDS})

    def container(self, name: str, spec: Any) -> ContainerPreset:
        key = f"container_services.{name}"
        spec = self.mapping(spec, key)
        self.keys(spec, ("default_billing", "billing_modes", "defaults", "kpa", "assumptions", _NOT_APPLIED), key)
        modes = self.mapping(self.get(spec, "billing_modes", key), f"{key}.billing_modes")
        if not modes:
            raise self.fail(f"{key}.billing_modes", f"at least one billing mode ({', '.join(BILLING_MODES)})", modes)
        billing_modes = {}
        for mode, prices in modes.items():
            mkey = f"{key}.billing_modes.{mode}"
            if mode not in BILLING_MODES:
                raise self.fail(mkey, f"a billing mode: {', '.join(BILLING_MODES)}", mode)
            prices = self.mapping(prices, mkey)
            self.keys(prices, _PRICE_FIELDS, mkey)
            values = {f: self.quantity(prices, f, mkey) for f in _PRICE_FIELDS}
            billing_modes[mode] = ContainerPrices(preset=name, billing=mode, **values)
        default = self.get(spec, "default_billing", key)
        if default not in billing_modes:
            raise self.fail(f"{key}.default_billing", f"one of this preset's billing modes: {', '.join(billing_modes)}",
                            default)
        defaults = self.defaults(self.mapping(self.get(spec, "defaults", key), f"{key}.defaults"), f"{key}.defaults")
        kpa = {}
        if "kpa" in spec:
            kkey = f"{key}.kpa"
            overrides = self.mapping(spec["kpa"], kkey)
            self.keys(overrides, _KPA_FIELDS, kkey)
            kpa = {f: self.kpa_value(overrides, f, kkey) for f in overrides}
        assumptions = self.get(spec, "assumptions", key)
        if not isinstance(assumptions, list):
            raise self.fail(f"{key}.assumptions", "a list of sentences", assumptions)
        sentences = tuple(self.string(s, f"{key}.assumptions[{i}]") for i, s in enumerate(assumptions))
        self.not_applied(spec, key)
        return ContainerPreset(name=name, default_billing=default, billing_modes=billing_modes, defaults=defaults,
                               kpa_overrides=kpa, assumptions=sentences)

    def defaults(self, spec: Mapping[str, Any], key: str) -> dict[str, Any]:
        self.keys(spec, _DEFAULT_KEYS, key)
        out: dict[str, Any] = {}
        for name in _INT_DEFAULTS:
            out[name] = self.whole(spec, name, key, positive=name != "min_instances")
        if out["max_instances"] < max(out["min_instances"], 1):
            raise self.fail(f"{key}.max_instances.value", "at least min_instances and 1", out["max_instances"])
        out["vcpu"] = self.quantity(spec, "vcpu", key, positive=True)
        out["memory_gb"] = self.quantity(spec, "memory_gb", key, positive=True)
        metric = self.get(spec, "scaling_metric", key)
        if metric not in CONTAINER_SCALING_METRICS:
            raise self.fail(f"{key}.scaling_metric", f"one of: {', '.join(CONTAINER_SCALING_METRICS)}", metric)
        out["scaling_metric"] = metric
        idle = self.get(spec, "idle_timeout_s", key)
        out["idle_timeout_s"] = None if idle is None else self.quantity(spec, "idle_timeout_s", key, positive=True)
        return out

"""Scenario files (YAML) → a validated, frozen `Scenario`: the one place that reads them.

A scenario says what to simulate: a trace, the platforms to compare, and where their service
times come from (inline ``service:`` distributions, or a calibration profile). See DESIGN.md,
"Scenario", for the format. Top-level keys::

    name: mobilenet-4h          # required
    seed: 7                     # int >= 0, default 0
    warmup_s: 10m               # simulated but not reported; default 0
    engine: auto                # auto | simpy
    trace: {kind: poisson, rate_rps: 50, duration: 4h}     # required (traces.spec)
    profile: ../profiles/mobilenetv2.json                  # relative to this file
    pricing: my-prices.yaml                                # relative to this file
    presets: my-presets.yaml    # platform presets (sim.presets), relative to this file; default
                                # the packaged sim/data/platform-presets.yaml; read only when a
                                # platform is a k8s-function or a container-service
    platforms: [ ... ]          # required, non-empty, unique names
    sweep: { ... }              # kept as given (a mapping)

Each platform has ``kind: lambda``, ``ec2``, ``k8s-function`` or ``container-service`` and the
fields of `sim.config.LambdaConfig`, `EC2Config`, `K8sFunctionConfig` or `ContainerServiceConfig`
(EC2 auto scaling: ``autoscaling: {min, max, target, metric,
metric_period_s, scale_out_periods, scale_in_periods, scale_in_ratio, cooldown_s, boot_s,
initial}``); a Lambda platform may also have ``cold_init_scale``, a factor > 0 on its cold
start's INIT duration, measured or inline (the what-if "cold starts twice as long"). Omitted
fields take the dataclass defaults. Service times: each key of an inline
``service:`` wins (a distribution spec, or ``trace`` for the trace's own durations: Azure
traces with durations); missing ones come from the profile entry with the same memory_mb and
architecture (Lambda) or instance_type and ``workers == workers_per_instance`` (EC2). That EC2
entry's ``boot_s`` is the default ``autoscaling.boot_s``. The idle effect
(``service: {idle_effect: {hot_ratio, tau_ms}}``, `sim.config.IdleEffect`) goes with warm_ms or
service_ms: inline beside an inline one (none if not given), else the profile entry's. With autoscaling, ``instances`` (or
``autoscaling.initial``) is the initial fleet size, by default ``min``.

**Host share** (``host``, lambda and ec2, `sim.config.HostShare`): concurrent work sharing one
host's CPUs. ``host: {cores: 1.7, init_cores: 1, work_cores: 1, work_contention: 0.25}`` inline
(init_cores and work_cores default to 1, work_contention, the stretch each other job in progress
adds to an invocation, to 0), or ``host: profile``: the one measured in the profile entry the
service times come from (``host_share``, fitted from bursts of simultaneous requests on a local
target; an error if that entry has none). The default (absent, ``host: none`` or ``null``) is no sharing:
on AWS every Lambda environment has its own CPU share (memory / 1769 vCPU), and an EC2 worker
has a CPU of its own; sharing is what the local targets on a small machine show, and an
instance running more busy workers than it has vCPUs. A Lambda host may also be cold:
``init_idle_s: 30, init_idle_factor: 1.3`` (both or neither) make a lone INIT that starts
after 30 s without one take 1.3 times as long, the extra 0.3 a page-in without cores that the
INITs starting during it wait for too (see `HostShare`); an ec2 platform's host refuses them
(EC2 runs no INIT on its host). Sweepable like any key
(``lambda.host: [none, profile]``, ``platforms.lambda-2g.host.cores: [1, 2, 4]``). A Lambda host
may have a way in, ``way_in_ms: 1.3, way_in_pressure: 3`` (the local gateway's work for each
request before its environment runs it, pressing on running invocations; see `HostShare`);
an ec2 platform's host refuses it.

**k8s-function** (OpenFaaS or Knative on a Kubernetes cluster, `K8sFunctionConfig`)::

    - name: openfaas
      kind: k8s-function
      autoscaler: {kind: openfaas-rps, threshold_rps: 5}   # required: openfaas-rps | knative-kpa,
                                  # with any field of OpenFaasRps / KnativeKpa overriding the presets'
      min_replicas: 1             # openfaas-rps: presets' openfaas_replicas min (>= 1: OpenFaaS CE
      max_replicas: 20            #   never scales to zero) and max; knative-kpa: min 0 (scale to
                                  #   zero; 1 with autoscaler.scale_to_zero: false), max 20
                                  #   (Knative's own default is unbounded); with `nodes`, the
                                  #   default max is at most nodes * pods_per_node
      concurrency: 1              # requests a pod serves at once
      pod_start_s: 8              # seconds or a distribution in seconds (like EC2's boot_s)
      node_instance_type: c6i.large
      pods_per_node: 2
      nodes: 3                    # optional fixed pool; must hold max_replicas pods
      control_plane: eks          # a control plane of the presets (eks | none): its hourly fee
      queue_limit: 10000
      request_timeout_s: 60
      service: {service_ms: {dist: ...}}
      profile_entry: openfaas-gw  # an http entry of the profile (a black-box calibration)

With a knative-kpa autoscaler ``scale_to_zero`` follows ``min_replicas`` (0: scale to zero); an
explicit ``autoscaler.scale_to_zero`` that contradicts it is an error.

**container-service** (Fargate, Cloud Run, and other clouds' functions through their presets,
`ContainerServiceConfig`)::

    - name: cloud-run
      kind: container-service
      preset: cloud-run           # required: a container preset of the presets file
      billing: instance           # instance | request | execution; default the preset's, must be
                                  # one of its billing modes
      concurrency: 80             # these five default to the preset's `defaults`
      min_instances: 0
      max_instances: 100
      vcpu: 1
      memory_gb: 2
      scaling: {metric: concurrency, target: 80, idle_timeout_s: 15m}
      start_s: {dist: lognorm, s: 0.3, scale: 4}     # the instance start (cold start)
      queue_limit: 10000
      request_timeout_s: 300
      service: {service_ms: {dist: ...}}
      profile_entry: cloud-run-gw

``scaling.metric`` (default: the preset's ``scaling_metric``):

- ``concurrency``: the Knative autoscaler (the presets' knative-kpa with the preset's
  ``kpa_overrides``). ``target`` is the number of concurrent requests per instance the
  autoscaler is built around, from 1 to ``concurrency`` (default: ``concurrency``, the
  instance's limit, as Knative's target defaults to containerConcurrency); it aims at ``target *
  target_utilization`` requests in flight per instance, ``target_utilization`` coming from the
  preset (Cloud Run keeps instances at about 60 % of their concurrency). Any other KPA field
  (``target_utilization``, ``stable_window_s``, ``panic_window_pct``, ``panic_threshold_pct``,
  ``max_scale_up_rate``, ``max_scale_down_rate``, ``scale_to_zero_grace_s``, ``tick_s``) may be
  set; scale to zero when ``min_instances`` is 0.
- ``cpu``: target tracking on the busy-slot fraction, as EC2's auto scaling (``target`` in
  (0, 1], required; ``metric_period_s``, ``scale_out_periods``, ``scale_in_periods``,
  ``scale_in_ratio``, ``cooldown_s`` as there), between min_instances (>= 1: CPU cannot scale
  from zero) and max_instances, a new instance serving after ``start_s``.

``idle_timeout_s`` (default: the preset's; ``null``: none, the autoscaler alone decides): an idle
instance above min_instances stops after it.

Service times of both new kinds: an inline ``service: {service_ms}`` wins; else ``profile_entry``
names an http entry of the profile (`sim.profile.Profile.http_entry`), which gives service_ms
and the start time (``pod_start_s`` / ``start_s``; an inline one wins); else (k8s-function
only) service_ms comes from the profile's server entry for ``node_instance_type`` and ``workers
== concurrency``, and pod_start_s must be given inline.

Every key is checked (an unknown one names its path and the closest valid key), every value is
type- and range-checked, and a mistake is a `ConfigError` naming the file and the key path.
Loading has no side effects: it reads the scenario, the profile, the presets and the trace
file's header, and writes nothing.
"""
from __future__ import annotations

import copy
import dataclasses
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import yaml

from sim.config import (
    ARCHITECTURES,
    BILLING_MODES,
    CONTAINER_SCALING_METRICS,
    LOAD_BALANCERS,
    REUSE_POLICIES,
    SCALING_METRICS,
    AutoscalingConfig,
    ContainerScaling,
    ContainerServiceConfig,
    EC2Config,
    EC2Service,
    K8sFunctionConfig,
    LambdaConfig,
    LambdaService,
    PlatformConfig,
    PodService,
)
from sim.dists import Constant, Distribution, parse_dist
from sim.errors import ConfigError, check_keys, read_user_file
from sim.profile import Profile, load_profile, parse_host_share, parse_idle_effect
from sim.run import ENGINES
from sim.units import parse_duration_s
from traces.base import ArrivalSource
from traces.spec import parse_trace

__all__ = ["Scenario", "load_scenario", "scenario_from_dict", "ENGINES", "PLATFORM_KINDS"]

PLATFORM_KINDS = ("lambda", "ec2", "k8s-function", "container-service")
AUTOSCALER_KINDS = ("openfaas-rps", "knative-kpa")
"""The ``autoscaler.kind`` of a k8s-function: OpenFaaS's requests-per-second alert, Knative's KPA."""
KNATIVE_MAX_REPLICAS = 20
"""Default max_replicas of a knative-kpa k8s-function (Knative's own default is unbounded; 20 keeps
a runaway scale-out finite and matches OpenFaaS's default maximum)."""
FROM_TRACE = "trace"
"""A service time given as `trace` is the trace's own duration distribution (Azure traces)."""
_TOP_KEYS = ("name", "seed", "warmup_s", "engine", "trace", "profile", "platforms", "sweep", "pricing", "presets")


@dataclass(frozen=True)
class Scenario:
    """What to simulate, validated. Build it with `load_scenario` or `scenario_from_dict`."""

    name: str
    path: Path | None
    """The scenario file it came from (absolute), None when built from a mapping."""
    seed: int
    warmup_s: float
    """Simulated time at the start excluded from every reported figure (s)."""
    engine: str
    """'auto', 'simpy' or 'fast' (see sim.run.resolve_engine)."""
    trace: ArrivalSource
    platforms: tuple[PlatformConfig, ...]
    pricing_path: Path | None
    """A user's pricing file (absolute), or None for the shipped prices."""
    sweep: Mapping | None
    """The ``sweep:`` mapping as given (checked only to be a mapping)."""
    raw: Mapping
    """The parsed YAML, to save the resolved configuration next to the results."""
    presets_path: Path | None = None
    """A user's platform presets file (absolute), or None for the packaged presets."""


# -- YAML ------------------------------------------------------------------------------------------

class _Loader(yaml.SafeLoader):
    """SafeLoader that refuses repeated keys (PyYAML keeps the last one silently) and reads
    ``1e3`` as a number (YAML 1.1 wants ``1.0e+3``)."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen = set()
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue  # '<<: *anchor' merges; its keys may be overridden
                key = self.construct_object(key_node, deep=True)
                try:
                    repeated = key in seen
                except TypeError:
                    continue  # unhashable: SafeLoader reports it
                if repeated:
                    raise yaml.constructor.ConstructorError(
                        "while constructing a mapping", node.start_mark, f"found repeated key {key!r}",
                        key_node.start_mark)
                seen.add(key)
        return super().construct_mapping(node, deep=deep)


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"))


def _read_yaml(path: Path, source: str) -> Any:
    text = read_user_file(path, "scenario file (YAML)")
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 (a SafeLoader subclass)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(source, where, f"valid YAML ({problem})") from None


# -- values ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Ctx:
    source: str | None
    base_dir: Path
    trace: ArrivalSource | None = None

    def resolve(self, value: Any, key: str, what: str) -> Path:
        """An existing file named relative to the scenario's folder."""
        if not isinstance(value, str) or not value:
            raise ConfigError(self.source, key, f"the path of {what}", value)
        path = Path(value).expanduser()
        if not path.is_absolute():
            path = self.base_dir / path
        if not path.is_file():
            raise ConfigError(self.source, key, f"an existing file: {what} (paths are relative to the scenario file)",
                              str(path))
        return path


_Parse = Callable[[Any, _Ctx, str], Any]


def _int(lo: int, hi: int | None = None) -> _Parse:
    expected = f"an integer >= {lo}" if hi is None else f"an integer from {lo} to {hi}"

    def parse(v: Any, ctx: _Ctx, key: str) -> int:
        if isinstance(v, bool) or not isinstance(v, int) or v < lo or (hi is not None and v > hi):
            raise ConfigError(ctx.source, key, expected, v)
        return v
    return parse


def _number(lo: float, *, strict: bool = False, hi: float | None = None) -> _Parse:
    expected = f"a number {'>' if strict else '>='} {lo:g}" + (f" and <= {hi:g}" if hi is not None else "")

    def parse(v: Any, ctx: _Ctx, key: str) -> float:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) \
                or v < lo or (strict and v == lo) or (hi is not None and v > hi):
            raise ConfigError(ctx.source, key, expected, v)
        return float(v)
    return parse


def _choice(options: tuple[str, ...]) -> _Parse:
    def parse(v: Any, ctx: _Ctx, key: str) -> str:
        if not isinstance(v, str) or v not in options:
            raise ConfigError(ctx.source, key, f"one of {', '.join(options)}", v)
        return v
    return parse


def _bool(v: Any, ctx: _Ctx, key: str) -> bool:
    if not isinstance(v, bool):
        raise ConfigError(ctx.source, key, "true or false", v)
    return v


def _text(v: Any, ctx: _Ctx, key: str) -> str:
    if not isinstance(v, str) or not v.strip():
        raise ConfigError(ctx.source, key, "a non-empty string", v)
    return v


def _duration(lo: float = 0.0, hi: float | None = None, *, strict: bool = False) -> _Parse:
    def parse(v: Any, ctx: _Ctx, key: str) -> float:
        s = parse_duration_s(v, source=ctx.source, key=key, allow_zero=not strict)
        if s < lo or (hi is not None and s > hi):
            span = f"from {lo:g} s to {hi:g} s" if hi is not None else f">= {lo:g} s"
            raise ConfigError(ctx.source, key, f"a duration {span}", v)
        return s
    return parse


def _dist(v: Any, ctx: _Ctx, key: str) -> Distribution:
    if v == FROM_TRACE:
        durations = getattr(ctx.trace, "duration_distribution", None)
        if durations is None:
            raise ConfigError(ctx.source, key, "a distribution ('trace' takes the durations of a trace that has "
                              "them: azure2019 with durations, azure2021)", v)
        return durations()
    return parse_dist(v, source=ctx.source, key=key, base_dir=ctx.base_dir)


def _seconds_or_dist(v: Any, ctx: _Ctx, key: str) -> float | Distribution:
    """A duration (``360``, ``'6m'``) or a distribution in seconds (``{dist: expon, mean: 300}``)."""
    if isinstance(v, Mapping):
        return _dist(v, ctx, key)
    if isinstance(v, (int, float, str)) and not isinstance(v, bool):
        return parse_duration_s(v, source=ctx.source, key=key)
    raise ConfigError(ctx.source, key, "a duration (seconds, or '6m') or a distribution {dist: ...} in seconds", v)


def _dist_s(v: Any, ctx: _Ctx, key: str) -> Distribution:
    """A distribution in seconds; a plain duration is a constant."""
    s = _seconds_or_dist(v, ctx, key)
    return s if isinstance(s, Distribution) else Constant(s)


def _defaults(cls: type) -> dict[str, Any]:
    """The dataclass defaults of `cls` (the one place the default values live)."""
    out = {}
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            out[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            out[f.name] = f.default_factory()
    return out


def _read(data: Mapping, parsers: Mapping[str, _Parse], ctx: _Ctx, key: str,
          rename: Mapping[str, str] = {}) -> dict[str, Any]:
    """Parse the keys of `data` that `parsers` knows; rename YAML keys to dataclass fields."""
    return {rename.get(k, k): parse(data[k], ctx, f"{key}.{k}") for k, parse in parsers.items() if k in data}


def _mapping(v: Any, ctx: _Ctx, key: str, example: str) -> Mapping:
    if not isinstance(v, Mapping):
        raise ConfigError(ctx.source, key, f"a mapping such as {example}", v)
    return v


# -- platforms -------------------------------------------------------------------------------------

_LAMBDA: dict[str, _Parse] = {
    "memory_mb": _int(128, 10240),
    "architecture": _choice(ARCHITECTURES),
    "keep_alive_s": _seconds_or_dist,
    "reuse": _choice(REUSE_POLICIES),
    "concurrency_limit": _int(1),
    "scale_burst": _int(1),
    "scale_refill_per_s": _number(0, strict=True),
    "provisioned_concurrency": _int(0),
    "init_billed": _bool,
    "timeout_s": _duration(1, 900),
    "allow_extrapolation": _bool,
}
_LAMBDA_SERVICE = ("warm_ms", "cold_init_ms")

_EC2: dict[str, _Parse] = {
    "instance_type": _text,
    "instances": _int(1),
    "workers_per_instance": _int(1),
    "load_balancer": _choice(LOAD_BALANCERS),
    "queue_limit": _int(0),
    "request_timeout_s": _duration(strict=True),
    "load_balancer_billed": _bool,
    "request_kb": _number(0),
    "response_kb": _number(0),
}
_EC2_SERVICE = ("service_ms",)

_AUTOSCALING: dict[str, _Parse] = {
    "min": _int(1),
    "max": _int(1),
    "initial": _int(1),
    "target": _number(0, strict=True),
    "metric": _choice(SCALING_METRICS),
    "metric_period_s": _duration(strict=True),
    "scale_out_periods": _int(1),
    "scale_in_periods": _int(1),
    "scale_in_ratio": _number(0, strict=True, hi=1),
    "cooldown_s": _duration(),
    "boot_s": _dist_s,
}
_AUTOSCALING_FIELDS = {"min": "min_instances", "max": "max_instances", "initial": "initial_instances"}


class _ProfileRef:
    """The scenario's profile, loaded once when given (None when the scenario has none)."""

    def __init__(self, data: Mapping, ctx: _Ctx):
        self.profile: Profile | None = None
        if "profile" in data:
            self.profile = load_profile(ctx.resolve(data["profile"], "profile", "a calibration profile (JSON)"))

    def missing(self, ctx: _Ctx, key: str, name: str, wanted: str, keys: tuple[str, ...]) -> ConfigError:
        inline = "service: {" + ", ".join(f"{k}: {{dist: ...}}" for k in keys) + "}"
        if self.profile is None:
            return ConfigError(ctx.source, key, f"service times for platform '{name}': an inline {inline}, "
                               "or a top-level 'profile:' with an entry for it")
        return ConfigError(ctx.source, key, f"an entry for {wanted} in the profile {self.profile.path} for platform "
                           f"'{name}' (it has: {self.profile.describe_entries()}), or an inline {inline}")


def _service(p: Mapping, ctx: _Ctx, key: str, keys: tuple[str, ...], entry: Any,
             profile: _ProfileRef, name: str, wanted: str) -> dict[str, Any]:
    """Service distributions: inline keys win, the rest come from the profile `entry`. The idle
    effect (``idle``) goes with the first key (warm_ms, service_ms), which it modifies: inline
    beside an inline one (or none), else the profile entry's."""
    inline: Mapping = {}
    if "service" in p:
        inline = _mapping(p["service"], ctx, f"{key}.service", "{" + ", ".join(f"{k}: {{...}}" for k in keys) + "}")
        check_keys(inline, (*keys, "idle_effect"), source=ctx.source, key=f"{key}.service")
    out: dict[str, Any] = {k: _dist(inline[k], ctx, f"{key}.service.{k}") for k in keys if k in inline}
    if "idle_effect" in inline and keys[0] not in inline:
        raise ConfigError(ctx.source, f"{key}.service.idle_effect",
                          f"an inline {keys[0]} beside it (the idle effect modifies {keys[0]})")
    if len(out) < len(keys):
        if entry is None:
            raise profile.missing(ctx, key, name, wanted, keys)
        out.update({k: getattr(entry, k) for k in keys if k not in out})
    if keys[0] in inline:
        out["idle"] = (parse_idle_effect(inline["idle_effect"], ctx.source, f"{key}.service.idle_effect")[0]
                       if "idle_effect" in inline else None)
    else:
        out["idle"] = entry.idle
    return out


def _host(p: Mapping, ctx: _Ctx, key: str, entry: Any, profile: _ProfileRef, wanted: str):
    """The platform's ``host`` (see the module docstring): None, inline, or the profile entry's."""
    v = p.get("host")
    if v is None or v == "none":
        return None
    if v == "profile":
        if entry is None:
            where = (f"the profile {profile.profile.path} has no entry for {wanted}" if profile.profile is not None
                     else "the scenario has no profile")
            raise ConfigError(ctx.source, f"{key}.host", f"'profile' only when the service times come from a profile "
                              f"entry ({where}); or an inline {{cores: ..., init_cores: 1, work_cores: 1}}", v)
        if entry.host is None:
            reason = (entry.fit.get("host_share") or {}).get("reason")
            why = (f"its host share was not identified: {reason}" if reason else
                   "it has no host_share (calibrate a local target with bursts: --bursts > 0)")
            raise ConfigError(ctx.source, f"{key}.host", f"a profile entry with a measured host share, but the "
                              f"entry for {wanted} in {profile.profile.path} has none ({why}); or an inline "
                              "{cores: ..., init_cores: 1, work_cores: 1}", v)
        return entry.host
    if isinstance(v, str):
        raise ConfigError(ctx.source, f"{key}.host", "'profile', 'none' (or null), or a mapping such as {cores: 1.7, "
                          "init_cores: 1, work_cores: 1}", v)
    return parse_host_share(v, ctx.source, f"{key}.host", allow_null=False, allow_fit=False)[0]


def _name(p: Mapping, ctx: _Ctx, key: str) -> str:
    if "name" not in p:
        raise ConfigError(ctx.source, f"{key}.name", "a platform name (this key is required)")
    name = _text(p["name"], ctx, f"{key}.name")
    if "." in name:
        raise ConfigError(ctx.source, f"{key}.name", "a name without '.' (sweep keys are 'platform.key')", name)
    return name


def _lambda(p: Mapping, ctx: _Ctx, key: str, profile: _ProfileRef) -> LambdaConfig:
    check_keys(p, ("name", "kind", *_LAMBDA, "service", "cold_init_scale", "host"), source=ctx.source, key=key)
    name = _name(p, ctx, key)
    kw = {**_defaults(LambdaConfig), **_read(p, _LAMBDA, ctx, key)}
    if kw["provisioned_concurrency"] > kw["concurrency_limit"]:
        raise ConfigError(ctx.source, f"{key}.provisioned_concurrency",
                          f"at most concurrency_limit ({kw['concurrency_limit']})", kw["provisioned_concurrency"])
    memory, arch = kw["memory_mb"], kw["architecture"]
    entry = profile.profile.lambda_entry(memory, arch) if profile.profile else None
    note = None
    if entry is None and profile.profile is not None and arch in profile.profile.lambda_scaling:
        entry, note = _interpolated_entry(profile.profile, memory, arch, kw["allow_extrapolation"], ctx, key)
    service = _service(p, ctx, key, _LAMBDA_SERVICE, entry, profile, name,
                       f"memory_mb={memory}, architecture={arch}")
    kw["host"] = _host(p, ctx, key, entry, profile, f"memory_mb={memory}, architecture={arch}")
    if "cold_init_scale" in p:  # a what-if on the cold start's duration, measured or inline
        f = _number(0, strict=True)(p["cold_init_scale"], ctx, f"{key}.cold_init_scale")
        service["cold_init_ms"] = service["cold_init_ms"].scaled(f)
    kw.update(name=name, service=LambdaService(**service, interpolated=note))
    return LambdaConfig(**kw)


def _interpolated_entry(prof: Profile, memory: int, arch: str, allow: bool, ctx: _Ctx, key: str):
    """The nearest measured entry with warm_ms carried to `memory` by the profile's scaling.

    Only warm durations scale; the cold start's INIT keeps its measured distribution (AWS gives
    INIT a CPU boost at every memory size)."""
    scaling = prof.lambda_scaling[arch]
    near = prof.nearest_lambda_entry(memory, arch)
    if near is None:
        return None, None
    lo, hi = scaling.measured_mb
    if not scaling.within(memory) and not allow:
        raise ConfigError(ctx.source, f"{key}.memory_mb", f"a memory size within the profile's measured range "
                          f"{lo}-{hi} MB (set allow_extrapolation: true to extrapolate its memory scaling)", memory)
    f = scaling.factor(near.memory_mb, memory)
    kind = "interpolated" if scaling.within(memory) else "EXTRAPOLATED"
    note = (f"warm_ms {kind} from the {near.memory_mb} MB measurement by the profile's memory scaling "
            f"(x{f:.3f}); cold_init_ms as measured at {near.memory_mb} MB")
    return dataclasses.replace(near, memory_mb=memory, warm_ms=near.warm_ms.scaled(f)), note


def _autoscaling(p: Mapping, ctx: _Ctx, key: str, boot_default: Distribution | None,
                 no_boot: str) -> AutoscalingConfig:
    akey = f"{key}.autoscaling"
    a = _mapping(p["autoscaling"], ctx, akey, "{min: 1, max: 10, target: 0.6, boot_s: 90}")
    check_keys(a, _AUTOSCALING, source=ctx.source, key=akey)
    for required in ("min", "max", "target"):
        if required not in a:
            raise ConfigError(ctx.source, f"{akey}.{required}", "a value (this key is required)")
    kw = {**_defaults(AutoscalingConfig), **_read(a, _AUTOSCALING, ctx, akey, _AUTOSCALING_FIELDS)}
    if kw["metric"] == "cpu" and kw["target"] > 1:
        raise ConfigError(ctx.source, f"{akey}.target", "a busy-worker fraction in (0, 1] for metric cpu", a["target"])
    lo, hi = kw["min_instances"], kw["max_instances"]
    if hi < lo:
        raise ConfigError(ctx.source, f"{akey}.max", f"at least min ({lo})", hi)
    initial, where = kw["initial_instances"], f"{akey}.initial"
    if "instances" in p:
        if initial is not None and initial != p["instances"]:
            raise ConfigError(ctx.source, where, f"the same as {key}.instances ({p['instances']}), or only one of "
                              "the two (both give the initial fleet size)", initial)
        initial, where = p["instances"], f"{key}.instances"
    if initial is None:
        initial = lo
    elif not lo <= initial <= hi:
        raise ConfigError(ctx.source, where, f"an initial fleet size from min ({lo}) to max ({hi})", initial)
    kw["initial_instances"] = initial
    if "boot_s" not in kw:
        if boot_default is None:
            raise ConfigError(ctx.source, f"{akey}.boot_s",
                              f"a boot time in seconds (a duration or a distribution): {no_boot}")
        kw["boot_s"] = boot_default
    return AutoscalingConfig(**kw)


def _ec2(p: Mapping, ctx: _Ctx, key: str, profile: _ProfileRef) -> EC2Config:
    check_keys(p, ("name", "kind", *_EC2, "autoscaling", "service", "host"), source=ctx.source, key=key)
    name = _name(p, ctx, key)
    kw = {**_defaults(EC2Config), **_read(p, _EC2, ctx, key)}
    itype, workers = kw["instance_type"], kw["workers_per_instance"]
    wanted = f"instance_type={itype}, workers={workers}"
    entry = profile.profile.server_entry(itype, workers) if profile.profile else None
    service = _service(p, ctx, key, _EC2_SERVICE, entry, profile, name, wanted)
    kw["host"] = _host(p, ctx, key, entry, profile, wanted)
    host = kw["host"]
    where = "the profile's host_share for " + wanted if p.get("host") == "profile" else "an inline host"
    if host is not None and host.init_idle_s is not None:
        raise ConfigError(ctx.source, f"{key}.host", f"a host without init_idle_s / init_idle_factor for an ec2 "
                          f"platform (EC2 runs no Lambda INIT on its host, so it is never cold; {where} has "
                          f"init_idle_s {host.init_idle_s:g})")
    if host is not None and host.way_in_ms > 0.0:
        raise ConfigError(ctx.source, f"{key}.host", f"a host without way_in_ms for an ec2 platform (the way in is "
                          f"the local Lambda gateway's; {where} has way_in_ms {host.way_in_ms:g})")
    if "autoscaling" in p:
        no_boot = (f"the profile has no boot_s for {wanted}" if profile.profile is not None
                   else "the scenario has no profile to take it from")
        scaling = _autoscaling(p, ctx, key, entry.boot_s if entry is not None else None, no_boot)
        kw.update(autoscaling=scaling, instances=scaling.initial_instances)
    kw.update(name=name, service=EC2Service(**service))
    return EC2Config(**kw)


# -- k8s-function and container-service --------------------------------------------------------

class _PresetsRef:
    """The platform presets (`sim.presets`), read at the first platform that needs them."""

    def __init__(self, data: Mapping, ctx: _Ctx):
        self.path: Path | None = None
        if "presets" in data:
            self.path = ctx.resolve(data["presets"], "presets", "a platform presets file (YAML)")
        self._ctx = ctx
        self._presets = None

    def get(self):
        if self._presets is None:
            from sim.presets import load_presets

            try:
                self._presets = load_presets(self.path)
            except ValueError as exc:  # a ConfigError is not a ValueError: it passes through as it is
                raise ConfigError(self._ctx.source, "presets", f"a valid platform presets file ({exc})") from None
        return self._presets


_OPENFAAS: dict[str, _Parse] = {
    "threshold_rps": _number(0, strict=True),
    "rate_window_s": _duration(strict=True),
    "for_s": _duration(),
    "eval_interval_s": _duration(strict=True),
    "group_wait_s": _duration(),
    "repeat_interval_s": _duration(strict=True),
    "scale_factor_pct": _number(0, hi=100),
}
# Knative's own bounds (config-autoscaler validation).
_KPA_TUNING: dict[str, _Parse] = {
    "target_utilization": _number(0, strict=True, hi=1),
    "stable_window_s": _duration(6, 3600),
    "panic_window_pct": _number(1, hi=100),
    "panic_threshold_pct": _number(110, hi=1000),
    "max_scale_up_rate": _number(1, strict=True),
    "max_scale_down_rate": _number(1, strict=True),
    "scale_to_zero_grace_s": _duration(),
    "tick_s": _duration(strict=True),
}
_KPA: dict[str, _Parse] = {"target": _number(0, strict=True), **_KPA_TUNING, "scale_to_zero": _bool}

_K8S: dict[str, _Parse] = {
    "min_replicas": _int(0),
    "max_replicas": _int(1),
    "concurrency": _int(1),
    "pod_start_s": _dist_s,
    "node_instance_type": _text,
    "pods_per_node": _int(1),
    "nodes": _int(1),
    "control_plane": _text,
    "queue_limit": _int(0),
    "request_timeout_s": _duration(strict=True),
}

_CONTAINER: dict[str, _Parse] = {
    "concurrency": _int(1),
    "min_instances": _int(0),
    "max_instances": _int(1),
    "vcpu": _number(0, strict=True),
    "memory_gb": _number(0, strict=True),
    "start_s": _dist_s,
    "queue_limit": _int(0),
    "request_timeout_s": _duration(strict=True),
}
_PRESET_DEFAULTS = ("concurrency", "min_instances", "max_instances", "vcpu", "memory_gb")
_TRACKING = {k: _AUTOSCALING[k] for k in ("metric_period_s", "scale_out_periods", "scale_in_periods",
                                          "scale_in_ratio", "cooldown_s")}
_SCALING_KEYS = ("metric", "target", "idle_timeout_s", *_TRACKING, *_KPA_TUNING)


def _pod_times(p: Mapping, ctx: _Ctx, key: str, profile: _ProfileRef, name: str, start_key: str,
               start: Distribution | None, server: tuple[str, int] | None) -> tuple[Distribution, Distribution]:
    """(service_ms, start time) of a pod or container instance: inline ``service.service_ms`` and
    `start` (the parsed inline ``start_key``, or None) win; else the profile's http entry named by
    ``profile_entry``; else (`server`: (instance_type, workers)) service_ms from the profile's
    server entry, the start inline."""
    inline: Mapping = {}
    if "service" in p:
        inline = _mapping(p["service"], ctx, f"{key}.service", "{service_ms: {dist: ...}}")
        check_keys(inline, ("service_ms",), source=ctx.source, key=f"{key}.service")
    service = _dist(inline["service_ms"], ctx, f"{key}.service.service_ms") if "service_ms" in inline else None
    prof = profile.profile
    no_start = "(or a profile_entry naming an http entry of the profile that has start_s)"
    if "profile_entry" in p:
        label = _text(p["profile_entry"], ctx, f"{key}.profile_entry")
        if prof is None:
            raise ConfigError(ctx.source, f"{key}.profile_entry", f"a top-level 'profile:' holding the http entry "
                              f"{label!r} (the scenario has no profile)")
        entry = prof.http_entry(label)
        if entry is None:
            raise ConfigError(ctx.source, f"{key}.profile_entry", f"the label of an http entry of the profile "
                              f"{prof.path} (it has: {prof.describe_entries()})", label)
        service = service if service is not None else entry.service_ms
        start = start if start is not None else entry.start_s
        no_start = f"(the profile's http entry {label!r} has no start_s)"
    elif service is None:
        itype, workers = server if server is not None else (None, None)
        found = prof.server_entry(itype, workers) if prof is not None and server is not None else None
        if found is None:
            where = (f" or a server entry of the profile for instance_type={itype}, workers={workers} (the pod's "
                     "concurrency)" if server is not None else "")
            has = ("the scenario has no profile" if prof is None
                   else f"the profile {prof.path} has: {prof.describe_entries()}")
            raise ConfigError(ctx.source, f"{key}.service", f"service times for platform '{name}': an inline "
                              f"service: {{service_ms: {{dist: ...}}}}, a profile_entry: <label> naming an http "
                              f"entry of the profile,{where} ({has})")
        service = found.service_ms
        no_start = ("(service_ms comes from the profile's server entry, which has no pod start; or a "
                    "profile_entry naming an http entry of the profile that has start_s)")
    if start is None:
        raise ConfigError(ctx.source, f"{key}.{start_key}", f"a start time in seconds (a duration or a distribution) "
                          f"for platform '{name}': this key is required {no_start}")
    return service, start


def _k8s_autoscaler(p: Mapping, ctx: _Ctx, key: str) -> tuple[str, dict[str, Any]]:
    """(autoscaler kind, the fields it sets) of a k8s-function's ``autoscaler:`` block."""
    akey = f"{key}.autoscaler"
    if "autoscaler" not in p:
        raise ConfigError(ctx.source, akey, "a mapping {kind: openfaas-rps} or {kind: knative-kpa} with any setting "
                          "of that autoscaler (this key is required: it says whether OpenFaaS or Knative scales the "
                          "pods)")
    a = _mapping(p["autoscaler"], ctx, akey, "{kind: openfaas-rps, threshold_rps: 5}")
    kind = a.get("kind")
    if not isinstance(kind, str) or kind not in AUTOSCALER_KINDS:
        raise ConfigError(ctx.source, f"{akey}.kind", f"one of {', '.join(AUTOSCALER_KINDS)}",
                          *((kind,) if "kind" in a else ()))
    parsers = _OPENFAAS if kind == "openfaas-rps" else _KPA
    check_keys(a, ("kind", *parsers), source=ctx.source, key=akey)
    return kind, _read(a, parsers, ctx, akey)


def _k8s_function(p: Mapping, ctx: _Ctx, key: str, profile: _ProfileRef, presets_ref: _PresetsRef
                  ) -> K8sFunctionConfig:
    check_keys(p, ("name", "kind", "autoscaler", *_K8S, "service", "profile_entry"), source=ctx.source, key=key)
    name = _name(p, ctx, key)
    presets = presets_ref.get()
    given = _read(p, _K8S, ctx, key)
    kw = {**_defaults(K8sFunctionConfig), **given}
    akind, over = _k8s_autoscaler(p, ctx, key)
    akey = f"{key}.autoscaler"

    # Replicas: the autoscaler's defaults, then the checks that tie them together.
    if akind == "openfaas-rps":
        lo, hi = presets.openfaas_replicas
    else:
        zero = over.get("scale_to_zero", presets.knative.scale_to_zero)
        lo, hi = (0 if zero else 1), KNATIVE_MAX_REPLICAS
    if kw["nodes"] is not None:
        hi = min(hi, kw["nodes"] * kw["pods_per_node"])
    lo, hi = given.get("min_replicas", lo), given.get("max_replicas", hi)
    if akind == "openfaas-rps" and lo < 1:
        raise ConfigError(ctx.source, f"{key}.min_replicas", "at least 1 with autoscaler openfaas-rps: OpenFaaS CE "
                          "never scales a function to zero (use autoscaler kind knative-kpa for scale to zero)", lo)
    if hi < lo:
        if "max_replicas" in given:
            raise ConfigError(ctx.source, f"{key}.max_replicas", f"at least min_replicas ({lo})", hi)
        raise ConfigError(ctx.source, f"{key}.min_replicas", f"at most max_replicas ({hi}: its default, or set it)", lo)
    if kw["nodes"] is not None and kw["nodes"] * kw["pods_per_node"] < hi:
        need = -(-hi // kw["pods_per_node"])
        raise ConfigError(ctx.source, f"{key}.nodes", f"at least {need} nodes: nodes * pods_per_node "
                          f"({kw['pods_per_node']}) must hold max_replicas ({hi}) pods", kw["nodes"])
    if akind == "knative-kpa":
        if "scale_to_zero" in over and over["scale_to_zero"] != (lo == 0):
            raise ConfigError(ctx.source, f"{akey}.scale_to_zero",
                              f"{str(lo == 0).lower()}, as min_replicas is {lo} (scale to zero is min_replicas 0)",
                              over["scale_to_zero"])
        autoscaler = dataclasses.replace(presets.knative, **{**over, "scale_to_zero": lo == 0})
    else:
        autoscaler = dataclasses.replace(presets.openfaas, **over)

    plane = kw["control_plane"]
    if plane not in presets.control_planes:
        raise ConfigError(ctx.source, f"{key}.control_plane", f"a control plane of the presets file {presets.file}: "
                          f"one of {', '.join(presets.control_planes)}", plane)
    service_ms, start = _pod_times(p, ctx, key, profile, name, "pod_start_s", given.get("pod_start_s"),
                                   (kw["node_instance_type"], kw["concurrency"]))
    kw.update(name=name, service=PodService(service_ms), pod_start_s=start, autoscaler=autoscaler,
              min_replicas=lo, max_replicas=hi, control_plane_usd_per_hour=presets.control_plane_usd_per_hour(plane))
    return K8sFunctionConfig(**kw)


def _container_scaling(p: Mapping, ctx: _Ctx, key: str, presets, preset, kw: dict, given: dict) -> ContainerScaling:
    skey = f"{key}.scaling"
    s = _mapping(p.get("scaling", {}), ctx, skey, "{metric: concurrency, target: 80}")
    check_keys(s, _SCALING_KEYS, source=ctx.source, key=skey)
    metric = _choice(CONTAINER_SCALING_METRICS)(s.get("metric", preset.defaults.get("scaling_metric", "concurrency")),
                                                ctx, f"{skey}.metric")
    own = _KPA_TUNING if metric == "concurrency" else _TRACKING
    for k in s:
        if k in (*_TRACKING, *_KPA_TUNING) and k not in own:
            other = "cpu" if metric == "concurrency" else "concurrency"
            raise ConfigError(ctx.source, f"{skey}.{k}", f"a key of scaling metric {metric} ({k} is a setting of "
                              f"metric {other}; this platform scales on {metric})")
    idle = preset.defaults.get("idle_timeout_s")
    if "idle_timeout_s" in s:
        idle = None if s["idle_timeout_s"] is None else _duration()(s["idle_timeout_s"], ctx, f"{skey}.idle_timeout_s")
    lo, hi, concurrency = kw["min_instances"], kw["max_instances"], kw["concurrency"]
    if metric == "concurrency":
        target = float(concurrency)
        if "target" in s:
            target = _number(1, hi=concurrency)(s["target"], ctx, f"{skey}.target")
        tuning = _read(s, _KPA_TUNING, ctx, skey)
        kpa = dataclasses.replace(presets.knative, **{**dict(preset.kpa_overrides), **tuning, "target": target,
                                                      "scale_to_zero": lo == 0})
        return ContainerScaling(metric=metric, kpa=kpa, idle_timeout_s=idle)
    if lo < 1:
        where = "min_instances" if "min_instances" in given else "scaling.metric"
        raise ConfigError(ctx.source, f"{key}.{where}", f"min_instances >= 1 with scaling metric cpu (target tracking "
                          f"on CPU cannot scale from zero: no instance, no CPU to measure; preset {preset.name} "
                          f"defaults to min_instances {preset.defaults.get('min_instances')}); or metric concurrency",
                          given.get("min_instances", metric))
    if "target" not in s:
        raise ConfigError(ctx.source, f"{skey}.target", "a busy-slot fraction in (0, 1] (required with metric cpu)")
    target = _number(0, strict=True, hi=1)(s["target"], ctx, f"{skey}.target")
    tracking = AutoscalingConfig(min_instances=lo, max_instances=hi, target=target, boot_s=kw["start_s"],
                                 metric="cpu", initial_instances=lo, **_read(s, _TRACKING, ctx, skey))
    return ContainerScaling(metric=metric, tracking=tracking, idle_timeout_s=idle)


def _container_service(p: Mapping, ctx: _Ctx, key: str, profile: _ProfileRef, presets_ref: _PresetsRef
                       ) -> ContainerServiceConfig:
    check_keys(p, ("name", "kind", "preset", "billing", *_CONTAINER, "scaling", "service", "profile_entry"),
               source=ctx.source, key=key)
    name = _name(p, ctx, key)
    presets = presets_ref.get()
    known = ", ".join(presets.containers)
    if "preset" not in p:
        raise ConfigError(ctx.source, f"{key}.preset", f"a container preset (this key is required): one of {known}")
    if not isinstance(p["preset"], str) or p["preset"] not in presets.containers:
        raise ConfigError(ctx.source, f"{key}.preset", f"a container preset of the presets file {presets.file}: "
                          f"one of {known}", p["preset"])
    preset = presets.container(p["preset"])
    billing = preset.default_billing
    if "billing" in p:
        billing = _choice(BILLING_MODES)(p["billing"], ctx, f"{key}.billing")
        if billing not in preset.billing_modes:
            raise ConfigError(ctx.source, f"{key}.billing", f"a billing mode of preset {preset.name}: one of "
                              f"{', '.join(preset.billing_modes)}", billing)
    given = _read(p, _CONTAINER, ctx, key)
    kw = {**_defaults(ContainerServiceConfig),
          **{k: preset.defaults[k] for k in _PRESET_DEFAULTS if preset.defaults.get(k) is not None}, **given}
    lo, hi = kw["min_instances"], kw["max_instances"]
    if hi < lo:
        if "max_instances" in given:
            raise ConfigError(ctx.source, f"{key}.max_instances", f"at least min_instances ({lo})", hi)
        raise ConfigError(ctx.source, f"{key}.min_instances", f"at most max_instances ({hi}: preset {preset.name}'s "
                          "default, or set it)", lo)
    service_ms, kw["start_s"] = _pod_times(p, ctx, key, profile, name, "start_s", given.get("start_s"), None)
    scaling = _container_scaling(p, ctx, key, presets, preset, kw, given)
    kw.update(name=name, service=PodService(service_ms), prices=preset.prices(billing), scaling=scaling)
    return ContainerServiceConfig(**kw)


def _platforms(v: Any, ctx: _Ctx, profile: _ProfileRef, presets: _PresetsRef) -> tuple[PlatformConfig, ...]:
    if not isinstance(v, list) or not v:
        raise ConfigError(ctx.source, "platforms", "a non-empty list of platforms (each with kind: "
                          f"{', '.join(PLATFORM_KINDS)})", v)
    out: list[PlatformConfig] = []
    names: dict[str, int] = {}
    for i, p in enumerate(v):
        key = f"platforms[{i}]"
        p = _mapping(p, ctx, key, "{name: lambda-2g, kind: lambda, memory_mb: 2048}")
        kind = p.get("kind")
        if not isinstance(kind, str) or kind not in PLATFORM_KINDS:
            raise ConfigError(ctx.source, f"{key}.kind", f"one of {', '.join(PLATFORM_KINDS)}",
                              *((kind,) if "kind" in p else ()))
        if kind == "lambda":
            config = _lambda(p, ctx, key, profile)
        elif kind == "ec2":
            config = _ec2(p, ctx, key, profile)
        elif kind == "k8s-function":
            config = _k8s_function(p, ctx, key, profile, presets)
        else:
            config = _container_service(p, ctx, key, profile, presets)
        if config.name in names:
            raise ConfigError(ctx.source, f"{key}.name",
                              f"a unique platform name (platforms[{names[config.name]}] is also called that)",
                              config.name)
        names[config.name] = i
        out.append(config)
    return tuple(out)


# -- the scenario ----------------------------------------------------------------------------------

def _build(data: Any, source: str | None, base_dir: Path, path: Path | None) -> Scenario:
    ctx = _Ctx(source, base_dir)
    if not isinstance(data, Mapping):
        raise ConfigError(source, "", "a YAML mapping with at least name, trace and platforms", data)
    check_keys(data, _TOP_KEYS, source=source, key="")
    for required in ("name", "trace", "platforms"):
        if required not in data:
            raise ConfigError(source, required, "a value (this key is required)")
    name = _text(data["name"], ctx, "name")
    seed = _int(0)(data.get("seed", 0), ctx, "seed")
    warmup_s = _duration()(data.get("warmup_s", 0), ctx, "warmup_s")
    engine = _choice(ENGINES)(data.get("engine", "auto"), ctx, "engine")
    trace = parse_trace(data["trace"], source=source, key="trace", base_dir=base_dir)
    if trace.duration_s is not None and warmup_s >= trace.duration_s:
        raise ConfigError(source, "warmup_s", f"a warm-up shorter than the trace ({trace.duration_s:g} s)",
                          data.get("warmup_s"))
    ctx = dataclasses.replace(ctx, trace=trace)
    profile = _ProfileRef(data, ctx)
    presets = _PresetsRef(data, ctx)
    platforms = _platforms(data["platforms"], ctx, profile, presets)
    if engine == "fast":
        from sim import engine_fast

        for i, p in enumerate(platforms):
            missing = engine_fast.unsupported(p)
            if missing is not None:
                raise ConfigError(source, "engine", f"an engine that models platforms[{i}] ({p.name!r}): engine fast "
                                  f"does not support {missing}; use engine: simpy, or auto to choose per platform",
                                  engine)
    pricing = ctx.resolve(data["pricing"], "pricing", "a pricing file (YAML)") if "pricing" in data else None
    sweep = data.get("sweep")
    if sweep is not None:
        sweep = _mapping(sweep, ctx, "sweep", "{lambda-2g.memory_mb: [1024, 2048]}")
    return Scenario(name=name, path=path, seed=seed, warmup_s=warmup_s, engine=engine, trace=trace,
                    platforms=platforms, pricing_path=pricing, sweep=sweep, raw=copy.deepcopy(dict(data)),
                    presets_path=presets.path)


def scenario_from_dict(data: Mapping, *, source: str = "<scenario>", base_dir: Path | None = None) -> Scenario:
    """Validate a parsed scenario. Relative paths resolve against `base_dir` (default: the
    current directory); errors name `source`."""
    base = Path(base_dir).absolute() if base_dir is not None else Path.cwd()
    return _build(data, source, base, None)


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario YAML file; errors are `ConfigError` naming the file and key path."""
    path = Path(path)
    source = str(path)
    if not path.is_file():
        raise ConfigError(source, "", "an existing scenario file (YAML)")
    data = _read_yaml(path, source)
    return _build(data, source, path.absolute().parent, path.absolute())

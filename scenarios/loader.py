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
    platforms: [ ... ]          # required, non-empty, unique names
    sweep: { ... }              # kept as given (a mapping)

Each platform has ``kind: lambda`` or ``kind: ec2`` and the fields of `sim.config.LambdaConfig`
or `sim.config.EC2Config` (EC2 auto scaling: ``autoscaling: {min, max, target, metric,
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

Every key is checked (an unknown one names its path and the closest valid key), every value is
type- and range-checked, and a mistake is a `ConfigError` naming the file and the key path.
Loading has no side effects: it reads the scenario, the profile and the trace file's header,
and writes nothing.
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
    LOAD_BALANCERS,
    REUSE_POLICIES,
    SCALING_METRICS,
    AutoscalingConfig,
    EC2Config,
    EC2Service,
    LambdaConfig,
    LambdaService,
)
from sim.dists import Constant, Distribution, parse_dist
from sim.errors import ConfigError, check_keys, read_user_file
from sim.profile import Profile, load_profile, parse_idle_effect
from sim.run import ENGINES
from sim.units import parse_duration_s
from traces.base import ArrivalSource
from traces.spec import parse_trace

__all__ = ["Scenario", "load_scenario", "scenario_from_dict", "ENGINES", "PLATFORM_KINDS"]

PLATFORM_KINDS = ("lambda", "ec2")
FROM_TRACE = "trace"
"""A service time given as `trace` is the trace's own duration distribution (Azure traces)."""
_TOP_KEYS = ("name", "seed", "warmup_s", "engine", "trace", "profile", "platforms", "sweep", "pricing")


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
    platforms: tuple[LambdaConfig | EC2Config, ...]
    pricing_path: Path | None
    """A user's pricing file (absolute), or None for the shipped prices."""
    sweep: Mapping | None
    """The ``sweep:`` mapping as given (checked only to be a mapping)."""
    raw: Mapping
    """The parsed YAML, to save the resolved configuration next to the results."""


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


def _name(p: Mapping, ctx: _Ctx, key: str) -> str:
    if "name" not in p:
        raise ConfigError(ctx.source, f"{key}.name", "a platform name (this key is required)")
    name = _text(p["name"], ctx, f"{key}.name")
    if "." in name:
        raise ConfigError(ctx.source, f"{key}.name", "a name without '.' (sweep keys are 'platform.key')", name)
    return name


def _lambda(p: Mapping, ctx: _Ctx, key: str, profile: _ProfileRef) -> LambdaConfig:
    check_keys(p, ("name", "kind", *_LAMBDA, "service", "cold_init_scale"), source=ctx.source, key=key)
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
    check_keys(p, ("name", "kind", *_EC2, "autoscaling", "service"), source=ctx.source, key=key)
    name = _name(p, ctx, key)
    kw = {**_defaults(EC2Config), **_read(p, _EC2, ctx, key)}
    itype, workers = kw["instance_type"], kw["workers_per_instance"]
    wanted = f"instance_type={itype}, workers={workers}"
    entry = profile.profile.server_entry(itype, workers) if profile.profile else None
    service = _service(p, ctx, key, _EC2_SERVICE, entry, profile, name, wanted)
    if "autoscaling" in p:
        no_boot = (f"the profile has no boot_s for {wanted}" if profile.profile is not None
                   else "the scenario has no profile to take it from")
        scaling = _autoscaling(p, ctx, key, entry.boot_s if entry is not None else None, no_boot)
        kw.update(autoscaling=scaling, instances=scaling.initial_instances)
    kw.update(name=name, service=EC2Service(**service))
    return EC2Config(**kw)


def _platforms(v: Any, ctx: _Ctx, profile: _ProfileRef) -> tuple[LambdaConfig | EC2Config, ...]:
    if not isinstance(v, list) or not v:
        raise ConfigError(ctx.source, "platforms", "a non-empty list of platforms (each with kind: lambda or ec2)", v)
    out: list[LambdaConfig | EC2Config] = []
    names: dict[str, int] = {}
    for i, p in enumerate(v):
        key = f"platforms[{i}]"
        p = _mapping(p, ctx, key, "{name: lambda-2g, kind: lambda, memory_mb: 2048}")
        kind = p.get("kind")
        if not isinstance(kind, str) or kind not in PLATFORM_KINDS:
            raise ConfigError(ctx.source, f"{key}.kind", f"one of {', '.join(PLATFORM_KINDS)}",
                              *((kind,) if "kind" in p else ()))
        config = _lambda(p, ctx, key, profile) if kind == "lambda" else _ec2(p, ctx, key, profile)
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
    platforms = _platforms(data["platforms"], ctx, profile)
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
                    platforms=platforms, pricing_path=pricing, sweep=sweep, raw=copy.deepcopy(dict(data)))


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

"""A scenario's ``sweep:`` block → a `SweepSpec`: the points to simulate, and an optional SLO.

::

    sweep:
      grid:                       # cartesian product
        lambda.memory_mb: [512, 1024, 2048]
        trace.rate_rps: [1, 10, 100]
      zip:                        # lists of equal length, taken together (point i: element i of each)
        ec2.instances: [1, 2, 4]
        ec2.instance_type: [c6i.large, c6i.large, c6i.xlarge]
      slo: {p99_ms: 300}          # optional: p50_ms, p95_ms, p99_ms, p999_ms, max_rejected_fraction

Parameter paths (dots go into nested mappings, e.g. ``ec2.autoscaling.max``, ``trace.scale``,
``k8s-function.autoscaler.threshold_rps``, ``container-service.scaling.target``):

- ``lambda.<key>``, ``ec2.<key>``, ``k8s-function.<key>``, ``container-service.<key>``: every
  platform of that kind (at least one must exist);
- ``platforms.<name>.<key>``: the one platform with that name;
- ``trace.<key>``: the trace mapping;
- ``seed``, ``warmup_s``: the top-level keys.

A platform's ``name`` and ``kind`` cannot be swept, and no two paths may set the same value
(or one a part of the other). A missing intermediate mapping is created.

Order of the points (deterministic): `grid` is the cartesian product in the order its keys are
written, the last key varying fastest (like nested loops, `itertools.product`); with `zip` too,
every grid point is taken with every zip tuple, zip varying fastest. A point's `params` list the
grid paths first, then the zip paths. Points are numbered from 0.

A platform is simulated once per distinct set of values of the paths that apply to it: with
``grid: {lambda.memory_mb: [512, 1024], ec2.instances: [1, 2]}`` the four points hold two Lambda
and two EC2 configurations, and each is simulated at the first point that has it (`SweepPoint.runs`).

Every point keeps the scenario's ``seed`` unless the sweep sets ``seed``: all points see the same
arrivals and the same luck (common random numbers), so differences between points are the
configuration's, not the noise's.

The sweep block itself is checked eagerly (keys, lists, lengths, paths against the scenario's
platforms, the SLO); the swept *values* are only checked to be scalars or mappings: each point's
scenario is validated when it is built (`point_scenario`), and an error there names the point.
Nothing here has side effects.
"""
from __future__ import annotations

import copy
import itertools
import json
import math
from dataclasses import dataclass, fields
from typing import Any, Mapping

from scenarios.loader import PLATFORM_KINDS, Scenario, scenario_from_dict
from sim.errors import ConfigError, check_keys

__all__ = ["SLO", "SweepPoint", "SweepSpec", "parse_sweep", "apply_point", "point_scenario"]

_SWEEP_KEYS = ("grid", "zip", "slo")
_TOP_PATHS = ("seed", "warmup_s")
_PATH_HELP = ("lambda.<key>, ec2.<key>, k8s-function.<key>, container-service.<key>, platforms.<name>.<key>, "
              "trace.<key>, seed or warmup_s")
_KEY_EXAMPLE = {"lambda": "memory_mb", "ec2": "instances", "k8s-function": "max_replicas",
                "container-service": "concurrency"}
_FIXED_PLATFORM_KEYS = ("name", "kind")


@dataclass(frozen=True)
class SLO:
    """A service-level objective a platform's result must meet; None means not constrained.

    Latency percentiles are of completed requests (ms); the rejected fraction is the summary's
    ``rejected`` (queue rejections and Lambda throttles) over ``requests``; timeouts are not in it.
    """

    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None
    p999_ms: float | None = None
    max_rejected_fraction: float | None = None

    def met(self, summary: Mapping) -> bool:
        """Whether a `sim.run.PlatformResult.summary` meets every bound (bounds are inclusive).

        Also takes the summary flattened with dots (``latency_ms.p99``), as in a sweep's table.
        A bound whose figure is missing or not a number (no completed request to measure, an
        error row) is not met."""
        for q in ("p50", "p95", "p99", "p999"):
            bound = getattr(self, f"{q}_ms")
            if bound is not None and not _at_most(_figure(summary, "latency_ms", q), bound):
                return False
        if self.max_rejected_fraction is not None:
            requests, rejected = _figure(summary, "requests"), _figure(summary, "rejected")
            fraction = 0.0 if requests == 0 else _ratio(rejected, requests)
            if not _at_most(fraction, self.max_rejected_fraction):
                return False
        return True


def _figure(summary: Mapping, *keys: str) -> Any:
    """``summary[k1][k2]``, or ``summary['k1.k2']`` in a flattened summary; None when missing."""
    node: Any = summary
    for k in keys:
        if not isinstance(node, Mapping) or k not in node:
            return summary.get(".".join(keys))
        node = node[k]
    return node


def _number(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or math.isnan(v):
        return None
    return float(v)


def _ratio(a: Any, b: Any) -> float | None:
    a, b = _number(a), _number(b)
    return a / b if a is not None and b else None


def _at_most(v: Any, bound: float) -> bool:
    v = _number(v)
    return v is not None and v <= bound


@dataclass(frozen=True)
class SweepPoint:
    """One configuration of a sweep: `params` maps each path to its value, in `SweepSpec.paths` order."""

    index: int
    params: dict[str, object]
    #: The platforms this point simulates, each with the swept paths that apply to it (its own
    #: settings, the trace, seed, warmup_s). A platform whose applicable values equal those of an
    #: earlier point is left out: its result there is the same (None: not planned, as for a
    #: point made by hand).
    runs: dict[str, tuple[str, ...]] | None = None

    def label(self) -> str:
        """``lambda.memory_mb=512, trace.rate_rps=10``"""
        return ", ".join(f"{path}={_show(v)}" for path, v in self.params.items())


@dataclass(frozen=True)
class SweepSpec:
    """The expanded sweep: its points in order, the SLO (or None) and the swept paths."""

    points: tuple[SweepPoint, ...]
    slo: SLO | None
    paths: tuple[str, ...]


def _show(v: Any) -> str:
    if isinstance(v, Mapping):
        return "{" + ", ".join(f"{k}: {_show(x)}" for k, x in v.items()) + "}"
    return str(v)


def _source(scenario: Scenario) -> str:
    return str(scenario.path) if scenario.path is not None else "<scenario>"


# -- paths -----------------------------------------------------------------------------------------

_Location = tuple  # ('seed',) / ('trace', 'rate_rps') / ('platforms', 2, 'autoscaling', 'max')


def _locations(raw: Mapping, path: Any, *, source: str, key: str) -> list[_Location]:
    """Where `path` sets values in the scenario mapping `raw`."""
    if not isinstance(path, str) or not path or any(not part for part in path.split(".")):
        raise ConfigError(source, key, f"a parameter path of dot-separated keys: {_PATH_HELP}")
    head, *rest = path.split(".")
    if head in _TOP_PATHS:
        if rest:
            raise ConfigError(source, key, f"'{head}' alone ({head} is a top-level number)")
        return [(head,)]
    if head == "trace":
        if not rest:
            raise ConfigError(source, key, "a key of the trace after 'trace.' (e.g. trace.rate_rps)")
        return [("trace", *rest)]
    platforms = raw.get("platforms")
    platforms = platforms if isinstance(platforms, list) else []
    if head in PLATFORM_KINDS:
        keys = rest
        if not keys:
            example = f"{head}.{_KEY_EXAMPLE.get(head, '<key>')}"
            raise ConfigError(source, key, f"a platform key after '{head}.' (e.g. {example})")
        idx = [i for i, p in enumerate(platforms) if isinstance(p, Mapping) and p.get("kind") == head]
        if not idx:
            raise ConfigError(source, key, f"a path that matches a platform: the scenario has no platform of "
                              f"kind {head}")
    elif head == "platforms":
        if len(rest) < 2:
            raise ConfigError(source, key, "platforms.<name>.<key> (e.g. platforms.lambda-2g.memory_mb)")
        name, *keys = rest
        names = [p.get("name") for p in platforms if isinstance(p, Mapping)]
        idx = [i for i, p in enumerate(platforms) if isinstance(p, Mapping) and p.get("name") == name]
        if not idx:
            raise ConfigError(source, key, f"the name of a platform of the scenario "
                              f"(it has: {', '.join(map(str, names))})", name)
    else:
        raise ConfigError(source, key, f"a parameter path starting with {_PATH_HELP}")
    if keys[0] in _FIXED_PLATFORM_KEYS:
        raise ConfigError(source, key, "a platform setting other than name and kind (those cannot be swept)")
    return [("platforms", i, *keys) for i in idx]


def _set(data: dict, loc: _Location, value: Any, *, source: str, key: str) -> None:
    """Set `value` at `loc` in `data`, creating missing intermediate mappings."""
    node: Any = data
    for depth, (part, after) in enumerate(zip(loc, loc[1:])):
        if isinstance(part, int):
            node = node[part]  # a platform index from _locations
            continue
        if part not in node:
            node[part] = {}
        node = node[part]
        if not isinstance(after, int) and not isinstance(node, dict):
            where = ".".join(str(p) for p in loc[:depth + 1])
            raise ConfigError(source, key, f"a path through mappings only ({where} is not a mapping)", node)
    node[loc[-1]] = copy.deepcopy(value)


# -- parsing ---------------------------------------------------------------------------------------

def _values(v: Any, *, source: str, key: str) -> list:
    if not isinstance(v, list) or not v:
        raise ConfigError(source, key, "a non-empty list of values", v)
    for x in v:
        if isinstance(x, bool) or isinstance(x, (int, float, str, Mapping)):
            continue
        raise ConfigError(source, key, "values that are scalars (numbers, strings, true/false) or mappings", x)
    return v


def _block(sweep: Mapping, name: str, source: str) -> dict[str, list]:
    block = sweep[name]
    if not isinstance(block, Mapping) or not block:
        raise ConfigError(source, f"sweep.{name}", "a non-empty mapping of parameter path to a list of values "
                          "(e.g. {lambda.memory_mb: [1024, 2048]})", block)
    return {path: _values(v, source=source, key=f"sweep.{name}.{path}") for path, v in block.items()}


def _slo(v: Any, source: str) -> SLO:
    names = tuple(f.name for f in fields(SLO))
    if not isinstance(v, Mapping) or not v:
        raise ConfigError(source, "sweep.slo", f"a mapping with at least one of {', '.join(names)}", v)
    check_keys(v, names, source=source, key="sweep.slo")
    out = {}
    for k, x in v.items():
        fraction = k == "max_rejected_fraction"
        bad = isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x)
        if bad or (not 0 <= x <= 1 if fraction else x <= 0):
            raise ConfigError(source, f"sweep.slo.{k}", "a fraction from 0 to 1" if fraction
                              else "a number of milliseconds > 0", x)
        out[k] = float(x)
    return SLO(**out)


def parse_sweep(scenario: Scenario) -> SweepSpec:
    """Check the scenario's ``sweep:`` block and expand it into points (see the module docstring
    for the format and the order). A mistake is a `ConfigError` naming the file and the key path."""
    source = _source(scenario)
    sweep = scenario.sweep
    if sweep is None:
        raise ConfigError(source, "sweep", "a sweep: block (this scenario has none)")
    if not isinstance(sweep, Mapping):
        raise ConfigError(source, "sweep", "a mapping with grid: and/or zip:", sweep)
    check_keys(sweep, _SWEEP_KEYS, source=source, key="sweep")
    if "grid" not in sweep and "zip" not in sweep:
        raise ConfigError(source, "sweep", "grid: (a cartesian product) and/or zip: (lists taken together), "
                          "e.g. grid: {lambda.memory_mb: [1024, 2048]}")
    grid = _block(sweep, "grid", source) if "grid" in sweep else {}
    zipped = _block(sweep, "zip", source) if "zip" in sweep else {}
    if zipped:
        first = next(iter(zipped))
        n = len(zipped[first])
        for path, v in zipped.items():
            if len(v) != n:
                raise ConfigError(source, f"sweep.zip.{path}", f"a list of {n} values, as long as sweep.zip.{first} "
                                  "(zip takes its lists together)", v)

    # Every path must resolve, and no two may set the same place (or one inside the other).
    seen: list[tuple[_Location, str]] = []
    trial = copy.deepcopy(dict(scenario.raw))
    for path, block in (*((p, "grid") for p in grid), *((p, "zip") for p in zipped)):
        key = f"sweep.{block}.{path}"
        if block == "zip" and path in grid:
            raise ConfigError(source, key, "a path not also in sweep.grid")
        for loc in _locations(scenario.raw, path, source=source, key=key):
            for other, other_key in seen:
                n = min(len(loc), len(other))
                if loc[:n] == other[:n]:
                    raise ConfigError(source, key, f"a path that sets something no other sweep path sets "
                                      f"({other_key} sets it too)")
            seen.append((loc, key))
            _set(trial, loc, None, source=source, key=key)

    grid_points = [dict(zip(grid, combo)) for combo in itertools.product(*grid.values())]
    zip_points = [dict(zip(zipped, combo)) for combo in zip(*zipped.values())] if zipped else [{}]
    params = [{**g, **z} for g, z in itertools.product(grid_points, zip_points)]
    points = tuple(SweepPoint(i, p, runs) for i, (p, runs) in enumerate(zip(params, _runs(scenario.raw, params, source))))
    slo = _slo(sweep["slo"], source) if "slo" in sweep else None
    return SweepSpec(points=points, slo=slo, paths=(*grid, *zipped))


def _runs(raw: Mapping, params: list[dict], source: str) -> list[dict[str, tuple[str, ...]]]:
    """Per point, {platform name: the paths that apply to it} for the platforms not simulated with
    the same applicable values at an earlier point."""
    platforms = raw.get("platforms") or []  # a validated scenario's: a list of mappings
    applies: dict[str, list[str]] = {str(p["name"]): [] for p in platforms}
    for path in params[0] if params else ():
        for loc in _locations(raw, path, source=source, key=f"sweep: {path}"):
            names = [str(platforms[loc[1]]["name"])] if loc[0] == "platforms" else list(applies)
            for name in names:
                if path not in applies[name]:
                    applies[name].append(path)
    seen: set = set()
    out = []
    for p in params:
        runs = {}
        for name, paths in applies.items():
            key = (name, json.dumps([p[path] for path in paths], sort_keys=True, default=str))
            if key not in seen:
                seen.add(key)
                runs[name] = tuple(paths)
        out.append(runs)
    return out


# -- points ----------------------------------------------------------------------------------------

def apply_point(raw: Mapping, point: SweepPoint, *, source: str) -> dict:
    """A deep copy of the scenario mapping `raw` with the point's values set and ``sweep`` removed.
    `raw` is not modified; errors name `source`."""
    data = copy.deepcopy(dict(raw))
    data.pop("sweep", None)
    for path, value in point.params.items():
        key = f"sweep point {point.index}: {path}"
        for loc in _locations(data, path, source=source, key=key):
            _set(data, loc, value, source=source, key=key)
    return data


def point_scenario(scenario: Scenario, point: SweepPoint) -> Scenario:
    """The validated scenario of one sweep point; an invalid value is a `ConfigError` whose source
    names the file and the point (``scn.yaml (sweep point 3: lambda.memory_mb=-5)``).

    Relative paths (profile, pricing, trace files) resolve against the scenario file's folder, or
    the current directory for a scenario built from a mapping."""
    source = f"{_source(scenario)} (sweep point {point.index}: {point.label()})"
    base_dir = scenario.path.parent if scenario.path is not None else None
    return scenario_from_dict(apply_point(scenario.raw, point, source=source), source=source, base_dir=base_dir)

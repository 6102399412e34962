"""Scenario ``trace:`` mappings of the generator kinds → sources (errors name the key path).

`KINDS` maps each kind to ``(allowed keys, builder)``, merged into ``traces.spec.TRACE_KINDS``.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Callable, Mapping

from sim.dists import parse_dist
from sim.errors import ConfigError, check_keys
from sim.units import parse_duration_s

from .base import ArrivalSource
from .generators import MMPP, Diurnal, Ramp, Renewal, Spike, SpikeShape

__all__ = ["KINDS", "build_diurnal", "build_mmpp", "build_spike", "build_ramp", "build_renewal"]


def _require(spec: Mapping, name: str, kind: str, source: str | None, key: str, what: str) -> Any:
    if name not in spec:
        raise ConfigError(source, f"{key}.{name}", f"{what} ({kind} needs '{name}')")
    return spec[name]


def _number(value: Any, source: str | None, path: str, what: str, *, minimum: float = 0.0,
            strict: bool = False, maximum: float | None = None) -> float:
    ok = not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value) \
        and (value > minimum if strict else value >= minimum) and (maximum is None or value < maximum)
    if not ok:
        raise ConfigError(source, path, what, value)
    return float(value)


def _number_list(value: Any, source: str | None, path: str, what: str, each: str, *, n: int | None = None,
                 min_len: int = 1) -> list[float]:
    """A list of numbers >= 0, not all zero: `what` describes the list, `each` one value."""
    if not isinstance(value, (list, tuple)) or (n is not None and len(value) != n) or len(value) < min_len:
        size = f"{n}" if n is not None else f"at least {min_len}"
        raise ConfigError(source, path, f"a list of {size} {what}", value)
    out = [_number(v, source, f"{path}[{i}]", each) for i, v in enumerate(value)]
    if not any(v > 0 for v in out):
        raise ConfigError(source, path, f"{what}, not all zero", value)
    return out


def _duration(spec: Mapping, kind: str, source: str | None, key: str) -> float:
    raw = _require(spec, "duration", kind, source, key, "a duration such as 4h or 30d")
    return parse_duration_s(raw, source=source, key=f"{key}.duration", allow_zero=False)


_RATE = "a rate in requests per second (a number >= 0)"


def build_diurnal(spec: Mapping, source: str | None, key: str, base_dir: Path | None) -> Diurnal:
    """``{kind: diurnal, mean_rps, peak_to_mean, peak_hour?, weekly?, duration}`` or
    ``{kind: diurnal, hourly_rps: [24 values], weekly?, duration}``."""
    check_keys(spec, KINDS["diurnal"][0], source=source, key=key)
    duration = _duration(spec, "diurnal", source, key)
    weekly = None
    if spec.get("weekly") is not None:
        weekly = _number_list(spec["weekly"], source, f"{key}.weekly", "day-of-week multipliers",
                              "a multiplier (a number >= 0)", n=7)
    if "hourly_rps" in spec:
        for other in ("mean_rps", "peak_to_mean", "peak_hour"):
            if other in spec:
                raise ConfigError(source, f"{key}.{other}", "no value: the profile is given by hourly_rps "
                                  "(use either hourly_rps or mean_rps + peak_to_mean)", spec[other])
        hourly = _number_list(spec["hourly_rps"], source, f"{key}.hourly_rps", "hourly rates (req/s)", _RATE,
                              n=24)
        return Diurnal(duration, hourly_rps=hourly, weekly=weekly)
    if "mean_rps" not in spec:
        raise ConfigError(source, f"{key}.mean_rps", "a mean rate in requests per second (diurnal needs "
                          "either mean_rps + peak_to_mean or hourly_rps: [24 values])")
    mean = _number(spec["mean_rps"], source, f"{key}.mean_rps", "a rate in requests per second (a number > 0)",
                   strict=True)
    ratio = _number(_require(spec, "peak_to_mean", "diurnal", source, key, "a ratio of peak to mean rate (>= 1)"),
                    source, f"{key}.peak_to_mean", "a ratio of peak to mean rate (a number >= 1)", minimum=1.0)
    peak = 14.0
    if spec.get("peak_hour") is not None:
        peak = _number(spec["peak_hour"], source, f"{key}.peak_hour",
                       "an hour of the day in [0, 24) (0 = the trace's start)", maximum=24.0)
    return Diurnal(duration, mean_rps=mean, peak_to_mean=ratio, peak_hour=peak, weekly=weekly)


def build_mmpp(spec: Mapping, source: str | None, key: str, base_dir: Path | None) -> MMPP:
    """``{kind: mmpp, rates_rps: [...], mean_sojourn_s: [...], duration}`` (same lengths >= 2)."""
    check_keys(spec, KINDS["mmpp"][0], source=source, key=key)
    duration = _duration(spec, "mmpp", source, key)
    rates = _number_list(_require(spec, "rates_rps", "mmpp", source, key, "a list of rates (req/s)"),
                         source, f"{key}.rates_rps", "rates (req/s), one per state", _RATE, min_len=2)
    raw = _require(spec, "mean_sojourn_s", "mmpp", source, key, "a list of mean times in each state")
    if not isinstance(raw, (list, tuple)) or len(raw) != len(rates):
        raise ConfigError(source, f"{key}.mean_sojourn_s",
                          f"a list of {len(rates)} mean times in each state (one per rate)", raw)
    sojourns = [parse_duration_s(v, source=source, key=f"{key}.mean_sojourn_s[{i}]", allow_zero=False)
                for i, v in enumerate(raw)]
    return MMPP(rates, sojourns, duration)


_SPIKE_KEYS = ("start_s", "ramp_s", "peak_rps", "duration_s")


def build_spike(spec: Mapping, source: str | None, key: str, base_dir: Path | None) -> Spike:
    """``{kind: spike, base_rps, spikes: [{start_s, ramp_s, peak_rps, duration_s}], duration}``;
    a spike's `duration_s` includes both ramps."""
    check_keys(spec, KINDS["spike"][0], source=source, key=key)
    duration = _duration(spec, "spike", source, key)
    base = _number(_require(spec, "base_rps", "spike", source, key, _RATE), source, f"{key}.base_rps", _RATE)
    raw = _require(spec, "spikes", "spike", source, key, "a list of spikes {start_s, ramp_s, peak_rps, duration_s}")
    if not isinstance(raw, (list, tuple)) or not raw:
        raise ConfigError(source, f"{key}.spikes", "a non-empty list of spikes {start_s, ramp_s, peak_rps, "
                          "duration_s}", raw)
    shapes = []
    for i, s in enumerate(raw):
        at = f"{key}.spikes[{i}]"
        if not isinstance(s, Mapping):
            raise ConfigError(source, at, "a mapping {start_s, ramp_s, peak_rps, duration_s}", s)
        check_keys(s, _SPIKE_KEYS, source=source, key=at)
        for name in _SPIKE_KEYS:
            if name not in s:
                raise ConfigError(source, f"{at}.{name}", f"a value (a spike needs '{name}')")
        start = parse_duration_s(s["start_s"], source=source, key=f"{at}.start_s")
        if start >= duration:
            raise ConfigError(source, f"{at}.start_s", f"a start inside the trace (< duration = {duration:g} s)",
                              s["start_s"])
        ramp = parse_duration_s(s["ramp_s"], source=source, key=f"{at}.ramp_s")
        length = parse_duration_s(s["duration_s"], source=source, key=f"{at}.duration_s", allow_zero=False)
        if 2 * ramp > length:
            raise ConfigError(source, f"{at}.ramp_s", f"at most half the spike's duration_s ({length:g} s): "
                              "duration_s is the whole spike, both ramps included", s["ramp_s"])
        peak = _number(s["peak_rps"], source, f"{at}.peak_rps",
                       f"a peak rate in requests per second >= base_rps ({base:g})", minimum=base)
        shapes.append(SpikeShape(start, ramp, peak, length))
    if base == 0 and not any(s.peak_rps > 0 for s in shapes):
        raise ConfigError(source, f"{key}.base_rps", "a rate > 0 (or a spike with peak_rps > 0): "
                          "this trace has no traffic", base)
    return Spike(base, shapes, duration)


def build_ramp(spec: Mapping, source: str | None, key: str, base_dir: Path | None) -> Ramp:
    """``{kind: ramp, start_rps, end_rps, duration}``: linear from start to end over the trace."""
    check_keys(spec, KINDS["ramp"][0], source=source, key=key)
    duration = _duration(spec, "ramp", source, key)
    start = _number(_require(spec, "start_rps", "ramp", source, key, _RATE), source, f"{key}.start_rps", _RATE)
    end = _number(_require(spec, "end_rps", "ramp", source, key, _RATE), source, f"{key}.end_rps", _RATE)
    if start == 0 and end == 0:
        raise ConfigError(source, f"{key}.end_rps", "a rate > 0 (start_rps and end_rps are both 0: no traffic)",
                          spec["end_rps"])
    return Ramp(start, end, duration)


def build_renewal(spec: Mapping, source: str | None, key: str, base_dir: Path | None) -> Renewal:
    """``{kind: renewal, gap_s: <distribution spec, seconds>, duration}``."""
    check_keys(spec, KINDS["renewal"][0], source=source, key=key)
    duration = _duration(spec, "renewal", source, key)
    raw = _require(spec, "gap_s", "renewal", source, key, "a distribution of gaps in seconds, e.g. "
                   "{dist: gamma, a: 2, scale: 0.05}")
    gap = parse_dist(raw, source=source, key=f"{key}.gap_s", base_dir=base_dir)
    mean = gap.mean()
    if not (math.isfinite(mean) and mean > 0):
        raise ConfigError(source, f"{key}.gap_s", f"a gap distribution with a finite mean > 0 (its mean is "
                          f"{mean:g} s)", raw)
    return Renewal(gap, duration)


_Builder = Callable[[Mapping, "str | None", str, "Path | None"], ArrivalSource]

KINDS: dict[str, tuple[tuple[str, ...], _Builder]] = {
    "diurnal": (("kind", "duration", "mean_rps", "peak_to_mean", "peak_hour", "hourly_rps", "weekly"),
                build_diurnal),
    "mmpp": (("kind", "duration", "rates_rps", "mean_sojourn_s"), build_mmpp),
    "spike": (("kind", "duration", "base_rps", "spikes"), build_spike),
    "ramp": (("kind", "duration", "start_rps", "end_rps"), build_ramp),
    "renewal": (("kind", "duration", "gap_s"), build_renewal),
}
"""kind → (its keys, builder), to merge into ``traces.spec.TRACE_KINDS``."""

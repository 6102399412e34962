"""The scenario's ``trace:`` mapping → an `ArrivalSource`.

Kinds::

    {kind: poisson, rate_rps: 50, duration: 4h}
    {kind: diurnal, mean_rps: 20, peak_to_mean: 3, duration: 30d}   # or hourly_rps: [24 values]
    {kind: mmpp, rates_rps: [5, 200], mean_sojourn_s: [600, 60], duration: 1d}
    {kind: spike, base_rps: 10, spikes: [{start_s: 3600, ramp_s: 60, peak_rps: 500, duration_s: 600}], duration: 4h}
    {kind: ramp, start_rps: 1, end_rps: 100, duration: 2h}
    {kind: renewal, gap_s: {dist: weibull_min, c: 0.6, scale: 0.05}, duration: 1h}
    {kind: list, times: [0.5, 1.2, 7], duration: 10}           # duration optional
    {kind: file, path: arrivals.csv, column: t, duration: 1h}     # seconds or ISO datetimes (origin: ...)
    {kind: azure2019, ...}  {kind: azure2021, ...}  {kind: azure_llm, ...}   (traces.azure)

Composition, on any of them::

    {superpose: [{kind: poisson, ...}, {kind: spike, ...}]}     # independent sources merged
    scale: 2.5        # rate x 2.5: exact for generators; thinning (<= 1 only) for replayed traces
    shift_s: 3600     # every arrival 1 h later

Durations are seconds or strings with a unit (``90s``, ``15m``, ``4h``, ``30d``). A file path
resolves relative to `base_dir` (the folder of the scenario file). Every key is checked: an
unknown one is an error that suggests the closest valid key.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Callable, Mapping

from sim.errors import ConfigError, check_keys
from sim.units import parse_duration_s

from .azure import KINDS as AZURE_KINDS
from .base import ArrivalSource
from .compose import Scaled, Shifted, Superpose
from .files import TimestampFile, TimestampList, parse_origin_ns
from .generator_specs import KINDS as GENERATOR_KINDS
from .poisson import Poisson

__all__ = ["parse_trace", "TRACE_KINDS"]


def _mapping(spec: Any, source: str | None, key: str) -> Mapping:
    if not isinstance(spec, Mapping):
        raise ConfigError(source, key, "a mapping such as {kind: poisson, rate_rps: 50, duration: 4h}", spec)
    return spec


def _rate(value: Any, source: str | None, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ConfigError(source, key, "a rate in requests per second (a number > 0)", value)
    return float(value)


def _poisson(spec: Mapping, source: str | None, key: str, base_dir: Path | None) -> ArrivalSource:
    for required in ("rate_rps", "duration"):
        if required not in spec:
            raise ConfigError(source, f"{key}.{required}", f"a value (poisson needs '{required}')")
    return Poisson(_rate(spec["rate_rps"], source, f"{key}.rate_rps"),
                   parse_duration_s(spec["duration"], source=source, key=f"{key}.duration", allow_zero=False))


def _duration_or_none(spec: Mapping, source: str | None, key: str) -> float | None:
    if spec.get("duration") is None:
        return None
    return parse_duration_s(spec["duration"], source=source, key=f"{key}.duration", allow_zero=False)


def _list(spec: Mapping, source: str | None, key: str, base_dir: Path | None) -> ArrivalSource:
    if "times" not in spec:
        raise ConfigError(source, f"{key}.times", "a list of arrival times in seconds")
    return TimestampList(spec["times"], _duration_or_none(spec, source, key), source=source, key=f"{key}.times")


def _file(spec: Mapping, source: str | None, key: str, base_dir: Path | None) -> ArrivalSource:
    raw = spec.get("path")
    if not isinstance(raw, str) or not raw:
        raise ConfigError(source, f"{key}.path", "the path of a CSV or Parquet file of timestamps", raw)
    path = Path(raw).expanduser()
    if not path.is_absolute():
        path = (base_dir if base_dir is not None else Path.cwd()) / path
    if not path.is_file():
        raise ConfigError(source, f"{key}.path", "an existing CSV or Parquet file", str(path))
    column = spec.get("column")
    if column is not None and not isinstance(column, str):
        raise ConfigError(source, f"{key}.column", "a column name (a string)", column)
    origin = spec.get("origin")
    if origin is not None:
        parse_origin_ns(origin, source, f"{key}.origin")  # a bad one is named in the scenario file
    return TimestampFile(path, column=column, duration_s=_duration_or_none(spec, source, key), origin=origin)


_Builder = Callable[[Mapping, "str | None", str, "Path | None"], ArrivalSource]

TRACE_KINDS: dict[str, tuple[tuple[str, ...], _Builder]] = {
    "poisson": (("kind", "rate_rps", "duration"), _poisson),
    "list": (("kind", "times", "duration"), _list),
    "file": (("kind", "path", "column", "duration", "origin"), _file),
    **GENERATOR_KINDS,
    **AZURE_KINDS,
}
"""kind → (its keys, builder)."""

COMPOSE_KEYS = ("scale", "shift_s")
"""Keys any trace mapping may carry besides its kind's own."""


def parse_trace(spec: Any, *, source: str | None, key: str = "trace", base_dir: Path | None) -> ArrivalSource:
    """Build the arrival source a scenario's ``trace:`` mapping describes.

    Errors are `ConfigError` naming `source` (the scenario file) and the key path under `key`;
    a bad value inside a timestamp file names that file and its line or row.
    """
    spec = _mapping(spec, source, key)
    if "superpose" in spec:
        check_keys(spec, ("superpose",) + COMPOSE_KEYS, source=source, key=key)
        parts = spec["superpose"]
        if not isinstance(parts, list) or len(parts) < 2:
            raise ConfigError(source, f"{key}.superpose", "a list of at least two trace mappings", parts)
        src: ArrivalSource = Superpose([parse_trace(p, source=source, key=f"{key}.superpose[{i}]", base_dir=base_dir)
                                        for i, p in enumerate(parts)])
    else:
        kind = spec.get("kind")
        if not isinstance(kind, str) or kind not in TRACE_KINDS:
            known = ", ".join(TRACE_KINDS)
            raise ConfigError(source, f"{key}.kind", f"one of {known} (or superpose: [...])",
                              *(() if "kind" not in spec else (kind,)))
        allowed, build = TRACE_KINDS[kind]
        check_keys(spec, allowed + COMPOSE_KEYS, source=source, key=key)
        src = build({k: v for k, v in spec.items() if k not in COMPOSE_KEYS}, source, key, base_dir)
    if "scale" in spec:
        f = spec["scale"]
        if isinstance(f, bool) or not isinstance(f, (int, float)) or not math.isfinite(f) or f <= 0:
            raise ConfigError(source, f"{key}.scale", "a rate multiplier (a number > 0)", f)
        try:
            src = Scaled(src, float(f))
        except ValueError as exc:
            raise ConfigError(source, f"{key}.scale", f"a factor this trace supports ({exc})", f) from None
    if "shift_s" in spec:
        src = Shifted(src, parse_duration_s(spec["shift_s"], source=source, key=f"{key}.shift_s"))
    return src

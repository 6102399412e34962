"""What the `servesim trace` commands do: generate a trace to a file, and describe one.

A trace is named either by a data file (CSV or Parquet of timestamps) or by a scenario file
(its `trace:` and its seed). Generated traces use the same seed derivation as simulations, so
`trace gen --seed 7` writes exactly the arrivals a scenario with `seed: 7` simulates.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
import pandas as pd

from sim.errors import ConfigError
from sim.streams import ARRIVALS, child_seed
from traces.base import ArrivalSource
from traces.files import TimestampFile
from traces.spec import parse_trace
from traces.stats import TraceStats, trace_stats

from .outputs import ParquetStream

TIME_COLUMN = "t_s"
SCENARIO_SUFFIXES = (".yaml", ".yml")


def trace_from_params(kind: str, params: Mapping[str, Any], duration: Any, *, base_dir: Path) -> ArrivalSource:
    """A source from command-line parameters, validated like a scenario's `trace:`."""
    spec = {"kind": kind, **params}
    if duration is not None:
        spec["duration"] = duration
    return parse_trace(spec, source="command line", key="trace", base_dir=base_dir)


def generate(source: ArrivalSource, seed: int, out: str | Path,
             progress: Callable[[int, float], None] | None = None) -> int:
    """Write the source's arrivals (column t_s, plus any attributes) to a Parquet file, atomically."""
    n = 0
    with ParquetStream(out) as stream:
        for batch in source.batches(child_seed(seed, ARRIVALS)):
            stream.write(pd.DataFrame({TIME_COLUMN: batch.times, **batch.attrs}))
            n += batch.times.size
            if progress is not None:
                progress(batch.times.size, float(batch.times[-1]))
        if n == 0:
            stream.write(pd.DataFrame({TIME_COLUMN: np.zeros(0)}))
    return n


@dataclass
class TraceReport:
    name: str
    source: ArrivalSource
    stats: TraceStats
    notes: list[str]
    durations_ms: dict | None = None
    """Percentiles of the trace's own duration distribution, where it has one (Azure traces)."""


def duration_summary(source: ArrivalSource) -> dict | None:
    """p1..p100 of the source's duration distribution (ms), or None when it has none."""
    get = getattr(source, "duration_distribution", None)
    if get is None:
        return None
    try:
        d = get()
    except ConfigError:  # e.g. an Azure 2019 trace read without its duration files
        return None
    qs = (0.01, 0.25, 0.5, 0.75, 0.99, 1.0)
    vals = d.ppf(np.array([min(q, 1 - 1e-12) for q in qs]))
    return {"mean": d.mean(), **{f"p{round(q * 100)}": float(v) for q, v in zip(qs, vals)}}


def open_trace(path: str | Path, column: str | None = None) -> tuple[str, ArrivalSource, int]:
    """(name, source, seed) for a scenario file or a timestamp file."""
    path = Path(path)
    if path.suffix.lower() in SCENARIO_SUFFIXES:
        from .loader import load_scenario

        sc = load_scenario(path)
        return sc.name, sc.trace, sc.seed
    if not path.is_file():
        raise ConfigError(str(path), "", "an existing scenario (.yaml) or trace file (.csv, .parquet)")
    if column is None and path.suffix.lower() == ".parquet":
        import pyarrow.parquet as pq

        names = pq.read_schema(path).names
        column = TIME_COLUMN if TIME_COLUMN in names else None
    return path.name, TimestampFile(path, column=column), 0


def describe(path: str | Path, column: str | None = None,
             progress_for: Callable[[ArrivalSource], Callable | None] | None = None) -> TraceReport:
    name, source, seed = open_trace(path, column)
    prog = progress_for(source) if progress_for else None
    stats = trace_stats(source.chunks(child_seed(seed, ARRIVALS)), source.duration_s, progress=prog)
    return TraceReport(name, source, stats, source.notes(), duration_summary(source))

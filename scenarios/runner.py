"""Wire a scenario into the simulator: its trace, its platforms, the pricing, and the outputs.

`run_scenario` is what `servesim simulate` calls. Results are plain data; writing them
(`save_results`) is a separate step, and every file is written atomically.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import yaml

from sim.pricing import Pricing, load_pricing
from sim.run import PlatformResult, simulate

from .loader import Scenario
from .outputs import RecordWriter, write_json, write_text


@dataclass
class ScenarioRun:
    scenario: Scenario
    results: list[PlatformResult]
    pricing: Pricing
    wall_s: float

    def summaries(self) -> list[dict]:
        return [r.summary for r in self.results]


def scenario_pricing(scenario: Scenario, override: str | Path | None = None) -> Pricing:
    """The pricing file: the command line's, else the scenario's `pricing:`, else the packaged one."""
    return load_pricing(override if override is not None else scenario.pricing_path)


def run_scenario(scenario: Scenario, *, pricing: Pricing | None = None, records_path: str | Path | None = None,
                 progress_for: Callable | None = None) -> ScenarioRun:
    """Simulate every platform of `scenario`; `records_path` streams per-request records to Parquet."""
    pricing = pricing or scenario_pricing(scenario)
    t0 = time.perf_counter()
    kwargs = dict(pricing=pricing, seed=scenario.seed, warmup_s=scenario.warmup_s, engine=scenario.engine,
                  progress_for=progress_for)
    if records_path is not None:
        with RecordWriter(records_path) as rw:
            results = simulate(scenario.platforms, scenario.trace, record_sink_for=lambda cfg: rw.sink(cfg.name),
                               **kwargs)
    else:
        results = simulate(scenario.platforms, scenario.trace, **kwargs)
    return ScenarioRun(scenario, results, pricing, time.perf_counter() - t0)


def save_results(run: ScenarioRun, out_dir: str | Path) -> list[Path]:
    """Write results.json, series.csv and the resolved scenario next to each other."""
    out = Path(out_dir)
    written = []
    write_json(out / "results.json", run.summaries())
    written.append(out / "results.json")
    import pandas as pd

    series = pd.concat([r.series.assign(platform=r.summary["platform"]) for r in run.results], ignore_index=True)
    write_text(out / "series.csv", series.to_csv(index=False))
    written.append(out / "series.csv")
    resolved = dict(run.scenario.raw)
    resolved["_resolved"] = {
        "platforms": [_platform_dict(p) for p in run.scenario.platforms],
        "pricing_file": str(run.pricing.file) if getattr(run.pricing, "file", None) else None,
    }
    write_text(out / "scenario.resolved.yaml", yaml.safe_dump(resolved, sort_keys=False))
    written.append(out / "scenario.resolved.yaml")
    return written


def _platform_dict(cfg) -> dict:
    """A platform config as plain data, distributions as their specs."""
    import dataclasses

    from sim.config import platform_kind
    from sim.dists import Distribution

    def conv(v):
        if isinstance(v, Distribution):
            return v.to_spec()
        if dataclasses.is_dataclass(v):
            return {f.name: conv(getattr(v, f.name)) for f in dataclasses.fields(v)}
        return v

    return {"kind": platform_kind(cfg), **conv(cfg)}

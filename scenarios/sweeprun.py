"""Run the points of a sweep on an executor, appending each point's rows as it finishes.

`run_sweep(scenario, out_dir, executor=...)` simulates every point of the scenario's ``sweep:``
(`scenarios.sweep`) and keeps a table with one row per (point, platform): the point's index,
``param.<path>`` per swept parameter, the platform's Result flattened with dots
(`scenarios.analysis.flatten_summary`), the engine, the seed, ``status`` (ok or error) and
``error``. A platform configuration is simulated once, at the first point that has it
(`scenarios.sweep.SweepPoint.runs`), and its row carries only the parameters that apply to it (an
EC2 row has no ``param.lambda.memory_mb``): the table has one row per distinct simulation.

- **Executors.** ``serial`` (this process), ``processes`` (a process pool of all cores, the
  default) and ``dask`` (Dask distributed: the scheduler at `address`, or a LocalCluster started
  and stopped here). A point is the same computation wherever it runs (its scenario is rebuilt
  from the same mapping, the seed is the scenario's), so the table does not depend on the
  executor.
- **Failures.** A platform that raises at a point is a row with ``status: error`` and the
  message; the other platforms and points go on.
- **Nothing lost.** Each finished point is written at once, atomically, as
  ``points/point-<index>.parquet`` (with ``point-<index>.json``: each platform's latency
  histogram and per-minute series, for the plots); ``sweep.json`` records the sweep's fingerprint. Run again on
  the same folder and the finished points are kept and skipped (a folder of another sweep is
  refused). The whole table is then written as ``sweep.parquet`` and ``sweep.csv``.
- A progress bar runs across the points.
"""
from __future__ import annotations

import hashlib
import json
import os
import traceback
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path
from typing import Callable, Iterable

import pandas as pd

from sim.atomic import atomic_path, write_text
from sim.errors import ServesimError

from .loader import Scenario

EXECUTORS = ("serial", "processes", "dask")
META = "sweep.json"


def fingerprint(scenario: Scenario) -> str:
    """What identifies a sweep: its scenario mapping (points included), as a short hash."""
    text = json.dumps(scenario.raw, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def simulate_point(raw: dict, source: str, base_dir: str | None, index: int, params: dict,
                   pricing_path: str | None, runs: dict[str, tuple[str, ...]]) -> tuple[list[dict], dict]:
    """One point: for each platform in `runs` (`SweepPoint.runs`), rebuild the point's scenario
    with that platform alone and simulate it. (One flat row per platform, carrying only the
    parameters that apply to it (the others None), or an error row for a platform that fails;
    per platform its latency histogram and per-minute series, for the report's plots.) Runs in
    whichever process the executor chose; a platform's failure leaves the others' rows."""
    from scenarios.analysis import flatten_summary
    from scenarios.loader import scenario_from_dict
    from scenarios.runner import run_scenario
    from scenarios.sweep import SweepPoint, apply_point
    from sim.pricing import load_pricing

    point = SweepPoint(index, dict(params))
    label = f"{source} (sweep point {index}: {point.label()})"
    rows, extras = [], {}
    for name, paths in runs.items():
        base = {"point": index, **{f"param.{k}": (v if k in paths else None) for k, v in params.items()}}
        try:
            data = apply_point(raw, point, source=label)
            data["platforms"] = [p for p in data["platforms"] if p["name"] == name]
            scenario = scenario_from_dict(data, source=label, base_dir=Path(base_dir) if base_dir else None)
            (result,) = run_scenario(scenario, pricing=load_pricing(pricing_path)).results
        except Exception as exc:  # noqa: BLE001 - a failed platform is reported and the others go on
            message = str(exc) if isinstance(exc, ServesimError) else "".join(
                traceback.format_exception_only(type(exc), exc)).strip()
            rows.append({**base, "platform": name, "status": "error", "error": message})
            continue
        rows.append({**base, **flatten_summary(result.summary), "status": "ok", "error": None})
        extras[name] = {"histogram": result.histogram.to_dict(), "series": result.series.to_dict(orient="list")}
    return rows, extras


def _point_file(out: Path, index: int) -> Path:
    return out / "points" / f"point-{index:05d}.parquet"


def _write_point(out: Path, index: int, result: tuple[list[dict], dict]) -> None:
    """The point's extras first, then its rows: a point counts as finished once its rows exist."""
    rows, extras = result
    write_text(point_extras_file(out, index), json.dumps(extras, default=_plain))
    with atomic_path(_point_file(out, index)) as tmp:
        pd.DataFrame(rows).to_parquet(tmp, index=False)


def _plain(x):
    return x.item() if hasattr(x, "item") else str(x)


def point_extras_file(out: str | Path, index: int) -> Path:
    """A finished point's histograms and per-minute series (JSON: {platform: {histogram, series}})."""
    return Path(out) / "points" / f"point-{index:05d}.json"


def read_point_extras(out: str | Path, index: int) -> dict:
    """{platform: {"histogram": LogHistogram, "series": DataFrame}} of a finished point."""
    from sim.histogram import LogHistogram

    data = json.loads(point_extras_file(out, index).read_text())
    return {name: {"histogram": LogHistogram.from_dict(v["histogram"]), "series": pd.DataFrame(v["series"])}
            for name, v in data.items()}


def read_points(out: str | Path) -> pd.DataFrame:
    """Every finished point's rows, in point order."""
    files = sorted((Path(out) / "points").glob("point-*.parquet"))
    if not files:
        return pd.DataFrame()
    table = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True).sort_values(
        ["point"], kind="stable").reset_index(drop=True)
    for col in [c for c in table.columns if c.startswith("param.")]:
        # Whole numbers stay whole where a parameter does not apply (None) to some rows.
        values = pd.to_numeric(table[col], errors="coerce")
        given = table[col].notna()
        if given.any() and values[given].notna().all() and (values[given] % 1 == 0).all():
            table[col] = values.astype("Int64")
    return table


def _check_folder(out: Path, scenario: Scenario) -> set[int]:
    """The points already finished in `out` (creating its metadata if new)."""
    meta_path = out / META
    fp = fingerprint(scenario)
    if meta_path.exists():
        meta = json.loads(meta_path.read_text())
        if meta.get("fingerprint") != fp:
            raise ServesimError(f"{out} holds another sweep (fingerprint {meta.get('fingerprint')}, this one {fp}): "
                                "use another --out folder")
    else:
        write_text(meta_path, json.dumps({"fingerprint": fp, "scenario": scenario.name,
                                          "source": str(scenario.path) if scenario.path else None}, indent=2))
    return {int(f.stem.split("-")[1]) for f in (out / "points").glob("point-*.parquet")}


def run_sweep(scenario: Scenario, out_dir: str | Path, *, executor: str = "processes", address: str | None = None,
              workers: int | None = None, pricing_path: str | Path | None = None, progress: bool = True,
              on_point: Callable[[int], None] | None = None) -> pd.DataFrame:
    """Run the sweep of `scenario` into `out_dir` (see the module docstring); the whole table.
    `on_point(index)` is called after each point is on disk."""
    from .sweep import parse_sweep

    if executor not in EXECUTORS:
        raise ServesimError(f"--executor must be one of {', '.join(EXECUTORS)}, got {executor!r}")
    spec = parse_sweep(scenario)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    done = _check_folder(out, scenario)
    todo = [p for p in spec.points if p.index not in done and p.runs != {}]  # {}: nothing new to simulate
    source = str(scenario.path) if scenario.path else scenario.name
    base_dir = str(scenario.path.parent) if scenario.path else None
    pricing = str(pricing_path) if pricing_path else (str(scenario.pricing_path) if scenario.pricing_path else None)
    args = [(dict(scenario.raw), source, base_dir, p.index, dict(p.params), pricing, p.runs) for p in todo]
    total = sum(1 for p in spec.points if p.runs != {})
    with _Bar(progress, total, total - len(todo)) as bar:
        for index, result in _execute(executor, args, address, workers):
            _write_point(out, index, result)
            bar.advance(result[0])
            if on_point is not None:
                on_point(index)
    table = read_points(out)
    with atomic_path(out / "sweep.parquet") as tmp:
        table.to_parquet(tmp, index=False)
    with atomic_path(out / "sweep.csv") as tmp:
        table.to_csv(tmp, index=False)
    return table


def _execute(executor: str, args: list[tuple], address: str | None, workers: int | None) -> Iterable[tuple[int, tuple]]:
    """(index, simulate_point's result) for every point, as they finish."""
    if not args:
        return
    if executor == "serial":
        for a in args:
            yield a[3], simulate_point(*a)
        return
    if executor == "processes":
        n = workers or os.cpu_count() or 1
        with ProcessPoolExecutor(max_workers=n, mp_context=get_context("spawn")) as pool:
            futures = {pool.submit(simulate_point, *a): a[3] for a in args}
            try:
                for f in as_completed(futures):
                    yield futures[f], f.result()
            except BaseException:
                for f in futures:
                    f.cancel()
                raise
        return
    yield from _execute_dask(args, address, workers)


def _execute_dask(args: list[tuple], address: str | None, workers: int | None) -> Iterable[tuple[int, tuple]]:
    try:
        from distributed import Client, LocalCluster, as_completed as dask_completed
    except ImportError:
        raise ServesimError("--executor dask needs Dask distributed: pip install 'servesim[distributed]'") from None
    cluster = None
    try:
        if address:
            client = Client(address)
        else:
            cluster = LocalCluster(n_workers=workers or os.cpu_count() or 1, threads_per_worker=1, processes=True,
                                   host="127.0.0.1", dashboard_address=None)
            client = Client(cluster)
        with client:
            futures = [client.submit(simulate_point, *a, key=f"servesim-point-{a[3]}-{a[0].get('name', '')}",
                                     pure=False) for a in args]
            index_of = {f.key: a[3] for f, a in zip(futures, args)}
            try:
                for f in dask_completed(futures):
                    yield index_of[f.key], f.result()
            except BaseException:
                client.cancel(futures)
                raise
    finally:
        if cluster is not None:
            cluster.close()


class _Bar:
    """A progress bar across the points (silent when disabled)."""

    def __init__(self, enabled: bool, total: int, done: int):
        self.enabled, self.total, self.done = enabled, total, done
        self._progress = None

    def __enter__(self):
        if self.enabled:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self._progress = Progress(TextColumn("sweep"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                                      TextColumn("{task.fields[failed]} failed"), transient=False)
            self._progress.__enter__()
            self._task = self._progress.add_task("sweep", total=self.total, completed=self.done, failed=0)
        return self

    def advance(self, rows: list[dict]) -> None:
        if self._progress is not None:
            failed = self._progress.tasks[0].fields["failed"] + any(r.get("status") == "error" for r in rows)
            self._progress.update(self._task, advance=1, failed=failed)

    def __exit__(self, *exc):
        if self._progress is not None:
            self._progress.__exit__(*exc)

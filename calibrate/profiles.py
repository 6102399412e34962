"""From a measurement table to a calibration profile (``servesim.profile/1``, see sim/profile.py).

What is taken from the table (only rows with status ``ok`` are fitted; every status is counted):

- **Lambda-like** rows (``memory_mb`` set): one entry per (memory_mb, architecture).
  ``warm_ms`` is fitted to ``server_ms`` of phase ``warm``: Lambda's Duration, the invocation as
  billed, which is what the simulator's warm_ms stands for (client-side network and front-door
  time is not part of it). If a configuration has no server_ms, ``client_ms`` is used and the fit
  metadata says so (``column``). **Idle effect**: each warm request's idle time (its send time
  minus the previous warm request's send time and client latency; the phase's first request has
  none and is left out) and its duration go to `calibrate.fit.fit_idle_effect`; when it finds an
  effect, the entry gets ``idle_effect: {hot_ratio, tau_ms, fit}`` and ``warm_ms`` is fitted to
  the durations carried to a rested unit; otherwise the reason is in ``warm_ms.fit.idle_effect``
  and ``warm_ms`` is fitted to the durations as measured. The same holds for servers.
  ``cold_init_ms`` is fitted to ``init_ms`` of phase ``cold`` (Lambda's Init Duration). ``max_memory_mb`` is the largest ``max_memory_mb`` seen in any phase.
- **Server-like** rows (``memory_mb`` null): one entry per (instance type, workers); the instance
  type is ``instance_type``, or ``local`` (``local-<cpus>vcpu`` when a CPU limit was set) for the
  local server. ``service_ms`` is fitted to ``client_ms`` of phase ``warm``: sequential requests,
  one at a time, so the client-side latency is the time one worker is busy with a request
  (parsing, inference, response) plus the loopback or network round trip, which the simulator has
  no other place for. ``boot_s`` is fitted to ``init_ms / 1000`` of phase ``cold`` (process
  start, or launch, to ready), when there is one. ``throughput``: phase ``load`` grouped by
  ``level``; per level, concurrency = the largest ``concurrency`` recorded (clients in flight),
  rps = ok responses / (last completion - first send), p50_ms and p99_ms of ``client_ms``. Points
  whose concurrency does not increase over the one before are dropped (counted).
  The **knee** is the last point, walking up in concurrency, before the first one whose p99 is
  more than 2x the lowest level's p99 or whose throughput grows by less than 5 % over the point
  before. sim/profile.py has no key for it, nor for the status counts, so for now both ride in the
  free-form ``fit`` metadata of the entry's main distribution (``service_ms.fit.knee``,
  ``warm_ms.fit.status`` / ``service_ms.fit.status``: counts per phase and status).
- **http** rows (target ``http``: an endpoint measured as a black box): one entry per
  ``config`` (``label=<label>,url=<url>``; a table of the older ``url=<url>`` form gets the
  label `calibrate.targets.http_label` makes of the URL). ``service_ms`` is fitted to
  ``client_ms`` of phase ``warm`` as measured (no idle-effect correction: the entry has no key
  for one, and the simulator's platforms that use it apply none). ``start_s`` is fitted to
  ``init_ms / 1000`` of the ok phase ``cold`` rows that have one: the requests after an idle
  period that the campaign classified as cold starts (`calibrate.fit.ColdRule`; ``init_ms`` is
  their latency minus the warm median), or null when there is none, the reason in
  ``cold_detection.reason``. ``cold_detection`` also holds the rule and its figures (recomputed
  from the warm rows), how many requests followed an idle period and how many were cold starts,
  and the idle time before them as measured (send time minus the latest completion before
  it); ``counts`` the status counts per phase. The load levels' knee, if any, rides in
  ``service_ms.fit.knee`` as for servers.
- **Host share** (``host_share``, `calibrate.fit.fit_host_share`), when the configuration has
  rows of phase ``burst`` (k requests sent at once, ``level`` = k): Lambda-like entries from the
  ok cold-burst rows' ``init_ms`` (those with an Init Duration) and the warm-burst rows'
  ``server_ms``, by k; server entries from the warm bursts' ``server_ms`` (the app's inference
  time; ``client_ms`` where it has none). ``{cores, init_cores, work_cores, work_contention,
  fit}`` (work_contention only when the warm bursts show one), or ``{cores: null, fit: {reason,
  ...}}`` when the stretch is not identified.
  **INIT after host idle**: a Lambda-like configuration with rows of phase ``cold_idle`` (a cold
  start after ``level`` seconds in which the host ran nothing of the target) gets
  `calibrate.fit.fit_init_idle` of their ok ``init_ms`` against the ok cold-phase ``init_ms``
  (back to back, the reference): factor = ratio of the medians; when identified (at least 3 of
  each, factor >= 1.1, one-sided Mann-Whitney p < 0.01) and ``cores`` is too, ``host_share``
  gets ``init_idle_s`` (the shortest idle measured) and ``init_idle_factor``; the figures, and
  why the keys are absent when they are, are in ``host_share.fit.init_idle``. (With cold_idle
  rows and no bursts, ``host_share`` is ``{cores: null, fit}``.)
  **Way in**: a Lambda-like configuration with rows of phase ``pairs`` (request A, even ``seq``,
  then B, the odd one after it, sent ``level`` ms later) and identified ``cores`` gets
  `calibrate.fit.fit_way_in` of A's ``server_ms`` against the actual offset (B's ``send_s``
  minus A's), pairs whose two requests are ok and warm, on the host just fitted: when identified
  ``host_share`` gets ``way_in_ms`` and ``way_in_pressure``; the figures, and why the keys are
  absent when they are, are in ``host_share.fit.way_in``.
- **Memory scaling** (``lambda_scaling``, top level, keyed by architecture, for every architecture
  measured at two or more memory sizes): `calibrate.fit.fit_memory_scaling` on the same warm
  samples as ``warm_ms`` (rested ones when an idle effect was found).

Identity: ``model.name`` from ``model`` (one model per table), ``model.sha256`` from
``model_sha256`` when it is one 64-hex value; ``measured.target`` the distinct targets joined with
``+``; ``measured.at`` the first send time (UTC); ``measured.host`` and ``measured.versions`` from
``_campaign.json`` beside the table's parts when present (keys ``host`` and ``versions``).
``measured.table_sha256``: with `source_path`, the sha256 of the bytes of the table's ``.parquet``
files concatenated in sorted order of their paths relative to the table folder (or of the one
file); without it, the sha256 of the DataFrame's canonical CSV (the measurement columns in schema
order; integer columns as integers, float columns as Python's repr, strings JSON-quoted, nulls
empty; the header line, then the row lines sorted), the same for a table read back from Parquet.
"""
from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from sim.atomic import write_text
from sim.config import HostShare
from sim.errors import ConfigError
from sim.profile import SCHEMA

from .fit import (FitReport, HostShareFit, IdleFit, InitIdleFit, WayInFit, fit_host_share, fit_idle_effect,
                  fit_init_idle, fit_memory_scaling, fit_samples, fit_way_in)
from .table import COLUMNS

__all__ = ["profile_from_table", "fit_measurements", "write_profile", "read_table", "table_sha256",
           "KNEE_P99_FACTOR", "KNEE_MIN_GROWTH"]

KNEE_P99_FACTOR = 2.0
KNEE_MIN_GROWTH = 0.05
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_STATUS_PHASES = ("cold", "warm", "load", "burst", "pairs", "cold_idle")


# -- reading ----------------------------------------------------------------------------------------

def read_table(path: str | Path) -> pd.DataFrame:
    """Read a measurement table (a folder of Parquet parts, or one file), checking its columns."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(str(path), "", "an existing measurement table (a folder of Parquet parts or a .parquet file)")
    try:
        df = pd.read_parquet(path)
    except Exception as exc:  # pyarrow's errors are many
        raise ConfigError(str(path), "", f"a readable Parquet measurement table ({exc})") from None
    _check_columns(df, str(path))
    return df


def _check_columns(df: pd.DataFrame, source: str | None) -> None:
    missing = [n for n in COLUMNS.names if n not in df.columns]
    if missing:
        raise ConfigError(source, "columns", f"the measurement table's columns (missing: {', '.join(missing)})")


def table_sha256(df: pd.DataFrame, source_path: str | Path | None = None) -> str:
    """The table's sha256 (see the module docstring for what is hashed)."""
    h = hashlib.sha256()
    paths = [Path(x) for x in source_path] if isinstance(source_path, (list, tuple)) else \
        [Path(source_path)] if source_path is not None else []
    if paths and all(p.exists() for p in paths):
        files = []
        for p in paths:  # several tables: in the order given
            files += [p] if p.is_file() else sorted(p.rglob("*.parquet"), key=lambda f: f.relative_to(p).as_posix())
        for f in files:
            with open(f, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    h.update(block)
        return h.hexdigest()
    cols = list(COLUMNS.names)
    kinds = ["int" if pa.types.is_integer(f.type) else "float" if pa.types.is_floating(f.type) else "str"
             for f in COLUMNS]

    def cell(v: Any, kind: str) -> str:  # by the schema's type, so int64-with-nulls read back as float agrees
        if v is None or v is pd.NA or (isinstance(v, (float, np.floating)) and math.isnan(v)):
            return ""
        if kind == "int":
            return str(int(v))
        if kind == "float":
            return repr(float(v))
        return json.dumps(str(v))

    lines = sorted(",".join(cell(v, k) for v, k in zip(row, kinds))
                   for row in df[cols].astype(object).itertuples(index=False))
    h.update((",".join(cols) + "\n").encode())
    for line in lines:
        h.update((line + "\n").encode())
    return h.hexdigest()


def _campaign_info(source_path) -> dict:
    if isinstance(source_path, (list, tuple)):  # several tables: the first one's host and versions
        source_path = source_path[0] if source_path else None
    if source_path is None:
        return {}
    p = Path(source_path)
    f = (p if p.is_dir() else p.parent) / "_campaign.json"
    try:
        data = json.loads(f.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    out: dict = {}
    host = data.get("host") if isinstance(data, dict) else None
    versions = data.get("versions") if isinstance(data, dict) else None
    if isinstance(host, dict):  # the campaign's host checks: its name, and the versions it ran
        versions = versions or host.get("versions")
        host = host.get("hostname") or host.get("name")
    if isinstance(host, str) and host:
        out["host"] = host
    if isinstance(versions, dict):
        out["versions"] = {str(k): str(v) for k, v in versions.items() if v is not None}
    return out


# -- fitting --------------------------------------------------------------------------------------------

def _status_counts(rows: pd.DataFrame) -> dict:
    out = {}
    for phase in _STATUS_PHASES:
        sub = rows[rows["phase"] == phase]
        if len(sub):
            counts = sub["status"].value_counts()
            out[phase] = {s: int(counts.get(s, 0)) for s in ("ok", "throttled", "error", "timeout")}
            other = int(len(sub) - sum(out[phase].values()))
            if other:
                out[phase]["other"] = other
    return out


def _values(rows: pd.DataFrame, column: str) -> np.ndarray:
    v = pd.to_numeric(rows[column], errors="coerce").to_numpy(dtype=float)
    return v[np.isfinite(v)]


def _spec_with_fit(report: FitReport, **extra) -> dict:
    return {**report.spec, "fit": {**report.fit_meta(), **extra}}


def _warm_with_idle(grp: pd.DataFrame, column: str, label: str, fits: list) -> IdleFit:
    """The idle-effect fit of the ok warm durations in `column` against their idle times (see the
    module docstring), also appended to `fits` for its plot."""
    warm = grp[grp["phase"] == "warm"].sort_values(["run_id", "seq"])
    send = pd.to_numeric(warm["send_s"], errors="coerce").to_numpy(dtype=float)
    done = send + pd.to_numeric(warm["client_ms"], errors="coerce").to_numpy(dtype=float) / 1000.0
    idle = np.full(send.size, np.nan)
    same_run = (warm["run_id"].to_numpy()[1:] == warm["run_id"].to_numpy()[:-1])
    idle[1:] = np.where(same_run, send[1:] - done[:-1], np.nan)
    x = pd.to_numeric(warm[column], errors="coerce").to_numpy(dtype=float)
    keep = (warm["status"] == "ok").to_numpy() & np.isfinite(x)
    idle_fit = fit_idle_effect(idle[keep], x[keep])
    fits.append((label, idle_fit.x_ms, idle_fit))
    return idle_fit


def _idle_entry(idle: IdleFit) -> dict:
    """The entry's ``idle_effect`` (the fit's rounded figures, the rest of what it saw as ``fit``)."""
    fit = {k: v for k, v in idle.meta.items() if k not in ("hot_ratio", "tau_ms")}
    return {"idle_effect": {"hot_ratio": idle.meta["hot_ratio"], "tau_ms": idle.meta["tau_ms"], "fit": fit}}


def _by_k(rows: pd.DataFrame, column: str) -> dict[int, np.ndarray]:
    return {int(k): _values(g, column) for k, g in rows.groupby("level", dropna=True)}


def _init_idle(grp: pd.DataFrame) -> InitIdleFit | None:
    """The INIT-after-idle fit of a Lambda-like configuration: its ok cold_idle rows' init_ms
    against its ok cold rows' (None without cold_idle rows; see the module docstring)."""
    if not (grp["phase"] == "cold_idle").any():
        return None
    ok = grp[grp["status"] == "ok"]
    idle = ok[ok["phase"] == "cold_idle"]
    levels = _values(idle, "level")
    return fit_init_idle(_values(idle, "init_ms"), _values(ok[ok["phase"] == "cold"], "init_ms"),
                         float(levels.min()) if levels.size else None)


def _way_in(grp: pd.DataFrame, share: HostShareFit) -> WayInFit | None:
    """The way in from the entry's pairs rows (None without any): A is a pair's even seq, B the
    odd one after it; a pair counts when both are ok and warm."""
    rows = grp[grp["phase"] == "pairs"]
    if rows.empty:
        return None
    rows = rows.assign(pair=rows["seq"] // 2, b=rows["seq"] % 2)
    good = rows[(rows["status"] == "ok") & rows["init_ms"].isna() & rows["server_ms"].notna()]
    both = good[good["b"] == 0].merge(good[good["b"] == 1][["config", "level", "pair", "send_s"]],
                                      on=["config", "level", "pair"], suffixes=("", "_b"))
    nominal = both["level"].to_numpy(dtype=float)
    offset_ms = (both["send_s_b"] - both["send_s"]).to_numpy(dtype=float) * 1000.0
    share_now = HostShare(cores=share.cores, init_cores=share.init_cores, work_cores=share.work_cores,
                          work_contention=share.work_contention)
    return fit_way_in(nominal, offset_ms, both["server_ms"].to_numpy(dtype=float), share_now)


def _host_share(grp: pd.DataFrame, label: str, fits: list, lambda_like: bool) -> dict:
    """The entry's ``host_share`` from its burst rows and, Lambda-like, its cold_idle rows (empty
    when it has neither; see the module docstring), its fit appended to `fits` for the plot (when
    it has burst rows: the plot shows their stretch)."""
    bursts = grp[(grp["phase"] == "burst") & (grp["status"] == "ok")]
    has_bursts = bool((grp["phase"] == "burst").any())
    init_idle = _init_idle(grp) if lambda_like else None
    if not has_bursts and init_idle is None:
        return {}
    if lambda_like:
        cold = bursts[bursts["init_ms"].notna()]
        warm = bursts[bursts["init_ms"].isna()]
        result = replace(fit_host_share(_by_k(cold, "init_ms"), _by_k(warm, "server_ms")), init_idle=init_idle)
        if result.cores is not None:
            result = replace(result, way_in=_way_in(grp, result))
    else:
        column = "server_ms" if _values(bursts, "server_ms").size else "client_ms"
        result = fit_host_share(None, _by_k(bursts, column))
    if has_bursts:
        fits.append((label, None, result))
    return {"host_share": result.entry()}


def _throughput(load: pd.DataFrame) -> tuple[list[dict], int]:
    points: list[dict] = []
    dropped = 0
    for level, grp in sorted(load.groupby("level", dropna=True), key=lambda kv: kv[0]):
        lat = _values(grp, "client_ms")
        if lat.size == 0:
            continue
        send = pd.to_numeric(grp["send_s"], errors="coerce").to_numpy(dtype=float)
        done = send + pd.to_numeric(grp["client_ms"], errors="coerce").to_numpy(dtype=float) / 1000.0
        span = np.nanmax(done) - np.nanmin(send)
        if not (span > 0):
            continue
        conc = pd.to_numeric(grp["concurrency"], errors="coerce").max()
        conc = int(round(conc)) if pd.notna(conc) else int(round(level))
        point = {"concurrency": max(conc, 1), "rps": float(lat.size / span),
                 "p50_ms": float(np.quantile(lat, 0.5)), "p99_ms": float(np.quantile(lat, 0.99))}
        if points and point["concurrency"] <= points[-1]["concurrency"]:
            dropped += 1
            continue
        points.append(point)
    return points, dropped


def _knee(points: list[dict]) -> dict | None:
    if not points:
        return None
    base = points[0]["p99_ms"]
    knee = points[0]
    for prev, p in zip(points, points[1:]):
        if p["p99_ms"] > KNEE_P99_FACTOR * base or p["rps"] < (1 + KNEE_MIN_GROWTH) * prev["rps"]:
            break
        knee = p
    return {**knee, "rule": f"last point before p99 > {KNEE_P99_FACTOR:g}x the lowest level's or throughput "
                            f"growth < {KNEE_MIN_GROWTH:.0%}"}


def _fit(label: str, x: np.ndarray, fits: list, where: str) -> FitReport:
    if x.size == 0:
        raise ConfigError(where, label, "ok rows with a value to fit")
    report = fit_samples(x)
    fits.append((label, x, report))
    return report


def _lambda_entries(df: pd.DataFrame, source: str | None, fits: list) -> tuple[list[dict], dict]:
    rows = df[df["memory_mb"].notna()]
    entries, warm_by_arch = [], {}
    if rows["architecture"].isna().any():
        raise ConfigError(source, "architecture", "an architecture (x86_64 or arm64) on every Lambda-like row")
    for (mem, arch), grp in sorted(rows.groupby(["memory_mb", "architecture"]), key=lambda kv: (kv[0][1], kv[0][0])):
        mem = int(mem)
        name = f"lambda-{mem}mb-{arch}"
        ok = grp[grp["status"] == "ok"]
        column = "server_ms"
        if _values(ok[ok["phase"] == "warm"], "server_ms").size == 0:
            column = "client_ms"
        idle = _warm_with_idle(grp, column, f"{name}-idle_effect", fits)
        rep = _fit(f"{name}-warm_ms", idle.rested_ms, fits, source or "<table>")
        warm_by_arch.setdefault(arch, []).append((mem, idle.rested_ms))
        cold = _values(ok[ok["phase"] == "cold"], "init_ms")
        rep_cold = _fit(f"{name}-cold_init_ms", cold, fits, source or "<table>")
        meta = {"column": column, "status": _status_counts(grp)}
        if idle.reason is not None:
            meta["idle_effect"] = idle.reason
        entry = {"memory_mb": mem, "architecture": str(arch),
                 "warm_ms": _spec_with_fit(rep, **meta),
                 "cold_init_ms": _spec_with_fit(rep_cold, column="init_ms")}
        if idle.reason is None:
            entry.update(_idle_entry(idle))
        entry.update(_host_share(grp, f"{name}-host_share", fits, lambda_like=True))
        mm = _values(ok, "max_memory_mb")
        if mm.size:
            entry["max_memory_mb"] = float(mm.max())
        entries.append(entry)
    scaling = {arch: fit_memory_scaling([m for m, _ in v], [s for _, s in v])
               for arch, v in warm_by_arch.items() if len({m for m, _ in v}) >= 2}
    return entries, scaling


def _server_entries(df: pd.DataFrame, source: str | None, fits: list) -> list[dict]:
    rows = df[df["memory_mb"].isna()].copy()
    if rows.empty:
        return []
    if rows["workers"].isna().any():
        raise ConfigError(source, "workers", "a worker count on every server-like row (memory_mb null)")
    itype = rows["instance_type"].astype(object)
    cpus = pd.to_numeric(rows["cpus"], errors="coerce")
    local = [("local" if pd.isna(c) else f"local-{c:g}vcpu") for c in cpus]
    rows["_itype"] = [str(t) if isinstance(t, str) and t else loc for t, loc in zip(itype, local)]
    entries = []
    for (it, workers), grp in sorted(rows.groupby(["_itype", "workers"]), key=lambda kv: (kv[0][0], kv[0][1])):
        workers = int(workers)
        name = f"server-{it}-w{workers}"
        ok = grp[grp["status"] == "ok"]
        idle = _warm_with_idle(grp, "client_ms", f"{name}-idle_effect", fits)
        rep = _fit(f"{name}-service_ms", idle.rested_ms, fits, source or "<table>")
        points, dropped = _throughput(ok[ok["phase"] == "load"])
        meta: dict = {"column": "client_ms", "status": _status_counts(grp)}
        if idle.reason is not None:
            meta["idle_effect"] = idle.reason
        knee = _knee(points)
        if knee is not None:
            meta["knee"] = knee
        if dropped:
            meta["throughput_dropped"] = dropped
        entry: dict = {"instance_type": it, "workers": workers, "service_ms": _spec_with_fit(rep, **meta)}
        if idle.reason is None:
            entry.update(_idle_entry(idle))
        entry.update(_host_share(grp, f"{name}-host_share", fits, lambda_like=False))
        boot = _values(ok[ok["phase"] == "cold"], "init_ms") / 1000.0
        if boot.size:
            rep_boot = _fit(f"{name}-boot_s", boot, fits, source or "<table>")
            entry["boot_s"] = _spec_with_fit(rep_boot, column="init_ms/1000")
        if points:
            entry["throughput"] = points
        entries.append(entry)
    return entries


def _idle_before(grp: pd.DataFrame) -> pd.Series:
    """Per row of one configuration: its send time minus the latest completion of the rows sent
    before it (s; NaN for the first)."""
    send = pd.to_numeric(grp["send_s"], errors="coerce")
    order = send.sort_values(kind="stable").index
    done = (send + pd.to_numeric(grp["client_ms"], errors="coerce") / 1000.0).loc[order]
    prev = done.cummax().shift(1)
    return (send.loc[order] - prev).reindex(grp.index)


def _http_entries(df: pd.DataFrame, source: str | None, fits: list) -> list[dict]:
    from calibrate.fit import MIN_COLD_REFERENCE_N, ColdRule
    from calibrate.targets import parse_http_config

    rows = df[df["target"] == "http"]
    entries, where = [], source or "<table>"
    for config, grp in sorted(rows.groupby("config"), key=lambda kv: kv[0]):
        label, url = parse_http_config(str(config))
        name = f"http-{label}"
        ok = grp[grp["status"] == "ok"]
        warm = _values(ok[ok["phase"] == "warm"], "client_ms")
        rep = _fit(f"{name}-service_ms", warm, fits, where)
        counts = _status_counts(grp)
        meta: dict = {"column": "client_ms"}
        points, _ = _throughput(ok[ok["phase"] == "load"])
        knee = _knee(points)
        if knee is not None:
            meta["knee"] = knee
        cold = grp[grp["phase"] == "cold"]
        cold_ok = cold[cold["status"] == "ok"]
        extra_s = _values(cold_ok, "init_ms") / 1000.0
        detection: dict = {"requests": int(len(cold)), "ok": int(len(cold_ok)), "cold_starts": int(extra_s.size)}
        if warm.size >= MIN_COLD_REFERENCE_N:
            detection.update(ColdRule.from_warm(warm).describe())
        idle = _idle_before(grp).loc[cold.index].to_numpy(dtype=float)
        idle = idle[np.isfinite(idle)]
        if idle.size:
            detection["idle_s_min"] = round(float(idle.min()), 3)
            detection["idle_s_median"] = round(float(np.median(idle)), 3)
        if "cold" in counts:
            counts["cold"]["cold_starts"] = int(extra_s.size)
        entry: dict = {"label": label, "url": url, "service_ms": _spec_with_fit(rep, **meta)}
        if extra_s.size:
            rep_start = _fit(f"{name}-start_s", extra_s, fits, where)
            entry["start_s"] = _spec_with_fit(rep_start, column="init_ms/1000 (latency - warm median)")
        else:
            entry["start_s"] = None
            if cold.empty:
                detection["reason"] = ("no requests after an idle period were measured (calibrate http --idle-s S "
                                       "--cold N)")
            elif cold_ok.empty:
                detection["reason"] = f"none of the {len(cold)} requests after an idle period succeeded"
            else:
                after = f" after {detection['idle_s_min']:g} s or more idle" if "idle_s_min" in detection else ""
                thr = detection.get("threshold_ms")
                detection["reason"] = (f"none of the {len(cold_ok)} ok requests{after} was a cold start"
                                       + (f" (all within {thr:g} ms, the warm threshold)" if thr is not None else "")
                                       + ": the platform kept an instance through the idle period (is the idle time "
                                         "longer than its scale-to-zero delay or keep-alive?)")
        entry["counts"] = counts
        entry["cold_detection"] = detection
        entries.append(entry)
    return entries


def _build(df: pd.DataFrame, source_path) -> tuple[dict, list]:
    if isinstance(source_path, (list, tuple)):
        source = " + ".join(str(p) for p in source_path)
    else:
        source = str(source_path) if source_path is not None else None
    _check_columns(df, source)
    if df.empty:
        raise ConfigError(source, "", "a measurement table with at least one row")
    models = sorted(df["model"].dropna().unique())
    if len(models) != 1:
        raise ConfigError(source, "model", "exactly one model per table (fit each model's rows separately)", models)
    model: dict = {"name": str(models[0])}
    shas = df["model_sha256"].dropna().unique()
    if len(shas) == 1 and _HEX64.match(str(shas[0])):
        model["sha256"] = str(shas[0])
    targets = sorted(str(t) for t in df["target"].dropna().unique())
    if not targets:
        raise ConfigError(source, "target", "a target on the measurement rows")
    measured: dict = {"target": "+".join(targets)}
    measured.update(_campaign_info(source_path))
    send = pd.to_numeric(df["send_s"], errors="coerce")
    if send.notna().any():
        measured["at"] = datetime.fromtimestamp(float(send.min()), tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    measured["table_sha256"] = table_sha256(df, source_path)

    fits: list = []
    is_http = (df["target"] == "http").to_numpy()
    lambdas, scaling = _lambda_entries(df[~is_http], source, fits)
    servers = _server_entries(df[~is_http], source, fits)
    https = _http_entries(df, source, fits)
    profile: dict = {"schema": SCHEMA, "model": model, "measured": measured}
    if lambdas:
        profile["lambda"] = lambdas
    if servers:
        profile["server"] = servers
    if https:
        profile["http"] = https
    if scaling:
        profile["lambda_scaling"] = scaling
    return profile, fits


def profile_from_table(df: pd.DataFrame, *, source_path: str | Path | None = None) -> dict:
    """The calibration profile (a JSON-ready dict) of a measurement table; see the module docstring."""
    return _build(df, source_path)[0]


def fit_measurements(table_path, out_path: str | Path, *, plots_dir: str | Path | None = None) -> dict:
    """`servesim fit`: read the table (or several tables of the same model, e.g. a local-lambda and a
    local-server campaign, into one profile), fit, write the profile atomically (and one diagnostic
    PNG per fitted distribution, one of each idle-effect fit and one of each host-share fit, into
    `plots_dir`, named ``<entry>-<key>.png``); returns the profile."""
    if isinstance(table_path, (list, tuple)):
        table_path = list(table_path) if len(table_path) > 1 else table_path[0]
    df = pd.concat([read_table(p) for p in table_path], ignore_index=True) \
        if isinstance(table_path, list) else read_table(table_path)
    profile, fits = _build(df, table_path)
    if plots_dir is not None:
        from .fitplots import plot_fit, plot_host_share, plot_idle  # matplotlib only when asked for

        for label, x, report in fits:
            if isinstance(report, HostShareFit):
                plot_host_share(report, Path(plots_dir) / f"{label}.png", label)
            elif isinstance(report, IdleFit):
                if report.idle_s.size:
                    plot_idle(report, Path(plots_dir) / f"{label}.png", label)
            else:
                plot_fit(x, report, Path(plots_dir) / f"{label}.png", label)
    write_profile(profile, out_path)
    return profile


# -- writing ---------------------------------------------------------------------------------------------

def _dumps(obj: Any, indent: int = 0) -> str:
    """JSON with nested objects indented and lists of scalars on one line (samples stay compact)."""
    pad, inner = " " * indent, " " * (indent + 2)
    if isinstance(obj, dict):
        if not obj:
            return "{}"
        items = [f"{inner}{json.dumps(str(k))}: {_dumps(v, indent + 2)}" for k, v in obj.items()]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(obj, (list, tuple)):
        if all(not isinstance(v, (dict, list, tuple)) for v in obj):
            return "[" + ", ".join(json.dumps(v, allow_nan=False) for v in obj) + "]"
        return "[\n" + ",\n".join(inner + _dumps(v, indent + 2) for v in obj) + "\n" + pad + "]"
    if isinstance(obj, (np.floating, np.integer)):
        obj = obj.item()
    return json.dumps(obj, allow_nan=False)


def write_profile(profile: dict, path: str | Path) -> Path:
    """Write `profile` as JSON to `path` atomically (temp file in the same folder, then rename)."""
    return write_text(path, _dumps(profile) + "\n")

"""Validation: replay a window of a scenario's trace live against a target, simulate the same
arrivals with the scenario's profile, and compare.

`validate(scenario, target_kind, out_dir, ...)`:

1. **The window.** The scenario's arrivals (its trace and seed, exactly as `simulate` draws them)
   from `start_s` for `duration_s`, shifted to start at 0.
2. **Replay** (`calibrate.replay`): open loop against the live target, every request recorded in
   a measurement table (``out/replay.parquet``, phase ``replay``, ``level`` = the window's mean
   rate, ``seq`` = the request's index in the window). The target is started for the platform
   being validated: local-lambda with its memory size, keep-alive and concurrency limit (every
   environment starts cold, as in the simulation); local-server with its workers on the
   instance type's vCPUs, warmed up first (the simulated fleet is up and warm); aws-lambda and
   aws-ec2 deployed and torn down as in a calibration; http as a black box.
3. **Predict**: the same arrivals through the simulator with the scenario's platform (service
   times from its profile), every request's record kept.
4. **Compare** what the simulator models with what was measured, request for request the same
   way on both sides: p50/p90/p95/p99 of completed requests' latency, cold starts, rejections
   (throttles), and the bill: Lambda's billed duration (GB-s) and cost; EC2's instance-seconds
   and cost (a fixed fleet's are the window's by construction: they are equal, and the table says so).
   Latency is the function's (Init Duration + Duration, from each REPORT line) for Lambda
   targets, since that is what `warm_ms`/`cold_init_ms` were fitted to; the client's is the
   server's and the black box's. Client-side Lambda figures are shown too, for information.

**Host share.** The local targets run on this host, where concurrent work shares the CPUs
(every Lambda environment, the gateway and the replay client; the server's workers): for
local-lambda and local-server the prediction uses the host share measured in the profile entry
of the platform (`sim.profile.LambdaEntry.host` / `ServerEntry.host`: Lambda by memory size and
architecture, else the nearest measured size; servers by instance type and workers), unless
the scenario sets the platform's ``host`` itself, which wins. AWS and http targets run
elsewhere: their prediction has no host share (a scenario's is dropped, with a note).
``validation.json`` records which one was used (``host_share``: source, cores, init_cores,
work_cores, work_contention, way_in_ms and way_in_pressure when it has a way in, and init_idle_s
and init_idle_factor when it has a cold host).

**No self-fulfilling checks.** The prediction's profile must come from a separate calibration:
a platform whose service times are inline (no profile) is refused unless `allow_inline`, and a
profile whose measurement table is the replay's own (same sha256), or that was measured after
the replay began, is refused.

Outputs in `out_dir`: ``validation.json`` (the comparison, the client's send lag, provenance),
``comparison.csv``, ``predicted.parquet`` (the simulator's per-request records) and plots
(``latency_cdf.png``: measured and predicted CDFs; ``per_minute.png``: p99 and cold starts per
minute, measured beside predicted). `check_thresholds` turns limits into failures for CI.
"""
from __future__ import annotations

import contextlib
import json
import math
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

import numpy as np
import pandas as pd

from sim.errors import ServesimError

TARGETS = ("local-lambda", "local-server", "aws-lambda", "aws-ec2", "http")
LAMBDA_TARGETS = ("local-lambda", "aws-lambda")
QUANTILES = (("p50", 50), ("p90", 90), ("p95", 95), ("p99", 99))
#: Metric names accepted by `check_thresholds` (and `servesim validate --max-error`).
METRICS = ("p50", "p90", "p95", "p99", "cold_starts", "rejections", "billed_gb_s", "instance_s", "cost_usd")


@dataclass
class Validation:
    """The comparison of one replayed window: rows of (metric, measured, predicted, error %)."""

    rows: list[dict]
    requests: int
    window_s: float
    target: str
    platform: str
    lag: dict
    out_dir: Path
    notes: list[str] = field(default_factory=list)
    plots: list[Path] = field(default_factory=list)

    def table(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows, columns=["metric", "measured", "predicted", "error_pct", "note"])

    def error(self, metric: str) -> float | None:
        for r in self.rows:
            if r["metric"] == metric:
                return r["error_pct"]
        return None


def error_pct(measured: float | None, predicted: float | None) -> float | None:
    """(predicted - measured) / measured in %; 0 when both are 0; None when it is undefined."""
    if measured is None or predicted is None or not (math.isfinite(measured) and math.isfinite(predicted)):
        return None
    if measured == 0:
        return 0.0 if predicted == 0 else None
    return (predicted - measured) / measured * 100.0


def parse_thresholds(text: str | None) -> dict[str, float]:
    """``p50=5,p99=10,cold_starts=10`` -> {metric: largest |error| in %}; a clear error otherwise."""
    out: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in (text or "").split(","))):
        name, sep, value = part.partition("=")
        name = name.strip()
        if not sep or name not in METRICS:
            raise ServesimError(f"--max-error: expected metric=percent with a metric among {', '.join(METRICS)}, "
                                f"got {part!r}")
        try:
            limit = float(value)
        except ValueError:
            limit = -1.0
        if not (limit >= 0 and math.isfinite(limit)):
            raise ServesimError(f"--max-error: {name} needs a percentage >= 0, got {value!r}")
        out[name] = limit
    return out


def check_thresholds(v: Validation, limits: Mapping[str, float]) -> list[str]:
    """The metrics whose |error %| exceeds its limit (or cannot be computed), as messages."""
    problems = []
    for metric, limit in limits.items():
        err = v.error(metric)
        if err is None:
            if any(r["metric"] == metric and r["measured"] == r["predicted"] for r in v.rows):
                continue
            problems.append(f"{metric}: no error could be computed (nothing measured), limit {limit:g} %")
        elif abs(err) > limit:
            problems.append(f"{metric}: error {err:+.1f} % exceeds {limit:g} %")
    return problems


# -- the window ------------------------------------------------------------------------------------

def window_offsets(scenario, start_s: float, duration_s: float) -> np.ndarray:
    """The scenario's arrivals in [start_s, start_s + duration_s), minus start_s (the same
    arrivals `simulate` sees: its trace, its seed)."""
    from sim.streams import ARRIVALS, child_seed

    if duration_s <= 0:
        raise ServesimError(f"--duration must be > 0, got {duration_s:g} s")
    trace_end = scenario.trace.duration_s
    if trace_end is not None and start_s >= trace_end:
        raise ServesimError(f"--start {start_s:g} s is not inside the trace (it lasts {trace_end:g} s)")
    end = start_s + duration_s
    parts = []
    for chunk in scenario.trace.chunks(child_seed(scenario.seed, ARRIVALS)):
        parts.append(chunk[(chunk >= start_s) & (chunk < end)])
        if chunk.size and chunk[-1] >= end:
            break
    times = np.concatenate(parts) if parts else np.zeros(0)
    if times.size == 0:
        raise ServesimError(f"the trace has no arrival in the window [{start_s:g} s, {end:g} s): nothing to replay")
    return times - start_s


def pick_platform(scenario, target_kind: str, name: str | None):
    """The scenario's platform to validate: by `name`, else the first of the target's kind."""
    from sim.config import LambdaConfig

    if name is not None:
        for p in scenario.platforms:
            if p.name == name:
                return p
        raise ServesimError(f"{scenario.path or scenario.name}: no platform named {name!r} "
                            f"(it has: {', '.join(p.name for p in scenario.platforms)})")
    want_lambda = target_kind in LAMBDA_TARGETS
    for p in scenario.platforms:
        if target_kind == "http" or isinstance(p, LambdaConfig) == want_lambda:
            return p
    kind = "lambda" if want_lambda else "ec2"
    raise ServesimError(f"{scenario.path or scenario.name}: --target {target_kind} validates a platform of kind "
                        f"{kind}, and the scenario has none")


def scenario_profile(scenario):
    """The scenario's calibration profile (sim.profile.Profile), or None."""
    from sim.profile import load_profile

    ref = scenario.raw.get("profile")
    if not ref:
        return None
    p = Path(str(ref)).expanduser()
    if not p.is_absolute() and scenario.path is not None:
        p = scenario.path.parent / p
    return load_profile(p)


def _inline_service(scenario, platform) -> bool:
    """Whether the platform's service times are given inline rather than from the profile."""
    for raw in scenario.raw.get("platforms", []):
        if raw.get("name") == platform.name:
            return "service" in raw
    return False


def host_share_for(platform, profile, target_kind: str, scenario=None) -> tuple[Any, dict]:
    """The platform to predict with, its `host` set for `target_kind` (see the module docstring),
    and the record for validation.json: ``{source: scenario | profile | none, cores, init_cores,
    work_cores, work_contention}`` (with a ``note`` when none applies)."""
    import dataclasses

    from sim.config import LambdaConfig

    explicit = platform.host is not None and _raw_platform(scenario, platform).get("host") is not None
    if target_kind not in ("local-lambda", "local-server"):
        rec: dict = {"source": "none", "note": f"{target_kind} runs elsewhere: no host share"}
        if platform.host is not None:
            rec["note"] += " (the scenario's was dropped)"
        return dataclasses.replace(platform, host=None), rec
    if explicit:
        share, source = platform.host, "scenario"
    else:
        entry = None
        if profile is not None:
            if isinstance(platform, LambdaConfig):
                entry = (profile.lambda_entry(platform.memory_mb, platform.architecture)
                         or profile.nearest_lambda_entry(platform.memory_mb, platform.architecture))
            else:
                entry = profile.server_entry(platform.instance_type, platform.workers_per_instance)
        share, source = (entry.host if entry is not None else None), "profile"
        if share is None:
            why = ("no profile" if profile is None else "no matching profile entry" if entry is None else
                   (entry.fit.get("host_share") or {}).get("reason") or "the profile entry has no host_share")
            return dataclasses.replace(platform, host=None), {"source": "none", "note": f"no host share: {why}"}
        if isinstance(platform, LambdaConfig) and entry.memory_mb != platform.memory_mb:
            source = f"profile (entry at {entry.memory_mb} MB, the nearest measured)"
    rec = {"source": source, "cores": share.cores, "init_cores": share.init_cores, "work_cores": share.work_cores,
           "work_contention": share.work_contention}
    if share.way_in_ms > 0.0:
        rec.update(way_in_ms=share.way_in_ms, way_in_pressure=share.way_in_pressure)
    if share.init_idle_s is not None:
        rec.update(init_idle_s=share.init_idle_s, init_idle_factor=share.init_idle_factor)
    return dataclasses.replace(platform, host=share), rec


def _raw_platform(scenario, platform) -> Mapping:
    if scenario is None:
        return {}
    for raw in scenario.raw.get("platforms", []) or []:
        if isinstance(raw, Mapping) and raw.get("name") == platform.name:
            return raw
    return {}


# -- targets ---------------------------------------------------------------------------------------

@contextlib.contextmanager
def live_target(kind: str, platform, profile, pricing, *, model: str | None = None, url: str | None = None,
                aws: Mapping | None = None, echo: Callable[[str], None] = print) -> Iterator[tuple[Any, Any, bool]]:
    """(target, its configuration, whether to warm it up) for validating `platform`, started and
    stopped around the block (cloud targets deployed and torn down). `model`: a zoo name or an
    ONNX file (default: the profile's model, by name); `pricing`: the prices the prediction uses
    (they give the instance type's vCPUs)."""
    from sim.config import LambdaConfig

    if isinstance(platform, LambdaConfig) != (kind in LAMBDA_TARGETS) and kind != "http":
        raise ServesimError(f"--target {kind} cannot validate platform {platform.name!r} of another kind")
    if model is None and profile is not None:
        model = profile.model.name
    if kind in ("local-lambda", "local-server", "aws-lambda", "aws-ec2") and model is None:
        raise ServesimError(f"--target {kind} deploys the profile's model: the scenario needs a profile")
    if kind.startswith("aws-") and aws is None:
        raise ServesimError(f"--target {kind} needs an AWS context (region, credentials)")
    if kind in LAMBDA_TARGETS and platform.provisioned_concurrency:
        raise ServesimError(f"platform {platform.name!r}: validation deploys on-demand functions; a platform with "
                            "provisioned_concurrency cannot be validated this way")
    if kind == "local-lambda":
        from calibrate.targets import LocalLambdaTarget

        if not isinstance(platform.keep_alive_s, (int, float)):
            raise ServesimError(f"platform {platform.name!r}: local-lambda needs a constant keep_alive_s "
                                "(the gateway has one keep-alive)")
        target = LocalLambdaTarget(model, [platform.memory_mb], keep_alive_s=float(platform.keep_alive_s),
                                   concurrency_limit=platform.concurrency_limit,
                                   timeout_s=int(math.ceil(platform.timeout_s)))
        warm = False
    elif kind == "local-server":
        from calibrate.targets import LocalServerTarget

        if platform.autoscaling is not None or platform.instances != 1:
            raise ServesimError(f"platform {platform.name!r}: local-server is one server; validate a fixed fleet of "
                                "instances: 1 (no autoscaling)")
        vcpus = pricing.instance(platform.instance_type).vcpus
        target = LocalServerTarget(model, [platform.workers_per_instance], cpus=float(vcpus),
                                   instance_type=platform.instance_type)
        warm = True
    elif kind == "aws-lambda":
        from calibrate.aws_targets import AwsLambdaTarget

        target = AwsLambdaTarget(model, [platform.memory_mb], ctx=aws["ctx"], architecture=platform.architecture,
                                 timeout_s=int(math.ceil(platform.timeout_s)), echo=echo)
        warm = False
    elif kind == "aws-ec2":
        from calibrate.aws_targets import AwsEc2Target

        if platform.autoscaling is not None or platform.instances != 1:
            raise ServesimError(f"platform {platform.name!r}: aws-ec2 validation deploys one instance; validate a "
                                "fixed fleet of instances: 1")
        target = AwsEc2Target(model, platform.instance_type, ctx=aws["ctx"], allow_cidr=aws["allow_cidr"],
                              workers=platform.workers_per_instance, echo=echo)
        warm = True
    elif kind == "http":
        from calibrate.targets import HttpTarget

        if not url:
            raise ServesimError("--target http needs --url")
        target = HttpTarget(url, model=model)
        warm = False
    else:
        raise ServesimError(f"--target must be one of {', '.join(TARGETS)}, got {kind!r}")
    (config,) = target.configs()
    with target.session():
        yield target, config, warm


# -- measured and predicted ------------------------------------------------------------------------

def measured_frame(rows: list[dict], lambda_like: bool) -> pd.DataFrame:
    """Per replayed request: arrival offset, status, latency (the function's for Lambda-like
    targets: init + duration), client latency, cold start, billed ms."""
    df = pd.DataFrame(rows)
    out = pd.DataFrame({"arrival_s": df["offset_s"].to_numpy(float), "status": df["status"].to_numpy()})
    client = df["client_ms"].to_numpy(float)
    out["client_ms"] = client
    if lambda_like:
        init = pd.to_numeric(df["init_ms"], errors="coerce").to_numpy(float)
        server = pd.to_numeric(df["server_ms"], errors="coerce").to_numpy(float)
        out["cold"] = np.isfinite(init) & (out["status"] != "throttled").to_numpy()
        out["latency_ms"] = np.where(np.isfinite(init), init, 0.0) + server
        out["billed_ms"] = pd.to_numeric(df["billed_ms"], errors="coerce").to_numpy(float)
    else:
        out["cold"] = False
        out["latency_ms"] = client
    return out


def predicted_frame(records: pd.DataFrame) -> pd.DataFrame:
    """The simulator's per-request records (`sim.metrics.RECORD_COLUMNS`) in `measured_frame`'s terms."""
    return pd.DataFrame({"arrival_s": records["arrival_s"].to_numpy(float),
                         "status": records["status"].astype(str).to_numpy(),
                         "cold": records["cold"].to_numpy(bool), "latency_ms": records["latency_ms"].to_numpy(float),
                         "work_ms": records["work_ms"].to_numpy(float), "init_ms": records["init_ms"].to_numpy(float)})


def measured_billed_ms(measured: pd.DataFrame, platform) -> np.ndarray:
    """Per measured request, its billed ms under the simulator's rule: the REPORT line's Billed
    Duration, and on a cold start of a function whose INIT is billed (AWS bills it since
    2025-08-01) at least ceil(init + duration). Whether AWS's REPORT line folds INIT into Billed
    Duration is not documented (reference/aws-facts.md 1.6) and the local gateway's does not, so
    the larger of the two counts."""
    from sim.billing import lambda_billed_ms

    billed = measured["billed_ms"].fillna(0.0).to_numpy(float)
    if not platform.init_billed:
        return billed
    total = measured["latency_ms"].to_numpy(float)  # init + duration on a cold start
    cold = measured["cold"].to_numpy(bool) & np.isfinite(total)
    out = billed.copy()
    if cold.any():
        out[cold] = np.maximum(billed[cold], lambda_billed_ms(total[cold]))
    return out


def _pcts(lat: np.ndarray) -> dict[str, float | None]:
    lat = lat[np.isfinite(lat)]
    return {name: (float(np.percentile(lat, q)) if lat.size else None) for name, q in QUANTILES}


def compare(measured: pd.DataFrame, predicted: pd.DataFrame, platform, pricing, window_s: float,
            predicted_cost: Mapping, lambda_like: bool) -> list[dict]:
    """The comparison rows (see the module docstring)."""
    from sim.billing import lambda_billed_sums, lambda_cost
    from sim.config import LambdaConfig

    rows = []

    def row(metric, m, p, note=""):
        rows.append({"metric": metric, "measured": m, "predicted": p, "error_pct": error_pct(m, p), "note": note})

    m_ok = measured["status"] == "ok"
    p_ok = predicted["status"] == "ok"
    mp, pp = _pcts(measured.loc[m_ok, "latency_ms"].to_numpy(float)), _pcts(predicted.loc[p_ok, "latency_ms"].to_numpy(float))
    what = "function (init + duration)" if lambda_like else "client"
    for name, _ in QUANTILES:
        row(name, mp[name], pp[name], f"latency ms, {what}")
    row("cold_starts", float(measured["cold"].sum()), float(predicted["cold"].sum()), "count")
    m_rej = float((~measured["status"].isin(["ok", "timeout", "error"])).sum())
    p_rej = float((~predicted["status"].isin(["ok", "timeout"])).sum())
    row("rejections", m_rej, p_rej, "throttled / rejected requests")
    errors = int((measured["status"] == "error").sum())
    if errors:
        rows.append({"metric": "errors", "measured": float(errors), "predicted": 0.0, "error_pct": None,
                     "note": "requests that failed on the target (not modelled)"})
    if isinstance(platform, LambdaConfig):
        gb = platform.memory_mb / 1024.0
        served_p = predicted["status"].isin(["ok", "timeout"])
        cold_p = predicted["cold"].to_numpy(bool)
        _, _, p_billed = lambda_billed_sums(
            served_p.to_numpy(), predicted["work_ms"].to_numpy(float), platform.timeout_s * 1000.0,
            np.nan_to_num(predicted["init_ms"].to_numpy(float)) if platform.init_billed else None, cold_p,
            np.zeros(cold_p.size, bool))
        if lambda_like and measured["billed_ms"].notna().any():
            m_billed = float(measured_billed_ms(measured, platform).sum())
            row("billed_gb_s", m_billed / 1000.0 * gb, p_billed / 1000.0 * gb, "GB-s")

            def cost(invocations, billed):
                return lambda_cost(pricing=pricing, architecture=platform.architecture, memory_mb=platform.memory_mb,
                                   invocations=invocations, billed_ms_on_demand=int(billed), billed_ms_provisioned=0,
                                   provisioned_concurrency=0, window_s=window_s).total
            m_served = int(measured["status"].isin(["ok", "timeout", "error"]).sum())
            row("cost_usd", cost(m_served, m_billed), cost(int(served_p.sum()), p_billed), "USD over the window")
    else:
        inst_s = float(platform.instances) * window_s
        row("instance_s", inst_s, float(predicted_cost.get("instance_s", inst_s)),
            "a fixed fleet's instance-seconds are the window's on both sides")
        row("cost_usd", _ec2_measured_cost(measured, platform, pricing, window_s), predicted_cost.get("total"),
            "USD over the window (instances + load balancer)")
    if lambda_like:
        mc = _pcts(measured.loc[m_ok, "client_ms"].to_numpy(float))
        for name in ("p50", "p99"):
            rows.append({"metric": f"client_{name}", "measured": mc[name], "predicted": None, "error_pct": None,
                         "note": "client-side latency ms (gateway and HTTP included; not modelled)"})
    return rows


def _ec2_measured_cost(measured: pd.DataFrame, platform, pricing, window_s: float) -> float:
    """The fixed fleet's bill over the window with the load balancer's LCUs from the measured
    requests: per hour, the requests and the mean requests in flight (their latencies summed)."""
    from sim.billing import ec2_cost

    kw = {}
    if platform.load_balancer_billed:
        hours = max(1, math.ceil(window_s / 3600.0))
        hour = np.minimum((measured["arrival_s"].to_numpy(float) // 3600).astype(int), hours - 1)
        busy_s = np.nan_to_num(measured["client_ms"].to_numpy(float)) / 1000.0
        kw = dict(alb_requests_per_hour=np.bincount(hour, minlength=hours).astype(float),
                  alb_mean_active_connections=np.bincount(hour, weights=busy_s, minlength=hours) / 3600.0,
                  bytes_per_request=(platform.request_kb + platform.response_kb) * 1024.0)
    launches = [(0.0, window_s)] * platform.instances
    return ec2_cost(pricing=pricing, instance_type=platform.instance_type, launches=launches, window=(0.0, window_s),
                    **kw).total


# -- the whole validation --------------------------------------------------------------------------

def validate(scenario, target_kind: str, out_dir: str | Path, *, duration_s: float = 300.0, start_s: float = 0.0,
             platform_name: str | None = None, model: str | None = None, url: str | None = None,
             aws: Mapping | None = None,
             allow_inline: bool = False, progress: bool = True, pricing_path: str | Path | None = None,
             echo: Callable[[str], None] = print) -> Validation:
    """Replay, predict, compare (see the module docstring); writes into `out_dir`."""
    from calibrate.campaign import _base_row, _row, new_run_id
    from calibrate.profiles import table_sha256
    from calibrate.replay import replay
    from calibrate.writer import TableWriter, unit_key
    from scenarios.runner import scenario_pricing
    from sim.atomic import atomic_path, write_text
    from sim.config import LambdaConfig

    if target_kind not in TARGETS:
        raise ServesimError(f"--target must be one of {', '.join(TARGETS)}, got {target_kind!r}")
    out = Path(out_dir)
    platform = pick_platform(scenario, target_kind, platform_name)
    profile = scenario_profile(scenario)
    notes = []
    if _inline_service(scenario, platform) or profile is None:
        if not allow_inline:
            raise ServesimError(f"platform {platform.name!r} takes its service times from the scenario itself, not "
                                "from a calibration profile: the prediction would not be checked against a separate "
                                "calibration (pass --allow-inline to validate it anyway)")
        notes.append("service times given inline in the scenario, not from a calibration profile")
    offsets = window_offsets(scenario, start_s, duration_s)
    pricing = scenario_pricing(scenario, pricing_path)
    lambda_like = target_kind in LAMBDA_TARGETS
    began = datetime.now(timezone.utc)
    if profile is not None and profile.measured.at:
        try:
            at = datetime.fromisoformat(profile.measured.at.replace("Z", "+00:00"))
        except ValueError:
            at = None
        if at is not None and at >= began:
            raise ServesimError(f"the profile {profile.path} was measured at {profile.measured.at}, not before this "
                                "replay: it must come from a separate, earlier calibration")

    table_dir = out / "replay.parquet"
    if table_dir.exists():
        raise ServesimError(f"{table_dir} already holds a replay: give another --out folder (a validation is "
                            "measured anew, never resumed)")
    run_id = new_run_id()
    if model is not None and profile is not None and profile.model.sha256:
        from deploy.models import resolve_model

        if resolve_model(model).sha256 != profile.model.sha256:
            raise ServesimError(f"the model {model} is not the one the profile {profile.path} measured "
                                f"({profile.model.name}, sha256 {profile.model.sha256[:12]}...)")
    with live_target(target_kind, platform, profile, pricing, model=model, url=url, aws=aws,
                     echo=echo) as (target, config, warm):
        base = _base_row(run_id, target, config)
        with TableWriter(table_dir, run_id) as writer, target.serving(config) as endpoint:
            writer.start(target=target.name, model=target.model, model_sha256=target.model_sha256,
                         session={"validate": {"scenario": str(scenario.path or scenario.name),
                                               "platform": platform.name, "start_s": start_s,
                                               "duration_s": duration_s}, "target_details": target.describe()})
            if warm:
                client = endpoint.client()
                try:
                    for _ in range(3 + target.warmup_requests(config)):
                        client.call()
                finally:
                    client.close()
            result = _replay_with_bar(replay, endpoint, offsets, progress, echo)
            level = offsets.size / duration_s
            rows = []
            for i, s in enumerate(result.samples):
                if s is not None:
                    rows.append(_row(base, "replay", level, int(result.in_flight[i]), i, s))
            writer.append(rows)
            writer.end_unit(unit_key(config.key, "replay", level), {"lag": result.lag_summary()}, rows=len(rows))
            writer.finish()
    if result.interrupted:
        raise KeyboardInterrupt
    table = pd.read_parquet(table_dir)
    replay_sha = table_sha256(table)
    if profile is not None and profile.measured.table_sha256 == replay_sha:
        raise ServesimError("the profile was fitted to this replay's own measurements: a prediction must come from a "
                            "separate calibration")
    sent = [i for i, s in enumerate(result.samples) if s is not None]
    m_rows = [{"offset_s": float(offsets[i]), **{k: getattr(result.samples[i], k) for k in
                                                 ("status", "client_ms", "server_ms", "init_ms", "billed_ms")}}
              for i in sent]
    measured = measured_frame(m_rows, lambda_like)

    predict_platform, host_record = host_share_for(platform, profile, target_kind, scenario)
    predicted, summary = _predict(scenario, predict_platform, offsets, duration_s, pricing)
    cost = dict(summary["cost_usd"])
    if not isinstance(platform, LambdaConfig):
        cost["instance_s"] = summary["instances"]["mean"] * duration_s
    rows = compare(measured, predicted, platform, pricing, duration_s, cost, lambda_like)
    lag = result.lag_summary()
    v = Validation(rows, int(offsets.size), duration_s, target_kind, platform.name, lag, out, notes)
    with contextlib.suppress(OSError):
        out.mkdir(parents=True, exist_ok=True)
    write_text(out / "comparison.csv", v.table().to_csv(index=False))
    with atomic_path(out / "predicted.parquet") as tmp:
        predicted.to_parquet(tmp, index=False)
    v.plots = validation_plots(out, measured, predicted, platform.name)
    meta = {"scenario": str(scenario.path or scenario.name), "platform": platform.name, "target": target_kind,
            "window": {"start_s": start_s, "duration_s": duration_s, "requests": int(offsets.size)},
            "replay": {"run_id": run_id, "table": str(table_dir), "table_sha256": replay_sha, "started": began.isoformat(),
                       "client_lag": lag, "interrupted": result.interrupted},
            "profile": None if profile is None else {"path": str(profile.path), "measured_at": profile.measured.at,
                                                     "target": profile.measured.target,
                                                     "table_sha256": profile.measured.table_sha256},
            "host_share": host_record,
            "comparison": rows, "notes": notes, "plots": [str(p) for p in v.plots]}
    write_text(out / "validation.json", json.dumps(meta, indent=1, default=str) + "\n")
    return v


def _replay_with_bar(replay, endpoint, offsets, progress: bool, echo):
    if not progress:
        return replay(endpoint, offsets)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    span = float(offsets[-1]) if offsets.size else 0.0
    with Progress(TextColumn("replay"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[t]}"),
                  TimeRemainingColumn()) as bar:
        task = bar.add_task("replay", total=offsets.size, t="")
        return replay(endpoint, offsets,
                      tick=lambda sent, el: bar.update(task, completed=sent, t=f"{min(el, span):.0f}/{span:.0f} s"))


def _predict(scenario, platform, offsets: np.ndarray, duration_s: float, pricing):
    """The simulator on the replayed arrivals: (per-request frame, summary)."""
    from sim.run import simulate_one
    from traces.files import TimestampList

    records = []
    res = simulate_one(platform, TimestampList(offsets, duration_s), pricing=pricing, seed=scenario.seed,
                       warmup_s=0.0, engine=scenario.engine, record_sink=records.append)
    frame = predicted_frame(pd.concat(records, ignore_index=True))
    return frame, res.summary


# -- plots -----------------------------------------------------------------------------------------

def validation_plots(out: Path, measured: pd.DataFrame, predicted: pd.DataFrame, name: str) -> list[Path]:
    """``latency_cdf.png`` (measured and predicted CDFs) and ``per_minute.png`` (p99 and cold
    starts per minute of arrival, measured beside predicted)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from scenarios.report import _save

    paths = []
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for label, df, style in (("measured", measured, "-"), ("predicted", predicted, "--")):
        lat = np.sort(df.loc[df["status"] == "ok", "latency_ms"].to_numpy(float))
        lat = lat[np.isfinite(lat)]
        if lat.size:
            ax.plot(lat, np.arange(1, lat.size + 1) / lat.size, style, lw=1.4, label=f"{label} (n={lat.size})")
    ax.set_xscale("log")
    ax.axhline(0.99, color="grey", lw=0.6, ls=":")
    ax.set_xlabel("latency (ms, log scale)")
    ax.set_ylabel("fraction of completed requests")
    ax.set_title(f"Latency CDF, {name}: measured against predicted")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    paths.append(_save(fig, out / "plots" / "latency_cdf.png"))

    def per_minute(df):
        minute = (df["arrival_s"] // 60).astype(int)
        ok = df["status"] == "ok"
        p99 = df[ok].groupby(minute[ok])["latency_ms"].quantile(0.99)
        cold = df.groupby(minute)["cold"].sum()
        return p99, cold

    (mp, mc), (pp, pc) = per_minute(measured), per_minute(predicted)
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4))
    a1.plot(mp.index, mp.to_numpy(), "o-", label="measured")
    a1.plot(pp.index, pp.to_numpy(), "s--", label="predicted")
    a1.set_xlabel("minute of the window")
    a1.set_ylabel("p99 latency (ms)")
    a1.set_title("p99 per minute")
    minutes = sorted(set(mc.index) | set(pc.index))
    x = np.arange(len(minutes))
    a2.bar(x - 0.2, [mc.get(m, 0) for m in minutes], 0.4, label="measured")
    a2.bar(x + 0.2, [pc.get(m, 0) for m in minutes], 0.4, label="predicted")
    a2.set_xticks(x, [str(m) for m in minutes])
    a2.set_xlabel("minute of the window")
    a2.set_ylabel("cold starts")
    a2.set_title("Cold starts per minute")
    for a in (a1, a2):
        a.grid(True, alpha=0.3)
        a.legend(fontsize=8)
    fig.tight_layout()
    paths.append(_save(fig, out / "plots" / "per_minute.png"))
    return paths

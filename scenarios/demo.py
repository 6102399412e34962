"""`servesim demo`: the whole product on this machine, no cloud account, in a few minutes.

1. **Build** a small model (price-mlp, a tabular regressor; built offline, cached).
2. **Calibrate** it on the local targets: the Lambda gateway over AWS's runtime emulator at
   three memory sizes, and gunicorn held to 2 vCPUs standing for a c6i.large (quick sizes, but
   300 warm requests: enough to fit the idle effect, `sim.config.IdleEffect`), and **fit** a
   profile.
3. **Simulate a month** of a diurnal trace with that profile: Lambda at three memory sizes and
   fixed c6i.large fleets of one and two instances behind an ALB (a sweep on the fast engine),
   and the cheapest configuration meeting the SLO.
4. **Break-even**: steady loads from 10 to 400 req/s, the cheapest Lambda against the cheapest
   fleet, and the load where they cost the same.
5. **Validate** live: a window of the month's trace at its busiest hour replayed against
   local-lambda and local-server, each compared with the prediction (the profile came from
   step 2, a separate calibration).
6. **Report**: ``report.html`` (self-contained) with the answer, the plots and the validation.

Everything goes into one folder; running it again reuses what is there (the model cache, the
finished calibration units and sweep points) and measures the validation again.
"""
from __future__ import annotations

import html
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pandas as pd

from sim.atomic import write_text

MODEL = "price-mlp"
MEMORY_MB = (512, 1024, 1769)
VALIDATED_MB = 1024
"""The memory size of the month scenario's Lambda, the one step 5 replays live."""
SLO_P99_MS = 50.0


@dataclass
class DemoResult:
    out: Path
    cheapest: dict | None
    break_even: dict | None
    validations: dict = field(default_factory=dict)   # target -> calibrate.validate.Validation
    report: Path | None = None
    timings: dict = field(default_factory=dict)

    def lines(self) -> list[str]:
        out = []
        if self.cheapest:
            c = self.cheapest
            out.append(f"cheapest configuration meeting p99 <= {SLO_P99_MS:g} ms over the month: {c['label']} "
                       f"(USD {c['cost']:.2f} a month, p99 {c['p99']:.3g} ms)")
        else:
            out.append(f"no configuration meets p99 <= {SLO_P99_MS:g} ms over the month")
        be = self.break_even
        out.append("break-even load: none between 10 and 400 req/s" if be is None else
                   f"break-even load: {be['load']:.0f} req/s (Lambda cheaper below; p99 there: Lambda "
                   f"{be['lambda_latency_p99']:.3g} ms, EC2 {be['ec2_latency_p99']:.3g} ms)")
        for target, v in self.validations.items():
            errs = ", ".join(f"{m} {v.error(m):+.1f} %" for m in ("p50", "p95", "p99", "cold_starts", "cost_usd")
                             if v.error(m) is not None)
            out.append(f"prediction error on {target} ({v.requests} requests over {v.window_s:g} s): {errs}")
        if self.report:
            out.append(f"report: {self.report}")
        return out


def month_scenario(profile: Path, days: float = 30.0) -> dict:
    """The month: a diurnal trace (mean 5 req/s, peak 3x at 14:00), Lambda sizes against fleets."""
    return {
        "name": "demo-month", "seed": 1, "warmup_s": "1h", "profile": str(profile),
        "trace": {"kind": "diurnal", "mean_rps": 5, "peak_to_mean": 3, "peak_hour": 14, "duration": f"{days:g}d"},
        "platforms": [
            {"name": "lambda", "kind": "lambda", "memory_mb": VALIDATED_MB, "keep_alive_s": 300},
            {"name": "ec2", "kind": "ec2", "instance_type": "c6i.large", "instances": 1, "workers_per_instance": 2,
             "request_kb": 1},
        ],
        "sweep": {"grid": {"lambda.memory_mb": list(MEMORY_MB)}, "zip": {"ec2.instances": [1, 2]},
                  "slo": {"p99_ms": SLO_P99_MS}},
    }


def breakeven_scenario(profile: Path, hours: float = 2.0) -> dict:
    """Steady loads from 10 to 400 req/s: where does the cheapest Lambda stop being cheaper?"""
    return {
        "name": "demo-breakeven", "seed": 2, "warmup_s": "5m", "profile": str(profile),
        "trace": {"kind": "poisson", "rate_rps": 10, "duration": f"{hours:g}h"},
        "platforms": [
            {"name": "lambda", "kind": "lambda", "memory_mb": 1024, "keep_alive_s": 300},
            {"name": "ec2", "kind": "ec2", "instance_type": "c6i.large", "instances": 1, "workers_per_instance": 2,
             "request_kb": 1},
        ],
        "sweep": {"grid": {"trace.rate_rps": [10, 50, 100, 200, 300, 400], "lambda.memory_mb": [1024, 1769]},
                  "slo": {"p99_ms": SLO_P99_MS}},
    }


def run_demo(out_dir: str | Path, *, echo: Callable[[str], None] = print, progress: bool = True,
             month_days: float = 30.0, validate_s: float = 45.0, n_cold: int = 5, n_warm: int = 300,
             executor: str = "processes") -> DemoResult:
    """The demo (see the module docstring) into `out_dir`."""
    import yaml

    from calibrate.campaign import run_campaign
    from calibrate.profiles import fit_measurements
    from calibrate.targets import LocalLambdaTarget, LocalServerTarget
    from calibrate.validate import validate
    from deploy.models import build_model
    from scenarios.analysis import break_even, cheapest_meeting
    from scenarios.loader import load_scenario
    from scenarios.sweep import parse_sweep
    from scenarios.sweepreport import sweep_plots
    from scenarios.sweeprun import run_sweep

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}

    def step(name: str, text: str):
        echo(f"[{len(timings) + 1}/6] {text}")
        return name, time.perf_counter()

    def done(mark):
        timings[mark[0]] = round(time.perf_counter() - mark[1], 1)

    mark = step("model", f"building the model {MODEL} (offline, cached)")
    build_model(MODEL)
    done(mark)

    mark = step("calibrate", "calibrating on the local targets: local-lambda at "
                f"{', '.join(map(str, MEMORY_MB))} MB, local-server (2 workers, 2 vCPUs as a c6i.large)")
    from calibrate.host import check_host

    meas = out / "measurements"
    sizes = dict(host=check_host(), quick=True, n_cold=n_cold, n_warm=n_warm, load_levels=[1, 2], level_s=2.0, progress=progress,
                 burst_sizes=[1, 2, 4, 8], echo=echo)
    # Bursts and pairs (the host share, its way in) only where step 5 replays: the other sizes are
    # simulated as on AWS. (The server target measures no pairs.)
    campaigns = (("lambda", LocalLambdaTarget(MODEL, [m for m in MEMORY_MB if m != VALIDATED_MB]), 0, 0),
                 ("lambda-validated", LocalLambdaTarget(MODEL, [VALIDATED_MB]), 3, None),
                 ("server", LocalServerTarget(MODEL, [2], cpus=2, instance_type="c6i.large"), 3, None))
    tables = []
    for name, target, bursts, pairs in campaigns:
        table = meas / f"{name}.parquet"
        run_campaign(target, table, resume=table.exists(), bursts=bursts, pairs=pairs, **sizes)
        tables.append(table)
    profile = out / "profile.json"
    fit_measurements(tables, profile, plots_dir=meas / "fit-plots")
    done(mark)

    mark = step("month", f"simulating {month_days:g} days of a diurnal trace: Lambda at "
                f"{', '.join(map(str, MEMORY_MB))} MB, one and two c6i.large behind an ALB")
    month_file = out / "month.yaml"
    # a scenario's profile path is relative to the scenario file (both are in `out`)
    write_text(month_file, yaml.safe_dump(month_scenario(Path(profile.name), month_days), sort_keys=False))
    month = load_scenario(month_file)
    month_dir = out / "month"
    month_table = run_sweep(month, month_dir, executor=executor, progress=progress)
    plots = sweep_plots(month_dir, month_table, slo=parse_sweep(month).slo)
    ok = month_table[month_table["status"] == "ok"]
    best = cheapest_meeting(ok, {"p99_ms": SLO_P99_MS})
    cheapest = None
    if best is not None:
        params = ", ".join(f"{c.removeprefix('param.')}={best[c]}" for c in ok.columns
                           if c.startswith("param.") and pd.notna(best[c]))
        cheapest = {"label": f"{best['platform']} ({params})", "cost": float(best["cost_usd.total"]),
                    "p99": float(best["latency_ms.p99"])}
    done(mark)

    mark = step("break_even", "finding the break-even load (steady 10 to 400 req/s)")
    be_file = out / "breakeven.yaml"
    write_text(be_file, yaml.safe_dump(breakeven_scenario(Path(profile.name)), sort_keys=False))
    be_sc = load_scenario(be_file)
    be_dir = out / "breakeven"
    be_table = run_sweep(be_sc, be_dir, executor=executor, progress=progress)
    be_plots = sweep_plots(be_dir, be_table, slo=parse_sweep(be_sc).slo)
    be = break_even(be_table[be_table["status"] == "ok"])
    done(mark)

    mark = step("validate", f"validating live: {validate_s:g} s of the month's busiest hour replayed against "
                "local-lambda and local-server")
    start_s = 14 * 3600.0  # the diurnal peak
    validations = {}
    single = load_scenario(month_file)  # lambda at 1024 MB, one instance: the platforms as written
    for target in ("local-lambda", "local-server"):
        shutil.rmtree(out / f"validate-{target}", ignore_errors=True)  # measured anew on every run
        validations[target] = validate(single, target, out / f"validate-{target}", duration_s=validate_s,
                                       start_s=start_s, progress=progress, echo=echo)
    done(mark)

    mark = step("report", "writing the report")
    result = DemoResult(out, cheapest, be, validations, timings=timings)
    result.report = _write_report(out, result, plots, be_plots, month_table, be_table)
    done(mark)
    return result


def _img(path: Path) -> str:
    from scenarios.sweepreport import figure_html

    return figure_html(path, f"{Path(path).parent.parent.name}/{Path(path).name}")


def _write_report(out: Path, r: DemoResult, month_plots: list[Path], be_plots: list[Path], month: pd.DataFrame,
                  be: pd.DataFrame) -> Path:
    from scenarios.sweepreport import html_page

    body = ["<h1>servesim demo: servers or serverless for price-mlp</h1>",
            "<h2>The answer</h2><ul>" + "".join(f"<li>{html.escape(line)}</li>" for line in r.lines()) + "</ul>",
            "<h2>The month (simulated)</h2>", *(_img(p) for p in month_plots),
            '<div class="wide">' + month.to_html(index=False, na_rep="", border=0, classes="sweep") + "</div>",
            "<h2>The break-even</h2>", *(_img(p) for p in be_plots),
            '<div class="wide">' + be.to_html(index=False, na_rep="", border=0, classes="sweep") + "</div>",
            "<h2>Validation against the local targets</h2>"]
    for target, v in r.validations.items():
        body.append(f"<h3>{html.escape(v.platform)} on {html.escape(target)}: {v.requests} requests over "
                    f"{v.window_s:g} s</h3>")
        body.append(v.table().to_html(index=False, na_rep="-", border=0, classes="sweep", float_format="%.4g"))
        lag = v.lag
        if lag.get("n"):
            body.append(f"<p>client send lag p50 {lag['p50_ms']:.2f} ms, p99 {lag['p99_ms']:.2f} ms</p>")
        body.extend(_img(p) for p in v.plots)
    body.append("<h2>Timings</h2><ul>" + "".join(f"<li>{html.escape(k)}: {s:g} s</li>" for k, s in
                                                  r.timings.items()) + "</ul>")
    return write_text(out / "report.html", html_page("servesim demo", body))

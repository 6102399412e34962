"""The `servesim` command: a thin layer over the packages (parse, call one function, print).

User errors (bad scenario, bad pricing file, bad option) print one clear message and exit 2.
"""
from __future__ import annotations

import functools
import json
import sys
from pathlib import Path

import click

from sim.errors import ServesimError


def user_errors(f):
    """Turn ServesimError into a message and exit code 2, without a traceback."""
    @functools.wraps(f)
    def wrapper(*args, **kwargs):
        try:
            return f(*args, **kwargs)
        except ServesimError as exc:
            click.echo(f"servesim: error: {exc}", err=True)
            sys.exit(exc.exit_code)
    return wrapper


def needs_local_extra(f):
    """Commands of the local targets need the `local` extra (onnx, onnxruntime, gunicorn, ...)."""
    @functools.wraps(f)
    def wrapper(*args, **kwargs):
        try:
            import onnx  # noqa: F401
            import onnxruntime  # noqa: F401
        except ImportError as exc:
            raise ServesimError(f"this command needs the local targets' packages ({exc.name} is missing): "
                                "pip install 'servesim[local]'") from None
        return f(*args, **kwargs)
    return wrapper


def pricing_option(f):
    return click.option("--pricing", "pricing_path", type=click.Path(dir_okay=False, path_type=Path),
                        help="Pricing file (YAML, schema servesim.pricing/1) instead of the packaged us-east-1 prices.")(f)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="servesim")
def main():
    """servesim: servers or serverless for ML inference, what it costs and what tail latency users see.

    \b
    Example:
      servesim simulate scenarios/examples/classifier-50rps.yaml
    """


@main.command()
@click.argument("scenario", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON (one object per platform).")
@click.option("--records", type=click.Path(dir_okay=False, path_type=Path),
              help="Write every request (arrival, status, cold, latency) to this Parquet file.")
@click.option("--plot", "plot_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Write latency-cdf.png and instances.png into this folder.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Write results.json, series.csv (per minute) and the resolved scenario into this folder.")
@pricing_option
@click.option("--progress/--no-progress", default=None, help="Progress bar (default: on a terminal, for long runs).")
@user_errors
def simulate(scenario, as_json, records, plot_dir, out_dir, pricing_path, progress):
    """Simulate every platform of a SCENARIO file on the same traffic and compare cost and latency.

    \b
    Examples:
      servesim simulate scenarios/examples/classifier-50rps.yaml
      servesim simulate my.yaml --json --plot plots/ --records requests.parquet
    """
    from rich.console import Console

    from scenarios.loader import load_scenario
    from scenarios.progress import SimProgress
    from scenarios.report import comparison_table, plot_instances, plot_latency_cdf
    from scenarios.runner import run_scenario, save_results, scenario_pricing

    sc = load_scenario(scenario)
    pricing = scenario_pricing(sc, pricing_path)
    with SimProgress(sc.trace.duration_s, enabled=progress) as prog:
        run = run_scenario(sc, pricing=pricing, records_path=records, progress_for=prog.for_platform)
    if out_dir:
        save_results(run, out_dir)
    if plot_dir:
        plot_latency_cdf(run.results, Path(plot_dir) / "latency-cdf.png", title=f"{sc.name}: latency CDF")
        plot_instances(run.results, Path(plot_dir) / "instances.png", title=f"{sc.name}: instances over time")
    if as_json:
        click.echo(json.dumps(run.summaries(), indent=2))
        return
    console = Console()
    if not console.is_terminal:
        console = Console(width=170)
    window_h = run.results[0].summary["horizon_s"] / 3600 if run.results else 0
    console.print(comparison_table(run.results, title=f"{sc.name} — {window_h:.2f} h simulated after warm-up, "
                                                       f"seed {sc.seed}, {run.wall_s:.1f} s"))
    for r in run.results:
        if r.summary.get("interpolated"):
            console.print(f"[yellow]{r.summary['platform']}:[/] {r.summary['interpolated']}", highlight=False)
    for note in sc.trace.notes():
        console.print(f"[dim]trace:[/] {note}", highlight=False)
    if sc.sweep:
        console.print("[yellow]note:[/] this scenario has a sweep: section; `simulate` runs its base configuration "
                      "only (sweeps are not part of this version).")
    for p in [records] if records else []:
        console.print(f"records: {p}")
    if plot_dir:
        console.print(f"plots: {Path(plot_dir) / 'latency-cdf.png'}, {Path(plot_dir) / 'instances.png'}")
    if out_dir:
        console.print(f"results: {out_dir}/results.json, series.csv, scenario.resolved.yaml")


def _parse_params(pairs: tuple[str, ...]) -> dict:
    """`-p key=value` pairs; values are YAML (numbers, lists, mappings), like in a scenario file."""
    import yaml

    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected key=value, got {pair!r}", param_hint="-p/--param")
        try:
            out[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError as exc:
            raise click.BadParameter(f"{key}: not a YAML value ({exc})", param_hint="-p/--param") from None
    return out


@main.group()
def trace():
    """Generate traffic traces and describe them (rates, burstiness, gaps).

    \b
    Examples:
      servesim trace gen diurnal -p mean_rps=20 -p peak_to_mean=3 --duration 30d --out month.parquet
      servesim trace show month.parquet --plot month.png
    """


@trace.command("gen")
@click.argument("kind")
@click.option("-p", "--param", "params", multiple=True, metavar="KEY=VALUE",
              help="A parameter of the trace kind, as in a scenario's trace: (repeatable), e.g. -p rate_rps=50.")
@click.option("--duration", help="Length of the trace: seconds or '90s', '15m', '4h', '30d'.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Scenario seed: the same arrivals a scenario with this seed simulates.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Parquet file to write (column t_s in seconds, plus attributes such as token counts).")
@click.option("--progress/--no-progress", default=None, help="Progress bar (default: on a terminal, for long runs).")
@user_errors
def trace_gen(kind, params, duration, seed, out, progress):
    """Generate a trace of KIND (poisson, diurnal, mmpp, spike, ramp, renewal, ...) into a Parquet file.

    \b
    Examples:
      servesim trace gen poisson -p rate_rps=50 --duration 4h --out steady.parquet
      servesim trace gen mmpp -p rates_rps=[5,200] -p mean_sojourn_s=[600,60] --duration 1d --out bursty.parquet
    """
    from scenarios.progress import SimProgress
    from scenarios.tracetools import generate, trace_from_params

    source = trace_from_params(kind, _parse_params(params), duration, base_dir=Path.cwd())
    with SimProgress(source.duration_s, enabled=progress) as prog:
        n = generate(source, seed, out, progress=prog.task(f"generating {kind}"))
    click.echo(f"wrote {n:,} arrivals over {source.duration_s:,.0f} s to {out}")
    for note in source.notes():
        click.echo(f"note: {note}")


@trace.command("show")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--column", help="Timestamp column of a CSV/Parquet file (default: t_s, else the first).")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Write a PNG: rate over time and the histogram of gaps.")
@click.option("--json", "as_json", is_flag=True, help="Print the statistics as JSON.")
@click.option("--progress/--no-progress", default=None, help="Progress bar (default: on a terminal, for long runs).")
@user_errors
def trace_show(path, column, plot_path, as_json, progress):
    """Describe the trace of a PATH: a scenario (.yaml) or a timestamp file (.csv, .parquet).

    Requests, duration, mean and peak rates, index of dispersion at several windows, peak-to-mean.

    \b
    Examples:
      servesim trace show scenarios/examples/classifier-50rps.yaml
      servesim trace show month.parquet --plot month.png
    """
    from rich.console import Console
    from rich.table import Table

    from scenarios.progress import SimProgress
    from scenarios.report import plot_trace
    from scenarios.tracetools import describe

    with SimProgress(None, enabled=progress) as prog:
        report = describe(path, column, progress_for=lambda src: prog.with_horizon(src.duration_s).task("reading"))
    s = report.stats
    if plot_path:
        plot_trace(s, plot_path, title=report.name)
    if as_json:
        click.echo(json.dumps({"trace": report.name, **s.as_dict(), "durations_ms": report.durations_ms,
                               "notes": report.notes}, indent=2))
        return
    t = Table(title=f"trace: {report.name}", show_header=False, title_justify="left")
    t.add_column(justify="left")
    t.add_column(justify="right")
    t.add_row("requests", f"{s.requests:,}")
    t.add_row("duration", f"{s.duration_s:,.1f} s ({s.duration_s / 3600:,.2f} h)")
    t.add_row("mean rate", f"{s.mean_rps:,.4g} req/s ({60 * s.mean_rps:,.4g} per minute)")
    t.add_row("peak rate, busiest second", f"{s.peak_rps_1s:,.0f} req/s")
    t.add_row("peak rate, busiest minute", f"{s.peak_rps_1min:,.4g} req/s ({60 * s.peak_rps_1min:,.0f} per minute)")
    t.add_row("peak-to-mean (minute)", f"{s.peak_to_mean:.3g}")
    for w, v in s.dispersion.items():
        t.add_row(f"index of dispersion, {w} s windows", f"{v:.3g}")
    if report.durations_ms:
        d = report.durations_ms
        t.add_row("durations (ms): mean, p50, p99", f"{d['mean']:.4g}, {d['p50']:.4g}, {d['p99']:.4g}")
    console = Console()
    console.print(t)
    for note in report.notes:
        console.print(f"note: {note}")
    if plot_path:
        console.print(f"plot: {plot_path}")


@main.group()
def models():
    """The model zoo: ONNX models built offline (no download at run time, no PyTorch).

    \b
    Examples:
      servesim models list
      servesim models build mobilenetv2
      servesim models build --all
    """


@models.command("list")
@user_errors
@needs_local_extra
def models_list():
    """List the zoo's models with their input/output contracts."""
    from rich.console import Console
    from rich.table import Table

    from deploy.models import list_models

    t = Table(title="servesim model zoo (any .onnx file works too: --model path.onnx)", title_justify="left")
    for col in ("name", "inputs", "outputs", "description"):
        t.add_column(col)
    for info in list_models():
        fmt = lambda specs: "\n".join(f"{x.name} {x.dtype}{list(x.shape)}" for x in specs)  # noqa: E731
        t.add_row(info.name, fmt(info.inputs), fmt(info.outputs), info.description + (f" ({info.notes})" if info.notes else ""))
    Console(width=160).print(t)


@models.command("build")
@click.argument("name", required=False)
@click.option("--all", "build_all", is_flag=True, help="Build every model of the zoo.")
@click.option("--force", is_flag=True, help="Rebuild even when the cached file exists.")
@user_errors
@needs_local_extra
def models_build(name, build_all, force):
    """Build a zoo model NAME (or --all) into the cache folder and print its sha256."""
    from deploy.models import ZOO, build_model

    if bool(name) == bool(build_all):
        raise click.UsageError("give a model NAME or --all")
    for n in (list(ZOO) if build_all else [name]):
        try:
            mf = build_model(n, force=force)
        except ServesimError as exc:
            if not build_all:
                raise
            click.echo(f"{n}: skipped ({exc})")
            continue
        click.echo(f"{mf.name}: {mf.path} sha256 {mf.sha256}")


@main.command()
@click.option("--model", "model", required=True, help="A zoo name (e.g. mobilenetv2) or a path to an .onnx file.")
@click.option("--workers", type=click.IntRange(1, 64), default=2, show_default=True, help="gunicorn worker processes.")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True, help="Port on 127.0.0.1 (0: any free port).")
@click.option("--cpus", type=click.FloatRange(0.01, 1024), help="Hold the server to this many vCPUs (cgroup quota, else affinity).")
@click.option("--threads", type=click.IntRange(1, 64), default=1, show_default=True, help="onnxruntime threads per worker.")
@user_errors
@needs_local_extra
def serve(model, workers, port, cpus, threads):
    """Serve a model like an EC2 instance would: gunicorn + the Flask app on 127.0.0.1.

    POST /predict with {"inputs": {...}}; GET /health. Ctrl-C stops every process.

    \b
    Example:
      servesim serve --model mobilenetv2 --workers 2 --cpus 2
    """
    from deploy.local_server import serve as serve_model

    serve_model(model, workers=workers, port=port or None, cpus=cpus, threads=threads, echo=click.echo)


@main.command("local-lambda")
@click.option("--model", "model", required=True, help="A zoo name (e.g. mobilenetv2) or a path to an .onnx file.")
@click.option("--memory-mb", type=click.IntRange(128, 10240), default=1024, show_default=True,
              help="Function memory: the CPU share is memory/1769 vCPU (cgroup quota where the host allows it).")
@click.option("--keep-alive-s", type=click.FloatRange(0, None), default=360, show_default=True,
              help="An environment idle this long is reclaimed.")
@click.option("--concurrency-limit", type=click.IntRange(1, 1000), default=10, show_default=True,
              help="Concurrent environments; more requests get 429 TooManyRequestsException.")
@click.option("--port", type=click.IntRange(0, 65535), default=9000, show_default=True, help="Port on 127.0.0.1 (0: any free port).")
@click.option("--timeout-s", type=click.FloatRange(1, 900), default=30, show_default=True, help="Function timeout.")
@click.option("--rie", type=click.Path(dir_okay=False, path_type=Path),
              help="The aws-lambda-rie binary, if you have it (default: the one `make rie` extracted).")
@user_errors
@needs_local_extra
def local_lambda(model, memory_mb, keep_alive_s, concurrency_limit, port, timeout_s, rie):
    """A local AWS Lambda: the Invoke API on 127.0.0.1, each environment AWS's runtime emulator
    running the same handler that goes to AWS. boto3 works against it with endpoint_url.

    \b
    Example:
      servesim local-lambda --model mobilenetv2 --memory-mb 1769
      python -c "import boto3; print(boto3.client('lambda', endpoint_url='http://127.0.0.1:9000',
                 region_name='us-east-1').invoke(FunctionName='mobilenetv2', Payload=b'{...}'))"
    """
    from deploy.local_lambda import serve_forever

    serve_forever(model, memory_mb=memory_mb, keep_alive_s=keep_alive_s, concurrency_limit=concurrency_limit,
                  port=port or None, rie=rie, timeout_s=timeout_s, echo=click.echo)


@main.command()
@click.argument("target", type=click.Choice(["local-server", "local-lambda", "http"]))
@click.option("--model", "model", help="A zoo name or an .onnx file (required except for http with --body).")
@click.option("--memory-mb", default="1024", show_default=True,
              help="local-lambda: memory sizes to measure, comma-separated (e.g. 512,1024,2048).")
@click.option("--workers", default="2", show_default=True,
              help="local-server: worker counts to measure, comma-separated.")
@click.option("--cpus", type=click.FloatRange(0.01, 1024), help="local-server: hold the server to K vCPUs.")
@click.option("--instance-type", help="local-server: the EC2 type this configuration stands for (e.g. c6i.large "
                                      "with --cpus 2), so the profile's server entries match scenarios.")
@click.option("--url", help="http: the URL to POST to.")
@click.option("--body", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="http: a request body file (default: a sample request for --model).")
@click.option("--out", type=click.Path(path_type=Path), required=True,
              help="The measurement table (a folder of Parquet parts, appended as measured).")
@click.option("--quick", is_flag=True, help="A small campaign (about a minute): for trying things and tests.")
@click.option("--cold", "n_cold", type=click.IntRange(0, 10000), help="Cold starts per configuration (default 20; quick 3).")
@click.option("--warm", "n_warm", type=click.IntRange(1, 10**6), help="Sequential warm requests (default 500; quick 50).")
@click.option("--levels", help="Load levels: concurrent clients, comma-separated (default 1,2,4,...,32; quick 1,2).")
@click.option("--level-s", type=click.FloatRange(0.5, 3600), help="Seconds per load level (default 10; quick 2).")
@click.option("--resume", is_flag=True, help="Continue an interrupted campaign in --out.")
@click.option("--progress/--no-progress", default=True, show_default=True, help="Progress bars per phase.")
@user_errors
@needs_local_extra
def calibrate(target, model, memory_mb, workers, cpus, instance_type, url, body, out, quick, n_cold, n_warm, levels,
              level_s, resume, progress):
    """Measure cold starts, warm latency and throughput of a model on a TARGET into a table.

    Checks the host first (usable CPUs, whether they scale, cgroup quotas) and warns loudly when
    it is noisy. Interrupted campaigns keep their rows; --resume continues them.

    \b
    Examples:
      servesim calibrate local-lambda --model mobilenetv2 --memory-mb 1024,1769,3008 --out m.parquet
      servesim calibrate local-server --model mobilenetv2 --workers 1,2 --cpus 2 --out s.parquet --quick
      servesim fit m.parquet --out mobilenetv2.json --plots plots/
    """
    from calibrate.campaign import parse_list, run_campaign
    from calibrate.targets import HttpTarget, LocalLambdaTarget, LocalServerTarget
    from deploy.procs import install_signal_handlers

    if target == "http":
        if not url:
            raise click.UsageError("http needs --url")
        tgt = HttpTarget(url, body.read_bytes() if body else None, model=model)
    elif not model:
        raise click.UsageError(f"{target} needs --model")
    elif target == "local-lambda":
        tgt = LocalLambdaTarget(model, parse_list(memory_mb, "--memory-mb"))
    else:
        tgt = LocalServerTarget(model, parse_list(workers, "--workers"), cpus=cpus, instance_type=instance_type)
    install_signal_handlers()
    try:
        summary = run_campaign(tgt, out, quick=quick, resume=resume, progress=progress, n_cold=n_cold, n_warm=n_warm,
                               load_levels=parse_list(levels, "--levels") if levels else None, level_s=level_s)
    except KeyboardInterrupt:
        click.echo(f"interrupted: the rows measured so far are in {out}; rerun with --resume to continue", err=True)
        sys.exit(130)
    for line in summary.lines():
        click.echo(line)


@main.command()
@click.argument("measurements", type=click.Path(exists=True, path_type=Path), nargs=-1, required=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="The profile to write (JSON, schema servesim.profile/1).")
@click.option("--plots", "plots_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Write a diagnostic PNG per fitted distribution (histogram + PDF, QQ, tail CDF).")
@user_errors
def fit(measurements, out, plots_dir):
    """Fit distributions to MEASUREMENTS tables (one model) and write a calibration profile.

    Per configuration and phase: lognorm, gamma, weibull_min, expon (plain and shifted) by maximum
    likelihood, a two-component mixture where the data are bimodal, and empirical; chosen by AIC
    among fits the KS test accepts; a fit whose p99 misses the measured one by more than 5 % falls
    back to empirical or to a body spliced to a fitted tail. With several Lambda memory sizes, the
    memory scaling of warm durations is fitted too.

    \b
    Example:
      servesim fit lambda.parquet server.parquet --out profiles/mobilenetv2.json --plots plots/
    """
    from rich.console import Console

    from calibrate.profiles import fit_measurements

    profile = fit_measurements(list(measurements), out, plots_dir=plots_dir)
    console = Console(width=160)
    for kind, key, dist_keys in (("lambda", "memory_mb", ("warm_ms", "cold_init_ms")),
                                 ("server", "workers", ("service_ms", "boot_s"))):
        for e in profile.get(kind, []):
            for dk in dist_keys:
                spec = e.get(dk)
                if not spec:
                    continue
                f = spec.get("fit", {})
                console.print(f"{kind} {key}={e[key]} {dk}: {f.get('method', '?')} {spec.get('dist')}"
                              f" (n={f.get('n')}, p99 measured {f.get('p99_emp', float('nan')):.4g},"
                              f" fitted {f.get('p99_fit', float('nan')):.4g})", highlight=False)
    if profile.get("lambda_scaling"):
        console.print(f"memory scaling fitted for {', '.join(profile['lambda_scaling'])}", highlight=False)
    console.print(f"profile: {out}" + (f"; plots: {plots_dir}" if plots_dir else ""), highlight=False)


if __name__ == "__main__":
    main()

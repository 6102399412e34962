"""The `servesim` command: a thin layer over the packages (parse, call one function, print).

User errors (bad scenario, bad pricing file, bad option) print one clear message and exit 2.
"""
from __future__ import annotations

import functools
import json
import sys
import time
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
                      "only (`servesim sweep` runs the sweep).")
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


def aws_options(f):
    """--region, --endpoint-url, --profile: where boto3 goes (credentials: boto3's usual chain)."""
    f = click.option("--profile", help="AWS profile (default: boto3's chain: AWS_PROFILE, env, ~/.aws, SSO, role).")(f)
    f = click.option("--endpoint-url", help="Send every AWS call here instead (moto's server, the local Lambda "
                                            "gateway); default: AWS, or AWS_ENDPOINT_URL.")(f)
    return click.option("--region", help="AWS region (default: AWS_REGION or the profile's).")(f)


def _aws_context(region, endpoint_url, profile):
    from deploy.aws.session import AwsContext

    return AwsContext(region=region, endpoint_url=endpoint_url, profile=profile)


def _echo_lines(lines) -> None:
    for line in lines:
        click.echo(line)


@main.command()
@click.argument("target", type=click.Choice(["local-server", "local-lambda", "http", "aws-lambda", "aws-ec2"]))
@click.option("--model", "model", help="A zoo name or an .onnx file (required except for http with --body).")
@click.option("--memory-mb", default="1024", show_default=True,
              help="local-lambda, aws-lambda: memory sizes to measure, comma-separated (e.g. 512,1024,2048).")
@click.option("--workers", default="2", show_default=True,
              help="local-server: worker counts to measure, comma-separated.")
@click.option("--cpus", type=click.FloatRange(0.01, 1024), help="local-server: hold the server to K vCPUs.")
@click.option("--instance-type", help="aws-ec2: the instance type to measure. local-server: the EC2 type this "
                                      "configuration stands for (e.g. c6i.large with --cpus 2), so the profile's "
                                      "server entries match scenarios.")
@click.option("--url", help="http: the URL to POST to.")
@click.option("--body", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="http: a request body file (default: a sample request for --model).")
@click.option("--idle-s", "idle_s", type=float,
              help="http: measure cold starts: before each of the --cold requests stay idle this long (s), longer "
                   "than the platform's scale-to-zero delay (Knative: stable window + grace, 90 s by default).")
@click.option("--label", help="http: the profile entry's name, for scenarios' profile_entry (default: the URL's last "
                              "path segment).")
@click.option("--header", "headers", multiple=True, metavar="NAME: VALUE",
              help="http: a header sent with every request (repeatable), e.g. 'Host: hello.default.example.com'.")
@click.option("--out", type=click.Path(path_type=Path), required=True,
              help="The measurement table (a folder of Parquet parts, appended as measured).")
@click.option("--quick", is_flag=True, help="A small campaign (about a minute): for trying things and tests.")
@click.option("--cold", "n_cold", type=click.IntRange(0, 10000), help="Cold starts per configuration (default 20; quick 3).")
@click.option("--warm", "n_warm", type=click.IntRange(1, 10**6), help="Sequential warm requests (default 500; quick 50).")
@click.option("--warm-gap", "warm_gap_s", type=click.FloatRange(0, 60), help="Longest idle pause (s) before a warm request; "
              "half the pauses spread log-uniformly from 0.5 ms to it, for the idle effect, half are it (default 0.2; 0: back to back).")
@click.option("--levels", help="Load levels: concurrent clients, comma-separated (default 1,2,4,...,32; quick 1,2).")
@click.option("--level-s", type=click.FloatRange(0.5, 3600), help="Seconds per load level (default 10; quick 2).")
@click.option("--burst-sizes", help="local targets: requests sent at once per burst, comma-separated, starting at 1 "
                                    "(default 1,2,4,8; local-server: those up to --workers).")
@click.option("--bursts", "bursts", type=click.IntRange(0, 10000),
              help="local targets: recorded bursts per size (default 5; quick 3; 0: no burst phase).")
@click.option("--pairs", "pairs", type=click.IntRange(0, 10000),
              help="local-lambda: recorded pairs per offset (default 20; quick 6; 0: no pairs phase).")
@click.option("--idle-cold", "n_idle_cold", type=click.IntRange(0, 10000),
              help="local-lambda only: cold starts after host idle per memory size (default 0: none). Each retires "
                   "every environment, leaves the host idle for --idle-cold-s, then sends one request: an INIT "
                   "after idle is slower than the back-to-back ones of --cold (memory reclaim), and `fit` turns "
                   "the ratio into host_share.init_idle_factor. Costs N x S seconds per memory size.")
@click.option("--idle-cold-s", "idle_cold_s", type=click.FloatRange(0, 3600, min_open=True),
              help="local-lambda: the host's idle time (s) before each --idle-cold cold start (default 30).")
@click.option("--resume", is_flag=True, help="Continue an interrupted campaign in --out.")
@click.option("--progress/--no-progress", default=True, show_default=True, help="Progress bars per phase.")
@click.option("--architecture", type=click.Choice(["x86_64", "arm64"]), default="x86_64", show_default=True,
              help="aws-lambda: the functions' architecture.")
@click.option("--timeout-s", type=click.IntRange(1, 900), default=30, show_default=True,
              help="aws-lambda: the function timeout (it also bounds the campaign's cost).")
@click.option("--function", help="aws-lambda: measure this existing function (no deploy, no teardown).")
@click.option("--allow-cidr", help="aws-ec2: the address allowed to reach the instances, e.g. 203.0.113.7/32 "
                                   "(default: this machine's public address).")
@click.option("--allow-anywhere", is_flag=True, help="aws-ec2: accept --allow-cidr 0.0.0.0/0 (open to everyone).")
@click.option("--max-cost-usd", type=click.FloatRange(0), help="aws-*: refuse a campaign whose cost could exceed this.")
@click.option("--dry-run", is_flag=True, help="aws-*: print what would be created and the cost bound, then stop.")
@click.option("--keep", is_flag=True, help="aws-*: keep the AWS resources after the campaign (default: torn down).")
@aws_options
@pricing_option
@user_errors
@needs_local_extra
def calibrate(target, model, memory_mb, workers, cpus, instance_type, url, body, idle_s, label, headers, out, quick,
              n_cold, n_warm, warm_gap_s, levels, level_s, burst_sizes, bursts, pairs, n_idle_cold, idle_cold_s,
              resume, progress, architecture, timeout_s, function, allow_cidr, allow_anywhere, max_cost_usd, dry_run,
              keep, region, endpoint_url, profile, pricing_path):
    """Measure cold starts, warm latency and throughput of a model on a TARGET into a table.

    Checks the host first (usable CPUs, whether they scale, cgroup quotas) and warns loudly when
    it is noisy. Interrupted campaigns keep their rows; --resume continues them. The local
    targets end with bursts of k simultaneous requests (cold and warm on local-lambda), which
    measure how concurrent work shares this host's CPUs (`fit` turns them into host_share);
    local-lambda then sends pairs of requests, the second 0 to 6 ms after the first (--pairs per
    offset), which measure how a request's way in through the gateway slows one running
    (host_share.way_in_ms); with --idle-cold N it ends with N cold starts each after
    --idle-cold-s of host idle (slower INITs: host_share.init_idle_factor).

    \b
    Examples:
      servesim calibrate local-lambda --model mobilenetv2 --memory-mb 1024,1769,3008 --out m.parquet
      servesim calibrate local-server --model mobilenetv2 --workers 1,2 --cpus 2 --out s.parquet --quick
      servesim calibrate local-lambda --model mobilenetv2 --cold 0 --warm 1 --levels 1 --level-s 0.5 \
          --burst-sizes 1,2,4,8 --bursts 10 --out bursts.parquet
      servesim calibrate local-lambda --model mobilenetv2 --idle-cold 10 --idle-cold-s 30 --out idle.parquet
      servesim calibrate local-lambda --model mobilenetv2 --cold 0 --warm 1 --levels 1 --level-s 0.5 \\
          --bursts 0 --pairs 40 --out pairs.parquet
      servesim calibrate aws-lambda --model mobilenetv2 --memory-mb 1024,2048 --max-cost-usd 2 --out a.parquet
      servesim calibrate aws-ec2 --model mobilenetv2 --instance-type c6i.large --allow-cidr 203.0.113.7/32 \\
          --dry-run --out e.parquet
      servesim calibrate http --url http://127.0.0.1:8080/function/mobilenet --model mobilenetv2 \\
          --cold 10 --idle-s 120 --label openfaas-mobilenet --out h.parquet
      servesim fit m.parquet --out mobilenetv2.json --plots plots/
    """
    from calibrate.campaign import parse_list, run_campaign, settings_for
    from calibrate.targets import LocalLambdaTarget, LocalServerTarget
    from deploy.procs import install_signal_handlers

    load_levels = parse_list(levels, "--levels") if levels else None
    sizes_k = parse_list(burst_sizes, "--burst-sizes") if burst_sizes else None
    if target != "http" and (idle_s is not None or label or headers):
        raise click.UsageError("--idle-s, --label and --header are for the http target only")
    _check_idle_cold(target, n_idle_cold, idle_cold_s)
    if pairs and target != "local-lambda":
        raise click.UsageError("--pairs is for the local-lambda target only (its environments share this host with "
                               "the gateway whose way in the pairs measure)")
    if target.startswith("aws-"):
        if not model:
            raise click.UsageError(f"{target} needs --model")
        settings = settings_for(quick, n_cold=n_cold, n_warm=n_warm, load_levels=load_levels, level_s=level_s,
                                warm_gap_s=warm_gap_s)
        tgt = _aws_target(target, model, memory_mb, instance_type, architecture, timeout_s, function, allow_cidr,
                          allow_anywhere, keep, _aws_context(region, endpoint_url, profile), settings, max_cost_usd,
                          dry_run, pricing_path)
        if tgt is None:
            return
    elif target == "http":
        tgt = _http_target(url, body, model, idle_s, label, headers, n_cold, quick)
    elif not model:
        raise click.UsageError(f"{target} needs --model")
    elif target == "local-lambda":
        tgt = LocalLambdaTarget(model, parse_list(memory_mb, "--memory-mb"))
    else:
        tgt = LocalServerTarget(model, parse_list(workers, "--workers"), cpus=cpus, instance_type=instance_type)
    install_signal_handlers()
    try:
        summary = run_campaign(tgt, out, quick=quick, resume=resume, progress=progress, n_cold=n_cold, n_warm=n_warm,
                               load_levels=load_levels, level_s=level_s, warm_gap_s=warm_gap_s, burst_sizes=sizes_k,
                               bursts=bursts, pairs=pairs, n_idle_cold=n_idle_cold, idle_cold_s=idle_cold_s)
    except KeyboardInterrupt:
        click.echo(f"interrupted: the rows measured so far are in {out}; rerun with --resume to continue", err=True)
        sys.exit(130)
    for line in summary.lines():
        click.echo(line)


def _check_idle_cold(target, n_idle_cold, idle_cold_s):
    """--idle-cold only on local-lambda, --idle-cold-s only with it; says what the phase costs."""
    if n_idle_cold and target != "local-lambda":
        raise click.UsageError("--idle-cold is for the local-lambda target only (its environments run on this host "
                               "and report their Init Duration)")
    if idle_cold_s is not None and not n_idle_cold:
        raise click.UsageError("--idle-cold-s needs --idle-cold N: the number of cold starts after host idle")
    if n_idle_cold:
        from calibrate.campaign import CampaignSettings

        s = CampaignSettings.idle_cold_s if idle_cold_s is None else idle_cold_s
        click.echo(f"local-lambda: the cold_idle phase (last) is {n_idle_cold} cold starts, each after {s:g} s of host "
                   f"idle: at least {n_idle_cold * s / 60:.1f} min per memory size", err=True)


def _http_target(url, body, model, idle_s, label, headers, n_cold, quick):
    """The http target; its cold phase only with --idle-s (refused with --cold N > 0 without it)."""
    from calibrate.campaign import settings_for
    from calibrate.targets import HttpTarget

    if not url:
        raise click.UsageError("http needs --url")
    if not model and not body:
        raise click.UsageError("http needs --body or --model (to draw a sample request from)")
    if idle_s is not None and not idle_s > 0:
        raise click.UsageError(f"--idle-s must be > 0 s (longer than the platform's scale-to-zero delay), got {idle_s}")
    if idle_s is None and n_cold:
        raise click.UsageError("http: --cold needs --idle-s: how long to stay idle before each request so that the "
                               "platform scales to zero (longer than its scale-to-zero delay or keep-alive)")
    parsed = {}
    for h in headers:
        name, sep, value = h.partition(":")
        if not sep or not name.strip():
            raise click.UsageError(f"--header {h!r}: expected 'Name: value'")
        parsed[name.strip()] = value.strip()
    tgt = HttpTarget(url, body.read_bytes() if body else None, model=model, idle_s=idle_s, label=label,
                     headers=parsed)
    if idle_s is not None:
        n = settings_for(quick, n_cold=n_cold).n_cold
        click.echo(f"http: the cold phase (after warm and load) is {n} requests, each after {idle_s:g} s idle: "
                   f"at least {n * idle_s / 60:.1f} min", err=True)
    else:
        click.echo("http: no --idle-s, so no cold starts are measured", err=True)
    return tgt


def _aws_target(target, model, memory_mb, instance_type, architecture, timeout_s, function, allow_cidr, allow_anywhere,
                keep, ctx, settings, max_cost_usd, dry_run, pricing_path):
    """The aws-lambda / aws-ec2 target, after the cost guard; None after a dry run (printed)."""
    from calibrate.aws_targets import AwsEc2Target, AwsLambdaTarget
    from calibrate.campaign import parse_list
    from deploy.aws.costs import check_budget, ec2_campaign_cost, lambda_campaign_cost
    from deploy.aws.resources import Planned
    from sim.pricing import load_pricing

    pricing = load_pricing(pricing_path)
    if target == "aws-lambda":
        memories = parse_list(memory_mb, "--memory-mb")
        if function:  # the existing function's own size, architecture and timeout bound its cost
            from deploy.aws.session import aws_errors

            with aws_errors(f"reading the configuration of {function}"):
                cfg = ctx.client("lambda").get_function_configuration(FunctionName=function)
            memories, timeout_s = [int(cfg["MemorySize"])], int(cfg.get("Timeout", timeout_s))
            architecture = (cfg.get("Architectures") or [architecture])[0]
        tgt = AwsLambdaTarget(model, memories, ctx=ctx, architecture=architecture, timeout_s=timeout_s,
                              function=function, keep=keep, echo=click.echo)
        plan = [] if function else tgt.stack().plan()
        estimate = lambda_campaign_cost(settings, memories, architecture, timeout_s, pricing)
    else:
        if not instance_type:
            raise click.UsageError("aws-ec2 needs --instance-type")
        from deploy.aws.ec2_deploy import caller_cidr

        tgt = AwsEc2Target(model, instance_type, ctx=ctx, allow_cidr=allow_cidr or caller_cidr(),
                           allow_anywhere=allow_anywhere, keep=keep, echo=click.echo)
        spec = tgt.spec
        plan = tgt.stack.plan()[:2] + [Planned("ec2-instance", f"{spec.instance_type} x {settings.n_cold + 1}",
                                               "one per cold start and one serving, each terminated after use")]
        workers = spec.workers or pricing.instance(instance_type).vcpus
        estimate = ec2_campaign_cost(settings, [instance_type], pricing, health_timeout_s=spec.health_timeout_s,
                                     request_timeout_s=tgt.timeout_s, extra_warmup=3 * workers)
    if dry_run:
        click.echo(f"dry run: {target} campaign as AWS run {tgt.run_id} in {ctx.region_name}; nothing was created.")
        if plan:
            _echo_lines(["would create:", *(p.line() for p in plan)])
        _echo_lines(estimate.text())
        if max_cost_usd is not None:
            check_budget(estimate, max_cost_usd)
            click.echo(f"within --max-cost-usd {max_cost_usd:g}")
        return None
    check_budget(estimate, max_cost_usd)
    click.echo(f"{target}: cost bound ${estimate.upper_usd:,.2f} (--dry-run shows it line by line)")
    return tgt


@main.group()
def deploy():
    """Deploy a model on AWS (Lambda functions or EC2 instances), tagged with a run id.

    \b
    Examples:
      servesim deploy lambda --model mobilenetv2 --memory-mb 1024,2048 --dry-run
      servesim deploy ec2 --model mobilenetv2 --instance-type c6i.large --allow-cidr 203.0.113.7/32
      servesim teardown --run-id 20261122184512-ab12cd
    """


@deploy.command("lambda")
@click.option("--model", required=True, help="A zoo name or an .onnx file.")
@click.option("--memory-mb", default="1024", show_default=True, help="Memory sizes, one function each, comma-separated.")
@click.option("--architecture", type=click.Choice(["x86_64", "arm64"]), default="x86_64", show_default=True)
@click.option("--python", "python_version", default="3.12", show_default=True, help="Lambda's Python runtime version.")
@click.option("--timeout-s", type=click.IntRange(1, 900), default=30, show_default=True, help="Function timeout.")
@click.option("--package", type=click.Choice(["zip", "image"]), default="zip", show_default=True,
              help="zip (onnxruntime wheels + handler + model) or a container image (needs Docker).")
@click.option("--function-url", is_flag=True, help="Add a function URL (IAM auth) to each function.")
@click.option("--dry-run", is_flag=True, help="Build the package and print what would be created, then stop.")
@aws_options
@user_errors
@needs_local_extra
def deploy_lambda(model, memory_mb, architecture, python_version, timeout_s, package, function_url, dry_run, region,
                  endpoint_url, profile):
    """Deploy MODEL as Lambda functions, one per memory size, and wait until they are Active.

    \b
    Example:
      servesim deploy lambda --model mobilenetv2 --memory-mb 1024,2048 --architecture arm64
    """
    from calibrate.campaign import parse_list
    from deploy.aws.lambda_deploy import LambdaSpec, LambdaStack
    from deploy.aws.session import new_run_id
    from deploy.models.cache import cache_dir

    ctx = _aws_context(region, endpoint_url, profile)
    spec = LambdaSpec(model, tuple(parse_list(memory_mb, "--memory-mb")), architecture, python_version, timeout_s,
                      package, function_url)
    stack = LambdaStack(ctx, spec, new_run_id(), cache_dir() / "aws", echo=click.echo)
    _deploy(stack, ctx, dry_run, "Lambda functions cost nothing while idle; each invocation is billed per ms of "
                                 "duration x memory plus $0.20 per million requests.")


@deploy.command("ec2")
@click.option("--model", required=True, help="A zoo name or an .onnx file.")
@click.option("--instance-type", required=True, help="e.g. c6i.large")
@click.option("--count", type=click.IntRange(1, 100), default=1, show_default=True)
@click.option("--allow-cidr", help="The only address allowed to reach the app, e.g. 203.0.113.7/32 "
                                   "(default: this machine's public address).")
@click.option("--allow-anywhere", is_flag=True, help="Accept --allow-cidr 0.0.0.0/0 (open to everyone).")
@click.option("--workers", type=click.IntRange(1, 256), help="gunicorn workers per instance (default: its vCPUs).")
@click.option("--port", type=click.IntRange(1, 65535), default=8080, show_default=True)
@click.option("--dry-run", is_flag=True, help="Print what would be created and the hourly cost, then stop.")
@aws_options
@user_errors
@needs_local_extra
def deploy_ec2(model, instance_type, count, allow_cidr, allow_anywhere, workers, port, dry_run, region, endpoint_url,
               profile):
    """Deploy MODEL on EC2 instances (default VPC) serving the app under gunicorn; wait for /health.

    \b
    Example:
      servesim deploy ec2 --model mobilenetv2 --instance-type c6i.large --count 2 --allow-cidr 203.0.113.7/32
    """
    from deploy.aws.ec2_deploy import Ec2Spec, Ec2Stack
    from deploy.aws.session import new_run_id
    from deploy.models.cache import cache_dir
    from sim.pricing import load_pricing

    from deploy.aws.ec2_deploy import caller_cidr

    ctx = _aws_context(region, endpoint_url, profile)
    spec = Ec2Spec(model, instance_type, count, allow_cidr or caller_cidr(), allow_anywhere, workers, 1, port)
    try:
        hourly = f"${count * load_pricing().instance(instance_type).usd_per_hour:,.4f}/hour"
    except ServesimError:
        hourly = "unknown (not in the pricing file)"
    _deploy(Ec2Stack(ctx, spec, new_run_id(), cache_dir() / "aws", echo=click.echo), ctx, dry_run,
            f"{count} x {instance_type} cost {hourly} while up (per second, at least 60 s per launch), "
            "until `servesim teardown`.")


def _deploy(stack, ctx, dry_run: bool, cost_text: str) -> None:
    """Print the plan; unless a dry run, deploy (tearing down what was made if it fails)."""
    from deploy.aws.teardown import teardown

    plan = stack.plan()
    click.echo(f"{'dry run: ' if dry_run else ''}AWS run {stack.run_id} in {ctx.region_name}; "
               f"{'would create' if dry_run else 'creating'}:")
    _echo_lines(p.line() for p in plan)
    click.echo(f"cost: {cost_text}")
    if dry_run:
        click.echo("nothing was created.")
        return
    try:
        deployment = stack.deploy()
    except BaseException:
        click.echo(f"deploy failed: tearing down what run {stack.run_id} created...", err=True)
        teardown(ctx, run_id=stack.run_id, echo=click.echo)
        raise
    click.echo(json.dumps(deployment.to_dict(), indent=2))
    click.echo(f"deployed. Delete everything with: servesim teardown --run-id {stack.run_id}"
               + (f" --region {ctx.region_name}" if ctx.region else ""))


@main.command("teardown")
@click.option("--run-id", help="Delete the resources of this run.")
@click.option("--all-servesim", is_flag=True, help="Delete the resources of every servesim run in the region.")
@click.option("--dry-run", is_flag=True, help="Only list what would be deleted.")
@aws_options
@user_errors
def teardown_cmd(run_id, all_servesim, dry_run, region, endpoint_url, profile):
    """Delete every AWS resource tagged servesim:run-id (of one run, or of all runs) in a region.

    \b
    Examples:
      servesim teardown --run-id 20261122184512-ab12cd
      servesim teardown --all-servesim --region eu-west-1 --dry-run
    """
    from deploy.aws.teardown import find, teardown

    ctx = _aws_context(region, endpoint_url, profile)
    found = teardown(ctx, run_id=run_id, all_servesim=all_servesim, echo=click.echo, dry_run=dry_run)
    if not found:
        click.echo(f"nothing tagged servesim:run-id{'=' + run_id if run_id else ''} in {ctx.region_name}")
        return
    if dry_run:
        _echo_lines([f"dry run: would delete {len(found)} resource(s):", *(f.line() for f in found)])
        return
    left = find(ctx, run_id)
    if left:
        _echo_lines([f"still there after teardown ({len(left)}):", *(f.line() for f in left)])
        raise ServesimError("teardown left resources behind; run it again, or delete them in the console")
    click.echo(f"deleted {len(found)} resource(s); nothing tagged is left in {ctx.region_name}")


@main.group()
def pricing():
    """Prices: refresh them from the AWS Price List API into a pricing file.

    \b
    Example:
      servesim pricing refresh --region eu-west-1 --out prices-eu-west-1.yaml
    """


@pricing.command("refresh")
@click.option("--region", required=True, help="The region to price, e.g. us-east-1.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="The pricing file to write (use it with --pricing).")
@click.option("--instance-types", help="EC2 types to price, comma-separated (default: those of the shipped file).")
@click.option("--endpoint-url", help="The Price List API endpoint (default: AWS's, in us-east-1).")
@click.option("--profile", help="AWS profile (default: boto3's chain).")
@user_errors
def pricing_refresh(region, out, instance_types, endpoint_url, profile):
    """Read current prices for REGION through the AWS Price List API into a pricing file.

    The shipped us-east-1 file stays the default; pass the new file with --pricing.

    \b
    Example:
      servesim pricing refresh --region us-east-1 --out prices.yaml --instance-types c6i.large,c7g.large
    """
    from deploy.aws.pricing_refresh import refresh_pricing, write_pricing
    from deploy.aws.session import aws_errors

    ctx = _aws_context("us-east-1", endpoint_url, profile)  # the Price List API lives in us-east-1
    types = [t.strip() for t in instance_types.split(",") if t.strip()] if instance_types else None
    with aws_errors(f"reading prices for {region} from the AWS Price List API"):
        doc = refresh_pricing(region, client=ctx.client("pricing"), instance_types=types)
    write_pricing(doc, out)
    click.echo(f"wrote {out}: prices of {region} from the AWS Price List API; use it with --pricing {out}")


@main.command()
@click.argument("scenario", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder for the table (sweep.parquet, sweep.csv; finished points kept, so a rerun resumes).")
@click.option("--executor", type=click.Choice(["serial", "processes", "dask"]), default="processes",
              show_default=True, help="Where the points run: here, a pool of all cores, or Dask distributed.")
@click.option("--address", help="dask: the scheduler (tcp://host:8786); default: a LocalCluster started here.")
@click.option("--workers", type=click.IntRange(1, 1024), help="processes/dask LocalCluster: workers (default: cores).")
@click.option("--progress/--no-progress", default=True, show_default=True)
@click.option("--report", is_flag=True,
              help="Also write OUT/report.html: one self-contained page with the plots, summary, table and provenance.")
@pricing_option
@user_errors
def sweep(scenario, out_dir, executor, address, workers, progress, pricing_path, report):
    """Run the what-if SWEEP of a scenario (its `sweep:` grid/zip) and report the answer.

    Prints the Pareto frontier of cost against p99 and the cheapest configuration meeting the
    scenario's SLO (per load when the sweep varies trace.rate_rps), the cheapest configuration
    of each platform kind, the break-even load between the best Lambda and the best EC2
    configuration (and between every other pair of kinds present), and how cost, p99 and cold
    starts move with every other swept number. Plots go to OUT/plots/; --report also writes
    OUT/report.html.

    \b
    Examples:
      servesim sweep scenarios/examples/sweep-tabular-breakeven.yaml --out out/breakeven --report
      servesim sweep scenarios/examples/sweep-kinds.yaml --out out/kinds --report
    """
    from scenarios.analysis import pareto_frontier
    from scenarios.loader import load_scenario
    from scenarios.sweep import parse_sweep
    from scenarios.sweepreport import answers, sweep_plots, write_report
    from scenarios.sweeprun import run_sweep

    sc = load_scenario(scenario)
    spec = parse_sweep(sc)
    try:
        table = run_sweep(sc, out_dir, executor=executor, address=address, workers=workers, pricing_path=pricing_path,
                          progress=progress)
    except KeyboardInterrupt:
        click.echo(f"interrupted: finished points are in {out_dir}; run the same command to resume", err=True)
        sys.exit(130)
    plots = sweep_plots(out_dir, table, slo=spec.slo)
    ok = table[table["status"] == "ok"] if "status" in table else table
    if not ok.empty:
        cols = [c for c in ok.columns if c.startswith("param.")] + ["platform", "cost_usd.total", "latency_ms.p99"]
        load = "param.trace.rate_rps"
        # Costs at different loads do not compete: with the load swept, the frontier is per load.
        for value, group in list(ok.groupby(load, sort=True)) if load in ok.columns else [(None, ok)]:
            click.echo("Pareto frontier (cost against p99)" + ("" if value is None else f" at {value:g} req/s") + ":")
            click.echo(pareto_frontier(group)[cols].to_string(index=False, na_rep="-"))
    for heading, text in answers(table, spec):
        click.echo(f"{heading}: {text}")
    click.echo(f"table: {Path(out_dir) / 'sweep.parquet'}")
    if plots:
        click.echo(f"plots: {', '.join(p.name for p in plots)} in {Path(out_dir) / 'plots'}")
    if report:
        click.echo(f"report: {write_report(out_dir, sc, table=table, plots=plots, pricing_path=pricing_path)}")


@main.command()
@click.argument("scenario", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--target", "target_kind", required=True,
              type=click.Choice(["local-lambda", "local-server", "aws-lambda", "aws-ec2", "http"]),
              help="Where to replay: the local stand-ins, AWS (deployed and torn down), or any URL.")
@click.option("--duration", default="5m", show_default=True, help="The window to replay (e.g. 90s, 5m).")
@click.option("--start", default="0s", show_default=True, help="Where in the trace the window starts.")
@click.option("--platform", "platform_name", help="The scenario's platform to validate (default: the first of the "
                                                    "target's kind).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder for the replay's measurement table, the comparison, validation.json and plots.")
@click.option("--url", help="http: the URL to replay against.")
@click.option("--model", help="The model to deploy (zoo name or .onnx file; default: the profile's, by name).")
@click.option("--max-error", "max_error", help="Fail (exit 3) when an |error| exceeds its limit, in %, e.g. "
                                                "p50=5,p95=10,p99=10,cold_starts=10,billed_gb_s=5,cost_usd=5.")
@click.option("--allow-inline", is_flag=True, help="Validate a platform whose service times are inline in the "
                                                    "scenario (not from a calibration profile).")
@click.option("--allow-cidr", help="aws-ec2: the CIDR allowed to reach the instance (default: this machine's address).")
@click.option("--progress/--no-progress", default=True, show_default=True)
@aws_options
@pricing_option
@user_errors
@needs_local_extra
def validate(scenario, target_kind, duration, start, platform_name, out_dir, url, model, max_error, allow_inline,
             allow_cidr, progress, region, endpoint_url, profile, pricing_path):
    """Replay a window of SCENARIO's trace live against a target and compare with the prediction.

    Each request is sent at its arrival time (open loop: no coordinated omission); the same
    arrivals are simulated with the scenario's profile, which must come from an earlier, separate
    calibration. Prints measured, predicted and error % for p50/p90/p95/p99 latency, cold starts,
    rejections and the bill, and the client's own send lag.

    \b
    Examples:
      servesim validate scenarios/examples/validate-tabular.yaml --target local-lambda --duration 2m --out out/v
      servesim validate my.yaml --target local-server --max-error p50=5,p99=10 --out out/v-server
    """
    from rich.console import Console
    from rich.table import Table

    from calibrate.validate import check_thresholds, parse_thresholds, validate as run_validate
    from deploy.procs import install_signal_handlers
    from scenarios.loader import load_scenario
    from sim.units import parse_duration_s

    limits = parse_thresholds(max_error)
    duration_s = parse_duration_s(duration, source="command line", key="--duration", allow_zero=False)
    start_s = parse_duration_s(start, source="command line", key="--start")
    aws = None
    if target_kind.startswith("aws-"):
        from deploy.aws.ec2_deploy import caller_cidr

        ctx = _aws_context(region, endpoint_url, profile)
        aws = {"ctx": ctx, "allow_cidr": allow_cidr or (caller_cidr() if target_kind == "aws-ec2" else None)}
    sc = load_scenario(scenario)
    install_signal_handlers()
    try:
        v = run_validate(sc, target_kind, out_dir, duration_s=duration_s, start_s=start_s, platform_name=platform_name,
                         model=model, url=url, aws=aws, allow_inline=allow_inline, progress=progress, pricing_path=pricing_path,
                         echo=click.echo)
    except KeyboardInterrupt:
        click.echo(f"interrupted: the replayed requests are in {Path(out_dir) / 'replay.parquet'}", err=True)
        sys.exit(130)
    _print_validation(v, Console(width=120), Table)
    problems = check_thresholds(v, limits)
    for p in problems:
        click.echo(f"FAIL {p}", err=True)
    if problems:
        sys.exit(3)


def _print_validation(v, console, Table) -> None:
    t = Table(title=f"{v.platform} on {v.target}: {v.requests} requests over {v.window_s:g} s")
    for col in ("metric", "measured", "predicted", "error %", "note"):
        t.add_column(col, justify="left" if col in ("metric", "note") else "right")

    def fmt(x):
        return "-" if x is None else f"{x:.4g}"
    for r in v.rows:
        err = "-" if r["error_pct"] is None else f"{r['error_pct']:+.1f}"
        t.add_row(r["metric"], fmt(r["measured"]), fmt(r["predicted"]), err, r["note"])
    console.print(t)
    lag = v.lag
    if lag.get("n"):
        console.print(f"client send lag: p50 {lag['p50_ms']:.2f} ms, p99 {lag['p99_ms']:.2f} ms, max "
                      f"{lag['max_ms']:.1f} ms; {lag['senders']} sender threads, at most {lag['max_in_flight']} "
                      "requests in flight", highlight=False)
    for note in v.notes:
        console.print(f"note: {note}", highlight=False)
    console.print(f"results: {v.out_dir / 'validation.json'}; plots: "
                  f"{', '.join(p.name for p in v.plots)} in {v.out_dir / 'plots'}", highlight=False)


@main.command()
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("out/demo"),
              show_default=True, help="Folder for everything the demo makes (a rerun reuses what is there).")
@click.option("--days", type=click.FloatRange(0.1, 366), default=30.0, show_default=True,
              help="Simulated days of the diurnal trace.")
@click.option("--validate-s", type=click.FloatRange(5, 3600), default=45.0, show_default=True,
              help="Seconds replayed live against each local target.")
@click.option("--cold", "n_cold", type=click.IntRange(1, 100), default=5, show_default=True,
              help="Cold starts calibrated per configuration.")
@click.option("--warm", "n_warm", type=click.IntRange(20, 5000), default=300, show_default=True,
              help="Warm requests calibrated per configuration (the default is enough to fit the idle effect).")
@click.option("--executor", type=click.Choice(["serial", "processes"]), default="processes", show_default=True)
@click.option("--progress/--no-progress", default=True, show_default=True)
@user_errors
@needs_local_extra
def demo(out_dir, days, validate_s, n_cold, n_warm, executor, progress):
    """The whole product on this machine, no cloud account: build a small model, calibrate it on
    the local targets, simulate a month for several Lambda sizes and EC2 fleets, find the
    break-even load, validate the prediction live, and write a report.

    \b
    Example:
      servesim demo --out out/demo
    """
    from deploy.procs import install_signal_handlers
    from scenarios.demo import run_demo

    install_signal_handlers()
    t0 = time.perf_counter()
    try:
        result = run_demo(out_dir, echo=click.echo, progress=progress, month_days=days, validate_s=validate_s,
                          n_cold=n_cold, n_warm=n_warm, executor=executor)
    except KeyboardInterrupt:
        click.echo(f"interrupted: what was finished is in {out_dir}; run the same command to continue", err=True)
        sys.exit(130)
    click.echo("")
    for line in result.lines():
        click.echo(line)
    click.echo(f"demo took {time.perf_counter() - t0:.0f} s")


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
    for e in profile.get("http", []):
        f = e["service_ms"].get("fit", {})
        console.print(f"http {e['label']} service_ms: {f.get('method', '?')} {e['service_ms'].get('dist')}"
                      f" (n={f.get('n')}, p99 measured {f.get('p99_emp', float('nan')):.4g},"
                      f" fitted {f.get('p99_fit', float('nan')):.4g})", highlight=False)
        det = e.get("cold_detection", {})
        if e.get("start_s"):
            fs = e["start_s"].get("fit", {})
            console.print(f"http {e['label']} start_s: {det.get('cold_starts')} cold starts of {det.get('requests')} "
                          f"requests after idle, {fs.get('method', '?')} {e['start_s'].get('dist')}"
                          f" (p50 {fs.get('p50_emp', float('nan')):.4g} s)", highlight=False)
        else:
            console.print(f"http {e['label']} start_s: none ({det.get('reason', '?')})", highlight=False)
    if profile.get("lambda_scaling"):
        console.print(f"memory scaling fitted for {', '.join(profile['lambda_scaling'])}", highlight=False)
    console.print(f"profile: {out}" + (f"; plots: {plots_dir}" if plots_dir else ""), highlight=False)


if __name__ == "__main__":
    main()

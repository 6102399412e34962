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
    if sc.sweep:
        console.print("[yellow]note:[/] this scenario has a sweep: section; `simulate` runs its base configuration "
                      "only (sweeps are not part of this version).")
    for p in [records] if records else []:
        console.print(f"records: {p}")
    if plot_dir:
        console.print(f"plots: {Path(plot_dir) / 'latency-cdf.png'}, {Path(plot_dir) / 'instances.png'}")
    if out_dir:
        console.print(f"results: {out_dir}/results.json, series.csv, scenario.resolved.yaml")


if __name__ == "__main__":
    main()

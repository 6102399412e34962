"""Speed-up of the `processes` executor over `serial` on a 16-point sweep, with identical tables.

Run: `.venv/bin/python benchmarks/bench_sweep.py [--duration 2h] [--workers N]`.
The sweep: Lambda at 4 memory sizes x 4 loads (Poisson) against a 2-instance EC2 fleet, SimPy
engine (so each point takes a few seconds and process start-up does not dominate); the wall
time of each executor, the speed-up, and whether the tables are identical.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SCENARIO = """\
name: bench-sweep-16
seed: 1
warmup_s: 5m
engine: {engine}
trace: {{kind: poisson, rate_rps: 10, duration: {duration}}}
platforms:
  - name: lambda
    kind: lambda
    memory_mb: 1024
    service:
      warm_ms: {{dist: lognorm, s: 0.3, scale: 20}}
      cold_init_ms: {{dist: lognorm, s: 0.3, scale: 400}}
  - name: ec2
    kind: ec2
    instance_type: c6i.large
    instances: 2
    workers_per_instance: 2
    service:
      service_ms: {{dist: lognorm, s: 0.3, scale: 20}}
sweep:
  grid:
    lambda.memory_mb: [512, 1024, 1769, 3008]
    trace.rate_rps: [5, 10, 20, 40]
"""


def main() -> None:
    from scenarios.loader import load_scenario
    from scenarios.sweeprun import run_sweep

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", default="2h")
    ap.add_argument("--engine", default="simpy")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="servesim-bench-sweep-") as tmp:
        path = Path(tmp) / "sweep.yaml"
        path.write_text(SCENARIO.format(engine=args.engine, duration=args.duration))
        sc = load_scenario(path)
        times, tables = {}, {}
        for executor in ("serial", "processes"):
            t0 = time.perf_counter()
            tables[executor] = run_sweep(sc, Path(tmp) / executor, executor=executor, workers=args.workers,
                                         progress=False)
            times[executor] = time.perf_counter() - t0
        key = ["point", "platform"]
        same = tables["serial"].sort_values(key).reset_index(drop=True).equals(
            tables["processes"].sort_values(key).reset_index(drop=True))
        n = len(tables["serial"])
        print(f"16 points ({n} platform results), engine {args.engine}, trace {args.duration}, "
              f"{os.cpu_count()} cores, {args.workers} workers")
        print(f"  serial     {times['serial']:7.1f} s")
        print(f"  processes  {times['processes']:7.1f} s   speed-up {times['serial'] / times['processes']:.2f}x")
        print(f"  tables identical: {same}")


if __name__ == "__main__":
    main()

"""Simulated requests per second of the SimPy engine, Lambda and EC2 models, at 10 and 1000 req/s.

Run: `make bench` (or `.venv/bin/python benchmarks/bench_core.py [--requests N] [--repeats K]`).
Pinned to one core where the OS allows it; each case is run K times and the median is reported,
with the spread, because shared machines are noisy. Target (issue 2): >= 100,000 requests/s.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sim.config import EC2Config, EC2Service, LambdaConfig, LambdaService  # noqa: E402
from sim.dists import parse_dist  # noqa: E402
from sim.pricing import load_pricing  # noqa: E402
from sim.run import simulate_one  # noqa: E402
from traces.poisson import Poisson  # noqa: E402

WARM = {"dist": "lognorm", "s": 0.25, "scale": 8.5}
COLD = {"dist": "lognorm", "s": 0.3, "scale": 1000}
SERVICE = {"dist": "lognorm", "s": 0.25, "scale": 7}


def pin_one_core() -> bool:
    """Pin this process (and the children it starts later) to one core, where the OS allows it."""
    if hasattr(os, "sched_setaffinity"):
        try:
            os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
            return True
        except OSError:
            pass
    return False


def cases():
    lam = LambdaConfig(name="lambda-2g", memory_mb=2048,
                       service=LambdaService(parse_dist(WARM), parse_dist(COLD)))
    yield "lambda", 10.0, lam
    yield "lambda", 1000.0, lam
    yield "ec2", 10.0, EC2Config(name="ec2-1x", service=EC2Service(parse_dist(SERVICE)), instances=1)
    yield "ec2", 1000.0, EC2Config(name="ec2-6x", service=EC2Service(parse_dist(SERVICE)), instances=6)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=500_000, help="simulated requests per run")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    args = ap.parse_args()
    pinned = pin_one_core()
    pricing = load_pricing()
    rows = []
    print(f"python {platform.python_version()}, pinned to one core: {pinned}, "
          f"{args.requests:,} requests per run, median of {args.repeats}")
    print(f"{'model':8} {'rate':>8} {'requests/s (median)':>20} {'min':>10} {'max':>10}")
    for kind, rate, cfg in cases():
        arrivals = Poisson(rate, args.requests / rate)
        speeds = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            res = simulate_one(cfg, arrivals, pricing=pricing, seed=1, engine="simpy")
            speeds.append(res.summary["requests"] / (time.perf_counter() - t0))
        med = statistics.median(speeds)
        rows.append({"model": kind, "rate_rps": rate, "requests": args.requests, "median_rps": med,
                     "min_rps": min(speeds), "max_rps": max(speeds)})
        print(f"{kind:8} {rate:>8g} {med:>20,.0f} {min(speeds):>10,.0f} {max(speeds):>10,.0f}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()

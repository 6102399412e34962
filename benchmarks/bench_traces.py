"""A month of traffic in flat memory: 30 days at 100 req/s (~259 M arrivals) streamed through
`trace show`'s statistics and through a simulation, each case in its own child process so its
peak memory (max RSS, from wait4) and wall time are its own.

Run: `.venv/bin/python benchmarks/bench_traces.py [--days 30] [--rate 100] [--cases show,sim-lambda]`.
Target (issue 3): peak memory under 1 GB for both. The simulation uses the SimPy engine
(~200k requests/s: about 20 minutes for the month).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def child(case: str, days: float, rate: float) -> None:
    sys.path.insert(0, str(ROOT))
    import numpy as np

    from traces.poisson import Poisson

    source = Poisson(rate, days * 86400)
    if case == "show":
        from traces.stats import trace_stats

        s = trace_stats(source.chunks(np.random.SeedSequence(1)), source.duration_s)
        print(json.dumps({"requests": s.requests, "mean_rps": s.mean_rps}))
    elif case == "sim-lambda":
        from sim.config import LambdaConfig, LambdaService
        from sim.dists import parse_dist
        from sim.pricing import load_pricing
        from sim.run import simulate_one

        cfg = LambdaConfig(name="lambda-2g", memory_mb=2048,
                           service=LambdaService(parse_dist({"dist": "lognorm", "s": 0.25, "scale": 8.5}),
                                                 parse_dist({"dist": "lognorm", "s": 0.3, "scale": 1000})))
        r = simulate_one(cfg, source, pricing=load_pricing(), seed=1)
        print(json.dumps({"requests": r.summary["requests"], "p99_ms": r.summary["latency_ms"]["p99"],
                          "cost_usd": r.summary["cost_usd"]["total"]}))
    else:
        raise SystemExit(f"unknown case {case}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--days", type=float, default=30)
    ap.add_argument("--rate", type=float, default=100)
    ap.add_argument("--cases", default="show,sim-lambda")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.days, args.rate)
        return
    print(f"{args.days:g} days at {args.rate:g} req/s (~{args.days * 86400 * args.rate / 1e6:,.0f} M arrivals)")
    for case in args.cases.split(","):
        t0 = time.perf_counter()
        p = subprocess.Popen([sys.executable, __file__, "--child", case, "--days", str(args.days),
                              "--rate", str(args.rate)], stdout=subprocess.PIPE, text=True)
        _, status, usage = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t0
        out = p.stdout.read().strip()
        print(f"{case:12} wall {wall:8.1f} s   peak RSS {usage.ru_maxrss / 1024:8.1f} MB   "
              f"exit {os.waitstatus_to_exitcode(status)}   {out}")


if __name__ == "__main__":
    main()

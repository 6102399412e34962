"""The fast engine against the SimPy engine: compile time, requests/s, and a month of traffic.

Run: `.venv/bin/python benchmarks/bench_engines.py [--requests N] [--repeats K] [--days D] [--skip-month]`.

1. **Compile time** of the fast engine's kernels, apart: in a child process with an empty numba
   cache (the first run on a machine), then in another child with that cache (every later run).
2. **Requests/s** of both engines on the cases of `bench_core.py` (Lambda and EC2 at 10 and 1000
   req/s), pinned to one core, median of K runs, the fast engine compiled beforehand; their ratio.
3. **The month**: 30 days at 100 req/s (~259 M requests) on the fast engine, one Lambda and one
   EC2 configuration, each in its own child process: wall time and peak memory (max RSS from
   wait4), sampling, collector and bill included.

Targets (issue 7, one core): Lambda >= 20 M requests/s, EC2 fixed fleet >= 10 M requests/s, the
month <= 60 s and <= 1.5 GB. These machines are shared and noisy: compare figures of one run.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))


def child_compile() -> None:
    from sim.engine_fast import warm_up

    print(json.dumps({"seconds": warm_up()}))


def child_month(kind: str, days: float, rate: float) -> None:
    from bench_core import cases, pin_one_core

    pin_one_core()
    from sim.engine_fast import warm_up
    from sim.pricing import load_pricing
    from sim.run import simulate_one
    from traces.poisson import Poisson

    warm_up()
    cfg = next(c for k, r, c in cases() if k == kind and r == 1000.0)
    t0 = time.perf_counter()
    r = simulate_one(cfg, Poisson(rate, days * 86400), pricing=load_pricing(), seed=1, engine="fast")
    wall = time.perf_counter() - t0
    print(json.dumps({"requests": r.summary["requests"], "simulate_s": wall, "p99_ms": r.summary["latency_ms"]["p99"],
                      "cost_usd": r.summary["cost_usd"]["total"], "engine": r.summary["engine"]}))


def run_child(args: list[str], env: dict | None = None) -> tuple[dict, float, float]:
    """(its JSON line, wall s, peak RSS MB)."""
    t0 = time.perf_counter()
    p = subprocess.Popen([sys.executable, __file__, *args], stdout=subprocess.PIPE, text=True, env=env)
    _, status, usage = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    out = p.stdout.read().strip().splitlines()
    if os.waitstatus_to_exitcode(status) != 0 or not out:
        raise SystemExit(f"child {args} failed with exit {os.waitstatus_to_exitcode(status)}")
    return json.loads(out[-1]), wall, usage.ru_maxrss / 1024


def speeds(n_requests: int, repeats: int) -> list[dict]:
    from bench_core import cases

    from sim.engine_fast import warm_up
    from sim.pricing import load_pricing
    from sim.run import resolve_engine, simulate_one
    from traces.poisson import Poisson

    warm_up()
    pricing = load_pricing()
    rows = []
    for kind, rate, cfg in cases():
        arrivals = Poisson(rate, n_requests / rate)
        row = {"model": kind, "rate_rps": rate}
        for engine in ("simpy", "fast"):
            if resolve_engine("auto", cfg) != "fast" and engine == "fast":
                row["fast"] = None
                continue
            runs = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                res = simulate_one(cfg, arrivals, pricing=pricing, seed=1, engine=engine)
                runs.append(res.summary["requests"] / (time.perf_counter() - t0))
            row[engine] = statistics.median(runs)
        row["ratio"] = row["fast"] / row["simpy"] if row.get("fast") else None
        rows.append(row)
        fast = f"{row['fast'] / 1e6:8.2f} M/s" if row.get("fast") else "  (not supported)"
        ratio = f"{row['ratio']:7.1f}x" if row["ratio"] else ""
        print(f"  {kind:7} {rate:7g} req/s   simpy {row['simpy'] / 1e6:6.3f} M/s   fast {fast}   {ratio}", flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=2_000_000, help="requests per speed run")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--days", type=float, default=30.0)
    ap.add_argument("--rate", type=float, default=100.0)
    ap.add_argument("--skip-month", action="store_true")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child == "compile":
        return child_compile()
    if args.child:
        return child_month(args.child, args.days, args.rate)

    report: dict = {}
    with tempfile.TemporaryDirectory(prefix="servesim-numba-cache-") as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache}
        first, _, _ = run_child(["--child", "compile"], env)
        cached, _, _ = run_child(["--child", "compile"], env)
    report["compile_s"] = {"empty_cache": first["seconds"], "cached": cached["seconds"]}
    print(f"fast engine compile: {first['seconds']:.1f} s with an empty numba cache, "
          f"{cached['seconds']:.2f} s from the cache")
    from bench_core import pin_one_core

    pinned = pin_one_core()
    print(f"requests/s, pinned to one core: {pinned}, {args.requests:,} requests per run, median of {args.repeats}")
    report["speeds"] = speeds(args.requests, args.repeats)
    if not args.skip_month:
        report["month"] = {}
        print(f"{args.days:g} days at {args.rate:g} req/s (~{args.days * 86400 * args.rate / 1e6:,.0f} M requests), "
              "fast engine, each in its own process:")
        for kind in ("lambda", "ec2"):
            out, wall, rss = run_child(["--child", kind, "--days", str(args.days), "--rate", str(args.rate)])
            report["month"][kind] = {**out, "wall_s": wall, "peak_rss_mb": rss}
            print(f"  {kind:7} simulate {out['simulate_s']:7.1f} s (process {wall:6.1f} s)  peak RSS {rss:7.1f} MB  "
                  f"engine {out['engine']}  {out['requests']:,} requests", flush=True)
    if args.json:
        from sim.atomic import write_text

        write_text(args.json, json.dumps(report, indent=2))


if __name__ == "__main__":
    main()

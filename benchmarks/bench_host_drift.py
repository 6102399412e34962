"""How far this host drifts from itself: one unchanging workload against local-lambda, over minutes.

Run: `.venv/bin/python benchmarks/bench_host_drift.py [--model price-mlp] [--memory-mb 1024]
[--minutes 4] [--gap 0.2] [--block 20] [--json figures.json]`

Issue 9 asks, where a validation target is missed, whether the host's noise or a mechanism missing
from the model is the cause. This measures the host's part alone: one environment of the local
Lambda target gets the same request every `--gap` seconds (every one rested the same; no
concurrency, no cold start after the first) for `--minutes`. Nothing changes, so every
difference between stretches of it is the host's.

Printed, per block of `--block` seconds: the median Duration (the function as the gateway
measures it, what the model predicts) and the median gateway overhead (the client's latency minus
the Duration: the gateway's and the HTTP hops' own CPU time, not modelled). Then:
- the spread of the block medians (largest / smallest - 1);
- the medians of consecutive 2-minute windows (a validation replay's length) and their spread:
  to hold p50 within 5 % of a calibration made earlier, the host must stay within about that;
- the correlation of the block medians of Duration and of gateway overhead: two processes that
  slow down together point to the host (CPU, caches, memory shared with other tenants), not to the
  function.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

WINDOW_S = 120.0  # a validation replay's window in the README's runs


def blocks(t: np.ndarray, values: np.ndarray, width_s: float) -> list[tuple[float, float, int]]:
    """(start offset s, median, count) of `values` in consecutive blocks of `width_s` by `t`."""
    out = []
    if not t.size:
        return out
    k = ((t - t[0]) // width_s).astype(int)
    for b in np.unique(k):
        m = k == b
        out.append((float(b * width_s), float(np.median(values[m])), int(m.sum())))
    return out


def spread_pct(medians) -> float:
    m = np.asarray(medians, dtype=float)
    return float((m.max() / m.min() - 1.0) * 100.0) if m.size > 1 else 0.0


def main() -> None:
    from deploy.procs import install_signal_handlers

    install_signal_handlers()  # SIGTERM stops the target's processes as Ctrl-C does
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="price-mlp", help="zoo name or .onnx")
    ap.add_argument("--memory-mb", type=int, default=1024)
    ap.add_argument("--minutes", type=float, default=4.0)
    ap.add_argument("--gap", type=float, default=0.2, help="seconds between requests (each one rested)")
    ap.add_argument("--block", type=float, default=20.0, help="seconds per block")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args()
    if not (args.minutes > 0 and args.gap > 0 and args.block > 0):
        raise SystemExit("--minutes, --gap and --block must be > 0")

    from calibrate.targets import LocalLambdaTarget

    target = LocalLambdaTarget(args.model, [args.memory_mb])
    rows = []
    with target.serving(target.configs()[0]) as endpoint:
        client = endpoint.client()
        try:
            for _ in range(20):  # the cold start and the first warm requests, not recorded
                client.call()
            end = time.monotonic() + args.minutes * 60.0
            n = int(args.minutes * 60.0 / args.gap)
            print(f"{args.model}, {args.memory_mb} MB: {n} requests, one every {args.gap:g} s", flush=True)
            while time.monotonic() < end:
                time.sleep(args.gap)
                s = client.call()
                if s.status == "ok" and s.server_ms is not None and not s.init_ms:
                    rows.append((time.monotonic(), s.server_ms, s.client_ms - s.server_ms))
        finally:
            client.close()
    if len(rows) < 10:
        raise SystemExit(f"only {len(rows)} ok warm requests: nothing to measure")
    a = np.array(rows)
    t, dur, gw = a[:, 0], a[:, 1], a[:, 2]
    dur_b, gw_b = blocks(t, dur, args.block), blocks(t, gw, args.block)
    full = [i for i, b in enumerate(dur_b) if b[2] >= 0.8 * args.block / args.gap]  # the last may be short
    print(f"{'block':>8} {'Duration p50 ms':>16} {'gateway p50 ms':>15} {'requests':>9}")
    for i in full:
        print(f"{dur_b[i][0]:7.0f}s {dur_b[i][1]:16.3f} {gw_b[i][1]:15.3f} {dur_b[i][2]:9d}")
    d_med, g_med = [dur_b[i][1] for i in full], [gw_b[i][1] for i in full]
    windows = [b for b in blocks(t, dur, WINDOW_S) if b[2] >= 0.8 * WINDOW_S / args.gap]
    corr = float(np.corrcoef(d_med, g_med)[0, 1]) if len(full) > 2 else float("nan")
    report = {
        "model": args.model, "memory_mb": args.memory_mb, "gap_s": args.gap, "block_s": args.block,
        "requests": int(a.shape[0]), "duration_p50_ms": float(np.median(dur)),
        "block_duration_p50_ms": d_med, "block_gateway_p50_ms": g_med,
        "block_spread_pct": spread_pct(d_med), "window_s": WINDOW_S,
        "window_duration_p50_ms": [w[1] for w in windows], "window_spread_pct": spread_pct([w[1] for w in windows]),
        "corr_duration_gateway": corr,
    }
    print(f"Duration p50 over all {a.shape[0]} requests: {report['duration_p50_ms']:.3f} ms")
    print(f"block medians: {min(d_med):.3f} to {max(d_med):.3f} ms, spread {report['block_spread_pct']:.1f} %")
    print(f"{WINDOW_S:.0f} s windows: " + ", ".join(f"{w[1]:.3f}" for w in windows)
          + f" ms, spread {report['window_spread_pct']:.1f} %")
    print(f"correlation of Duration and gateway overhead over blocks: {corr:.2f}")
    if args.json:
        from sim.atomic import write_text

        write_text(args.json, json.dumps(report, indent=2))


if __name__ == "__main__":
    main()

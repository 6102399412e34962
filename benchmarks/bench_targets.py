"""Cold start, warm latency and throughput of a model on the two local targets.

Run: `.venv/bin/python benchmarks/bench_targets.py [--model mobilenetv2] [--targets server,lambda]`.

- local-server (gunicorn + the Flask app, 2 workers, held to 2 vCPUs like a c6i.large):
  cold start = process start -> first 200 on /predict; warm = sequential requests;
  throughput = closed loop with 2, 4 and 8 concurrent clients for a few seconds each.
- local-lambda (the gateway + AWS's runtime emulator + awslambdaric, 1769 MB = 1 vCPU):
  cold start = the first invocation as the client sees it, and the REPORT's Init Duration;
  warm = sequential invocations; throughput = closed loop with 2 and 4 clients (environments).

Latencies are client-side (the request body is the model's sample input in the base64 form).
Medians and p99 are over the requests of one run; the machine is shared, so quote them as such.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from deploy.core import encode_inputs  # noqa: E402
from deploy.models import resolve_model, sample_input  # noqa: E402


def pct(xs, q):
    return float(np.percentile(np.asarray(xs), q)) if xs else float("nan")


def closed_loop(call, clients: int, seconds: float) -> tuple[float, list[float]]:
    """`clients` threads calling `call()` back to back for `seconds`; (throughput/s, latencies ms)."""
    lat: list[float] = []
    lock = threading.Lock()
    stop = time.perf_counter() + seconds

    def worker():
        mine = []
        while time.perf_counter() < stop:
            t0 = time.perf_counter()
            call()
            mine.append((time.perf_counter() - t0) * 1000)
        with lock:
            lat.extend(mine)

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return len(lat) / (time.perf_counter() - t0), lat


def bench_server(model, body: bytes, n_warm: int, seconds: float) -> dict:
    import requests

    from deploy.local_server import LocalServer

    t0 = time.perf_counter()
    with LocalServer(model.name if model.name in _zoo() else model.path, workers=2, cpus=2.0) as srv:
        session = requests.Session()
        post = lambda: session.post(f"{srv.url}/predict", data=body,  # noqa: E731
                                    headers={"content-type": "application/json"}).raise_for_status()
        post()
        cold_s = time.perf_counter() - t0
        warm = []
        for _ in range(n_warm):
            t1 = time.perf_counter()
            post()
            warm.append((time.perf_counter() - t1) * 1000)
        tput = {}
        for c in (2, 4, 8):
            local = threading.local()

            def call():
                if not hasattr(local, "s"):
                    local.s = requests.Session()
                local.s.post(f"{srv.url}/predict", data=body,
                             headers={"content-type": "application/json"}).raise_for_status()
            rps, lat = closed_loop(call, c, seconds)
            tput[c] = {"rps": rps, "p50_ms": pct(lat, 50), "p99_ms": pct(lat, 99)}
        return {"target": "local-server", "limit": srv.limit.as_dict(), "startup_s": srv.startup_s,
                "cold_first_answer_s": cold_s, "warm_p50_ms": pct(warm, 50), "warm_p99_ms": pct(warm, 99),
                "throughput": tput}


def bench_lambda(model, body: bytes, n_warm: int, seconds: float, memory_mb: int = 1769, n_cold: int = 8) -> dict:
    import boto3
    from botocore.config import Config

    from deploy.lambda_report import parse_log_result
    from deploy.local_lambda import LocalLambda

    cfg = Config(retries={"max_attempts": 0}, max_pool_connections=16)
    name = model.name if model.name in _zoo() else str(model.path)
    cold_client, init_ms = [], []
    for _ in range(n_cold):  # a fresh gateway each time: every first invocation is a cold start
        with LocalLambda(name, memory_mb=memory_mb, concurrency_limit=8) as lam:
            client = boto3.client("lambda", endpoint_url=lam.url, region_name="us-east-1",
                                  aws_access_key_id="x", aws_secret_access_key="x", config=cfg)
            t0 = time.perf_counter()
            r = client.invoke(FunctionName=lam.function_name, Payload=body, LogType="Tail")
            cold_client.append((time.perf_counter() - t0) * 1000)
            init_ms.append(parse_log_result(r["LogResult"])["init_duration_ms"])
    with LocalLambda(name, memory_mb=memory_mb, concurrency_limit=8) as lam:
        client = boto3.client("lambda", endpoint_url=lam.url, region_name="us-east-1",
                              aws_access_key_id="x", aws_secret_access_key="x", config=cfg)
        invoke = lambda: client.invoke(FunctionName=lam.function_name, Payload=body)  # noqa: E731
        invoke()
        warm, dur = [], []
        for _ in range(n_warm):
            t1 = time.perf_counter()
            r = client.invoke(FunctionName=lam.function_name, Payload=body, LogType="Tail")
            warm.append((time.perf_counter() - t1) * 1000)
            dur.append(parse_log_result(r["LogResult"])["duration_ms"])
        tput = {}
        for c in (2, 4):
            rps, lat = closed_loop(invoke, c, seconds)
            tput[c] = {"rps": rps, "p50_ms": pct(lat, 50), "p99_ms": pct(lat, 99)}
        limit = lam.status()["environments"][0].get("limit") if lam.status().get("environments") else None
    return {"target": "local-lambda", "memory_mb": memory_mb, "limit": limit,
            "cold_client_ms_median": statistics.median(cold_client), "cold_client_ms": cold_client,
            "init_duration_ms_median": statistics.median(init_ms),
            "warm_p50_ms": pct(warm, 50), "warm_p99_ms": pct(warm, 99),
            "warm_duration_p50_ms": pct(dur, 50), "warm_duration_p99_ms": pct(dur, 99), "throughput": tput}


def _zoo():
    from deploy.models import ZOO

    return ZOO


def main() -> None:
    from deploy.procs import install_signal_handlers

    install_signal_handlers()  # SIGTERM stops the targets' processes as Ctrl-C does
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="mobilenetv2")
    ap.add_argument("--targets", default="server,lambda")
    ap.add_argument("--warm", type=int, default=300, help="sequential warm requests")
    ap.add_argument("--seconds", type=float, default=8.0, help="seconds per throughput level")
    ap.add_argument("--memory-mb", type=int, default=1769, help="local-lambda memory (1769 MB = 1 vCPU)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    model = resolve_model(args.model)
    body = encode_inputs(sample_input(model, np.random.default_rng(0)))
    out = []
    for target in args.targets.split(","):
        if target == "server":
            r = bench_server(model, body, args.warm, args.seconds)
        elif target == "lambda":
            r = bench_lambda(model, body, args.warm, args.seconds, memory_mb=args.memory_mb)
        else:
            raise SystemExit(f"unknown target {target}")
        out.append(r)
        print(json.dumps(r, indent=2))
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()

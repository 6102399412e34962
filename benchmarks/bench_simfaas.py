"""servesim next to the peer simulator SimFaaS (PyPI `simfaas`) on the same parameters: speed and agreement.

Run: `.venv/bin/python benchmarks/bench_simfaas.py [--requests N] [--engines simpy,fast] [--out f.json]`.

Two cases, each simulated by both for about `--requests` requests (1,000,000 by default):

    case        arrivals             warm / cold service (exponential means)   keep-alive
    default     Poisson, 0.9 req/s   1.991 s / 2.244 s                          600 s
    high-load   Poisson, 100 req/s   1.991 s / 2.244 s                          600 s

"default" has the arrival rate and expiration threshold of SimFaaS's own example (the `__main__`
of `ServerlessSimulator.py`, whose service means are 2.016 / 2.163 s). Both simulate a
Lambda-like platform: a request takes an idle instance (the newest one: SimFaaS's policy,
servesim's `reuse: newest`) or creates one (a cold start); an instance idle for the keep-alive
is removed at exactly that moment; no concurrency limit binds (SimFaaS `maximum_concurrency` and
servesim's limits are 10**6) and no request is queued.

**The one modelling difference.** SimFaaS draws a cold request's whole service time from one
exponential of mean 2.244 s. servesim's cold latency is `cold_init_ms` followed by the same warm
draw a warm request would get, so we use warm = expon(mean 1991 ms) and cold_init = expon(mean
253 ms): the cold mean is 2.244 s as in SimFaaS, but the cold latency is a sum of two
exponentials (hypoexponential, smaller variance), not one exponential. It matters only for the
rare cold starts. servesim's `timeout_s` is 900 s (its maximum; SimFaaS has none); at these means
an exponential passes 900 s with probability about e^-450, and the run reports its timeouts
(always 0).

**Warm-up.** The first 10 % of simulated time is excluded from every figure of both: servesim's
`warmup_s`, SimFaaS's own `skip_init_time` (of `calculate_time_average` and
`get_request_custom_states`). SimFaaS's `get_cold_start_prob()` and `get_average_server_count()`
have no warm-up (they include the first request, always cold, and the empty start); they are
kept in the JSON as `*_no_warmup` for reference only.

**Figures and their standard errors.** For each simulator: the cold-start probability (cold
starts / requests arriving after the warm-up) and the time-average instance count (instances
from creation, cold ones included, to expiry). Standard errors by batch means, the same way for
both: the measured window is cut into 20 contiguous batches of equal simulated time. servesim:
from its per-period series (`PlatformResult.series`; the period is set to about a minute such
that 20 batches hold whole periods), SimFaaS: from its event history (`hist_times`,
`hist_server_count`, `hist_req_*_idxs`; the instance count integrated exactly between events).
The cold-start probability is a ratio estimator, SE^2 = sum_b (C_b - p N_b)^2 / (B (B-1) Nbar^2);
the instance count's SE is the standard deviation of the 20 batch averages / sqrt(20). The
verdict: |servesim - SimFaaS| <= 3 combined SEs, combined SE = sqrt(SE_a^2 + SE_b^2).

Batch means need nearly independent batches, and the instance pool has a long memory: an
instance leaves only after a whole keep-alive unused, and with newest-first reuse the pool
tracks the running maximum of the concurrency, so at 100 req/s it stays constant for thousands
of seconds. A 1 M-request run at 100 req/s measures 9,000 s, batches of 450 s (under one
keep-alive): over 30 seeds the run's mean instance count varied with sd 1.86, while its
batch-means SE was 1.10 (median), and the batches' lag-1 autocorrelation flagged it in only 10 %
of the runs. So batch means are used only when each batch spans at least 5 keep-alives, the
batches' lag-1 autocorrelation is below 2/sqrt(20) and the SE is not 0 (checked for both
simulators and both figures); otherwise every simulator is run `--replications` times (5; seeds
seed, seed+1, ...), its figures are the mean over its runs and SE = sd / sqrt(5). With 4 degrees
of freedom per side, 3 combined SEs is then a test at about 2 % (t with ~8 degrees of freedom).

**Speed.** Wall time (`time.perf_counter`) of the simulation only. SimFaaS: `generate_trace()`
(its arrival sampling is inside it; its figures are computed afterwards, untimed). servesim:
`simulate_one` whole, arrival generation, metrics, series and bill included. Requests simulated
are every arrival of the run, warm-up included, for both. SimFaaS draws from NumPy's legacy global
generator (its API has no other way): it is seeded for the run and restored afterwards.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import platform
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_core import pin_one_core  # noqa: E402
from sim.atomic import write_text  # noqa: E402
from sim.config import LambdaConfig, LambdaService  # noqa: E402
from sim.dists import parse_dist  # noqa: E402
from sim.pricing import load_pricing  # noqa: E402
from sim.run import ENGINES, simulate_one  # noqa: E402
from traces.spec import parse_trace  # noqa: E402

BATCHES = 20
WARMUP_FRACTION = 0.1
AGREEMENT_SES = 3.0
UNLIMITED = 10**6
TIMEOUT_S = 900.0
MIN_BATCH_KEEPALIVES = 5.0
SERVESIM_ENGINES = ("simpy", "fast")
HYPOEXP_NOTE = ("servesim's cold latency = cold_init (expon 253 ms) + warm (expon 1991 ms): mean 2.244 s like "
                "SimFaaS's one exponential, but hypoexponential (a sum of two exponentials), not exponential; "
                "this modelling difference touches only the rare cold starts.")


@dataclass(frozen=True)
class Case:
    """One compared scenario. Times in seconds."""

    name: str
    rate_rps: float
    warm_mean_s: float = 1.991
    cold_mean_s: float = 2.244
    keep_alive_s: float = 600.0


CASES = {c.name: c for c in (Case("default", 0.9), Case("high-load", 100.0))}


def available_engines() -> list[str]:
    return [e for e in SERVESIM_ENGINES if e in ENGINES]


# ---------------------------------------------------------------------------------------------
# Statistics


def ratio_batch_se(num: np.ndarray, den: np.ndarray) -> float:
    """Batch-means standard error of sum(num) / sum(den) (a ratio estimator)."""
    num, den = np.asarray(num, float), np.asarray(den, float)
    b = num.size
    if b < 2 or den.sum() <= 0:
        return math.nan
    p = num.sum() / den.sum()
    return float(math.sqrt(((num - p * den) ** 2).sum() / (b * (b - 1))) / den.mean())


def mean_batch_se(x: np.ndarray) -> float:
    """Standard error of the mean of equally weighted batch averages."""
    x = np.asarray(x, float)
    return float(x.std(ddof=1) / math.sqrt(x.size)) if x.size >= 2 else math.nan


def lag1(x: np.ndarray) -> float:
    """Lag-1 autocorrelation of a sequence (NaN when it does not vary)."""
    d = np.asarray(x, float) - np.mean(x)
    ss = float((d * d).sum())
    return float((d[:-1] * d[1:]).sum() / ss) if ss > 0 and d.size >= 3 else math.nan


def batch_problem(r1: float, se: float, batches: int = BATCHES) -> str | None:
    """Why batch means cannot be trusted for one figure of one run, or None.

    Batch means assume nearly independent batches: their lag-1 autocorrelation r1 should be
    about 0 (sd 1/sqrt(B) under independence); r1 > 2/sqrt(B) rejects that at about 2.5 %. A
    figure that did not vary between batches (r1 NaN, SE 0) gives no estimate at all.
    """
    limit = 2 / math.sqrt(batches)
    if not (se > 0) or math.isnan(r1):
        return "no variation between batches (SE 0)"
    if r1 > limit:
        return f"batches correlated (lag-1 r = {r1:.2f} > {limit:.2f})"
    return None


def agreement(a: float, se_a: float, b: float, se_b: float) -> dict:
    se = math.hypot(se_a, se_b)
    diff = abs(a - b)
    z = diff / se if se > 0 else (0.0 if diff == 0 else math.inf)
    return {"abs_diff": diff, "combined_se": se, "z": z, "agree": bool(z <= AGREEMENT_SES)}


# ---------------------------------------------------------------------------------------------
# SimFaaS


@contextlib.contextmanager
def _legacy_numpy_seed(seed: int) -> Iterator[None]:
    """SimFaaS samples from np.random's global state; seed it for one run, then put it back."""
    saved = np.random.get_state()
    np.random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(saved)


def _simfaas_seed(seed: int) -> int:
    return int(np.random.SeedSequence([seed, 0x51F4A5]).generate_state(1)[0])


def run_simfaas(case: Case, requests: int, seed: int) -> dict:
    from simfaas.ServerlessSimulator import ServerlessSimulator

    max_time_s = requests / case.rate_rps
    warmup_s = WARMUP_FRACTION * max_time_s
    sim = ServerlessSimulator(arrival_rate=case.rate_rps, warm_service_rate=1 / case.warm_mean_s,
                              cold_service_rate=1 / case.cold_mean_s, expiration_threshold=case.keep_alive_s,
                              max_time=max_time_s, maximum_concurrency=UNLIMITED)
    with _legacy_numpy_seed(_simfaas_seed(seed)), \
            contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        t0 = time.perf_counter()
        sim.generate_trace(debug_print=False, progress=False)
        wall_s = time.perf_counter() - t0

    # Its own figures, with its own warm-up option.
    values, probs = sim.calculate_time_average(sim.hist_server_count, skip_init_time=warmup_s)
    inst_mean = float(np.dot(np.asarray(values, float), probs))
    reqdf = sim.get_request_custom_states([0] * len(sim.hist_server_count), skip_init_time=warmup_s)
    cold, total = int(reqdf["cold"].sum()), int(reqdf["total"].sum())

    # Batch means from its event history: hist_server_count[i] holds on [hist_times[i], hist_times[i+1]);
    # a request recorded at index i arrived at hist_times[i + 1].
    times = np.asarray(sim.hist_times, float)
    counts = np.asarray(sim.hist_server_count, float)
    area = np.concatenate([[0.0], np.cumsum(counts * np.diff(times))])
    edges = np.linspace(warmup_s, max_time_s, BATCHES + 1)
    inst_b = np.diff(np.interp(edges, times, area)) / np.diff(edges)
    cold_t = times[np.asarray(sim.hist_req_cold_idxs, dtype=np.int64) + 1]
    all_idx = np.concatenate([np.asarray(x, dtype=np.int64) for x in
                              (sim.hist_req_cold_idxs, sim.hist_req_warm_idxs, sim.hist_req_rej_idxs)])
    arr_t = times[all_idx + 1]
    cold_b = np.histogram(cold_t, bins=edges)[0]
    req_b = np.histogram(arr_t, bins=edges)[0]
    return {
        "simulator": "SimFaaS", "version": _simfaas_version(), "engine": None,
        "requests_simulated": int(sim.total_req_count), "wall_s": wall_s,
        "requests_per_s": sim.total_req_count / wall_s,
        "requests_measured": total, "cold_starts": cold,
        "p_cold": cold / total if total else math.nan, "p_cold_se": ratio_batch_se(cold_b, req_b),
        "instances_mean": inst_mean, "instances_se": mean_batch_se(inst_b),
        "p_cold_r1": lag1(cold_b - cold_b.sum() / req_b.sum() * req_b), "instances_r1": lag1(inst_b),
        "rejected": int(sim.total_reject_count),
        "p_cold_no_warmup": float(sim.get_cold_start_prob()),
        "instances_mean_no_warmup": float(sim.get_average_server_count()),
        "batch_check": {"p_cold": float(cold_b.sum() / req_b.sum()), "instances_mean": float(inst_b.mean())},
        "se_method": f"batch means, {BATCHES} equal-time batches of its event history",
    }


def _simfaas_version() -> str | None:
    try:
        import simfaas
        return getattr(simfaas, "__version__", None)
    except ImportError:
        return None


# ---------------------------------------------------------------------------------------------
# servesim


def servesim_config(case: Case) -> LambdaConfig:
    warm_ms = case.warm_mean_s * 1000.0
    init_ms = (case.cold_mean_s - case.warm_mean_s) * 1000.0
    return LambdaConfig(
        name=f"servesim-{case.name}",
        service=LambdaService(warm_ms=parse_dist({"dist": "expon", "mean": warm_ms}),
                              cold_init_ms=parse_dist({"dist": "expon", "mean": init_ms})),
        keep_alive_s=case.keep_alive_s, reuse="newest",
        concurrency_limit=UNLIMITED, scale_burst=UNLIMITED, scale_refill_per_s=float(UNLIMITED),
        timeout_s=TIMEOUT_S)


def run_servesim(case: Case, requests: int, engine: str, seed: int) -> dict:
    duration_s = requests / case.rate_rps
    warmup_s = WARMUP_FRACTION * duration_s
    window_s = duration_s - warmup_s
    per_batch = max(1, round(window_s / BATCHES / 60.0))  # periods of about a minute, whole ones per batch
    period_s = window_s / (BATCHES * per_batch)
    arrivals = parse_trace({"kind": "poisson", "rate_rps": case.rate_rps, "duration": duration_s},
                           source=None, base_dir=None)
    simulated = 0

    def count(n: int, _t: float) -> None:
        nonlocal simulated
        simulated += n

    t0 = time.perf_counter()
    res = simulate_one(servesim_config(case), arrivals, pricing=load_pricing(), seed=seed, warmup_s=warmup_s,
                       engine=engine, period_s=period_s, progress=count)
    wall_s = time.perf_counter() - t0
    s = res.summary
    series = res.series
    batch = series["minute"].to_numpy() // per_batch
    keep = batch < BATCHES  # periods after the last arrival (final completions) are left out of the batches
    grouped = series[keep].groupby(batch[keep])
    cold_b = grouped["cold_starts"].sum().to_numpy()
    req_b = grouped["arrivals"].sum().to_numpy()
    inst_b = grouped["instances"].mean().to_numpy()
    return {
        "simulator": "servesim", "version": None, "engine": s["engine"],
        "requests_simulated": simulated, "wall_s": wall_s, "requests_per_s": simulated / wall_s,
        "requests_measured": s["requests"], "cold_starts": s["cold_starts"],
        "p_cold": s["cold_start_fraction"], "p_cold_se": ratio_batch_se(cold_b, req_b),
        "instances_mean": s["instances"]["mean"], "instances_se": mean_batch_se(inst_b),
        "p_cold_r1": lag1(cold_b - cold_b.sum() / req_b.sum() * req_b), "instances_r1": lag1(inst_b),
        "rejected": s["rejected"], "timeouts": s["timeouts"], "latency_max_ms": s["latency_ms"]["max"],
        "batch_check": {"p_cold": float(cold_b.sum() / req_b.sum()), "instances_mean": float(inst_b.mean())},
        "se_method": f"batch means, {BATCHES} equal-time batches of {per_batch} series periods of {period_s:.2f} s",
    }


# ---------------------------------------------------------------------------------------------
# The comparison


def _simulator(name: str, engine: str | None, runs: list[dict], ref: dict | None, method: str) -> dict:
    """One simulator's figures: its first run's with batch-means SEs, or the mean of its replications."""
    main_run = runs[0]
    if method == "batch means":
        fig = {k: main_run[k] for k in ("p_cold", "p_cold_se", "instances_mean", "instances_se")}
    else:
        k = len(runs)
        p = np.array([r["p_cold"] for r in runs])
        n = np.array([r["instances_mean"] for r in runs])
        fig = {"p_cold": float(p.mean()), "p_cold_se": float(p.std(ddof=1) / math.sqrt(k)),
               "instances_mean": float(n.mean()), "instances_se": float(n.std(ddof=1) / math.sqrt(k))}
    speed = {k: main_run[k] for k in ("requests_simulated", "wall_s", "requests_per_s")}
    speed["speed_ratio"] = main_run["requests_per_s"] / ref["requests_per_s"] if ref else 1.0
    return {"name": name, "engine": engine, "speed": speed, "figures": fig, "runs": runs}


def compare(case: str | Case, requests: int = 1_000_000, engines: Sequence[str] | None = None, seed: int = 1,
            replications: int = 5, log: Callable[[str], None] | None = None) -> dict:
    """Run SimFaaS and servesim (each engine of `engines` that this version has) on one case.

    Standard errors by batch means of each simulator's first run (seed `seed`). When the batches
    are shorter than MIN_BATCH_KEEPALIVES keep-alives, or any run's batches fail the independence
    check (`batch_problem`), and `replications` >= 2, every simulator is run `replications` times
    (seeds seed, seed+1, ...) and its figures are the mean over its runs, with SE = sd /
    sqrt(replications); with `replications` < 2 the batch-means SEs stay, marked unreliable.
    Speed is always that of the first run.
    """
    c = CASES[case] if isinstance(case, str) else case
    engines = list(available_engines() if engines is None else engines)
    say = log or (lambda _msg: None)
    runners: dict[str, Callable[[int], dict]] = {"SimFaaS": lambda s: run_simfaas(c, requests, s)}
    skipped = {}
    for engine in engines:
        if engine in ENGINES:
            runners[engine] = lambda s, e=engine: run_servesim(c, requests, e, s)
        else:
            skipped[engine] = "not available in this version (sim.run.ENGINES)"
            say(f"[{c.name}] servesim engine {engine!r} is not available in this version: skipped")
    problems = []
    batch_s = (1 - WARMUP_FRACTION) * requests / c.rate_rps / BATCHES
    if batch_s < MIN_BATCH_KEEPALIVES * c.keep_alive_s:
        problems.append(f"batches of {batch_s:,.0f} s are shorter than {MIN_BATCH_KEEPALIVES:g} keep-alives "
                        f"({MIN_BATCH_KEEPALIVES * c.keep_alive_s:,.0f} s), the instance pool's memory")
    runs: dict[str, list[dict]] = {}
    for key, run in runners.items():
        who = "SimFaaS" if key == "SimFaaS" else f"servesim {key}"
        say(f"[{c.name}] {who}: {requests:,} requests at {c.rate_rps:g} req/s, seed {seed} ...")
        runs[key] = [run(seed)]
    for key, (r,) in runs.items():
        for fig in ("p_cold", "instances"):
            why = batch_problem(r[f"{fig}_r1"], r[f"{fig}_se"])
            if why:
                problems.append(f"{'SimFaaS' if key == 'SimFaaS' else 'servesim ' + key} {fig}: {why}")
    method = "batch means"
    if problems and replications >= 2:
        method = "replications"
        say(f"[{c.name}] batch means unreliable ({'; '.join(problems)}): "
            f"{replications} independent replications of each simulator instead")
        for key, run in runners.items():
            for k in range(1, replications):
                say(f"[{c.name}] {'SimFaaS' if key == 'SimFaaS' else 'servesim ' + key}: "
                    f"replication {k + 1}/{replications} (seed {seed + k}) ...")
                runs[key].append(run(seed + k))
    ref = _simulator(f"SimFaaS {_simfaas_version() or ''}".strip(), None, runs.pop("SimFaaS"), None, method)
    sims = [ref] + [_simulator(f"servesim {e}", e, rs, ref["runs"][0], method) for e, rs in runs.items()]
    out = {"case": asdict(c), "requests": requests, "seed": seed, "warmup_fraction": WARMUP_FRACTION,
           "batches": BATCHES, "criterion": f"|difference| <= {AGREEMENT_SES:g} combined standard errors",
           "note": HYPOEXP_NOTE,
           "se_method": (f"batch means ({BATCHES} equal-time batches of the first run)" if method == "batch means"
                         else f"independent replications (K={replications}, seeds {seed}..{seed + replications - 1})"),
           "se_reliable": not problems or method == "replications",
           "batch_problems": problems, "skipped_engines": skipped, "simulators": sims, "agreement": {}}
    rf = ref["figures"]
    for s in sims[1:]:
        f = s["figures"]
        ag = {"p_cold": agreement(f["p_cold"], f["p_cold_se"], rf["p_cold"], rf["p_cold_se"]),
              "instances_mean": agreement(f["instances_mean"], f["instances_se"],
                                          rf["instances_mean"], rf["instances_se"])}
        ag["agree"] = ag["p_cold"]["agree"] and ag["instances_mean"]["agree"]
        out["agreement"][s["engine"]] = ag
    return out


# ---------------------------------------------------------------------------------------------
# Output


def _pm(x: float, se: float, digits: int) -> str:
    return f"{x:.{digits}f} ± {se:.{digits}f}"


def _p_digits(results: list[dict]) -> int:
    smallest = min((s["figures"]["p_cold"] for res in results for s in res["simulators"]
                    if s["figures"]["p_cold"] > 0), default=0.01)
    return max(4, 2 - int(math.floor(math.log10(smallest))))


def table(results: list[dict]):
    from rich.table import Table

    d = _p_digits(results)
    t = Table(title="SimFaaS vs servesim, same parameters; figures after a 10 % warm-up, ± 1 standard error")
    for col, just in (("case", "left"), ("simulator", "left"), ("requests", "right"), ("wall s", "right"),
                      ("requests/s", "right"), ("× SimFaaS", "right"), ("P(cold)", "right"),
                      ("mean instances", "right"), ("agreement, z = |Δ| / combined SE", "left")):
        t.add_column(col, justify=just)
    for res in results:
        head = [res["case"]["name"], f"{res['case']['rate_rps']:g} req/s",
                f"SE: {len(res['simulators'][0]['runs'])} replications" if res["se_method"].startswith("indep")
                else "SE: batch means" if res["se_reliable"] else "SE: batch means, UNRELIABLE"]
        for i, s in enumerate(res["simulators"]):
            sp, f = s["speed"], s["figures"]
            if s["engine"] is None:
                verdict, ratio = "(reference)", "1"
            else:
                ag = res["agreement"][s["engine"]]
                verdict = (f"{'AGREE' if ag['agree'] else 'DISAGREE'}  cold z = {ag['p_cold']['z']:.2f}, "
                           f"instances z = {ag['instances_mean']['z']:.2f}")
                ratio = f"{sp['speed_ratio']:.1f}"
            t.add_row(head[i] if i < len(head) else "", s["name"], f"{sp['requests_simulated']:,}",
                      f"{sp['wall_s']:.1f}", f"{sp['requests_per_s']:,.0f}", ratio,
                      _pm(f["p_cold"], f["p_cold_se"], d), _pm(f["instances_mean"], f["instances_se"], 2), verdict)
        for engine, why in res["skipped_engines"].items():
            t.add_row("", f"servesim {engine}", "", "", "", "", "", "", f"skipped: {why}")
        t.add_section()
    return t


def report_lines(results: list[dict]) -> list[str]:
    lines = [f"Agreement criterion: {results[0]['criterion']}, combined SE = sqrt(SE_servesim² + SE_SimFaaS²).",
             "Speed: wall time of the first run's simulation only (SimFaaS: generate_trace; servesim: simulate_one "
             "whole); requests = every arrival simulated, warm-up included.",
             f"Note: {HYPOEXP_NOTE}"]
    for res in results:
        name = res["case"]["name"]
        lines.append(f"[{name}] SE method: {res['se_method']}")
        for why in res["batch_problems"]:
            lines.append(f"[{name}]   batch means {'rejected' if res['se_reliable'] else 'UNRELIABLE'}: {why}")
        for s in res["simulators"]:
            r = s["runs"][0]
            if s["engine"] is None:
                lines.append(f"[{name}] SimFaaS's own figures without warm-up (get_cold_start_prob, "
                             f"get_average_server_count), first run: P(cold) {r['p_cold_no_warmup']:.5f}, "
                             f"mean instances {r['instances_mean_no_warmup']:.3f}; rejected {r['rejected']}.")
            else:
                lines.append(f"[{name}] {s['name']}: timeouts {sum(x['timeouts'] for x in s['runs'])} "
                             f"(timeout {TIMEOUT_S:g} s; longest latency "
                             f"{max(x['latency_max_ms'] for x in s['runs']) / 1000:.1f} s), "
                             f"throttled {sum(x['rejected'] for x in s['runs'])}.")
        verdicts = [f"servesim {e} {'AGREES' if a['agree'] else 'DISAGREES'} with SimFaaS"
                    for e, a in res["agreement"].items()]
        lines.append(f"[{name}] VERDICT: {'; '.join(verdicts) or 'no servesim engine was run'}")
    return lines


def _json_default(o):
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        epilog="example: bench_simfaas.py --requests 100000 --engines simpy --out simfaas.json")
    ap.add_argument("--requests", type=int, default=1_000_000, help="requests simulated per run (about)")
    ap.add_argument("--engines", default=",".join(available_engines()),
                    help="servesim engines, comma-separated (default: those this version has: "
                         f"{','.join(available_engines())})")
    ap.add_argument("--cases", default=",".join(CASES), help=f"comma-separated, of {', '.join(CASES)}")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--replications", type=int, default=5,
                    help="runs per simulator when batch means fail their independence check (< 2: never)")
    ap.add_argument("--out", type=Path, help="also write the figures as JSON to this file (default: print only)")
    args = ap.parse_args(argv)
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = [c for c in cases if c not in CASES] + [e for e in engines if e not in SERVESIM_ENGINES]
    if unknown:
        ap.error(f"unknown case or engine: {', '.join(unknown)}")
    try:
        import simfaas  # noqa: F401
    except ImportError:
        print("SimFaaS is not installed (pip install simfaas): nothing to compare.", file=sys.stderr)
        return 0
    from rich.console import Console

    console = Console()
    if console.width < 180:
        console = Console(width=180)
    pinned = pin_one_core()
    for e in engines:
        if e not in ENGINES:
            console.print(f"servesim engine {e!r} is not available in this version: it is skipped.", markup=False)
    console.print(f"python {platform.python_version()}, pinned to one core: {pinned}, "
                  f"{args.requests:,} requests per run, seed {args.seed}", markup=False)
    results = []
    try:
        for c in cases:
            results.append(compare(c, args.requests, engines, args.seed, args.replications,
                                   log=lambda m: console.print(m, style="dim", markup=False, highlight=False)))
    except KeyboardInterrupt:
        console.print("interrupted: reporting the cases that finished")
    if results:
        console.print(table(results))
        for line in report_lines(results):
            console.print(line, markup=False, highlight=False, soft_wrap=True)
        if args.out:
            doc = {"benchmark": "simfaas", "python": platform.python_version(), "pinned": pinned, "results": results}
            write_text(args.out, json.dumps(doc, indent=2, default=_json_default) + "\n")
            console.print(f"wrote {args.out}", markup=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())

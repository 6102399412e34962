"""What AWS bills for a simulated window of serving: pure functions of usage and a price file.

The billing model (list prices from `sim.pricing`, USD; the free tier is NOT applied, nor are
Savings Plans or Reserved Instances):

Lambda
- An invocation is billed for its duration rounded UP to a whole millisecond. On a cold start the
  INIT phase is added before rounding: billed_ms = ceil(init_ms + duration_ms) (AWS bills INIT
  for every packaging type since 2025-08-01). Sums are taken to 1 ns before rounding up, so
  floating-point noise (110.00000000000001 ms) does not add a millisecond.
- GB-s = billed_ms / 1000 * memory_mb / 1024.
- On-demand GB-s go through the monthly volume tiers. Tiers are per account, architecture and
  region over a calendar month; here the simulated function is taken to be the account's only
  usage of its architecture, and the month's tier thresholds are pro-rated to the window:
  threshold * window_s / MONTH_S (MONTH_S = 730 h, AWS's pricing month). A one-day window thus
  reaches tier 2 after 6e9 * 24/730 GB-s on x86_64.
- Each invocation pays the request fee. Throttled requests are not invocations and are free.
- Provisioned concurrency (PC) is charged on configured concurrency * memory GB * time enabled,
  the time rounded UP to a multiple of 5 minutes; here PC is taken to be enabled for the whole
  window. Invocations served by PC environments pay the PC duration rate (not tiered) instead
  of the on-demand rate; spill-over invocations pay on-demand rates.

EC2 (Linux, on-demand)
- Per-second billing with a 60 s minimum per launch: an instance alive over [launch, end] is
  billed over [launch, launch + max(end - launch, 60 s)]. The window is charged the part of that
  billed interval inside it, so adjacent windows add up to the whole bill: an instance launched
  before the window is charged from the window's start with no minimum (the minimum fell before
  the window), and one whose minimum runs past the window's end is charged only up to the end.
- The ALB is charged per ALB-hour, a partial hour billed as a full hour (so a window of h hours
  pays ceil(h) ALB-hours, the ALB taken to live exactly for the window), plus LCU-hours: in each
  hour the LCUs are the maximum over four dimensions (new connections/s, active connections per
  minute, GB processed per hour, rule evaluations/s), each divided by what one LCU buys.
  Assumptions: every request opens a new connection (clients without keep-alive: an upper
  bound); the active connections in an hour are the mean number of requests in flight in that
  hour; processed bytes = requests * bytes_per_request, 1 GB = 2**30 bytes; no rule
  evaluations are billed unless rules_per_request exceeds the free 10.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Sequence

import numpy as np
from numba import njit

from .pricing import AlbPrices, Pricing

MONTH_S = 730 * 3600
"""AWS's pricing month (730 hours), in seconds."""

BYTES_PER_GB = 2**30
"""Bytes in one billed GB of load-balancer traffic (assumption: binary gigabyte)."""

MB_PER_GB = 1024
"""Lambda memory: 1 GB = 1024 MB (AWS's own worked examples)."""

_NOISE_DECIMALS = 6  # ms -> round to 1 ns before ceil; also for window/increment ratios
_NOISE_SCALE = 10.0 ** _NOISE_DECIMALS
_BAD_DURATION = "durations must be finite and >= 0 ms"
_NO_INIT = np.zeros(0)


@dataclass(frozen=True)
class Cost:
    """A bill in USD, by component."""

    compute: float = 0.0
    requests: float = 0.0
    provisioned: float = 0.0
    load_balancer: float = 0.0
    other: float = 0.0

    @property
    def total(self) -> float:
        """Sum of all components (USD)."""
        return self.compute + self.requests + self.provisioned + self.load_balancer + self.other

    def as_dict(self) -> dict[str, float]:
        """The `cost_usd` object of a result: total, compute, requests, provisioned, load_balancer, other."""
        return {"total": float(self.total), **{f.name: float(getattr(self, f.name)) for f in fields(self)}}

    def __add__(self, other: Cost) -> Cost:
        if not isinstance(other, Cost):
            return NotImplemented
        return Cost(**{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)})


def _ceil_multiple(x: float, step: float) -> float:
    """x rounded UP to a multiple of step (ratios taken to 1e-6 first to ignore float noise)."""
    return math.ceil(round(x / step, _NOISE_DECIMALS)) * step


def lambda_billed_ms(duration_ms: np.ndarray | float, init_ms: np.ndarray | float = 0.0) -> np.ndarray | int:
    """Billed milliseconds of invocations: ceil(init_ms + duration_ms), vectorised.

    Returns an int64 array for array input, a Python int for scalars.
    """
    total_ms = np.asarray(duration_ms, dtype=float) + np.asarray(init_ms, dtype=float)
    if np.any(total_ms < 0) or not np.all(np.isfinite(total_ms)):
        raise ValueError(_BAD_DURATION)
    billed = np.ceil(np.round(total_ms, _NOISE_DECIMALS)).astype(np.int64)
    return int(billed) if billed.ndim == 0 else billed


def lambda_billed_sums(served: np.ndarray, work_ms: np.ndarray, timeout_ms: float, init_ms: np.ndarray | None,
                       cold: np.ndarray, on_pc: np.ndarray) -> tuple[int, int, int]:
    """`lambda_billed_ms` of the invocations ``served`` (a mask), summed: (invocations, billed ms
    on provisioned environments (mask ``on_pc``), billed ms on the others).

    Invocation i is billed for ``min(work_ms[i], timeout_ms)``, plus ``init_ms[i]`` when
    ``cold[i]`` (no INIT at all when `init_ms` is None). One compiled pass: the same sums as
    `lambda_billed_ms` on the masked arrays, without their temporaries. Raises its ValueError.
    """
    init = _NO_INIT if init_ms is None else init_ms
    n, pc, od, ok = _lambda_billed_sums(served, work_ms, float(timeout_ms), init, cold, on_pc)
    if not ok:
        raise ValueError(_BAD_DURATION)
    return n, pc, od


@njit(cache=True, inline="always")
def lambda_billed_ms_of(total_ms):
    """`lambda_billed_ms` of one invocation's total (INIT included where billed), finite and
    >= 0, in compiled code. ``np.round(x, 6)`` is ``np.rint(x * 1e6) / 1e6``: numpy computes it so."""
    return int(np.ceil(np.rint(total_ms * _NOISE_SCALE) / _NOISE_SCALE))


@njit(cache=True, nogil=True)
def _lambda_billed_sums(served, work_ms, timeout_ms, init_ms, cold, on_pc):
    """`lambda_billed_sums`; ok is False (the sums meaningless) when a total is negative,
    infinite or NaN."""
    with_init = init_ms.size > 0
    n = pc = od = 0
    for i in range(served.size):
        if not served[i]:
            continue
        w = work_ms[i]
        if w > timeout_ms:  # np.minimum: NaN stays NaN
            w = timeout_ms
        total = w + (init_ms[i] if with_init and cold[i] else 0.0)
        if not (total >= 0.0 and total < np.inf):
            return n, pc, od, False
        billed = lambda_billed_ms_of(total)
        n += 1
        if on_pc[i]:
            pc += billed
        else:
            od += billed
    return n, pc, od, True


def _tiered_usd(gb_s: float, tiers, scale: float) -> float:
    """USD for gb_s GB-s through tiers whose monthly thresholds are multiplied by scale."""
    usd, lower = 0.0, 0.0
    for tier in tiers:
        upper = tier.up_to_gb_s_per_month * scale
        if gb_s <= lower:
            break
        usd += (min(gb_s, upper) - lower) * tier.usd_per_gb_s
        lower = upper
    return usd


def lambda_cost(*, pricing: Pricing, architecture: str, memory_mb: int, invocations: int,
                billed_ms_on_demand: int, billed_ms_provisioned: int = 0,
                provisioned_concurrency: int = 0, window_s: float) -> Cost:
    """Lambda bill of one function over a window of window_s seconds.

    billed_ms_on_demand / billed_ms_provisioned: summed billed ms (see `lambda_billed_ms`) of
    invocations served by on-demand / provisioned environments; invocations: all of them
    (throttled requests excluded). compute = tiered on-demand GB-s + PC-duration GB-s;
    requests = invocations * fee; provisioned = PC * GB * window rounded up to 5 min * PC rate.
    """
    if window_s <= 0:
        raise ValueError(f"window_s must be > 0, got {window_s}")
    if min(memory_mb, invocations, billed_ms_on_demand, billed_ms_provisioned, provisioned_concurrency) < 0:
        raise ValueError("memory, invocations, billed ms and provisioned concurrency must be >= 0")
    arch = pricing.lambda_arch(architecture)
    memory_gb = memory_mb / MB_PER_GB
    on_demand_gb_s = billed_ms_on_demand / 1000 * memory_gb
    provisioned_gb_s = billed_ms_provisioned / 1000 * memory_gb
    compute = (_tiered_usd(on_demand_gb_s, arch.tiers, window_s / MONTH_S)
               + provisioned_gb_s * arch.pc_duration_usd_per_gb_s)
    held_s = _ceil_multiple(window_s, pricing.lambda_.pc_billing_increment_s) if provisioned_concurrency else 0.0
    return Cost(compute=compute,
                requests=invocations * pricing.lambda_.usd_per_request,
                provisioned=provisioned_concurrency * memory_gb * held_s * arch.pc_usd_per_gb_s_held)


def ec2_instance_seconds(launches: Sequence[tuple[float, float]], window: tuple[float, float],
                         minimum_s: float) -> float:
    """Billed instance-seconds inside window=(t0, t1) of instances alive over [launch, end] (s).

    Each launch is billed over [launch, launch + max(end - launch, minimum_s)]; the part of that
    interval inside the window is returned, summed over launches.
    """
    t0, t1 = window
    if t1 < t0:
        raise ValueError(f"window ends before it starts: {window}")
    total_s = 0.0
    for launch_s, end_s in launches:
        if end_s < launch_s:
            raise ValueError(f"instance ends before its launch: ({launch_s}, {end_s})")
        billed_end_s = launch_s + max(end_s - launch_s, minimum_s)
        total_s += max(0.0, min(billed_end_s, t1) - max(launch_s, t0))
    return total_s


def alb_lcus_per_hour(requests_per_hour: np.ndarray, *, mean_active_connections: np.ndarray,
                      bytes_per_request: float, prices: AlbPrices, rules_per_request: int = 0) -> np.ndarray:
    """LCUs billed in each hour: the max over the four LCU dimensions.

    requests_per_hour[i]: requests in hour i (each a new connection); mean_active_connections[i]:
    mean requests in flight in hour i (read as active connections per minute); bytes_per_request:
    request + response bytes through the ALB; rules_per_request: listener rules evaluated per
    request (the first `prices.lcu_free_rules_per_request` are free).
    """
    requests = np.asarray(requests_per_hour, dtype=float)
    active = np.broadcast_to(np.asarray(mean_active_connections, dtype=float), requests.shape)
    new_conn_per_s = requests / 3600
    gb_per_hour = requests * bytes_per_request / BYTES_PER_GB
    billed_rules = max(0.0, rules_per_request - prices.lcu_free_rules_per_request)
    rule_evals_per_s = new_conn_per_s * billed_rules
    return np.maximum.reduce([
        new_conn_per_s / prices.lcu_new_connections_per_s,
        active / prices.lcu_active_connections_per_minute,
        gb_per_hour / prices.lcu_processed_gb_per_hour,
        rule_evals_per_s / prices.lcu_rule_evaluations_per_s,
    ])


def ec2_cost(*, pricing: Pricing, instance_type: str, launches: Sequence[tuple[float, float]],
             window: tuple[float, float], alb_requests_per_hour: np.ndarray | None = None,
             alb_mean_active_connections: np.ndarray | None = None, bytes_per_request: float = 0.0,
             rules_per_request: int = 0) -> Cost:
    """EC2 fleet bill over window=(t0, t1) seconds, plus the ALB when alb_requests_per_hour is given.

    launches: (launch_s, end_s) of every instance; alb_requests_per_hour: requests in each
    (partial) hour of the window; alb_mean_active_connections: mean requests in flight in each
    hour (zeros if None). compute = billed instance-seconds * $/hour / 3600; load_balancer =
    ceil(window hours) * ALB-hour price + sum(LCUs per hour) * LCU-hour price.
    """
    instance = pricing.instance(instance_type)
    seconds = ec2_instance_seconds(launches, window, pricing.ec2_minimum_billed_s)
    compute = seconds * instance.usd_per_hour / 3600
    load_balancer = 0.0
    if alb_requests_per_hour is not None:
        alb = pricing.alb
        requests = np.asarray(alb_requests_per_hour, dtype=float)
        active = np.zeros_like(requests) if alb_mean_active_connections is None else alb_mean_active_connections
        lcus = alb_lcus_per_hour(requests, mean_active_connections=active, bytes_per_request=bytes_per_request,
                                 prices=alb, rules_per_request=rules_per_request)
        alb_hours = _ceil_multiple(window[1] - window[0], alb.billing_increment_s) / 3600
        load_balancer = alb_hours * alb.usd_per_alb_hour + float(np.sum(lcus)) * alb.usd_per_lcu_hour
    return Cost(compute=compute, load_balancer=load_balancer)

"""What container services and Kubernetes clusters bill: pure functions of usage and prices.

Prices come from `sim.presets` (container services) and `sim.pricing` (EC2 nodes), in USD; free
grants are NOT applied, as for AWS. The billing model:

Container services (`ContainerPrices`, one of three billing modes)
- instance (Fargate, Cloud Run instance-based): each instance is billed from launch to stop,
  the length rounded UP to `increment_s` (Fargate 1 s, Cloud Run 100 ms) and at least
  `minimum_s` (Fargate 60 s), times vcpu * USD per vCPU-s + memory_gb * USD per GB-s.
- request (Cloud Run request-based, Cloud Run functions / GCF 2nd gen, Azure Flex Consumption on
  demand): an instance is billed only while it serves at least one request. Each active period
  (from the moment a request arrives at an idle instance until the instance has no request left)
  is billed like an instance life: rounded up to `increment_s`, at least `minimum_s` (Azure Flex:
  1,000 ms, then 100 ms steps), at the same vCPU and GB rates; plus a fee per request. Cloud Run
  also bills container startup and shutdown under request-based billing: not modelled (the
  model bills active periods only), so the bill is a slight lower bound.
- execution (Azure Functions Consumption): every execution is billed on its own, concurrent
  ones each in full: its duration rounded up to `increment_s` (1 ms), at least `minimum_s`
  (100 ms), times the memory rounded up to `memory_increment_gb` (128 MB = 0.125 GB, 1 GB =
  1024 MB). Azure bills the process's sampled memory; here every execution is billed at the
  memory_gb it is given. Plus a fee per execution.
- Rounding is taken on ratios rounded to 1e-6 first, so floating-point noise (0.30000000000000004
  s in steps of 0.1 s) does not add a step (as `sim.billing` does for Lambda).

Window clipping (instance and request modes): an interval's billed span is
[start, start + max(ceil(length), minimum)]; a window (t0, t1) is charged the part of that span
inside it, so adjacent windows add up to the whole bill (the rule of
`sim.billing.ec2_instance_seconds`). An execution is charged whole to the window the caller
assigns it to.

Kubernetes (OpenFaaS, Knative on EKS)
- Nodes are EC2 instances, billed per second with the price file's minimum per launch (60 s),
  clipped to the window as above (`sim.billing.ec2_instance_seconds`).
- The control plane fee (EKS: USD per cluster-hour) goes to `Cost.other`, pro-rated per second
  of the window, its whole fee charged to the simulated function. Assumption: AWS states the fee
  per cluster-hour but no source found says whether a partial hour is billed whole; per-second
  pro-rating is the expected value over many windows and keeps adjacent windows additive.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from .billing import Cost, _ceil_multiple, ec2_instance_seconds
from .config import ContainerPrices
from .pricing import Pricing

_NOISE_DECIMALS = 6  # as sim.billing: ratios are rounded to 1e-6 before ceil


def _check_window(window: tuple[float, float]) -> tuple[float, float]:
    t0, t1 = window
    if not (math.isfinite(t0) and math.isfinite(t1)) or t1 < t0:
        raise ValueError(f"window must be finite and end after it starts: {window}")
    return t0, t1


def interval_billed_s(start_s: float, end_s: float, window: tuple[float, float], *,
                      minimum_s: float = 0.0, increment_s: float = 0.0) -> float:
    """Seconds billed inside window=(t0, t1) for one interval [start_s, end_s] (s): an instance's
    life (instance billing) or one active period (request billing).

    The length is rounded UP to a multiple of `increment_s` (no rounding when 0), then raised to
    at least `minimum_s`, measured from start_s; the part of that billed span inside the window
    is returned.
    """
    t0, t1 = _check_window(window)
    if not (math.isfinite(start_s) and math.isfinite(end_s)) or end_s < start_s:
        raise ValueError(f"interval must be finite and end after it starts: ({start_s}, {end_s})")
    if minimum_s < 0 or increment_s < 0:
        raise ValueError(f"minimum_s and increment_s must be >= 0, got {minimum_s}, {increment_s}")
    length_s = end_s - start_s
    if increment_s > 0:
        length_s = _ceil_multiple(length_s, increment_s)
    billed_end_s = start_s + max(length_s, minimum_s)
    return max(0.0, min(billed_end_s, t1) - max(start_s, t0))


def _ceil_steps(x: np.ndarray | float, step: float) -> np.ndarray | float:
    """x rounded UP to a multiple of step (> 0), vectorised, ignoring float noise below 1e-6 step."""
    return np.ceil(np.round(np.asarray(x, dtype=float) / step, _NOISE_DECIMALS)) * step


def execution_gb_s(duration_ms: np.ndarray, memory_gb: float, prices: ContainerPrices) -> float:
    """Billed GB-s of executions ('execution' billing): each duration (ms) rounded up to
    `prices.increment_s`, at least `prices.minimum_s`, times memory_gb rounded up to
    `prices.memory_increment_gb`; summed."""
    seconds = np.asarray(duration_ms, dtype=float) / 1000.0
    if seconds.size and (not np.all(np.isfinite(seconds)) or np.any(seconds < 0)):
        raise ValueError("durations must be finite and >= 0 ms")
    if not (math.isfinite(memory_gb) and memory_gb > 0):
        raise ValueError(f"memory_gb must be > 0, got {memory_gb}")
    if prices.increment_s > 0:
        seconds = _ceil_steps(seconds, prices.increment_s)
    seconds = np.maximum(seconds, prices.minimum_s)
    billed_gb = float(_ceil_steps(memory_gb, prices.memory_increment_gb)) if prices.memory_increment_gb > 0 \
        else memory_gb
    return float(np.sum(seconds)) * billed_gb


def container_cost(*, prices: ContainerPrices, vcpu: float, memory_gb: float, billed_s: float,
                   execution_gb_s: float, requests: int) -> Cost:
    """Bill of a container service.

    instance / request billing: compute = billed_s * (vcpu * usd_per_vcpu_s + memory_gb *
    usd_per_gb_s), billed_s from `interval_billed_s` summed over instances or active periods
    (execution_gb_s must be 0). execution billing: compute = execution_gb_s * usd_per_gb_s, from
    `execution_gb_s` (billed_s must be 0). requests = requests * usd_per_request.
    """
    if min(vcpu, memory_gb, billed_s, execution_gb_s, requests) < 0:
        raise ValueError("vcpu, memory_gb, billed_s, execution_gb_s and requests must be >= 0")
    if prices.billing == "execution":
        if billed_s:
            raise ValueError("execution billing is computed from execution_gb_s; billed_s must be 0")
        compute = execution_gb_s * prices.usd_per_gb_s
    else:
        if execution_gb_s:
            raise ValueError(f"{prices.billing} billing is computed from billed_s; execution_gb_s must be 0")
        compute = billed_s * (vcpu * prices.usd_per_vcpu_s + memory_gb * prices.usd_per_gb_s)
    return Cost(compute=compute, requests=requests * prices.usd_per_request)


def k8s_cost(*, pricing: Pricing, node_instance_type: str, node_launches: Sequence[tuple[float, float]],
             window: tuple[float, float], control_plane_usd_per_hour: float) -> Cost:
    """Kubernetes bill over window=(t0, t1) s: nodes (launch_s, end_s) billed as EC2 instances of
    `node_instance_type` (ConfigError if the price file lacks it) into `compute`, and the control
    plane's fee pro-rated per second of the window into `other`."""
    t0, t1 = _check_window(window)
    if not (math.isfinite(control_plane_usd_per_hour) and control_plane_usd_per_hour >= 0):
        raise ValueError(f"control_plane_usd_per_hour must be >= 0, got {control_plane_usd_per_hour}")
    instance = pricing.instance(node_instance_type)
    seconds = ec2_instance_seconds(node_launches, (t0, t1), pricing.ec2_minimum_billed_s)
    return Cost(compute=seconds * instance.usd_per_hour / 3600,
                other=(t1 - t0) * control_plane_usd_per_hour / 3600)
